import { describe, expect, test } from "bun:test";
import { PNDMScheduler } from "../../lib/schedulers/pndm.ts";
import { DDIMScheduler } from "../../lib/schedulers/ddim.ts";
import { schedulerFromConfig } from "../../lib/schedulers/registry.ts";
import { Tensor } from "../../lib/core/tensor.ts";
import { fixtureSample, maxAbsDiff, standInModel } from "../_fixtures.ts";
import { diffusersDummyModel, diffusersSampleDeter, sumAndMeanAbs } from "../_diffusers_dummies.ts";

/** Run a whole PNDM loop with a model, visiting every entry of `timesteps` once, in order. */
function pndmLoop(scheduler: PNDMScheduler, x: Tensor, model: (x: Tensor, t: number) => Tensor): Tensor {
  for (const t of scheduler.timesteps) x = scheduler.step(model(x, t), t, x).prevSample;
  return x;
}

describe("PNDMScheduler against diffusers' published tests", () => {
  // diffusers tests/schedulers/test_scheduler_pndm.py, PNDMSchedulerTest.full_loop: n = 10, the Runge-Kutta warm-up
  // (prk_timesteps, then plms_timesteps), dummy_model and dummy_sample_deter; tolerances 1e-2 (sum), 1e-3 (mean).
  // With beta_start = 0.01 alpha-bar reaches ~1e-6 at t = 901 and the loop amplifies float32 rounding: rounding the
  // dummy model as diffusers does ((x t) / (t + 1) instead of x (t / (t + 1))) moves the sum by 1.4e-3, so those two
  // reproduce to diffusers' tolerance (|difference| < 5e-3) rather than to the printed digits.
  const published: [string, Record<string, unknown>, number, number][] = [
    ["test_full_loop_no_noise", {}, 198.1318, 0.2580],
    ["test_full_loop_with_v_prediction", { prediction_type: "v_prediction" }, 67.3986, 0.0878],
    ["test_full_loop_with_set_alpha_to_one", { set_alpha_to_one: true, beta_start: 0.01 }, 230.0399, 0.2995],
    ["test_full_loop_with_no_set_alpha_to_one", { set_alpha_to_one: false, beta_start: 0.01 }, 186.9482, 0.2434],
  ];
  for (const [name, overrides, sum, mean] of published) {
    test(`diffusers' ${name}: sum |x| ${sum}, mean ${mean}`, () => {
      const scheduler = PNDMScheduler.fromConfig({
        num_train_timesteps: 1000,
        beta_start: 0.0001,
        beta_end: 0.02,
        beta_schedule: "linear",
        ...overrides,
      });
      scheduler.setTimesteps(10);
      expect(scheduler.prkTimesteps.length).toBe(12);
      const result = sumAndMeanAbs(pndmLoop(scheduler, diffusersSampleDeter(), diffusersDummyModel));
      expect(Math.abs(result.sum - sum)).toBeLessThan(1e-2);
      expect(Math.abs(result.mean - mean)).toBeLessThan(1e-3);
    });
  }

  test("diffusers' test_steps_offset: the Runge-Kutta schedule with steps_offset 1 and 10 steps", () => {
    const scheduler = PNDMScheduler.fromConfig({ steps_offset: 1 });
    scheduler.setTimesteps(10);
    // the tensor test_steps_offset pins
    expect([...scheduler.timesteps]).toEqual(
      [901, 851, 851, 801, 801, 751, 751, 701, 701, 651, 651, 601, 601, 501, 401, 301, 201, 101, 1],
    );
    expect(scheduler.numInferenceSteps).toBe(10);
  });

  test("diffusers' test_pndm_low_inference_steps_prk_validation: the warm-up needs 4 steps, PLMS does not", () => {
    const prk = PNDMScheduler.fromConfig({ skip_prk_steps: false });
    for (const n of [1, 2, 3]) {
      expect(() => prk.setTimesteps(n)).toThrow(`needs numInferenceSteps >= 4, got ${n}`);
    }
    prk.setTimesteps(4);
    const plms = PNDMScheduler.fromConfig({ skip_prk_steps: true });
    for (const n of [1, 2, 3, 4]) plms.setTimesteps(n);
  });

  test("diffusers' test_pow_of_3_inference_steps: 27 steps index alpha-bar with integer timesteps", () => {
    const scheduler = PNDMScheduler.fromConfig({});
    scheduler.setTimesteps(27);
    const x = fixtureSample([1, 3, 4, 4]);
    const residual = new Tensor(x.data.map((v) => 0.1 * v), x.shape);
    let sample = x;
    for (const t of scheduler.prkTimesteps.slice(0, 2)) {
      expect(Number.isInteger(t)).toBe(true);
      sample = scheduler.step(residual, t, sample).prevSample;
    }
    expect(sample.data.every(Number.isFinite)).toBe(true);
  });
});

