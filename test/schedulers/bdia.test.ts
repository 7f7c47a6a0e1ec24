import { describe, expect, test } from "bun:test";
import {
  bdiaInverseState,
  bdiaInversionLoop,
  bdiaSamplingLoop,
  BDIAScheduler,
  type BDIAState,
  bdiaState,
  checkBdiaGamma,
  checkBdiaInvertible,
} from "../../lib/schedulers/bdia.ts";
import { BUILTIN_SCHEDULER_CONFIG } from "../../lib/models/builtin_models.ts";
import { DDIMScheduler } from "../../lib/schedulers/ddim.ts";
import { samplingLoop } from "../../lib/pipelines/sampling.ts";
import { Tensor } from "../../lib/core/tensor.ts";
import { TorchGenerator } from "../../lib/core/torch_generator.ts";
import { maxAbsDiff, standInModel, standInUNet, tanhImage } from "../_fixtures.ts";

const SHAPE = [2, 3, 4, 4];
const standIn = standInUNet();
const config = { ...BUILTIN_SCHEDULER_CONFIG, clip_sample: false };

const image = (seed: number) => tanhImage(seed, SHAPE);

async function roundTrip(gamma: number, S: number, precision: "float32" | "float64"): Promise<number> {
  const scheduler = BDIAScheduler.fromConfig(config, { gamma });
  scheduler.setTimesteps(S);
  const x0 = image(4);
  let latent = bdiaInverseState(x0, { precision });
  for await (const step of bdiaInversionLoop(standIn, scheduler, { state: latent })) latent = step.state;
  // decode from the pair (z_S, z_{S-1}): B1 from the second timestep on
  let decoded: BDIAState = { sample: latent.cleaner!, noisier: latent.sample, shape: SHAPE };
  for await (const step of bdiaSamplingLoop(standIn, scheduler, { state: decoded })) decoded = step.state;
  return maxAbsDiff(decoded.sample, x0.data);
}

describe("BDIA-DDIM's step", () => {
  test("with gamma = 0 the sampling loop is the DDIM scheduler's eta = 0 loop", async () => {
    const bdia = BDIAScheduler.fromConfig(config, { gamma: 0 });
    bdia.setTimesteps(20);
    const ddim = DDIMScheduler.fromConfig(config);
    ddim.setTimesteps(20);
    const xT = new TorchGenerator(1).randn(SHAPE);
    const ours: Tensor[] = [];
    for await (const step of bdiaSamplingLoop(standIn, bdia, { state: bdiaState(xT) })) ours.push(step.x);
    let k = 0;
    for await (const step of samplingLoop(standIn, ddim, { sample: xT })) {
      // DDIM rounds its coefficients to float32 as diffusers does; BDIA keeps them in float64
      expect(maxAbsDiff(ours[k++].data, step.x.data)).toBeLessThan(1e-5);
    }
    expect(k).toBe(20);
  });

  test("the first sampling step from noise is a plain DDIM step, for any gamma", () => {
    const ddim = DDIMScheduler.fromConfig(config);
    ddim.setTimesteps(10);
    const xT = new TorchGenerator(2).randn(SHAPE);
    const reference = ddim.step(standInModel(xT, 900), 900, xT).prevSample;
    for (const gamma of [0.3, 1]) {
      const bdia = BDIAScheduler.fromConfig(config, { gamma });
      bdia.setTimesteps(10);
      const { sample, noisier } = bdia.step(standInModel(xT, 900), 900, bdiaState(xT));
      expect(maxAbsDiff(sample, reference.data)).toBeLessThan(1e-5);
      expect(noisier).toEqual(xT.data);
    }
  });

  test("the inverse step undoes the step: z_{i+1} comes back from (z_i, z_{i-1}) (float64, every timestep)", () => {
    const generator = new TorchGenerator(3);
    for (const gamma of [0.2, 0.5, 1]) {
      const scheduler = BDIAScheduler.fromConfig(config, { gamma });
      scheduler.setTimesteps(25);
      for (const t of scheduler.timesteps.slice(1)) {
        const zi = Float64Array.from(generator.randn(SHAPE).data);
        const zNext = Float64Array.from(generator.randn(SHAPE).data);
        const eps = standInModel(new Tensor(Float32Array.from(zi), SHAPE), t);
        const down = scheduler.step(eps, t, { sample: zi, noisier: zNext, shape: SHAPE });
        const up = scheduler.inverseStep(eps, t, { sample: zi, cleaner: down.sample, shape: SHAPE });
        expect(maxAbsDiff(up.sample, zNext)).toBeLessThan(1e-12 / gamma);
        expect(up.cleaner).toBe(zi);
      }
    }
  });

  test("the round trip through a stand-in model returns the image at S = 10 and 50 (gamma = 1, float32 and float64)", async () => {
    for (const S of [10, 50]) {
      expect(await roundTrip(1, S, "float32")).toBeLessThan(1e-5);
      expect(await roundTrip(1, S, "float64")).toBeLessThan(1e-12);
    }
  });

  test("inversion multiplies rounding errors by 1 / gamma per step: gamma = 0.5 at S = 50 loses float32, not float64", async () => {
    // the recursion's parasitic mode grows like gamma^-S when run upwards: 2^50 u32 ~ 7e7, 2^50 u64 ~ 0.1
    expect(await roundTrip(0.5, 10, "float32")).toBeLessThan(1e-3);
    expect(await roundTrip(0.5, 50, "float32")).toBeGreaterThan(1);
    expect(await roundTrip(0.5, 50, "float64")).toBeLessThan(1e-2);
  });

  test("the loops visit the schedule: sampling t_S ... t_1, inversion t_1 (DDIM step) then t_1 ... t_{S-1}", async () => {
    const scheduler = BDIAScheduler.fromConfig(config);
    scheduler.setTimesteps(4);
    const down: number[] = [];
    const up: number[] = [];
    for await (const step of bdiaSamplingLoop(standIn, scheduler, { state: bdiaState(image(5)) })) down.push(step.t);
    for await (const step of bdiaInversionLoop(standIn, scheduler, { state: bdiaInverseState(image(5)) })) {
      up.push(step.t);
    }
    expect(down).toEqual([750, 500, 250, 0]);
    expect(up).toEqual([0, 0, 250, 500]);
  });
});

