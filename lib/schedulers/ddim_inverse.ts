/**
 * DDIM inversion: eq. (12) of the DDIM paper with eta = 0 run forwards in time, x_{t'} -> x_t, which encodes an image
 * into the latent noise that deterministic DDIM decodes back (the paper's section 5.4, eq. (14) discretised). Matches
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
import type { Tensor } from "../core/tensor.ts";
import { BASE_DEFAULTS, type BaseSchedulerConfig, checkCustomTimesteps } from "./_scheduler_config.ts";
import { SchedulerBase } from "./_base.ts";
import { predictionForm, type StepCoefficients } from "./_kernels.ts";
import type { SchedulerStepOutput } from "./scheduler.ts";

/** A resolved DDIM-inverse config: diffusers' `DDIMInverseScheduler` keys, snake_case. */
export interface DDIMInverseSchedulerConfig extends BaseSchedulerConfig {
  /** At the first step, the starting alpha-bar is 1 (true) or alphasCumprod[0] (false). */
  set_alpha_to_one: boolean;
}

/** Options of `DDIMInverseScheduler.step`: none (the inversion is deterministic). */
export type DDIMInverseStepOptions = Record<never, never>;

const INVERSE_DEFAULTS: Readonly<DDIMInverseSchedulerConfig> = Object.freeze({
  ...BASE_DEFAULTS,
  set_alpha_to_one: true,
});

/** diffusers' inverse scheduler refuses `linspace`; `quad` is this package's addition. */
const INVERSE_SPACINGS = ["leading", "trailing", "quad"] as const;
const INVERSE_BETA_SCHEDULES = ["linear", "scaled_linear", "squaredcos_cap_v2"] as const;

/** Per-timestep constants of the inverted eq. (12), float32 as diffusers computes them. */
interface InverseCoefficients {
  sqrtAlphaBarFrom: number;
  sqrtBetaBarFrom: number;
  sqrtAlphaBarTo: number;
  sqrtBetaBarTo: number;
}

const f32 = Math.fround;

/**
 * The DDIM-inverse scheduler: deterministic DDIM (eta = 0) stepping from low to high noise.
 *
 * x_t = sqrt(alphaBarTo) predX0 + sqrt(1 - alphaBarTo) eps, predX0 = (x_{t'} - sqrt(1 - alphaBarFrom) eps) / sqrt(alphaBarFrom)
 *
 * @example
 * ```ts
 * import { DDIMInverseScheduler, DDIMScheduler, Tensor } from "../../mod.ts";
 * const inverse = DDIMInverseScheduler.fromConfig({ clip_sample: false });
 * inverse.setTimesteps(10); // [0, 100, ..., 900]
 * const image = Tensor.from(new Array(192).fill(1), [1, 3, 8, 8]);
 * let x = image;
 * for (const t of inverse.timesteps) x = inverse.step(Tensor.zeros(x.shape), t, x).prevSample;
 * // with eps = 0 the inversion only rescales, and DDIM (eta = 0) with the same eps undoes it
 * const ddim = DDIMScheduler.fromConfig({ clip_sample: false });
 * ddim.setTimesteps(10);
 * for (const t of ddim.timesteps) x = ddim.step(Tensor.zeros(x.shape), t, x).prevSample;
 * if (Math.abs(x.data[0] - 1) > 1e-5) throw new Error(`the round trip gave ${x.data[0]}`);
 * ```
 */
