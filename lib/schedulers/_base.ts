/**
 * The state and checks every scheduler shares, written once: the resolved diffusers config, the beta and alpha-bar
 * tables, the schedule and its index, the step noise, the forward process (`addNoise`, `getVelocity`), and the checks
 * of a step's inputs, each with one message.
 *
 * | paper                | code              | meaning                                              |
 * |----------------------|-------------------|------------------------------------------------------|
 * | beta_t               | `betas`           | the forward process variances, float32               |
 * | alpha_t (DDIM)       | `alphasCumprod`   | alpha-bar_t = prod_{s <= t} (1 - beta_s), float32    |
 * | T                    | `numTrainTimesteps` | the number of training timesteps                   |
 * | tau_S > ... > tau_1  | `timesteps`       | the schedule `setTimesteps` chose                    |
 * | z ~ N(0, I)          | `stepNoise`       | a step's fresh noise (drawn, or given)               |
 *
 * @module
 */
import type { RandnGenerator } from "../core/torch_generator.ts";
import { Tensor } from "../core/tensor.ts";
import { checkStepCount, spacedTimesteps } from "../math/schedules.ts";
import {
  buildSchedule,
  checkCustomTimesteps,
  checkModelOutputShape,
  checkSpacedTimesteps,
  type ConfigRules,
  copyConfig,
  mixWithAlphaBar,
  reportNonFinite,
  resolveConfig,
  type ScheduleConfig,
  scheduleIndex,
} from "./_scheduler_config.ts";
import type { Scheduler, SchedulerStepOutput } from "./scheduler.ts";

/** Where a stochastic step's noise z comes from: drawn from a generator, or given. */
export interface NoiseOptions {
  /** Draws z (one `randn(sample.shape)` per noisy step, as diffusers). */
  generator?: RandnGenerator;
  /** The noise z to use instead of drawing it. */
  varianceNoise?: Tensor;
}

/**
 * The shared base of the schedulers: config, tables, schedule, noise, forward process and input checks.
 *
 * alphaBar_t = prod_{s <= t} (1 - beta_s); x_t = sqrt(alphaBar_t) x0 + sqrt(1 - alphaBar_t) eps
 */
