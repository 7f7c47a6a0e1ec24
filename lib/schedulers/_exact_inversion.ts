/**
 * Private helpers shared by the exactly invertible samplers (lib/schedulers/edict.ts, lib/schedulers/bdia.ts): the DDIM step written as an
 * affine map, the noise recovered from any prediction type, the state arrays in float32 or float64, and the checks of
 * the samplers' parameters.
 *
 * | paper                                   | code                       | meaning                                      |
 * |-----------------------------------------|----------------------------|----------------------------------------------|
 * | x_s = a x_t + b eps (DDIM, eta = 0)     | `ddimAffine(from, to)`     | eq. (12) of the DDIM paper as a, b           |
 * | a = sqrt(alphaBar_s / alphaBar_t)       | `a`                        | the scale of x_t                             |
 * | b = sqrt(1 - alphaBar_s) - a sqrt(1 - alphaBar_t) | `b`              | the weight of eps                            |
 * | eps = u x + v m                         | `epsilonForm`              | eps from the model output m at input x       |
 *
 * @module
 */
import { DDIMScheduler, type DDIMSchedulerConfig } from "./ddim.ts";
import { type PredictionForm, predictionForm } from "./_kernels.ts";
import type { DenoisingModel } from "../core/model.ts";
import { Tensor } from "../core/tensor.ts";
import type { SamplingStep } from "./scheduler.ts";

/** A sampler's state: float32 (as the schedulers store tensors) or float64 (to see the float32 rounding's share). */
export type StateArray = Float32Array | Float64Array;

/** The precision a state is held in. */
export type StatePrecision = "float32" | "float64";

/** The DDIM step from alphaBar_t to alphaBar_s with sigma = 0, as x_s = a x_t + b eps. */
export interface AffineStep {
  /** a = sqrt(alphaBar_s / alphaBar_t). */
  a: number;
  /** b = sqrt(1 - alphaBar_s) - sqrt(alphaBar_s (1 - alphaBar_t) / alphaBar_t). */
  b: number;
}

/**
 * Eq. (12) of the DDIM paper with sigma = 0 as an affine map, in float64: x_s = a x_t + b eps.
 * With predX0 = (x_t - sqrt(1 - alphaBar_t) eps) / sqrt(alphaBar_t), x_s = sqrt(alphaBar_s) predX0 + sqrt(1 - alphaBar_s) eps.
 */
export function ddimAffine(alphaBarFrom: number, alphaBarTo: number): AffineStep {
  const a = Math.sqrt(alphaBarTo / alphaBarFrom);
  const b = Math.sqrt(1 - alphaBarTo) - a * Math.sqrt(1 - alphaBarFrom);
  return { a, b };
}

/**
 * eps and predX0 from the model output for each `prediction_type`, in float64 (the shared `predictionForm`).
 *
 * @param predictionType what the model predicts
 * @param alphaBar alphaBar_t
 * @returns the linear forms of eps and predX0 in (x, m)
 */
export function epsilonForm(predictionType: string, alphaBar: number): PredictionForm {
  return predictionForm(predictionType, Math.sqrt(alphaBar), Math.sqrt(1 - alphaBar));
}

/** The DDIM schedule an exact sampler runs on: timesteps (descending) and alphaBar per timestep and at the end. */
export class ExactSchedule {
  /** The DDIM scheduler that resolves the config and the timesteps. */
  readonly ddim: DDIMScheduler;

  /**
   * @param config a diffusers scheduler config; `clip_sample` and `thresholding` are turned off, since a clipped x0
   *   is not part of the ODE and breaks the exact inverse
   * @param scheduler the sampler's name, for errors
   */
  constructor(config: Record<string, unknown>, readonly scheduler: string) {
    this.ddim = DDIMScheduler.fromConfig({ ...config, clip_sample: false, thresholding: false });
  }

  /** The timesteps, descending, once set. */
  get timesteps(): readonly number[] {
    return this.ddim.timesteps;
  }

  /** The index of a timestep in the schedule, or a RangeError naming it. */
  index(timestep: number): number {
    if (this.ddim.numInferenceSteps === null) {
      throw new RangeError(`Call setTimesteps(n) before stepping: the ${this.scheduler} schedule is not set`);
    }
    const index = this.timesteps.indexOf(timestep);
    if (index < 0) {
      throw new RangeError(
        `Timestep ${timestep} is not in the ${this.scheduler} schedule [${this.timesteps.join(", ")}]`,
      );
    }
    return index;
  }

