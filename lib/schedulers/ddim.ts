/**
 * The DDIM sampler (Song, Meng and Ermon 2020, arXiv 2010.02502), matching diffusers' `DDIMScheduler` number for
 * number, with one deliberate difference: a step goes to the true previous entry of the schedule (see `step`).
 *
 * | paper                   | code                 | meaning                                              |
 * |-------------------------|----------------------|------------------------------------------------------|
 * | alpha_t (DDIM notation) | `alphaBar`           | alphasCumprod[t], the signal fraction at t           |
 * | alpha_{t-1}             | `alphaBarPrev`       | alpha-bar at the previous timestep of the schedule   |
 * | x_t                     | `sample`             | the current sample                                   |
 * | eps_theta(x_t)          | `predEpsilon`        | the predicted noise                                  |
 * | f_theta(x_t), x0        | `predX0`             | the predicted clean sample, eq. (9)                  |
 * | sigma_t(eta)            | `sigmaT`             | the step's noise standard deviation, eq. (16)        |
 * | eta                     | `eta`                | 0: deterministic DDIM, 1: DDPM's posterior variance  |
 * | x_{t-1}                 | `prevSample`         | the result of eq. (12)                               |
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

export type { PredictionType } from "./_scheduler_config.ts";
import type { SchedulerStepOutput } from "./scheduler.ts";

/** A resolved DDIM config: diffusers' `DDIMScheduler` keys, snake_case. */
export interface DDIMSchedulerConfig extends BaseSchedulerConfig, ThresholdingConfig {
  /** At the last step, alpha-bar_prev is 1 (true) or alphasCumprod[0] (false). */
  set_alpha_to_one: boolean;
}

/** Options of `DDIMScheduler.step`. */
export interface DDIMStepOptions {
  /** eta in [0, 1]: the weight of the noise, eq. (16) (default 0, deterministic). */
  eta?: number;
  /** Recompute eps from the clipped x0 before the direction term (diffusers' `use_clipped_model_output`). */
  useClippedModelOutput?: boolean;
  /** Draws the noise when eta > 0 (one `randn(sample.shape)` per step, as diffusers). */
  generator?: TorchGenerator;
  /** The noise to use when eta > 0, instead of drawing it. */
  varianceNoise?: Tensor;
}

/** diffusers' `DDIMScheduler` defaults. */
const DDIM_DEFAULTS: Readonly<DDIMSchedulerConfig> = Object.freeze({
  ...BASE_DEFAULTS,
  ...THRESHOLDING_DEFAULTS,
  set_alpha_to_one: true,
});

/** diffusers' DDIM knows every beta schedule but `sigmoid`. */
const DDIM_BETA_SCHEDULES = ["linear", "scaled_linear", "squaredcos_cap_v2"] as const;

/** Per-timestep constants of eq. (12), float32 as diffusers computes them. */
interface DDIMCoefficients {
  alphaBar: number;
  alphaBarPrev: number;
  sqrtAlphaBar: number;
  sqrtBetaBar: number;
  sqrtAlphaBarPrev: number;
  oneMinusAlphaBarPrev: number;
  /** sigma_t(1)^2 = (1 - alphaBarPrev)/(1 - alphaBar) (1 - alphaBar/alphaBarPrev), eq. (16). */
  varianceAtEtaOne: number;
}

const f32 = Math.fround;

/**
 * The DDIM scheduler: eq. (12) of the DDIM paper with sigma_t(eta) of eq. (16), as diffusers' `DDIMScheduler`.
 *
 * x_{t-1} = sqrt(alphaBarPrev) predX0 + sqrt(1 - alphaBarPrev - sigma_t^2) eps + sigma_t z
 *
 * @example
 * ```ts
 * import { DDIMScheduler, Tensor } from "../../mod.ts";
 * const scheduler = DDIMScheduler.fromConfig({ num_train_timesteps: 1000, clip_sample: false });
 * scheduler.setTimesteps(10);
 * let x = Tensor.zeros([1, 3, 8, 8]);
 * for (const t of scheduler.timesteps) {
 *   const eps = Tensor.zeros(x.shape); // a model's prediction
 *   x = scheduler.step(eps, t, x).prevSample;
 * }
 * ```
 */
