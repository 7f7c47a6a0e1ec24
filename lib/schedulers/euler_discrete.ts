/**
 * Euler's method on the probability-flow ODE in Karras et al.'s variance-exploding form (Karras, Aittala, Aila and
 * Laine 2022, arXiv 2206.00364, Algorithm 2 with its optional churn), matching diffusers' `EulerDiscreteScheduler`
 * number for number: its float timesteps, sigmas, `initNoiseSigma`, `scaleModelInput` and step.
 *
 * The sample lives at scale x = x_t / sqrt(alphaBar_t) = x0 + sigma eps, so the sampler starts from N(0, sigma_max^2)
 * (`initNoiseSigma`) and the model sees x / sqrt(sigma^2 + 1) (`scaleModelInput`), which is the DDPM model's x_t.
 * Without churn, one step equals a DDIM (eta = 0) step: DDIM is Euler's method in this parametrisation.
 *
 * | paper (Karras)       | code                | meaning                                                          |
 * |----------------------|---------------------|------------------------------------------------------------------|
 * | sigma_i              | `sigmas[i]`         | the noise level of step i (n + 1 values, the last 0 or sigma_min)|
 * | sigma_max            | `initNoiseSigma`    | the standard deviation of x at the start                         |
 * | c_in(sigma)          | `scaleModelInput`   | 1 / sqrt(sigma^2 + 1): what the model input is multiplied by     |
 * | gamma_i              | `gamma`             | min(S_churn / n, sqrt(2) - 1) inside [S_tmin, S_tmax], else 0     |
 * | sigma-hat_i          | `sigmaHat`          | (1 + gamma) sigma_i, the raised noise level                      |
 * | D(x; sigma)          | `predX0`            | the denoised sample (x0 predicted)                               |
 * | d_i                  | `derivative`        | (x - D) / sigma-hat, the ODE's slope dx/dsigma, eq. (3)          |
 *
 * @module
 */
import type { Tensor } from "../core/tensor.ts";
import type { RandnGenerator } from "../core/torch_generator.ts";
import { linspaceFloat32 } from "../math/schedules.ts";
import { checkModelOutputShape } from "./_scheduler_config.ts";
import {
  eulerUpdate,
  SIGMA_SCHEDULE_DEFAULTS,
  type SigmaScheduleConfig,
  SigmaSchedulerBase,
} from "./_sigma_schedule.ts";
import type { SchedulerStepOutput } from "./scheduler.ts";

/** A resolved Euler config: diffusers' `EulerDiscreteScheduler` keys, snake_case. */
export interface EulerDiscreteSchedulerConfig extends SigmaScheduleConfig {
  /** How the n sigmas are read off the training sigmas: `linear` in t, or `log_linear` between the ends. */
  interpolation_type: "linear" | "log_linear";
  /** The smallest sigma of the Karras or exponential schedule (null: the training schedule's). */
  sigma_min: number | null;
  /** The largest sigma of the Karras or exponential schedule (null: the training schedule's). */
  sigma_max: number | null;
  /** `discrete` (the training timestep) or `continuous` (0.25 log sigma, with v-prediction only) model timesteps. */
  timestep_type: "discrete" | "continuous";
  /** Rescale the betas to zero terminal SNR (arXiv 2305.08891); the last alpha-bar becomes 2^-24. */
  rescale_betas_zero_snr: boolean;
  /** The sigma after the last step: `zero` (diffusers' default) or `sigma_min` (the training schedule's sigma_0). */
  final_sigmas_type: "zero" | "sigma_min";
}

/** Options of `EulerDiscreteScheduler.step`: Karras et al.'s churn (Algorithm 2) and its noise source. */
export interface EulerStepOptions {
  /** S_churn >= 0: how much noise to add back (default 0, the deterministic ODE step). */
  sChurn?: number;
  /** S_tmin: churn only where sigma >= S_tmin (default 0). */
  sTmin?: number;
  /** S_tmax: churn only where sigma <= S_tmax (default Infinity). */
  sTmax?: number;
  /** S_noise: the scale of the added noise (default 1). */
  sNoise?: number;
  /** Draws the churn noise (one `randn(sample.shape)` per step with gamma > 0, as diffusers). */
  generator?: RandnGenerator;
  /** The churn noise to use instead of drawing it. */
  varianceNoise?: Tensor;
}