describe("PNDMScheduler schedule and state", () => {
  test("PLMS repeats the second timestep: [900, 800, 800, 700, ..., 0] for 10 of 1000 (leading)", () => {
    const scheduler = PNDMScheduler.fromConfig({ skip_prk_steps: true });
    scheduler.setTimesteps(10);
    // concat(tau[:-1], tau[-2:-1], tau[-1:]) reversed, tau = [0, 100, ..., 900]
    expect([...scheduler.timesteps]).toEqual([900, 800, 800, 700, 600, 500, 400, 300, 200, 100, 0]);
    expect(scheduler.prkTimesteps).toEqual([]);
  });

  test("PLMS with one step is one transfer from the single timestep", () => {
    const scheduler = PNDMScheduler.fromConfig({ skip_prk_steps: true });
    scheduler.setTimesteps(1);
    expect([...scheduler.timesteps]).toEqual([0]);
  });

  test("trailing and linspace spacings give their timesteps (the PLMS repeat included)", () => {
    const trailing = PNDMScheduler.fromConfig({ skip_prk_steps: true, timestep_spacing: "trailing" });
    trailing.setTimesteps(4);
    // round(arange(1000, 0, -250)) - 1 = [999, 749, 499, 249], ascending [249, 499, 749, 999]
    expect([...trailing.timesteps]).toEqual([999, 749, 749, 499, 249]);
    const linspace = PNDMScheduler.fromConfig({ skip_prk_steps: true, timestep_spacing: "linspace" });
    linspace.setTimesteps(4);
    // round(linspace(0, 999, 4)) = [0, 333, 666, 999]
    expect([...linspace.timesteps]).toEqual([999, 666, 666, 333, 0]);
  });

  test("the first PLMS step is DDIM's eta = 0 step: eq. (9) of the PNDM paper is eq. (12) of the DDIM paper", () => {
    // sqrt(a'/a) x - (a' - a) e / (a sqrt(1 - a') + sqrt(a (1 - a) a')) = sqrt(a') (x - sqrt(1 - a) e)/sqrt(a) +
    // sqrt(1 - a') e, since a (1 - a') - a' (1 - a) = a - a'
    for (const prediction of ["epsilon", "v_prediction"]) {
      const pndm = PNDMScheduler.fromConfig({ skip_prk_steps: true, prediction_type: prediction });
      const ddim = DDIMScheduler.fromConfig({ clip_sample: false, prediction_type: prediction });
      pndm.setTimesteps(20);
      ddim.setTimesteps(20);
      const t = pndm.timesteps[0];
      expect(t).toBe(ddim.timesteps[0]);
      const x = fixtureSample([2, 3, 4, 4]);
      const m = standInModel(x, t);
      const a = pndm.step(m, t, x);
      const b = ddim.step(m, t, x, { eta: 0 });
      expect(maxAbsDiff(a.prevSample.data, b.prevSample.data)).toBeLessThan(2e-6);
      // the x0 PNDM reports is the one its model output implies at t, DDIM's eq. (12) predicted x0 (|x0| reaches ~20
      // at t = 950, so compare to float32 resolution there)
      const scale = Math.max(...b.predOriginalSample.data.map(Math.abs));
      expect(maxAbsDiff(a.predOriginalSample.data, b.predOriginalSample.data)).toBeLessThan(1e-6 * scale);
    }
  });

  test("with a constant model output every PNDM combination is that output, so its loop is DDIM's loop", () => {
    // the multistep weights (3, -1)/2, (23, -16, 5)/12, (55, -59, 37, -9)/24 and the Runge-Kutta weights
    // (1, 2, 2, 1)/6 each sum to 1, eq. (12) and (13)
    const x0 = fixtureSample([1, 3, 4, 4]);
    const constant = new Tensor(x0.data.map((v) => Math.cos(3 * v)), x0.shape);
    for (const skip of [true, false]) {
      const pndm = PNDMScheduler.fromConfig({ skip_prk_steps: skip, set_alpha_to_one: true });
      pndm.setTimesteps(10);
      const ddim = DDIMScheduler.fromConfig({ clip_sample: false, set_alpha_to_one: true });
      ddim.setTimesteps(10);
      const viaPndm = pndmLoop(pndm, x0, () => constant);
      let viaDdim = x0;
      for (const t of ddim.timesteps) viaDdim = ddim.step(constant, t, viaDdim, { eta: 0 }).prevSample;
      expect(maxAbsDiff(viaPndm.data, viaDdim.data)).toBeLessThan(1e-4);
    }
  });

  test("a new setTimesteps restarts the counter and clears the history", () => {
    const scheduler = PNDMScheduler.fromConfig({ skip_prk_steps: true });
    const x = diffusersSampleDeter();
    scheduler.setTimesteps(10);
    const first = pndmLoop(scheduler, x, diffusersDummyModel);
    expect(scheduler.counter).toBe(11);
    scheduler.setTimesteps(10);
    expect(scheduler.counter).toBe(0);
    expect(maxAbsDiff(pndmLoop(scheduler, x, diffusersDummyModel).data, first.data)).toBe(0);
  });

  test("toConfig round-trips through fromConfig and the registry picks PNDM by _class_name", () => {
    const a = PNDMScheduler.fromConfig({ skip_prk_steps: true, steps_offset: 1, _class_name: "PNDMScheduler" });
    const config = a.toConfig();
    expect(config).toMatchObject({ skip_prk_steps: true, set_alpha_to_one: false, timestep_spacing: "leading" });
    const b = schedulerFromConfig(config);
    expect(b).toBeInstanceOf(PNDMScheduler);
    expect(b.toConfig()).toEqual(config);
  });
});

