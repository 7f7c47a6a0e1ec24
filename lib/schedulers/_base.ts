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
  type ThresholdingConfig,
  thresholdInPlace,
} from "./_scheduler_config.ts";
import { fusedStep, type KernelResult, linearPredX0, type StepCoefficients, stepFromPredX0 } from "./_kernels.ts";
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
  #coefficients: unknown[] = [];

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
    this.#indexOf = new Map(this.#timesteps.map((t, k) => [t, k]));
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
   * @example
   * ```ts
   * import { DDIMScheduler } from "../../mod.ts";
   * const config = DDIMScheduler.fromConfig({ beta_end: 0.03 }).toConfig();
   * // diffusers' defaults fill the rest
   * if (config.beta_end !== 0.03 || config.beta_schedule !== "linear") throw new Error("resolved config");
   * ```
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
   * @example
   * ```ts
   * import { DDIMScheduler } from "../../mod.ts";
   * const scheduler = DDIMScheduler.fromConfig({});
   * scheduler.setTimesteps(50);
   * // diffusers' DDIMScheduler.set_timesteps(50), leading spacing: [980, 960, ..., 0]
   * if (scheduler.timesteps[0] !== 980 || scheduler.timesteps[49] !== 0) throw new Error("leading spacing");
   * scheduler.setTimesteps([999, 500, 100]);
   * if (scheduler.numInferenceSteps !== 3) throw new Error("a custom list");
   * ```
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
   * @example
   * ```ts
   * import { DDPMScheduler, Tensor } from "../../mod.ts";
   * const x = Tensor.from(new Array(4).fill(1), [1, 4]);
   * if (DDPMScheduler.fromConfig({}).scaleModelInput(x, 10) !== x) throw new Error("DDPM does not scale its input");
   * ```
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
   * @example
   * ```ts
   * import { DDIMScheduler, Tensor } from "../../mod.ts";
   * const scheduler = DDIMScheduler.fromConfig({});
   * const noisy = scheduler.addNoise(Tensor.from(new Array(4).fill(1), [1, 4]), Tensor.zeros([1, 4]), 500);
   * // eps = 0 leaves sqrt(alphaBar_500) x0
   * if (Math.abs(noisy.data[0] - Math.sqrt(scheduler.alphasCumprod[500])) > 1e-6) throw new Error("eq. (4)");
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
   * const scheduler = DDIMScheduler.fromConfig({});
   * const v = scheduler.getVelocity(Tensor.from(new Array(4).fill(1), [1, 4]), Tensor.zeros([1, 4]), 10);
   * // eps = 0: v = -sqrt(1 - alphaBar_10) x0
   * if (Math.abs(v.data[0] + Math.sqrt(1 - scheduler.alphasCumprod[10])) > 1e-6) throw new Error("v");
   * ```
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
   * // the next entry of the schedule (diffusers would use 666 - 1000 // 3 = 333)
   * if (scheduler.previousTimestep(666) !== 332 || scheduler.previousTimestep(332) !== -1) throw new Error("prev");
   * ```
   */
  previousTimestep(timestep: number): number {
    const index = this.indexOf(timestep);
    return index + 1 < this.#timesteps.length ? this.#timesteps[index + 1] : -1;
  }

  /**
   * Store a schedule (and its index), clear the per-timestep coefficient records, then let the subclass reset what
   * depends on it. `numInferenceSteps` null marks a schedule that is not set yet (the all-T default).
   */
  protected setSchedule(timesteps: readonly number[], numInferenceSteps: number | null = timesteps.length): void {
    this.numInferenceSteps = numInferenceSteps;
    this.#timesteps = Object.freeze([...timesteps]);
    this.#coefficients = [];
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
   * The coefficient record of schedule entry `index`: built once by `build` and kept until the next schedule.
   *
   * @param index the position in `timesteps`
   * @param build computes the record from the index (the subclass's tables)
   * @returns the record
   */
  protected coefficientsAt<Coefficients>(index: number, build: (index: number) => Coefficients): Coefficients {
    const cached = this.#coefficients[index];
    if (cached !== undefined) return cached as Coefficients;
    const record = build(index);
    this.#coefficients[index] = record;
    return record;
  }

  /**
   * Check a step's inputs: the schedule is set, the model output has the sample's shape (times `channelFactor`
   * channels), and at most one noise source is given.
   */
  protected checkStepInputs(modelOutput: Tensor, sample: Tensor, options: NoiseOptions = {}, channelFactor = 1): void {
    this.checkOutputAndNoise(modelOutput, sample, options, channelFactor);
    if (this.numInferenceSteps === null) {
      throw new RangeError(`Call setTimesteps(n) before step: the ${this.constructor.name} schedule is not set`);
    }
  }

  /**
   * `checkStepInputs` without the schedule check, for a scheduler that may step on its all-T default schedule (DDPM).
   */
  protected checkOutputAndNoise(
    modelOutput: Tensor,
    sample: Tensor,
    options: NoiseOptions = {},
    channelFactor = 1,
  ): void {
    checkModelOutputShape(modelOutput, sample, channelFactor);
    if (options.generator !== undefined && options.varianceNoise !== undefined) {
      throw new RangeError("Pass either a generator or varianceNoise to step, not both");
    }
  }

  /**
   * Refuse an epsilon prediction where alphaBar_t is 0 (a zero terminal SNR schedule): x0 = (x - sqrt(1 - alphaBar)
   * eps) / sqrt(alphaBar) divides by zero there.
   *
   * @param sqrtAlphaBar sqrt(alphaBar_t)
   * @param timestep t, for the message
   */
  protected checkPredictsX0(sqrtAlphaBar: number, timestep: number): void {
    if (sqrtAlphaBar === 0 && this.config.prediction_type === "epsilon") {
      throw new RangeError(
        `alphasCumprod[${timestep}] is 0 (zero terminal SNR), so an epsilon prediction cannot give x0 there; ` +
          `use prediction_type "v_prediction"`,
      );
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

  /**
   * Run a first-order step's fused kernel on its coefficient record: clamp predX0 in the same pass, or, when the
   * config asks for dynamic thresholding, form predX0, threshold it per batch item, then finish the step.
   *
   * predX0 = clamp(x0FromSample x + x0FromOutput m); x_{t-1} = x0Coeff predX0 + sampleCoeff x + outputCoeff m + noiseCoeff z
   *
   * @param k the step's coefficients
   * @param m the model output's values (shaped like the sample)
   * @param sample x_t
   * @param noise z, or null
   * @returns x_{t-1}, predX0 and the kernel's finiteness check
   */
  protected affineStep(k: StepCoefficients, m: Float32Array, sample: Tensor, noise: Float32Array | null): KernelResult {
    const config = this.config as Readonly<Partial<ThresholdingConfig>>;
    if (config.thresholding !== true) return fusedStep(k, m, sample.data, noise);
    const predX0 = linearPredX0(k, m, sample.data);
    thresholdInPlace(predX0, sample.shape[0] ?? 1, config.dynamic_thresholding_ratio!, config.sample_max_value!);
    return stepFromPredX0(k, m, sample.data, noise, predX0);
  }

  /**
   * `finishStep` for a step whose inputs are the model output, the sample and (maybe) the given noise.
   *
   * @param result the kernel's result
   * @param modelOutput the model output, named in a non-finite error
   * @param sample x_t
   * @param options the step's noise source
   * @returns x_{t-1} and predX0 as tensors of the sample's shape
   */
  protected finishAffineStep(
    result: KernelResult,
    modelOutput: Tensor,
    sample: Tensor,
    options: NoiseOptions = {},
  ): SchedulerStepOutput {
    return this.finishStep(
      result.check,
      result.prev,
      result.predX0,
      [[modelOutput, "modelOutput"], [sample, "sample"], [options.varianceNoise, "varianceNoise"]],
      sample.shape,
    );
  }
}
