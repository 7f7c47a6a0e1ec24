/**
 * The DDPM ancestral sampler (Ho, Jain and Abbeel 2020, arXiv 2006.11239), matching diffusers' `DDPMScheduler`
 * number for number. In the DDIM paper it is the eta = 1 member of the family of eq. (16) when the variance is the
 * posterior ("fixed_small") one. Equation numbers are the DDIM paper's unless Ho et al. 2020 is named.
 *
 * | paper              | code                   | meaning                                                    |
 * |--------------------|------------------------|------------------------------------------------------------|
 * | alpha-bar_t        | `alphaBar`             | alphasCumprod[t]                                           |
 * | alpha-bar_{t'}     | `alphaBarPrev`         | alpha-bar at the previous timestep of the schedule         |
 * | alpha_t, beta_t    | `alphaT`, `betaT`      | alphaBar / alphaBarPrev and 1 - alphaT (the step's beta)   |
 * | x0                 | `predX0`               | the predicted clean sample, Ho et al. 2020 eq. (15)        |
 * | mu~_t              | `posteriorMean`        | Ho et al. 2020 eq. (7): coefficients of x0 and x_t         |
 * | beta~_t            | `posteriorVariance`    | Ho et al. 2020 eq. (7): (1 - alphaBarPrev)/(1 - alphaBar) beta_t |
 * | sigma_t            | `sigmaT`               | the noise standard deviation (by `variance_type`)          |
 *
 * @module
 */
import type { Tensor } from "../core/tensor.ts";
import {
  BASE_DEFAULTS,
  type BaseSchedulerConfig,
  THRESHOLDING_DEFAULTS,
  type ThresholdingConfig,
} from "./_scheduler_config.ts";
import { type NoiseOptions, SchedulerBase } from "./_base.ts";
import { predictionForm, type StepCoefficients } from "./_kernels.ts";
import type { SchedulerStepOutput } from "./scheduler.ts";

/**
 * How DDPM picks sigma_t: `fixed_small` sigma^2 = beta~_t (posterior), `fixed_large` sigma^2 = beta_t, their `_log`
 * forms, or `learned` / `learned_range` from extra model output channels.
 */
export type VarianceType =
  | "fixed_small"
  | "fixed_small_log"
  | "fixed_large"
  | "fixed_large_log"
  | "learned"
  | "learned_range";

/**
 * The variance types `DDPMScheduler` accepts.
 *
 * @example
 * ```ts
 * import { DDPMScheduler, VARIANCE_TYPES } from "../../mod.ts";
 * // exactly the names diffusers' DDPMScheduler knows: each is accepted, a misspelt one refused
 * for (const type of VARIANCE_TYPES) {
 *   const scheduler = DDPMScheduler.fromConfig({ variance_type: type });
 *   if (scheduler.config.variance_type !== type) throw new Error(`${type} was not kept`);
 * }
 * let refused = false;
 * try {
 *   DDPMScheduler.fromConfig({ variance_type: "fixed" });
 * } catch {
 *   refused = true;
 * }
 * if (!refused) throw new Error("an unknown variance_type must be refused");
 * ```
 */
export const VARIANCE_TYPES: readonly VarianceType[] = [
  "fixed_small",
  "fixed_small_log",
  "fixed_large",
  "fixed_large_log",
  "learned",
  "learned_range",
];

/** A resolved DDPM config: diffusers' `DDPMScheduler` keys, snake_case. */
export interface DDPMSchedulerConfig extends BaseSchedulerConfig, ThresholdingConfig {
  /** How sigma_t is chosen. */
  variance_type: VarianceType;
}

/** Options of `DDPMScheduler.step`: the noise source (one `randn(sample.shape)` per step with t > 0, as diffusers). */
export type DDPMStepOptions = NoiseOptions;

const DDPM_DEFAULTS: Readonly<DDPMSchedulerConfig> = Object.freeze({
  ...BASE_DEFAULTS,
  ...THRESHOLDING_DEFAULTS,
  variance_type: "fixed_small",
});

