import { describe, expect, test } from "bun:test";
import { EulerDiscreteScheduler } from "../../lib/schedulers/euler_discrete.ts";
import { DDIMScheduler } from "../../lib/schedulers/ddim.ts";
import { schedulerFromConfig } from "../../lib/schedulers/registry.ts";
import { Tensor } from "../../lib/core/tensor.ts";
import { TorchGenerator } from "../../lib/core/torch_generator.ts";
import { fixtureSample, maxAbsDiff, standInModel } from "../_fixtures.ts";
import { sigmaFullLoop, sumAndMeanAbs } from "../_diffusers_dummies.ts";

/** diffusers' EulerDiscreteSchedulerTest.get_scheduler_config. */
const TEST_CONFIG = { num_train_timesteps: 1100, beta_start: 0.0001, beta_end: 0.02, beta_schedule: "linear" };

const scaled = (x: Tensor, s: number) => new Tensor(x.data.map((v) => v * s), x.shape);

/** diffusers' full_loop, whose steps take a generator seeded with torch.manual_seed(0). */
const fullLoop = (scheduler: EulerDiscreteScheduler, options: { withNoise?: boolean } = {}) =>
  sigmaFullLoop(scheduler, { ...options, stepOptions: { generator: new TorchGenerator(0) } });

describe("EulerDiscreteScheduler against diffusers' published tests", () => {
  // diffusers tests/schedulers/test_scheduler_euler.py (EulerDiscreteSchedulerTest, n = 10, T = 1100), tolerances
  // 1e-2 (sum) and 1e-3 (mean) of |x| as there
  const published: [string, Record<string, unknown>, boolean, number, number][] = [
    ["test_full_loop_no_noise and test_full_loop_device", {}, false, 10.0807, 0.0131],
    ["test_full_loop_with_v_prediction", { prediction_type: "v_prediction" }, false, 0.0002, 2.2676e-06],
    [
      "test_full_loop_device_karras_sigmas",
      { use_karras_sigmas: true },
      false,
      124.52299499511719,
      0.16213932633399963,
    ],
    ["test_full_loop_with_noise", {}, true, 57062.9297, 74.3007],
  ];
  for (const [name, overrides, withNoise, sum, mean] of published) {
    test(`diffusers' ${name}: sum |x| ${sum}, mean ${mean}`, () => {
      const scheduler = EulerDiscreteScheduler.fromConfig({ ...TEST_CONFIG, ...overrides });
      scheduler.setTimesteps(10);
      const result = sumAndMeanAbs(fullLoop(scheduler, { withNoise }));
      expect(Math.abs(result.sum - sum)).toBeLessThan(1e-2);
      expect(Math.abs(result.mean - mean)).toBeLessThan(1e-3);
    });
  }

  test("diffusers' test_custom_timesteps: the schedule's own timesteps given as a list give the same loop", () => {
    for (const prediction_type of ["epsilon", "sample", "v_prediction"]) {
      for (const interpolation_type of ["linear", "log_linear"]) {
        for (const final_sigmas_type of ["sigma_min", "zero"]) {
          const config = { ...TEST_CONFIG, prediction_type, interpolation_type, final_sigmas_type };
          const a = EulerDiscreteScheduler.fromConfig(config);
          a.setTimesteps(10);
          const b = EulerDiscreteScheduler.fromConfig(config);
          b.setTimesteps([...a.timesteps]);
          const [viaCount, viaList] = [fullLoop(a).data, fullLoop(b).data];
          const difference = viaCount.reduce((s, v, i) => s + Math.abs(v - viaList[i]), 0);
          expect(difference).toBeLessThan(1e-5);
        }
      }
    }
  });
});

