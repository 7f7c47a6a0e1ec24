import { describe, expect, test } from "bun:test";
import { DDIMScheduler } from "../../lib/schedulers/ddim.ts";
import {
  checkEdictP,
  edictInversionLoop,
  edictSamplingLoop,
  EDICTScheduler,
  edictState,
} from "../../lib/schedulers/edict.ts";
import { Tensor } from "../../lib/core/tensor.ts";
import { TorchGenerator } from "../../lib/core/torch_generator.ts";
import { BUILTIN_SCHEDULER_CONFIG } from "../../lib/models/builtin_models.ts";
import { maxAbsDiff, standInModel, standInUNet, tanhImage } from "../_fixtures.ts";

const SHAPE = [2, 3, 4, 4];
const standIn = standInUNet();
const config = { ...BUILTIN_SCHEDULER_CONFIG, clip_sample: false };

const image = (seed: number) => tanhImage(seed, SHAPE);

describe("EDICT's step", () => {
  test("with x = y, the first half-step E1 is the DDIM scheduler's eta = 0 step", async () => {
    const scheduler = EDICTScheduler.fromConfig(config, { p: 0.93 });
    scheduler.setTimesteps(10);
    const ddim = DDIMScheduler.fromConfig(config);
    ddim.setTimesteps(10);
    const xT = new TorchGenerator(1).randn(SHAPE);
    const t = scheduler.timesteps[3];
    // undo the averaging layers (E4', E3') on the step's output to read x^inter; with y_T = x_T, E1 is DDIM's
    // eta = 0 step from x_T with eps(x_T, t)
    const out = await scheduler.denoiseStep(standIn, t, edictState(xT, { precision: "float64" }));
    const p = scheduler.p;
    const xInter = out.x.map((x, k) => (x - (1 - p) * ((out.y[k] - (1 - p) * x) / p)) / p);
    const reference = ddim.step(standInModel(xT, t), t, xT).prevSample;
    expect(maxAbsDiff(xInter, reference.data)).toBeLessThan(1e-5);
  });

  test("one inverse step undoes one denoising step (stand-in model, float64 state, every timestep)", async () => {
    const scheduler = EDICTScheduler.fromConfig(config);
    scheduler.setTimesteps(20);
    const generator = new TorchGenerator(2);
    for (const t of scheduler.timesteps) {
      const start = {
        x: Float64Array.from(generator.randn(SHAPE).data),
        y: Float64Array.from(generator.randn(SHAPE).data),
        shape: SHAPE,
      };
      const down = await scheduler.denoiseStep(standIn, t, start);
      const back = await scheduler.inverseStep(standIn, t, down);
      expect(maxAbsDiff(back.x, start.x)).toBeLessThan(1e-9);
      expect(maxAbsDiff(back.y, start.y)).toBeLessThan(1e-9);
    }
  });

  test("the loops yield { i, t, x, predX0 } over the schedule, descending to sample and ascending to invert", async () => {
    const scheduler = EDICTScheduler.fromConfig(config);
    scheduler.setTimesteps(5);
    const down: number[] = [];
    const up: number[] = [];
    for await (const step of edictSamplingLoop(standIn, scheduler, { state: edictState(image(3)) })) {
      down.push(step.t);
      expect(step.x.data).toEqual(Float32Array.from(step.state.x));
      expect(step.predX0.shape).toEqual(SHAPE);
    }
    for await (const step of edictInversionLoop(standIn, scheduler, { state: edictState(image(3)) })) up.push(step.t);
    expect(down).toEqual([800, 600, 400, 200, 0]);
    expect(up).toEqual([0, 200, 400, 600, 800]);
  });

  test("the round trip through a stand-in model returns the image in float32 and float64 at S = 10 and 50", async () => {
    for (const S of [10, 50]) {
      for (const precision of ["float32", "float64"] as const) {
        const scheduler = EDICTScheduler.fromConfig(config);
        scheduler.setTimesteps(S);
        const x0 = image(4);
        let latent = edictState(x0, { precision });
        for await (const step of edictInversionLoop(standIn, scheduler, { state: latent })) latent = step.state;
        let decoded = latent;
        for await (const step of edictSamplingLoop(standIn, scheduler, { state: latent })) decoded = step.state;
        // float32: each step rounds x^inter, y^inter and the mix, and dividing by p and a_t in the inverse scales
        // those roundings up; float64 leaves the model input's float32 rounding, which is the same both ways
        expect(maxAbsDiff(decoded.x, x0.data)).toBeLessThan(precision === "float32" ? 1e-3 : 1e-9);
      }
    }
  });
});

describe("EDICT refuses bad input", () => {
  test("p outside (0, 1) names the value", () => {
    for (const p of [0, 1, -0.5, 1.5, NaN]) {
      expect(() => EDICTScheduler.fromConfig({}, { p })).toThrow(`EDICT's mixing weight p must be in (0, 1)`);
      expect(() => checkEdictP(p)).toThrow(`got ${p}`);
    }
  });

  test("a state of the wrong size or mixed precision, and a timestep outside the schedule", async () => {
    const scheduler = EDICTScheduler.fromConfig({});
    scheduler.setTimesteps(4);
    const bad = { x: new Float32Array(3), y: new Float32Array(4), shape: [1, 4] };
    await expect(scheduler.denoiseStep(standIn, 750, bad)).rejects.toThrow("has 3 values but its shape [1, 4] holds 4");
    const mixed = { x: new Float32Array(4), y: new Float64Array(4), shape: [1, 4] };
    await expect(scheduler.denoiseStep(standIn, 750, mixed)).rejects.toThrow("mixes float32 and float64");
    await expect(scheduler.denoiseStep(standIn, 700, edictState(Tensor.zeros([1, 4])))).rejects.toThrow(
      "Timestep 700 is not in the EDICT schedule [750, 500, 250, 0]",
    );
  });
});
