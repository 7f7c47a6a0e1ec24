import { describe, expect, test } from "bun:test";
import { DDIMScheduler } from "../../lib/schedulers/ddim.ts";
import { DDIMPipeline } from "../../lib/pipelines/ddim_pipeline.ts";
import { DDPMScheduler } from "../../lib/schedulers/ddpm.ts";
import { PNDMScheduler } from "../../lib/schedulers/pndm.ts";
import { EulerDiscreteScheduler } from "../../lib/schedulers/euler_discrete.ts";
import { HeunDiscreteScheduler } from "../../lib/schedulers/heun_discrete.ts";
import type { Scheduler } from "../../lib/schedulers/scheduler.ts";
import { DPMSolverMultistepScheduler } from "../../lib/schedulers/dpm_solver_multistep.ts";
import { type DenoisingModel, modelFromFunction } from "../../lib/core/model.ts";
import { Tensor } from "../../lib/core/tensor.ts";
import { TorchGenerator } from "../../lib/core/torch_generator.ts";
import { maxAbsDiff, schedulerFixtures, standInModel } from "../_fixtures.ts";

/** The fixture's stand-in model as a 3 x 4 x 4 model, counting its calls. */
function standIn(): DenoisingModel & { calls: number } {
  const model = modelFromFunction((x, t) => {
    counted.calls++;
    return standInModel(x, t as number);
  }, { sampleSize: 4, inChannels: 3 });
  const counted = Object.assign(model, { calls: 0 });
  return counted;
}

describe("DDIMPipeline reproduces diffusers' seeded loops", () => {
  // test/fixtures/diffusers-schedulers.json, seeded_loops: x = torch.randn(shape, generator=g), then
  // DDIMScheduler().step(model(x, t), t, x, eta, generator=g) for each t, as diffusers' DDIMPipeline draws noise
  for (const loop of schedulerFixtures().seeded_loops.filter((l) => l.scheduler === "ddim")) {
    test(`seed ${loop.seed}, eta ${loop.eta}, ${loop.n} steps matches diffusers within 1e-4`, async () => {
      const pipe = new DDIMPipeline({ unet: standIn(), scheduler: DDIMScheduler.fromConfig({}) });
      const { samples, seed } = await pipe.sample({
        numInferenceSteps: loop.n,
        eta: loop.eta ?? 0,
        seed: loop.seed,
        batchSize: schedulerFixtures().shape[0],
      });
      expect(seed).toBe(loop.seed);
      expect(samples.shape).toEqual(schedulerFixtures().shape);
      expect(maxAbsDiff(samples.data, loop.final)).toBeLessThan(1e-4);
    });
  }
});

describe("options reach the scheduler", () => {
  test("useClippedModelOutput: the pipeline's loop equals a hand loop of steps given it, and differs without it", async () => {
    // with clip_sample on and eta = 1, diffusers' use_clipped_model_output recomputes eps from the clipped x0
    const run = async (useClippedModelOutput: boolean) =>
      (await new DDIMPipeline({ unet: standIn(), scheduler: DDIMScheduler.fromConfig({ clip_sample: true }) })
        .sample({ numInferenceSteps: 10, eta: 1, seed: 3, batchSize: 2, useClippedModelOutput })).samples;
    const scheduler = DDIMScheduler.fromConfig({ clip_sample: true });
    scheduler.setTimesteps(10);
    const generator = new TorchGenerator(3);
    let x = generator.randn([2, 3, 4, 4]);
    for (const t of scheduler.timesteps) {
      x = scheduler.step(standInModel(x, t), t, x, { eta: 1, generator, useClippedModelOutput: true }).prevSample;
    }
    const clipped = await run(true);
    expect(Array.from(clipped.data)).toEqual(Array.from(x.data));
    expect(maxAbsDiff(clipped.data, (await run(false)).data)).toBeGreaterThan(1e-3);
  });
});

