import { describe, expect, test } from "bun:test";
import { builtinMixture } from "../../lib/models/builtin_models.ts";
import { DDPMScheduler } from "../../lib/schedulers/ddpm.ts";
import { noisePredictionError } from "../../lib/models/eps_error.ts";
import { modelFromFunction } from "../../lib/core/model.ts";
import { Tensor } from "../../lib/core/tensor.ts";

const ring = builtinMixture("ring2d");
const { alphasCumprod } = DDPMScheduler.fromConfig({ num_train_timesteps: 1000 });
const alphaBarOf = (t: number | readonly number[], n: number) =>
  typeof t === "number" ? new Array<number>(n).fill(alphasCumprod[t]) : t.map((s) => alphasCumprod[s]);
// The exact eps*, as a model: what a perfectly trained network would predict.
const ideal = modelFromFunction((x, t) => ring.idealNoise(x, alphaBarOf(t, x.shape[0])), {
  sampleSize: 1,
  inChannels: 2,
});

describe("noisePredictionError", () => {
  test("the exact eps* has zero error and its loss is the ideal loss", async () => {
    for (const timestep of [10, 500, "uniform"] as const) {
      const r = await noisePredictionError(ideal, ring, { alphasCumprod, timestep, draws: 64, seed: 3 });
      expect(r.excess).toBe(0);
      expect(r.modelLoss).toBe(r.idealLoss);
    }
  });

  test("a predictor off eps* by a constant c has error c^2 per dimension", async () => {
    const c = 0.3;
    const shifted = modelFromFunction((x, t) => {
      const star = ring.idealNoise(x, alphaBarOf(t, x.shape[0]));
      return new Tensor(star.data.map((v) => v + c), star.shape);
    }, { sampleSize: 1, inChannels: 2 });
    const r = await noisePredictionError(shifted, ring, { alphasCumprod, timestep: 300, draws: 64 });
    expect(r.excess).toBeCloseTo(c * c, 6);
    expect(r.excessError).toBeLessThan(1e-6);
  });

  test("predicting zero costs E|eps|^2 = 1 per dimension, split into the ideal loss and the excess", async () => {
    const zero = modelFromFunction((x) => Tensor.zeros(x.shape), { sampleSize: 1, inChannels: 2 });
    const r = await noisePredictionError(zero, ring, { alphasCumprod, draws: 4096, seed: 11 });
    // E|eps|^2 / d = 1 for standard normal noise; 4 standard errors of slack
    expect(Math.abs(r.modelLoss - 1)).toBeLessThan(4 * r.modelLossError);
    // the cross term E[(eps_theta - eps*) . (eps* - eps)] vanishes in expectation (eps* is the posterior mean)
    expect(Math.abs(r.modelLoss - (r.idealLoss + r.excess))).toBeLessThan(
      4 * Math.hypot(r.modelLossError, r.excessError),
    );
    expect(r.idealLoss).toBeGreaterThan(0);
    expect(r.idealLoss).toBeLessThan(r.modelLoss);
  });

  test("bad input is refused with the value named", async () => {
    const image = modelFromFunction((x) => x, { sampleSize: 4, inChannels: 3 });
    await expect(noisePredictionError(image, ring, { alphasCumprod })).rejects.toThrow(
      "The model takes [3, 4, 4] (48 values) but the law has dimension 2",
    );
    await expect(noisePredictionError(ideal, ring, { alphasCumprod, timestep: 1000 })).rejects.toThrow(
      'timestep must be "uniform" or an integer in [0, 999], got 1000',
    );
    await expect(noisePredictionError(ideal, ring, { alphasCumprod, draws: 1 })).rejects.toThrow(
      "draws must be an integer of at least 2, got 1",
    );
  });
});
