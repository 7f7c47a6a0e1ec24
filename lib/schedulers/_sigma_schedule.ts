/**
 * Private helpers shared by the Euler, Heun and DPM-Solver schedulers: the noise levels sigma_t = sqrt((1 - alphaBar_t)
 * / alphaBar_t) of the variance-exploding form x = x0 + sigma eps (Karras et al. 2022, arXiv 2206.00364) and their
 * logs, the float timesteps diffusers gives Euler and Heun, numpy's `interp`, the Karras and exponential sigma
 * schedules, diffusers' step and begin index of the index-driven samplers, the Euler update x + d dt, and the base class
 * of Euler and Heun (`SigmaSchedulerBase`), each computed with the float32 and float64 steps diffusers takes.
 *
 * | paper (Karras)      | code            | meaning                                                   |
 * |---------------------|-----------------|-----------------------------------------------------------|
 * | sigma(t)            | `sigmaTable`    | sqrt((1 - alphaBar_t) / alphaBar_t) per training timestep |
 * | rho                 | `KARRAS_RHO`    | 7, the exponent of eq. (5) of Karras et al.               |
 * | sigma_min, sigma_max| `sigmaMin`, ... | the ends of the schedule                                  |
 * | t(sigma)            | `sigmaToTimestep` | the fractional timestep whose log sigma interpolates    |
 *
 * @module
 */
import { Tensor } from "../core/tensor.ts";
import { checkStepCount, spacedTimesteps } from "../math/schedules.ts";
import { SchedulerBase } from "./_base.ts";
import {
  checkModelOutputShape,
  type ConfigRules,
  SCHEDULE_DEFAULTS,
  type ScheduleConfig,
  SOLVER_SCHEDULE_RULES,
} from "./_scheduler_config.ts";

const f32 = Math.fround;

/** The rho of the Karras schedule, eq. (5) of Karras et al. 2022 (7, as diffusers fixes it). */
export const KARRAS_RHO = 7;

/**
 * sigma_t = sqrt((1 - alphaBar_t) / alphaBar_t) for every training timestep, float32 as torch computes it.
 *
 * @param alphasCumprod alpha-bar, float32
 * @returns sigma per timestep, ascending in t
 */
export function sigmaTable(alphasCumprod: Float32Array): Float32Array {
  return alphasCumprod.map((alphaBar) => f32(Math.sqrt(f32(f32(1 - alphaBar) / alphaBar))));
}

/** The training sigmas, their logs, and the schedule before `setTimesteps` (every training sigma, descending, then 0). */
export interface TrainSigmas {
  /** sigma_t per training timestep, ascending in t, float32. */
  trainSigmas: Float32Array;
  /** log sigma_t, float32 (as torch and numpy keep it). */
  logSigmas: Float32Array;
  /** [sigma_{T-1}, ..., sigma_0, 0]. */
  sigmas: Float32Array;
}

/**
 * The sigma tables a sigma-based scheduler builds at construction, float32 as torch computes them.
 *
 * sigma_t = sqrt((1 - alphaBar_t) / alphaBar_t), log sigma_t
 *
 * @param alphasCumprod alpha-bar, float32
 * @returns the training sigmas, their logs, and the descending default schedule ending in 0
 */
export function trainSigmaTables(alphasCumprod: Float32Array): TrainSigmas {
  const trainSigmas = sigmaTable(alphasCumprod);
  return {
    trainSigmas,
    logSigmas: trainSigmas.map(Math.log),
    sigmas: Float32Array.from([...trainSigmas].reverse().concat([0])),
  };
}

/** The sigma-schedule keys of diffusers' Euler and Heun configs. */
export interface SigmaOptionsConfig {
  /** Use the Karras et al. schedule (eq. (5), rho = 7) between the schedule's ends. */
  use_karras_sigmas: boolean;
  /** Use an exponential schedule between the schedule's ends. */
  use_exponential_sigmas: boolean;
  /** The beta-distribution schedule of arXiv 2407.12173 (not supported here: it needs the beta quantile function). */
  use_beta_sigmas: boolean;
}