describe("determinism", () => {
  test("eta = 0 from the same x_T gives bit-identical samples whatever the generator's seed", async () => {
    const pipe = await DDIMPipeline.fromPretrained("builtin:shapes32");
    const xT = new TorchGenerator(11).randn([2, 3, 32, 32]);
    const a = await pipe.sample({ xT, eta: 0, numInferenceSteps: 10, seed: 1 });
    const b = await pipe.sample({ xT, eta: 0, numInferenceSteps: 10, seed: 999 });
    expect(b.samples.data).toEqual(a.samples.data);
  });

  test("eta > 0 from the same x_T differs between seeds, and repeats exactly with the same seed", async () => {
    const pipe = await DDIMPipeline.fromPretrained("builtin:shapes32");
    const xT = new TorchGenerator(11).randn([2, 3, 32, 32]);
    const a = await pipe.sample({ xT, eta: 0.5, numInferenceSteps: 10, seed: 1 });
    const b = await pipe.sample({ xT, eta: 0.5, numInferenceSteps: 10, seed: 2 });
    const again = await pipe.sample({ xT, eta: 0.5, numInferenceSteps: 10, seed: 1 });
    expect(maxAbsDiff(a.samples.data, b.samples.data)).toBeGreaterThan(1e-3);
    expect(again.samples.data).toEqual(a.samples.data);
  });

  test("x_T is drawn first from the generator, with shape [batch, inChannels, size, size]", async () => {
    const pipe = new DDIMPipeline({ unet: standIn() });
    const { xT } = await pipe.sample({ seed: 5, batchSize: 3, numInferenceSteps: 2 });
    expect(xT.shape).toEqual([3, 3, 4, 4]);
    expect(xT.data).toEqual(new TorchGenerator(5).randn([3, 3, 4, 4]).data);
  });

  test("a run without seed or generator reports the seed it drew, and that seed reproduces it", async () => {
    const pipe = new DDIMPipeline({ unet: standIn() });
    const first = await pipe.sample({ eta: 1, numInferenceSteps: 5 });
    expect(Number.isSafeInteger(first.seed)).toBe(true);
    const again = await pipe.sample({ eta: 1, numInferenceSteps: 5, seed: first.seed });
    expect(again.samples.data).toEqual(first.samples.data);
  });
});

describe("schedulers, trajectories and progress", () => {
  test("a DDPM scheduler given to the pipeline is rebuilt as DDIM from its config, as diffusers does", () => {
    const pipe = new DDIMPipeline({ unet: standIn(), scheduler: DDPMScheduler.fromConfig({ beta_end: 0.03 }) });
    expect(pipe.scheduler).toBeInstanceOf(DDIMScheduler);
    expect((pipe.scheduler.config as { beta_end: number }).beta_end).toBe(0.03);
  });

  test("a swapped scheduler is used as given, and clipSample false equals a scheduler made with clip_sample off", async () => {
    const pipe = new DDIMPipeline({ unet: standIn() });
    const viaOption = await pipe.sample({ seed: 33, batchSize: 2, numInferenceSteps: 20, clipSample: false });
    pipe.scheduler = DDIMScheduler.fromConfig({ clip_sample: false });
    const viaSwap = await pipe.sample({ seed: 33, batchSize: 2, numInferenceSteps: 20 });
    expect(viaSwap.samples.data).toEqual(viaOption.samples.data);
    pipe.scheduler = DDIMScheduler.fromConfig({});
    const clipped = await pipe.sample({ seed: 33, batchSize: 2, numInferenceSteps: 20 });
    expect(maxAbsDiff(clipped.samples.data, viaOption.samples.data)).toBeGreaterThan(1e-3);
  });

  test("the trajectory holds every step (or every k-th and the last), and onStep sees each step in order", async () => {
    const pipe = new DDIMPipeline({ unet: standIn() });
    const seen: number[] = [];
    const full = await pipe.sample({
      seed: 0,
      numInferenceSteps: 10,
      trajectory: true,
      onStep: ({ i }) => void seen.push(i),
    });
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(full.trajectory!.map((s) => s.t)).toEqual(full.timesteps);
    expect(full.timesteps).toEqual([900, 800, 700, 600, 500, 400, 300, 200, 100, 0]);
    expect(full.trajectory![9].x.data).toEqual(full.samples.data);
    const sparse = await pipe.sample({ seed: 0, numInferenceSteps: 10, trajectory: 4 });
    expect(sparse.trajectory!.map((s) => s.i)).toEqual([0, 4, 8, 9]);
  });

  test("a progress reporter is started with the step count, ticked once per step and stopped", async () => {
    const events: string[] = [];
    const reporter = {
      start: (total: number, label?: string) => void events.push(`start ${total} ${label}`),
      tick: () => void events.push("tick"),
      stop: () => void events.push("stop"),
    };
    await new DDIMPipeline({ unet: standIn() }).sample({ seed: 0, numInferenceSteps: 3, eta: 0.5, progress: reporter });
    expect(events).toEqual(["start 3 DDIM eta 0.5", "tick", "tick", "tick", "stop"]);
  });
});