  /** alphaBar at schedule index k, where k = timesteps.length is the clean end (1 with `set_alpha_to_one`). */
  alphaBarAt(index: number): number {
    const alphaBar = index < this.timesteps.length
      ? this.ddim.alphasCumprod[this.timesteps[index]]
      : this.ddim.finalAlphaCumprod;
    if (!(alphaBar > 0)) {
      throw new RangeError(
        `${this.scheduler} needs alphaBar > 0 at every timestep, but it is ${alphaBar} at timestep ${
          this.timesteps[index]
        }`,
      );
    }
    return alphaBar;
  }
}

/** The config an exact sampler takes: a diffusers scheduler config (any scheduler's; read as DDIM's). */
export type ExactSchedulerConfig = Partial<DDIMSchedulerConfig> | Record<string, unknown>;

/** A new state array of the given precision. */
export function allocate(precision: StatePrecision, size: number): StateArray {
  return precision === "float64" ? new Float64Array(size) : new Float32Array(size);
}

/** The precision of a state array. */
export function precisionOf(state: StateArray): StatePrecision {
  return state instanceof Float64Array ? "float64" : "float32";
}

/** Refuse a precision other than float32 and float64. */
export function checkPrecision(precision: unknown): StatePrecision {
  if (precision !== "float32" && precision !== "float64") {
    throw new RangeError(`precision must be "float32" or "float64", got ${JSON.stringify(precision)}`);
  }
  return precision;
}

/** Refuse state arrays that are not float arrays of the shape's size, or that differ in precision. */
export function checkStateArrays(arrays: readonly StateArray[], shape: readonly number[], what: string): void {
  const size = shape.reduce((n, d) => n * d, 1);
  for (const array of arrays) {
    if (!(array instanceof Float32Array || array instanceof Float64Array)) {
      throw new TypeError(`The ${what} state must hold Float32Array or Float64Array data`);
    }
    if (array.length !== size) {
      throw new RangeError(
        `The ${what} state has ${array.length} values but its shape [${shape.join(", ")}] holds ${size}`,
      );
    }
    if (array.constructor !== arrays[0].constructor) {
      throw new RangeError(`The ${what} state mixes float32 and float64 arrays`);
    }
  }
}

/** The model's prediction at a state: the state rounded to a float32 tensor (the model's input), and its output. */
export async function predictAt(
  model: DenoisingModel,
  state: StateArray,
  shape: readonly number[],
  timestep: number,
): Promise<{ input: Float32Array; output: Float32Array }> {
  const input = state instanceof Float32Array ? state : Float32Array.from(state);
  const output = await model.predict(new Tensor(input, shape), timestep);
  if (output.size !== input.length) {
    throw new RangeError(
      `The model returned shape [${output.shape.join(", ")}] for an input of shape [${shape.join(", ")}]`,
    );
  }
  for (let k = 0; k < output.size; k++) {
    if (!Number.isFinite(output.data[k])) {
      throw new RangeError(`The model output at timestep ${timestep} is not finite: element ${k} is ${output.data[k]}`);
    }
  }
  return { input, output: output.data };
}

/** predX0 = x0FromSample x + x0FromOutput m, as a float32 tensor. */
export function predictedX0(
  form: PredictionForm,
  input: Float32Array,
  output: Float32Array,
  shape: readonly number[],
): Tensor {
  const out = new Float32Array(input.length);
  for (let k = 0; k < out.length; k++) out[k] = form.x0FromSample * input[k] + form.x0FromOutput * output[k];
  return new Tensor(out, shape);
}

/** A state as a float32 tensor (a copy). */
export function stateTensor(state: StateArray, shape: readonly number[]): Tensor {
  return new Tensor(Float32Array.from(state), shape);
}

/** Refuse a non-finite result, naming the step. */
export function checkFinite(state: StateArray, what: string): void {
  for (let k = 0; k < state.length; k++) {
    if (!Number.isFinite(state[k])) throw new RangeError(`${what} is not finite: element ${k} is ${state[k]}`);
  }
}

/**
 * What the EDICT and BDIA schedulers share: the DDIM schedule they step on, its config and its timesteps. Each
 * subclass adds its own coefficient tables in `setTimesteps` and its own steps.
 */
export abstract class ExactSchedulerBase {
  /** The resolved DDIM config (snake_case), with clipping and thresholding off. */
  readonly config: Readonly<DDIMSchedulerConfig>;
  /** alpha-bar_t, float32, length T. */
  readonly alphasCumprod: Float32Array;
  /** The DDIM schedule underneath. */
  protected readonly schedule: ExactSchedule;