/** The config keys Euler and Heun share: the schedule's and the sigma options. */
export interface SigmaScheduleConfig extends ScheduleConfig, SigmaOptionsConfig {}

/** diffusers' defaults of those keys in Euler and Heun: linspace spacing, the sigmas read off the training schedule. */
export const SIGMA_SCHEDULE_DEFAULTS: Readonly<SigmaScheduleConfig> = Object.freeze({
  ...SCHEDULE_DEFAULTS,
  timestep_spacing: "linspace",
  use_karras_sigmas: false,
  use_exponential_sigmas: false,
  use_beta_sigmas: false,
});

/** The config keys the float-timestep schedules of Euler and Heun read. */
export interface FloatScheduleConfig extends SigmaOptionsConfig {
  timestep_spacing: string;
  steps_offset: number;
}

/**
 * The float timesteps of a `setTimesteps` call of Euler or Heun: n spaced by `timestep_spacing`, or a checked custom
 * strictly descending list (not with Karras or exponential sigmas, whose timesteps follow from their sigmas).
 *
 * tau = floatTimesteps(spacing, n, T, offset), or the given list, each at most T - 1
 *
 * @param numInferenceSteps n, or a strictly descending list of timesteps in [0, T - 1]
 * @param config the spacing, offset and sigma options
 * @param numTrainTimesteps T
 * @param where the scheduler's name, for the messages
 * @param checkCustom the scheduler's own refusals of a custom list, run before the list is checked
 * @returns the timesteps, descending, float32 values
 */
export function floatScheduleTimesteps(
  numInferenceSteps: number | readonly number[],
  config: Readonly<FloatScheduleConfig>,
  numTrainTimesteps: number,
  where: string,
  checkCustom: () => void = () => {},
): number[] {
  let timesteps: number[];
  if (typeof numInferenceSteps === "number") {
    checkStepCount(numInferenceSteps, numTrainTimesteps);
    timesteps = floatTimesteps(config.timestep_spacing, numInferenceSteps, numTrainTimesteps, config.steps_offset);
  } else {
    if (config.use_karras_sigmas || config.use_exponential_sigmas) {
      throw new RangeError(`${where} cannot take custom timesteps with use_karras_sigmas or use_exponential_sigmas`);
    }
    checkCustom();
    timesteps = checkFloatTimesteps(numInferenceSteps, numTrainTimesteps, where);
  }
  const last = Math.max(...timesteps);
  if (last > numTrainTimesteps - 1) {
    throw new RangeError(
      `steps_offset ${config.steps_offset} pushes timestep ${last} of ${timesteps.length} inference steps past ` +
        `the last training timestep ${numTrainTimesteps - 1}; use fewer steps or a smaller steps_offset`,
    );
  }
  return timesteps;
}

/**
 * The standard deviation of the starting noise of Euler and Heun: sigma_max, or sqrt(sigma_max^2 + 1) for `leading`
 * spacing, float32 as diffusers' `init_noise_sigma`.
 *
 * @param sigmas the schedule's sigmas
 * @param spacing the config's `timestep_spacing`
 * @returns initNoiseSigma
 */
export function initNoiseSigmaOf(sigmas: Float32Array, spacing: string): number {
  const maxSigma = sigmas.reduce((a, b) => (b > a ? b : a), -Infinity);
  return spacing === "linspace" || spacing === "trailing"
    ? maxSigma
    : f32(Math.sqrt(f32(f32(maxSigma * maxSigma) + 1)));
}

/**
 * The descending float timesteps of diffusers' Euler and Heun schedulers for n steps (float32 values).
 *
 * linspace: linspace(0, T - 1, n) (not rounded); leading: k (T // n) + offset; trailing: round(arange(T, 0, -T/n)) - 1
 *
 * @param spacing `linspace`, `leading` or `trailing`
 * @param n the number of steps
 * @param numTrainTimesteps T
 * @param stepsOffset added to the `leading` timesteps
 * @returns n timesteps, descending
 */