/** diffusers' `EulerDiscreteScheduler` defaults. */
const EULER_DEFAULTS: Readonly<EulerDiscreteSchedulerConfig> = Object.freeze({
  ...SIGMA_SCHEDULE_DEFAULTS,
  interpolation_type: "linear",
  sigma_min: null,
  sigma_max: null,
  timestep_type: "discrete",
  rescale_betas_zero_snr: false,
  final_sigmas_type: "zero",
});

const f32 = Math.fround;

/**
 * The Euler scheduler of Karras et al. (Algorithm 2), as diffusers' `EulerDiscreteScheduler`.
 *
 * D = x - sigma-hat eps; x_{i+1} = x + (x - D) / sigma-hat (sigma_{i+1} - sigma-hat), sigma-hat = (1 + gamma) sigma_i
 *
 * The step is driven by an index, as in diffusers: it starts at the first `step` or `scaleModelInput` call (at the
 * timestep given, or at `setBeginIndex`) and advances by one per step, so pass the timesteps in order.
 *
 * @example
 * ```ts
 * import { EulerDiscreteScheduler, Tensor, TorchGenerator } from "../../mod.ts";
 * const scheduler = EulerDiscreteScheduler.fromConfig({});
 * scheduler.setTimesteps(10);
 * const z = new TorchGenerator(0).randn([1, 3, 8, 8]);
 * const xT = new Tensor(z.data.map((v) => v * scheduler.initNoiseSigma), z.shape); // x_T ~ N(0, sigma_max^2)
 * let x = xT;
 * for (const t of scheduler.timesteps) {
 *   const eps = Tensor.zeros(x.shape); // a model's prediction on scheduler.scaleModelInput(x, t)
 *   scheduler.scaleModelInput(x, t);
 *   x = scheduler.step(eps, t, x).prevSample;
 * }
 * // eps = 0 makes D(x; sigma) = x, so every slope d = (x - D) / sigma is 0 and Euler's method leaves x_T as it is
 * if (x.data.some((v, k) => v !== xT.data[k])) throw new Error(`got ${x.data[0]}, expected ${xT.data[0]}`);
 * ```
 */
export class EulerDiscreteScheduler extends SigmaSchedulerBase<EulerDiscreteSchedulerConfig, EulerStepOptions> {
  /**
   * Build a scheduler from a diffusers config (snake_case; absent keys take diffusers' defaults).
   *
   * @param config `scheduler_config.json` as an object
   * @throws RangeError or TypeError naming a bad key and value
   */
  constructor(config: Partial<EulerDiscreteSchedulerConfig> | Record<string, unknown> = {}) {
    super(config, EULER_DEFAULTS, {
      scheduler: "EulerDiscreteScheduler",
      enums: {
        interpolation_type: ["linear", "log_linear"],
        timestep_type: ["discrete", "continuous"],
        final_sigmas_type: ["zero", "sigma_min"],
      },
    }, true); // with zero terminal SNR, diffusers keeps the last alpha-bar just above 0 (sigma_max stays finite)
  }

  /**
   * Build a scheduler from a diffusers `scheduler_config.json` object.
   *
   * @param config the config, snake_case
   * @returns a new scheduler
   * @example
   * ```ts
   * import { EulerDiscreteScheduler } from "../../mod.ts";
   * const scheduler = EulerDiscreteScheduler.fromConfig({ use_karras_sigmas: true });
   * scheduler.setTimesteps(10);
   * // Karras et al. eq. (5): sigma_i^(1/rho), rho = 7, falls by the same amount at every step
   * const root = Array.from(scheduler.sigmas.subarray(0, 10), (sigma) => sigma ** (1 / 7));
   * const first = root[0] - root[1];
   * const last = root[8] - root[9];
   * if (Math.abs(first - last) > 1e-4 * first) throw new Error(`steps in sigma^(1/7): ${first} and ${last}`);
   * ```
   */
  static fromConfig(
    config: Partial<EulerDiscreteSchedulerConfig> | Record<string, unknown> = {},
  ): EulerDiscreteScheduler {
    return new EulerDiscreteScheduler(config);
  }

