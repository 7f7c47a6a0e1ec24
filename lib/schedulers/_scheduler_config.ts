/**
 * Private helpers shared by the DDPM, DDIM and DDIM-inverse schedulers: reading a diffusers `scheduler_config.json`
 * (snake_case, absent keys take diffusers' defaults, unknown keys kept and ignored), building the alpha-bar table,
 * checking timesteps and shapes, the forward process q(x_t | x_0) and dynamic thresholding.
 *
 * @module
 */
import { MAX_TRAIN_TIMESTEPS } from "../core/_limits.ts";
import { assertFinite, assertSameShape, Tensor } from "../core/tensor.ts";
import {
  alphasCumprod,
  BETA_SCHEDULES,
  type BetaSchedule,
  betaSchedule,
  rescaleZeroTerminalSnr,
  TIMESTEP_SPACINGS,
  type TimestepSpacing,
} from "../math/schedules.ts";

/** What the network predicts: the noise eps, the clean sample x0, or v = sqrt(alphaBar) eps - sqrt(1 - alphaBar) x0. */
export type PredictionType = "epsilon" | "sample" | "v_prediction";

/** The prediction types every scheduler here accepts. */
export const PREDICTION_TYPES: readonly PredictionType[] = ["epsilon", "sample", "v_prediction"];

/** The keys every scheduler's config has (diffusers' names and meanings): the beta schedule and the spacing. */
export interface ScheduleConfig {
  /** T, the number of training timesteps. */
  num_train_timesteps: number;
  /** beta_1 of the `linear`, `scaled_linear` and `sigmoid` schedules. */
  beta_start: number;
  /** beta_T of those schedules. */
  beta_end: number;
  /** The beta schedule's name. */
  beta_schedule: BetaSchedule;
  /** Explicit betas, which override the schedule (length T), or null. */
  trained_betas: number[] | null;
  /** What the model predicts. */
  prediction_type: PredictionType;
  /** How `setTimesteps(n)` picks timesteps. */
  timestep_spacing: TimestepSpacing;
  /** Added to the `leading` timesteps. */
  steps_offset: number;
  /** Keys diffusers does not use here (such as `_class_name`) are kept as they were. */
  [key: string]: unknown;
}

/** diffusers' defaults of the keys every scheduler config has, where a scheduler does not set its own. */
export const SCHEDULE_DEFAULTS: Readonly<ScheduleConfig> = Object.freeze({
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: "linear",
  trained_betas: null,
  prediction_type: "epsilon",
  timestep_spacing: "leading",
  steps_offset: 0,
});

/** The clipping keys (the DDPM family and Heun). */
export interface ClipSampleConfig {
  /** Clip the predicted x0 to [-clip_sample_range, clip_sample_range]. */
  clip_sample: boolean;
  /** The clipping bound. */
  clip_sample_range: number;
}

/** The keys the DDPM-family schedulers (DDPM, DDIM, DDIM inverse) add: clipping and zero terminal SNR. */
export interface BaseSchedulerConfig extends ScheduleConfig, ClipSampleConfig {
  /** Rescale the betas to zero terminal SNR (arXiv 2305.08891). */
  rescale_betas_zero_snr: boolean;
}

/** The dynamic-thresholding keys of DDPM and DDIM (Imagen, arXiv 2205.11487). */
export interface ThresholdingConfig {
  /** Use dynamic thresholding instead of plain clipping. */
  thresholding: boolean;
  /** The quantile of |x0| used as the threshold s. */
  dynamic_thresholding_ratio: number;
  /** The largest threshold s allowed. */
  sample_max_value: number;
}

/** diffusers' defaults for the keys all three schedulers share. */
export const BASE_DEFAULTS: Readonly<BaseSchedulerConfig> = Object.freeze({
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: "linear",
  trained_betas: null,
  clip_sample: true,
  clip_sample_range: 1.0,
  prediction_type: "epsilon",
  timestep_spacing: "leading",
  steps_offset: 0,
  rescale_betas_zero_snr: false,
});

/** diffusers' thresholding defaults. */
export const THRESHOLDING_DEFAULTS: Readonly<ThresholdingConfig> = Object.freeze({
  thresholding: false,
  dynamic_thresholding_ratio: 0.995,
  sample_max_value: 1.0,
});

