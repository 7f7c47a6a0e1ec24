import { describe, expect, test } from "bun:test";
import { DDIMScheduler } from "../../lib/schedulers/ddim.ts";
import { DDPMScheduler } from "../../lib/schedulers/ddpm.ts";
import { DDPMPipeline } from "../../lib/pipelines/ddpm_pipeline.ts";
import { HeunDiscreteScheduler } from "../../lib/schedulers/heun_discrete.ts";
import { Tensor } from "../../lib/core/tensor.ts";
import { DPMSolverMultistepScheduler } from "../../lib/schedulers/dpm_solver_multistep.ts";
import { TorchGenerator } from "../../lib/core/torch_generator.ts";
import { maxAbsDiff, schedulerFixtures, standInModel, standInUNet } from "../_fixtures.ts";

describe("DDPMPipeline", () => {
  // test/fixtures/diffusers-schedulers.json, seeded_loops: x = torch.randn(shape, generator=g), then
  // DDPMScheduler().step(model(x, t), t, x, generator=g) for all 1000 t, one randn per step with t > 0
  for (const loop of schedulerFixtures().seeded_loops.filter((l) => l.scheduler === "ddpm")) {
    test(`reproduces diffusers' seeded DDPM loop (seed ${loop.seed}, ${loop.n} steps) within 2e-4`, async () => {
      const pipe = new DDPMPipeline({ unet: standInUNet() });
      const { samples, timesteps } = await pipe.sample({ seed: loop.seed, batchSize: schedulerFixtures().shape[0] });
      expect(timesteps.length).toBe(loop.n);
      expect(maxAbsDiff(samples.data, loop.final)).toBeLessThan(2e-4);
    });
  }

  test("the same seed repeats exactly and another seed differs (fresh noise at every t > 0)", async () => {
    const pipe = new DDPMPipeline({ unet: standInUNet() });
    const a = await pipe.sample({ seed: 1, numInferenceSteps: 20 });
    const b = await pipe.sample({ seed: 1, numInferenceSteps: 20 });
    const xT = new TorchGenerator(1).randn([1, 3, 4, 4]);
    const c = await pipe.sample({ seed: 2, numInferenceSteps: 20, xT });
    expect(b.samples.data).toEqual(a.samples.data);
    expect(a.xT.data).toEqual(xT.data);
    expect(maxAbsDiff(a.samples.data, c.samples.data)).toBeGreaterThan(1e-3);
  });

  test("fromPretrained on a builtin gives a DDPMScheduler with the model's config and 1000 default steps", async () => {
    const pipe = await DDPMPipeline.fromPretrained("builtin:ring2d");
    expect(pipe.scheduler).toBeInstanceOf(DDPMScheduler);
    const { samples, timesteps } = await pipe.sample({ seed: 0, batchSize: 8, trajectory: 100 });
    expect(timesteps.length).toBe(1000);
    expect(samples.shape).toEqual([8, 2, 1, 1]);
    expect(Array.from(samples.data).every(Number.isFinite)).toBe(true);
  });

  test("a scheduler given to the constructor is used as given", () => {
    const ddim = DDIMScheduler.fromConfig({});
    expect(new DDPMPipeline({ unet: standInUNet(), scheduler: ddim }).scheduler).toBe(ddim);
  });

  test("eta and out-of-range steps are refused with the value named", async () => {
    const pipe = new DDPMPipeline({ unet: standInUNet() });
    await expect(pipe.sample({ eta: 1 } as never)).rejects.toThrow(/DDPMPipeline takes no eta/);
    await expect(pipe.sample({ numInferenceSteps: 0 })).rejects.toThrow(/got 0/);
    await expect(pipe.sample({ numInferenceSteps: 5000 })).rejects.toThrow(/1000 training timesteps, got 5000/);
  });
});

describe("DDPMPipeline with a swapped scheduler", () => {
  test("pipe.scheduler = HeunDiscreteScheduler.fromConfig(pipe.scheduler.toConfig()) runs as a hand loop", async () => {
    const pipe = new DDPMPipeline({ unet: standInUNet() });
    pipe.scheduler = HeunDiscreteScheduler.fromConfig(pipe.scheduler.toConfig());
    const { samples, timesteps } = await pipe.sample({ seed: 3, numInferenceSteps: 8 });
    expect(timesteps.length).toBe(15); // 2 n - 1 model calls
    const scheduler = HeunDiscreteScheduler.fromConfig(pipe.scheduler.toConfig());
    scheduler.setTimesteps(8);
    const noise = new TorchGenerator(3).randn([1, 3, 4, 4]);
    let x = new Tensor(noise.data.map((v) => v * scheduler.initNoiseSigma), noise.shape);
    for (const t of scheduler.timesteps) {
      x = scheduler.step(standInModel(scheduler.scaleModelInput(x, t), t), t, x).prevSample;
    }
    expect(samples.data).toEqual(x.data);
  });
});

describe("DDPMPipeline with a DPM-Solver scheduler swapped in", () => {
  test("pipe.scheduler = DPMSolverMultistepScheduler.fromConfig(pipe.scheduler.toConfig()) samples with it", async () => {
    const pipe = new DDPMPipeline({ unet: standInUNet() });
    pipe.scheduler = DPMSolverMultistepScheduler.fromConfig(pipe.scheduler.toConfig());
    const { samples, timesteps } = await pipe.sample({ numInferenceSteps: 20, seed: 5 });
    const scheduler = DPMSolverMultistepScheduler.fromConfig(DDPMScheduler.fromConfig({}).toConfig());
    scheduler.setTimesteps(20);
    expect(timesteps).toEqual([...scheduler.timesteps]);
    let x = new TorchGenerator(5).randn([1, 3, 4, 4]);
    for (const t of scheduler.timesteps) x = scheduler.step(standInModel(x, t), t, x).prevSample;
    expect(samples.data).toEqual(x.data);
  });

  test("DDPM's default of 1000 steps repeats a timestep under DPM-Solver's leading spacing and is refused", async () => {
    // leading spacing: T // (n + 1) = 1000 // 1001 = 0, so every timestep is 0 (diffusers takes it and returns inf)
    const pipe = new DDPMPipeline({ unet: standInUNet() });
    pipe.scheduler = DPMSolverMultistepScheduler.fromConfig(pipe.scheduler.toConfig());
    await expect(pipe.sample({ seed: 0 })).rejects.toThrow(
      "The 1000-step schedule repeats timestep 0, and solver_order 2 cannot step from a repeated noise level",
    );
  });
});
