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
 * | a_t = sqrt(alphaBar_{t-1} / alphaBar_t) | `a`     | DDIM's scale of x_t (DDIM eq. (12), sigma = 0)    |
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
import type { DenoisingModel } from "../core/model.ts";
import type { SamplingStep } from "./scheduler.ts";
import { Tensor } from "../core/tensor.ts";
import { ExactSchedulerBase } from "./_exact_inversion.ts";
import type { AffineStep, ExactSchedulerConfig, StateArray, StatePrecision } from "./_exact_inversion.ts";
import * as exact from "./_exact_inversion.ts";
import type { PredictionForm } from "./_kernels.ts";

export type { StateArray, StatePrecision } from "./_exact_inversion.ts";

/**
 * EDICT's mixing weight p in the paper's experiments (Wallace et al. 2022).
 *
 * @example
 * ```ts
 * import { EDICT_DEFAULT_P, EDICTScheduler } from "../../mod.ts";
 * // Wallace, Gokul and Naik 2022 (EDICT, arXiv 2211.12446) mix with p = 0.93; a scheduler built without p uses it
 * if (EDICT_DEFAULT_P !== 0.93) throw new Error(`EDICT_DEFAULT_P is ${EDICT_DEFAULT_P}`);
 * if (EDICTScheduler.fromConfig({}).p !== 0.93) throw new Error("the default p is not the paper's 0.93");
 * ```
 */
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
  /** predX0 (DDIM eq. (9)) of the first model call of the step: at y_t when denoising, at x^inter when inverting. */
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
 * if (checkEdictP(0.93) !== 0.93) throw new Error("a p in (0, 1) is returned");
 * let refused = false;
 * try {
 *   checkEdictP(1);
 * } catch {
 *   refused = true;
 * }
 * if (!refused) throw new Error("p = 1 leaves x and y uncoupled and must be refused");
 * ```
 */
export function checkEdictP(p: number): number {
  if (typeof p !== "number" || !(p > 0 && p < 1)) {
    throw new RangeError(`EDICT's mixing weight p must be in (0, 1) (the paper uses 0.93), got ${p}`);
  }
  return p;
}

