/**
 * Heun's second-order method on the probability-flow ODE (Karras, Aittala, Aila and Laine 2022, arXiv 2206.00364,
 * Algorithm 1), matching diffusers' `HeunDiscreteScheduler` number for number: its repeated timesteps, its two-stage
 * state, `initNoiseSigma`, `scaleModelInput` and step.
 *
 * Each solver step takes two model calls, so the schedule lists every inner timestep twice: the first call makes an
 * Euler step to sigma_{i+1} and keeps its slope, the second evaluates the slope there and redoes the step from the
 * kept sample with the average of the two slopes (the trapezoidal rule). The last step, to sigma = 0, is Euler's.
 *
 * | paper (Karras)       | code                | meaning                                                        |
 * |----------------------|---------------------|----------------------------------------------------------------|
 * | sigma_i              | `sigmas`            | [sigma_0, sigma_1, sigma_1, ..., sigma_{n-1}, sigma_{n-1}, 0]   |
 * | sigma_max            | `initNoiseSigma`    | the standard deviation of x at the start                       |
 * | c_in(sigma)          | `scaleModelInput`   | 1 / sqrt(sigma^2 + 1)                                          |
 * | D(x; sigma)          | `predX0`            | the denoised sample at this call                               |
 * | d_i                  | `derivative`        | (x_i - D(x_i; sigma_i)) / sigma_i, kept from the first stage   |
 * | d'_i                 | `slope` (its half)  | (x~ - D(x~; sigma_{i+1})) / sigma_{i+1}, the second stage's    |
 * | x_{i+1}              | `prevSample`        | x_i + (sigma_{i+1} - sigma_i) (d_i + d'_i) / 2, Algorithm 1    |
 *
 * @module
 */
import type { Tensor } from "../core/tensor.ts";
import type { ClipSampleConfig } from "./_scheduler_config.ts";
import {
  eulerUpdate,
  SIGMA_SCHEDULE_DEFAULTS,
  type SigmaScheduleConfig,
  SigmaSchedulerBase,
} from "./_sigma_schedule.ts";
import type { SchedulerStepOutput } from "./scheduler.ts";

/** A resolved Heun config: diffusers' `HeunDiscreteScheduler` keys, snake_case. */
export interface HeunDiscreteSchedulerConfig extends SigmaScheduleConfig, ClipSampleConfig {}

/** Options of `HeunDiscreteScheduler.step`: none (Heun is deterministic); a pipeline's generator is accepted and unused. */
export type HeunStepOptions = Record<string, unknown>;

/** diffusers' `HeunDiscreteScheduler` defaults (its betas default to Stable Diffusion's range). */
const HEUN_DEFAULTS: Readonly<HeunDiscreteSchedulerConfig> = Object.freeze({
  ...SIGMA_SCHEDULE_DEFAULTS,
  beta_start: 0.00085,
  beta_end: 0.012,
  clip_sample: false,
  clip_sample_range: 1.0,
});

const f32 = Math.fround;

/**
 * The Heun scheduler of Karras et al. (Algorithm 1), as diffusers' `HeunDiscreteScheduler`.
 *
 * d_i = (x_i - D_i) / sigma_i; x~ = x_i + (sigma_{i+1} - sigma_i) d_i; d'_i = (x~ - D(x~)) / sigma_{i+1};
 * x_{i+1} = x_i + (sigma_{i+1} - sigma_i) (d_i + d'_i) / 2
 *
 * The step is driven by an index and a stage, as in diffusers: call `scaleModelInput` and `step` once for each entry
 * of `timesteps`, in order.
 *
 * @example
 * ```ts
 * import { HeunDiscreteScheduler, Tensor } from "../../mod.ts";
 * const scheduler = HeunDiscreteScheduler.fromConfig({ beta_start: 0.0001, beta_end: 0.02 });
 * scheduler.setTimesteps(5); // 9 model calls: [999, 749.25, 749.25, ..., 0, 0]
 * let x = Tensor.from(new Array(192).fill(1), [1, 3, 8, 8]);
 * for (const t of scheduler.timesteps) {
 *   const eps = Tensor.zeros(x.shape); // a model's prediction on scheduler.scaleModelInput(x, t)
 *   scheduler.scaleModelInput(x, t);
 *   x = scheduler.step(eps, t, x).prevSample;
 * }
 * // 2n - 1 model calls for n steps; eps = 0 gives D(x; sigma) = x, so both slopes are 0 and x stays x_T
 * if (scheduler.timesteps.length !== 9) throw new Error(`${scheduler.timesteps.length} calls for 5 steps`);
 * if (x.data.some((v) => v !== 1)) throw new Error(`got ${x.data[0]}`);
 * ```
 */
