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

export type { PredictionType } from "./_scheduler_config.ts";

/** A resolved DDIM config: diffusers' `DDIMScheduler` keys, snake_case. */
export interface DDIMSchedulerConfig extends BaseSchedulerConfig, ThresholdingConfig {
  /** At the last step, alpha-bar_prev is 1 (true) or alphasCumprod[0] (false). */
  set_alpha_to_one: boolean;
}

/** Options of `DDIMScheduler.step`: eta, the clipped-output switch, and the noise source (used when eta > 0). */
export interface DDIMStepOptions extends NoiseOptions {
  /** eta in [0, 1]: the weight of the noise, eq. (16) (default 0, deterministic). */
  eta?: number;
  /** Recompute eps from the clipped x0 before the direction term (diffusers' `use_clipped_model_output`). */
  useClippedModelOutput?: boolean;
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
  sqrtAlphaBar: number;
  sqrtBetaBar: number;
  sqrtAlphaBarPrev: number;
  oneMinusAlphaBarPrev: number;
  /** sigma_t(1)^2 = (1 - alphaBarPrev)/(1 - alphaBar) (1 - alphaBar/alphaBarPrev), eq. (16). */
  varianceAtEtaOne: number;
}

const f32 = Math.fround;

/**
 * Refuse an eta outside [0, 1] (eta scales sigma_t in eq. (16); 0 is DDIM, 1 is DDPM's variance).
 *
 * sigma_t(eta) = eta sqrt((1 - alphaBarPrev) / (1 - alphaBar)) sqrt(1 - alphaBar / alphaBarPrev), 0 <= eta <= 1
 *
 * Above 1, sigma_t^2 can exceed 1 - alphaBarPrev, and the direction coefficient sqrt(1 - alphaBarPrev - sigma_t^2)
 * of eq. (12) becomes the square root of a negative number (diffusers returns NaN there); a huge eta such as 1e308
 * overflows sigma_t itself.
 *
 * @param eta the value to check
 * @returns nothing when eta is a number in [0, 1]
 * @throws RangeError naming eta otherwise
 * @example
 * ```ts
 * import { checkEta } from "../../mod.ts";
 * checkEta(0.5);
 * let refused = false;
 * try {
 *   checkEta(1.5);
 * } catch {
 *   refused = true;
 * }
 * if (!refused) throw new Error("eta above 1 must be refused");
 * ```
 */