describe("EulerDiscreteScheduler schedule", () => {
  test("linspace timesteps are float: linspace(0, 1099, 10) reversed, sigma_max = sigma(1099) = initNoiseSigma", () => {
    const scheduler = EulerDiscreteScheduler.fromConfig(TEST_CONFIG);
    scheduler.setTimesteps(10);
    const expected = Array.from({ length: 10 }, (_, k) => Math.fround(k === 9 ? 1099 : (k * 1099) / 9)).reverse();
    expect([...scheduler.timesteps]).toEqual(expected);
    const alphaBar = scheduler.alphasCumprod[1099];
    expect(scheduler.sigmas[0]).toBeCloseTo(Math.sqrt((1 - alphaBar) / alphaBar), 3);
    expect(scheduler.initNoiseSigma).toBe(scheduler.sigmas[0]);
    expect(scheduler.sigmas.length).toBe(11);
    expect(scheduler.sigmas[10]).toBe(0);
  });

  test("between training timesteps sigma is interpolated linearly in t (numpy's interp)", () => {
    const scheduler = EulerDiscreteScheduler.fromConfig(TEST_CONFIG);
    scheduler.setTimesteps(10);
    const t = scheduler.timesteps[1]; // 976.888...
    const sigmaAt = (k: number) => Math.sqrt((1 - scheduler.alphasCumprod[k]) / scheduler.alphasCumprod[k]);
    const low = Math.floor(t);
    const expected = sigmaAt(low) + (sigmaAt(low + 1) - sigmaAt(low)) * (t - low);
    expect(Math.abs(scheduler.sigmas[1] - expected) / expected).toBeLessThan(1e-6);
  });

  test("leading spacing starts from sqrt(sigma_max^2 + 1) = 1 / sqrt(alphaBar) of the first timestep", () => {
    const scheduler = EulerDiscreteScheduler.fromConfig({ timestep_spacing: "leading", steps_offset: 1 });
    scheduler.setTimesteps(10);
    expect([...scheduler.timesteps]).toEqual([901, 801, 701, 601, 501, 401, 301, 201, 101, 1]);
    expect(scheduler.initNoiseSigma).toBeCloseTo(1 / Math.sqrt(scheduler.alphasCumprod[901]), 3);
  });

  test("final_sigmas_type sigma_min ends at sigma(0) instead of 0", () => {
    const scheduler = EulerDiscreteScheduler.fromConfig({ final_sigmas_type: "sigma_min" });
    scheduler.setTimesteps(5);
    const alphaBar0 = scheduler.alphasCumprod[0];
    expect(scheduler.sigmas[5]).toBeCloseTo(Math.sqrt((1 - alphaBar0) / alphaBar0), 6);
  });

  test("Karras sigmas follow eq. (5) of Karras et al. with rho = 7 between sigma(T - 1) and sigma(0)", () => {
    const scheduler = EulerDiscreteScheduler.fromConfig({ use_karras_sigmas: true });
    scheduler.setTimesteps(6);
    const sigma = (k: number) => Math.sqrt((1 - scheduler.alphasCumprod[k]) / scheduler.alphasCumprod[k]);
    const [max, min] = [sigma(999), sigma(0)];
    for (let i = 0; i < 6; i++) {
      const expected = (max ** (1 / 7) + (i / 5) * (min ** (1 / 7) - max ** (1 / 7))) ** 7;
      expect(Math.abs(scheduler.sigmas[i] - expected) / expected).toBeLessThan(1e-5);
    }
    // the timesteps are where the training sigmas take those values
    expect(scheduler.timesteps[0]).toBeCloseTo(999, 3);
    expect(scheduler.timesteps[5]).toBeCloseTo(0, 3);
  });

  test("continuous timesteps with v-prediction are 0.25 log sigma", () => {
    const scheduler = EulerDiscreteScheduler.fromConfig({
      timestep_type: "continuous",
      prediction_type: "v_prediction",
    });
    scheduler.setTimesteps(4);
    for (let i = 0; i < 4; i++) expect(scheduler.timesteps[i]).toBeCloseTo(0.25 * Math.log(scheduler.sigmas[i]), 5);
  });
});

describe("EulerDiscreteScheduler is DDIM in the variance-exploding parametrisation", () => {
  test("an Euler loop without churn equals the DDIM eta = 0 loop (DDIM paper eq. (13)), started from the same x_T", () => {
    // x_euler = x_t / sqrt(alphaBar_t), sigma = sqrt((1 - alphaBar) / alphaBar): x_{t'}/sqrt(a') = x_t/sqrt(a) +
    // (sigma' - sigma) eps is eq. (13) of the DDIM paper, and at sigma = 0 both reach x0
    for (const prediction_type of ["epsilon", "v_prediction"]) {
      const euler = EulerDiscreteScheduler.fromConfig({ timestep_spacing: "leading", prediction_type });
      const ddim = DDIMScheduler.fromConfig({ clip_sample: false, set_alpha_to_one: true, prediction_type });
      euler.setTimesteps(20);
      ddim.setTimesteps(20);
      expect([...euler.timesteps]).toEqual([...ddim.timesteps]);
      const xT = new TorchGenerator(3).randn([2, 3, 4, 4]);
      let viaDdim = xT;
      for (const t of ddim.timesteps) viaDdim = ddim.step(standInModel(viaDdim, t), t, viaDdim, { eta: 0 }).prevSample;
      // leading spacing: initNoiseSigma = sqrt(sigma_max^2 + 1) = 1 / sqrt(alphaBar of the first timestep)
      let x = scaled(xT, euler.initNoiseSigma);
      for (const t of euler.timesteps) {
        const input = euler.scaleModelInput(x, t);
        x = euler.step(standInModel(input, t), t, x).prevSample;
      }
      expect(maxAbsDiff(x.data, viaDdim.data)).toBeLessThan(1e-4);
    }
  });

  test("scaleModelInput divides by sqrt(sigma^2 + 1), which turns x back into the DDPM model's x_t", () => {
    const scheduler = EulerDiscreteScheduler.fromConfig({ timestep_spacing: "leading" });
    scheduler.setTimesteps(10);
    const t = scheduler.timesteps[0];
    const x = fixtureSample([1, 3, 4, 4]);
    const input = scheduler.scaleModelInput(x, t);
    const sqrtAlphaBar = Math.sqrt(scheduler.alphasCumprod[t]);
    for (let i = 0; i < x.size; i++) expect(input.data[i]).toBeCloseTo(x.data[i] * sqrtAlphaBar, 5);
  });
});