export abstract class SchedulerBase<Config extends ScheduleConfig, Options extends object>
  implements Scheduler<Options> {
  /** The resolved snake_case config. */
  readonly config: Readonly<Config>;
  /** beta_t, float32. */
  readonly betas: Float32Array;
  /** alpha-bar_t = prod (1 - beta_s), float32, length T. */
  readonly alphasCumprod: Float32Array;
  /** The standard deviation of the initial noise x_T. */
  readonly initNoiseSigma: number = 1;
  /** Model evaluations per solver step. */
  readonly order: number = 1;
  /** n, once `setTimesteps` was called. */
  numInferenceSteps: number | null = null;
  #timesteps: readonly number[];
  #indexOf = new Map<number, number>();
  #noise = new Float32Array(0);

  /**
   * Resolve the config against the scheduler's defaults and build the tables.
   *
   * @param config `scheduler_config.json` as an object
   * @param defaults diffusers' defaults for this scheduler
   * @param rules the scheduler's name and allowed values
   */
  protected constructor(
    config: Partial<Config> | Record<string, unknown>,
    defaults: Readonly<Config>,
    rules: ConfigRules,
  ) {
    this.config = Object.freeze(resolveConfig({ ...config } as Record<string, unknown>, defaults, rules));
    const { betas, alphasCumprod } = buildSchedule(this.config);
    this.betas = betas;
    this.alphasCumprod = alphasCumprod;
    const total = this.config.num_train_timesteps;
    this.#timesteps = Object.freeze(Array.from({ length: total }, (_, k) => total - 1 - k));
  }

  /** T, the number of training timesteps. */
  get numTrainTimesteps(): number {
    return this.config.num_train_timesteps;
  }

  /** The timesteps of the current schedule, in the order the loop visits them (all T, descending, until set). */
  get timesteps(): readonly number[] {
    return this.#timesteps;
  }

  /**
   * The config in diffusers' snake_case form, every key resolved.
   *
   * @returns a fresh object that `fromConfig` accepts
   */
  toConfig(): Config {
    return copyConfig(this.config);
  }

  /**
   * Choose n timesteps with the config's `timestep_spacing`, or take a custom strictly descending list.
   *
   * tau = spacing(n, T), descending
   *
   * @param numInferenceSteps n, or a strictly descending list of training timesteps
   * @throws RangeError when n is not in [1, T] or the list is not strictly descending in [0, T)
   */
  setTimesteps(numInferenceSteps: number | readonly number[]): void {
    if (typeof numInferenceSteps !== "number") {
      this.setSchedule(checkCustomTimesteps(numInferenceSteps, this.numTrainTimesteps, "descending"));
      return;
    }
    this.setSchedule(this.spacedSchedule(numInferenceSteps));
  }

  /**
   * The input the model sees at t: the sample itself (only the Karras-sigma samplers scale it).
   *
   * @param sample x_t
   * @param _timestep t
   * @returns the sample
   */
  scaleModelInput(sample: Tensor, _timestep?: number): Tensor {
    return sample;
  }

  /** One step of the sampler. */
  abstract step(modelOutput: Tensor, timestep: number, sample: Tensor, options?: Options): SchedulerStepOutput;

  /**
   * The forward process q(x_t | x_0) in closed form (DDIM paper eq. (4)): noise clean samples to timestep t.
   *
   * x_t = sqrt(alphaBar_t) x0 + sqrt(1 - alphaBar_t) eps
   *
   * @param originalSamples x0, batch-first
   * @param noise eps, same shape
   * @param timesteps one timestep for all, or one per batch item
   * @returns x_t
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
   */
  getVelocity(sample: Tensor, noise: Tensor, timesteps: number | readonly number[]): Tensor {
    return mixWithAlphaBar(this.alphasCumprod, noise, sample, timesteps, -1, ["noise", "sample"]);
  }

  /** The n timesteps the config's spacing picks, checked against T. */
  protected spacedSchedule(numInferenceSteps: number): number[] {
    checkStepCount(numInferenceSteps, this.numTrainTimesteps);
    const timesteps = spacedTimesteps(this.config.timestep_spacing, numInferenceSteps, {
      numTrainTimesteps: this.numTrainTimesteps,
      stepsOffset: this.config.steps_offset,
    });
    checkSpacedTimesteps(timesteps, this.numTrainTimesteps, this.config.steps_offset);
    return timesteps;
  }

  /** Store a schedule (and its index), then let the subclass reset what depends on it. */
  protected setSchedule(timesteps: readonly number[], numInferenceSteps = timesteps.length): void {
    this.numInferenceSteps = numInferenceSteps;
    this.#timesteps = Object.freeze([...timesteps]);
    this.#indexOf = new Map();
    this.#timesteps.forEach((t, k) => {
      if (!this.#indexOf.has(t)) this.#indexOf.set(t, k);
    });
    this.onSchedule();
  }

  /** Called after every new schedule: clear caches built for the old one. */
  protected onSchedule(): void {}

  /** The position of t in the schedule (its first occurrence), or an error naming t and the schedule. */
  protected indexOf(timestep: number): number {
    return scheduleIndex(this.#indexOf, this.#timesteps, timestep, this.numTrainTimesteps);
  }

  /**
   * Check a step's inputs: the schedule is set, the model output has the sample's shape (times `channelFactor`
   * channels), and at most one noise source is given.
   */
  protected checkStepInputs(modelOutput: Tensor, sample: Tensor, options: NoiseOptions = {}, channelFactor = 1): void {
    checkModelOutputShape(modelOutput, sample, channelFactor);
    if (options.generator !== undefined && options.varianceNoise !== undefined) {
      throw new RangeError("Pass either a generator or varianceNoise to step, not both");
    }
    if (this.numInferenceSteps === null) {
      throw new RangeError(`Call setTimesteps(n) before step: the ${this.constructor.name} schedule is not set`);
    }
  }

  /**
   * The step's noise z: the given `varianceNoise`, or one `randn(sample.shape)` from the generator into a buffer
   * kept between steps.
   *
   * @throws RangeError when neither is given (randomness is injected) or the given noise has the wrong shape
   */
  protected stepNoise(sample: Tensor, options: NoiseOptions, why: string): Float32Array {
    if (options.varianceNoise !== undefined) {
      checkModelOutputShape(options.varianceNoise, sample);
      return options.varianceNoise.data;
    }
    if (options.generator === undefined) {
      throw new RangeError(`${this.constructor.name} step ${why} needs a generator or varianceNoise`);
    }
    if (this.#noise.length !== sample.size) this.#noise = new Float32Array(sample.size);
    return options.generator.fillRandn(this.#noise);
  }

  /**
   * Wrap a kernel's result, and if its NaN check fired, name the first non-finite input (or the output).
   *
   * @param check the kernel's check: NaN when an input or output element was not finite
   */
  protected finishStep(
    check: number,
    prev: Float32Array,
    predX0: Float32Array,
    inputs: ReadonlyArray<readonly [Tensor | undefined, string]>,
    shape: readonly number[],
  ): SchedulerStepOutput {
    const prevSample = new Tensor(prev, shape);
    if (Number.isNaN(check)) reportNonFinite(inputs, prevSample);
    return { prevSample, predOriginalSample: new Tensor(predX0, shape) };
  }
}