export function floatTimesteps(spacing: string, n: number, numTrainTimesteps: number, stepsOffset: number): number[] {
  if (spacing === "linspace") {
    // np.linspace in float64 (k * step, the last one exactly T - 1), then cast to float32
    const last = numTrainTimesteps - 1;
    const step = n > 1 ? last / (n - 1) : NaN;
    const values = Array.from({ length: n }, (_, k) => (n > 1 ? (k === n - 1 ? last : k * step) : 0));
    return values.map(f32).reverse();
  }
  if (spacing === "leading") {
    const ratio = Math.floor(numTrainTimesteps / n);
    return Array.from({ length: n }, (_, k) => f32((n - 1 - k) * ratio + stepsOffset));
  }
  return spacedTimesteps("trailing", n, { numTrainTimesteps }).map(f32);
}

/**
 * numpy's `interp(x, arange(len(fp)), fp)` in float64: linear interpolation of a table at a fractional index.
 *
 * f(x) = fp[j] + (fp[j + 1] - fp[j]) (x - j), j = floor(x), clamped to the table's ends
 *
 * @param x the fractional index
 * @param table fp
 * @returns the interpolated value, float64
 */
export function interpolate(x: number, table: ArrayLike<number>): number {
  const last = table.length - 1;
  if (!(x > 0)) return table[0];
  if (x >= last) return table[last];
  const j = Math.floor(x);
  if (j === x) return table[j];
  const slope = table[j + 1] - table[j];
  return slope * (x - j) + table[j];
}

/**
 * The Karras et al. schedule between the given ends, float64 as diffusers' `_convert_to_karras`.
 *
 * sigma_i = (sigma_max^(1/rho) + i/(n-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho, eq. (5) of arXiv 2206.00364
 *
 * @param sigmaMax the first (largest) sigma
 * @param sigmaMin the last (smallest) sigma
 * @param n how many
 * @returns n sigmas, descending
 */
export function karrasSigmas(sigmaMax: number, sigmaMin: number, n: number): number[] {
  const minInvRho = sigmaMin ** (1 / KARRAS_RHO);
  const maxInvRho = sigmaMax ** (1 / KARRAS_RHO);
  return linspace01(n).map((ramp) => (maxInvRho + ramp * (minInvRho - maxInvRho)) ** KARRAS_RHO);
}

/**
 * The exponential schedule between the given ends, as diffusers' `_convert_to_exponential`.
 *
 * sigma_i = exp(log sigma_max + i/(n-1) (log sigma_min - log sigma_max))
 *
 * @param sigmaMax the first sigma
 * @param sigmaMin the last sigma
 * @param n how many
 * @returns n sigmas, descending
 */
export function exponentialSigmas(sigmaMax: number, sigmaMin: number, n: number): number[] {
  const start = Math.log(sigmaMax);
  const stop = Math.log(sigmaMin);
  const step = n > 1 ? (stop - start) / (n - 1) : NaN;
  return Array.from(
    { length: n },
    (_, k) => Math.exp(n > 1 && k === n - 1 ? stop : k === 0 ? start : k * step + start),
  );
}

/**
 * The fractional timestep of a sigma: log sigma interpolated between the two training timesteps around it, as
 * diffusers' `_sigma_to_t`.
 *
 * t = (1 - w) i + w (i + 1), w = (log sigma_i - log sigma) / (log sigma_i - log sigma_{i+1}), clipped to [0, 1]
 *
 * @param sigma the sigma, float64
 * @param logSigmas log sigma_t per training timestep (float32 values, ascending)
 * @returns t, float64
 */
export function sigmaToTimestep(sigma: number, logSigmas: Float32Array): number {
  const logSigma = Math.log(Math.max(sigma, 1e-10));
  // the last index whose log sigma is <= log sigma (0 if none), at most T - 2
  let count = 0;
  for (let i = 0; i < logSigmas.length; i++) if (logSigma - logSigmas[i] >= 0) count++;
  const lowIndex = Math.min(Math.max(count - 1, 0), logSigmas.length - 2);
  const low = logSigmas[lowIndex];
  const high = logSigmas[lowIndex + 1];
  const w = Math.min(Math.max((low - logSigma) / (low - high), 0), 1);
  return (1 - w) * lowIndex + w * (lowIndex + 1);
}