export class DDIMScheduler {
  /** The resolved snake_case config. */
  readonly config: Readonly<DDIMSchedulerConfig>;
  /** beta_t, float32. */
  readonly betas: Float32Array;
  /** alpha-bar_t = prod (1 - beta_s), float32, length T. */
  readonly alphasCumprod: Float32Array;
  /** alpha-bar used after the last step: 1, or alphasCumprod[0] when `set_alpha_to_one` is false. */
  readonly finalAlphaCumprod: number;
  /** The standard deviation of the initial noise x_T ~ N(0, I). */
  readonly initNoiseSigma = 1;
  /** Model evaluations per step (one). */
  readonly order = 1;
  /** n, once `setTimesteps` was called. */
  numInferenceSteps: number | null = null;
  #timesteps: readonly number[];
  #indexOf = new Map<number, number>();
  #coefficients: DDIMCoefficients[] = [];
  #noise = new Float32Array(0);

  /**
   * Build a scheduler from a diffusers config (snake_case; absent keys take diffusers' defaults).
   *
   * @param config `scheduler_config.json` as an object
   * @throws RangeError or TypeError naming a bad key and value
   */
  constructor(config: Partial<DDIMSchedulerConfig> | Record<string, unknown> = {}) {
    const given = { ...config } as Record<string, unknown>;
    this.config = Object.freeze(
      resolveConfig(given, DDIM_DEFAULTS, { scheduler: "DDIMScheduler", betaSchedules: DDIM_BETA_SCHEDULES }),
    );
    const { betas, alphasCumprod } = buildSchedule(this.config);
    this.betas = betas;
    this.alphasCumprod = alphasCumprod;
    this.finalAlphaCumprod = this.config.set_alpha_to_one ? 1 : alphasCumprod[0];
    this.#timesteps = Object.freeze(
      Array.from({ length: this.numTrainTimesteps }, (_, k) => this.numTrainTimesteps - 1 - k),
    );
  }

  /**
   * Build a scheduler from a diffusers `scheduler_config.json` object.
   *
   * @param config the config, snake_case
   * @returns a new scheduler
   * @example
   * ```ts
   * import { DDIMScheduler } from "../../mod.ts";
   * const scheduler = DDIMScheduler.fromConfig({ beta_schedule: "scaled_linear", beta_start: 0.00085, beta_end: 0.012 });
   * ```
   */
  static fromConfig(config: Partial<DDIMSchedulerConfig> | Record<string, unknown> = {}): DDIMScheduler {
    return new DDIMScheduler(config);
  }

  /**
   * The config in diffusers' snake_case form, every key resolved.
   *
   * @returns a fresh object that `fromConfig` accepts
   * @example
   * ```ts
   * import { DDIMScheduler } from "../../mod.ts";
   * DDIMScheduler.fromConfig({}).toConfig().beta_schedule; // "linear"
   * ```
   */
  toConfig(): DDIMSchedulerConfig {
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
   * import { DDIMScheduler } from "../../mod.ts";
   * const scheduler = DDIMScheduler.fromConfig({});
   * scheduler.setTimesteps(50); // [980, 960, ..., 0]
   * scheduler.setTimesteps([999, 500, 100]);
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
    } else {
      timesteps = checkCustomTimesteps(numInferenceSteps, this.numTrainTimesteps, "descending");
    }
    this.numInferenceSteps = timesteps.length;
    this.#timesteps = Object.freeze(timesteps);
    this.#indexOf = new Map(timesteps.map((t, k) => [t, k]));
    this.#coefficients = [];
  }

  /**
   * The timestep a step from t lands on: the next entry of the schedule, or -1 after the last one.
   *
   * prev(tau_i) = tau_{i-1}, prev(tau_1) = -1
   *
   * @param timestep t, an entry of `timesteps`
   * @returns the previous timestep, or -1
   * @throws RangeError if t is not in the schedule
   * @example
   * ```ts
   * import { DDIMScheduler } from "../../mod.ts";
   * const scheduler = DDIMScheduler.fromConfig({ timestep_spacing: "trailing" });
   * scheduler.setTimesteps(3); // [999, 666, 332]
   * scheduler.previousTimestep(666); // 332 (diffusers would use 666 - 1000 // 3 = 333)
   * ```
   */
  previousTimestep(timestep: number): number {
    const index = this.#index(timestep);
    return index + 1 < this.#timesteps.length ? this.#timesteps[index + 1] : -1;
  }

  /**
   * Returns the sample unchanged (DDIM needs no input scaling); kept for interchangeability with diffusers.
   *
   * @param sample x_t
   * @param _timestep t (unused)
   * @returns the same sample
   * @example
   * ```ts
   * import { DDIMScheduler, Tensor } from "../../mod.ts";
   * DDIMScheduler.fromConfig({}).scaleModelInput(Tensor.zeros([1]), 0);
   * ```
   */
  scaleModelInput(sample: Tensor, _timestep?: number): Tensor {
    return sample;
  }

  /**
   * One DDIM step from t to the previous timestep of the schedule, eq. (12) with sigma_t(eta) of eq. (16).
   *
   * predX0 = (x_t - sqrt(1 - alphaBar) eps) / sqrt(alphaBar);
   * x_{t-1} = sqrt(alphaBarPrev) predX0 + sqrt(1 - alphaBarPrev - sigma_t^2) eps + sigma_t z,
   * sigma_t = eta sqrt((1 - alphaBarPrev)/(1 - alphaBar)) sqrt(1 - alphaBar/alphaBarPrev)
   *
   * Unlike diffusers, which always steps back by T // n, the previous timestep is the next entry of `timesteps`;
   * the two agree for every evenly spaced schedule (all `leading` ones). Noise is drawn (one `randn(sample.shape)`)
   * only when eta > 0, as diffusers does.
   *
   * @param modelOutput the model's prediction (eps, x0 or v, as `prediction_type` says), shaped like `sample`
   * @param timestep t, an entry of `timesteps`
   * @param sample x_t
   * @param options eta, clipping of the model output, and the noise source
   * @returns x_{t-1} and the predicted x0
   * @throws RangeError for a shape mismatch, a timestep not in the schedule, a non-finite input, or both a
   *   generator and variance noise
   * @example
   * ```ts
   * import { DDIMScheduler, Tensor, TorchGenerator } from "../../mod.ts";
   * const scheduler = DDIMScheduler.fromConfig({});
   * scheduler.setTimesteps(10);
   * const x = new TorchGenerator(0).randn([1, 3, 8, 8]);
   * const { prevSample } = scheduler.step(Tensor.zeros(x.shape), 900, x, { eta: 1, generator: new TorchGenerator(1) });
   * ```
   */
  step(modelOutput: Tensor, timestep: number, sample: Tensor, options: DDIMStepOptions = {}): SchedulerStepOutput {
    const eta = options.eta ?? 0;
    // eta above 1 can make 1 - alphaBarPrev - sigma_t^2 negative in eq. (12) (diffusers gives NaN there)
    if (typeof eta !== "number" || !(eta >= 0 && eta <= 1)) {
      throw new RangeError(`eta must be a number from 0 to 1, got ${String(eta)}`);
    }
    checkModelOutputShape(modelOutput, sample);
    if (options.generator !== undefined && options.varianceNoise !== undefined) {
      throw new RangeError("Pass either a generator or varianceNoise to step, not both");
    }
    if (this.numInferenceSteps === null) {
      throw new RangeError("Call setTimesteps(n) before step: the DDIM schedule is not set");
    }
    // 1. previous timestep: the next entry of the schedule
    const index = this.#index(timestep);
    // 2. alphaBar, alphaBarPrev and the rest, computed once per timestep
    const c = this.#coefficientsAt(index);
    const config = this.config;
    if (c.sqrtAlphaBar === 0 && config.prediction_type === "epsilon") {
      throw new RangeError(
        `alphasCumprod[${timestep}] is 0 (zero terminal SNR), so an epsilon prediction cannot give x0 there; ` +
          `use prediction_type "v_prediction"`,
      );
    }
    // 5. sigma_t(eta), eq. (16), and the direction coefficient sqrt(1 - alphaBarPrev - sigma_t^2) of eq. (12)
    const sigmaT = f32(eta * f32(Math.sqrt(c.varianceAtEtaOne)));
    const directionCoeff = f32(Math.sqrt(Math.max(0, f32(c.oneMinusAlphaBarPrev - f32(sigmaT * sigmaT)))));
    let noise: Float32Array | null = null;
    if (eta > 0) {
      if (options.varianceNoise !== undefined) {
        checkModelOutputShape(options.varianceNoise, sample);
        noise = options.varianceNoise.data;
      } else if (options.generator !== undefined) {
        // the same draw as randn(sample.shape), into a buffer kept between steps
        noise = options.generator.fillRandn(this.#noiseBuffer(sample.size));
      } else {
        throw new RangeError("DDIM step with eta > 0 needs a generator or varianceNoise (randomness is injected)");
      }
    }
    // 3. x0 and eps as linear forms of (x_t, model output): predX0 = a x + b m, predEpsilon = c x + d m
    const { sqrtAlphaBar, sqrtBetaBar } = c;
    let x0FromSample: number, x0FromOutput: number, epsFromSample: number, epsFromOutput: number;
    switch (config.prediction_type) {
      case "epsilon":
        [x0FromSample, x0FromOutput, epsFromSample, epsFromOutput] = [
          1 / sqrtAlphaBar,
          -sqrtBetaBar / sqrtAlphaBar,
          0,
          1,
        ];
        break;
      case "sample":
        [x0FromSample, x0FromOutput, epsFromSample, epsFromOutput] = [
          0,
          1,
          1 / sqrtBetaBar,
          -sqrtAlphaBar / sqrtBetaBar,
        ];
        break;
      default: // v_prediction: x0 = sqrt(alphaBar) x - sqrt(1 - alphaBar) v, eps = sqrt(alphaBar) v + sqrt(1 - alphaBar) x
        [x0FromSample, x0FromOutput, epsFromSample, epsFromOutput] = [
          sqrtAlphaBar,
          -sqrtBetaBar,
          sqrtBetaBar,
          sqrtAlphaBar,
        ];
    }
    const size = sample.size;
    const prev = new Float32Array(size);
    const predX0 = new Float32Array(size);
    // 4. clip or threshold predX0
    const clipRange = config.thresholding ? Infinity : config.clip_sample ? config.clip_sample_range : Infinity;
    const recomputeEpsilon = options.useClippedModelOutput === true;
    let check: number;
    if (config.thresholding) {
      const m = modelOutput.data;
      const x = sample.data;
      for (let i = 0; i < size; i++) predX0[i] = x0FromSample * x[i] + x0FromOutput * m[i];
      thresholdInPlace(predX0, sample.shape[0] ?? 1, config.dynamic_thresholding_ratio, config.sample_max_value);
      check = ddimFromPredX0(
        m,
        x,
        noise,
        predX0,
        prev,
        epsFromSample,
        epsFromOutput,
        recomputeEpsilon,
        sqrtAlphaBar,
        sqrtBetaBar,
        c.sqrtAlphaBarPrev,
        directionCoeff,
        sigmaT,
      );
    } else if (recomputeEpsilon) {
      check = ddimClippedEpsilon(
        modelOutput.data,
        sample.data,
        noise,
        predX0,
        prev,
        x0FromSample,
        x0FromOutput,
        clipRange,
        sqrtAlphaBar,
        sqrtBetaBar,
        c.sqrtAlphaBarPrev,
        directionCoeff,
        sigmaT,
      );
    } else if (noise !== null) {
      check = ddimWithNoise(
        modelOutput.data,
        sample.data,
        noise,
        predX0,
        prev,
        x0FromSample,
        x0FromOutput,
        epsFromSample,
        epsFromOutput,
        clipRange,
        c.sqrtAlphaBarPrev,
        directionCoeff,
        sigmaT,
      );
    } else {
      check = ddimDeterministic(
        modelOutput.data,
        sample.data,
        predX0,
        prev,
        x0FromSample,
        x0FromOutput,
        epsFromSample,
        epsFromOutput,
        clipRange,
        c.sqrtAlphaBarPrev,
        directionCoeff,
      );
    }
    const prevSample = new Tensor(prev, sample.shape);
    if (Number.isNaN(check)) {
      reportNonFinite(
        [[modelOutput, "modelOutput"], [sample, "sample"], [options.varianceNoise, "varianceNoise"]],
        prevSample,
      );
    }
    return { prevSample, predOriginalSample: new Tensor(predX0, sample.shape) };
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
   * import { DDIMScheduler, Tensor, TorchGenerator } from "../../mod.ts";
   * const scheduler = DDIMScheduler.fromConfig({});
   * const noisy = scheduler.addNoise(Tensor.zeros([1, 3, 8, 8]), new TorchGenerator(0).randn([1, 3, 8, 8]), 500);
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
   * import { DDIMScheduler, Tensor } from "../../mod.ts";
   * const v = DDIMScheduler.fromConfig({}).getVelocity(Tensor.zeros([1, 4]), Tensor.zeros([1, 4]), 10);
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

  #coefficientsAt(index: number): DDIMCoefficients {
    const cached = this.#coefficients[index];
    if (cached !== undefined) return cached;
    const timestep = this.#timesteps[index];
    checkTrainTimestep(timestep, this.numTrainTimesteps);
    const prevTimestep = index + 1 < this.#timesteps.length ? this.#timesteps[index + 1] : -1;
    const alphaBar = this.alphasCumprod[timestep];
    const alphaBarPrev = prevTimestep >= 0 ? this.alphasCumprod[prevTimestep] : this.finalAlphaCumprod;
    const betaBar = f32(1 - alphaBar);
    const oneMinusAlphaBarPrev = f32(1 - alphaBarPrev);
    const coefficients: DDIMCoefficients = {
      alphaBar,
      alphaBarPrev,
      sqrtAlphaBar: f32(Math.sqrt(alphaBar)),
      sqrtBetaBar: f32(Math.sqrt(betaBar)),
      sqrtAlphaBarPrev: f32(Math.sqrt(alphaBarPrev)),
      oneMinusAlphaBarPrev,
      varianceAtEtaOne: f32(f32(oneMinusAlphaBarPrev / betaBar) * f32(1 - f32(alphaBar / alphaBarPrev))),
    };
    this.#coefficients[index] = coefficients;
    return coefficients;
  }
}