/** Per-timestep constants of Ho et al. 2020 eq. (7), float32 as diffusers computes them. */
interface DDPMCoefficients {
  sqrtAlphaBar: number;
  sqrtBetaBar: number;
  /** sqrt(alphaBarPrev) beta_t / (1 - alphaBar), the weight of x0 in mu~_t. */
  predX0Coeff: number;
  /** sqrt(alpha_t) (1 - alphaBarPrev) / (1 - alphaBar), the weight of x_t in mu~_t. */
  sampleCoeff: number;
  /** beta~_t clamped at 1e-20, the posterior variance. */
  posteriorVariance: number;
  /** beta_t of this step (1 - alphaBar/alphaBarPrev). */
  betaT: number;
}

const f32 = Math.fround;
const VARIANCE_FLOOR = f32(1e-20);

/**
 * The DDPM scheduler: ancestral sampling from the posterior q(x_{t-1} | x_t, x0) with x0 predicted, as diffusers'
 * `DDPMScheduler` (Ho et al. 2020 eq. (6)-(7)).
 *
 * x_{t-1} = sqrt(alphaBarPrev) beta_t / (1 - alphaBar) x0 + sqrt(alpha_t)(1 - alphaBarPrev)/(1 - alphaBar) x_t + sigma_t z
 *
 * @example
 * ```ts
 * import { DDPMScheduler, Tensor, TorchGenerator } from "../../mod.ts";
 * const scheduler = DDPMScheduler.fromConfig({ num_train_timesteps: 1000 });
 * scheduler.setTimesteps(20);
 * const generator = new TorchGenerator(0);
 * let x = generator.randn([1, 3, 8, 8]);
 * for (const t of scheduler.timesteps) {
 *   x = scheduler.step(Tensor.zeros(x.shape), t, x, { generator }).prevSample;
 * }
 * // eps = 0 predicts x0 = x_t / sqrt(alphaBar), clipped to [-1, 1]: the last step (no noise) lands inside it
 * if (x.data.some((v) => Math.abs(v) > 1 + 1e-6)) throw new Error("x_0 left the clipping range");
 * ```
 */
export class DDPMScheduler extends SchedulerBase<DDPMSchedulerConfig, DDPMStepOptions> {
  /** Whether the schedule is a custom list (then `numInferenceSteps` is null, as diffusers). */
  customTimesteps = false;

  /**
   * Build a scheduler from a diffusers config (snake_case; absent keys take diffusers' defaults).
   *
   * @param config `scheduler_config.json` as an object
   * @throws RangeError or TypeError naming a bad key and value
   */
  constructor(config: Partial<DDPMSchedulerConfig> | Record<string, unknown> = {}) {
    super(config, DDPM_DEFAULTS, { scheduler: "DDPMScheduler", enums: { variance_type: VARIANCE_TYPES } });
  }

  /**
   * Build a scheduler from a diffusers `scheduler_config.json` object.
   *
   * @param config the config, snake_case
   * @returns a new scheduler
   * @example
   * ```ts
   * import { DDPMScheduler } from "../../mod.ts";
   * const scheduler = DDPMScheduler.fromConfig({ variance_type: "fixed_large" });
   * if (scheduler.config.variance_type !== "fixed_large") throw new Error("the config key is kept");
   * ```
   */
  static fromConfig(config: Partial<DDPMSchedulerConfig> | Record<string, unknown> = {}): DDPMScheduler {
    return new DDPMScheduler(config);
  }

  /**
   * Choose the n timesteps to sample (the config's `timestep_spacing`), or take a custom descending list (after
   * which `numInferenceSteps` is null and `customTimesteps` true, as diffusers).
   *
   * tau = spacing(n, T), descending
   *
   * @param numInferenceSteps n, or a strictly descending list of training timesteps
   * @throws RangeError when n is not in [1, T] or the list is not strictly descending in [0, T)
   * @example
   * ```ts
   * import { DDPMScheduler } from "../../mod.ts";
   * const scheduler = DDPMScheduler.fromConfig({});
   * scheduler.setTimesteps([999, 800, 400, 0]);
   * if (scheduler.previousTimestep(800) !== 400 || scheduler.numInferenceSteps !== null) throw new Error("custom list");
   * ```
   */
  override setTimesteps(numInferenceSteps: number | readonly number[]): void {
    super.setTimesteps(numInferenceSteps);
    this.customTimesteps = typeof numInferenceSteps !== "number";
    if (this.customTimesteps) this.numInferenceSteps = null;
  }

