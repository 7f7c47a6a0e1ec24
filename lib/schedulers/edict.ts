/**
 * EDICT, Exact Diffusion Inversion via Coupled Transformations (Wallace, Gokul and Naik 2022, arXiv 2211.12446):
 * two coupled copies (x, y) of the DDIM state, each updated with the noise predicted at the other, then mixed with
 * a weight p. Every sub-step is an affine coupling (it changes one copy by a function of the other), so the whole step
 * can be undone in closed form: inversion runs the same model calls backwards and gives the image back up to float
 * rounding. Two model calls per step.
 *
 * | paper                         | code              | meaning                                                    |
 * |-------------------------------|-------------------|------------------------------------------------------------|
 * | x_t, y_t                      | `state.x`, `.y`   | the coupled pair at timestep t (x_T = y_T for sampling)    |
 * | a_t = sqrt(alphaBar_{t-1} / alphaBar_t) | `a`     | DDIM's scale of x_t (eq. 12 of the DDIM paper, sigma = 0)  |
 * | b_t = sqrt(1 - alphaBar_{t-1}) - a_t sqrt(1 - alphaBar_t) | `b` | DDIM's weight of eps                      |
 * | eps(y_t, t)                   | `epsOfY`          | the noise predicted at y_t                                 |
 * | x^inter_t, y^inter_t          | `xInter`, `yInter`| the two DDIM half-steps before mixing                      |
 * | p                             | `p`               | the mixing weight of the averaging layers (0.93 in EDICT)  |
 *
 * Denoising step t -> t-1 (EDICT's update, numbered here E1-E4):
 *   E1  x^inter = a_t x_t + b_t eps(y_t, t)
 *   E2  y^inter = a_t y_t + b_t eps(x^inter, t)
 *   E3  x_{t-1} = p x^inter + (1 - p) y^inter
 *   E4  y_{t-1} = p y^inter + (1 - p) x_{t-1}
 * Inversion step t-1 -> t undoes E4, E3, E2, E1 in that order, each in closed form (E4' ... E1' below).
 *
 * The loops hold x and y in float32 (as a diffusers scheduler would) or in float64; the model always sees its input
 * rounded to float32. EDICT's "leapfrog" variant (swapping the roles of x and y every step) is not implemented.
 *
 * @module
 */
import type { DDIMSchedulerConfig } from "./ddim.ts";
import type { DenoisingModel } from "../core/model.ts";
import type { SamplingStep } from "./scheduler.ts";
import { Tensor } from "../core/tensor.ts";
import {
  type AffineStep,
  allocate,
  checkFinite,
  checkPrecision,
  checkStateArrays,
  ddimAffine,
  type EpsilonForm,
  epsilonForm,
  ExactSchedulerBase,
  precisionOf,
  predictAt,
  predictedX0,
  type StateArray,
  type StatePrecision,
  stateTensor,
} from "./_exact_inversion.ts";

export type { StateArray, StatePrecision } from "./_exact_inversion.ts";

/** EDICT's mixing weight p in the paper's experiments (Wallace et al. 2022). */
export const EDICT_DEFAULT_P = 0.93;

/** EDICT's state: the coupled pair (x, y), each a flat array over `shape`, both float32 or both float64. */
export interface EDICTState {
  /** x_t, the sequence whose value is the result (E3). */
  x: StateArray;
  /** y_t, its partner (E4). */
  y: StateArray;
  /** The NCHW shape both arrays hold. */
  shape: readonly number[];
}

/** What one EDICT step returns: the new pair and the predicted x0 at the step's first model input. */
export interface EDICTStepOutput extends EDICTState {
  /** predX0 (DDIM eq. 9) of the first model call of the step: at y_t when denoising, at x^inter when inverting. */
  predX0: Tensor;
}

/** Options of the `EDICTScheduler` constructor. */
export interface EDICTSchedulerOptions {
  /** The mixing weight p of E3-E4, in (0, 1) (default 0.93, the paper's). */
  p?: number;
}

/**
 * Refuse a mixing weight p outside (0, 1): the inverse divides by p, and p = 1 leaves x and y uncoupled.
 *
 * 0 < p < 1
 *
 * @param p the value to check
 * @returns p
 * @throws RangeError naming p otherwise
 * @example
 * ```ts
 * import { checkEdictP } from "../../mod.ts";
 * checkEdictP(0.93);
 * ```
 */
export function checkEdictP(p: number): number {
  if (typeof p !== "number" || !(p > 0 && p < 1)) {
    throw new RangeError(`EDICT's mixing weight p must be in (0, 1) (the paper uses 0.93), got ${p}`);
  }
  return p;
}

/** Per-step constants, computed once per timestep in float64. */
interface EDICTCoefficients extends AffineStep, EpsilonForm {
  alphaBar: number;
  alphaBarPrev: number;
}

