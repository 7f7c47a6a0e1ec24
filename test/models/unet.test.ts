import { describe, expect, test } from "bun:test";
import { Buffer } from "node:buffer";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { exportUNetOnnx, fromPretrained, loadUNet, type OnnxUNet } from "../../lib/models/unet.ts";
import { readSafetensors } from "../../lib/models/safetensors.ts";
import { Tensor } from "../../lib/core/tensor.ts";

// Reference outputs: diffusers' own UNet2DModel (commit 58eb52c, PyTorch 1.13, float32), see each fixture's README.txt
const fixtures = fileURLToPath(new URL("../fixtures/unet/", import.meta.url));
const tolerance = 1e-4;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function io(name: string) {
  const t = readSafetensors(join(fixtures, name, "io.safetensors")).tensors;
  const tensor = (k: string) => new Tensor(t.get(k)!.data, t.get(k)!.shape);
  return {
    sample: tensor("sample"),
    timesteps: [...t.get("timestep")!.data],
    expected: tensor("expected"),
    tScalar: t.get("t_scalar")!.data[0],
    expectedScalar: tensor("expected_t_scalar"),
    sampleRect: tensor("sample_rect"),
    expectedRect: tensor("expected_rect"),
  };
}

/** Every case of a fixture: per-batch timesteps, one scalar timestep, a non-square input. */
async function expectFixtureCases(unet: OnnxUNet, name: string) {
  const c = io(name);
  const out = await unet.predict(c.sample, c.timesteps);
  expect(out.shape).toEqual(c.expected.shape);
  expect(maxAbsDiff(out.data, c.expected.data)).toBeLessThan(tolerance);
  const scalar = await unet.predict(c.sample, c.tScalar);
  expect(maxAbsDiff(scalar.data, c.expectedScalar.data)).toBeLessThan(tolerance);
  const rect = await unet.predict(c.sampleRect, c.timesteps);
  expect(rect.shape).toEqual(c.expectedRect.shape);
  expect(maxAbsDiff(rect.data, c.expectedRect.data)).toBeLessThan(tolerance);
}

describe("UNet2DModel fixtures match diffusers within 1e-4", () => {
  for (const name of ["tiny-ddpm", "tiny-fourier"]) {
    test(`${name}: compiled from config.json + safetensors`, async () => {
      const unet = await loadUNet(join(fixtures, name), { cacheDir: false });
      expect(unet.inChannels).toBe(3);
      expect(unet.outChannels).toBe(3);
      expect(unet.sampleSize).toBe(name === "tiny-ddpm" ? 16 : 8);
      expect(unet.config._class_name).toBe("UNet2DModel");
      await expectFixtureCases(unet, name);
      unet.dispose();
    });

    test(`${name}: an .onnx file the package writes reloads and matches`, async () => {
      const dir = mkdtempSync(join(tmpdir(), "ddimlab-unet-"));
      const file = exportUNetOnnx(join(fixtures, name), join(dir, "unet.onnx"));
      const unet = await loadUNet(file);
      expect(unet.signature.timestepType).toBe("float32");
      expect(unet.sampleSize).toBe(name === "tiny-ddpm" ? 16 : 8);
      await expectFixtureCases(unet, name);
      unet.dispose();
    });
  }

  test("tiny-ddpm: the .bin checkpoint with 2022 attention names (query/key/value/proj_attn)", async () => {
    const unet = await loadUNet(join(fixtures, "tiny-ddpm", "diffusion_pytorch_model.bin"), { cacheDir: false });
    await expectFixtureCases(unet, "tiny-ddpm");
    unet.dispose();
  });

  test("tiny-ddpm: torch.onnx.export's model.onnx (int64 [batch] timestep, dynamic batch)", async () => {
    const unet = await loadUNet(join(fixtures, "tiny-ddpm", "model.onnx"));
    expect(unet.signature).toMatchObject({
      sampleName: "sample",
      timestepName: "timestep",
      outputName: "out_sample",
      timestepType: "int64",
      timestepRank: 1,
      batch: "dynamic",
    });
    expect(unet.sampleSize).toBe(16); // from the config.json beside it
    await expectFixtureCases(unet, "tiny-ddpm");
    await expect(unet.predict(io("tiny-ddpm").sample, 10.5)).rejects.toThrow(/int64 timesteps but got 10.5/);
    unet.dispose();
  });
});

