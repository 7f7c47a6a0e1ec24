import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DDIMScheduler } from "../../lib/schedulers/ddim.ts";
import { DDIMPipeline } from "../../lib/pipelines/ddim_pipeline.ts";
import { modelFromFunction } from "../../lib/core/model.ts";
import {
  checkEta,
  checkInferenceSteps,
  latentShape,
  loadPipelineParts,
  resolveGenerator,
  samplingLoop,
  withClipSample,
} from "../../lib/pipelines/sampling.ts";
import { Tensor } from "../../lib/core/tensor.ts";
import { TorchGenerator } from "../../lib/core/torch_generator.ts";
import { countingZeroModel, fixtureSample, maxAbsDiff, schedulerFixtures, standInUNet } from "../_fixtures.ts";

describe("samplingLoop", () => {
  // test/fixtures/diffusers-schedulers.json, loops: DDIM with clip_sample false, 10 steps, eta 0, from the
  // fixture's sample, no noise
  test("yields { i, t, x, predX0 } per step and ends where diffusers' DDIM loop ends", async () => {
    const loop = schedulerFixtures().loops.find((l) =>
      l.scheduler === "ddim" && l.n === 10 && l.eta === 0 && JSON.stringify(l.config) === '{"clip_sample":false}'
    )!;
    const scheduler = DDIMScheduler.fromConfig(loop.config);
    scheduler.setTimesteps(loop.n);
    const steps = [];
    const generator = samplingLoop(standInUNet(), scheduler, { sample: fixtureSample(), stepOptions: { eta: 0 } });
    let result = await generator.next();
    while (!result.done) {
      steps.push(result.value);
      result = await generator.next();
    }
    expect(steps.map((s) => s.i)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(steps.map((s) => s.t)).toEqual([...scheduler.timesteps]);
    expect(result.value.data).toEqual(steps[9].x.data);
    expect(maxAbsDiff(result.value.data, loop.final)).toBeLessThan(1e-4);
    const sums = steps.map((s) => s.predX0.data.reduce((a, b) => a + b, 0));
    expect(maxAbsDiff(sums, loop.pred_original_sample_sums!)).toBeLessThan(1e-3);
  });
});

describe("option checks", () => {
  test("checkInferenceSteps accepts 1..T and names T and the value otherwise", () => {
    const scheduler = DDIMScheduler.fromConfig({ num_train_timesteps: 100 });
    expect(() => checkInferenceSteps(1, scheduler)).not.toThrow();
    expect(() => checkInferenceSteps(100, scheduler)).not.toThrow();
    expect(() => checkInferenceSteps(101, scheduler)).toThrow(/100 training timesteps, got 101/);
    expect(() => checkInferenceSteps(-3, scheduler)).toThrow(/got -3/);
  });

  test("checkEta accepts [0, 1] and refuses negatives, values above 1, huge values and NaN", () => {
    expect(() => checkEta(0)).not.toThrow();
    expect(() => checkEta(1)).not.toThrow();
    expect(() => checkEta(-1)).toThrow(/got -1/);
    // above 1, sigma_t(eta)^2 > 1 - alphaBarPrev for large skips (eq. (12)'s direction term is then imaginary)
    expect(() => checkEta(2)).toThrow(/from 0 to 1 .*got 2$/);
    expect(() => checkEta(1e308)).toThrow(/got 1e\+308/);
    expect(() => checkEta(Infinity)).toThrow(/got Infinity/);
    expect(() => checkEta(Number.NaN)).toThrow(/got NaN/);
  });

  test("latentShape builds [batch, inChannels, height, width], non-square sizes included", () => {
    expect(latentShape(modelFromFunction((x) => x, { sampleSize: [8, 12], inChannels: 1 }), 2)).toEqual([2, 1, 8, 12]);
    expect(() => latentShape(standInUNet(), 0)).toThrow(/batchSize must be a positive integer, got 0/);
  });

  test(
    "a generator with randn but no fillRandn is refused up front by name, and its type does not compile",
    async () => {
      const onlyRandn = { randn: (shape: readonly number[]) => new TorchGenerator(0).randn(shape) };
      // deno-lint-ignore no-explicit-any
      expect(() => resolveGenerator({ generator: onlyRandn as any })).toThrow(
        "generator must have randn(shape) and fillRandn(data) methods, as TorchGenerator does; it lacks fillRandn",
      );
      const { unet, calls } = countingZeroModel(4);
      const pipe = new DDIMPipeline({ unet });
      // deno-lint-ignore no-explicit-any
      await expect(pipe.sample({ generator: onlyRandn as any, eta: 1, numInferenceSteps: 5 })).rejects.toThrow(
        /lacks fillRandn/,
      );
      expect(calls()).toBe(0);
      // The type says so too: Deno's type checker rejects the same call without the cast.
      const root = new URL("../../", import.meta.url).pathname;
      const file = join(root, "test", "pipelines", `.generator-type-${process.pid}.ts`);
      writeFileSync(
        file,
        `import { DDIMPipeline, modelFromFunction, Tensor } from "../../mod.ts";\n` +
          `const pipe = new DDIMPipeline({ unet: modelFromFunction((x) => Tensor.zeros(x.shape), { sampleSize: 4 }) });\n` +
          `await pipe.sample({ generator: { randn: (shape: readonly number[]) => Tensor.zeros(shape) } });\n`,
      );
      try {
        const run = spawnSync(join(root, "node_modules", ".bin", "deno"), ["check", file], {
          encoding: "utf8",
          cwd: root,
        });
        expect(run.status).not.toBe(0);
        expect(`${run.stdout}${run.stderr}`).toMatch(/fillRandn/);
      } finally {
        rmSync(file, { force: true });
      }
    },
    300_000,
  );

  test("resolveGenerator prefers the caller's generator, else seeds a TorchGenerator", () => {
    const mine = new TorchGenerator(3);
    expect(resolveGenerator({ generator: mine, seed: 9 }).generator).toBe(mine);
    const { generator, seed } = resolveGenerator({ seed: 9 });
    expect(seed).toBe(9);
    expect(generator.randn([4]).data).toEqual(new TorchGenerator(9).randn([4]).data);
    expect(() => resolveGenerator({ seed: -1 })).toThrow(/got -1/);
  });

  test("withClipSample copies a scheduler with clip_sample changed and the rest kept", () => {
    const original = DDIMScheduler.fromConfig({ beta_end: 0.015 });
    const copy = withClipSample(original, false);
    expect(copy).toBeInstanceOf(DDIMScheduler);
    expect(copy).not.toBe(original);
    expect((copy.config as { clip_sample: boolean }).clip_sample).toBe(false);
    expect((copy.config as { beta_end: number }).beta_end).toBe(0.015);
  });
});

describe("loadPipelineParts", () => {
  test("a builtin brings its scheduler; a bare .onnx file brings none; a missing path is named", async () => {
    const builtin = await loadPipelineParts("builtin:gaussian32");
    expect(builtin.unet.inChannels).toBe(3);
    expect(builtin.scheduler).toBeDefined();
    const onnx = new URL("../fixtures/unet/tiny-ddpm/model.onnx", import.meta.url).pathname;
    const file = await loadPipelineParts(onnx);
    expect(file.scheduler).toBeUndefined();
    const eps = await file.unet.predict(Tensor.zeros(latentShape(file.unet, 1)), 10);
    expect(eps.shape).toEqual(latentShape(file.unet, 1));
    await expect(loadPipelineParts("/nonexistent/checkpoint")).rejects.toThrow(/\/nonexistent\/checkpoint/);
  });
});

describe("progress", () => {
  test("createProgress draws steps, rate and time left on its stream, and quiet mode draws nothing", async () => {
    const { createProgress } = await import("../../lib/io/progress.ts");
    const written: string[] = [];
    const stream = { write: (chunk: string) => void written.push(chunk), isTTY: false };
    const bar = createProgress({ stream, drawWhenNotTerminal: true });
    bar.start(4, "DDIM eta 0");
    for (let k = 0; k < 4; k++) bar.tick();
    bar.stop();
    const text = written.join("");
    expect(text).toContain("DDIM eta 0");
    expect(text).toContain("4/4 steps");
    expect(text).toMatch(/\d+\.\d steps\/s/);
    expect(text).toContain("left");
    const silent: string[] = [];
    const quiet = createProgress({ quiet: true, stream: { write: (c: string) => void silent.push(c) } });
    quiet.start(3);
    quiet.tick();
    quiet.stop();
    expect(silent).toEqual([]);
  });
});