/**
 * The EDICT scheduler: the DDIM schedule of a diffusers config with EDICT's coupled denoising and inversion steps.
 *
 * x^inter = a x + b eps(y); y^inter = a y + b eps(x^inter); x' = p x^inter + (1 - p) y^inter; y' = p y^inter + (1 - p) x'
 *
 * Unlike the DDIM scheduler's `step(modelOutput, ...)`, an EDICT step needs the model between its half-steps, so
 * `denoiseStep` and `inverseStep` take the model. `clip_sample` and `thresholding` are always off (a clipped x0 is
 * not part of the ODE and breaks the exact inverse).
 *
 * @example
 * ```ts
 * import { EDICTScheduler, edictState, modelFromFunction, Tensor } from "../../mod.ts";
 * const model = modelFromFunction((x) => Tensor.zeros(x.shape), { sampleSize: 4, inChannels: 1 });
 * const scheduler = EDICTScheduler.fromConfig({}, { p: 0.93 });
 * scheduler.setTimesteps(10);
 * const start = edictState(Tensor.zeros([1, 1, 4, 4]));
 * const next = await scheduler.denoiseStep(model, scheduler.timesteps[0], start);
 * ```
 */
export class EDICTScheduler extends ExactSchedulerBase {
  /** The mixing weight p. */
  readonly p: number;
  #coefficients: EDICTCoefficients[] = [];

  /**
   * Build the scheduler from a diffusers config (any scheduler's; read as DDIM's) and EDICT's p.
   *
   * @param config `scheduler_config.json` as an object
   * @param options `p` (default 0.93)
   * @throws RangeError for p outside (0, 1) or a bad config value
   */
  constructor(
    config: Partial<DDIMSchedulerConfig> | Record<string, unknown> = {},
    options: EDICTSchedulerOptions = {},
  ) {
    const p = checkEdictP(options.p ?? EDICT_DEFAULT_P);
    super(config, "EDICT");
    this.p = p;
  }

  /**
   * Build the scheduler from a diffusers config and EDICT's p.
   *
   * @param config the config, snake_case
   * @param options `p` (default 0.93)
   * @returns a new scheduler
   * @example
   * ```ts
   * import { EDICTScheduler } from "../../mod.ts";
   * const scheduler = EDICTScheduler.fromConfig({ num_train_timesteps: 1000 }, { p: 0.9 });
   * ```
   */
  static fromConfig(
    config: Partial<DDIMSchedulerConfig> | Record<string, unknown> = {},
    options: EDICTSchedulerOptions = {},
  ): EDICTScheduler {
    return new EDICTScheduler(config, options);
  }