describe("EulerDiscreteScheduler churn (Karras et al. Algorithm 2)", () => {
  test("one churned step: gamma = S_churn / n, x-hat = x + sqrt(sigma-hat^2 - sigma^2) S_noise z, then Euler", () => {
    const scheduler = EulerDiscreteScheduler.fromConfig({});
    scheduler.setTimesteps(10);
    const x = fixtureSample([1, 3, 4, 4]);
    const t = scheduler.timesteps[3];
    scheduler.setBeginIndex(3);
    const m = standInModel(x, t);
    const z = new TorchGenerator(1).randn(x.shape);
    const out = scheduler.step(m, t, x, { sChurn: 1, sNoise: 1.003, varianceNoise: z });
    const sigma = scheduler.sigmas[3];
    const sigmaNext = scheduler.sigmas[4];
    const sigmaHat = sigma * 1.1; // gamma = min(1 / 10, sqrt(2) - 1)
    for (let i = 0; i < x.size; i++) {
      const xHat = x.data[i] + Math.sqrt(sigmaHat ** 2 - sigma ** 2) * 1.003 * z.data[i];
      const denoised = xHat - sigmaHat * m.data[i];
      const expected = xHat + ((xHat - denoised) / sigmaHat) * (sigmaNext - sigmaHat);
      expect(Math.abs(out.prevSample.data[i] - expected)).toBeLessThan(1e-5 * (1 + Math.abs(expected)));
      expect(Math.abs(out.predOriginalSample.data[i] - denoised)).toBeLessThan(1e-5 * (1 + Math.abs(denoised)));
    }
  });

  test("a generator draws the churn noise as randn(sample.shape), and nothing when gamma = 0", () => {
    const x = fixtureSample([1, 3, 4, 4]);
    const run = (options: Record<string, unknown>) => {
      const scheduler = EulerDiscreteScheduler.fromConfig({});
      scheduler.setTimesteps(10);
      const t = scheduler.timesteps[0];
      return scheduler.step(standInModel(x, t), t, x, { sChurn: 2, ...options }).prevSample;
    };
    const drawn = run({ generator: new TorchGenerator(7) });
    const given = run({ varianceNoise: new TorchGenerator(7).randn(x.shape) });
    expect(maxAbsDiff(drawn.data, given.data)).toBe(0);
    // outside [S_tmin, S_tmax] gamma = 0: no draw, so the generator's next value is its first
    const generator = new TorchGenerator(7);
    run({ generator, sTmax: 1 });
    expect(generator.randn([1]).data[0]).toBe(new TorchGenerator(7).randn([1]).data[0]);
  });
});

describe("EulerDiscreteScheduler registry and config", () => {
  test("the registry picks it by _class_name and toConfig round-trips", () => {
    const scheduler = schedulerFromConfig({ _class_name: "EulerDiscreteScheduler", use_karras_sigmas: true });
    expect(scheduler).toBeInstanceOf(EulerDiscreteScheduler);
    const config = scheduler.toConfig();
    expect(config).toMatchObject({ use_karras_sigmas: true, timestep_spacing: "linspace", final_sigmas_type: "zero" });
    expect(EulerDiscreteScheduler.fromConfig(config).toConfig()).toEqual(config);
  });

  test("a DDPM config becomes an Euler scheduler with its betas, as diffusers' from_config", () => {
    const ddim = DDIMScheduler.fromConfig({ beta_schedule: "scaled_linear", beta_start: 0.00085, beta_end: 0.012 });
    const euler = EulerDiscreteScheduler.fromConfig(ddim.toConfig());
    expect(Array.from(euler.alphasCumprod)).toEqual(Array.from(ddim.alphasCumprod));
    expect(euler.config.timestep_spacing).toBe("leading");
  });

  test("zero terminal SNR keeps the last alpha-bar at 2^-24 so sigma_max stays finite", () => {
    const scheduler = EulerDiscreteScheduler.fromConfig({ rescale_betas_zero_snr: true });
    expect(scheduler.alphasCumprod[999]).toBe(2 ** -24);
    expect(Number.isFinite(scheduler.initNoiseSigma)).toBe(true);
  });
});

