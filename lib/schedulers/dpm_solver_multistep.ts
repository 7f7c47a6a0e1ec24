/**
 * The multistep DPM-Solver and DPM-Solver++ samplers (Lu et al. 2022, arXiv 2206.00927 and arXiv 2211.01095),
 * matching diffusers' `DPMSolverMultistepScheduler` number for number: first, second and third order, the midpoint
 * and Heun second-order forms, the SDE variants, Karras sigmas and uniform log-SNR steps, thresholding, and the
 * lower-order final steps.
 *
 * Both papers write the forward process as x_t = alpha_t x0 + sigma_t eps with the half log-SNR
 * lambda_t = log(alpha_t / sigma_t). For the DDPM family alpha_t = sqrt(alphaBar_t) and sigma_t = sqrt(1 - alphaBar_t);
 * diffusers stores the schedule as the variance-exploding sigma sigma_t / alpha_t and turns it back into the pair.
 * A step goes from s (noisier) to t (cleaner) and integrates the probability-flow ODE exactly in its linear part:
 *
 *   DPM-Solver   (noise model):  x_t = (alpha_t / alpha_s) x_s - sigma_t (e^h - 1) eps_theta + ...
 *   DPM-Solver++ (data model):   x_t = (sigma_t / sigma_s) x_s - alpha_t (e^(-h) - 1) x0_theta + ...
 *
 * with h = lambda_t - lambda_s; the dots are the multistep corrections built from earlier model outputs.
 *
 * | paper                     | code                 | meaning                                                     |
 * |---------------------------|----------------------|-------------------------------------------------------------|
 * | sigma_t / alpha_t         | `sigmas`             | the schedule's noise levels, one per step plus a final one  |
 * | alpha_t                   | `alphaT`, `alphaS`   | sqrt(alphaBar) = 1 / sqrt(sigma^2 + 1)                      |
 * | sigma_t                   | `sigmaT`, `sigmaS`   | sqrt(1 - alphaBar) = sigma alpha                            |
 * | lambda_t                  | `lambdaT`            | log(alpha_t) - log(sigma_t), the half log-SNR               |
 * | h_i = lambda_t - lambda_s | `h`                  | the step in lambda                                          |
 * | r_i = h_{i-1} / h_i       | `r0`, `r1`           | ratios of the earlier steps to this one                     |
 * | x0_theta, eps_theta       | converted output     | the data (++) or noise prediction each step stores          |
 * | D0, D1, D2                | `d0`, `d1`, `d2`     | the output and its first and second divided differences     |
 * | z                         | `noise`              | the fresh noise of the SDE variants                         |
 *
 * @module
 */
import { Tensor } from "../core/tensor.ts";
import { checkStepCount, numpyArange, numpyLinspace, roundHalfEven } from "../math/schedules.ts";
import { type NoiseOptions, SchedulerBase } from "./_base.ts";
import { karrasSigmas, sigmaToTimestep, trainSigmaTables } from "./_sigma_schedule.ts";
import {
  checkCustomTimesteps,
  checkSpacedTimesteps,
  perBatchTimesteps,
  type ScheduleConfig,
  SOLVER_SCHEDULE_RULES,
  THRESHOLDING_DEFAULTS,
  type ThresholdingConfig,
  thresholdInPlace,
} from "./_scheduler_config.ts";
import type { SchedulerStepOutput } from "./scheduler.ts";

/** Which integral the solver discretizes: of the noise model (`dpmsolver`) or the data model (`dpmsolver++`). */
export type DPMSolverAlgorithmType = "dpmsolver++" | "dpmsolver" | "sde-dpmsolver++" | "sde-dpmsolver";

/**
 * The algorithm types `DPMSolverMultistepScheduler` accepts.
 *
 * @example
 * ```ts
 * import { DPM_SOLVER_ALGORITHM_TYPES, DPMSolverMultistepScheduler } from "../../mod.ts";
 * // the four algorithm_type values of diffusers' DPMSolverMultistepScheduler: each is accepted, a misspelt one refused
 * // (the noise-model ones, like diffusers, cannot end at sigma = 0, so every one ends at sigma_min here)
 * for (const type of DPM_SOLVER_ALGORITHM_TYPES) {
 *   const scheduler = DPMSolverMultistepScheduler.fromConfig({ algorithm_type: type, final_sigmas_type: "sigma_min" });
 *   if (scheduler.config.algorithm_type !== type) throw new Error(`${type} was not kept`);
 * }
 * let refused = false;
 * try {
 *   DPMSolverMultistepScheduler.fromConfig({ algorithm_type: "dpmsolver+++" });
 * } catch {
 *   refused = true;
 * }
 * if (!refused) throw new Error("an unknown algorithm_type must be refused");
 * ```
 */
export const DPM_SOLVER_ALGORITHM_TYPES: readonly DPMSolverAlgorithmType[] = [
  "dpmsolver++",
  "dpmsolver",
  "sde-dpmsolver++",
  "sde-dpmsolver",
];

/** The second-order update's form: the midpoint rule or Heun's (trapezoidal) rule. */
export type DPMSolverType = "midpoint" | "heun";

/**
 * The solver types `DPMSolverMultistepScheduler` accepts.
 *
 * @example
 * ```ts
 * import { DPM_SOLVER_TYPES, DPMSolverMultistepScheduler } from "../../mod.ts";
 * // diffusers' two solver_type values: each is accepted and kept
 * for (const type of DPM_SOLVER_TYPES) {
 *   const scheduler = DPMSolverMultistepScheduler.fromConfig({ solver_type: type });
 *   if (scheduler.config.solver_type !== type) throw new Error(`${type} was not kept`);
 * }
 * if (DPM_SOLVER_TYPES.join() !== "midpoint,heun") throw new Error(`got ${DPM_SOLVER_TYPES.join()}`);
 * ```
 */