  /**
   * @param config a diffusers scheduler config (any scheduler's; read as DDIM's)
   * @param name the sampler's name, for errors
   */
  constructor(config: ExactSchedulerConfig, name: string) {
    this.schedule = new ExactSchedule({ ...config }, name);
    this.config = this.schedule.ddim.config;
    this.alphasCumprod = this.schedule.ddim.alphasCumprod;
  }

  /**
   * Build the sampler from a diffusers config and its own options, as `new` does (diffusers' `from_config` name).
   *
   * @param config `scheduler_config.json` as an object (any scheduler's; read as DDIM's)
   * @param options the sampler's own parameters (EDICT's p, BDIA's gamma)
   * @returns a new scheduler of the class it is called on
   * @example
   * ```ts
   * import { BDIAScheduler, EDICTScheduler } from "../../mod.ts";
   * const edict = EDICTScheduler.fromConfig({ num_train_timesteps: 1000 }, { p: 0.9 });
   * const bdia = BDIAScheduler.fromConfig({}, { gamma: 0.5 });
   * if (edict.p !== 0.9 || bdia.gamma !== 0.5) throw new Error("the options reach the constructor");
   * ```
   */
  static fromConfig<Instance, Options>(
    this: new (config?: ExactSchedulerConfig, options?: Options) => Instance,
    config: ExactSchedulerConfig = {},
    options?: Options,
  ): Instance {
    return new this(config, options);
  }

  /**
   * The config in diffusers' snake_case form.
   *
   * @returns a fresh object that `fromConfig` accepts
   * @example
   * ```ts
   * import { EDICTScheduler } from "../../mod.ts";
   * // clipping is off whatever the config says: the exact inverses need the pure ODE
   * if (EDICTScheduler.fromConfig({ clip_sample: true }).toConfig().clip_sample !== false) throw new Error("clip");
   * ```
   */
  toConfig(): DDIMSchedulerConfig {
    return this.schedule.ddim.toConfig();
  }

  /** S, once `setTimesteps` was called. */
  get numInferenceSteps(): number | null {
    return this.schedule.ddim.numInferenceSteps;
  }

  /** The timesteps of the schedule, descending (the order of sampling). */
  get timesteps(): readonly number[] {
    return this.schedule.timesteps;
  }

  /**
   * Choose the S timesteps (the config's `timestep_spacing`, as DDIM), or take a custom descending list, then build
   * the sampler's coefficient tables for them.
   *
   * tau = spacing(S, T), descending
   *
   * @param numInferenceSteps S, or a strictly descending list of training timesteps
   * @throws RangeError when S is not in [1, T] or the list is not strictly descending in [0, T)
   * @example
   * ```ts
   * import { EDICTScheduler } from "../../mod.ts";
   * const scheduler = EDICTScheduler.fromConfig({});
   * scheduler.setTimesteps(50);
   * if (scheduler.timesteps[0] !== 980 || scheduler.timesteps.length !== 50) throw new Error("DDIM's leading spacing");
   * ```
   */
  setTimesteps(numInferenceSteps: number | readonly number[]): void {
    this.schedule.ddim.setTimesteps(numInferenceSteps);
    this.buildTables();
  }

  /** Compute the sampler's per-timestep coefficients for the schedule just set. */
  protected abstract buildTables(): void;

  /**
   * One record per schedule entry k, built from k and alphaBar at that entry (float64).
   *
   * @param build the record at entry k
   * @returns the table, in the order of `timesteps`
   */
  protected tableOf<Row>(build: (k: number, alphaBar: number) => Row): Row[] {
    return Array.from({ length: this.timesteps.length }, (_, k) => build(k, this.schedule.alphaBarAt(k)));
  }
}

/**
 * The loop every exact sampler runs: one step per (i, t), each yielding `{ i, t, x, predX0, state }`, and the last
 * state as the return value.
 *
 * @param entries the step indices and the timesteps of their model calls, in the order the loop takes them
 * @param state the starting state
 * @param step one step of the sampler: the next state and the predicted x0
 * @param sampleOf the state's sample, as a float32 tensor (the `x` of each yielded step)
 */
export async function* exactLoop<State>(
  entries: Iterable<readonly [number, number]>,
  state: State,
  step: (t: number, state: State) => Promise<State & { predX0: Tensor }> | (State & { predX0: Tensor }),
  sampleOf: (state: State) => Tensor,
): AsyncGenerator<SamplingStep & { readonly state: State }, State> {
  for (const [i, t] of entries) {
    const { predX0, ...next } = await step(t, state);
    state = next as unknown as State;
    yield { i, t, x: sampleOf(state), predX0, state };
  }
  return state;
}