/** np.linspace(0, 1, n) in float64. */
function linspace01(n: number): number[] {
  if (n === 1) return [0];
  const step = 1 / (n - 1);
  return Array.from({ length: n }, (_, k) => (k === n - 1 ? 1 : k * step));
}

/**
 * Throw unless a custom timestep list is strictly descending numbers in [0, T - 1] (fractions allowed, as the
 * float timesteps of the Euler and Heun schedulers).
 *
 * @param timesteps the list
 * @param numTrainTimesteps T
 * @param where the scheduler's name, for the message
 * @returns the list as float32 values
 */
export function checkFloatTimesteps(timesteps: readonly number[], numTrainTimesteps: number, where: string): number[] {
  if (!Array.isArray(timesteps) || timesteps.length === 0) {
    throw new RangeError(`${where} custom timesteps must be a non-empty array of numbers, got ${String(timesteps)}`);
  }
  timesteps.forEach((t, k) => {
    if (typeof t !== "number" || !(t >= 0 && t <= numTrainTimesteps - 1)) {
      throw new RangeError(
        `${where} custom timesteps[${k}] = ${String(t)} is not a number in [0, ${numTrainTimesteps - 1}]`,
      );
    }
    if (k > 0 && t >= timesteps[k - 1]) {
      throw new RangeError(
        `${where} custom timesteps must be strictly descending: timesteps[${k - 1}] = ${timesteps[k - 1]}, ` +
          `timesteps[${k}] = ${t}`,
      );
    }
  });
  return timesteps.map(f32);
}

/** c_in(sigma) = sqrt(sigma^2 + 1), float32 (the divisor of `scaleModelInput`). */
export function cIn(sigma: number): number {
  return f32(Math.sqrt(f32(f32(sigma * sigma) + 1)));
}

/** sample / d elementwise in float32. */
export function divideBy(sample: Tensor, divisor: number): Tensor {
  if (!(sample instanceof Tensor)) throw new TypeError("scaleModelInput needs a Tensor sample");
  return new Tensor(sample.data.map((v) => v / divisor), sample.shape);
}

/**
 * diffusers' `index_for_timestep`: the position of t in the schedule, its second occurrence when it repeats (so a
 * loop started in the middle does not skip a sigma).
 */
export function indexForTimestep(timesteps: readonly number[], timestep: number, where: string): number {
  const found: number[] = [];
  timesteps.forEach((t, k) => {
    if (t === timestep) found.push(k);
  });
  if (found.length === 0) {
    throw new RangeError(
      `timestep ${String(timestep)} is not in the ${where} schedule set by setTimesteps (${timesteps.length} steps: ` +
        `${timesteps.slice(0, 4).join(", ")}${timesteps.length > 4 ? ", ..." : ""})`,
    );
  }
  return found[found.length > 1 ? 1 : 0];
}

/** Throw unless the index is inside the schedule and t is its timestep; returns the index. */
export function checkCurrentTimestep(
  timesteps: readonly number[],
  index: number,
  timestep: number,
  where: string,
): number {
  if (index >= timesteps.length) {
    throw new RangeError(
      `${where} took all ${timesteps.length} steps of its schedule; call setTimesteps(n) to start again`,
    );
  }
  if (timesteps[index] !== timestep) {
    throw new RangeError(
      `${where} expected timestep ${timesteps[index]} (step ${index} of its schedule), got ${String(timestep)}; ` +
        "its state counts the steps, so pass the timesteps in order",
    );
  }
  return index;
}

/**
 * diffusers' `_step_index` and `_begin_index` of the index-driven samplers (Euler, Heun): the step index is found from
 * t at the first call (or taken from the begin index), then counted by the scheduler.
 */
export class StepIndex {
  /** The position of the next call, null until the first one. */
  step: number | null = null;
  /** Where the next loop starts (`setBeginIndex`), null when the first call finds it. */
  begin: number | null = null;