/**
 * The beta schedules and spacings of the diffusers schedulers that know neither `sigmoid` betas nor `quad` spacing
 * (PNDM, Euler, Heun and DPM-Solver), as `ConfigRules` entries.
 */
export const SOLVER_SCHEDULE_RULES: Readonly<Pick<ConfigRules, "betaSchedules" | "spacings">> = Object.freeze({
  betaSchedules: ["linear", "scaled_linear", "squaredcos_cap_v2"],
  spacings: ["linspace", "leading", "trailing"],
});

/** What `resolveConfig` may accept for one scheduler. */
export interface ConfigRules {
  /** The scheduler's name, for error messages. */
  scheduler: string;
  /** The beta schedules it accepts. */
  betaSchedules?: readonly string[];
  /** The spacings it accepts. */
  spacings?: readonly string[];
  /** Extra enum-valued keys and their allowed values. */
  enums?: Record<string, readonly string[]>;
}

/**
 * Merge a snake_case config over the defaults and check every known key, keeping unknown keys as they are.
 *
 * config = defaults <- given (only keys present in `given` override)
 *
 * @param given the config as read from `scheduler_config.json`
 * @param defaults the scheduler's defaults
 * @param rules the allowed values and the scheduler's name
 * @returns the resolved config
 * @throws TypeError or RangeError naming the key and the bad value
 */
export function resolveConfig<C extends ScheduleConfig>(
  given: Record<string, unknown> | undefined,
  defaults: Readonly<C>,
  rules: ConfigRules,
): C {
  if (given !== undefined && (given === null || typeof given !== "object" || Array.isArray(given))) {
    throw new TypeError(`${rules.scheduler} config must be an object of snake_case keys, got ${String(given)}`);
  }
  const config = { ...defaults } as Record<string, unknown>;
  for (const [key, value] of Object.entries(given ?? {})) {
    if (value === undefined) continue;
    // diffusers stores absent optional values as null; null means "use the default" for every key but trained_betas
    if (value === null && key in defaults && key !== "trained_betas") continue;
    config[key] = value;
  }
  const where = rules.scheduler;
  const integer = (key: string, min: number) => {
    const v = config[key];
    if (typeof v !== "number" || !Number.isInteger(v) || v < min) {
      throw new RangeError(`${where} config ${key} must be an integer >= ${min}, got ${String(v)}`);
    }
  };
  const finite = (key: string, positive: boolean) => {
    const v = config[key];
    if (typeof v !== "number" || !Number.isFinite(v) || (positive && v <= 0)) {
      throw new RangeError(
        `${where} config ${key} must be a ${positive ? "positive" : "finite"} number, got ${String(v)}`,
      );
    }
  };
  const bool = (key: string) => {
    if (typeof config[key] !== "boolean") {
      throw new TypeError(`${where} config ${key} must be true or false, got ${String(config[key])}`);
    }
  };
  const oneOf = (key: string, allowed: readonly string[], what: string) => {
    const v = config[key];
    if (typeof v !== "string" || !allowed.includes(v)) {
      throw new RangeError(`Unknown ${what} "${String(v)}" for ${where}; expected one of ${allowed.join(", ")}`);
    }
  };
  integer("num_train_timesteps", 1);
  if ((config.num_train_timesteps as number) > MAX_TRAIN_TIMESTEPS) {
    throw new RangeError(
      `${where} config num_train_timesteps ${config.num_train_timesteps} is more than the limit of ${MAX_TRAIN_TIMESTEPS}`,
    );
  }
  integer("steps_offset", 0);
  finite("beta_start", false);
  finite("beta_end", false);
  // The schedules built from beta_start and beta_end need both in (0, 1): beta = 0 or 1 makes a zero or infinite
  // signal-to-noise ratio (and NaN in a step) far from where the value was given.
  if (config.trained_betas === null && config.beta_schedule !== "squaredcos_cap_v2") {
    for (const key of ["beta_start", "beta_end"]) {
      const v = config[key] as number;
      if (!(v > 0 && v < 1)) {
        throw new RangeError(
          `${where} config ${key} must lie strictly between 0 and 1 for the ${
            String(config.beta_schedule)
          } beta schedule, got ${v}`,
        );
      }
    }
  }
  // the clipping and zero-SNR keys only where the scheduler has them (diffusers' Euler or PNDM have no clip_sample)
  if ("clip_sample_range" in defaults) finite("clip_sample_range", true);
  if ("clip_sample" in defaults) bool("clip_sample");
  if ("rescale_betas_zero_snr" in defaults) bool("rescale_betas_zero_snr");
  oneOf("prediction_type", PREDICTION_TYPES, "prediction_type");
  oneOf("timestep_spacing", rules.spacings ?? TIMESTEP_SPACINGS, "timestep_spacing");
  if (config.trained_betas === null) {
    oneOf("beta_schedule", rules.betaSchedules ?? BETA_SCHEDULES, "beta_schedule");
  } else {
    const betas = config.trained_betas;
    if (!Array.isArray(betas) && !ArrayBuffer.isView(betas)) {
      throw new TypeError(`${where} config trained_betas must be an array of numbers or null, got ${String(betas)}`);
    }
    const list = Array.from(betas as ArrayLike<number>);
    list.forEach((beta, t) => {
      if (typeof beta !== "number" || !(beta >= 0 && beta <= 1)) {
        throw new RangeError(`${where} config trained_betas[${t}] must be a number in [0, 1], got ${String(beta)}`);
      }
    });
    if (list.length !== config.num_train_timesteps) {
      throw new RangeError(
        `${where} config trained_betas has ${list.length} entries but num_train_timesteps is ${config.num_train_timesteps}`,
      );
    }
    config.trained_betas = list;
  }
  if ("thresholding" in defaults) {
    bool("thresholding");
    finite("sample_max_value", true);
    const ratio = config.dynamic_thresholding_ratio;
    if (typeof ratio !== "number" || !(ratio > 0 && ratio <= 1)) {
      throw new RangeError(`${where} config dynamic_thresholding_ratio must be in (0, 1], got ${String(ratio)}`);
    }
  }
  if ("set_alpha_to_one" in defaults) bool("set_alpha_to_one");
  for (const [key, allowed] of Object.entries(rules.enums ?? {})) oneOf(key, allowed, key);
  return config as C;
}

