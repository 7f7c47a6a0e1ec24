/**
 * The DDPM ancestral sampler (Ho, Jain and Abbeel 2020, arXiv 2006.11239), matching diffusers' `DDPMScheduler`
 * number for number. In the DDIM paper it is the eta = 1 member of the family of eq. (16) when the variance is the
 * posterior ("fixed_small") one.
 *
 * | paper              | code                   | meaning                                               |
 * |--------------------|------------------------|-------------------------------------------------------|
 * | alpha-bar_t        | `alphaBar`             | alphasCumprod[t]                                      |
 * | alpha-bar_{t'}     | `alphaBarPrev`         | alpha-bar at the previous timestep of the schedule    |
 * | alpha_t, beta_t    | `alphaT`, `betaT`      | alphaBar / alphaBarPrev and 1 - alphaT (step's beta)  |
 * | x0                 | `predX0`               | the predicted clean sample, eq. (15)                  |
 * | mu~_t              | `posteriorMean`        | eq. (7): coefficients of x0 and x_t                   |
 * | beta~_t            | `posteriorVariance`    | eq. (7): (1 - alphaBarPrev)/(1 - alphaBar) beta_t     |
 * | sigma_t            | `sigmaT`               | the noise standard deviation (by `variance_type`)     |
 *
 * @module
 */
import { Tensor } from "../core/tensor.ts";
import type { TorchGenerator } from "../core/torch_generator.ts";
import { checkStepCount, spacedTimesteps } from "../math/schedules.ts";
import {
  BASE_DEFAULTS,
  type BaseSchedulerConfig,
  buildSchedule,
  checkCustomTimesteps,
  checkModelOutputShape,
  checkSpacedTimesteps,
  checkTrainTimestep,
  copyConfig,
  mixWithAlphaBar,
  reportNonFinite,
  resolveConfig,
  scheduleIndex,
  THRESHOLDING_DEFAULTS,
  type ThresholdingConfig,
  thresholdInPlace,
} from "./_scheduler_config.ts";
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

/** The variance types `DDPMScheduler` accepts. */
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

/** Options of `DDPMScheduler.step`. */
export interface DDPMStepOptions {
  /** Draws the noise (one `randn(sample.shape)` per step with t > 0, as diffusers). */
  generator?: TorchGenerator;
  /** The noise to use at t > 0 instead of drawing it. */
  varianceNoise?: Tensor;
}

const DDPM_DEFAULTS: Readonly<DDPMSchedulerConfig> = Object.freeze({
  ...BASE_DEFAULTS,
  ...THRESHOLDING_DEFAULTS,
  variance_type: "fixed_small",
});

/** Per-timestep constants of eq. (7), float32 as diffusers computes them. */
interface DDPMCoefficients {
  timestep: number;
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
 * `DDPMScheduler`.
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
 * ```
 */
export class DDPMScheduler {
  /** The resolved snake_case config. */
  readonly config: Readonly<DDPMSchedulerConfig>;
  /** beta_t, float32. */
  readonly betas: Float32Array;
  /** alpha-bar_t, float32, length T. */
  readonly alphasCumprod: Float32Array;
  /** The standard deviation of the initial noise x_T ~ N(0, I). */
  readonly initNoiseSigma = 1;
  /** Model evaluations per step (one). */
  readonly order = 1;
  /** n, once `setTimesteps(n)` was called (null for a custom list or before). */
  numInferenceSteps: number | null = null;
  /** Whether the schedule is a custom list. */
  customTimesteps = false;
  #timesteps: readonly number[];
  #indexOf: Map<number, number>;
  #coefficients: DDPMCoefficients[] = [];
  #noise = new Float32Array(0);

  /**
   * Build a scheduler from a diffusers config (snake_case; absent keys take diffusers' defaults).
   *
   * @param config `scheduler_config.json` as an object
   * @throws RangeError or TypeError naming a bad key and value
   */
  constructor(config: Partial<DDPMSchedulerConfig> | Record<string, unknown> = {}) {
    this.config = Object.freeze(resolveConfig({ ...config } as Record<string, unknown>, DDPM_DEFAULTS, {
      scheduler: "DDPMScheduler",
      enums: { variance_type: VARIANCE_TYPES },
    }));
    const { betas, alphasCumprod } = buildSchedule(this.config);
    this.betas = betas;
    this.alphasCumprod = alphasCumprod;
    const all = Array.from({ length: this.numTrainTimesteps }, (_, k) => this.numTrainTimesteps - 1 - k);
    this.#timesteps = Object.freeze(all);
    this.#indexOf = new Map(all.map((t, k) => [t, k]));
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
   * ```
   */
  static fromConfig(config: Partial<DDPMSchedulerConfig> | Record<string, unknown> = {}): DDPMScheduler {
    return new DDPMScheduler(config);
  }