  /** @param where the scheduler's name, for the messages */
  constructor(readonly where: string) {}

  /** Forget both (a new schedule). */
  reset(): void {
    this.step = null;
    this.begin = null;
  }

  /**
   * The index of the current call, checking that t is its timestep (the first call finds it, as diffusers).
   *
   * @param timesteps the schedule
   * @param numInferenceSteps null while no schedule is set
   * @param timestep t
   * @param what the method, for the message
   * @returns the index
   */
  current(timesteps: readonly number[], numInferenceSteps: number | null, timestep: number, what: string): number {
    if (numInferenceSteps === null) {
      throw new RangeError(`Call setTimesteps(n) before ${what}: the ${this.where} schedule is not set`);
    }
    this.step ??= this.begin ?? indexForTimestep(timesteps, timestep, this.where);
    return checkCurrentTimestep(timesteps, this.step, timestep, this.where);
  }

  /** The sigma index `add_noise` uses for t: found in the schedule, or the current index once a begin index is set. */
  forNoise(timesteps: readonly number[], timestep: number): number {
    if (this.begin === null) return indexForTimestep(timesteps, timestep, this.where);
    return this.step ?? this.begin;
  }
}

/** Throw unless the begin index is a position of the set schedule; returns it. */
export function checkBeginIndex(beginIndex: number, length: number, numInferenceSteps: number | null): number {
  if (numInferenceSteps === null) throw new RangeError("Call setTimesteps(n) before setBeginIndex");
  if (!Number.isInteger(beginIndex) || beginIndex < 0 || beginIndex >= length) {
    throw new RangeError(`beginIndex must be an integer in [0, ${length - 1}], got ${String(beginIndex)}`);
  }
  return beginIndex;
}

/** x0 + sigma(t) eps per batch item, float32, with the sigma index chosen by `indexOf`. */
export function addSigmaNoise(
  originalSamples: Tensor,
  noise: Tensor,
  timesteps: number | readonly number[],
  sigmas: Float32Array,
  indexOf: (t: number) => number,
): Tensor {
  checkModelOutputShape(noise, originalSamples);
  const batch = originalSamples.shape.length > 0 ? originalSamples.shape[0] : 1;
  const list = typeof timesteps === "number" ? [timesteps] : [...timesteps];
  if (list.length !== 1 && list.length !== batch) {
    throw new RangeError(`Got ${list.length} timesteps for a batch of ${batch}; pass one, or one per batch item`);
  }
  const perItem = list.map(indexOf).map((k) => sigmas[k]);
  const out = new Float32Array(originalSamples.size);
  const itemSize = batch > 0 ? originalSamples.size / batch : 0;
  const x = originalSamples.data;
  const eps = noise.data;
  for (let item = 0; item < batch; item++) {
    const sigma = perItem.length === 1 ? perItem[0] : perItem[item];
    for (let i = item * itemSize; i < (item + 1) * itemSize; i++) out[i] = x[i] + f32(eps[i] * sigma);
  }
  return new Tensor(out, originalSamples.shape);
}

/** Refuse sigma options this package does not implement or that contradict each other. */
export function checkSigmaOptions(config: Record<string, unknown>, where: string): void {
  for (const key of ["use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas"]) {
    if (typeof config[key] !== "boolean") {
      throw new RangeError(`${where} config ${key} must be true or false, got ${String(config[key])}`);
    }
  }
  const chosen = ["use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas"].filter((key) => config[key]);
  if (chosen.length > 1) {
    throw new RangeError(`${where} config can use only one of ${chosen.join(", ")}`);
  }
  if (config.use_beta_sigmas === true) {
    throw new RangeError(
      `${where} config use_beta_sigmas is not supported here (it needs the beta distribution's quantile function)`,
    );
  }
  for (const key of ["sigma_min", "sigma_max"]) {
    const v = config[key];
    if (v !== null && v !== undefined && (typeof v !== "number" || !(v > 0 && v < Infinity))) {
      throw new RangeError(`${where} config ${key} must be a positive number or null, got ${String(v)}`);
    }
  }
}