export const DPM_SOLVER_TYPES: readonly DPMSolverType[] = ["midpoint", "heun"];

/** The noise level after the last step: 0 (`zero`, the clean sample) or the first training sigma (`sigma_min`). */
export type FinalSigmasType = "zero" | "sigma_min";

/** A resolved config: diffusers' `DPMSolverMultistepScheduler` keys, snake_case. */
export interface DPMSolverMultistepSchedulerConfig extends ScheduleConfig, ThresholdingConfig {
  /** 1, 2 or 3: how many model outputs a step combines. */
  solver_order: number;
  /** `dpmsolver++` (default), `dpmsolver`, `sde-dpmsolver++` or `sde-dpmsolver`. */
  algorithm_type: DPMSolverAlgorithmType;
  /** The second-order form, `midpoint` (default) or `heun`. */
  solver_type: DPMSolverType;
  /** Use lower orders for the last steps when there are fewer than 15 steps. */
  lower_order_final: boolean;
  /** Use the first-order step for the last step. */
  euler_at_final: boolean;
  /** Space the noise levels as Karras et al. (2022) do (rho = 7). */
  use_karras_sigmas: boolean;
  /** Space the steps uniformly in log sigma (Lu et al.'s uniform log-SNR). */
  use_lu_lambdas: boolean;
  /** diffusers' exponential spacing (not supported here; must be false). */
  use_exponential_sigmas: boolean;
  /** diffusers' beta-distribution spacing (not supported here; must be false). */
  use_beta_sigmas: boolean;
  /** diffusers' flow-matching sigmas (not supported here; must be false). */
  use_flow_sigmas: boolean;
  /** The noise level after the last step. */
  final_sigmas_type: FinalSigmasType;
  /** Timesteps whose lambda is below this are left out of the spaced schedule (for the cosine schedule). */
  lambda_min_clipped: number;
  /** `learned` or `learned_range`: the model output carries a variance in its second half of channels. */
  variance_type: string | null;
  /** Rescale the betas to zero terminal SNR (arXiv 2305.08891). */
  rescale_betas_zero_snr: boolean;
}

/** Options of `DPMSolverMultistepScheduler.step`: the noise source of the SDE variants. */
export interface DPMSolverStepOptions extends NoiseOptions {}

/** diffusers' `DPMSolverMultistepScheduler` defaults. */
const DPM_DEFAULTS: Readonly<DPMSolverMultistepSchedulerConfig> = Object.freeze({
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: "linear",
  trained_betas: null,
  solver_order: 2,
  prediction_type: "epsilon",
  ...THRESHOLDING_DEFAULTS,
  algorithm_type: "dpmsolver++",
  solver_type: "midpoint",
  lower_order_final: true,
  euler_at_final: false,
  use_karras_sigmas: false,
  use_lu_lambdas: false,
  use_exponential_sigmas: false,
  use_beta_sigmas: false,
  use_flow_sigmas: false,
  final_sigmas_type: "zero",
  lambda_min_clipped: -Infinity,
  variance_type: null,
  timestep_spacing: "linspace",
  steps_offset: 0,
  rescale_betas_zero_snr: false,
});

const f32 = Math.fround;

/** One schedule entry's alpha, sigma and lambda, float32 as diffusers' `_sigma_to_alpha_sigma_t` gives them. */
interface NoiseLevel {
  alpha: number;
  sigma: number;
  lambda: number;
}

/**
 * A step's scalar coefficients: x_t = sampleCoeff x_s + d0 D0 + d1 D1 + d2 D2 + noiseCoeff z, each term rounded to
 * float32 and summed left to right, as PyTorch evaluates diffusers' expressions.
 */
interface StepCoefficients {
  sampleCoeff: number;
  d0: number;
  d1: number;
  d2: number;
  noiseCoeff: number;
  /** 1 / r0, 1 / r1, r0 / (r0 + r1), 1 / (r0 + r1): the divided differences' weights. */
  invR0: number;
  invR1: number;
  mixR: number;
  invRSum: number;
}

/**
 * The multistep DPM-Solver(++) scheduler, as diffusers' `DPMSolverMultistepScheduler` (DPM-Solver++(2M) by default).
 *
 * x_t = (sigma_t / sigma_s) x_s - alpha_t (e^(-h) - 1) (D0 + D1 / 2), h = lambda_t - lambda_s (2M, midpoint)
 *
 * The scheduler keeps the last `solver_order` converted model outputs, so its steps must be taken in the schedule's
 * order after `setTimesteps` (a new `setTimesteps` starts over).
 *
 * @example
 * ```ts
 * import { DPMSolverMultistepScheduler, Tensor } from "../../mod.ts";
 * const scheduler = DPMSolverMultistepScheduler.fromConfig({});
 * scheduler.setTimesteps(20);
 * let x = Tensor.from(new Array(192).fill(1), [1, 3, 8, 8]);
 * for (const t of scheduler.timesteps) {
 *   const eps = Tensor.zeros(x.shape); // a model's prediction
 *   x = scheduler.step(eps, t, x).prevSample;
 * }
 * // eps = 0 predicts x0 = x_t / alpha_t at every step, so every difference of predictions is 0 and each update is the
 * // exact ODE solution x_s = (alpha_s / alpha_t) x_t; the last step goes to sigma = 0 (alpha = 1): x_0 = x_T / alpha_999
 * const expected = 1 / Math.sqrt(scheduler.alphasCumprod[999]);
 * if (Math.abs(x.data[0] - expected) > 1e-3 * expected) throw new Error(`got ${x.data[0]}, expected ${expected}`);
 * ```
 */