/**
 * Throw unless every timestep `setTimesteps(n)` chose is a training timestep: a `steps_offset` can push the leading
 * spacing's first timestep to T or beyond, which diffusers accepts and fails on only at the first step.
 *
 * 0 <= tau_i + offset <= T - 1
 *
 * @param timesteps the spaced timesteps (offset included)
 * @param numTrainTimesteps T
 * @param stepsOffset the config's `steps_offset`, for the message
 * @throws RangeError naming the offset, the timestep and T
 */
export function checkSpacedTimesteps(
  timesteps: readonly number[],
  numTrainTimesteps: number,
  stepsOffset: number,
): void {
  const largest = Math.max(...timesteps);
  if (largest > numTrainTimesteps - 1) {
    throw new RangeError(
      `steps_offset ${stepsOffset} pushes timestep ${largest} of ${timesteps.length} inference steps past the last training timestep ${
        numTrainTimesteps - 1
      }; use fewer steps or a smaller steps_offset`,
    );
  }
}

/**
 * The betas and alpha-bar table a resolved config describes, float32 as diffusers builds them.
 *
 * alphaBar_t = prod_{s <= t} (1 - beta_s)
 *
 * @param config a resolved config
 * @returns `{ betas, alphasCumprod }`
 */
export function buildSchedule(config: ScheduleConfig): { betas: Float32Array; alphasCumprod: Float32Array } {
  let betas = config.trained_betas !== null ? Float32Array.from(config.trained_betas) : betaSchedule(
    config.beta_schedule,
    { numTrainTimesteps: config.num_train_timesteps, betaStart: config.beta_start, betaEnd: config.beta_end },
  );
  if (config.rescale_betas_zero_snr === true) betas = rescaleZeroTerminalSnr(betas);
  return { betas, alphasCumprod: alphasCumprod(betas) };
}

/**
 * A copy of a config that is safe to hand out (arrays copied).
 *
 * @param config a resolved config
 * @returns a plain snake_case object
 */
export function copyConfig<C extends ScheduleConfig>(config: Readonly<C>): C {
  const copy = { ...config } as C;
  if (config.trained_betas !== null) copy.trained_betas = [...config.trained_betas];
  return copy;
}

