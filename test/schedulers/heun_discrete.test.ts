import { describe, expect, test } from "bun:test";
import { HeunDiscreteScheduler } from "../../lib/schedulers/heun_discrete.ts";
import { EulerDiscreteScheduler } from "../../lib/schedulers/euler_discrete.ts";
import { schedulerFromConfig } from "../../lib/schedulers/registry.ts";
import { Tensor } from "../../lib/core/tensor.ts";
import { fixtureSample, maxAbsDiff, standInModel } from "../_fixtures.ts";
import { sigmaFullLoop, sumAndMeanAbs } from "../_diffusers_dummies.ts";

/** diffusers' HeunDiscreteSchedulerTest.get_scheduler_config. */
const TEST_CONFIG = { num_train_timesteps: 1100, beta_start: 0.0001, beta_end: 0.02, beta_schedule: "linear" };

const scaled = (x: Tensor, s: number) => new Tensor(x.data.map((v) => v * s), x.shape);

/** diffusers' full_loop (Heun draws no noise). */
const fullLoop = sigmaFullLoop;

describe("HeunDiscreteScheduler against diffusers' published tests", () => {
  // diffusers tests/schedulers/test_scheduler_heun.py (HeunDiscreteSchedulerTest, n = 10, T = 1100), with the
  // tolerances used there (1e-2 on the sum; 1e-3 on the mean, 1e-2 for the Karras mean)
  const published: [string, Record<string, unknown>, boolean, number, number, number][] = [
    ["test_full_loop_no_noise and test_full_loop_device", {}, false, 0.1233, 0.0002, 1e-3],
    ["test_full_loop_with_v_prediction", { prediction_type: "v_prediction" }, false, 4.6934e-07, 6.1112e-10, 1e-3],
    ["test_full_loop_device_karras_sigmas", { use_karras_sigmas: true }, false, 0.00015, 1.9869554535034695e-07, 1e-2],
    ["test_full_loop_with_noise", {}, true, 75074.8906, 97.7538, 1e-3],
  ];
  for (const [name, overrides, withNoise, sum, mean, meanTolerance] of published) {
    test(`diffusers' ${name}: sum |x| ${sum}, mean ${mean}`, () => {
      const scheduler = HeunDiscreteScheduler.fromConfig({ ...TEST_CONFIG, ...overrides });
      scheduler.setTimesteps(10);
      const result = sumAndMeanAbs(fullLoop(scheduler, { withNoise }));
      expect(Math.abs(result.sum - sum)).toBeLessThan(1e-2);
      expect(Math.abs(result.mean - mean)).toBeLessThan(meanTolerance);
    });
  }

  test("diffusers' no-noise loop matches its printed sum 0.1233 to 1e-4, not only to the 1e-2 tolerance", () => {
    // the loop ends near 0, so diffusers' 1e-2 tolerance alone would accept almost anything small
    const scheduler = HeunDiscreteScheduler.fromConfig(TEST_CONFIG);
    scheduler.setTimesteps(10);
    expect(Math.abs(sumAndMeanAbs(fullLoop(scheduler)).sum - 0.1233)).toBeLessThan(1e-4);
  });

  test("diffusers' test_custom_timesteps: the deduplicated schedule given as a list gives the same loop", () => {
    for (const prediction_type of ["epsilon", "sample", "v_prediction"]) {
      for (const timestep_spacing of ["linspace", "leading"]) {
        const config = { ...TEST_CONFIG, prediction_type, timestep_spacing };
        const a = HeunDiscreteScheduler.fromConfig(config);
        a.setTimesteps(10);
        // timesteps[:1] + timesteps[1::2]
        const list = [a.timesteps[0], ...a.timesteps.filter((_, k) => k % 2 === 1)];
        const b = HeunDiscreteScheduler.fromConfig(config);
        b.setTimesteps(list);
        const [viaCount, viaList] = [fullLoop(a).data, fullLoop(b).data];
        expect(viaCount.reduce((s, v, i) => s + Math.abs(v - viaList[i]), 0)).toBeLessThan(1e-5);
      }
    }
  });
});