export class HeunDiscreteScheduler extends SigmaSchedulerBase<HeunDiscreteSchedulerConfig, HeunStepOptions> {
  /** Two model calls per solver step. */
  override readonly order = 2;
  #firstStage: FirstStage | null = null;
  // the kept first stage lives in two buffers reused from step pair to step pair
  #derivativeBuffer = new Float32Array(0);
  #sampleBuffer = new Float32Array(0);

  /**
   * Build a scheduler from a diffusers config (snake_case; absent keys take diffusers' defaults).
   *
   * @param config `scheduler_config.json` as an object
   * @throws RangeError or TypeError naming a bad key and value
   */
  constructor(config: Partial<HeunDiscreteSchedulerConfig> | Record<string, unknown> = {}) {
    super(config, HEUN_DEFAULTS, { scheduler: "HeunDiscreteScheduler" });
  }

  /**
   * Build a scheduler from a diffusers `scheduler_config.json` object.
   *
   * @param config the config, snake_case
   * @returns a new scheduler
   * @example
   * ```ts
   * import { HeunDiscreteScheduler } from "../../mod.ts";
   * const scheduler = HeunDiscreteScheduler.fromConfig({ use_karras_sigmas: true });
   * scheduler.setTimesteps(4); // sigmas [s0, s1, s1, s2, s2, s3, s3, 0]
   * // Karras et al. eq. (5): sigma_i^(1/rho), rho = 7, falls by the same amount at every step
   * const root = [0, 1, 3, 5].map((k) => scheduler.sigmas[k] ** (1 / 7));
   * const first = root[0] - root[1];
   * const last = root[2] - root[3];
   * if (Math.abs(first - last) > 1e-4 * first) throw new Error(`steps in sigma^(1/7): ${first} and ${last}`);
   * ```
   */
  static fromConfig(
    config: Partial<HeunDiscreteSchedulerConfig> | Record<string, unknown> = {},
  ): HeunDiscreteScheduler {
    return new HeunDiscreteScheduler(config);
  }

  /** Whether the next call is a first stage (an Euler step) rather than Heun's correction. */
  get stateInFirstOrder(): boolean {
    return this.#firstStage === null;
  }

  /**
   * Choose the schedule: n float timesteps by `timestep_spacing` (or a custom descending list), their sigmas
   * interpolated from the training sigmas (or the Karras or exponential schedule), each inner one repeated.
   *
   * timesteps = [tau_0, tau_1, tau_1, ..., tau_{n-1}, tau_{n-1}]; sigmas = [sigma_0, sigma_1, sigma_1, ..., 0]
   *
   * @param numInferenceSteps n, or a strictly descending list of timesteps in [0, T - 1]
   * @throws RangeError when n is out of range, or a custom list is malformed or used with Karras or exponential sigmas
   * @example
   * ```ts
   * import { HeunDiscreteScheduler } from "../../mod.ts";
   * const scheduler = HeunDiscreteScheduler.fromConfig({});
   * scheduler.setTimesteps(3); // [999, 499.5, 499.5, 0, 0]
   * // linspace spacing: np.linspace(0, 999, 3) reversed, every timestep after the first repeated
   * if (scheduler.timesteps.join() !== "999,499.5,499.5,0,0") throw new Error(`got ${scheduler.timesteps.join()}`);
   * ```
   */
  override setTimesteps(numInferenceSteps: number | readonly number[]): void {
    // 1. n float timesteps by the spacing (float32), or the custom list
    let timesteps = this.floatSchedule(numInferenceSteps);
    const n = timesteps.length;
    // 2. sigmas interpolated in t from the training sigmas (numpy float64), or the Karras / exponential schedule
    let sigmas = this.interpolatedSigmas(timesteps);
    const converted = this.convertedSigmas(sigmas[0], sigmas[n - 1], n);
    if (converted !== null) ({ sigmas, timesteps } = converted);
    // 3. float32, a final 0, and every inner sigma and timestep twice (the two stages of a Heun step)
    const single = Float32Array.from([...sigmas, 0]);
    this.sigmas = Float32Array.from([single[0], ...[...single.subarray(1, n)].flatMap((s) => [s, s]), 0]);
    this.setSchedule([timesteps[0], ...timesteps.slice(1).flatMap((t) => [t, t])], n);
  }

  /** A new schedule restarts the index and clears the kept first stage. */
  protected override onSchedule(): void {
    super.onSchedule();
    this.#firstStage = null;
  }

