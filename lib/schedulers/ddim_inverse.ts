/**
 * DDIM inversion: eq. (12) of the DDIM paper with eta = 0 run forwards in time, x_{t'} -> x_t, which encodes an image
 * into the latent noise that deterministic DDIM decodes back (the paper's section 5.4, eq. 14 discretised). Matches
 * diffusers' `DDIMInverseScheduler`, except that a step starts from the true previous entry of the schedule.
 *
 * | paper              | code            | meaning                                                    |
 * |--------------------|-----------------|------------------------------------------------------------|
 * | alpha_{t'}         | `alphaBarFrom`  | alpha-bar where the step starts (previous schedule entry)  |
 * | alpha_t            | `alphaBarTo`    | alpha-bar at `timestep`, where the step lands              |
 * | eps_theta          | `predEpsilon`   | the predicted noise                                        |
 * | x0                 | `predX0`        | the predicted clean sample, eq. (9)                        |
 *
 * @module
 */
import { Tensor } from "../core/tensor.ts";
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
} from "./_scheduler_config.ts";
import type { SchedulerStepOutput } from "./scheduler.ts";

/** A resolved DDIM-inverse config: diffusers' `DDIMInverseScheduler` keys, snake_case. */
export interface DDIMInverseSchedulerConfig extends BaseSchedulerConfig {
  /** At the first step, the starting alpha-bar is 1 (true) or alphasCumprod[0] (false). */
  set_alpha_to_one: boolean;
}

const INVERSE_DEFAULTS: Readonly<DDIMInverseSchedulerConfig> = Object.freeze({
  ...BASE_DEFAULTS,
  set_alpha_to_one: true,
});

/** diffusers' inverse scheduler refuses `linspace`; `quad` is this package's addition. */
const INVERSE_SPACINGS = ["leading", "trailing", "quad"] as const;
const INVERSE_BETA_SCHEDULES = ["linear", "scaled_linear", "squaredcos_cap_v2"] as const;

const f32 = Math.fround;

/**
 * The DDIM-inverse scheduler: deterministic DDIM (eta = 0) stepping from low to high noise.
 *
 * x_t = sqrt(alphaBarTo) predX0 + sqrt(1 - alphaBarTo) eps, predX0 = (x_{t'} - sqrt(1 - alphaBarFrom) eps) / sqrt(alphaBarFrom)
 *
 * @example
 * ```ts
 * import { DDIMInverseScheduler, Tensor } from "../../mod.ts";
 * const inverse = DDIMInverseScheduler.fromConfig({ clip_sample: false });
 * inverse.setTimesteps(10); // [0, 100, ..., 900]
 * let x = Tensor.zeros([1, 3, 8, 8]); // an encoded image
 * for (const t of inverse.timesteps) x = inverse.step(Tensor.zeros(x.shape), t, x).prevSample;
 * ```
 */
export class DDIMInverseScheduler {
  /** The resolved snake_case config. */
  readonly config: Readonly<DDIMInverseSchedulerConfig>;
  /** beta_t, float32. */
  readonly betas: Float32Array;
  /** alpha-bar_t, float32, length T. */
  readonly alphasCumprod: Float32Array;
  /** alpha-bar a first step starts from: 1, or alphasCumprod[0] when `set_alpha_to_one` is false. */
  readonly initialAlphaCumprod: number;
  /** The standard deviation of the initial noise distribution (kept for interchangeability). */
  readonly initNoiseSigma = 1;
  /** Model evaluations per step (one). */
  readonly order = 1;
  /** n, once `setTimesteps` was called. */
  numInferenceSteps: number | null = null;
  #timesteps: readonly number[];
  #indexOf = new Map<number, number>();

