import { describe, expect, test } from "bun:test";
import { DDIMScheduler } from "../../lib/schedulers/ddim.ts";
import { DDPMScheduler } from "../../lib/schedulers/ddpm.ts";
import { Tensor } from "../../lib/core/tensor.ts";
import { TorchGenerator } from "../../lib/core/torch_generator.ts";
import { caseLabel, fixtureSample, maxAbsDiff, noiseAt, schedulerFixtures, standInModel } from "../_fixtures.ts";
import { schedulerSuite } from "../_scheduler_suite.ts";
import { diffusersDummyModel, diffusersSampleDeter, sumAndMeanAbs } from "../_diffusers_dummies.ts";

schedulerSuite({ name: "DDIMScheduler", fromConfig: (c) => DDIMScheduler.fromConfig(c) });

describe("DDIMScheduler against diffusers", () => {
  const fx = schedulerFixtures();
  for (const loop of fx.loops.filter((l) => l.scheduler === "ddim")) {
    const tolerance = loop.n >= 1000 ? 2e-4 : 1e-4;
    test(`ddim loop matches diffusers within ${tolerance}: ${caseLabel(loop)}`, () => {
      const scheduler = DDIMScheduler.fromConfig(loop.config);
      scheduler.setTimesteps(loop.n);
      const eta = loop.eta ?? 0;
      let x = fixtureSample();
      const sums: number[] = [];
      scheduler.timesteps.forEach((t, k) => {
        const out = scheduler.step(standInModel(x, t), t, x, {
          eta,
          useClippedModelOutput: loop.use_clipped_model_output ?? false,
          varianceNoise: eta > 0 ? noiseAt(k) : undefined,
        });
        x = out.prevSample;
        sums.push(out.predOriginalSample.data.reduce((a, b) => a + b, 0));
      });
      expect(maxAbsDiff(x.data, loop.final)).toBeLessThan(tolerance);
      // a sum of 96 elements each within the tolerance
      expect(maxAbsDiff(sums, loop.pred_original_sample_sums!)).toBeLessThan(96 * tolerance);
    });
  }

  for (const seeded of fx.seeded_loops.filter((l) => l.scheduler === "ddim")) {
    test(`seeded ddim loop (seed ${seeded.seed}, eta ${seeded.eta}) draws noise exactly as diffusers`, () => {
      const generator = new TorchGenerator(seeded.seed);
      let x = generator.randn(fx.shape);
      const scheduler = DDIMScheduler.fromConfig({});
      scheduler.setTimesteps(seeded.n);
      for (const t of scheduler.timesteps) {
        x = scheduler.step(standInModel(x, t), t, x, { eta: seeded.eta ?? 0, generator }).prevSample;
      }
      expect(maxAbsDiff(x.data, seeded.final)).toBeLessThan(1e-4);
    });
  }

  // diffusers tests/schedulers/test_scheduler_ddim.py, DDIMSchedulerTest.full_loop (n = 10, eta = 0, dummy_model,
  // dummy_sample_deter), with their stated tolerances 1e-2 (sum) and 1e-3 (mean) of |x|
  const published: [string, Record<string, unknown>, number, number][] = [
    ["test_full_loop_no_noise", {}, 172.0067, 0.223967],
    ["test_full_loop_with_v_prediction", { prediction_type: "v_prediction" }, 52.5302, 0.0684],
    ["test_full_loop_with_set_alpha_to_one", { set_alpha_to_one: true, beta_start: 0.01 }, 149.8295, 0.1951],
    ["test_full_loop_with_no_set_alpha_to_one", { set_alpha_to_one: false, beta_start: 0.01 }, 149.0784, 0.1941],
  ];
  for (const [name, overrides, sum, mean] of published) {
    test(`diffusers' ${name}: sum |x| ${sum}, mean ${mean}`, () => {
      const scheduler = DDIMScheduler.fromConfig({ beta_schedule: "linear", clip_sample: true, ...overrides });
      scheduler.setTimesteps(10);
      let x = diffusersSampleDeter();
      for (const t of scheduler.timesteps) x = scheduler.step(diffusersDummyModel(x, t), t, x, { eta: 0 }).prevSample;
      const result = sumAndMeanAbs(x);
      expect(Math.abs(result.sum - sum)).toBeLessThan(1e-2);
      expect(Math.abs(result.mean - mean)).toBeLessThan(1e-3);
    });
  }
});