  /**
   * One call of Heun's method: the first stage's Euler step, or the second stage's trapezoidal correction.
   *
   * first: d = (x - D) / sigma_i, x~ = x + (sigma_{i+1} - sigma_i) d; second: d' = (x~ - D~) / sigma_{i+1},
   * x_{i+1} = x_i + (sigma_{i+1} - sigma_i) (d + d') / 2
   *
   * @param modelOutput eps, v or x0 (as `prediction_type` says) from the model at `scaleModelInput(x, t)`
   * @param timestep t, the current entry of `timesteps`
   * @param sample x at this call's sigma
   * @param _options unused (Heun draws no noise)
   * @returns the next sample and D, the predicted x0 (clipped when `clip_sample` is set)
   * @throws RangeError when `setTimesteps` was not called, t is not the current timestep, the shapes differ, or an
   *   input or the result is not finite
   * @example
   * ```ts
   * import { HeunDiscreteScheduler, Tensor } from "../../mod.ts";
   * const scheduler = HeunDiscreteScheduler.fromConfig({});
   * scheduler.setTimesteps(10);
   * const x = Tensor.from(new Array(192).fill(1), [1, 3, 8, 8]);
   * const { prevSample } = scheduler.step(Tensor.from(new Array(192).fill(1), x.shape), scheduler.timesteps[0], x);
   * // the first stage is Euler's step: D = x - sigma_0 eps, slope d = (x - D) / sigma_0 = eps = 1, so
   * // x + (sigma_1 - sigma_0) d = 1 + sigma_1 - sigma_0 (Karras et al., Algorithm 1, line 5)
   * const expected = 1 + scheduler.sigmas[1] - scheduler.sigmas[0];
   * if (Math.abs(prevSample.data[0] - expected) > 1e-5 * scheduler.sigmas[0]) throw new Error(`got ${prevSample.data[0]}`);
   * ```
   */
  step(modelOutput: Tensor, timestep: number, sample: Tensor, _options: HeunStepOptions = {}): SchedulerStepOutput {
    this.checkStepInputs(modelOutput, sample);
    const index = this.currentIndex(timestep, "step");
    const kept = this.#firstStage;
    const first = kept === null;
    // 1. the stage's sigmas: (sigma_i, sigma_{i+1}) in both stages
    const sigma = first ? this.sigmas[index] : this.sigmas[index - 1];
    const sigmaNext = first ? this.sigmas[index + 1] : this.sigmas[index];
    const sigmaInput = first ? sigma : sigmaNext;
    // 2. D(x; sigma_input), the denoised sample, by prediction type, then clipped
    const m = modelOutput.data;
    const x = sample.data;
    const size = sample.size;
    const predX0 = this.denoised(m, x, sigmaInput, sigmaInput);
    if (this.config.clip_sample) {
      const range = this.config.clip_sample_range;
      for (let i = 0; i < size; i++) predX0[i] = Math.min(Math.max(predX0[i], -range), range);
    }
    const prev = new Float32Array(size);
    // 3a. the Euler stage: d_i = (x - D) / sigma_i, kept with dt and x for the correction;
    // 3b. Heun's correction: the average of the two slopes, applied from the kept x_i over the kept dt
    const dt = first ? f32(sigmaNext - sigma) : kept.dt;
    if (first && this.#derivativeBuffer.length !== size) {
      this.#derivativeBuffer = new Float32Array(size);
      this.#sampleBuffer = new Float32Array(size);
    }
    const check = first
      ? eulerUpdate(m, x, predX0, sigma, dt, prev, this.#derivativeBuffer)
      : heunCorrection(m, x, predX0, sigmaNext, kept, prev);
    const output = this.finishAffineStep({ check, prev, predX0 }, modelOutput, sample);
    // 4. the state changes only after a finite step: the kept first stage (or its release) and the index
    this.#firstStage = first
      ? { derivative: this.#derivativeBuffer, start: (this.#sampleBuffer.set(x), this.#sampleBuffer), dt }
      : null;
    this.indexState.step = index + 1;
    return output;
  }
}

/** What Heun's correction keeps from the first stage: its slope d_i, its sample x_i and its step dt. */
interface FirstStage {
  derivative: Float32Array;
  start: Float32Array;
  dt: number;
}

/** The correction: x_{i+1} = x_i + dt (d + (x~ - D~) / sigma_{i+1}) / 2 into `prev`; NaN if anything is not finite. */
function heunCorrection(
  m: Float32Array,
  x: Float32Array,
  predX0: Float32Array,
  sigmaNext: number,
  { derivative, start, dt }: FirstStage,
  prev: Float32Array,
): number {
  let check = 0;
  for (let i = 0; i < x.length; i++) {
    const slope = f32(f32(f32(x[i] - predX0[i]) / sigmaNext) + derivative[i]) / 2;
    const out = f32(start[i] + f32(slope * dt));
    prev[i] = out;
    check += (m[i] - m[i]) + (out - out);
  }
  return check;
}