describe("compiled-graph cache", () => {
  test("a checkpoint's graph is cached next to it and rebuilt when the weights change", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ddimlab-cache-"));
    for (const f of ["config.json", "diffusion_pytorch_model.safetensors"]) {
      copyFileSync(join(fixtures, "tiny-fourier", f), join(dir, f));
    }
    const cached = () => readdirSync(dir).filter((f) => f.startsWith("unet-") && f.endsWith(".onnx"));
    const first = await loadUNet(dir);
    expect(cached().length).toBe(1);
    const c = io("tiny-fourier");
    const before = await first.predict(c.sample, c.timesteps);
    first.dispose();
    const again = await loadUNet(dir); // from the cache file
    expect(cached().length).toBe(1);
    expect(maxAbsDiff((await again.predict(c.sample, c.timesteps)).data, before.data)).toBe(0);
    again.dispose();
    // change conv_out.bias (the last tensor): a new graph is compiled and the output moves by that bias
    const path = join(dir, "diffusion_pytorch_model.safetensors");
    const bytes = new Uint8Array(readFileSync(path));
    const view = new DataView(bytes.buffer);
    view.setFloat32(bytes.length - 4, view.getFloat32(bytes.length - 4, true) + 1, true);
    writeFileSync(path, bytes);
    const changed = await loadUNet(dir);
    expect(cached().length).toBe(2);
    const after = await changed.predict(c.sample, c.timesteps);
    changed.dispose();
    expect(maxAbsDiff(after.data, before.data)).toBeGreaterThan(0.01);
  });

  test("a damaged or swapped cached graph is recompiled, never used (a private cache folder)", async () => {
    const checkpoint = mkdtempSync(join(tmpdir(), "ddimlab-ckpt-"));
    const cacheDir = mkdtempSync(join(tmpdir(), "ddimlab-cache-"));
    for (const f of ["config.json", "diffusion_pytorch_model.safetensors"]) {
      copyFileSync(join(fixtures, "tiny-fourier", f), join(checkpoint, f));
    }
    const c = io("tiny-fourier");
    const run = async () => {
      const unet = await loadUNet(checkpoint, { cacheDir });
      const out = await unet.predict(c.sample, c.timesteps);
      unet.dispose();
      return out;
    };
    const before = await run();
    expect(maxAbsDiff(before.data, c.expected.data)).toBeLessThan(1e-4);
    const graph = join(cacheDir, readdirSync(cacheDir).find((f) => f.endsWith(".onnx"))!);
    expect(existsSync(`${graph}.json`)).toBe(true);
    // One flipped exponent bit in a weight (conv_out.bias, found by its bytes): onnxruntime would load it happily.
    const bytes = new Uint8Array(readFileSync(graph));
    const bias = readSafetensors(join(checkpoint, "diffusion_pytorch_model.safetensors")).tensors.get("conv_out.bias")!;
    const at = Buffer.from(bytes).indexOf(Buffer.from(new Float32Array(bias.data).buffer));
    expect(at).toBeGreaterThan(0);
    bytes[at + 3] ^= 0x01;
    writeFileSync(graph, bytes);
    expect(maxAbsDiff((await run()).data, before.data)).toBe(0);
    // A graph compiled from other weights, put in its place with its own sidecar, is not used either.
    const other = mkdtempSync(join(tmpdir(), "ddimlab-ckpt-"));
    copyFileSync(join(fixtures, "tiny-ddpm", "config.json"), join(other, "config.json"));
    copyFileSync(
      join(fixtures, "tiny-ddpm", "diffusion_pytorch_model.safetensors"),
      join(other, "diffusion_pytorch_model.safetensors"),
    );
    const otherCache = mkdtempSync(join(tmpdir(), "ddimlab-cache-"));
    (await loadUNet(other, { cacheDir: otherCache })).dispose();
    const otherGraph = join(otherCache, readdirSync(otherCache).find((f) => f.endsWith(".onnx"))!);
    copyFileSync(otherGraph, graph);
    copyFileSync(`${otherGraph}.json`, `${graph}.json`);
    expect(maxAbsDiff((await run()).data, before.data)).toBe(0);
    expect(readdirSync(cacheDir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    for (const d of [checkpoint, cacheDir, other, otherCache]) rmSync(d, { recursive: true, force: true });
  });
});

describe("bad input is refused with a clear error", () => {
  test("a sample whose channels or size do not fit, or a wrong number of timesteps", async () => {
    const unet = await loadUNet(join(fixtures, "tiny-ddpm"), { cacheDir: false });
    await expect(unet.predict(Tensor.zeros([1, 4, 16, 16]), 1)).rejects.toThrow(/4 channels but the UNet takes 3/);
    await expect(unet.predict(Tensor.zeros([1, 3, 16, 15]), 1)).rejects.toThrow(/width 15 does not fit.*multiple of 2/);
    await expect(unet.predict(Tensor.zeros([3, 16, 16]), 1)).rejects.toThrow(
      /shape \[batch, 3, height, width\], got \[3, 16, 16\]/,
    );
    await expect(unet.predict(Tensor.zeros([2, 3, 16, 16]), [1, 2, 3])).rejects.toThrow(/3 timesteps for a batch of 2/);
    await expect(unet.predict(Tensor.zeros([1, 3, 16, 16]), NaN)).rejects.toThrow(/finite number, got NaN/);
    unet.dispose();
    await expect(unet.predict(Tensor.zeros([1, 3, 16, 16]), 1)).rejects.toThrow(/disposed/);
  });

  test("a missing path, a folder without weights, a truncated weight file", async () => {
    await expect(loadUNet("/nonexistent/unet")).rejects.toThrow(/No UNet at \/nonexistent\/unet/);
    const dir = mkdtempSync(join(tmpdir(), "ddimlab-bad-"));
    copyFileSync(join(fixtures, "tiny-ddpm", "config.json"), join(dir, "config.json"));
    await expect(loadUNet(dir, { cacheDir: false })).rejects.toThrow(/No UNet in/);
    const bytes = readFileSync(join(fixtures, "tiny-ddpm", "diffusion_pytorch_model.safetensors"));
    writeFileSync(join(dir, "diffusion_pytorch_model.safetensors"), bytes.subarray(0, bytes.length - 1000));
    await expect(loadUNet(dir, { cacheDir: false })).rejects.toThrow(/is truncated: tensor conv_out\.\w+ ends at/);
  });

  test("an unsupported config value names the key and the value", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ddimlab-cfg-"));
    const config = JSON.parse(readFileSync(join(fixtures, "tiny-ddpm", "config.json"), "utf8"));
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, resnet_time_scale_shift: "scale_shift" }));
    copyFileSync(
      join(fixtures, "tiny-ddpm", "diffusion_pytorch_model.safetensors"),
      join(dir, "diffusion_pytorch_model.safetensors"),
    );
    await expect(loadUNet(dir, { cacheDir: false })).rejects.toThrow(/resnet_time_scale_shift = "scale_shift"/);
  });

  test("webgpu gives a clear error where the machine has no adapter, and unknown providers are refused", async () => {
    const file = join(fixtures, "tiny-ddpm", "model.onnx");
    await expect(loadUNet(file, { executionProvider: "cuda" as "cpu" })).rejects.toThrow(
      /Unknown executionProvider "cuda"/,
    );
    try {
      const unet = await loadUNet(file, { executionProvider: "webgpu" });
      unet.dispose(); // a machine with WebGPU: loading works
    } catch (error) {
      expect(String(error)).toMatch(/WebGPU execution provider is not available on this machine/);
    }
  });

  test("fromPretrained refuses a scheduler class it does not know, naming it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ddimlab-pre-"));
    copyFileSync(join(fixtures, "tiny-fourier", "config.json"), join(dir, "config.json"));
    copyFileSync(
      join(fixtures, "tiny-fourier", "diffusion_pytorch_model.safetensors"),
      join(dir, "diffusion_pytorch_model.safetensors"),
    );
    writeFileSync(join(dir, "scheduler_config.json"), JSON.stringify({ _class_name: "ScoreSdeVeScheduler" }));
    await expect(fromPretrained(dir, { cacheDir: false })).rejects.toThrow(
      /unsupported scheduler _class_name "ScoreSdeVeScheduler"/,
    );
    await expect(fromPretrained(join(fixtures, "tiny-ddpm"))).rejects.toThrow(/No scheduler config/);
  });
});