  /**
   * Build a scheduler from a diffusers config (snake_case; absent keys take diffusers' defaults; the deprecated
   * `set_alpha_to_zero` is read as `set_alpha_to_one`, as diffusers does).
   *
   * @param config `scheduler_config.json` as an object
   * @throws RangeError or TypeError naming a bad key and value (`linspace` spacing is refused, as diffusers does)
   */
  constructor(config: Partial<DDIMInverseSchedulerConfig> | Record<string, unknown> = {}) {
    const given = { ...config } as Record<string, unknown>;
    if (given.set_alpha_to_zero !== undefined && given.set_alpha_to_zero !== null) {
      given.set_alpha_to_one = given.set_alpha_to_zero;
    }
    this.config = Object.freeze(resolveConfig(given, INVERSE_DEFAULTS, {
      scheduler: "DDIMInverseScheduler",
      spacings: INVERSE_SPACINGS,
      betaSchedules: INVERSE_BETA_SCHEDULES,
    }));
    const { betas, alphasCumprod } = buildSchedule(this.config);
    this.betas = betas;
    this.alphasCumprod = alphasCumprod;
    this.initialAlphaCumprod = this.config.set_alpha_to_one ? 1 : alphasCumprod[0];
    this.#timesteps = Object.freeze(Array.from({ length: this.numTrainTimesteps }, (_, k) => k));
  }

  /**
   * Build a scheduler from a diffusers `scheduler_config.json` object.
   *
   * @param config the config, snake_case
   * @returns a new scheduler
   * @example
   * ```ts
   * import { DDIMInverseScheduler } from "../../mod.ts";
   * const inverse = DDIMInverseScheduler.fromConfig({ timestep_spacing: "trailing" });
   * ```
   */
  static fromConfig(config: Partial<DDIMInverseSchedulerConfig> | Record<string, unknown> = {}): DDIMInverseScheduler {
    return new DDIMInverseScheduler(config);
  }

  /**
   * The config in diffusers' snake_case form, every key resolved.
   *
   * @returns a fresh object that `fromConfig` accepts
   * @example
   * ```ts
   * import { DDIMInverseScheduler } from "../../mod.ts";
   * DDIMInverseScheduler.fromConfig({}).toConfig().set_alpha_to_one; // true
   * ```
   */
  toConfig(): DDIMInverseSchedulerConfig {
    return copyConfig(this.config);
  }

  /** T, the number of training timesteps. */
  get numTrainTimesteps(): number {
    return this.config.num_train_timesteps;
  }

  /** The timesteps of the current schedule, ascending (all T of them until `setTimesteps`). */
  get timesteps(): readonly number[] {
    return this.#timesteps;
  }

  /**
   * Choose the n timesteps to visit, ascending (the DDIM schedule reversed), or take a custom ascending list.
   *
   * tau = reverse(spacing(n, T))
   *
   * @param numInferenceSteps n, or a strictly ascending list of training timesteps
   * @throws RangeError when n is not in [1, T] or the list is not strictly ascending in [0, T)
   * @example
   * ```ts
   * import { DDIMInverseScheduler } from "../../mod.ts";
   * const inverse = DDIMInverseScheduler.fromConfig({});
   * inverse.setTimesteps(4); // [0, 250, 500, 750]
   * ```
   */
  setTimesteps(numInferenceSteps: number | readonly number[]): void {
    let timesteps: number[];
    if (typeof numInferenceSteps === "number") {
      checkStepCount(numInferenceSteps, this.numTrainTimesteps);
      timesteps = spacedTimesteps(this.config.timestep_spacing, numInferenceSteps, {
        numTrainTimesteps: this.numTrainTimesteps,
        stepsOffset: this.config.steps_offset,
      }).reverse();
      checkSpacedTimesteps(timesteps, this.numTrainTimesteps, this.config.steps_offset);
    } else {
      timesteps = checkCustomTimesteps(numInferenceSteps, this.numTrainTimesteps, "ascending");
    }
    this.numInferenceSteps = timesteps.length;
    this.#timesteps = Object.freeze(timesteps);
    this.#indexOf = new Map(timesteps.map((t, k) => [t, k]));
  }

  /**
   * The timestep a step to t starts from: the entry of the schedule before t, or -1 for the first entry.
   *
   * from(tau_i) = tau_{i-1}, from(tau_1) = -1
   *
   * @param timestep t, an entry of `timesteps`
   * @returns the starting timestep, or -1 (where alpha-bar is `initialAlphaCumprod`)
   * @throws RangeError if t is not in the schedule
   * @example
   * ```ts
   * import { DDIMInverseScheduler } from "../../mod.ts";
   * const inverse = DDIMInverseScheduler.fromConfig({});
   * inverse.setTimesteps(10);
   * inverse.previousTimestep(100); // 0
   * ```
   */
  previousTimestep(timestep: number): number {
    const index = this.#index(timestep);
    return index > 0 ? this.#timesteps[index - 1] : -1;
  }

