import { describe, expect, test } from "bun:test";
import { DDPMScheduler } from "../../lib/schedulers/ddpm.ts";
import { Tensor } from "../../lib/core/tensor.ts";
import { TorchGenerator } from "../../lib/core/torch_generator.ts";
import {
  caseLabel,
  fixtureSample,
  maxAbsDiff,
  noiseAt,
  schedulerFixtures,
  standInModel,
  standInModelWithVariance,
} from "../_fixtures.ts";
import { schedulerSuite } from "../_scheduler_suite.ts";
import { diffusersDummyModel, diffusersSampleDeter, sumAndMeanAbs } from "../_diffusers_dummies.ts";

schedulerSuite({ name: "DDPMScheduler", fromConfig: (c) => DDPMScheduler.fromConfig(c) });

describe("DDPMScheduler against diffusers", () => {
  const fx = schedulerFixtures();
  for (const loop of fx.loops.filter((l) => l.scheduler === "ddpm")) {
    const tolerance = loop.n >= 1000 ? 2e-4 : 1e-4;
    test(`ddpm loop matches diffusers within ${tolerance}: ${caseLabel(loop)}`, () => {
      const scheduler = DDPMScheduler.fromConfig(loop.config);
      scheduler.setTimesteps(loop.n);
      let x = fixtureSample();
      scheduler.timesteps.forEach((t, k) => {
        const output = loop.learned_extra_channels ? standInModelWithVariance(x, t) : standInModel(x, t);
        x = scheduler.step(output, t, x, { varianceNoise: noiseAt(k) }).prevSample;
      });
      expect(maxAbsDiff(x.data, loop.final)).toBeLessThan(tolerance);
    });
  }

  test("add_noise matches diffusers' DDPMScheduler().add_noise for every fixture timestep (1e-4)", () => {
    const scheduler = DDPMScheduler.fromConfig({});
    expect(fx.add_noise.length).toBe(4);
    for (const { timestep, result } of fx.add_noise) {
      expect(maxAbsDiff(scheduler.addNoise(fixtureSample(), noiseAt(3), timestep).data, result)).toBeLessThan(1e-4);
    }
  });

  for (const seeded of fx.seeded_loops.filter((l) => l.scheduler === "ddpm")) {
    test(`seeded ddpm loop (seed ${seeded.seed}, ${seeded.n} steps) draws noise only for t > 0, as diffusers`, () => {
      const generator = new TorchGenerator(seeded.seed);
      let x = generator.randn(fx.shape);
      const scheduler = DDPMScheduler.fromConfig({});
      scheduler.setTimesteps(seeded.n);
      for (const t of scheduler.timesteps) x = scheduler.step(standInModel(x, t), t, x, { generator }).prevSample;
      expect(maxAbsDiff(x.data, seeded.final)).toBeLessThan(2e-4);
    });
  }

  // diffusers tests/schedulers/test_scheduler_ddpm.py, test_full_loop_no_noise / _with_v_prediction: every timestep
  // 999..0, dummy_model, dummy_sample_deter, generator = torch.manual_seed(0); tolerances 1e-2 (sum), 1e-3 (mean)
  const published: [string, Record<string, unknown>, number, number][] = [
    ["test_full_loop_no_noise", {}, 258.9606, 0.3372],
    ["test_full_loop_with_v_prediction", { prediction_type: "v_prediction" }, 202.0296, 0.2631],
  ];
  for (const [name, overrides, sum, mean] of published) {
    test(`diffusers' ${name}: sum |x| ${sum}, mean ${mean}`, () => {
      const scheduler = DDPMScheduler.fromConfig({ variance_type: "fixed_small", clip_sample: true, ...overrides });
      const generator = new TorchGenerator(0);
      let x = diffusersSampleDeter();
      for (let t = 999; t >= 0; t--) x = scheduler.step(diffusersDummyModel(x, t), t, x, { generator }).prevSample;
      const result = sumAndMeanAbs(x);
      expect(Math.abs(result.sum - sum)).toBeLessThan(1e-2);
      expect(Math.abs(result.mean - mean)).toBeLessThan(1e-3);
    });
  }
});

