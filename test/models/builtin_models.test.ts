import { describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  BUILTIN_SCHEDULER_CONFIG,
  builtinMixture,
  builtinModel,
  gaussian32OdeSolution,
  listBuiltinModels,
} from "../../lib/models/builtin_models.ts";
import { DDIMScheduler } from "../../lib/schedulers/ddim.ts";
import { DDPMScheduler } from "../../lib/schedulers/ddpm.ts";
import { DDIMInverseScheduler } from "../../lib/schedulers/ddim_inverse.ts";
import { drawShapes } from "../../lib/models/shapes_dataset.ts";
import { Tensor } from "../../lib/core/tensor.ts";
import { TorchGenerator } from "../../lib/core/torch_generator.ts";
import { loadUNet } from "../../lib/models/load.ts";

const NAMES = ["shapes32", "gaussian32", "ring2d", "grid2d", "moons2d"];
const alphaBarTable = DDIMScheduler.fromConfig(BUILTIN_SCHEDULER_CONFIG).alphasCumprod;

/** x_t = sqrt(alphaBar_t) x_0 + sqrt(1 - alphaBar_t) eps (DDPM's forward process), in float32. */
function noised(x0: Tensor, noise: Tensor, timesteps: number[]): Tensor {
  const per = x0.size / x0.shape[0];
  const out = new Float32Array(x0.size);
  for (let b = 0; b < x0.shape[0]; b++) {
    const ab = alphaBarTable[timesteps[b]];
    for (let i = 0; i < per; i++) {
      out[b * per + i] = Math.sqrt(ab) * x0.data[b * per + i] + Math.sqrt(1 - ab) * noise.data[b * per + i];
    }
  }
  return new Tensor(out, x0.shape);
}

function rms(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s / a.length);
}