  /**
   * Returns the sample unchanged; kept for interchangeability with diffusers.
   *
   * @param sample x_t
   * @param _timestep t (unused)
   * @returns the same sample
   * @example
   * ```ts
   * import { DDIMInverseScheduler, Tensor } from "../../mod.ts";
   * DDIMInverseScheduler.fromConfig({}).scaleModelInput(Tensor.zeros([1]), 0);
   * ```
   */
  scaleModelInput(sample: Tensor, _timestep?: number): Tensor {
    return sample;
  }

  /**
   * One inversion step, from the previous schedule entry t' up to `timestep` t: eq. (12) with sigma = 0, forwards.
   *
   * predX0 = (x_{t'} - sqrt(1 - alphaBarFrom) eps) / sqrt(alphaBarFrom); x_t = sqrt(alphaBarTo) predX0 + sqrt(1 - alphaBarTo) eps
   *
   * diffusers starts from t - T // n (clamped at T - 1); this starts from the true previous entry of `timesteps`,
   * which is the same for every evenly spaced schedule.
   *
   * @param modelOutput the model's prediction at the starting point, shaped like `sample`
   * @param timestep t, the entry of `timesteps` this step lands on
   * @param sample x_{t'}
   * @returns x_t (as `prevSample`, diffusers' name) and the predicted x0
   * @throws RangeError for a shape mismatch, a timestep not in the schedule or a non-finite input
   * @example
   * ```ts
   * import { DDIMInverseScheduler, Tensor } from "../../mod.ts";
   * const inverse = DDIMInverseScheduler.fromConfig({});
   * inverse.setTimesteps(10);
   * const { prevSample } = inverse.step(Tensor.zeros([1, 4]), 0, Tensor.zeros([1, 4]));
   * ```
   */
  step(modelOutput: Tensor, timestep: number, sample: Tensor): SchedulerStepOutput {
    checkModelOutputShape(modelOutput, sample);
    if (this.numInferenceSteps === null) {
      throw new RangeError("Call setTimesteps(n) before step: the DDIM-inverse schedule is not set");
    }
    // 1. where the step starts (previous entry) and lands (timestep)
    const index = this.#index(timestep);
    checkTrainTimestep(timestep, this.numTrainTimesteps);
    const fromTimestep = index > 0 ? this.#timesteps[index - 1] : -1;
    // 2. alphas, betas
    const alphaBarFrom = fromTimestep >= 0 ? this.alphasCumprod[fromTimestep] : this.initialAlphaCumprod;
    const alphaBarTo = this.alphasCumprod[timestep];
    const sqrtAlphaBarFrom = f32(Math.sqrt(alphaBarFrom));
    const sqrtBetaBarFrom = f32(Math.sqrt(f32(1 - alphaBarFrom)));
    const sqrtAlphaBarTo = f32(Math.sqrt(alphaBarTo));
    const sqrtBetaBarTo = f32(Math.sqrt(f32(1 - alphaBarTo)));
    // 3. predX0 and eps as linear forms of (x, model output), eq. (9)
    let x0FromSample: number, x0FromOutput: number, epsFromSample: number, epsFromOutput: number;
    switch (this.config.prediction_type) {
      case "epsilon":
        [x0FromSample, x0FromOutput, epsFromSample, epsFromOutput] = [
          1 / sqrtAlphaBarFrom,
          -sqrtBetaBarFrom / sqrtAlphaBarFrom,
          0,
          1,
        ];
        break;
      case "sample":
        [x0FromSample, x0FromOutput, epsFromSample, epsFromOutput] = [
          0,
          1,
          1 / sqrtBetaBarFrom,
          -sqrtAlphaBarFrom / sqrtBetaBarFrom,
        ];
        break;
      default:
        [x0FromSample, x0FromOutput, epsFromSample, epsFromOutput] = [
          sqrtAlphaBarFrom,
          -sqrtBetaBarFrom,
          sqrtBetaBarFrom,
          sqrtAlphaBarFrom,
        ];
    }
    const clipRange = this.config.clip_sample ? this.config.clip_sample_range : Infinity;
    const m = modelOutput.data;
    const x = sample.data;
    const size = sample.size;
    const prev = new Float32Array(size);
    const predX0 = new Float32Array(size);
    // 4-6. clip predX0; direction pointing to x_t plus the scaled x0, eq. (12) with sigma = 0
    const check = inverseFused(
      m,
      x,
      predX0,
      prev,
      x0FromSample,
      x0FromOutput,
      epsFromSample,
      epsFromOutput,
      clipRange,
      sqrtAlphaBarTo,
      sqrtBetaBarTo,
    );
    const prevSample = new Tensor(prev, sample.shape);
    if (Number.isNaN(check)) reportNonFinite([[modelOutput, "modelOutput"], [sample, "sample"]], prevSample);
    return { prevSample, predOriginalSample: new Tensor(predX0, sample.shape) };
  }

