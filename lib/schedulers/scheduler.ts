/**
 * The contract every scheduler keeps, so that pipelines, plots and the registry can use any of them: diffusers'
 * `SchedulerMixin` surface (config, timesteps, `setTimesteps`, `scaleModelInput`, `step`, `addNoise`), typed by the
 * options its `step` takes.
 *
 * | paper / diffusers        | code                 | meaning                                                     |
 * |--------------------------|----------------------|-------------------------------------------------------------|
 * | tau_S > ... > tau_1      | `timesteps`          | the schedule after `setTimesteps(S)`, in the order visited  |
 * | sigma_max (Karras)       | `initNoiseSigma`     | the standard deviation of x_T the sampler starts from       |
 * | c_in(sigma) (Karras)     | `scaleModelInput`    | what the model input is multiplied by (1 for DDPM and DDIM) |
 * | x_{t-1}                  | `prevSample`         | what a step returns                                         |
 * | f_theta(x_t), eq. (9)    | `predOriginalSample` | the predicted x0 the step used                              |
 *
 * @module
 */
import type { Tensor } from "../core/tensor.ts";

/** The result of one scheduler step. */
export interface SchedulerStepOutput {
  /** x_{t-1} (or x_{t+1} for an inverse scheduler). */
  prevSample: Tensor;
  /** The predicted x0 after clipping or thresholding. */
  predOriginalSample: Tensor;
}

/** One step of a sampling loop: step index i, timestep t, the sample after the step, the predicted x0. */
export interface SamplingStep {
  /** The step index, 0 for the first (noisiest) step. */
  readonly i: number;
  /** The training timestep whose model output made this step. */
  readonly t: number;
  /** The sample after this step: x_{t-1} (x_0 after the last step). */
  readonly x: Tensor;
  /** The predicted x0 at this step, eq. (12)'s "predicted x0". */
  readonly predX0: Tensor;
}

/**
 * A scheduler: the typed contract every sampler here keeps, generic over the options of its `step`.
 *
 * x_{t-1} = step(eps_theta(scaleModelInput(x_t, t), t), t, x_t, options).prevSample, x_T ~ N(0, initNoiseSigma^2 I)
 *
 * @example
 * ```ts
 * import { DDIMScheduler, type DDIMStepOptions, type Scheduler, Tensor } from "../../mod.ts";
 * const scheduler: Scheduler<DDIMStepOptions> = DDIMScheduler.fromConfig({});
 * scheduler.setTimesteps(10);
 * const x = scheduler.step(Tensor.zeros([1, 4]), scheduler.timesteps[0], Tensor.zeros([1, 4]), { eta: 0 }).prevSample;
 * if (x.shape[1] !== 4) throw new Error("a step keeps the sample's shape");
 * // the options are typed: a generator that is not a RandnGenerator does not compile (and fails if forced through)
 * let refused = false;
 * try {
 *   scheduler.step(Tensor.zeros([1, 4]), scheduler.timesteps[0], Tensor.zeros([1, 4]), {
 *     eta: 1,
 *     // @ts-expect-error a seed is not a generator
 *     generator: 42,
 *   });
 * } catch {
 *   refused = true;
 * }
 * if (!refused) throw new Error("a number as generator must not pass");
 * ```
 */
export interface Scheduler<StepOptions extends object = Record<string, unknown>> {
  /** The resolved diffusers-style configuration (snake_case keys). */
  readonly config: Readonly<Record<string, unknown>>;
  /** The schedule after `setTimesteps`, in the order the loop visits it (repeats allowed, as Heun's). */
  readonly timesteps: readonly number[];
  /** The number of inference steps, once `setTimesteps` was called. */
  readonly numInferenceSteps: number | null;
  /** The standard deviation of the starting noise x_T (1 for the DDPM family). */
  readonly initNoiseSigma: number;
  /** How many model evaluations one solver step uses (1 for DDIM, 2 for Heun). */
  readonly order: number;
  /** Choose the schedule for `n` inference steps. */
  setTimesteps(numInferenceSteps: number): void;
  /** The model input at timestep t (the sample itself for DDPM and DDIM). */
  scaleModelInput(sample: Tensor, timestep: number): Tensor;
  /** One step of the sampler. */
  step(modelOutput: Tensor, timestep: number, sample: Tensor, options?: StepOptions): SchedulerStepOutput;
  /** The config as a fresh snake_case object that the class's `fromConfig` accepts. */
  toConfig(): Record<string, unknown>;
}

/** The options type of a scheduler's `step`. */
export type StepOptionsOf<S> = S extends Scheduler<infer Options> ? Options : never;

/**
 * The scheduler interface the pipelines use.
 *
 * @deprecated use `Scheduler` (this alias takes any step options and remains for code written before it)
 */
// deno-lint-ignore no-explicit-any
export type PipelineScheduler = Scheduler<any>;