  /**
   * The config in diffusers' snake_case form, every key resolved.
   *
   * @returns a fresh object that `fromConfig` accepts
   * @example
   * ```ts
   * import { DDPMScheduler } from "../../mod.ts";
   * DDPMScheduler.fromConfig({}).toConfig().variance_type; // "fixed_small"
   * ```
   */
  toConfig(): DDPMSchedulerConfig {
    return copyConfig(this.config);
  }

  /** T, the number of training timesteps. */
  get numTrainTimesteps(): number {
    return this.config.num_train_timesteps;
  }

  /** The timesteps of the current schedule, descending (all T of them until `setTimesteps`). */
  get timesteps(): readonly number[] {
    return this.#timesteps;
  }

  /**
   * Choose the n timesteps to sample (the config's `timestep_spacing`), or take a custom descending list.
   *
   * tau = spacing(n, T), descending; see `spacedTimesteps`
   *
   * @param numInferenceSteps n, or a strictly descending list of training timesteps
   * @throws RangeError when n is not in [1, T] or the list is not strictly descending in [0, T)
   * @example
   * ```ts
   * import { DDPMScheduler } from "../../mod.ts";
   * const scheduler = DDPMScheduler.fromConfig({});
   * scheduler.setTimesteps([999, 800, 400, 0]);
   * ```
   */
  setTimesteps(numInferenceSteps: number | readonly number[]): void {
    let timesteps: number[];
    if (typeof numInferenceSteps === "number") {
      checkStepCount(numInferenceSteps, this.numTrainTimesteps);
      timesteps = spacedTimesteps(this.config.timestep_spacing, numInferenceSteps, {
        numTrainTimesteps: this.numTrainTimesteps,
        stepsOffset: this.config.steps_offset,
      });
      checkSpacedTimesteps(timesteps, this.numTrainTimesteps, this.config.steps_offset);
      this.numInferenceSteps = numInferenceSteps;
      this.customTimesteps = false;
    } else {
      timesteps = checkCustomTimesteps(numInferenceSteps, this.numTrainTimesteps, "descending");
      this.numInferenceSteps = null;
      this.customTimesteps = true;
    }
    this.#timesteps = Object.freeze(timesteps);
    this.#indexOf = new Map(timesteps.map((t, k) => [t, k]));
    this.#coefficients = [];
  }

  /**
   * The timestep a step from t lands on: the next entry of the schedule, or -1 after the last one (as diffusers).
   *
   * prev(tau_i) = tau_{i-1}, prev(tau_1) = -1
   *
   * @param timestep t, an entry of `timesteps`
   * @returns the previous timestep, or -1
   * @throws RangeError if t is not in the schedule
   * @example
   * ```ts
   * import { DDPMScheduler } from "../../mod.ts";
   * const scheduler = DDPMScheduler.fromConfig({});
   * scheduler.setTimesteps(10);
   * scheduler.previousTimestep(900); // 800
   * ```
   */
  previousTimestep(timestep: number): number {
    const index = this.#index(timestep);
    return index + 1 < this.#timesteps.length ? this.#timesteps[index + 1] : -1;
  }