describe("DDPMScheduler beyond diffusers", () => {
  test("fixed_large_log uses sigma = exp(0.5 ln beta_t), the same noise scale as fixed_large (diffusers gives NaN)", () => {
    const large = DDPMScheduler.fromConfig({ variance_type: "fixed_large" });
    const largeLog = DDPMScheduler.fromConfig({ variance_type: "fixed_large_log" });
    const x = fixtureSample([1, 3, 4, 4]);
    for (const t of [999, 500, 1]) {
      const eps = standInModel(x, t);
      const noise = noiseAt(2, x.shape);
      const a = large.step(eps, t, x, { varianceNoise: noise }).prevSample.data;
      const b = largeLog.step(eps, t, x, { varianceNoise: noise }).prevSample.data;
      expect(maxAbsDiff(a, b)).toBeLessThan(1e-6);
    }
  });

  test("learned variance reads the extra channels as a log variance: v = ln beta_t gives the fixed_large step", () => {
    const learned = DDPMScheduler.fromConfig({ variance_type: "learned" });
    const large = DDPMScheduler.fromConfig({ variance_type: "fixed_large" });
    const x = fixtureSample([1, 2, 2, 2]);
    const t = 400;
    const eps = standInModel(x, t);
    const logBeta = Math.log(1 - learned.alphasCumprod[t] / learned.alphasCumprod[t - 1]);
    const output = new Float32Array(16);
    output.set(eps.data, 0);
    output.fill(logBeta, 8);
    const noise = noiseAt(0, x.shape);
    const a = learned.step(new Tensor(output, [1, 4, 2, 2]), t, x, { varianceNoise: noise }).prevSample.data;
    const b = large.step(eps, t, x, { varianceNoise: noise }).prevSample.data;
    expect(maxAbsDiff(a, b)).toBeLessThan(1e-5);
  });

  test("ddpm draws no noise at t = 0 and refuses both a generator and variance noise", () => {
    const scheduler = DDPMScheduler.fromConfig({});
    const x = fixtureSample([1, 3, 4, 4]);
    const generator = new TorchGenerator(9);
    scheduler.step(standInModel(x, 0), 0, x, { generator });
    expect(Array.from(generator.randn([20]).data)).toEqual(Array.from(new TorchGenerator(9).randn([20]).data));
    expect(() => scheduler.step(standInModel(x, 5), 5, x, { generator, varianceNoise: x })).toThrow(/not both/);
    expect(() => scheduler.step(standInModel(x, 5), 5, x)).toThrow(/needs a generator or varianceNoise/);
  });

  test("ddpm custom timesteps step to the next entry of the list", () => {
    const scheduler = DDPMScheduler.fromConfig({});
    scheduler.setTimesteps([999, 600, 37, 0]);
    expect(scheduler.customTimesteps).toBe(true);
    expect(scheduler.previousTimestep(600)).toBe(37);
    expect(scheduler.previousTimestep(0)).toBe(-1);
  });

  test("ddpm learned_range needs twice the channels and unknown variance types are refused, naming the value", () => {
    const scheduler = DDPMScheduler.fromConfig({ variance_type: "learned_range" });
    const x = fixtureSample([1, 3, 4, 4]);
    expect(() => scheduler.step(standInModel(x, 5), 5, x, { varianceNoise: x })).toThrow(/\[1, 6, 4, 4\]/);
    expect(() => DDPMScheduler.fromConfig({ variance_type: "fixed_medium" })).toThrow(/"fixed_medium"/);
  });

  test("ddpm sigmoid schedule rises from beta_start to beta_end", () => {
    const betas = DDPMScheduler.fromConfig({ beta_schedule: "sigmoid" }).betas;
    expect(betas[0]).toBeGreaterThan(1e-4);
    expect(betas[999]).toBeLessThan(0.02);
    for (let t = 1; t < 1000; t++) expect(betas[t]).toBeGreaterThanOrEqual(betas[t - 1]);
  });
});