  /**
   * One ancestral step from t to the previous timestep of the schedule (Ho et al. 2020 eq. (7) and (15)).
   *
   * predX0 = (x_t - sqrt(1 - alphaBar) eps) / sqrt(alphaBar);
   * x_{t'} = sqrt(alphaBarPrev) beta_t / (1 - alphaBar) predX0 + sqrt(alpha_t) (1 - alphaBarPrev) / (1 - alphaBar) x_t
   *   + sigma_t z, with z drawn only for t > 0
   *
   * `fixed_large_log` uses sigma_t = exp(0.5 ln beta_t) (diffusers takes the square root of the log, a NaN);
   * `learned` reads the extra channels as a log variance, sigma_t = exp(0.5 v) (diffusers takes sqrt(v)).
   *
   * @param modelOutput the prediction, shaped like `sample` (twice its channels for `learned` / `learned_range`)
   * @param timestep t, an entry of `timesteps`
   * @param sample x_t
   * @param options the noise source
   * @returns x_{t'} and the predicted x0
   * @throws RangeError for a shape mismatch, a timestep not in the schedule, a non-finite input, or both a
   *   generator and variance noise
   * @example
   * ```ts
   * import { DDIMScheduler, DDPMScheduler, Tensor, TorchGenerator } from "../../mod.ts";
   * // DDPM with fixed_small is DDIM with eta = 1 (DDIM paper, eq. (16) with eta = 1), clipping aside
   * const ddpm = DDPMScheduler.fromConfig({ clip_sample: false });
   * const ddim = DDIMScheduler.fromConfig({ clip_sample: false });
   * ddpm.setTimesteps(10);
   * ddim.setTimesteps(10);
   * const x = new TorchGenerator(0).randn([1, 3, 8, 8]);
   * const eps = new TorchGenerator(1).randn(x.shape);
   * const z = new TorchGenerator(2).randn(x.shape);
   * const a = ddpm.step(eps, 500, x, { varianceNoise: z }).prevSample;
   * const b = ddim.step(eps, 500, x, { eta: 1, varianceNoise: z }).prevSample;
   * if (a.data.some((v, i) => Math.abs(v - b.data[i]) > 1e-5)) throw new Error("DDPM and DDIM(eta = 1) differ");
   * ```
   */
  step(modelOutput: Tensor, timestep: number, sample: Tensor, options: DDPMStepOptions = {}): SchedulerStepOutput {
    const config = this.config;
    const varianceType = config.variance_type;
    const learned = varianceType === "learned" || varianceType === "learned_range";
    this.checkOutputAndNoise(modelOutput, sample, options, learned ? 2 : 1);
    // 1. alphas and betas of this step, from the table (once per timestep)
    const c = this.coefficientsAt(this.indexOf(timestep), (k) => this.#coefficients(k));
    this.checkPredictsX0(c.sqrtAlphaBar, timestep);
    // 2. predicted x0, Ho et al. 2020 eq. (15): predX0 = x0FromSample x_t + x0FromOutput m
    const form = predictionForm(config.prediction_type, c.sqrtAlphaBar, c.sqrtBetaBar);
    // 3. clip or threshold predX0 (thresholding: Imagen, Saharia et al. 2022, arXiv 2205.11487)
    const clipRange = !config.thresholding && config.clip_sample ? config.clip_sample_range : Infinity;
    // 4. the weights of predX0 and x_t in the posterior mean mu~_t, Ho et al. 2020 eq. (7)
    // 5. mu~_t = predX0Coeff predX0 + sampleCoeff x_t
    // 6. x_{t'} = mu~_t + sigma_t z, with z drawn only for t > 0 (sigma_t by variance_type)
    const noise = timestep > 0 ? this.stepNoise(sample, options, "at t > 0") : null;
    const k: StepCoefficients = {
      x0FromSample: form.x0FromSample,
      x0FromOutput: form.x0FromOutput,
      clipRange,
      x0Coeff: c.predX0Coeff,
      sampleCoeff: c.sampleCoeff,
      outputCoeff: 0,
      noiseCoeff: learned ? 0 : fixedSigma(varianceType, c),
    };
    const [m, variance] = learned ? splitChannels(modelOutput.data, sample) : [modelOutput.data, null];
    const result = this.affineStep(k, m, sample, learned ? null : noise);
    if (variance !== null) result.check += addLearnedNoise(result.prev, variance, noise, varianceType, c);
    return this.finishAffineStep(result, modelOutput, sample, options);
  }

  /** The constants of Ho et al. 2020 eq. (7) at schedule entry `index`, float32 as diffusers computes them. */
  #coefficients(index: number): DDPMCoefficients {
    const timestep = this.timesteps[index];
    const prevTimestep = this.previousTimestep(timestep);
    const alphaBar = this.alphasCumprod[timestep];
    const alphaBarPrev = prevTimestep >= 0 ? this.alphasCumprod[prevTimestep] : 1;
    const betaBar = f32(1 - alphaBar);
    const betaBarPrev = f32(1 - alphaBarPrev);
    const alphaT = f32(alphaBar / alphaBarPrev);
    const betaT = f32(1 - alphaT);
    return {
      sqrtAlphaBar: f32(Math.sqrt(alphaBar)),
      sqrtBetaBar: f32(Math.sqrt(betaBar)),
      predX0Coeff: f32(f32(f32(Math.sqrt(alphaBarPrev)) * betaT) / betaBar),
      sampleCoeff: f32(f32(f32(Math.sqrt(alphaT)) * betaBarPrev) / betaBar),
      posteriorVariance: Math.max(f32(f32(betaBarPrev / betaBar) * betaT), VARIANCE_FLOOR),
      betaT,
    };
  }
}