/** Per-step constants, computed once per timestep in float64. */
interface EDICTCoefficients extends AffineStep, PredictionForm {
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
 * const start = edictState(Tensor.from(new Array(16).fill(1), [1, 1, 4, 4]));
 * const next = await scheduler.denoiseStep(model, scheduler.timesteps[0], start);
 * // eps = 0 and x = y: both half-steps scale by a = sqrt(alphaBar_800 / alphaBar_900), and the mixing keeps x = y
 * const a = Math.sqrt(scheduler.alphasCumprod[800] / scheduler.alphasCumprod[900]);
 * if (Math.abs(next.x[0] - a) > 1e-5 * a || next.x[0] !== next.y[0]) throw new Error(`got ${next.x[0]}`);
 * ```
 */
export class EDICTScheduler extends ExactSchedulerBase {
  /** The mixing weight p. */
  readonly p: number;
  #coefficients: EDICTCoefficients[] = [];

  /**
   * Build the scheduler from a diffusers config and EDICT's mixing weight p.
   *
   * @param config `scheduler_config.json` as an object
   * @param options `p` (default 0.93)
   * @throws RangeError for p outside (0, 1) or a bad config value
   */
  constructor(config: ExactSchedulerConfig = {}, options: EDICTSchedulerOptions = {}) {
    const p = checkEdictP(options.p ?? EDICT_DEFAULT_P);
    super(config, "EDICT");
    this.p = p;
  }

  /** EDICT's coefficients at every timestep of the schedule just set, in float64. */
  protected buildTables(): void {
    this.#coefficients = this.tableOf((k, alphaBar) => {
      const alphaBarPrev = this.schedule.alphaBarAt(k + 1);
      const form = exact.epsilonForm(this.config.prediction_type, alphaBar);
      return { alphaBar, alphaBarPrev, ...exact.ddimAffine(alphaBar, alphaBarPrev), ...form };
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
   * const { x, y } = await scheduler.denoiseStep(model, 750, edictState(Tensor.from([1, 2, 3, 4], [1, 1, 2, 2])));
   * const a = Math.sqrt(scheduler.alphasCumprod[500] / scheduler.alphasCumprod[750]); // E1-E4 with eps = 0
   * if (Math.abs(x[3] - 4 * a) > 1e-5 || Math.abs(y[3] - 4 * a) > 1e-5) throw new Error(`got ${x[3]}, ${y[3]}`);
   * ```
   */
  async denoiseStep(model: DenoisingModel, timestep: number, state: EDICTState): Promise<EDICTStepOutput> {
    checkEdictState(state);
    const c = this.#coefficients[this.schedule.index(timestep)];
    const { x, y, shape } = state;
    const { a, b, epsFromSample: u, epsFromOutput: v } = c;
    const p = this.p;
    const precision = exact.precisionOf(x);
    const size = x.length;
    // E1. x^inter = a_t x_t + b_t eps(y_t, t)
    const atY = await exact.predictAt(model, y, shape, timestep);
    const xInter = exact.allocate(precision, size);
    for (let k = 0; k < size; k++) xInter[k] = a * x[k] + b * (u * atY.input[k] + v * atY.output[k]);
    // E2. y^inter = a_t y_t + b_t eps(x^inter, t)
    const atX = await exact.predictAt(model, xInter, shape, timestep);
    const yInter = exact.allocate(precision, size);
    for (let k = 0; k < size; k++) yInter[k] = a * y[k] + b * (u * atX.input[k] + v * atX.output[k]);
    // E3. x_{t-1} = p x^inter + (1 - p) y^inter
    const xPrev = exact.allocate(precision, size);
    for (let k = 0; k < size; k++) xPrev[k] = p * xInter[k] + (1 - p) * yInter[k];
    // E4. y_{t-1} = p y^inter + (1 - p) x_{t-1}
    const yPrev = exact.allocate(precision, size);
    for (let k = 0; k < size; k++) yPrev[k] = p * yInter[k] + (1 - p) * xPrev[k];
    exact.checkFinite(xPrev, `EDICT's x after timestep ${timestep}`);
    exact.checkFinite(yPrev, `EDICT's y after timestep ${timestep}`);
    return { x: xPrev, y: yPrev, shape, predX0: exact.predictedX0(c, atY.input, atY.output, shape) };
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
   * // any model will do: here eps(x, t) = sin(x)
   * const model = modelFromFunction((x) => new Tensor(x.data.map(Math.sin), x.shape), { sampleSize: 2, inChannels: 1 });
   * const scheduler = EDICTScheduler.fromConfig({});
   * scheduler.setTimesteps(4);
   * const image = edictState(Tensor.from([0.1, -0.5, 0.9, 0.3], [1, 1, 2, 2]), { precision: "float64" });
   * const latent = await scheduler.inverseStep(model, 0, image);
   * // the inversion is exact: stepping down again gives the image back up to float64 rounding
   * const back = await scheduler.denoiseStep(model, 0, latent);
   * if (back.x.some((v, k) => Math.abs(v - image.x[k]) > 1e-9)) throw new Error(`got ${back.x}`);
   * ```
   */
  async inverseStep(model: DenoisingModel, timestep: number, state: EDICTState): Promise<EDICTStepOutput> {
    checkEdictState(state);
    const c = this.#coefficients[this.schedule.index(timestep)];
    const { x: xPrev, y: yPrev, shape } = state;
    const { a, b, epsFromSample: u, epsFromOutput: v } = c;
    const p = this.p;
    const precision = exact.precisionOf(xPrev);
    const size = xPrev.length;
    // E4'. y^inter = (y_{t-1} - (1 - p) x_{t-1}) / p
    const yInter = exact.allocate(precision, size);
    for (let k = 0; k < size; k++) yInter[k] = (yPrev[k] - (1 - p) * xPrev[k]) / p;
    // E3'. x^inter = (x_{t-1} - (1 - p) y^inter) / p
    const xInter = exact.allocate(precision, size);
    for (let k = 0; k < size; k++) xInter[k] = (xPrev[k] - (1 - p) * yInter[k]) / p;
    // E2'. y_t = (y^inter - b_t eps(x^inter, t)) / a_t
    const atX = await exact.predictAt(model, xInter, shape, timestep);
    const y = exact.allocate(precision, size);
    for (let k = 0; k < size; k++) y[k] = (yInter[k] - b * (u * atX.input[k] + v * atX.output[k])) / a;
    // E1'. x_t = (x^inter - b_t eps(y_t, t)) / a_t
    const atY = await exact.predictAt(model, y, shape, timestep);
    const x = exact.allocate(precision, size);
    for (let k = 0; k < size; k++) x[k] = (xInter[k] - b * (u * atY.input[k] + v * atY.output[k])) / a;
    exact.checkFinite(x, `EDICT's inverted x at timestep ${timestep}`);
    exact.checkFinite(y, `EDICT's inverted y at timestep ${timestep}`);
    return { x, y, shape, predX0: exact.predictedX0(c, atX.input, atX.output, shape) };
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
 * if (!(x instanceof Float64Array) || x === y || x.length !== 192) throw new Error("two float64 copies");
 * ```
 */
export function edictState(sample: Tensor, options: { precision?: StatePrecision } = {}): EDICTState {
  if (!(sample instanceof Tensor)) throw new TypeError("edictState takes a Tensor");
  const precision = exact.checkPrecision(options.precision ?? "float32");
  const x = exact.allocate(precision, sample.size);
  x.set(sample.data);
  const y = exact.allocate(precision, sample.size);
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
 * const seen: number[] = [];
 * for await (const { t } of edictSamplingLoop(model, scheduler, { state: edictState(Tensor.zeros([1, 1, 4, 4])) })) {
 *   seen.push(t);
 * }
 * if (seen.join() !== scheduler.timesteps.join()) throw new Error("one step per timestep, noisiest first");
 * ```
 */
export async function* edictSamplingLoop(
  model: DenoisingModel,
  scheduler: EDICTScheduler,
  options: { state: EDICTState },
): AsyncGenerator<EDICTLoopStep, EDICTState> {
  checkEdictState(options.state);
  return yield* exact.exactLoop(
    scheduler.timesteps.entries(),
    options.state,
    (t, state) => scheduler.denoiseStep(model, t, state),
    pairSample,
  );
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
 * const seen: number[] = [];
 * for await (const step of loop) seen.push(step.t);
 * if (seen.join() !== [...scheduler.timesteps].reverse().join()) throw new Error("one step per timestep, ascending");
 * ```
 */
export async function* edictInversionLoop(
  model: DenoisingModel,
  scheduler: EDICTScheduler,
  options: { state: EDICTState },
): AsyncGenerator<EDICTLoopStep, EDICTState> {
  const ascending = [...scheduler.timesteps].reverse();
  checkEdictState(options.state);
  return yield* exact.exactLoop(
    ascending.entries(),
    options.state,
    (t, state) => scheduler.inverseStep(model, t, state),
    pairSample,
  );
}

/** The x of an EDICT pair as a float32 tensor. */
function pairSample(state: EDICTState): Tensor {
  return exact.stateTensor(state.x, state.shape);
}

function checkEdictState(state: EDICTState): void {
  if (state === null || typeof state !== "object" || !Array.isArray(state.shape)) {
    throw new TypeError("An EDICT state is { x, y, shape } (see edictState)");
  }
  exact.checkStateArrays([state.x, state.y], state.shape, "EDICT");
}