export class DDIMInverseScheduler extends SchedulerBase<DDIMInverseSchedulerConfig, DDIMInverseStepOptions> {
  /** alpha-bar a first step starts from: 1, or alphasCumprod[0] when `set_alpha_to_one` is false. */
  readonly initialAlphaCumprod: number;

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
    super(given, INVERSE_DEFAULTS, {
      scheduler: "DDIMInverseScheduler",
      spacings: INVERSE_SPACINGS,
      betaSchedules: INVERSE_BETA_SCHEDULES,
    });
    this.initialAlphaCumprod = this.config.set_alpha_to_one ? 1 : this.alphasCumprod[0];
    // all T timesteps, ascending, until setTimesteps (the schedule counts as not set)
    this.setSchedule(Array.from({ length: this.numTrainTimesteps }, (_, k) => k), null);
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
   * inverse.setTimesteps(3);
   * if (inverse.timesteps.join() !== "332,666,999") throw new Error("trailing, ascending");
   * ```
   */
  static fromConfig(config: Partial<DDIMInverseSchedulerConfig> | Record<string, unknown> = {}): DDIMInverseScheduler {
    return new DDIMInverseScheduler(config);
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
   * inverse.setTimesteps(4);
   * if (inverse.timesteps.join() !== "0,250,500,750") throw new Error("leading, ascending");
   * ```
   */
  override setTimesteps(numInferenceSteps: number | readonly number[]): void {
    this.setSchedule(
      typeof numInferenceSteps === "number"
        ? this.spacedSchedule(numInferenceSteps).reverse()
        : checkCustomTimesteps(numInferenceSteps, this.numTrainTimesteps, "ascending"),
    );
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
   * if (inverse.previousTimestep(100) !== 0 || inverse.previousTimestep(0) !== -1) throw new Error("from");
   * ```
   */
  override previousTimestep(timestep: number): number {
    const index = this.indexOf(timestep);
    return index > 0 ? this.timesteps[index - 1] : -1;
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
   * @param _options none
   * @returns x_t (as `prevSample`, diffusers' name) and the predicted x0
   * @throws RangeError for a shape mismatch, a timestep not in the schedule or a non-finite input
   * @example
   * ```ts
   * import { DDIMInverseScheduler, Tensor } from "../../mod.ts";
   * const inverse = DDIMInverseScheduler.fromConfig({});
   * inverse.setTimesteps(10);
   * // the first step starts from alphaBar = 1 (set_alpha_to_one): x0 = x, then x_0 = sqrt(alphaBar_0) x
   * const { prevSample } = inverse.step(Tensor.zeros([1, 4]), 0, Tensor.from(new Array(4).fill(1), [1, 4]));
   * const expected = Math.sqrt(inverse.alphasCumprod[0]);
   * if (Math.abs(prevSample.data[0] - expected) > 1e-6) throw new Error(`got ${prevSample.data[0]}`);
   * ```
   */
  step(
    modelOutput: Tensor,
    timestep: number,
    sample: Tensor,
    _options: DDIMInverseStepOptions = {},
  ): SchedulerStepOutput {
    this.checkStepInputs(modelOutput, sample);
    // 1. where the step starts (the previous entry, t') and lands (timestep t)
    const index = this.indexOf(timestep);
    // 2. alphaBar at both ends and their roots, from the table (once per timestep)
    const c = this.coefficientsAt(index, (k) => this.#coefficients(k));
    // 3. predicted x0 at the start, eq. (9): predX0 = x0FromSample x_{t'} + x0FromOutput m
    const form = predictionForm(this.config.prediction_type, c.sqrtAlphaBarFrom, c.sqrtBetaBarFrom);
    // 4. clip predX0
    const clipRange = this.config.clip_sample ? this.config.clip_sample_range : Infinity;
    // 5. sigma = 0: the inversion is the deterministic member of eq. (12)'s family
    // 6. the direction pointing to x_t, eq. (12): sqrt(1 - alphaBarTo) eps
    // 7. x_t = sqrt(alphaBarTo) predX0 + direction, eq. (12) run forwards
    const k: StepCoefficients = {
      x0FromSample: form.x0FromSample,
      x0FromOutput: form.x0FromOutput,
      clipRange,
      x0Coeff: c.sqrtAlphaBarTo,
      sampleCoeff: c.sqrtBetaBarTo * form.epsFromSample,
      outputCoeff: c.sqrtBetaBarTo * form.epsFromOutput,
      noiseCoeff: 0,
    };
    return this.finishAffineStep(this.affineStep(k, modelOutput.data, sample, null), modelOutput, sample);
  }

  /** The roots of alpha-bar where the step at schedule entry `index` starts and lands, float32. */
  #coefficients(index: number): InverseCoefficients {
    const timestep = this.timesteps[index];
    const fromTimestep = index > 0 ? this.timesteps[index - 1] : -1;
    const alphaBarFrom = fromTimestep >= 0 ? this.alphasCumprod[fromTimestep] : this.initialAlphaCumprod;
    const alphaBarTo = this.alphasCumprod[timestep];
    return {
      sqrtAlphaBarFrom: f32(Math.sqrt(alphaBarFrom)),
      sqrtBetaBarFrom: f32(Math.sqrt(f32(1 - alphaBarFrom))),
      sqrtAlphaBarTo: f32(Math.sqrt(alphaBarTo)),
      sqrtBetaBarTo: f32(Math.sqrt(f32(1 - alphaBarTo))),
    };
  }
}