  /**
   * The forward process q(x_t | x_0) in closed form (eq. 4).
   *
   * x_t = sqrt(alphaBar_t) x0 + sqrt(1 - alphaBar_t) eps
   *
   * @param originalSamples x0, batch-first
   * @param noise eps, same shape
   * @param timesteps one timestep for all, or one per batch item
   * @returns x_t
   * @example
   * ```ts
   * import { DDIMInverseScheduler, Tensor } from "../../mod.ts";
   * DDIMInverseScheduler.fromConfig({}).addNoise(Tensor.zeros([1, 4]), Tensor.zeros([1, 4]), 10);
   * ```
   */
  addNoise(originalSamples: Tensor, noise: Tensor, timesteps: number | readonly number[]): Tensor {
    return mixWithAlphaBar(this.alphasCumprod, originalSamples, noise, timesteps, 1, ["originalSamples", "noise"]);
  }

  /**
   * The velocity target of v-prediction (Salimans and Ho 2022).
   *
   * v = sqrt(alphaBar_t) eps - sqrt(1 - alphaBar_t) x0
   *
   * @param sample x0, batch-first
   * @param noise eps, same shape
   * @param timesteps one timestep for all, or one per batch item
   * @returns v
   * @example
   * ```ts
   * import { DDIMInverseScheduler, Tensor } from "../../mod.ts";
   * DDIMInverseScheduler.fromConfig({}).getVelocity(Tensor.zeros([1, 4]), Tensor.zeros([1, 4]), 10);
   * ```
   */
  getVelocity(sample: Tensor, noise: Tensor, timesteps: number | readonly number[]): Tensor {
    return mixWithAlphaBar(this.alphasCumprod, noise, sample, timesteps, -1, ["noise", "sample"]);
  }

  #index(timestep: number): number {
    return scheduleIndex(this.#indexOf, this.#timesteps, timestep, this.numTrainTimesteps);
  }
}

/**
 * The fused inverse step over every element: predX0 (clipped) and x_{t+1} = sqrt(alphaBarTo) predX0 +
 * sqrt(1 - alphaBarTo) eps in one pass. Returns NaN when the model output or the result has a non-finite element,
 * else 0.
 *
 * The clamp is branch-free: the value goes to slot 1 of [lower, value, upper] and slot
 * 1 + (value > upper) - (value < lower) is read back, so random data costs no mispredicted branches.
 */
function inverseFused(
  m: Float32Array,
  x: Float32Array,
  predX0: Float32Array,
  prev: Float32Array,
  x0FromSample: number,
  x0FromOutput: number,
  epsFromSample: number,
  epsFromOutput: number,
  clipRange: number,
  sqrtAlphaBarTo: number,
  sqrtBetaBarTo: number,
): number {
  const size = x.length;
  const lower = -clipRange;
  const slots = new Float64Array([lower, 0, clipRange]);
  let check = 0;
  for (let i = 0; i < size; i++) {
    const xi = x[i];
    const mi = m[i];
    const unclipped = x0FromSample * xi + x0FromOutput * mi;
    slots[1] = unclipped;
    const x0 =
      slots[1 + ((unclipped > clipRange) as unknown as number | 0) - ((unclipped < lower) as unknown as number | 0)];
    const out = sqrtAlphaBarTo * x0 + sqrtBetaBarTo * (epsFromSample * xi + epsFromOutput * mi);
    predX0[i] = x0;
    prev[i] = out;
    check += (mi - mi) + (out - out);
  }
  return check;
}