export class DPMSolverMultistepScheduler
  extends SchedulerBase<DPMSolverMultistepSchedulerConfig, DPMSolverStepOptions> {
  /** sigma = sqrt((1 - alphaBar) / alphaBar) for every training timestep, float32. */
  readonly trainSigmas: Float32Array;
  #logSigmas: Float32Array;
  #lastTimestep: number;
  #sigmas = new Float32Array(0);
  #levels: NoiseLevel[] = [];
  #coefficients: StepCoefficients[][] = [];
  #stepIndex: number | null = null;
  #history: Float32Array[] = [];
  #lowerOrderNums = 0;

  /**
   * Build a scheduler from a diffusers config (snake_case; absent keys take diffusers' defaults).
   *
   * @param config `scheduler_config.json` as an object
   * @throws RangeError or TypeError naming a bad key and value
   */
  constructor(config: Partial<DPMSolverMultistepSchedulerConfig> | Record<string, unknown> = {}) {
    super(diffusersRenames(config), DPM_DEFAULTS, {
      scheduler: "DPMSolverMultistepScheduler",
      ...SOLVER_SCHEDULE_RULES,
      enums: {
        algorithm_type: DPM_SOLVER_ALGORITHM_TYPES,
        solver_type: DPM_SOLVER_TYPES,
        final_sigmas_type: ["zero", "sigma_min"],
      },
    });
    checkDpmConfig(this.config);
    const total = this.numTrainTimesteps;
    // diffusers keeps the last alpha-bar off 0 after the zero-SNR rescale, so sigma_T stays finite
    if (this.config.rescale_betas_zero_snr) this.alphasCumprod[total - 1] = 2 ** -24;
    // 1. sigma = ((1 - alphaBar) / alphaBar)^(1/2) and its log, float32 as torch and numpy compute them
    ({ trainSigmas: this.trainSigmas, logSigmas: this.#logSigmas } = trainSigmaTables(this.alphasCumprod));
    let clipped = 0;
    for (let t = 0; t < total; t++) {
      const alphaBar = this.alphasCumprod[t];
      // lambda_t = log sqrt(alphaBar) - log sqrt(1 - alphaBar), to clip the schedule at lambda_min_clipped
      const lambda = f32(f32(Math.log(f32(Math.sqrt(alphaBar)))) - f32(Math.log(f32(Math.sqrt(f32(1 - alphaBar))))));
      if (lambda < this.config.lambda_min_clipped) clipped++;
    }
    this.#lastTimestep = total - clipped;
    if (this.#lastTimestep < 1) {
      throw new RangeError(
        `DPMSolverMultistepScheduler config lambda_min_clipped ${this.config.lambda_min_clipped} clips every timestep`,
      );
    }
  }

  /**
   * Build a scheduler from a diffusers `scheduler_config.json` object (another scheduler's config works too).
   *
   * @param config the config, snake_case
   * @returns a new scheduler
   * @example
   * ```ts
   * import { DDIMScheduler, DPMSolverMultistepScheduler } from "../../mod.ts";
   * const ddim = DDIMScheduler.fromConfig({ beta_schedule: "scaled_linear", beta_start: 0.00085, beta_end: 0.012 });
   * const scheduler = DPMSolverMultistepScheduler.fromConfig(ddim.toConfig());
   * // the keys both know are kept (and DDIM-only ones ignored), as diffusers' from_config does: the same alpha-bar
   * if (scheduler.alphasCumprod.some((v, t) => v !== ddim.alphasCumprod[t])) throw new Error("alpha-bar differs");
   * ```
   */
  static fromConfig(
    config: Partial<DPMSolverMultistepSchedulerConfig> | Record<string, unknown> = {},
  ): DPMSolverMultistepScheduler {
    return new DPMSolverMultistepScheduler(config);
  }

  /** The noise levels sigma of the current schedule: one per step and the final one (float32, a copy). */
  get sigmas(): Float32Array {
    return this.#sigmas.slice();
  }

  /** The index of the next step in `timesteps`, or null before the first step. */
  get stepIndex(): number | null {
    return this.#stepIndex;
  }

  /** How many model outputs the history holds (at most `solver_order`), so the order the next step can use. */
  get lowerOrderNums(): number {
    return this.#lowerOrderNums;
  }

  /**
   * Choose the schedule: n timesteps by `timestep_spacing` (or Karras sigmas, or uniform lambdas), or a custom
   * strictly descending list; the model output history starts empty.
   *
   * linspace: tau = round(linspace(0, T' - 1, n + 1))[n:0:-1]; leading: tau = k floor(T' / (n + 1)) + offset, k = n..1;
   * trailing: tau = round(arange(T', 0, -T / n)) - 1; T' = T minus the timesteps clipped by `lambda_min_clipped`
   *
   * @param numInferenceSteps n, or a strictly descending list of training timesteps
   * @throws RangeError when n is not in [1, T], the list is not strictly descending in [0, T), a list is combined
   *   with Karras sigmas or uniform lambdas, or a multistep solver would meet a repeated noise level
   * @example
   * ```ts
   * import { DPMSolverMultistepScheduler } from "../../mod.ts";
   * const scheduler = DPMSolverMultistepScheduler.fromConfig({});
   * scheduler.setTimesteps(10);
   * // linspace spacing: np.linspace(0, 999, 11).round()[::-1][:-1], numpy rounding 499.5 half to even (500)
   * if (scheduler.timesteps.join() !== "999,899,799,699,599,500,400,300,200,100") throw new Error("timesteps");
   * ```
   */
  override setTimesteps(numInferenceSteps: number | readonly number[]): void {
    const config = this.config;
    const trainSigmas = this.trainSigmas;
    let timesteps: number[];
    let sigmas: number[];
    let sigmaLast = config.final_sigmas_type === "zero" ? 0 : trainSigmas[0];
    if (typeof numInferenceSteps !== "number") {
      if (config.use_karras_sigmas || config.use_lu_lambdas) {
        throw new RangeError(
          `Custom timesteps cannot be combined with ${
            config.use_karras_sigmas ? "use_karras_sigmas" : "use_lu_lambdas"
          } (the noise levels come from the spacing)`,
        );
      }
      timesteps = checkCustomTimesteps(numInferenceSteps, this.numTrainTimesteps, "descending");
      sigmas = timesteps.map((t) => trainSigmas[t]);
    } else {
      checkStepCount(numInferenceSteps, this.numTrainTimesteps);
      const n = numInferenceSteps;
      if (config.use_karras_sigmas || config.use_lu_lambdas) {
        // 2. Karras et al. (2022) eq. (5) with rho = 7, or a uniform grid in log sigma (rho = 1 in lambda)
        const sigmaMin = trainSigmas[0];
        const sigmaMax = trainSigmas[this.numTrainTimesteps - 1];
        if (config.use_karras_sigmas) {
          sigmas = karrasSigmas(sigmaMax, sigmaMin, n);
        } else {
          const lambdaMin = this.#logSigmas[0];
          const lambdaMax = this.#logSigmas[this.numTrainTimesteps - 1];
          sigmas = numpyLinspace(0, 1, n).map((r) => Math.exp(lambdaMax + r * (lambdaMin - lambdaMax)));
        }
        timesteps = sigmas.map((sigma) => roundHalfEven(sigmaToTimestep(sigma, this.#logSigmas)));
        if (config.final_sigmas_type === "sigma_min") sigmaLast = sigmas[n - 1];
      } else {
        timesteps = this.#spaced(n);
        sigmas = timesteps.map((t) => trainSigmas[t]);
      }
    }
    // 3. the sigmas, with the final level appended, in float32 as diffusers stores them
    const levels = Float32Array.from([...sigmas, sigmaLast]);
    if (config.solver_order > 1) {
      for (let i = 1; i < timesteps.length; i++) {
        if (levels[i] === levels[i - 1]) {
          throw new RangeError(
            `The ${timesteps.length}-step schedule repeats timestep ${timesteps[i]}, and solver_order ` +
              `${config.solver_order} cannot step from a repeated noise level (its divided difference divides by ` +
              `h = 0); use fewer steps or solver_order 1`,
          );
        }
      }
    }
    this.#sigmas = levels;
    this.#levels = Array.from(levels, noiseLevel);
    this.setSchedule(timesteps);
  }

  /** A new schedule: an empty history, no step taken, and the coefficient table of every step. */
  protected override onSchedule(): void {
    this.#stepIndex = null;
    this.#history = [];
    this.#lowerOrderNums = 0;
    this.#coefficients = this.timesteps.map((_, i) => {
      const orders = [this.#firstOrder(i)];
      if (i >= 1) orders.push(this.#secondOrder(i));
      if (i >= 2 && this.config.solver_order === 3) orders.push(this.#thirdOrder(i));
      return orders;
    });
  }

  /**
   * One multistep DPM-Solver step from the schedule's current timestep to the next noise level.
   *
   * x_t = (sigma_t / sigma_s) x_s - alpha_t (e^(-h) - 1) D0 + (order 2 and 3 corrections from the history)
   *
   * The order used is `solver_order`, lowered while the history is short and, as diffusers does, for the last step
   * (`final_sigmas_type` zero, `euler_at_final`, or `lower_order_final` with fewer than 15 steps) and the one before.
   *
   * @param modelOutput the model's prediction (eps, x0 or v, as `prediction_type` says), shaped like `sample`
   *   (twice its channels with a learned variance)
   * @param timestep t: the first call may start anywhere in the schedule, later calls take the following entries
   * @param sample x_s
   * @param options the noise source of the SDE variants (`generator` or `varianceNoise`)
   * @returns x_t and the predicted x0 this step used
   * @throws RangeError for a shape mismatch, a timestep out of turn, a non-finite input, or an SDE step without noise
   * @example
   * ```ts
   * import { DPMSolverMultistepScheduler, Tensor } from "../../mod.ts";
   * const scheduler = DPMSolverMultistepScheduler.fromConfig({ solver_order: 3 });
   * scheduler.setTimesteps(10);
   * const x = Tensor.from([0.5, -0.25], [1, 2]);
   * const { prevSample, predOriginalSample } = scheduler.step(Tensor.zeros([1, 2]), 999, x);
   * // eps = 0: x0 = x_t / alpha_999, and the first step is first order (DDIM): x_899 = (alpha_899 / alpha_999) x_999
   * const alpha = (t: number) => Math.sqrt(scheduler.alphasCumprod[t]);
   * const x0 = 0.5 / alpha(999);
   * const next = (0.5 * alpha(899)) / alpha(999);
   * if (Math.abs(predOriginalSample!.data[0] - x0) > 1e-3 * x0) throw new Error(`x0 ${predOriginalSample!.data[0]}`);
   * if (Math.abs(prevSample.data[0] - next) > 1e-3 * next) throw new Error(`x_899 ${prevSample.data[0]}`);
   * ```
   */
  step(
    modelOutput: Tensor,
    timestep: number,
    sample: Tensor,
    options: DPMSolverStepOptions = {},
  ): SchedulerStepOutput {
    const config = this.config;
    const learned = config.variance_type === "learned" || config.variance_type === "learned_range";
    const channelFactor = learned && config.prediction_type === "epsilon" ? 2 : 1;
    this.checkStepInputs(modelOutput, sample, options, channelFactor);
    const eta = (options as { eta?: unknown }).eta;
    if (eta !== undefined && eta !== 0) {
      throw new RangeError(
        `DPMSolverMultistepScheduler takes no eta (got ${String(eta)}); its SDE variants are algorithm_type ` +
          `"sde-dpmsolver++" and "sde-dpmsolver"`,
      );
    }
    // 1. the step index: found from t at the first step, then counted
    const index = this.#currentIndex(timestep);
    const n = this.timesteps.length;
    const lowerOrderFinal = index === n - 1 &&
      (config.euler_at_final || (config.lower_order_final && n < 15) || config.final_sigmas_type === "zero");
    const lowerOrderSecond = index === n - 2 && config.lower_order_final && n < 15;
    const order = config.solver_order === 1 || this.#lowerOrderNums < 1 || lowerOrderFinal
      ? 1
      : config.solver_order === 2 || this.#lowerOrderNums < 2 || lowerOrderSecond
      ? 2
      : 3;
    // 2. the model output as the data prediction x0_theta (++) or the noise prediction eps_theta
    const output = channelFactor === 2 ? firstHalfChannels(modelOutput) : modelOutput.data;
    const { converted, predX0 } = this.#convert(output, sample, index);
    // 3. the SDE variants' fresh noise z, one randn(sample.shape) per step as diffusers draws it
    const noise = config.algorithm_type.startsWith("sde-")
      ? this.stepNoise(sample, options, `with algorithm_type "${config.algorithm_type}"`)
      : null;
    // 4. the update of the chosen order
    const c = this.#coefficients[index][order - 1];
    const prev = new Float32Array(sample.size);
    const history = this.#history;
    // m0 (this step's), then m1 and m2 from the history, newest first
    const outputs = [converted, ...history.slice(history.length - (order - 1)).reverse()];
    const check = multistepUpdate(sample.data, outputs, noise, c, prev);
    const result = this.finishStep(
      check,
      prev,
      predX0,
      [[modelOutput, "modelOutput"], [sample, "sample"], [options.varianceNoise, "varianceNoise"]],
      sample.shape,
    );
    // 5. keep the converted output, newest last, and move on
    history.push(converted);
    if (history.length > config.solver_order) history.shift();
    if (this.#lowerOrderNums < config.solver_order) this.#lowerOrderNums++;
    this.#stepIndex = index + 1;
    return result;
  }

  /**
   * The forward process at the schedule's noise levels (diffusers' sigma-based `add_noise`), or in closed form for
   * timesteps outside the schedule.
   *
   * x_t = alpha_t x0 + sigma_t eps, alpha_t = 1 / sqrt(sigma^2 + 1), sigma_t = sigma alpha_t
   *
   * @param originalSamples x0, batch-first
   * @param noise eps, same shape
   * @param timesteps one timestep for all, or one per batch item
   * @returns x_t
   * @example
   * ```ts
   * import { DPMSolverMultistepScheduler, Tensor, TorchGenerator } from "../../mod.ts";
   * const scheduler = DPMSolverMultistepScheduler.fromConfig({});
   * scheduler.setTimesteps(10);
   * const noise = new TorchGenerator(0).randn([1, 3, 8, 8]);
   * const noisy = scheduler.addNoise(Tensor.zeros([1, 3, 8, 8]), noise, 500);
   * // x_t = sqrt(alphaBar_t) x0 + sqrt(1 - alphaBar_t) eps (DDPM eq. (4)); with x0 = 0 only the noise term is left
   * const scale = Math.sqrt(1 - scheduler.alphasCumprod[500]);
   * if (noisy.data.some((v, k) => Math.abs(v - scale * noise.data[k]) > 1e-5)) throw new Error(`got ${noisy.data[0]}`);
   * ```
   */
  override addNoise(originalSamples: Tensor, noise: Tensor, timesteps: number | readonly number[]): Tensor {
    const batch = originalSamples.shape.length > 0 ? originalSamples.shape[0] : 1;
    const inSchedule = this.numInferenceSteps !== null &&
      perBatchTimesteps(timesteps, batch, this.numTrainTimesteps).every((t) => this.timesteps.includes(t));
    if (!inSchedule || !originalSamples.sameShape(noise)) return super.addNoise(originalSamples, noise, timesteps);
    const perItem = perBatchTimesteps(timesteps, batch, this.numTrainTimesteps);
    const out = new Float32Array(originalSamples.size);
    const itemSize = batch > 0 ? originalSamples.size / batch : 0;
    for (let item = 0; item < batch; item++) {
      const { alpha, sigma } = this.#levels[this.#firstIndex(perItem[item])];
      for (let i = item * itemSize; i < (item + 1) * itemSize; i++) {
        out[i] = f32(alpha * originalSamples.data[i]) + f32(sigma * noise.data[i]);
      }
    }
    return new Tensor(out, originalSamples.shape);
  }

  /** The spaced timesteps of diffusers' DPM-Solver `set_timesteps` (n + 1 points, the last dropped). */
  #spaced(n: number): number[] {
    const last = this.#lastTimestep;
    const total = this.numTrainTimesteps;
    switch (this.config.timestep_spacing) {
      case "linspace":
        return numpyLinspace(0, last - 1, n + 1).map(roundHalfEven).reverse().slice(0, n);
      case "leading": {
        const ratio = Math.floor(last / (n + 1));
        const timesteps = Array.from({ length: n }, (_, k) => (n - k) * ratio + this.config.steps_offset);
        checkSpacedTimesteps(timesteps, total, this.config.steps_offset);
        return timesteps;
      }
      default: // trailing
        return numpyArange(last, 0, -(total / n)).map((x) => roundHalfEven(x) - 1).filter((t) => t >= 0);
    }
  }

  /** The schedule index of a step: found from t at the first step, the counter's next entry afterwards. */
  #currentIndex(timestep: number): number {
    const timesteps = this.timesteps;
    if (this.#stepIndex === null) return this.#firstIndex(timestep);
    if (this.#stepIndex >= timesteps.length) {
      throw new RangeError(
        `All ${timesteps.length} steps of the schedule are taken; call setTimesteps to sample again`,
      );
    }
    const expected = timesteps[this.#stepIndex];
    if (timestep !== expected) {
      throw new RangeError(
        `DPMSolverMultistepScheduler is multistep: step ${this.#stepIndex} of ${timesteps.length} is at timestep ` +
          `${expected}, got ${String(timestep)}; take the steps in order, or call setTimesteps to start over`,
      );
    }
    return this.#stepIndex;
  }

  /** Where a run starting at t begins: t's position, or its second one if t repeats (diffusers' rule). */
  #firstIndex(timestep: number): number {
    const first = this.indexOf(timestep);
    const second = this.timesteps.indexOf(timestep, first + 1);
    return second === -1 ? first : second;
  }

  /** The model output as x0_theta (dpmsolver++) or eps_theta (dpmsolver), thresholded, and the x0 it implies. */
  #convert(m: Float32Array, sample: Tensor, index: number): { converted: Float32Array; predX0: Float32Array } {
    const { alpha, sigma } = this.#levels[index];
    const config = this.config;
    const x = sample.data;
    const size = x.length;
    const batch = sample.shape[0] ?? 1;
    const x0 = new Float32Array(size);
    // x0 from the prediction: eps -> (x - sigma eps) / alpha, sample -> itself, v -> alpha x - sigma v
    switch (config.prediction_type) {
      case "epsilon":
        for (let i = 0; i < size; i++) x0[i] = f32(f32(x[i] - f32(sigma * m[i])) / alpha);
        break;
      case "sample":
        x0.set(m);
        break;
      default:
        for (let i = 0; i < size; i++) x0[i] = f32(alpha * x[i]) - f32(sigma * m[i]);
    }
    if (config.algorithm_type.endsWith("dpmsolver++")) {
      if (config.thresholding) {
        thresholdInPlace(x0, batch, config.dynamic_thresholding_ratio, config.sample_max_value);
      }
      return { converted: x0, predX0: x0 };
    }
    // DPM-Solver integrates the noise model: eps from the prediction (through the thresholded x0 if asked)
    const eps = new Float32Array(size);
    if (config.thresholding) {
      if (config.prediction_type !== "epsilon") {
        // diffusers first forms eps, then x0 from it
        this.#epsFromPrediction(m, x, alpha, sigma, eps);
        for (let i = 0; i < size; i++) x0[i] = f32(f32(x[i] - f32(sigma * eps[i])) / alpha);
      }
      thresholdInPlace(x0, batch, config.dynamic_thresholding_ratio, config.sample_max_value);
      for (let i = 0; i < size; i++) eps[i] = f32(f32(x[i] - f32(alpha * x0[i])) / sigma);
      return { converted: eps, predX0: x0 };
    }
    this.#epsFromPrediction(m, x, alpha, sigma, eps);
    if (config.prediction_type !== "epsilon") {
      for (let i = 0; i < size; i++) x0[i] = f32(f32(x[i] - f32(sigma * eps[i])) / alpha);
    }
    return { converted: eps, predX0: x0 };
  }

  /** eps from the model output: itself, (x - alpha x0) / sigma, or alpha v + sigma x. */
  #epsFromPrediction(m: Float32Array, x: Float32Array, alpha: number, sigma: number, eps: Float32Array): void {
    switch (this.config.prediction_type) {
      case "epsilon":
        eps.set(m);
        break;
      case "sample":
        for (let i = 0; i < m.length; i++) eps[i] = f32(f32(x[i] - f32(alpha * m[i])) / sigma);
        break;
      default:
        for (let i = 0; i < m.length; i++) eps[i] = f32(alpha * m[i]) + f32(sigma * x[i]);
    }
  }

  /**
   * First order: DPM-Solver-1 (arXiv 2206.00927, the first-order solver that paper shows to be DDIM) and its
   * data-prediction form DPM-Solver++(1) (arXiv 2211.01095); the SDE forms add e^(-h) and the noise term z.
   */
  #firstOrder(i: number): StepCoefficients {
    const s = this.#levels[i];
    const t = this.#levels[i + 1];
    const h = f32(t.lambda - s.lambda);
    const c = emptyCoefficients();
    switch (this.config.algorithm_type) {
      case "dpmsolver++":
        // x_t = (sigma_t / sigma_s) x_s - alpha_t (e^(-h) - 1) x0
        c.sampleCoeff = f32(t.sigma / s.sigma);
        c.d0 = -f32(t.alpha * f32(expF32(-h) - 1));
        break;
      case "dpmsolver":
        // x_t = (alpha_t / alpha_s) x_s - sigma_t (e^h - 1) eps
        c.sampleCoeff = f32(t.alpha / s.alpha);
        c.d0 = -f32(t.sigma * f32(expF32(h) - 1));
        break;
      case "sde-dpmsolver++":
        // x_t = (sigma_t / sigma_s) e^(-h) x_s + alpha_t (1 - e^(-2h)) x0 + sigma_t sqrt(1 - e^(-2h)) z
        c.sampleCoeff = f32(f32(t.sigma / s.sigma) * expF32(-h));
        c.d0 = f32(t.alpha * f32(1 - expF32(f32(-2 * h))));
        c.noiseCoeff = f32(t.sigma * f32(Math.sqrt(f32(1 - expF32(f32(-2 * h))))));
        break;
      default: // sde-dpmsolver
        // x_t = (alpha_t / alpha_s) x_s - 2 sigma_t (e^h - 1) eps + sigma_t sqrt(e^(2h) - 1) z
        c.sampleCoeff = f32(t.alpha / s.alpha);
        c.d0 = -f32(2 * f32(t.sigma * f32(expF32(h) - 1)));
        c.noiseCoeff = f32(t.sigma * f32(Math.sqrt(f32(expF32(f32(2 * h)) - 1))));
    }
    return c;
  }

  /**
   * Second order, multistep: DPM-Solver++(2M) (arXiv 2211.01095 Algorithm 2) with D1 = (m0 - m1) / r0; `midpoint`
   * weighs D1 by 1/2 of the first-order coefficient, `heun` by its exact integral.
   */
  #secondOrder(i: number): StepCoefficients {
    const s1 = this.#levels[i - 1];
    const s0 = this.#levels[i];
    const t = this.#levels[i + 1];
    const h = f32(t.lambda - s0.lambda);
    const h0 = f32(s0.lambda - s1.lambda);
    const r0 = f32(h0 / h);
    const c = emptyCoefficients();
    c.invR0 = f32(1 / r0);
    const heun = this.config.solver_type === "heun";
    switch (this.config.algorithm_type) {
      case "dpmsolver++": {
        const first = f32(t.alpha * f32(expF32(-h) - 1));
        c.sampleCoeff = f32(t.sigma / s0.sigma);
        c.d0 = -first;
        // midpoint: - alpha_t (e^(-h) - 1) D1 / 2; heun: + alpha_t ((e^(-h) - 1) / h + 1) D1
        c.d1 = heun ? f32(t.alpha * f32(f32(f32(expF32(-h) - 1) / h) + 1)) : -f32(0.5 * first);
        break;
      }
      case "dpmsolver": {
        const first = f32(t.sigma * f32(expF32(h) - 1));
        c.sampleCoeff = f32(t.alpha / s0.alpha);
        c.d0 = -first;
        // midpoint: - sigma_t (e^h - 1) D1 / 2; heun: - sigma_t ((e^h - 1) / h - 1) D1
        c.d1 = heun ? -f32(t.sigma * f32(f32(f32(expF32(h) - 1) / h) - 1)) : -f32(0.5 * first);
        break;
      }
      case "sde-dpmsolver++": {
        const decay = expF32(f32(-2 * h));
        const first = f32(t.alpha * f32(1 - decay));
        c.sampleCoeff = f32(f32(t.sigma / s0.sigma) * expF32(-h));
        c.d0 = first;
        c.d1 = heun ? f32(t.alpha * f32(f32(f32(1 - decay) / f32(-2 * h)) + 1)) : f32(0.5 * first);
        c.noiseCoeff = f32(t.sigma * f32(Math.sqrt(f32(1 - decay))));
        break;
      }
      default: { // sde-dpmsolver
        const first = f32(t.sigma * f32(expF32(h) - 1));
        c.sampleCoeff = f32(t.alpha / s0.alpha);
        c.d0 = -f32(2 * first);
        c.d1 = heun ? -f32(2 * f32(t.sigma * f32(f32(f32(expF32(h) - 1) / h) - 1))) : -first;
        c.noiseCoeff = f32(t.sigma * f32(Math.sqrt(f32(expF32(f32(2 * h)) - 1))));
      }
    }
    return c;
  }

  /** Third order, multistep: D1 and D2 from the last three outputs (the third-order multistep form of both papers). */
  #thirdOrder(i: number): StepCoefficients {
    const s2 = this.#levels[i - 2];
    const s1 = this.#levels[i - 1];
    const s0 = this.#levels[i];
    const t = this.#levels[i + 1];
    const h = f32(t.lambda - s0.lambda);
    const r0 = f32(f32(s0.lambda - s1.lambda) / h);
    const r1 = f32(f32(s1.lambda - s2.lambda) / h);
    const c = emptyCoefficients();
    c.invR0 = f32(1 / r0);
    c.invR1 = f32(1 / r1);
    c.mixR = f32(r0 / f32(r0 + r1));
    c.invRSum = f32(1 / f32(r0 + r1));
    const hSquared = f32(h * h);
    if (this.config.algorithm_type === "dpmsolver++") {
      const em1 = f32(expF32(-h) - 1);
      c.sampleCoeff = f32(t.sigma / s0.sigma);
      c.d0 = -f32(t.alpha * em1);
      c.d1 = f32(t.alpha * f32(f32(em1 / h) + 1));
      c.d2 = -f32(t.alpha * f32(f32(f32(em1 + h) / hSquared) - 0.5));
    } else {
      const em1 = f32(expF32(h) - 1);
      c.sampleCoeff = f32(t.alpha / s0.alpha);
      c.d0 = -f32(t.sigma * em1);
      c.d1 = -f32(t.sigma * f32(f32(em1 / h) - 1));
      c.d2 = -f32(t.sigma * f32(f32(f32(em1 - h) / hSquared) - 0.5));
    }
    return c;
  }
}

/** diffusers' renames on loading: `deis` becomes `dpmsolver++`, `logrho`, `bh1` and `bh2` become `midpoint`. */
function diffusersRenames(config: Record<string, unknown>): Record<string, unknown> {
  const renamed = { ...config };
  if (renamed.algorithm_type === "deis") renamed.algorithm_type = "dpmsolver++";
  if (["logrho", "bh1", "bh2"].includes(renamed.solver_type as string)) renamed.solver_type = "midpoint";
  return renamed;
}

/** The checks of the DPM-Solver keys that `resolveConfig` does not know. */
function checkDpmConfig(config: Readonly<DPMSolverMultistepSchedulerConfig>): void {
  const where = "DPMSolverMultistepScheduler config";
  const order = config.solver_order;
  if (order !== 1 && order !== 2 && order !== 3) {
    throw new RangeError(`${where} solver_order must be 1, 2 or 3, got ${String(order)}`);
  }
  for (
    const key of [
      "lower_order_final",
      "euler_at_final",
      "use_karras_sigmas",
      "use_lu_lambdas",
      "use_exponential_sigmas",
      "use_beta_sigmas",
      "use_flow_sigmas",
    ] as const
  ) {
    if (typeof config[key] !== "boolean") {
      throw new TypeError(`${where} ${key} must be true or false, got ${String(config[key])}`);
    }
  }
  for (const key of ["use_exponential_sigmas", "use_beta_sigmas", "use_flow_sigmas"] as const) {
    if (config[key]) throw new RangeError(`${where} ${key} is not supported here; set it to false`);
  }
  if (config.use_karras_sigmas && config.use_lu_lambdas) {
    throw new RangeError(`${where} use_karras_sigmas and use_lu_lambdas cannot both be true`);
  }
  const clip = config.lambda_min_clipped;
  if (typeof clip !== "number" || Number.isNaN(clip)) {
    throw new RangeError(`${where} lambda_min_clipped must be a number (or -Infinity), got ${String(clip)}`);
  }
  if (config.variance_type !== null && typeof config.variance_type !== "string") {
    throw new TypeError(`${where} variance_type must be a string or null, got ${String(config.variance_type)}`);
  }
  // as diffusers: the noise-prediction solvers have no first-order step onto sigma = 0
  if (!config.algorithm_type.endsWith("dpmsolver++") && config.final_sigmas_type === "zero") {
    throw new RangeError(
      `${where} final_sigmas_type "zero" is not supported for algorithm_type "${config.algorithm_type}"; ` +
        `use "sigma_min"`,
    );
  }
  // diffusers' third-order update has no SDE form
  if (config.algorithm_type.startsWith("sde-") && order === 3) {
    throw new RangeError(`${where} solver_order 3 is not available for algorithm_type "${config.algorithm_type}"`);
  }
}

/** alpha_t = 1 / sqrt(sigma^2 + 1), sigma_t = sigma alpha_t, lambda_t = log alpha_t - log sigma_t, in float32. */
function noiseLevel(sigma: number): NoiseLevel {
  const alpha = f32(1 / f32(Math.sqrt(f32(f32(sigma * sigma) + 1))));
  const sigmaT = f32(sigma * alpha);
  return { alpha, sigma: sigmaT, lambda: f32(f32(Math.log(alpha)) - f32(Math.log(sigmaT))) };
}

/** torch.exp on a float32 scalar. */
function expF32(x: number): number {
  return f32(Math.exp(x));
}

function emptyCoefficients(): StepCoefficients {
  return { sampleCoeff: 0, d0: 0, d1: 0, d2: 0, noiseCoeff: 0, invR0: 0, invR1: 0, mixR: 0, invRSum: 0 };
}

/** The first half of dim 1 of a [B, 2C, ...] output (the mean part when the variance is learned). */
function firstHalfChannels(output: Tensor): Float32Array {
  const batch = output.shape[0];
  const itemSize = output.size / batch;
  const half = itemSize / 2;
  const out = new Float32Array(output.size / 2);
  for (let b = 0; b < batch; b++) out.set(output.data.subarray(b * itemSize, b * itemSize + half), b * half);
  return out;
}

/**
 * The multistep update of order 1, 2 or 3 (the order is how many outputs are given), each product rounded to float32
 * and the sum taken left to right, as PyTorch evaluates diffusers' expressions.
 *
 * order 1: x_t = a x_s + d0 m0 (+ n z); order 2: + d1 D1 with D1 = (m0 - m1) / r0;
 * order 3: + d1 D1 + d2 D2 with D1_0 = (m0 - m1) / r0, D1_1 = (m1 - m2) / r1, D1 = D1_0 + r0 / (r0 + r1) (D1_0 - D1_1),
 * D2 = (D1_0 - D1_1) / (r0 + r1) (no noise term: the SDE variants stop at order 2)
 *
 * @returns NaN when m0 or the result has a non-finite element, else 0
 */
function multistepUpdate(
  x: Float32Array,
  [m0, m1, m2]: readonly Float32Array[],
  noise: Float32Array | null,
  c: StepCoefficients,
  prev: Float32Array,
): number {
  const { sampleCoeff, d0, d1, d2, invR0, invR1, mixR, invRSum, noiseCoeff } = c;
  let check = 0;
  for (let i = 0; i < x.length; i++) {
    let out = f32(f32(sampleCoeff * x[i]) + f32(d0 * m0[i]));
    if (m1 !== undefined) {
      const diff10 = f32(invR0 * f32(m0[i] - m1[i]));
      if (m2 === undefined) {
        out = f32(out + f32(d1 * diff10));
      } else {
        const secondDiff = f32(diff10 - f32(invR1 * f32(m1[i] - m2[i])));
        const diff1 = f32(diff10 + f32(mixR * secondDiff));
        out = f32(f32(out + f32(d1 * diff1)) + f32(d2 * f32(invRSum * secondDiff)));
      }
    }
    if (noise !== null) out = f32(out + f32(noiseCoeff * noise[i]));
    prev[i] = out;
    check += (m0[i] - m0[i]) + (out - out);
  }
  return check;
}