describe("fromPretrained", () => {
  test("the google/ddpm-* layout and a pipeline folder build the scheduler class scheduler_config.json names", async () => {
    const flat = mkdtempSync(join(tmpdir(), "ddimlab-flat-"));
    for (const f of ["config.json", "diffusion_pytorch_model.safetensors"]) {
      copyFileSync(join(fixtures, "tiny-ddpm", f), join(flat, f));
    }
    writeFileSync(
      join(flat, "scheduler_config.json"),
      JSON.stringify({ _class_name: "DDIMScheduler", num_train_timesteps: 1000 }),
    );
    const a = await fromPretrained(flat, { cacheDir: false });
    expect(a.scheduler.constructor.name).toBe("DDIMScheduler");
    await expectFixtureCases(a.unet, "tiny-ddpm");
    a.unet.dispose();

    const pipeline = mkdtempSync(join(tmpdir(), "ddimlab-pipe-"));
    const { mkdirSync } = await import("node:fs");
    mkdirSync(join(pipeline, "unet"));
    mkdirSync(join(pipeline, "scheduler"));
    for (const f of ["config.json", "diffusion_pytorch_model.bin"]) {
      copyFileSync(join(fixtures, "tiny-ddpm", f), join(pipeline, "unet", f));
    }
    writeFileSync(
      join(pipeline, "model_index.json"),
      JSON.stringify({ _class_name: "DDPMPipeline", unet: ["diffusers", "UNet2DModel"] }),
    );
    writeFileSync(
      join(pipeline, "scheduler", "scheduler_config.json"),
      JSON.stringify({ _class_name: "DDPMScheduler", variance_type: "fixed_large" }),
    );
    const b = await fromPretrained(pipeline, { cacheDir: false });
    expect(b.scheduler.constructor.name).toBe("DDPMScheduler");
    await expectFixtureCases(b.unet, "tiny-ddpm");
    b.unet.dispose();
  });
});