describe("BDIA refuses bad input", () => {
  test("gamma outside [0, 1] names the value", () => {
    for (const gamma of [-0.1, 1.5, NaN]) {
      expect(() => BDIAScheduler.fromConfig({}, { gamma })).toThrow(
        `BDIA's gamma must be in [0, 1] (0 is DDIM), got ${gamma}`,
      );
      expect(() => checkBdiaGamma(gamma)).toThrow(`got ${gamma}`);
    }
  });

  test("gamma = 0 samples (it is DDIM) but refuses to invert, saying why", async () => {
    expect(() => checkBdiaInvertible(0)).toThrow("BDIA with gamma = 0 is DDIM");
    const scheduler = BDIAScheduler.fromConfig({}, { gamma: 0 });
    scheduler.setTimesteps(4);
    const state = bdiaInverseState(Tensor.zeros([1, 4]));
    expect(() => scheduler.inverseStep(Tensor.zeros([1, 4]), 0, state)).toThrow(
      "cannot be solved for it and the inversion would not be exact",
    );
    const loop = bdiaInversionLoop(standIn, scheduler, { state: bdiaInverseState(image(1)) });
    await expect(loop.next()).rejects.toThrow("BDIA with gamma = 0 is DDIM");
  });

  test("a z_{i+1} at the first timestep, a first inversion step elsewhere than t_1, a model output of another shape", () => {
    const scheduler = BDIAScheduler.fromConfig({});
    scheduler.setTimesteps(4);
    const z = new Float32Array(4);
    expect(() => scheduler.step(Tensor.zeros([1, 4]), 750, { sample: z, noisier: z, shape: [1, 4] })).toThrow(
      "at the first timestep 750 has no z_{i+1}",
    );
    expect(() => scheduler.inverseStep(Tensor.zeros([1, 4]), 500, bdiaInverseState(Tensor.zeros([1, 4])))).toThrow(
      "lands on the last timestep 0, got timestep 500",
    );
    expect(() => scheduler.step(Tensor.zeros([1, 5]), 750, bdiaState(Tensor.zeros([1, 4])))).toThrow(
      "The model output has shape [1, 5] but the BDIA state has shape [1, 4]",
    );
  });
});