describe("DDIMScheduler beyond diffusers", () => {
  test("ddim with trailing spacing steps to the true previous entry, not t - T // n (diffusers #12633, #11347)", () => {
    const scheduler = DDIMScheduler.fromConfig({ timestep_spacing: "trailing", clip_sample: false });
    scheduler.setTimesteps(3);
    expect([...scheduler.timesteps]).toEqual([999, 666, 332]);
    expect(scheduler.previousTimestep(666)).toBe(332);
    expect(scheduler.previousTimestep(332)).toBe(-1);
    // eta = 0, eq. (12): x_prev = sqrt(aPrev) x0 + sqrt(1 - aPrev) eps with aPrev = alphasCumprod[332]
    const x = fixtureSample([1, 2, 2, 2]);
    const eps = standInModel(x, 666);
    const a = scheduler.alphasCumprod[666];
    const aPrev = scheduler.alphasCumprod[332];
    const out = scheduler.step(eps, 666, x).prevSample.data;
    for (let i = 0; i < x.size; i++) {
      const x0 = (x.data[i] - Math.sqrt(1 - a) * eps.data[i]) / Math.sqrt(a);
      expect(Math.abs(out[i] - (Math.sqrt(aPrev) * x0 + Math.sqrt(1 - aPrev) * eps.data[i]))).toBeLessThan(1e-5);
    }
  });

  test("ddim step with eta = 1 and clipping off equals the DDPM fixed_small step (the paper's eq. 16 remark)", () => {
    const ddim = DDIMScheduler.fromConfig({ clip_sample: false });
    const ddpm = DDPMScheduler.fromConfig({ clip_sample: false, variance_type: "fixed_small" });
    ddim.setTimesteps(20);
    ddpm.setTimesteps(20);
    const x = fixtureSample([2, 3, 4, 4]);
    for (const t of [950, 500, 50]) {
      const eps = standInModel(x, t);
      const noise = noiseAt(1, x.shape);
      const a = ddim.step(eps, t, x, { eta: 1, varianceNoise: noise }).prevSample.data;
      const b = ddpm.step(eps, t, x, { varianceNoise: noise }).prevSample.data;
      expect(maxAbsDiff(a, b)).toBeLessThan(2e-5);
    }
  });

  test("quad spacing and custom lists sample the given timesteps", () => {
    const scheduler = DDIMScheduler.fromConfig({ timestep_spacing: "quad" });
    scheduler.setTimesteps(10);
    expect(scheduler.timesteps[9]).toBe(0);
    scheduler.setTimesteps([900, 450, 10]);
    expect(scheduler.previousTimestep(450)).toBe(10);
  });

  test("ddim step refuses both a generator and variance noise, and eta > 0 with neither", () => {
    const scheduler = DDIMScheduler.fromConfig({});
    scheduler.setTimesteps(10);
    const x = fixtureSample([1, 3, 4, 4]);
    const eps = standInModel(x, 900);
    expect(() => scheduler.step(eps, 900, x, { eta: 1, generator: new TorchGenerator(0), varianceNoise: x }))
      .toThrow(/either a generator or varianceNoise/);
    expect(() => scheduler.step(eps, 900, x, { eta: 1 })).toThrow(/needs a generator or varianceNoise/);
    expect(() => scheduler.step(eps, 900, x, { eta: -1 })).toThrow(/eta must be/);
    expect(() => DDIMScheduler.fromConfig({}).step(eps, 900, x)).toThrow(/setTimesteps/);
  });

  test("ddim with eta = 0 draws nothing from the generator", () => {
    const scheduler = DDIMScheduler.fromConfig({});
    scheduler.setTimesteps(10);
    const generator = new TorchGenerator(5);
    const x = fixtureSample([1, 3, 4, 4]);
    scheduler.step(standInModel(x, 900), 900, x, { eta: 0, generator });
    expect(Array.from(generator.randn([20]).data)).toEqual(Array.from(new TorchGenerator(5).randn([20]).data));
  });

  test("zero terminal SNR with an epsilon model is refused at the last timestep, with the reason", () => {
    const scheduler = DDIMScheduler.fromConfig({ rescale_betas_zero_snr: true, timestep_spacing: "trailing" });
    scheduler.setTimesteps(10);
    const x = fixtureSample([1, 3, 4, 4]);
    expect(() => scheduler.step(standInModel(x, 999), 999, x)).toThrow(/zero terminal SNR/);
  });

  test("ddim unknown beta schedule sigmoid is refused as diffusers' DDIM does", () => {
    expect(() => DDIMScheduler.fromConfig({ beta_schedule: "sigmoid" })).toThrow(/"sigmoid"/);
  });

  test("ddim variance noise of the wrong shape is refused", () => {
    const scheduler = DDIMScheduler.fromConfig({});
    scheduler.setTimesteps(10);
    const x = fixtureSample([1, 3, 4, 4]);
    expect(() => scheduler.step(standInModel(x, 900), 900, x, { eta: 1, varianceNoise: Tensor.zeros([1, 3, 4, 5]) }))
      .toThrow(/shape/);
  });
});