describe("bad input is refused before the model runs", () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ["eta < 0", { eta: -0.1 }, /eta must be a number from 0 to 1.*got -0.1/],
    ["eta NaN", { eta: Number.NaN }, /eta must be.*got NaN/],
    ["zero steps", { numInferenceSteps: 0 }, /numInferenceSteps must be an integer from 1 to .* 1000 .*got 0/],
    ["more steps than training timesteps", { numInferenceSteps: 1001 }, /1000 training timesteps, got 1001/],
    ["fractional steps", { numInferenceSteps: 2.5 }, /got 2.5/],
    ["batch 0", { batchSize: 0 }, /batchSize must be a positive integer, got 0/],
    [
      "x_T of the wrong size",
      { xT: Tensor.zeros([1, 3, 8, 8]) },
      /xT has shape \[1, 3, 8, 8\] but the model takes \[1, 3, 4, 4\]/,
    ],
    ["x_T disagreeing with batchSize", { xT: Tensor.zeros([1, 3, 4, 4]), batchSize: 2 }, /\[2, 3, 4, 4\]/],
    ["x_T with NaN", { xT: new Tensor(new Float32Array(48).fill(Number.NaN), [1, 3, 4, 4]) }, /xT is not finite/],
    ["a seed that is not a safe integer", { seed: 1.5 }, /seed must be a safe integer >= 0, got 1.5/],
  ];
  for (const [name, options, message] of cases) {
    test(`${name} is a RangeError that names the value`, async () => {
      const unet = standIn();
      await expect(new DDIMPipeline({ unet }).sample(options)).rejects.toThrow(message);
      expect(unet.calls).toBe(0);
    });
  }

  test("a pipeline without a model is refused", () => {
    expect(() => new DDIMPipeline({ unet: {} as DenoisingModel })).toThrow(/needs a unet with a predict/);
  });
});