  /**
   * Returns the sample unchanged (DDPM needs no input scaling); kept for interchangeability with diffusers.
   *
   * @param sample x_t
   * @param _timestep t (unused)
   * @returns the same sample
   * @example
   * ```ts
   * import { DDPMScheduler, Tensor } from "../../mod.ts";
   * DDPMScheduler.fromConfig({}).scaleModelInput(Tensor.zeros([1]), 0);
   * ```
   */
  scaleModelInput(sample: Tensor, _timestep?: number): Tensor {
    return sample;
  }

  /**
   * One ancestral step from t to the previous timestep of the schedule (DDPM eq. 7 and 15).
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
   * import { DDPMScheduler, Tensor, TorchGenerator } from "../../mod.ts";
   * const scheduler = DDPMScheduler.fromConfig({});
   * const x = new TorchGenerator(0).randn([1, 3, 8, 8]);
   * const { prevSample } = scheduler.step(Tensor.zeros(x.shape), 999, x, { generator: new TorchGenerator(1) });
   * ```
   */
  step(modelOutput: Tensor, timestep: number, sample: Tensor, options: DDPMStepOptions = {}): SchedulerStepOutput {
    const varianceType = this.config.variance_type;
    const learned = varianceType === "learned" || varianceType === "learned_range";
    checkModelOutputShape(modelOutput, sample, learned ? 2 : 1);
    if (options.generator !== undefined && options.varianceNoise !== undefined) {
      throw new RangeError("Pass either a generator or varianceNoise to step, not both");
    }
    // 1. alphas and betas of this step, computed once per timestep
    const c = this.#coefficientsAt(this.#index(timestep));
    const config = this.config;
    if (c.sqrtAlphaBar === 0 && config.prediction_type === "epsilon") {
      throw new RangeError(
        `alphasCumprod[${timestep}] is 0 (zero terminal SNR), so an epsilon prediction cannot give x0 there; ` +
          `use prediction_type "v_prediction"`,
      );
    }
    // 6. the noise z, drawn only for t > 0
    let noise: Float32Array | null = null;
    if (timestep > 0) {
      if (options.varianceNoise !== undefined) {
        checkModelOutputShape(options.varianceNoise, sample);
        noise = options.varianceNoise.data;
      } else if (options.generator !== undefined) {
        // the same draw as randn(sample.shape), into a buffer kept between steps
        noise = options.generator.fillRandn(this.#noiseBuffer(sample.size));
      } else {
        throw new RangeError("DDPM step at t > 0 needs a generator or varianceNoise (randomness is injected)");
      }
    }
    // sigma_t for the fixed variance types
    let sigmaT = 0;
    switch (varianceType) {
      case "fixed_small":
        sigmaT = f32(Math.sqrt(c.posteriorVariance));
        break;
      case "fixed_small_log":
        sigmaT = f32(Math.exp(f32(0.5 * f32(Math.log(c.posteriorVariance)))));
        break;
      case "fixed_large":
        sigmaT = f32(Math.sqrt(c.betaT));
        break;
      case "fixed_large_log":
        sigmaT = f32(Math.exp(f32(0.5 * f32(Math.log(c.betaT)))));
        break;
    }
    // 2. x0 as a linear form of (x_t, model output): predX0 = a x + b m
    let x0FromSample: number, x0FromOutput: number;
    switch (config.prediction_type) {
      case "epsilon":
        [x0FromSample, x0FromOutput] = [1 / c.sqrtAlphaBar, -c.sqrtBetaBar / c.sqrtAlphaBar];
        break;
      case "sample":
        [x0FromSample, x0FromOutput] = [0, 1];
        break;
      default:
        [x0FromSample, x0FromOutput] = [c.sqrtAlphaBar, -c.sqrtBetaBar];
    }
    const shape = sample.shape;
    const size = sample.size;
    const prev = new Float32Array(size);
    const predX0 = new Float32Array(size);
    // 3. clip or threshold predX0
    const clipRange = !config.thresholding && config.clip_sample ? config.clip_sample_range : Infinity;
    // 4-5. the posterior mean mu~_t (eq. 7), plus sigma_t z
    const { predX0Coeff, sampleCoeff } = c;
    let check: number;
    if (!learned && !config.thresholding) {
      check = noise !== null
        ? ddpmWithNoise(
          modelOutput.data,
          sample.data,
          noise,
          predX0,
          prev,
          x0FromSample,
          x0FromOutput,
          clipRange,
          predX0Coeff,
          sampleCoeff,
          sigmaT,
        )
        : ddpmWithoutNoise(
          modelOutput.data,
          sample.data,
          predX0,
          prev,
          x0FromSample,
          x0FromOutput,
          clipRange,
          predX0Coeff,
          sampleCoeff,
        );
    } else {
      check = ddpmGeneral(modelOutput.data, sample.data, noise, predX0, prev, shape, {
        x0FromSample,
        x0FromOutput,
        clipRange,
        predX0Coeff,
        sampleCoeff,
        sigmaT,
        learnedKind: varianceType === "learned_range" ? 1 : varianceType === "learned" ? 2 : 0,
        minLog: f32(Math.log(c.posteriorVariance)),
        maxLog: f32(Math.log(c.betaT)),
        threshold: config.thresholding
          ? { ratio: config.dynamic_thresholding_ratio, maxValue: config.sample_max_value }
          : null,
      });
    }
    const prevSample = new Tensor(prev, shape);
    if (Number.isNaN(check)) {
      reportNonFinite(
        [[modelOutput, "modelOutput"], [sample, "sample"], [options.varianceNoise, "varianceNoise"]],
        prevSample,
      );
    }
    return { prevSample, predOriginalSample: new Tensor(predX0, shape) };
  }

  /**
   * The forward process q(x_t | x_0) in closed form (eq. 4): noise clean samples to timestep t.
   *
   * x_t = sqrt(alphaBar_t) x0 + sqrt(1 - alphaBar_t) eps
   *
   * @param originalSamples x0, batch-first
   * @param noise eps, same shape
   * @param timesteps one timestep for all, or one per batch item
   * @returns x_t
   * @example
   * ```ts
   * import { DDPMScheduler, Tensor } from "../../mod.ts";
   * const noisy = DDPMScheduler.fromConfig({}).addNoise(Tensor.zeros([2, 4]), Tensor.zeros([2, 4]), [10, 900]);
   * ```
   */
  addNoise(originalSamples: Tensor, noise: Tensor, timesteps: number | readonly number[]): Tensor {
    return mixWithAlphaBar(this.alphasCumprod, originalSamples, noise, timesteps, 1, ["originalSamples", "noise"]);
  }

  /**
   * The velocity target of v-prediction (Salimans and Ho 2022, arXiv 2202.00512).
   *
   * v = sqrt(alphaBar_t) eps - sqrt(1 - alphaBar_t) x0
   *
   * @param sample x0, batch-first
   * @param noise eps, same shape
   * @param timesteps one timestep for all, or one per batch item
   * @returns v
   * @example
   * ```ts
   * import { DDPMScheduler, Tensor } from "../../mod.ts";
   * const v = DDPMScheduler.fromConfig({}).getVelocity(Tensor.zeros([1, 4]), Tensor.zeros([1, 4]), 10);
   * ```
   */
  getVelocity(sample: Tensor, noise: Tensor, timesteps: number | readonly number[]): Tensor {
    return mixWithAlphaBar(this.alphasCumprod, noise, sample, timesteps, -1, ["noise", "sample"]);
  }

  #index(timestep: number): number {
    return scheduleIndex(this.#indexOf, this.#timesteps, timestep, this.numTrainTimesteps);
  }

  /** A scratch buffer of `size` elements for the step's noise z, reused from step to step. */
  #noiseBuffer(size: number): Float32Array {
    if (this.#noise.length !== size) this.#noise = new Float32Array(size);
    return this.#noise;
  }

  #coefficientsAt(index: number): DDPMCoefficients {
    const cached = this.#coefficients[index];
    if (cached !== undefined) return cached;
    const timestep = this.#timesteps[index];
    checkTrainTimestep(timestep, this.numTrainTimesteps);
    const prevTimestep = index + 1 < this.#timesteps.length ? this.#timesteps[index + 1] : -1;
    const alphaBar = this.alphasCumprod[timestep];
    const alphaBarPrev = prevTimestep >= 0 ? this.alphasCumprod[prevTimestep] : 1;
    const betaBar = f32(1 - alphaBar);
    const betaBarPrev = f32(1 - alphaBarPrev);
    const alphaT = f32(alphaBar / alphaBarPrev);
    const betaT = f32(1 - alphaT);
    const coefficients: DDPMCoefficients = {
      timestep,
      sqrtAlphaBar: f32(Math.sqrt(alphaBar)),
      sqrtBetaBar: f32(Math.sqrt(betaBar)),
      predX0Coeff: f32(f32(f32(Math.sqrt(alphaBarPrev)) * betaT) / betaBar),
      sampleCoeff: f32(f32(f32(Math.sqrt(alphaT)) * betaBarPrev) / betaBar),
      posteriorVariance: Math.max(f32(f32(betaBarPrev / betaBar) * betaT), VARIANCE_FLOOR),
      betaT,
    };
    this.#coefficients[index] = coefficients;
    return coefficients;
  }
}