describe("dynamic thresholding (Imagen; diffusers' _threshold_sample)", () => {
  test("the 99.5th percentile of |x0|, between 1 and sample_max_value, clips and rescales predX0", () => {
    // prediction_type "sample": the model output is predX0 before thresholding. Per batch item, 48 values spread
    // over [-2.5, 2.5], so the percentile s lies between 1 and sample_max_value = 3 and neither clamp bites.
    const shape = [2, 3, 4, 4];
    const n = 48;
    const values = Array.from({ length: 2 * n }, (_, i) => (i < n ? 2.5 : 2.2) * Math.sin(1.3 * i + 0.4));
    const modelOutput = Tensor.from(values, shape);
    const scheduler = DDIMScheduler.fromConfig({
      thresholding: true,
      dynamic_thresholding_ratio: 0.995,
      sample_max_value: 3,
      clip_sample: false,
      prediction_type: "sample",
    });
    scheduler.setTimesteps(10);
    const x = Tensor.zeros(shape);
    const { predOriginalSample } = scheduler.step(modelOutput, scheduler.timesteps[0], x);
    for (let item = 0; item < 2; item++) {
      const own = values.slice(item * n, (item + 1) * n).map((v) => Math.fround(v));
      // torch.quantile(|x|, 0.995): linear interpolation between order statistics at position 0.995 (n - 1)
      const sorted = own.map(Math.abs).sort((a, b) => a - b);
      const position = 0.995 * (n - 1);
      const below = Math.floor(position);
      const quantile = sorted[below] + (position - below) * (sorted[below + 1] - sorted[below]);
      expect(quantile).toBeGreaterThan(1);
      expect(quantile).toBeLessThan(3);
      const s = Math.min(Math.max(quantile, 1), 3);
      for (let k = 0; k < n; k++) {
        const expected = Math.min(Math.max(own[k], -s), s) / s;
        expect(Math.abs(predOriginalSample.data[item * n + k] - expected)).toBeLessThan(1e-6);
      }
      // the largest values were clipped to s and so sit exactly at +-1 after rescaling
      expect(Math.max(...predOriginalSample.data.slice(item * n, (item + 1) * n).map(Math.abs))).toBeCloseTo(1, 6);
    }
  });
});