describe("PNDMScheduler refuses bad input", () => {
  test("unknown or unsupported config values, naming them", () => {
    expect(() => PNDMScheduler.fromConfig({ beta_schedule: "sigmoid" })).toThrow(/"sigmoid"/);
    expect(() => PNDMScheduler.fromConfig({ timestep_spacing: "quad" })).toThrow(/"quad"/);
    expect(() => PNDMScheduler.fromConfig({ prediction_type: "sample" })).toThrow(/got "sample"/);
    expect(() => PNDMScheduler.fromConfig({ prediction_type: "noise" })).toThrow(/"noise"/);
    expect(() => PNDMScheduler.fromConfig({ skip_prk_steps: "yes" })).toThrow(/skip_prk_steps must be true or false/);
    expect(() => PNDMScheduler.fromConfig({ set_alpha_to_one: 1 })).toThrow(/set_alpha_to_one/);
  });

  test("steps out of range", () => {
    const scheduler = PNDMScheduler.fromConfig({ num_train_timesteps: 100, skip_prk_steps: true });
    expect(() => scheduler.setTimesteps(101)).toThrow(/101.*100/);
    expect(() => scheduler.setTimesteps(0)).toThrow(/positive integer, got 0/);
    expect(() => scheduler.setTimesteps(2.5)).toThrow(/got 2.5/);
  });

  test("step before setTimesteps, out of order, after the end, wrong shape, non-finite output", () => {
    const scheduler = PNDMScheduler.fromConfig({ skip_prk_steps: true });
    const x = fixtureSample([1, 3, 4, 4]);
    expect(() => scheduler.step(x, 900, x)).toThrow("Call setTimesteps(n) before step");
    scheduler.setTimesteps(2); // [500, 0, 0]
    expect(() => scheduler.step(x, 0, x)).toThrow("expected timestep 500 (step 0 of its schedule), got 0");
    expect(() => scheduler.step(fixtureSample([1, 3, 4, 5]), 500, x)).toThrow(/shape \[1, 3, 4, 5\]/);
    const bad = standInModel(x, 500);
    bad.data[5] = NaN;
    expect(() => scheduler.step(bad, 500, x)).toThrow(/modelOutput is not finite: element 5/);
    scheduler.setTimesteps(2);
    for (const t of scheduler.timesteps) scheduler.step(standInModel(x, t), t, x);
    expect(() => scheduler.step(x, 0, x)).toThrow("took all 3 steps of its schedule");
  });
});