/**
 * Branch-free clamp slots: [lower, value, upper]. A clamp writes the value into slot 1 and reads slot
 * 1 + (value > upper) - (value < lower), so random data costs no mispredicted branches. NaN reads slot 1.
 */
function clampSlots(range: number): Float64Array {
  return new Float64Array([-range, 0, range]);
}

/**
 * The fused DDPM step at t > 0 (fixed variance, no thresholding): predX0 (clipped, float32) and
 * x_{t'} = predX0Coeff predX0 + sampleCoeff x_t + sigma_t z in one pass. Returns NaN when the model output or the
 * result has a non-finite element, else 0.
 */
function ddpmWithNoise(
  m: Float32Array,
  x: Float32Array,
  noise: Float32Array,
  predX0: Float32Array,
  prev: Float32Array,
  x0FromSample: number,
  x0FromOutput: number,
  clipRange: number,
  predX0Coeff: number,
  sampleCoeff: number,
  sigmaT: number,
): number {
  const size = x.length;
  const lower = -clipRange;
  const slots = clampSlots(clipRange);
  const fround = Math.fround;
  let check = 0;
  for (let i = 0; i < size; i++) {
    const xi = x[i];
    const mi = m[i];
    const unclipped = x0FromSample * xi + x0FromOutput * mi;
    slots[1] = unclipped;
    const x0 = fround(
      slots[1 + ((unclipped > clipRange) as unknown as number | 0) - ((unclipped < lower) as unknown as number | 0)],
    );
    const out = predX0Coeff * x0 + sampleCoeff * xi + sigmaT * noise[i];
    predX0[i] = x0;
    prev[i] = out;
    check += (mi - mi) + (out - out);
  }
  return check;
}

