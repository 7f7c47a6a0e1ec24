/**
 * How far a noise predictor is from the ideal one: L_simple split into the ideal loss and the model's own error,
 * measured on fresh draws from a known law (a `GaussianMixture`).
 *
 * | maths                          | code          | meaning                                                   |
 * |--------------------------------|---------------|-----------------------------------------------------------|
 * | x_0 ~ p, eps ~ N(0, I)         | draws         | fresh exact data and noise, from a seed                   |
 * | x_t                            | `xt`          | sqrt(alphaBar_t) x_0 + sqrt(1 - alphaBar_t) eps, Ho et al. eq. (4) |
 * | eps_theta(x_t, t)              | `epsTheta`    | the model under test                                      |
 * | eps*(x_t, t) = E[eps | x_t]    | `epsStar`     | the ideal predictor, `mixture.idealNoise`                 |
 * | E|eps_theta - eps|^2 / d       | `modelLoss`   | L_simple at t (what training minimises)                   |
 * | E|eps* - eps|^2 / d            | `idealLoss`   | its floor: no predictor does better                       |
 * | E|eps_theta - eps*|^2 / d      | `excess`      | the model's own error                                     |
 *
 * Because eps* is the posterior mean of eps given x_t, the cross term E[(eps_theta - eps*) . (eps* - eps)] is zero,
 * so modelLoss = idealLoss + excess in expectation: training can only shrink the excess.
 *
 * @module
 */
import type { GaussianMixture } from "./gaussian_mixture.ts";
import { meanAndError } from "../math/metrics.ts";
import type { DenoisingModel } from "../core/model.ts";
import { Tensor } from "../core/tensor.ts";
import { TorchGenerator } from "../core/torch_generator.ts";

/** Options of `noisePredictionError`. */
export interface NoisePredictionErrorOptions {
  /** alphaBar_t for t = 0 .. T-1 (a scheduler's `alphasCumprod`). */
  alphasCumprod: ArrayLike<number>;
  /** One timestep for every draw, or `"uniform"`: a stratified grid over 0 .. T-1 (default `"uniform"`). */
  timestep?: number | "uniform";
  /** How many draws (default 64). */
  draws?: number;
  /** The seed of the draws (default 0); pick one the model was not trained on. */
  seed?: number;
  /** Draws per model call (default 16). */
  batchSize?: number;
}

/** What `noisePredictionError` measured: per-dimension mean squared errors with their standard errors. */
export interface NoisePredictionError {
  /** E|eps_theta - eps|^2 / d, the model's L_simple on these draws. */
  modelLoss: number;
  modelLossError: number;
  /** E|eps* - eps|^2 / d, the ideal loss. */
  idealLoss: number;
  idealLossError: number;
  /** E|eps_theta - eps*|^2 / d, the model's own error. */
  excess: number;
  excessError: number;
  /** How many draws. */
  draws: number;
}

/**
 * Measure a noise predictor against the ideal eps* of the law its data came from.
 *
 * E|eps_theta - eps|^2 = E|eps* - eps|^2 + E|eps_theta - eps*|^2, with x_t = sqrt(alphaBar_t) x_0 + sqrt(1 - alphaBar_t) eps
 *
 * @param model the predictor (image-shaped: its `sampleSize` and `inChannels` give the shape of x_0)
 * @param mixture the exact law of x_0 (dimension `inChannels x sampleSize^2`)
 * @param options the alphaBar table, the timestep (or `"uniform"`), the number of draws, the seed
 * @returns the three mean squared errors per dimension, with standard errors over draws
 * @throws RangeError when the law's dimension does not fit the model, or a timestep or count is out of range
 * @example
 * ```ts
 * import { builtinMixture, DDPMScheduler, modelFromFunction, noisePredictionError, Tensor } from "../../mod.ts";
 * const zero = modelFromFunction((x) => Tensor.zeros(x.shape), { sampleSize: 1, inChannels: 2 });
 * const { alphasCumprod } = DDPMScheduler.fromConfig({ num_train_timesteps: 1000 });
 * const r = await noisePredictionError(zero, builtinMixture("ring2d"), { alphasCumprod, timestep: 500 });
 * // predicting zero costs E|eps|^2 = 1 per dimension: the ideal loss plus the excess
 * if (Math.abs(r.modelLoss - (r.idealLoss + r.excess)) > 0.1) throw new Error("the decomposition failed");
 * ```
 */