/**
 * Branch-free clamp slots: [lower, value, upper]. A clamp writes the value into slot 1 and reads slot
 * 1 + (value > upper) - (value < lower), so random data costs no mispredicted branches (a plain `if` clamp is ten
 * times slower on N(0, 1) samples). NaN reads slot 1 and stays NaN.
 */
function clampSlots(range: number): Float64Array {
  return new Float64Array([-range, 0, range]);
}

/**
 * The fused deterministic DDIM step (eta = 0, eps from the model output): predX0 (clipped) and x_{t-1} in one pass.
 * Returns NaN when the model output or the result has a non-finite element, else 0.
 */
function ddimDeterministic(
  m: Float32Array,
  x: Float32Array,
  predX0: Float32Array,
  prev: Float32Array,
  x0FromSample: number,
  x0FromOutput: number,
  epsFromSample: number,
  epsFromOutput: number,
  clipRange: number,
  sqrtAlphaBarPrev: number,
  directionCoeff: number,
): number {
  const size = x.length;
  const lower = -clipRange;
  const slots = clampSlots(clipRange);
  let check = 0;
  for (let i = 0; i < size; i++) {
    const xi = x[i];
    const mi = m[i];
    const unclipped = x0FromSample * xi + x0FromOutput * mi;
    slots[1] = unclipped;
    const x0 =
      slots[1 + ((unclipped > clipRange) as unknown as number | 0) - ((unclipped < lower) as unknown as number | 0)];
    const out = sqrtAlphaBarPrev * x0 + directionCoeff * (epsFromSample * xi + epsFromOutput * mi);
    predX0[i] = x0;
    prev[i] = out;
    check += (mi - mi) + (out - out);
  }
  return check;
}

