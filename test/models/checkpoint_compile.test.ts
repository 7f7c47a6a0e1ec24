import { describe, expect, test } from "bun:test";
import { Buffer } from "node:buffer";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { moduleClosure } from "../../lib/models/_cache.ts";
import { compileCheckpoint, exportUNetOnnx } from "../../lib/models/checkpoint_compile.ts";
import { loadUNet } from "../../lib/models/load.ts";
import { readSafetensors } from "../../lib/models/safetensors.ts";
import { expectFixtureCases, fixtures, io, maxAbsDiff } from "./_unet_fixtures.ts";

describe("a checkpoint compiled to an .onnx file matches diffusers within 1e-4", () => {
  for (const name of ["tiny-ddpm", "tiny-fourier"]) {
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

describe("compileCheckpoint", () => {
  test("a second call reads the intact cached graph, and refresh compiles the same bytes again", () => {
    const cacheDir = mkdtempSync(join(tmpdir(), "ddimlab-cache-"));
    try {
      const dir = join(fixtures, "tiny-fourier");
      const first = compileCheckpoint(dir, { cacheDir });
      expect(first.fromCache).toBe(false);
      expect(first.weightsPath).toBe(join(dir, "diffusion_pytorch_model.safetensors"));
      const second = compileCheckpoint(dir, { cacheDir });
      expect(second.fromCache).toBe(true);
      expect(Buffer.compare(Buffer.from(second.onnx), Buffer.from(first.onnx))).toBe(0);
      const fresh = compileCheckpoint(dir, { cacheDir, refresh: true });
      expect(fresh.fromCache).toBe(false);
      expect(Buffer.compare(Buffer.from(fresh.onnx), Buffer.from(first.onnx))).toBe(0);
    } finally {
      rmSync(cacheDir, { recursive: true, force: true });
    }
  });

  test("the cache key covers every module the compiler imports, and not the adapter or the loader", () => {
    const models = new URL("../../lib/models/", import.meta.url);
    const entry = new URL("checkpoint_compile.ts", models);
    const covered = moduleClosure(entry).map((url) => fileURLToPath(url).split("/lib/")[1]);
    expect(covered[0]).toBe("models/checkpoint_compile.ts");
    // the compiler proper, the config and weight readers, and what they import in turn
    for (
      const module of [
        "models/unet_onnx.ts",
        "models/onnx_graph.ts",
        "models/unet_config.ts",
        "models/safetensors.ts",
        "models/torch_checkpoint.ts",
        "core/_limits.ts",
      ]
    ) {
      expect(covered).toContain(module);
    }
    expect(covered).not.toContain("models/onnx_unet.ts");
    expect(covered).not.toContain("models/load.ts");
    expect(covered.every((path) => existsSync(join(fileURLToPath(models), "..", path)))).toBe(true);
  });
});