export async function noisePredictionError(
  model: DenoisingModel,
  mixture: GaussianMixture,
  options: NoisePredictionErrorOptions,
): Promise<NoisePredictionError> {
  const { alphasCumprod } = options;
  const T = alphasCumprod.length;
  const draws = options.draws ?? 64;
  const batchSize = options.batchSize ?? 16;
  const timestep = options.timestep ?? "uniform";
  const [height, width] = typeof model.sampleSize === "number"
    ? [model.sampleSize, model.sampleSize]
    : model.sampleSize;
  const shape = [model.inChannels, height, width];
  const d = model.inChannels * height * width;
  if (d !== mixture.dim) {
    throw new RangeError(
      `The model takes [${shape.join(", ")}] (${d} values) but the law has dimension ${mixture.dim}`,
    );
  }
  for (const [name, value] of [["draws", draws], ["batchSize", batchSize]] as const) {
    if (!Number.isInteger(value) || value < 2) {
      throw new RangeError(`${name} must be an integer of at least 2, got ${value}`);
    }
  }
  if (timestep !== "uniform" && !(Number.isInteger(timestep) && timestep >= 0 && timestep < T)) {
    throw new RangeError(`timestep must be "uniform" or an integer in [0, ${T - 1}], got ${timestep}`);
  }
  // 1. fresh draws x_0 ~ p and eps ~ N(0, I), and the timesteps (a shuffled stratified grid for "uniform")
  const generator = new TorchGenerator(options.seed ?? 0);
  const x0 = mixture.sample(draws, generator).samples.data;
  const noise = generator.randn([draws, d]).data;
  const order = generator.randn([draws]).data;
  const ranks = Array.from({ length: draws }, (_, k) => k).sort((a, b) => order[a] - order[b]);
  const timesteps = timestep === "uniform"
    ? ranks.map((k) => Math.floor(((k + 0.5) * T) / draws))
    : new Array<number>(draws).fill(timestep);
  const modelLoss = new Float64Array(draws);
  const idealLoss = new Float64Array(draws);
  const excess = new Float64Array(draws);
  for (let start = 0; start < draws; start += batchSize) {
    const count = Math.min(batchSize, draws - start);
    const ts = timesteps.slice(start, start + count);
    const alphaBars = ts.map((t) => alphasCumprod[t]);
    // 2. x_t = sqrt(alphaBar_t) x_0 + sqrt(1 - alphaBar_t) eps, Ho et al. eq. (4)
    const xt = new Float32Array(count * d);
    for (let b = 0; b < count; b++) {
      const sqrtAlphaBar = Math.sqrt(alphaBars[b]);
      const sqrtOneMinusAlphaBar = Math.sqrt(1 - alphaBars[b]);
      for (let i = 0; i < d; i++) {
        const k = (start + b) * d + i;
        xt[b * d + i] = sqrtAlphaBar * x0[k] + sqrtOneMinusAlphaBar * noise[k];
      }
    }
    const batch = new Tensor(xt, [count, ...shape]);
    // 3. the model's prediction and the ideal one on the same x_t
    const epsTheta = (await model.predict(batch, ts)).data;
    const epsStar = mixture.idealNoise(batch, alphaBars).data;
    if (epsTheta.length !== count * d) {
      throw new RangeError(`The model returned ${epsTheta.length} values for ${count * d}: it must predict eps`);
    }
    // 4. the three squared errors per draw
    for (let b = 0; b < count; b++) {
      let toNoise = 0, idealToNoise = 0, toIdeal = 0;
      for (let i = 0; i < d; i++) {
        const eps = noise[(start + b) * d + i];
        toNoise += (epsTheta[b * d + i] - eps) ** 2;
        idealToNoise += (epsStar[b * d + i] - eps) ** 2;
        toIdeal += (epsTheta[b * d + i] - epsStar[b * d + i]) ** 2;
      }
      modelLoss[start + b] = toNoise / d;
      idealLoss[start + b] = idealToNoise / d;
      excess[start + b] = toIdeal / d;
    }
  }
  const [m, i, e] = [modelLoss, idealLoss, excess].map(meanAndError);
  return {
    modelLoss: m.mean,
    modelLossError: m.standardError,
    idealLoss: i.mean,
    idealLossError: i.standardError,
    excess: e.mean,
    excessError: e.standardError,
    draws,
  };
}