  /**
   * Choose the S timesteps (the config's `timestep_spacing`, as DDIM), or take a custom descending list.
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
   * ```
   */
  setTimesteps(numInferenceSteps: number | readonly number[]): void {
    this.schedule.ddim.setTimesteps(numInferenceSteps);
    const count = this.timesteps.length;
    this.#coefficients = Array.from({ length: count }, (_, k) => {
      const alphaBar = this.schedule.alphaBarAt(k);
      const alphaBarPrev = this.schedule.alphaBarAt(k + 1);
      return {
        alphaBar,
        alphaBarPrev,
        ...ddimAffine(alphaBar, alphaBarPrev),
        ...epsilonForm(this.config.prediction_type, alphaBar),
      };
    });
  }

  /**
   * One EDICT denoising step from `timestep` to the next entry of the schedule: E1-E4, two model calls.
   *
   * x^inter = a x + b eps(y, t); y^inter = a y + b eps(x^inter, t); x' = p x^inter + (1 - p) y^inter;
   * y' = p y^inter + (1 - p) x'
   *
   * @param model the denoising model
   * @param timestep t, an entry of `timesteps`
   * @param state (x_t, y_t)
   * @returns (x_{t-1}, y_{t-1}), in the state's precision, and the predicted x0 at y_t
   * @throws RangeError for a timestep not in the schedule, a bad state or a non-finite result
   * @example
   * ```ts
   * import { EDICTScheduler, edictState, modelFromFunction, Tensor } from "../../mod.ts";
   * const model = modelFromFunction((x) => Tensor.zeros(x.shape), { sampleSize: 2, inChannels: 1 });
   * const scheduler = EDICTScheduler.fromConfig({});
   * scheduler.setTimesteps(4);
   * const { x, y } = await scheduler.denoiseStep(model, 750, edictState(Tensor.zeros([1, 1, 2, 2])));
   * ```
   */
  async denoiseStep(model: DenoisingModel, timestep: number, state: EDICTState): Promise<EDICTStepOutput> {
    checkEdictState(state);
    const c = this.#coefficients[this.schedule.index(timestep)];
    const { x, y, shape } = state;
    const { a, b, epsFromSample: u, epsFromOutput: v } = c;
    const p = this.p;
    const precision = precisionOf(x);
    const size = x.length;
    // E1. x^inter = a_t x_t + b_t eps(y_t, t)
    const atY = await predictAt(model, y, shape, timestep);
    const xInter = allocate(precision, size);
    for (let k = 0; k < size; k++) xInter[k] = a * x[k] + b * (u * atY.input[k] + v * atY.output[k]);
    // E2. y^inter = a_t y_t + b_t eps(x^inter, t)
    const atX = await predictAt(model, xInter, shape, timestep);
    const yInter = allocate(precision, size);
    for (let k = 0; k < size; k++) yInter[k] = a * y[k] + b * (u * atX.input[k] + v * atX.output[k]);
    // E3. x_{t-1} = p x^inter + (1 - p) y^inter
    const xPrev = allocate(precision, size);
    for (let k = 0; k < size; k++) xPrev[k] = p * xInter[k] + (1 - p) * yInter[k];
    // E4. y_{t-1} = p y^inter + (1 - p) x_{t-1}
    const yPrev = allocate(precision, size);
    for (let k = 0; k < size; k++) yPrev[k] = p * yInter[k] + (1 - p) * xPrev[k];
    checkFinite(xPrev, `EDICT's x after timestep ${timestep}`);
    checkFinite(yPrev, `EDICT's y after timestep ${timestep}`);
    return { x: xPrev, y: yPrev, shape, predX0: predictedX0(c, atY.input, atY.output, shape) };
  }

  /**
   * One EDICT inversion step up to `timestep` from the entry after it: E4-E1 undone in closed form, two model calls.
   *
   * y^inter = (y' - (1 - p) x') / p; x^inter = (x' - (1 - p) y^inter) / p; y = (y^inter - b eps(x^inter, t)) / a;
   * x = (x^inter - b eps(y, t)) / a
   *
   * @param model the denoising model
   * @param timestep t, an entry of `timesteps`: the step lands there
   * @param state (x_{t-1}, y_{t-1}) at the next entry of the schedule (the clean end after the last one)
   * @returns (x_t, y_t) and the predicted x0 at x^inter
   * @throws RangeError for a timestep not in the schedule, a bad state or a non-finite result
   * @example
   * ```ts
   * import { EDICTScheduler, edictState, modelFromFunction, Tensor } from "../../mod.ts";
   * const model = modelFromFunction((x) => Tensor.zeros(x.shape), { sampleSize: 2, inChannels: 1 });
   * const scheduler = EDICTScheduler.fromConfig({});
   * scheduler.setTimesteps(4);
   * const { x } = await scheduler.inverseStep(model, 0, edictState(Tensor.zeros([1, 1, 2, 2])));
   * ```
   */
  async inverseStep(model: DenoisingModel, timestep: number, state: EDICTState): Promise<EDICTStepOutput> {
    checkEdictState(state);
    const c = this.#coefficients[this.schedule.index(timestep)];
    const { x: xPrev, y: yPrev, shape } = state;
    const { a, b, epsFromSample: u, epsFromOutput: v } = c;
    const p = this.p;
    const precision = precisionOf(xPrev);
    const size = xPrev.length;
    // E4'. y^inter = (y_{t-1} - (1 - p) x_{t-1}) / p
    const yInter = allocate(precision, size);
    for (let k = 0; k < size; k++) yInter[k] = (yPrev[k] - (1 - p) * xPrev[k]) / p;
    // E3'. x^inter = (x_{t-1} - (1 - p) y^inter) / p
    const xInter = allocate(precision, size);
    for (let k = 0; k < size; k++) xInter[k] = (xPrev[k] - (1 - p) * yInter[k]) / p;
    // E2'. y_t = (y^inter - b_t eps(x^inter, t)) / a_t
    const atX = await predictAt(model, xInter, shape, timestep);
    const y = allocate(precision, size);
    for (let k = 0; k < size; k++) y[k] = (yInter[k] - b * (u * atX.input[k] + v * atX.output[k])) / a;
    // E1'. x_t = (x^inter - b_t eps(y_t, t)) / a_t
    const atY = await predictAt(model, y, shape, timestep);
    const x = allocate(precision, size);
    for (let k = 0; k < size; k++) x[k] = (xInter[k] - b * (u * atY.input[k] + v * atY.output[k])) / a;
    checkFinite(x, `EDICT's inverted x at timestep ${timestep}`);
    checkFinite(y, `EDICT's inverted y at timestep ${timestep}`);
    return { x, y, shape, predX0: predictedX0(c, atX.input, atX.output, shape) };
  }
}