describe("HeunDiscreteScheduler schedule and state", () => {
  test("every inner timestep and sigma is listed twice: 3 steps of 1000 are 5 model calls", () => {
    const scheduler = HeunDiscreteScheduler.fromConfig({});
    scheduler.setTimesteps(3);
    // linspace(0, 999, 3) = [0, 499.5, 999], reversed, inner ones repeated
    expect([...scheduler.timesteps]).toEqual([999, 499.5, 499.5, 0, 0]);
    const s = scheduler.sigmas;
    expect(s.length).toBe(6);
    expect([s[1], s[3], s[5]]).toEqual([s[2], s[4], 0]);
    expect(scheduler.order).toBe(2);
    expect(scheduler.numInferenceSteps).toBe(3);
    expect(scheduler.initNoiseSigma).toBe(s[0]);
  });

  test("a step pair is Karras et al.'s Algorithm 1: Euler, then the average of the two slopes from the kept x", () => {
    const heun = HeunDiscreteScheduler.fromConfig({});
    heun.setTimesteps(4);
    const model = (x: Tensor, t: number) => standInModel(heun.scaleModelInput(x, t), t);
    const [t0, t1] = heun.timesteps;
    const x = scaled(fixtureSample([1, 3, 4, 4]), heun.initNoiseSigma);
    const eps0 = model(x, t0);
    const first = heun.step(eps0, t0, x);
    expect(heun.stateInFirstOrder).toBe(false);
    const eps1 = model(first.prevSample, t1);
    const second = heun.step(eps1, t1, first.prevSample);
    expect(heun.stateInFirstOrder).toBe(true);
    const [sigma0, sigma1] = [heun.sigmas[0], heun.sigmas[1]];
    for (let i = 0; i < x.size; i++) {
      // D = x - sigma eps, d = (x - D) / sigma = eps: x~ = x + (sigma1 - sigma0) eps0, x1 = x + (sigma1 - sigma0) mean
      const euler = x.data[i] + (sigma1 - sigma0) * eps0.data[i];
      expect(Math.abs(first.prevSample.data[i] - euler)).toBeLessThan(1e-5 * (1 + Math.abs(euler)));
      const expected = x.data[i] + (sigma1 - sigma0) * (eps0.data[i] + eps1.data[i]) / 2;
      expect(Math.abs(second.prevSample.data[i] - expected)).toBeLessThan(1e-5 * (1 + Math.abs(expected)));
    }
  });

  test("Heun's first stage is the Euler scheduler's step, and its last step (to sigma = 0) is Euler's too", () => {
    const config = { timestep_spacing: "leading" };
    const heun = HeunDiscreteScheduler.fromConfig(config);
    const euler = EulerDiscreteScheduler.fromConfig({ ...config, beta_start: 0.00085, beta_end: 0.012 });
    heun.setTimesteps(5);
    euler.setTimesteps(5);
    const x = fixtureSample([1, 3, 4, 4]);
    const tHeun = heun.timesteps[0];
    const tEuler = euler.timesteps[0];
    expect(tHeun).toBe(tEuler);
    const a = heun.step(standInModel(x, tHeun), tHeun, x).prevSample;
    const b = euler.step(standInModel(x, tEuler), tEuler, x).prevSample;
    expect(maxAbsDiff(a.data, b.data)).toBe(0);
  });

  test("on a linear ODE with a known solution Heun converges with order 2 and Euler with order 1", () => {
    // a model returning its input, eps = x / sqrt(sigma^2 + 1), makes the slope d = (x - D) / sigma = eps, so
    // dx/dsigma = x / sqrt(sigma^2 + 1), solved by x(sigma) = x(sigma_0) exp(asinh sigma - asinh sigma_0); compared at
    // sigma_{n-1}, before the last call (both schedulers end with one Euler step to sigma = 0)
    const errorAt = (scheduler: HeunDiscreteScheduler | EulerDiscreteScheduler, n: number) => {
      scheduler.setTimesteps(n);
      let x = Tensor.from([1], [1, 1]);
      for (const t of scheduler.timesteps.slice(0, -1)) {
        x = scheduler.step(scheduler.scaleModelInput(x, t), t, x).prevSample;
      }
      const end = scheduler.sigmas[scheduler.sigmas.length - 2];
      return Math.abs(x.data[0] - Math.exp(Math.asinh(end) - Math.asinh(scheduler.sigmas[0])));
    };
    const heun = () => HeunDiscreteScheduler.fromConfig({});
    const euler = () => EulerDiscreteScheduler.fromConfig({ beta_start: 0.00085, beta_end: 0.012 });
    // doubling n divides the error by about 2^order (measured: Heun 4.7, Euler 2.1)
    expect(errorAt(heun(), 10) / errorAt(heun(), 20)).toBeGreaterThan(3.5);
    const eulerRatio = errorAt(euler(), 10) / errorAt(euler(), 20);
    expect(eulerRatio).toBeGreaterThan(1.7);
    expect(eulerRatio).toBeLessThan(2.5);
  });

  test("the registry picks it by _class_name and toConfig round-trips", () => {
    const scheduler = schedulerFromConfig({ _class_name: "HeunDiscreteScheduler", clip_sample: true });
    expect(scheduler).toBeInstanceOf(HeunDiscreteScheduler);
    const config = scheduler.toConfig();
    expect(config).toMatchObject({ beta_start: 0.00085, beta_end: 0.012, clip_sample: true });
    expect(HeunDiscreteScheduler.fromConfig(config).toConfig()).toEqual(config);
  });

  test("clip_sample clamps the predicted x0 to the range", () => {
    const scheduler = HeunDiscreteScheduler.fromConfig({ clip_sample: true, clip_sample_range: 0.5 });
    scheduler.setTimesteps(4);
    const x = scaled(fixtureSample([1, 3, 4, 4]), 30);
    const t = scheduler.timesteps[0];
    const out = scheduler.step(standInModel(x, t), t, x);
    expect(Math.max(...out.predOriginalSample.data.map(Math.abs))).toBe(0.5);
  });
});