export function checkEta(eta: number): void {
  if (typeof eta !== "number" || !(eta >= 0 && eta <= 1)) {
    throw new RangeError(`eta must be a number from 0 to 1 (0 is DDIM, 1 is DDPM-like), got ${eta}`);
  }
}

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
 * let x = Tensor.from(new Array(192).fill(1), [1, 3, 8, 8]);
 * for (const t of scheduler.timesteps) {
 *   const eps = Tensor.zeros(x.shape); // a model that predicts no noise
 *   x = scheduler.step(eps, t, x).prevSample;
 * }
 * // with eps = 0 every step rescales by sqrt(alphaBarPrev / alphaBar), so x_0 = x_T / sqrt(alphaBar_900)
 * const expected = 1 / Math.sqrt(scheduler.alphasCumprod[900]);
 * if (Math.abs(x.data[0] - expected) > 1e-3 * expected) throw new Error(`got ${x.data[0]}, expected ${expected}`);
 * ```
 */
export class DDIMScheduler extends SchedulerBase<DDIMSchedulerConfig, DDIMStepOptions> {
  /** alpha-bar used after the last step: 1, or alphasCumprod[0] when `set_alpha_to_one` is false. */
  readonly finalAlphaCumprod: number;

  /**
   * Build a scheduler from a diffusers config (snake_case; absent keys take diffusers' defaults).
   *
   * @param config `scheduler_config.json` as an object
   * @throws RangeError or TypeError naming a bad key and value
   */
  constructor(config: Partial<DDIMSchedulerConfig> | Record<string, unknown> = {}) {
    super(config, DDIM_DEFAULTS, { scheduler: "DDIMScheduler", betaSchedules: DDIM_BETA_SCHEDULES });
    this.finalAlphaCumprod = this.config.set_alpha_to_one ? 1 : this.alphasCumprod[0];
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
   * // Stable Diffusion's schedule: alphaBar_999 = 0.0047 (diffusers, DDIMScheduler.alphas_cumprod[-1])
   * if (Math.abs(scheduler.alphasCumprod[999] - 0.0047) > 1e-4) throw new Error("scaled_linear alpha-bar");
   * ```
   */
  static fromConfig(config: Partial<DDIMSchedulerConfig> | Record<string, unknown> = {}): DDIMScheduler {
    return new DDIMScheduler(config);
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
   * const z = new TorchGenerator(1).randn(x.shape);
   * const drawn = scheduler.step(Tensor.zeros(x.shape), 900, x, { eta: 1, generator: new TorchGenerator(1) });
   * const given = scheduler.step(Tensor.zeros(x.shape), 900, x, { eta: 1, varianceNoise: z });
   * // the generator draws exactly randn(sample.shape): the same step as passing that noise
   * if (drawn.prevSample.data.some((v, i) => v !== given.prevSample.data[i])) throw new Error("noise differs");
   * ```
   */
  step(modelOutput: Tensor, timestep: number, sample: Tensor, options: DDIMStepOptions = {}): SchedulerStepOutput {
    const eta = options.eta ?? 0;
    checkEta(eta);
    this.checkStepInputs(modelOutput, sample, options);
    const config = this.config;
    // 1. previous timestep: the next entry of the schedule (tau_{i-1})
    const index = this.indexOf(timestep);
    // 2. alphaBar_t, alphaBar_{t-1} and their roots, from the table (once per timestep)
    const c = this.coefficientsAt(index, (k) => this.#coefficients(k));
    this.checkPredictsX0(c.sqrtAlphaBar, timestep);
    // 3. predicted x0, eq. (12)'s "predicted x0" (eq. (9)): predX0 = x0FromSample x_t + x0FromOutput m
    const form = predictionForm(config.prediction_type, c.sqrtAlphaBar, c.sqrtBetaBar);
    // 4. clip or threshold predX0 (thresholding: Imagen, Saharia et al. 2022, arXiv 2205.11487)
    const clipRange = !config.thresholding && config.clip_sample ? config.clip_sample_range : Infinity;
    // 5. sigma_t(eta), eq. (16)
    const sigmaT = f32(eta * f32(Math.sqrt(c.varianceAtEtaOne)));
    // 6. the direction pointing to x_t, eq. (12): sqrt(1 - alphaBarPrev - sigma_t^2) eps, with eps the model's
    //    (or, with useClippedModelOutput, eps = (x_t - sqrt(alphaBar) predX0) / sqrt(1 - alphaBar))
    const directionCoeff = f32(Math.sqrt(Math.max(0, f32(c.oneMinusAlphaBarPrev - f32(sigmaT * sigmaT)))));
    const clippedEps = options.useClippedModelOutput === true;
    // 7. x_{t-1} = sqrt(alphaBarPrev) predX0 + direction + sigma_t z, eq. (12); z drawn only when eta > 0
    const noise = eta > 0 ? this.stepNoise(sample, options, "with eta > 0") : null;
    const k: StepCoefficients = {
      x0FromSample: form.x0FromSample,
      x0FromOutput: form.x0FromOutput,
      clipRange,
      x0Coeff: clippedEps ? c.sqrtAlphaBarPrev - directionCoeff * c.sqrtAlphaBar / c.sqrtBetaBar : c.sqrtAlphaBarPrev,
      sampleCoeff: directionCoeff * (clippedEps ? 1 / c.sqrtBetaBar : form.epsFromSample),
      outputCoeff: clippedEps ? 0 : directionCoeff * form.epsFromOutput,
      noiseCoeff: sigmaT,
    };
    return this.finishAffineStep(this.affineStep(k, modelOutput.data, sample, noise), modelOutput, sample, options);
  }

  /** The constants of eq. (12) and (16) at schedule entry `index`, float32 as diffusers computes them. */
  #coefficients(index: number): DDIMCoefficients {
    const timestep = this.timesteps[index];
    const prevTimestep = index + 1 < this.timesteps.length ? this.timesteps[index + 1] : -1;
    const alphaBar = this.alphasCumprod[timestep];
    const alphaBarPrev = prevTimestep >= 0 ? this.alphasCumprod[prevTimestep] : this.finalAlphaCumprod;
    const betaBar = f32(1 - alphaBar);
    const oneMinusAlphaBarPrev = f32(1 - alphaBarPrev);
    return {
      sqrtAlphaBar: f32(Math.sqrt(alphaBar)),
      sqrtBetaBar: f32(Math.sqrt(betaBar)),
      sqrtAlphaBarPrev: f32(Math.sqrt(alphaBarPrev)),
      oneMinusAlphaBarPrev,
      varianceAtEtaOne: f32(f32(oneMinusAlphaBarPrev / betaBar) * f32(1 - f32(alphaBar / alphaBarPrev))),
    };
  }
}