  /**
   * Choose the schedule: n float timesteps by `timestep_spacing` (or a custom descending list), their sigmas by
   * `interpolation_type`, optionally replaced by the Karras or exponential schedule, and the final sigma.
   *
   * sigma_i = interp(tau_i, sigma(t)); Karras: eq. (5) between sigma(0) and sigma(T - 1), tau_i = t(sigma_i)
   *
   * @param numInferenceSteps n, or a strictly descending list of timesteps in [0, T - 1]
   * @throws RangeError when n is out of range, or a custom list is malformed or used with Karras or exponential sigmas
   * @example
   * ```ts
   * import { EulerDiscreteScheduler } from "../../mod.ts";
   * const scheduler = EulerDiscreteScheduler.fromConfig({});
   * scheduler.setTimesteps(10); // [999, 888, ..., 111, 0], sigmas from 157.4 down to 0.01, then 0
   * // linspace spacing: np.linspace(0, 999, 10) reversed; sigma_t = sqrt((1 - alphaBar_t) / alphaBar_t)
   * if (scheduler.timesteps.join() !== "999,888,777,666,555,444,333,222,111,0") throw new Error("timesteps");
   * const alphaBar = scheduler.alphasCumprod[999];
   * const sigmaMax = Math.sqrt((1 - alphaBar) / alphaBar);
   * if (Math.abs(scheduler.sigmas[0] - sigmaMax) > 1e-5 * sigmaMax || scheduler.sigmas[10] !== 0) {
   *   throw new Error(`sigmas ${scheduler.sigmas[0]} ... ${scheduler.sigmas[10]}`);
   * }
   * ```
   */
  override setTimesteps(numInferenceSteps: number | readonly number[]): void {
    const config = this.config;
    // 1. n float timesteps by the spacing (float32), or the custom list
    let timesteps = this.floatSchedule(numInferenceSteps, () => {
      if (config.timestep_type === "continuous" && config.prediction_type === "v_prediction") {
        throw new RangeError(
          'EulerDiscreteScheduler cannot take custom timesteps with timestep_type "continuous" and v-prediction',
        );
      }
    });
    const n = timesteps.length;
    // 2. sigmas read off the training schedule, float64 (numpy)
    const train = this.trainSigmas;
    let sigmas: number[] = config.interpolation_type === "linear"
      ? this.interpolatedSigmas(timesteps)
      : logLinearSigmas(train, n);
    // 3. the Karras (eq. (5)) or exponential schedule between the ends, with the timesteps that match its sigmas
    const sigmaMin = config.sigma_min ?? sigmas[sigmas.length - 1];
    const converted = this.convertedSigmas(config.sigma_max ?? sigmas[0], sigmaMin, n);
    if (converted !== null) ({ sigmas, timesteps } = converted);
    // 4. the final sigma: 0, or sigma at timestep 0
    const sigmaLast = config.final_sigmas_type === "sigma_min" ? train[0] : 0;
    this.sigmas = Float32Array.from([...sigmas, sigmaLast]);
    if (config.timestep_type === "continuous" && config.prediction_type === "v_prediction") {
      timesteps = [...this.sigmas.subarray(0, n)].map((sigma) => f32(0.25 * f32(Math.log(sigma))));
    }
    this.setSchedule(timesteps, n);
  }