describe("DDIMPipeline with PNDM, Euler and Heun schedulers", () => {
  // as in diffusers: pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
  const swaps: [string, (config: Record<string, unknown>) => Scheduler<object>][] = [
    ["PNDMScheduler", (c) => PNDMScheduler.fromConfig(c)],
    ["PNDMScheduler (PLMS)", (c) => PNDMScheduler.fromConfig({ ...c, skip_prk_steps: true })],
    ["EulerDiscreteScheduler", (c) => EulerDiscreteScheduler.fromConfig(c)],
    [
      "EulerDiscreteScheduler (linspace, Karras)",
      (c) => EulerDiscreteScheduler.fromConfig({ ...c, timestep_spacing: "linspace", use_karras_sigmas: true }),
    ],
    ["HeunDiscreteScheduler", (c) => HeunDiscreteScheduler.fromConfig(c)],
  ];
  for (const [name, make] of swaps) {
    test(`${name} swapped in from the DDIM config runs, and equals a hand loop from x_T * initNoiseSigma`, async () => {
      const pipe = new DDIMPipeline({ unet: standIn() });
      pipe.scheduler = make(pipe.scheduler.toConfig());
      const result = await pipe.sample({ seed: 11, batchSize: 2, numInferenceSteps: 10 });
      // the hand loop of diffusers' pipelines: x = randn * init_noise_sigma; x = step(model(scale(x, t), t), t, x)
      const generator = new TorchGenerator(11);
      const noise = generator.randn([2, 3, 4, 4]);
      const scheduler = make(pipe.scheduler.toConfig());
      scheduler.setTimesteps(10);
      let x = new Tensor(noise.data.map((v) => v * scheduler.initNoiseSigma), noise.shape);
      for (const t of scheduler.timesteps) {
        x = scheduler.step(standInModel(scheduler.scaleModelInput(x, t), t), t, x, { generator }).prevSample;
      }
      expect(result.samples.data).toEqual(x.data);
      expect(result.xT.data).toEqual(noise.data);
      expect(result.timesteps).toEqual([...scheduler.timesteps]);
      expect(result.samples.data.every(Number.isFinite)).toBe(true);
    });
  }

  test("a given x_T is scaled by initNoiseSigma too, and Euler's sigma_max start differs from x_T itself", async () => {
    const noise = new TorchGenerator(4).randn([1, 3, 4, 4]);
    const pipe = new DDIMPipeline({ unet: standIn(), scheduler: EulerDiscreteScheduler.fromConfig({}) });
    const inputs: Tensor[] = [];
    const seen = modelFromFunction((x, t) => {
      inputs.push(x);
      return standInModel(x, t as number);
    }, { sampleSize: 4, inChannels: 3 });
    pipe.unet = seen;
    await pipe.sample({ xT: noise, numInferenceSteps: 5 });
    // the first model input is (x_T sigma_max) / sqrt(sigma_max^2 + 1)
    const sigmaMax = pipe.scheduler.initNoiseSigma;
    expect(sigmaMax).toBeGreaterThan(10);
    const factor = sigmaMax / Math.sqrt(sigmaMax * sigmaMax + 1);
    expect(maxAbsDiff(inputs[0].data, noise.data.map((v) => v * factor))).toBeLessThan(1e-5);
  });

  test("the pipeline keeps a non-DDPM scheduler given to it, and rebuilds only a DDPM one as DDIM", () => {
    for (const scheduler of [PNDMScheduler.fromConfig({}), EulerDiscreteScheduler.fromConfig({})]) {
      expect(new DDIMPipeline({ unet: standIn(), scheduler }).scheduler).toBe(scheduler);
    }
    expect(new DDIMPipeline({ unet: standIn(), scheduler: DDPMScheduler.fromConfig({}) }).scheduler)
      .toBeInstanceOf(DDIMScheduler);
  });

  test("eta is refused with a scheduler that has none, naming both", async () => {
    const unet = standIn();
    const pipe = new DDIMPipeline({ unet, scheduler: HeunDiscreteScheduler.fromConfig({}) });
    await expect(pipe.sample({ eta: 0.5, numInferenceSteps: 4 })).rejects.toThrow(
      "eta 0.5 is a DDIMScheduler option; this pipeline's HeunDiscreteScheduler takes no eta",
    );
    expect(unet.calls).toBe(0);
  });
});

describe("DDIMPipeline with a DPM-Solver scheduler swapped in", () => {
  test("pipe.scheduler = DPMSolverMultistepScheduler.fromConfig(pipe.scheduler.toConfig()) samples with it", async () => {
    const pipe = new DDIMPipeline({ unet: standIn() });
    pipe.scheduler = DPMSolverMultistepScheduler.fromConfig(pipe.scheduler.toConfig());
    const { samples, xT, timesteps } = await pipe.sample({ numInferenceSteps: 10, seed: 3, batchSize: 2 });
    // the same loop by hand: x_T from the seed, then the DPM-Solver++ 2M steps on DDIM's (leading) schedule
    const scheduler = DPMSolverMultistepScheduler.fromConfig(DDIMScheduler.fromConfig({}).toConfig());
    scheduler.setTimesteps(10);
    expect(timesteps).toEqual([...scheduler.timesteps]);
    let x = new TorchGenerator(3).randn([2, 3, 4, 4]);
    expect(xT.data).toEqual(x.data);
    for (const t of scheduler.timesteps) x = scheduler.step(standInModel(x, t), t, x).prevSample;
    expect(samples.data).toEqual(x.data);
    // and it is not the DDIM result
    const ddim = await new DDIMPipeline({ unet: standIn() }).sample({ numInferenceSteps: 10, seed: 3, batchSize: 2 });
    expect(maxAbsDiff(samples.data, ddim.samples.data)).toBeGreaterThan(1e-3);
  });

  test("eta > 0 with the DPM-Solver scheduler is refused (its stochastic form is algorithm_type sde-dpmsolver++)", async () => {
    const pipe = new DDIMPipeline({ unet: standIn() });
    pipe.scheduler = DPMSolverMultistepScheduler.fromConfig(pipe.scheduler.toConfig());
    await expect(pipe.sample({ numInferenceSteps: 10, seed: 0, eta: 0.5 })).rejects.toThrow(
      "eta 0.5 is a DDIMScheduler option; this pipeline's DPMSolverMultistepScheduler takes no eta",
    );
  });
});