/** The fused DDPM step at t = 0 (no noise), otherwise as `ddpmWithNoise`. */
function ddpmWithoutNoise(
  m: Float32Array,
  x: Float32Array,
  predX0: Float32Array,
  prev: Float32Array,
  x0FromSample: number,
  x0FromOutput: number,
  clipRange: number,
  predX0Coeff: number,
  sampleCoeff: number,
): number {
  const size = x.length;
  const lower = -clipRange;
  const slots = clampSlots(clipRange);
  const fround = Math.fround;
  let check = 0;
  for (let i = 0; i < size; i++) {
    const xi = x[i];
    const mi = m[i];
    const unclipped = x0FromSample * xi + x0FromOutput * mi;
    slots[1] = unclipped;
    const x0 = fround(
      slots[1 + ((unclipped > clipRange) as unknown as number | 0) - ((unclipped < lower) as unknown as number | 0)],
    );
    const out = predX0Coeff * x0 + sampleCoeff * xi;
    predX0[i] = x0;
    prev[i] = out;
    check += (mi - mi) + (out - out);
  }
  return check;
}

/** Per-step scalars of the general DDPM step (learned variance or thresholding). */
interface DDPMGeneralCoefficients {
  x0FromSample: number;
  x0FromOutput: number;
  clipRange: number;
  predX0Coeff: number;
  sampleCoeff: number;
  sigmaT: number;
  /** 0: fixed sigma_t, 1: `learned_range`, 2: `learned`. */
  learnedKind: number;
  /** ln beta~_t and ln beta_t, float32 (for `learned_range`). */
  minLog: number;
  maxLog: number;
  threshold: { ratio: number; maxValue: number } | null;
}