/**
 * The Euler update over dt with the ODE's slope d = (x - D) / sigma (Karras et al. eq. (3)), into `prev`, and the
 * slopes into `derivative` when one is given (Heun's first stage keeps them); float32 as diffusers.
 *
 * x_next = x + d dt, d = (x - D) / sigma
 *
 * @param m the model output (only checked for finiteness)
 * @param x the sample
 * @param predX0 D(x; sigma)
 * @param sigma the sigma the slope divides by
 * @param dt sigma_next - sigma
 * @param prev the result
 * @param derivative where to keep d, or null
 * @returns 0, or NaN when m or the result has a non-finite element
 */
export function eulerUpdate(
  m: Float32Array,
  x: Float32Array,
  predX0: Float32Array,
  sigma: number,
  dt: number,
  prev: Float32Array,
  derivative: Float32Array | null = null,
): number {
  let check = 0;
  for (let i = 0; i < x.length; i++) {
    const d = f32(f32(x[i] - predX0[i]) / sigma);
    if (derivative !== null) derivative[i] = d;
    const out = f32(x[i] + f32(d * dt));
    prev[i] = out;
    check += (m[i] - m[i]) + (out - out);
  }
  return check;
}

/**
 * D(x; sigma), the denoised sample of the variance-exploding form, into `predX0` (float32, as diffusers):
 * epsilon: x - sigma eps; v: c_skip x + c_out v with c_skip = 1 / (sigma^2 + 1), c_out = -sigma / sqrt(sigma^2 + 1);
 * sample: the model output itself.
 *
 * @param sigmaEpsilon the sigma of the epsilon form (Euler's sigma-hat)
 * @param sigmaV the sigma of the v form (Euler's sigma, not raised by churn)
 */
export function denoise(
  m: Float32Array,
  x: Float32Array,
  predX0: Float32Array,
  predictionType: string,
  sigmaEpsilon: number,
  sigmaV: number,
): void {
  const size = x.length;
  if (predictionType === "epsilon") {
    for (let i = 0; i < size; i++) predX0[i] = x[i] - f32(sigmaEpsilon * m[i]);
  } else if (predictionType === "v_prediction") {
    const sigmaSquaredPlusOne = f32(f32(sigmaV * sigmaV) + 1);
    const cOut = f32(-sigmaV / f32(Math.sqrt(sigmaSquaredPlusOne)));
    for (let i = 0; i < size; i++) predX0[i] = f32(m[i] * cOut) + f32(x[i] / sigmaSquaredPlusOne);
  } else {
    predX0.set(m);
  }
}

/**
 * The base of the Euler and Heun schedulers: the sigma tables, the schedule's sigmas and `initNoiseSigma`, diffusers'
 * step and begin index, `scaleModelInput` and the sigma-based `addNoise`. A subclass sets `sigmas` in its
 * `setTimesteps` and writes its `step`.
 *
 * x = x0 + sigma eps; the model sees c_in(sigma) x = x / sqrt(sigma^2 + 1)
 */
