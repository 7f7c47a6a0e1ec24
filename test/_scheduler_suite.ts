/**
 * The conformance suite every scheduler runs (like diffusers' `SchedulerCommonTest`): API shape, the config round trip,
 * output shapes, and the errors the project promises for bad input.
 *
 * @module
 */
import { describe, expect, test } from "bun:test";
import { Tensor } from "../lib/core/tensor.ts";
import { TorchGenerator } from "../lib/core/torch_generator.ts";
import { fixtureSample, standInModel } from "./_fixtures.ts";

/** What the suite needs to know about one scheduler class. */
export interface SchedulerUnderTest {
  name: string;
  // deno-lint-ignore no-explicit-any
  fromConfig(config: Record<string, unknown>): any;
  /** Whether `timesteps` ascend (the inverse scheduler) rather than descend. */
  ascending?: boolean;
}

/** Run the shared suite for one scheduler class. */
export function schedulerSuite(s: SchedulerUnderTest): void {
  describe(`${s.name} conformance`, () => {
    test(`${s.name} exposes the diffusers-like API`, () => {
      const scheduler = s.fromConfig({});
      for (
        const method of [
          "setTimesteps",
          "step",
          "addNoise",
          "getVelocity",
          "previousTimestep",
          "toConfig",
          "scaleModelInput",
        ]
      ) {
        expect(typeof scheduler[method]).toBe("function");
      }
      expect(scheduler.numTrainTimesteps).toBe(1000);
      expect(scheduler.alphasCumprod).toBeInstanceOf(Float32Array);
      expect(scheduler.alphasCumprod.length).toBe(1000);
      expect(scheduler.initNoiseSigma).toBe(1);
      expect(scheduler.config.beta_schedule).toBe("linear");
    });

    test(`${s.name} toConfig round-trips through fromConfig and keeps unknown keys`, () => {
      const a = s.fromConfig({
        num_train_timesteps: 500,
        beta_end: 0.03,
        clip_sample: false,
        _class_name: "X",
        custom: 7,
      });
      const config = a.toConfig();
      expect(config.num_train_timesteps).toBe(500);
      expect(config._class_name).toBe("X");
      expect(config.custom).toBe(7);
      const b = s.fromConfig(config);
      expect(b.toConfig()).toEqual(config);
      expect(Array.from(b.alphasCumprod)).toEqual(Array.from(a.alphasCumprod));
      config.beta_end = 0.5; // the copy is detached
      expect(a.config.beta_end).toBe(0.03);
    });

    test(`${s.name} null config values take the defaults, as diffusers' saved configs use them`, () => {
      expect(s.fromConfig({ trained_betas: null, steps_offset: null }).config.steps_offset).toBe(0);
    });

    test(`${s.name} step keeps the sample's shape`, () => {
      const scheduler = s.fromConfig({});
      scheduler.setTimesteps(5);
      for (const shape of [[1, 3, 4, 4], [2, 1, 3, 5], [4, 2]]) {
        const x = fixtureSample(shape);
        const t = scheduler.timesteps[1];
        const out = scheduler.step(standInModel(x, t), t, x, { generator: new TorchGenerator(0) });
        expect(out.prevSample.shape).toEqual(shape);
        expect(out.predOriginalSample.shape).toEqual(shape);
      }
    });

    test(`${s.name} timesteps are strictly monotone integers in [0, T)`, () => {
      for (
        const spacing of s.ascending ? ["leading", "trailing", "quad"] : ["leading", "trailing", "linspace", "quad"]
      ) {
        const scheduler = s.fromConfig({ timestep_spacing: spacing });
        scheduler.setTimesteps(20);
        const ts: number[] = [...scheduler.timesteps];
        expect(ts.length).toBe(20);
        for (let k = 1; k < ts.length; k++) expect(s.ascending ? ts[k] > ts[k - 1] : ts[k] < ts[k - 1]).toBe(true);
        for (const t of ts) expect(Number.isInteger(t) && t >= 0 && t < 1000).toBe(true);
      }
    });

    test(`${s.name} addNoise at t = 0 barely changes x0, and getVelocity is its rotation`, () => {
      const scheduler = s.fromConfig({});
      const x0 = fixtureSample([2, 3, 4, 4]);
      const eps = new Tensor(x0.data.map((v) => Math.cos(7 * v)), x0.shape);
      const xt = scheduler.addNoise(x0, eps, [0, 999]);
      const v = scheduler.getVelocity(x0, eps, [0, 999]);
      // x_t = a x0 + b eps and v = a eps - b x0 with a^2 + b^2 = 1, so a x_t - b v = x0 (the identity of arXiv 2202.00512)
      const a = [Math.sqrt(scheduler.alphasCumprod[0]), Math.sqrt(scheduler.alphasCumprod[999])];
      for (let i = 0; i < x0.size; i++) {
        const item = i < 48 ? 0 : 1;
        const b = Math.sqrt(1 - a[item] ** 2);
        expect(Math.abs(a[item] * xt.data[i] - b * v.data[i] - x0.data[i])).toBeLessThan(1e-5);
      }
    });

    test(`${s.name} refuses more inference steps than training timesteps, and zero or negative steps`, () => {
      const scheduler = s.fromConfig({ num_train_timesteps: 100 });
      expect(() => scheduler.setTimesteps(101)).toThrow(/101.*100/);
      expect(() => scheduler.setTimesteps(0)).toThrow(/positive integer, got 0/);
      expect(() => scheduler.setTimesteps(-3)).toThrow(/got -3/);
      expect(() => scheduler.setTimesteps(2.5)).toThrow(/got 2.5/);
    });

    test(`${s.name} refuses a steps_offset that pushes a timestep past T at setTimesteps, not at a later step`, () => {
      // leading spacing, T = 1000, n = 1000: timesteps k + 1 for k = 0..999 reach 1000 (diffusers indexes past the end)
      const scheduler = s.fromConfig({ steps_offset: 1 });
      expect(() => scheduler.setTimesteps(1000)).toThrow(
        "steps_offset 1 pushes timestep 1000 of 1000 inference steps past the last training timestep 999",
      );
      scheduler.setTimesteps(999); // 999 steps: ratio 1, largest 998 + 1 = 999, fine
      expect(Math.max(...scheduler.timesteps)).toBe(999);
    });

    test(`${s.name} refuses beta_start or beta_end outside (0, 1) at construction, naming the key and value`, () => {
      for (const schedule of ["linear", "scaled_linear", "sigmoid"]) {
        for (
          const [key, value] of [["beta_start", 0], ["beta_start", -0.1], ["beta_end", 1], ["beta_end", 1.5]] as const
        ) {
          expect(() => s.fromConfig({ beta_schedule: schedule, [key]: value })).toThrow(
            `config ${key} must lie strictly between 0 and 1 for the ${schedule} beta schedule, got ${value}`,
          );
        }
      }
      // squaredcos_cap_v2 and trained betas do not use them
      expect(s.fromConfig({ beta_schedule: "squaredcos_cap_v2", beta_end: 1 }).numTrainTimesteps).toBe(1000);
    });

    test(`${s.name} refuses num_train_timesteps above the limit before building any table`, () => {
      expect(() => s.fromConfig({ num_train_timesteps: 1e8 })).toThrow(
        "config num_train_timesteps 100000000 is more than the limit of 100000",
      );
      expect(s.fromConfig({ num_train_timesteps: 4000 }).alphasCumprod.length).toBe(4000);
    });

    test(`${s.name} refuses unknown schedule, spacing and prediction type, naming the value`, () => {
      expect(() => s.fromConfig({ beta_schedule: "cosine" })).toThrow(/"cosine"/);
      expect(() => s.fromConfig({ timestep_spacing: "uniform" })).toThrow(/"uniform"/);
      expect(() => s.fromConfig({ prediction_type: "noise" })).toThrow(/"noise"/);
      expect(() => s.fromConfig({ num_train_timesteps: 0 })).toThrow(/num_train_timesteps/);
      expect(() => s.fromConfig({ clip_sample: "yes" })).toThrow(/clip_sample/);
      expect(() => s.fromConfig({ trained_betas: [0.1, 0.2] })).toThrow(/2 entries/);
    });

    test(`${s.name} refuses shapes that disagree and timesteps not in the schedule`, () => {
      const scheduler = s.fromConfig({});
      scheduler.setTimesteps(10);
      const x = fixtureSample([1, 3, 4, 4]);
      const t = scheduler.timesteps[0];
      expect(() => scheduler.step(fixtureSample([1, 3, 4, 5]), t, x)).toThrow(/shape \[1, 3, 4, 5\].*\[1, 3, 4, 4\]/);
      expect(() => scheduler.step(standInModel(x, t), t + 1, x)).toThrow(
        new RegExp(`timestep ${t + 1} is not in the schedule`),
      );
      expect(() => scheduler.step(standInModel(x, t), 1000, x)).toThrow(/1000 is not an integer training timestep/);
      expect(() => scheduler.addNoise(x, fixtureSample([1, 3, 4, 5]), 10)).toThrow(/shape/);
      expect(() => scheduler.addNoise(x, x, [1, 2, 3])).toThrow(/3 timesteps for a batch of 1/);
      expect(() => scheduler.addNoise(x, x, 1000)).toThrow(/1000/);
    });

    test(`${s.name} refuses a non-finite model output, saying where`, () => {
      const scheduler = s.fromConfig({});
      scheduler.setTimesteps(10);
      const x = fixtureSample([1, 3, 4, 4]);
      const t = scheduler.timesteps[2];
      const bad = standInModel(x, t);
      bad.data[17] = NaN;
      expect(() => scheduler.step(bad, t, x, { generator: new TorchGenerator(0) })).toThrow(
        /modelOutput is not finite: element 17 \(index \[0, 1, 0, 1\]\) is NaN/,
      );
      bad.data[17] = Infinity;
      expect(() => scheduler.step(bad, t, x, { generator: new TorchGenerator(0) })).toThrow(/element 17/);
    });

    test(`${s.name} custom timestep lists must be strictly monotone and inside [0, T)`, () => {
      const scheduler = s.fromConfig({});
      const good = s.ascending ? [0, 10, 500] : [500, 10, 0];
      scheduler.setTimesteps(good);
      expect([...scheduler.timesteps]).toEqual(good);
      expect(() => scheduler.setTimesteps(s.ascending ? [0, 0, 5] : [5, 5, 0])).toThrow(/strictly/);
      expect(() => scheduler.setTimesteps(s.ascending ? [0, 1000] : [1000, 0])).toThrow(/1000/);
    });
  });
}