  /**
   * One Euler step of Karras et al.'s Algorithm 2 from sigma_i to sigma_{i+1}, with churn when S_churn > 0.
   *
   * sigma-hat = (1 + gamma) sigma_i; x-hat = x + sqrt(sigma-hat^2 - sigma_i^2) S_noise z; D = x-hat - sigma-hat eps
   * (or the v / sample form); x_{i+1} = x-hat + (x-hat - D) / sigma-hat (sigma_{i+1} - sigma-hat)
   *
   * @param modelOutput eps, v or x0 (as `prediction_type` says) from the model at `scaleModelInput(x, t)`
   * @param timestep t, the current entry of `timesteps`
   * @param sample x at sigma_i
   * @param options the churn S_churn, S_tmin, S_tmax, S_noise and its noise source
   * @returns x at sigma_{i+1} and D, the predicted x0
   * @throws RangeError when `setTimesteps` was not called, t is not the current timestep, the shapes differ, an
   *   option is out of range, or an input or the result is not finite
   * @example
   * ```ts
   * import { EulerDiscreteScheduler, Tensor, TorchGenerator } from "../../mod.ts";
   * const scheduler = EulerDiscreteScheduler.fromConfig({});
   * scheduler.setTimesteps(10);
   * const x = Tensor.zeros([1, 3, 8, 8]);
   * const t = scheduler.timesteps[0];
   * const out = scheduler.step(Tensor.zeros(x.shape), t, x, { sChurn: 1, generator: new TorchGenerator(0) });
   * // gamma = min(S_churn / n, sqrt(2) - 1) = 0.1, so x-hat = x + sqrt(sigmaHat^2 - sigma^2) z with sigmaHat = 1.1 sigma
   * // (Karras et al., Algorithm 2); eps = 0 leaves the slope 0, so the step returns x-hat, z = randn(x.shape)
   * const z = new TorchGenerator(0).randn(x.shape);
   * const scale = scheduler.sigmas[0] * Math.sqrt(1.1 ** 2 - 1);
   * if (out.prevSample.data.some((v, k) => Math.abs(v - scale * z.data[k]) > 1e-4 * scale)) throw new Error("churn");
   * ```
   */
  step(modelOutput: Tensor, timestep: number, sample: Tensor, options: EulerStepOptions = {}): SchedulerStepOutput {
    this.checkStepInputs(modelOutput, sample, options);
    const sChurn = options.sChurn ?? 0;
    const sTmin = options.sTmin ?? 0;
    const sTmax = options.sTmax ?? Infinity;
    const sNoise = options.sNoise ?? 1;
    if (typeof sChurn !== "number" || !(sChurn >= 0 && sChurn < Infinity)) {
      throw new RangeError(`sChurn must be a finite number >= 0, got ${String(sChurn)}`);
    }
    if (typeof sNoise !== "number" || !Number.isFinite(sNoise)) {
      throw new RangeError(`sNoise must be a finite number, got ${String(sNoise)}`);
    }
    if (typeof sTmin !== "number" || typeof sTmax !== "number" || Number.isNaN(sTmin) || Number.isNaN(sTmax)) {
      throw new RangeError(`sTmin and sTmax must be numbers, got ${String(sTmin)} and ${String(sTmax)}`);
    }
    const index = this.currentIndex(timestep, "step");
    const sigma = this.sigmas[index];
    const sigmaNext = this.sigmas[index + 1];
    // 1. gamma and sigma-hat (Algorithm 2, lines 4-5), float64 gamma as diffusers, float32 sigma-hat
    const gamma = sTmin <= sigma && sigma <= sTmax ? Math.min(sChurn / (this.sigmas.length - 1), Math.SQRT2 - 1) : 0;
    const sigmaHat = f32(sigma * f32(gamma + 1));
    const size = sample.size;
    let x = sample.data;
    if (gamma > 0) {
      // 2. x-hat = x + sqrt(sigma-hat^2 - sigma^2) S_noise z (line 6)
      const z = this.stepNoise(sample, options, "with churn (gamma > 0)");
      const noiseScale = f32(Math.sqrt(f32(f32(sigmaHat * sigmaHat) - f32(sigma * sigma))));
      const raised = new Float32Array(size);
      const sNoise32 = f32(sNoise);
      for (let i = 0; i < size; i++) raised[i] = x[i] + f32(f32(z[i] * sNoise32) * noiseScale);
      x = raised;
    } else if (options.varianceNoise !== undefined) {
      checkModelOutputShape(options.varianceNoise, sample);
    }
    // 3. D(x-hat; sigma-hat), the denoised sample, by prediction type
    const m = modelOutput.data;
    const predX0 = this.denoised(m, x, sigmaHat, sigma);
    // 4. the slope d = (x-hat - D) / sigma-hat, eq. (3), and the Euler step over dt = sigma_{i+1} - sigma-hat (line 8)
    const prev = new Float32Array(size);
    const check = eulerUpdate(m, x, predX0, sigmaHat, f32(sigmaNext - sigmaHat), prev);
    const output = this.finishAffineStep({ check, prev, predX0 }, modelOutput, sample);
    this.indexState.step = index + 1;
    return output;
  }
}

/** The log-linear sigmas of diffusers: exp(linspace(log sigma(T - 1), log sigma(0), n + 1)), float32 (torch). */
function logLinearSigmas(train: Float32Array, n: number): number[] {
  const start = f32(Math.log(train[train.length - 1]));
  const end = f32(Math.log(train[0]));
  return [...linspaceFloat32(start, end, n + 1)].map((value) => f32(Math.exp(value)));
}