describe("builtin models", () => {
  test("listBuiltinModels names the five exact models, the default image model first, each with a one-line description", () => {
    const list = listBuiltinModels();
    expect(list.filter((m) => m.kind === "exact").map((m) => m.name)).toEqual(NAMES);
    for (const { description } of list) {
      expect(description.length).toBeGreaterThan(10);
      expect(description).not.toContain("\n");
    }
  });

  test("an unknown name is refused with the list of known ones", async () => {
    await expect(builtinModel("builtin:cifar10")).rejects.toThrow(
      'Unknown builtin model "builtin:cifar10"; the known ones are builtin:shapes32, builtin:gaussian32',
    );
  });

  test("a timestep outside the model's alphaBar table is refused before it reaches the graph", async () => {
    const unet = await loadUNet("builtin:ring2d");
    const x = Tensor.zeros([2, 2, 1, 1]);
    for (const t of [-1, 1000, 1e9]) {
      await expect(unet.predict(x, t)).rejects.toThrow(`takes integer timesteps from 0 to 999, got ${t}`);
    }
    await expect(unet.predict(x, [0, 999])).resolves.toBeInstanceOf(Tensor);
    unet.dispose();
  });

  test("each model carries diffusers' DDPM scheduler config and image-shaped facts", async () => {
    for (const name of NAMES) {
      const model = await builtinModel(`builtin:${name}`, { cacheDir: false });
      expect(model.schedulerConfig).toMatchObject({
        _class_name: "DDPMScheduler",
        num_train_timesteps: 1000,
        beta_schedule: "linear",
        beta_start: 0.0001,
        beta_end: 0.02,
        clip_sample: true,
        variance_type: "fixed_small",
      });
      const image = name.endsWith("32");
      expect(model.config).toMatchObject({
        sample_size: image ? 32 : 1,
        in_channels: image ? 3 : 2,
        out_channels: image ? 3 : 2,
      });
      // "a few MB at most"
      expect(model.onnx.length).toBeLessThan(3_000_000);
    }
  });

  test("the ONNX graph run through loadUNet equals the direct TypeScript eps* at many points (5e-4 absolute)", async () => {
    // Tolerance: x_t itself is rounded to float32 (relative 6e-8), and C_k^{-1} amplifies that by up to
    // 1 / c_k ~ 1 / s2_k (about 1 / 0.0025 for the shapes); the rest of the graph adds float32 rounding of the same size.
    for (const name of NAMES) {
      const unet = await loadUNet(`builtin:${name}`, { cacheDir: false });
      const mixture = builtinMixture(name);
      const shape = [16, unet.inChannels, unet.config.sample_size as number, unet.config.sample_size as number];
      const generator = new TorchGenerator(5);
      let worst = 0;
      for (const start of [0, 3, 17, 100, 421, 777, 999]) {
        // per-item timesteps spread over the whole range, including t = 0 and t = 999
        const timesteps = Array.from({ length: 16 }, (_, b) => (start + 61 * b) % 1000);
        const x0 = mixture.sample(16, generator).samples.reshape(shape);
        const xt = noised(x0, generator.randn(shape), timesteps);
        const got = await unet.predict(xt, timesteps);
        const expected = mixture.idealNoise(xt, timesteps.map((t) => alphaBarTable[t]));
        expect(got.shape).toEqual(shape);
        for (let i = 0; i < got.size; i++) worst = Math.max(worst, Math.abs(got.data[i] - expected.data[i]));
      }
      expect(worst).toBeLessThan(5e-4);
      unet.dispose();
    }
  });

  test("a second build comes from the cache folder, byte for byte", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ddimlab-builtin-"));
    try {
      const first = await builtinModel("ring2d", { cacheDir: dir });
      expect(readdirSync(dir).some((f) => f.startsWith("ring2d-") && f.endsWith(".onnx"))).toBe(true);
      const second = await builtinModel("builtin:ring2d", { cacheDir: dir });
      expect(Buffer.from(second.onnx).equals(Buffer.from(first.onnx))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(existsSync(dir)).toBe(false);
  });

  describe("the cache is verified, rebuilt when damaged, and written atomically (a private cache folder)", () => {
    const cacheFiles = (dir: string, name: string) => {
      const graph = readdirSync(dir).find((f) => f.startsWith(`${name}-`) && f.endsWith(".onnx"));
      if (graph === undefined) throw new Error(`no cached ${name} graph in ${dir}`);
      return { graph: join(dir, graph), sidecar: join(dir, `${graph}.json`) };
    };
    const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

    test("a bit flip, a truncation, a garbled sidecar or a sidecar for another key each cost a rebuild, not wrong bytes", async () => {
      const truth = (await builtinModel("ring2d", { cacheDir: false })).onnx;
      const dir = mkdtempSync(join(tmpdir(), "ddimlab-builtin-"));
      try {
        await builtinModel("ring2d", { cacheDir: dir });
        const { graph, sidecar } = cacheFiles(dir, "ring2d");
        expect(JSON.parse(readFileSync(sidecar, "utf8")).sha256).toBe(createHash("sha256").update(truth).digest("hex"));
        const damages: [string, () => void][] = [
          ["one bit flipped in the graph", () => {
            const bytes = new Uint8Array(readFileSync(graph));
            bytes[bytes.length >> 1] ^= 0x10;
            writeFileSync(graph, bytes);
          }],
          ["the graph cut short", () => writeFileSync(graph, readFileSync(graph).subarray(0, 1000))],
          ["the sidecar garbled", () => writeFileSync(sidecar, "{not json")],
          ["the sidecar missing", () => rmSync(sidecar)],
          ["the sidecar for another key", () => {
            const meta = JSON.parse(readFileSync(sidecar, "utf8"));
            writeFileSync(sidecar, JSON.stringify({ ...meta, key: "0".repeat(64) }));
          }],
        ];
        for (const [what, damage] of damages) {
          damage();
          const model = await builtinModel("ring2d", { cacheDir: dir });
          expect(`${what}: ${sameBytes(model.onnx, truth)}`).toBe(`${what}: true`);
          // and the cache is repaired: the next load reads intact bytes
          expect(sameBytes(new Uint8Array(readFileSync(graph)), truth)).toBe(true);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    test("a graph swapped in from another model (with its sidecar) is not used", async () => {
      const truth = (await builtinModel("ring2d", { cacheDir: false })).onnx;
      const dir = mkdtempSync(join(tmpdir(), "ddimlab-builtin-"));
      try {
        await builtinModel("ring2d", { cacheDir: dir });
        const grid = await builtinModel("grid2d", { cacheDir: dir });
        const ring = cacheFiles(dir, "ring2d");
        const other = cacheFiles(dir, "grid2d");
        copyFileSync(other.graph, ring.graph);
        copyFileSync(other.sidecar, ring.sidecar);
        const model = await builtinModel("ring2d", { cacheDir: dir });
        expect(sameBytes(model.onnx, truth)).toBe(true);
        expect(sameBytes(model.onnx, grid.onnx)).toBe(false);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    test("three processes filling one cache at once leave one intact graph and no temporary files", async () => {
      const truth = (await builtinModel("moons2d", { cacheDir: false })).onnx;
      const dir = mkdtempSync(join(tmpdir(), "ddimlab-builtin-"));
      try {
        const module = new URL("../../lib/models/builtin_models.ts", import.meta.url).pathname;
        const script = `import { builtinModel } from ${JSON.stringify(module)};\n` +
          `for (let i = 0; i < 3; i++) await builtinModel("moons2d", { cacheDir: ${JSON.stringify(dir)} });`;
        const runs = [0, 1, 2].map(() =>
          new Promise<number>((resolve) => {
            const child = spawn(process.execPath, ["-e", script], { stdio: "ignore" });
            child.on("exit", (code) => resolve(code ?? -1));
          })
        );
        expect(await Promise.all(runs)).toEqual([0, 0, 0]);
        expect(readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
        expect(readdirSync(dir).filter((f) => f.endsWith(".onnx")).length).toBe(1);
        expect(sameBytes(new Uint8Array(readFileSync(cacheFiles(dir, "moons2d").graph)), truth)).toBe(true);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }, 120_000);
  });

  test("gaussian32: DDIM eta = 0 with 1000 steps lands within half an 8-bit grey level (RMS 3.9e-3) of the exact ODE solution, and the error falls with steps", async () => {
    const unet = await loadUNet("builtin:gaussian32", { cacheDir: false });
    // clip_sample off: the exact ODE has no clipping
    const scheduler = DDIMScheduler.fromConfig({ ...BUILTIN_SCHEDULER_CONFIG, clip_sample: false });
    const xT = new TorchGenerator(0).randn([4, 3, 32, 32]);
    const errors: number[] = [];
    for (const steps of [20, 100, 1000]) {
      scheduler.setTimesteps(steps);
      let x = xT;
      for (const t of scheduler.timesteps) x = scheduler.step(await unet.predict(x, t), t, x, { eta: 0 }).prevSample;
      // DDIM starts at x_T with T = timesteps[0] and ends at alphaBar = 1 (set_alpha_to_one)
      const exact = gaussian32OdeSolution(xT, { t: scheduler.timesteps[0], s: -1 });
      errors.push(rms(x.data, exact.data));
    }
    expect(errors[0]).toBeGreaterThan(errors[1]);
    expect(errors[1]).toBeGreaterThan(errors[2]);
    // half an 8-bit grey level: (2 / 255) / 2 in [-1, 1] units
    expect(errors[2]).toBeLessThan(1 / 255);
    unet.dispose();
  });

  test("ring2d: 1000-step DDPM samples have the mixture's component weights and means within 4 standard errors", async () => {
    const { unet, mixture } = {
      unet: await loadUNet("builtin:ring2d", { cacheDir: false }),
      mixture: builtinMixture("ring2d"),
    };
    const scheduler = DDPMScheduler.fromConfig((await builtinModel("ring2d", { cacheDir: false })).schedulerConfig);
    scheduler.setTimesteps(1000);
    const n = 2000;
    const generator = new TorchGenerator(2024);
    let x = generator.randn([n, 2, 1, 1]);
    for (const t of scheduler.timesteps) x = scheduler.step(await unet.predict(x, t), t, x, { generator }).prevSample;
    unet.dispose();
    // Assign each sample to its most probable component under the data distribution (alphaBar = 1). The centres
    // are 0.54 apart, 9 standard deviations, so the assignment's truncation of the tails is negligible.
    const weights = mixture.posteriorWeights(x.reshape([n, 2]), 1);
    const K = mixture.count;
    const counts = new Array<number>(K).fill(0);
    const sums = Array.from({ length: K }, () => [0, 0]);
    for (let b = 0; b < n; b++) {
      const row = Array.from(weights.subarray(b * K, (b + 1) * K));
      const k = row.indexOf(Math.max(...row));
      counts[k]++;
      sums[k][0] += x.data[2 * b];
      sums[k][1] += x.data[2 * b + 1];
    }
    const sd = Math.sqrt(mixture.noiseVariances[0]);
    for (let k = 0; k < K; k++) {
      const p = mixture.weights[k];
      // binomial standard error of a proportion, sqrt(p (1 - p) / n)
      expect(Math.abs(counts[k] / n - p)).toBeLessThan(4 * Math.sqrt((p * (1 - p)) / n));
      // standard error of a component mean, sd / sqrt(n_k), per coordinate
      for (const c of [0, 1]) {
        expect(Math.abs(sums[k][c] / counts[k] - mixture.means[2 * k + c])).toBeLessThan(4 * sd / Math.sqrt(counts[k]));
      }
    }
  });

  /** DDIM inversion to x_T and DDIM eta = 0 back, both with `steps` steps; returns the MSE per dimension on [0, 1]. */
  async function roundTrip(name: string, images: Tensor, steps: number): Promise<number> {
    const unet = await loadUNet(`builtin:${name}`, { cacheDir: false });
    const config = { ...BUILTIN_SCHEDULER_CONFIG, clip_sample: false };
    const inverse = DDIMInverseScheduler.fromConfig(config);
    const forward = DDIMScheduler.fromConfig(config);
    inverse.setTimesteps(steps);
    forward.setTimesteps(steps);
    let x = images;
    for (const t of inverse.timesteps) x = inverse.step(await unet.predict(x, t), t, x).prevSample;
    for (const t of forward.timesteps) x = forward.step(await unet.predict(x, t), t, x, { eta: 0 }).prevSample;
    unet.dispose();
    let sum = 0;
    for (let i = 0; i < x.size; i++) sum += ((x.data[i] - images.data[i]) / 2) ** 2;
    return sum / x.size;
  }

  // Reference: the DDIM paper's Table 2 (arXiv 2010.02502), CIFAR-10 reconstruction error, per-dimension MSE on
  // [0, 1]: 0.0004 at S = 200 steps. An exact model must do at least as well as the trained one there.
  test("DDIM inversion of images drawn from shapes32's data distribution returns them within the paper's 200-step error", async () => {
    const images = builtinMixture("shapes32").sample(2, new TorchGenerator(3)).samples.reshape([2, 3, 32, 32]);
    expect(await roundTrip("shapes32", images, 200)).toBeLessThan(0.0004);
  });

  test("DDIM inversion of canvas-drawn shapes through gaussian32 returns them within the paper's 200-step error", async () => {
    const { images } = drawShapes(2, { seed: 500 });
    expect(await roundTrip("gaussian32", images, 200)).toBeLessThan(0.0004);
  });
});