/**
 * Throw unless t is an integer training timestep in [0, T).
 *
 * @param timestep t
 * @param numTrainTimesteps T
 * @param name what to call it in the error
 */
export function checkTrainTimestep(timestep: number, numTrainTimesteps: number, name = "timestep"): void {
  if (typeof timestep !== "number" || !Number.isInteger(timestep) || timestep < 0 || timestep >= numTrainTimesteps) {
    throw new RangeError(
      `${name} ${String(timestep)} is not an integer training timestep in [0, ${numTrainTimesteps - 1}]`,
    );
  }
}

/**
 * The position of t in the schedule set by `setTimesteps`, or a clear error naming t and the schedule.
 *
 * @param indexOf each scheduled timestep's position
 * @param timesteps the schedule, in the order the loop visits it
 * @param timestep t
 * @param numTrainTimesteps T
 * @returns the index i with timesteps[i] = t
 */
export function scheduleIndex(
  indexOf: ReadonlyMap<number, number>,
  timesteps: readonly number[],
  timestep: number,
  numTrainTimesteps: number,
): number {
  const index = indexOf.get(timestep);
  if (index === undefined) {
    checkTrainTimestep(timestep, numTrainTimesteps);
    throw new RangeError(
      `timestep ${timestep} is not in the schedule set by setTimesteps (${timesteps.length} steps: ` +
        `${timesteps.slice(0, 4).join(", ")}${timesteps.length > 4 ? ", ..." : ""})`,
    );
  }
  return index;
}

/**
 * Check a custom timestep list: integers in [0, T), strictly monotone in the given direction.
 *
 * @param timesteps the list
 * @param numTrainTimesteps T
 * @param order "descending" for samplers, "ascending" for inversion
 * @returns a copy of the list
 */
export function checkCustomTimesteps(
  timesteps: readonly number[],
  numTrainTimesteps: number,
  order: "descending" | "ascending",
): number[] {
  if (!Array.isArray(timesteps) || timesteps.length === 0) {
    throw new RangeError(`Custom timesteps must be a non-empty array of integers, got ${String(timesteps)}`);
  }
  timesteps.forEach((t, k) => {
    checkTrainTimestep(t, numTrainTimesteps, `Custom timesteps[${k}] =`);
    if (k > 0 && (order === "descending" ? t >= timesteps[k - 1] : t <= timesteps[k - 1])) {
      throw new RangeError(
        `Custom timesteps must be strictly ${order}: timesteps[${k - 1}] = ${timesteps[k - 1]}, timesteps[${k}] = ${t}`,
      );
    }
  });
  return [...timesteps];
}

/**
 * Per-batch-item timesteps for `addNoise` and `getVelocity`: one for all, or one per batch item.
 *
 * @param timesteps a number or a list of length 1 or batch
 * @param batch the batch size (the first dimension)
 * @param numTrainTimesteps T
 * @returns one timestep per batch item
 */
export function perBatchTimesteps(
  timesteps: number | readonly number[],
  batch: number,
  numTrainTimesteps: number,
): number[] {
  const list = typeof timesteps === "number" ? [timesteps] : [...timesteps];
  if (list.length !== 1 && list.length !== batch) {
    throw new RangeError(`Got ${list.length} timesteps for a batch of ${batch}; pass one, or one per batch item`);
  }
  list.forEach((t) => checkTrainTimestep(t, numTrainTimesteps));
  return list.length === 1 ? new Array<number>(batch).fill(list[0]) : list;
}

/**
 * The forward process in closed form (DDIM eq. (4); Ho et al. 2020 eq. (4)), or the velocity, per batch item.
 *
 * x_t = sqrt(alphaBar_t) x0 + sqrt(1 - alphaBar_t) eps; v = sqrt(alphaBar_t) eps - sqrt(1 - alphaBar_t) x0
 *
 * @param alphaBar the alpha-bar table
 * @param a x0 for `addNoise`, eps for the velocity
 * @param b eps for `addNoise`, x0 for the velocity
 * @param timesteps one per batch item, or one for all
 * @param sign +1 for `addNoise`, -1 for the velocity
 * @param names the two tensors' names, for errors
 * @returns sqrt(alphaBar) a + sign sqrt(1 - alphaBar) b
 */