/**
 * EDICT's starting pair from one tensor: x = y = the tensor (x_T for sampling, the image x_0 for inversion).
 *
 * (x, y) = (x_0, x_0) or (x_T, x_T)
 *
 * @param sample the image or the noise, NCHW
 * @param options `precision`: "float32" (default) or "float64"
 * @returns a fresh pair
 * @example
 * ```ts
 * import { edictState, Tensor } from "../../mod.ts";
 * const { x, y } = edictState(Tensor.zeros([1, 3, 8, 8]), { precision: "float64" });
 * ```
 */
export function edictState(sample: Tensor, options: { precision?: StatePrecision } = {}): EDICTState {
  if (!(sample instanceof Tensor)) throw new TypeError("edictState takes a Tensor");
  const precision = checkPrecision(options.precision ?? "float32");
  const x = allocate(precision, sample.size);
  x.set(sample.data);
  const y = allocate(precision, sample.size);
  y.set(sample.data);
  return { x, y, shape: [...sample.shape] };
}

/** One step of an EDICT loop: the shared `{ i, t, x, predX0 }` plus the whole pair. */
export interface EDICTLoopStep extends SamplingStep {
  /** The pair after the step, in its precision. */
  readonly state: EDICTState;
}

/**
 * The EDICT sampling loop as a generator: a denoising step (E1-E4) at every timestep of the schedule.
 *
 * for t in timesteps (descending): (x, y) <- EDICT step; yield { i, t, x, predX0 }
 *
 * @param model the denoising model
 * @param scheduler an EDICT scheduler with `setTimesteps` called
 * @param options `state`: the starting pair (x_T, y_T) (from `edictState(xT)` when sampling from noise)
 * @returns an async generator of steps whose return value is the final pair (x_0, y_0)
 * @example
 * ```ts
 * import { EDICTScheduler, edictSamplingLoop, edictState, modelFromFunction, Tensor } from "../../mod.ts";
 * const model = modelFromFunction((x) => Tensor.zeros(x.shape), { sampleSize: 4, inChannels: 1 });
 * const scheduler = EDICTScheduler.fromConfig({});
 * scheduler.setTimesteps(10);
 * for await (const { i, t } of edictSamplingLoop(model, scheduler, { state: edictState(Tensor.zeros([1, 1, 4, 4])) })) {
 *   console.log(i, t);
 * }
 * ```
 */
export async function* edictSamplingLoop(
  model: DenoisingModel,
  scheduler: EDICTScheduler,
  options: { state: EDICTState },
): AsyncGenerator<EDICTLoopStep, EDICTState> {
  let state: EDICTState = options.state;
  checkEdictState(state);
  for (const [i, t] of scheduler.timesteps.entries()) {
    const { predX0, ...next } = await scheduler.denoiseStep(model, t, state);
    state = next;
    yield { i, t, x: stateTensor(state.x, state.shape), predX0, state };
  }
  return state;
}

/**
 * The EDICT inversion loop as a generator: an inversion step at every timestep, ascending, from the image's pair.
 *
 * for t in reversed(timesteps): (x, y) <- EDICT inverse step; yield { i, t, x, predX0 }
 *
 * @param model the denoising model
 * @param scheduler an EDICT scheduler with `setTimesteps` called
 * @param options `state`: the image's pair (from `edictState(image)`)
 * @returns an async generator of steps whose return value is the latent pair (x_T, y_T)
 * @example
 * ```ts
 * import { EDICTScheduler, edictInversionLoop, edictState, modelFromFunction, Tensor } from "../../mod.ts";
 * const model = modelFromFunction((x) => Tensor.zeros(x.shape), { sampleSize: 4, inChannels: 1 });
 * const scheduler = EDICTScheduler.fromConfig({});
 * scheduler.setTimesteps(10);
 * const loop = edictInversionLoop(model, scheduler, { state: edictState(Tensor.zeros([1, 1, 4, 4])) });
 * for await (const step of loop) console.log(step.t);
 * ```
 */
export async function* edictInversionLoop(
  model: DenoisingModel,
  scheduler: EDICTScheduler,
  options: { state: EDICTState },
): AsyncGenerator<EDICTLoopStep, EDICTState> {
  let state: EDICTState = options.state;
  checkEdictState(state);
  const ascending = [...scheduler.timesteps].reverse();
  for (const [i, t] of ascending.entries()) {
    const { predX0, ...next } = await scheduler.inverseStep(model, t, state);
    state = next;
    yield { i, t, x: stateTensor(state.x, state.shape), predX0, state };
  }
  return state;
}

function checkEdictState(state: EDICTState): void {
  if (state === null || typeof state !== "object" || !Array.isArray(state.shape)) {
    throw new TypeError("An EDICT state is { x, y, shape } (see edictState)");
  }
  checkStateArrays([state.x, state.y], state.shape, "EDICT");
}