export abstract class SigmaSchedulerBase<Config extends SigmaScheduleConfig, Options extends object>
  extends SchedulerBase<Config, Options> {
  /** The noise levels the calls use, then the final one (all T training sigmas, descending, and 0 until set). */
  sigmas: Float32Array;
  /** The standard deviation of the starting noise: sigma_max, or sqrt(sigma_max^2 + 1) for `leading` spacing. */
  override initNoiseSigma: number;
  /** sigma_t per training timestep, ascending in t, float32. */
  protected readonly trainSigmas: Float32Array;
  /** log sigma_t, float32. */
  protected readonly logSigmas: Float32Array;
  /** diffusers' step and begin index. */
  protected readonly indexState: StepIndex;

  /**
   * Resolve the config, check its sigma options and build the sigma tables.
   *
   * @param config `scheduler_config.json` as an object
   * @param defaults diffusers' defaults for this scheduler
   * @param rules the scheduler's name and allowed values (the beta schedules and spacings default to
   *   `SOLVER_SCHEDULE_RULES`)
   * @param zeroSnrFloor keep the last alpha-bar at 2^-24 when `rescale_betas_zero_snr` is set (Euler), so that
   *   sigma_max stays finite
   */
  protected constructor(
    config: Partial<Config> | Record<string, unknown>,
    defaults: Readonly<Config>,
    rules: ConfigRules,
    zeroSnrFloor = false,
  ) {
    super(config, defaults, { ...SOLVER_SCHEDULE_RULES, ...rules });
    checkSigmaOptions(this.config, rules.scheduler);
    if (zeroSnrFloor && this.config.rescale_betas_zero_snr) {
      this.alphasCumprod[this.alphasCumprod.length - 1] = 2 ** -24;
    }
    ({ trainSigmas: this.trainSigmas, logSigmas: this.logSigmas, sigmas: this.sigmas } = trainSigmaTables(
      this.alphasCumprod,
    ));
    this.indexState = new StepIndex(rules.scheduler);
    this.initNoiseSigma = initNoiseSigmaOf(this.sigmas, this.config.timestep_spacing);
  }

  /** The position in the schedule of the next call (null until the first step or `scaleModelInput`). */
  get stepIndex(): number | null {
    return this.indexState.step;
  }

  /**
   * Start the next loop at position i of the schedule (diffusers' `set_begin_index`, for image-to-image).
   *
   * @param beginIndex i, a position of `timesteps`
   * @example
   * ```ts
   * import { EulerDiscreteScheduler, HeunDiscreteScheduler } from "../../mod.ts";
   * const euler = EulerDiscreteScheduler.fromConfig({});
   * euler.setTimesteps(10);
   * euler.setBeginIndex(4);
   * const heun = HeunDiscreteScheduler.fromConfig({});
   * heun.setTimesteps(10); // 19 calls
   * heun.setBeginIndex(8);
   * let threw = false;
   * try {
   *   heun.setBeginIndex(19);
   * } catch {
   *   threw = true;
   * }
   * if (!threw) throw new Error("a begin index past the schedule is refused");
   * ```
   */
  setBeginIndex(beginIndex: number): void {
    this.indexState.begin = checkBeginIndex(beginIndex, this.timesteps.length, this.numInferenceSteps);
  }

  /** A new schedule restarts the step index and sets `initNoiseSigma` from the new sigmas. */
  protected override onSchedule(): void {
    this.indexState.reset();
    this.initNoiseSigma = initNoiseSigmaOf(this.sigmas, this.config.timestep_spacing);
  }

  /**
   * The model input at this call: the sample divided by sqrt(sigma^2 + 1), which is x_t of the DDPM model.
   *
   * c_in(sigma) x = x / sqrt(sigma^2 + 1)
   *
   * @param sample x at the current sigma
   * @param timestep t, the current entry of `timesteps`
   * @returns the scaled sample
   * @throws RangeError when `setTimesteps` was not called or t is not the current timestep
   * @example
   * ```ts
   * import { EulerDiscreteScheduler, Tensor } from "../../mod.ts";
   * const scheduler = EulerDiscreteScheduler.fromConfig({});
   * scheduler.setTimesteps(10);
   * const input = scheduler.scaleModelInput(Tensor.from([2], [1, 1]), scheduler.timesteps[0]);
   * // 2 / sqrt(sigma_0^2 + 1)
   * const expected = 2 / Math.sqrt(scheduler.sigmas[0] ** 2 + 1);
   * if (Math.abs(input.data[0] - expected) > 1e-6 * expected) throw new Error("c_in");
   * ```
   */
  override scaleModelInput(sample: Tensor, timestep: number): Tensor {
    const index = this.currentIndex(timestep, "scaleModelInput");
    return divideBy(sample, cIn(this.sigmas[index]));
  }

  /**
   * Noise clean samples to the sigma of the given timesteps, as diffusers' Euler and Heun `add_noise` (not alpha-bar
   * mixing; a repeated timestep takes its second position).
   *
   * x = x0 + sigma(t) eps
   *
   * @param originalSamples x0, batch-first
   * @param noise eps, same shape
   * @param timesteps entries of `timesteps`: one for all, or one per batch item
   * @returns x at those sigmas
   * @example
   * ```ts
   * import { HeunDiscreteScheduler, Tensor } from "../../mod.ts";
   * const scheduler = HeunDiscreteScheduler.fromConfig({});
   * scheduler.setTimesteps(10);
   * const t = scheduler.timesteps[16]; // repeated at 15 and 16
   * const noisy = scheduler.addNoise(Tensor.zeros([1, 2]), Tensor.from([1, -1], [1, 2]), t);
   * if (noisy.data[0] !== scheduler.sigmas[16]) throw new Error("x0 + sigma eps at the second position");
   * ```
   */
  override addNoise(originalSamples: Tensor, noise: Tensor, timesteps: number | readonly number[]): Tensor {
    const indexOf = (t: number) => this.indexState.forNoise(this.timesteps, t);
    return addSigmaNoise(originalSamples, noise, timesteps, this.sigmas, indexOf);
  }

  /** The index of the current call, checking that t is its timestep (the first call finds it, as diffusers). */
  protected currentIndex(timestep: number, what: string): number {
    return this.indexState.current(this.timesteps, this.numInferenceSteps, timestep, what);
  }

  /**
   * D(x; sigma), the denoised sample by the config's prediction type, float32 (see `denoise`).
   *
   * epsilon: x - sigma eps; v: c_skip x + c_out v; sample: the model output
   *
   * @param m the model output
   * @param x the sample
   * @param sigmaEpsilon the sigma of the epsilon form
   * @param sigmaV the sigma of the v form
   * @returns predX0, a new array
   */
  protected denoised(m: Float32Array, x: Float32Array, sigmaEpsilon: number, sigmaV: number): Float32Array {
    const predX0 = new Float32Array(x.length);
    denoise(m, x, predX0, this.config.prediction_type, sigmaEpsilon, sigmaV);
    return predX0;
  }

  /**
   * The training sigmas interpolated at float timesteps (numpy's `interp`, float64).
   *
   * sigma(tau) = interp(tau, arange(T), sigma_t)
   *
   * @param timesteps tau
   * @returns the sigmas, float64
   */
  protected interpolatedSigmas(timesteps: readonly number[]): number[] {
    return timesteps.map((t) => interpolate(t, this.trainSigmas));
  }

  /**
   * The Karras (eq. (5) of arXiv 2206.00364) or exponential schedule between two ends, as the config chooses, with
   * the float timesteps t(sigma) that match its sigmas; null when the config asks for neither.
   *
   * sigma_i = karras or exponential(sigma_max, sigma_min, n); tau_i = t(sigma_i)
   *
   * @param sigmaMax the first sigma
   * @param sigmaMin the last sigma
   * @param n how many
   * @returns the sigmas (float64) and their timesteps (float32 values), or null
   */
  protected convertedSigmas(
    sigmaMax: number,
    sigmaMin: number,
    n: number,
  ): { sigmas: number[]; timesteps: number[] } | null {
    if (!this.config.use_karras_sigmas && !this.config.use_exponential_sigmas) return null;
    const sigmas = this.config.use_karras_sigmas
      ? karrasSigmas(sigmaMax, sigmaMin, n)
      : exponentialSigmas(sigmaMax, sigmaMin, n);
    return { sigmas, timesteps: sigmas.map((sigma) => f32(sigmaToTimestep(sigma, this.logSigmas))) };
  }

  /**
   * The float timesteps of a `setTimesteps` call: n spaced by the config, or a checked custom list.
   *
   * @param numInferenceSteps n, or a strictly descending list of timesteps in [0, T - 1]
   * @param checkCustom the scheduler's own refusals of a custom list
   * @returns the timesteps, descending
   */
  protected floatSchedule(numInferenceSteps: number | readonly number[], checkCustom?: () => void): number[] {
    return floatScheduleTimesteps(
      numInferenceSteps,
      this.config,
      this.numTrainTimesteps,
      this.indexState.where,
      checkCustom,
    );
  }
}