/**
 * The fused stochastic DDIM step (eta > 0, eps from the model output): predX0 (clipped, float32), x_{t-1} with
 * sigma_t z, in one pass. Returns NaN when the model output or the result has a non-finite element, else 0.
 */
function ddimWithNoise(
  m: Float32Array,
  x: Float32Array,
  noise: Float32Array,
  predX0: Float32Array,
  prev: Float32Array,
  x0FromSample: number,
  x0FromOutput: number,
  epsFromSample: number,
  epsFromOutput: number,
  clipRange: number,
  sqrtAlphaBarPrev: number,
  directionCoeff: number,
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
    const out = sqrtAlphaBarPrev * x0 + directionCoeff * (epsFromSample * xi + epsFromOutput * mi) + sigmaT * noise[i];
    predX0[i] = x0;
    prev[i] = out;
    check += (mi - mi) + (out - out);
  }
  return check;
}

/**
 * The DDIM step with eps recomputed from the clipped x0 (diffusers' `use_clipped_model_output`), with or without
 * noise. Returns NaN when the model output or the result has a non-finite element, else 0.
 */
function ddimClippedEpsilon(
  m: Float32Array,
  x: Float32Array,
  noise: Float32Array | null,
  predX0: Float32Array,
  prev: Float32Array,
  x0FromSample: number,
  x0FromOutput: number,
  clipRange: number,
  sqrtAlphaBar: number,
  sqrtBetaBar: number,
  sqrtAlphaBarPrev: number,
  directionCoeff: number,
  sigmaT: number,
): number {
  const size = x.length;
  const lower = -clipRange;
  const slots = clampSlots(clipRange);
  const inverseSqrtBetaBar = 1 / sqrtBetaBar;
  let check = 0;
  for (let i = 0; i < size; i++) {
    const xi = x[i];
    const mi = m[i];
    const unclipped = x0FromSample * xi + x0FromOutput * mi;
    slots[1] = unclipped;
    const x0 = Math.fround(
      slots[1 + ((unclipped > clipRange) as unknown as number | 0) - ((unclipped < lower) as unknown as number | 0)],
    );
    const eps = (xi - sqrtAlphaBar * x0) * inverseSqrtBetaBar;
    let out = sqrtAlphaBarPrev * x0 + directionCoeff * eps;
    if (noise !== null) out += sigmaT * noise[i];
    predX0[i] = x0;
    prev[i] = out;
    check += (mi - mi) + (out - out);
  }
  return check;
}
/** The rest of the DDIM step once predX0 is known (after thresholding). */
function ddimFromPredX0(
  m: Float32Array,
  x: Float32Array,
  noise: Float32Array | null,
  predX0: Float32Array,
  prev: Float32Array,
  epsFromSample: number,
  epsFromOutput: number,
  recomputeEpsilon: boolean,
  sqrtAlphaBar: number,
  sqrtBetaBar: number,
  sqrtAlphaBarPrev: number,
  directionCoeff: number,
  sigmaT: number,
): number {
  let check = 0;
  for (let i = 0; i < x.length; i++) {
    const x0 = predX0[i];
    const eps = recomputeEpsilon
      ? (x[i] - sqrtAlphaBar * x0) / sqrtBetaBar
      : epsFromSample * x[i] + epsFromOutput * m[i];
    let out = sqrtAlphaBarPrev * x0 + directionCoeff * eps;
    if (noise !== null) out += sigmaT * noise[i];
    prev[i] = out;
    if ((m[i] - m[i]) + (out - out) !== 0) check = NaN;
  }
  return check;
}