/** sigma_t of a fixed variance type: sqrt(beta~_t) or sqrt(beta_t), directly or through the log, float32. */
function fixedSigma(varianceType: VarianceType, c: DDPMCoefficients): number {
  switch (varianceType) {
    case "fixed_small":
      return f32(Math.sqrt(c.posteriorVariance));
    case "fixed_small_log":
      return f32(Math.exp(f32(0.5 * f32(Math.log(c.posteriorVariance)))));
    case "fixed_large":
      return f32(Math.sqrt(c.betaT));
    default: // fixed_large_log
      return f32(Math.exp(f32(0.5 * f32(Math.log(c.betaT)))));
  }
}

/**
 * Split a learned-variance model output [B, 2C, ...] into its prediction [B, C, ...] and its variance channels, each
 * contiguous (diffusers' `torch.split(model_output, sample.shape[1], dim=1)`).
 */
function splitChannels(m: Float32Array, sample: Tensor): [Float32Array, Float32Array] {
  const batch = sample.shape.length > 0 ? sample.shape[0] : 1;
  const itemSize = batch > 0 ? sample.size / batch : 0;
  const prediction = new Float32Array(sample.size);
  const variance = new Float32Array(sample.size);
  for (let item = 0; item < batch; item++) {
    prediction.set(m.subarray(2 * item * itemSize, (2 * item + 1) * itemSize), item * itemSize);
    variance.set(m.subarray((2 * item + 1) * itemSize, (2 * item + 2) * itemSize), item * itemSize);
  }
  return [prediction, variance];
}

/**
 * Add sigma_t z with a per-element learned sigma_t to x_{t'} in place (nothing at t = 0, where z is null); returns NaN
 * when a variance channel or a result is not finite.
 *
 * learned_range: log sigma^2 = frac ln beta_t + (1 - frac) ln beta~_t, frac = (v + 1) / 2 (Nichol and Dhariwal 2021,
 * arXiv 2102.09672, eq. (15)); learned: sigma = exp(0.5 v)
 */
function addLearnedNoise(
  prev: Float32Array,
  variance: Float32Array,
  noise: Float32Array | null,
  varianceType: VarianceType,
  c: DDPMCoefficients,
): number {
  const minLog = f32(Math.log(c.posteriorVariance));
  const maxLog = f32(Math.log(c.betaT));
  const range = varianceType === "learned_range";
  let check = 0;
  if (noise === null) {
    for (let i = 0; i < variance.length; i++) check += variance[i] - variance[i];
    return check;
  }
  for (let i = 0; i < prev.length; i++) {
    const v = variance[i];
    const frac = (v + 1) / 2;
    const sigma = range ? Math.exp(0.5 * (frac * maxLog + (1 - frac) * minLog)) : Math.exp(0.5 * v);
    const out = prev[i] + sigma * noise[i];
    prev[i] = out;
    check += out - out;
  }
  return check;
}