export function mixWithAlphaBar(
  alphaBar: Float32Array,
  a: Tensor,
  b: Tensor,
  timesteps: number | readonly number[],
  sign: 1 | -1,
  names: readonly [string, string],
): Tensor {
  assertSameShape(a, b, names);
  const batch = a.shape.length > 0 ? a.shape[0] : 1;
  const perItem = perBatchTimesteps(timesteps, batch, alphaBar.length);
  const out = new Float32Array(a.size);
  const itemSize = batch > 0 ? a.size / batch : 0;
  for (let item = 0; item < batch; item++) {
    const alphaBarT = alphaBar[perItem[item]];
    const sqrtAlphaBar = Math.fround(Math.sqrt(alphaBarT));
    const sqrtOneMinusAlphaBar = sign * Math.fround(Math.sqrt(Math.fround(1 - alphaBarT)));
    const start = item * itemSize;
    const end = start + itemSize;
    const aData = a.data;
    const bData = b.data;
    for (let i = start; i < end; i++) out[i] = sqrtAlphaBar * aData[i] + sqrtOneMinusAlphaBar * bData[i];
  }
  return new Tensor(out, a.shape);
}

/**
 * Dynamic thresholding (Imagen, arXiv 2205.11487), in place per batch item, as diffusers' `_threshold_sample`.
 *
 * s = clamp(quantile(|x0|, ratio), 1, sample_max_value); x0 = clamp(x0, -s, s) / s
 *
 * @param data x0, batch-first, modified in place
 * @param batch the batch size
 * @param ratio the quantile
 * @param maxValue the largest s
 */
export function thresholdInPlace(data: Float32Array, batch: number, ratio: number, maxValue: number): void {
  const f32 = Math.fround;
  const itemSize = data.length / batch;
  const sorted = new Float32Array(itemSize);
  // torch.quantile, linear interpolation, in float32
  const rank = f32(f32(ratio) * (itemSize - 1));
  const below = Math.floor(rank);
  const above = Math.ceil(rank);
  const weight = f32(rank - below);
  for (let item = 0; item < batch; item++) {
    const start = item * itemSize;
    for (let i = 0; i < itemSize; i++) sorted[i] = Math.abs(data[start + i]);
    sorted.sort();
    const low = sorted[below];
    const high = sorted[above];
    const quantile = weight < 0.5
      ? f32(low + f32(weight * f32(high - low)))
      : f32(high - f32(f32(high - low) * f32(1 - weight)));
    const s = Math.min(Math.max(quantile, 1), f32(maxValue));
    for (let i = start; i < start + itemSize; i++) {
      const x = data[i];
      data[i] = (x > s ? s : x < -s ? -s : x) / s;
    }
  }
}

/**
 * Throw a clear error about the first non-finite element of the step's inputs, or of its output if they are finite.
 *
 * @param tensors the inputs with their names
 * @param output the step's result
 */
export function reportNonFinite(tensors: ReadonlyArray<readonly [Tensor | undefined, string]>, output: Tensor): never {
  for (const [tensor, name] of tensors) if (tensor !== undefined) assertFinite(tensor, name);
  assertFinite(output, "prevSample (from finite inputs)");
  throw new RangeError("step produced a non-finite value");
}

/**
 * Throw unless the model output has the sample's shape (or `channelFactor` times its channels).
 *
 * @param modelOutput the model's prediction
 * @param sample x_t
 * @param channelFactor 2 when a learned variance is concatenated on dim 1
 */
export function checkModelOutputShape(modelOutput: Tensor, sample: Tensor, channelFactor = 1): void {
  if (!(modelOutput instanceof Tensor) || !(sample instanceof Tensor)) {
    throw new TypeError("modelOutput and sample must be Tensors");
  }
  if (channelFactor === 1) {
    assertSameShape(modelOutput, sample, ["modelOutput", "sample"]);
    return;
  }
  const expected = [...sample.shape];
  expected[1] *= channelFactor;
  const ok = modelOutput.shape.length === expected.length && expected.every((d, i) => d === modelOutput.shape[i]);
  if (!ok) {
    throw new RangeError(
      `modelOutput has shape [${modelOutput.shape.join(", ")}] but a learned variance needs [${expected.join(", ")}] ` +
        `(the sample's channels times ${channelFactor})`,
    );
  }
}