describe("HeunDiscreteScheduler refuses bad input", () => {
  test("unknown config values and unsupported options, naming them", () => {
    expect(() => HeunDiscreteScheduler.fromConfig({ beta_schedule: "exp" })).toThrow(/"exp"/);
    expect(() => HeunDiscreteScheduler.fromConfig({ timestep_spacing: "quad" })).toThrow(/"quad"/);
    expect(() => HeunDiscreteScheduler.fromConfig({ prediction_type: "noise" })).toThrow(/"noise"/);
    expect(() => HeunDiscreteScheduler.fromConfig({ clip_sample: "no" })).toThrow(/clip_sample/);
    expect(() => HeunDiscreteScheduler.fromConfig({ use_beta_sigmas: true })).toThrow(
      /use_beta_sigmas is not supported/,
    );
  });

  test("steps out of range", () => {
    const scheduler = HeunDiscreteScheduler.fromConfig({ num_train_timesteps: 100 });
    expect(() => scheduler.setTimesteps(101)).toThrow(/101.*100/);
    expect(() => scheduler.setTimesteps(-1)).toThrow(/got -1/);
    expect(() => scheduler.setTimesteps([10, 10])).toThrow(/strictly descending/);
  });

  test("step before setTimesteps, out of order, wrong shape, non-finite output (state kept)", () => {
    const scheduler = HeunDiscreteScheduler.fromConfig({});
    const x = fixtureSample([1, 3, 4, 4]);
    expect(() => scheduler.step(x, 999, x)).toThrow("Call setTimesteps(n) before step");
    scheduler.setTimesteps(4);
    const [t0, t1] = scheduler.timesteps;
    expect(() => scheduler.step(fixtureSample([2, 3, 4, 4]), t0, x)).toThrow(/shape \[2, 3, 4, 4\]/);
    const bad = standInModel(x, t0);
    bad.data[9] = NaN;
    expect(() => scheduler.step(bad, t0, x)).toThrow(/modelOutput is not finite: element 9/);
    expect(scheduler.stateInFirstOrder).toBe(true);
    scheduler.step(standInModel(x, t0), t0, x);
    expect(() => scheduler.step(x, t0, x)).toThrow(`expected timestep ${t1} (step 1 of its schedule), got ${t0}`);
  });
});