describe("EulerDiscreteScheduler refuses bad input", () => {
  test("unknown enum values and unsupported options, naming them", () => {
    expect(() => EulerDiscreteScheduler.fromConfig({ interpolation_type: "cubic" })).toThrow(/"cubic"/);
    expect(() => EulerDiscreteScheduler.fromConfig({ final_sigmas_type: "one" })).toThrow(/"one"/);
    expect(() => EulerDiscreteScheduler.fromConfig({ timestep_type: "mixed" })).toThrow(/"mixed"/);
    expect(() => EulerDiscreteScheduler.fromConfig({ timestep_spacing: "quad" })).toThrow(/"quad"/);
    expect(() => EulerDiscreteScheduler.fromConfig({ beta_schedule: "sigmoid" })).toThrow(/"sigmoid"/);
    expect(() => EulerDiscreteScheduler.fromConfig({ use_karras_sigmas: "yes" })).toThrow(/use_karras_sigmas/);
    expect(() => EulerDiscreteScheduler.fromConfig({ use_karras_sigmas: true, use_exponential_sigmas: true }))
      .toThrow(/only one of use_karras_sigmas, use_exponential_sigmas/);
    expect(() => EulerDiscreteScheduler.fromConfig({ use_beta_sigmas: true })).toThrow(
      /use_beta_sigmas is not supported/,
    );
    expect(() => EulerDiscreteScheduler.fromConfig({ sigma_min: -1 })).toThrow(/sigma_min must be a positive number/);
  });

  test("steps out of range and malformed custom timesteps", () => {
    const scheduler = EulerDiscreteScheduler.fromConfig({ num_train_timesteps: 100 });
    expect(() => scheduler.setTimesteps(101)).toThrow(/101.*100/);
    expect(() => scheduler.setTimesteps(0)).toThrow(/positive integer, got 0/);
    expect(() => scheduler.setTimesteps([50, 60])).toThrow(/strictly descending/);
    expect(() => scheduler.setTimesteps([100, 0])).toThrow(/timesteps\[0\] = 100 is not a number in \[0, 99\]/);
    const karras = EulerDiscreteScheduler.fromConfig({ use_karras_sigmas: true });
    expect(() => karras.setTimesteps([500, 100])).toThrow(/custom timesteps with use_karras_sigmas/);
    const leading = EulerDiscreteScheduler.fromConfig({ timestep_spacing: "leading", steps_offset: 1 });
    expect(() => leading.setTimesteps(1000)).toThrow(/steps_offset 1 pushes timestep 1000/);
  });

  test("step before setTimesteps, out of order, wrong shape, non-finite output, churn without noise", () => {
    const scheduler = EulerDiscreteScheduler.fromConfig({});
    const x = fixtureSample([1, 3, 4, 4]);
    expect(() => scheduler.step(x, 999, x)).toThrow("Call setTimesteps(n) before step");
    expect(() => scheduler.scaleModelInput(x, 999)).toThrow("Call setTimesteps(n) before scaleModelInput");
    scheduler.setTimesteps(10);
    const [t0, t1] = scheduler.timesteps;
    expect(() => scheduler.step(x, 5, x)).toThrow(/timestep 5 is not in the EulerDiscreteScheduler schedule/);
    expect(() => scheduler.step(fixtureSample([1, 3, 4, 5]), t0, x)).toThrow(/shape \[1, 3, 4, 5\]/);
    expect(() => scheduler.step(x, t0, x, { sChurn: 1 })).toThrow(/needs a generator or varianceNoise/);
    expect(() => scheduler.step(x, t0, x, { sChurn: -1 })).toThrow("sChurn must be a finite number >= 0, got -1");
    const bad = standInModel(x, t0);
    bad.data[2] = Infinity;
    expect(() => scheduler.step(bad, t0, x)).toThrow(/modelOutput is not finite: element 2/);
    scheduler.step(standInModel(x, t0), t0, x);
    expect(() => scheduler.step(x, t0, x)).toThrow(`expected timestep ${t1} (step 1 of its schedule), got ${t0}`);
  });
});