/**
 * The DDPM step for a learned variance (extra model output channels) or dynamic thresholding: predX0 per batch
 * item, thresholded, then the posterior mean plus sigma_t z. Returns NaN when the model output or the result has a
 * non-finite element, else 0.
 */
function ddpmGeneral(
  m: Float32Array,
  x: Float32Array,
  noise: Float32Array | null,
  predX0: Float32Array,
  prev: Float32Array,
  shape: readonly number[],
  k: DDPMGeneralCoefficients,
): number {
  const size = x.length;
  const batch = shape.length > 0 ? shape[0] : 1;
  const itemSize = batch > 0 ? size / batch : 0;
  // where item b's prediction and (learned) variance channels start in modelOutput
  const outputStride = m.length === size ? itemSize : 2 * itemSize;
  const { x0FromSample, x0FromOutput, clipRange, predX0Coeff, sampleCoeff, sigmaT, learnedKind, minLog, maxLog } = k;
  let check = 0;
  for (let item = 0; item < batch; item++) {
    const xStart = item * itemSize;
    const mStart = item * outputStride;
    for (let i = 0; i < itemSize; i++) {
      let x0 = x0FromSample * x[xStart + i] + x0FromOutput * m[mStart + i];
      if (x0 > clipRange) x0 = clipRange;
      else if (x0 < -clipRange) x0 = -clipRange;
      predX0[xStart + i] = x0;
    }
  }
  if (k.threshold !== null) thresholdInPlace(predX0, batch, k.threshold.ratio, k.threshold.maxValue);
  for (let item = 0; item < batch; item++) {
    const xStart = item * itemSize;
    const mStart = item * outputStride;
    const vStart = mStart + itemSize;
    for (let i = 0; i < itemSize; i++) {
      const xi = x[xStart + i];
      let out = predX0Coeff * predX0[xStart + i] + sampleCoeff * xi;
      if (noise !== null) {
        let sigma = sigmaT;
        if (learnedKind === 1) {
          // log sigma^2 = frac ln beta_t + (1 - frac) ln beta~_t, frac = (v + 1)/2 (Nichol and Dhariwal, eq. 15)
          const frac = (m[vStart + i] + 1) / 2;
          sigma = Math.exp(0.5 * (frac * maxLog + (1 - frac) * minLog));
        } else if (learnedKind === 2) {
          sigma = Math.exp(0.5 * m[vStart + i]);
        }
        out += sigma * noise[xStart + i];
      }
      prev[xStart + i] = out;
      if (out - out !== 0) check = NaN;
    }
  }
  for (let i = 0; i < m.length; i++) if (m[i] - m[i] !== 0) check = NaN;
  return check;
}
