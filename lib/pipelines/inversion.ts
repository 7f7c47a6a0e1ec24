/**
 * DDIM inversion and reconstruction (Song et al. 2020, section 5.4): run the deterministic DDIM process backwards,
 * the Euler step of the probability-flow ODE (eq. 14) from x_0 towards x_T, then decode x_T again with eta = 0 and
 * measure how close the round trip comes. The paper's Table 2 reports this error on CIFAR-10 (per-dimension MSE on
 * [0, 1]: 0.014 at 10 steps down to 0.0001 at 1000).
 *
 * | paper                                                                      | code            | meaning            |
 * |----------------------------------------------------------------------------|-----------------|--------------------|
 * | x_0                                                                        | `image`         | the image, [-1, 1] |
 * | x_{t+1} = sqrt(a_{t+1}) ((x_t - sqrt(1-a_t) eps) / sqrt(a_t)) + sqrt(1-a_{t+1}) eps | inverse `step` | one ODE step up |
 * | x_T                                                                        | `latents`       | the encoding       |
 * | x_0' = DDIM_{eta=0}(x_T)                                                   | `reconstruction`| the decode         |
 * | MSE = mean(((x_0 + 1)/2 - (x_0' + 1)/2)^2)                                  | `mse`           | Table 2's unit     |
 * | PSNR = 10 log10(1 / MSE)                                                   | `psnr`          | in dB, peak 1      |
 *
 * Both directions run with `clip_sample` off by default: clipping the predicted x0 is not part of the ODE, and the
 * encode and decode must be the same map run both ways.
 *
 * @module
 */
import {
  BDIA_DEFAULT_GAMMA,
  bdiaInverseState,
  bdiaInversionLoop,
  bdiaSamplingLoop,
  BDIAScheduler,
  type BDIAState,
  checkBdiaGamma,
  checkBdiaInvertible,
} from "../schedulers/bdia.ts";
import { DDIMInverseScheduler } from "../schedulers/ddim_inverse.ts";
import {
  checkEdictP,
  EDICT_DEFAULT_P,
  edictInversionLoop,
  edictSamplingLoop,
  EDICTScheduler,
  type EDICTState,
  edictState,
  type StateArray,
  type StatePrecision,
} from "../schedulers/edict.ts";
import { checkPrecision, checkStateArrays } from "../schedulers/_exact_inversion.ts";
import type { DenoisingModel } from "../core/model.ts";
import type { ProgressReporter } from "../io/progress.ts";
import { resolveProgress } from "../io/progress.ts";
import { checkInferenceSteps, checkLatents, configOf, latentShape, samplingLoop } from "./sampling.ts";
import type { PipelineScheduler, SamplingStep } from "../schedulers/scheduler.ts";
import { Tensor } from "../core/tensor.ts";

/** What inversion needs from a pipeline: its model, its scheduler, and a decode from given latents. */
export interface InvertiblePipeline {
  readonly unet: DenoisingModel;
  readonly scheduler: PipelineScheduler;
  sample(options: {
    xT: Tensor;
    numInferenceSteps?: number;
    eta?: number;
    clipSample?: boolean;
    progress?: boolean | ProgressReporter;
  }): Promise<{ samples: Tensor }>;
}

/** How to invert: plain DDIM (inexact), EDICT (lib/schedulers/edict.ts) or BDIA-DDIM (lib/schedulers/bdia.ts), both exact. */
export type InversionMethod = "ddim" | "edict" | "bdia";

/**
 * The inversion methods, in the order the docs list them.
 *
 * @example
 * ```ts
 * import { INVERSION_METHODS, latentsFromNoise, Tensor } from "../../mod.ts";
 * for (const method of INVERSION_METHODS) {
 *   const state = latentsFromNoise(Tensor.zeros([1, 3, 8, 8]), { method, numInferenceSteps: 10 });
 *   if (state.method !== method) throw new Error(`asked for ${method}, got ${state.method}`);
 * }
 * ```
 */
export const INVERSION_METHODS: readonly InversionMethod[] = Object.freeze(["ddim", "edict", "bdia"]);

/** The method and its parameters, as `invert`, `reconstruct`, `fuse` and `decodeLatents` take them. */
export interface MethodOptions {
  /** "ddim" (default), "edict" or "bdia". */
  method?: InversionMethod;
  /** EDICT's mixing weight p in (0, 1) (default 0.93); only with method "edict". */
  p?: number;
  /** BDIA's gamma in (0, 1] for inversion, [0, 1] for sampling (default 1); only with method "bdia". */
  gamma?: number;
}

/** Options of `invert` and `reconstruct`. */
export interface InversionOptions extends MethodOptions {
  /** Steps of the ODE in each direction (default 50). */
  numInferenceSteps?: number;
  /** Clip the predicted x0 while inverting and decoding (default false: the pure ODE; DDIM only). */
  clipSample?: boolean;
  /** The precision of the EDICT or BDIA state: "float32" (default) or "float64" (the model still sees float32). */
  precision?: StatePrecision;
  /** Draw a progress bar (true), nothing (false, the default), or report to your own reporter. */
  progress?: boolean | ProgressReporter;
  /** Keep every inversion step `{ i, t, x, predX0 }` (true) or every k-th (a number). */
  trajectory?: boolean | number;
  /** Called after every inversion step. */
  onStep?: (step: SamplingStep) => void | Promise<void>;
}

/**
 * Latents together with what decodes them: the method, its parameter, the number of steps and the whole state.
 *
 * - ddim: `state` = [x_T]
 * - edict: `state` = [x_T, y_T], the coupled pair
 * - bdia: `state` = [z_S, z_{S-1}] after an inversion, or [z_S] for fresh noise (decoding then starts with DDIM)
 */
export interface LatentState {
  /** The method that made the state and must decode it. */
  method: InversionMethod;
  /** S, the steps it was made with; decoding uses the same schedule. */
  numInferenceSteps: number;
  /** EDICT's p, when the method is "edict". */
  p?: number;
  /** BDIA's gamma, when the method is "bdia". */
  gamma?: number;
  /** Whether DDIM clipped the predicted x0 (always false for EDICT and BDIA). */
  clipSample: boolean;
  /** The arrays of the state, each over `shape`, all float32 or all float64. */
  state: StateArray[];
  /** The NCHW shape of each array. */
  shape: number[];
}

/** What `invert` resolves to: the latents x_T, the whole state that decodes them, and what it cost. */
export interface InversionResult extends LatentState {
  /** The encoding x_T (EDICT: x_T of the pair; BDIA: z_S), as a float32 tensor. */
  latents: Tensor;
  /** The ascending schedule the inversion ran. */
  timesteps: number[];
  /** The image that was inverted. */
  image: Tensor;
  /** Model calls the inversion made (each on the whole batch): S for DDIM and BDIA, 2 S for EDICT. */
  modelCalls: number;
  /** The recorded steps, when asked for. */
  trajectory?: SamplingStep[];
}

/**
 * Invert images to latents that decode back to them: plain DDIM, EDICT or BDIA-DDIM, x_0 -> x_T.
 *
 * ddim: x_{t_next} = sqrt(alphaBarNext) predX0 + sqrt(1 - alphaBarNext) eps_theta(x_t, t_next) (inexact);
 * edict: E4'-E1' per step (exact); bdia: B0' then B1' per step (exact)
 *
 * @param pipeline a DDIM pipeline (its model and scheduler config are used)
 * @param image the images in [-1, 1], shape [batch, inChannels, height, width] at the model's size
 * @param options `method` ("ddim" default, "edict", "bdia"), `p`, `gamma`, `numInferenceSteps` (default 50),
 *   `precision`, `clipSample`, `progress`, `trajectory`, `onStep`
 * @returns the latents x_T, the state and method that decode them, the schedule and the model calls made
 * @throws RangeError for an image the model cannot take, steps out of range, an unknown method, p outside (0, 1),
 *   gamma outside (0, 1], a parameter given for the wrong method, or clipping asked of an exact method
 * @example
 * ```ts
 * import { DDIMPipeline, invert, Tensor } from "../../mod.ts";
 * const pipe = await DDIMPipeline.fromPretrained("builtin:shapes32");
 * const { latents } = await invert(pipe, Tensor.zeros([1, 3, 32, 32]), { numInferenceSteps: 10 });
 * const exact = await invert(pipe, Tensor.zeros([1, 3, 32, 32]), { method: "edict", numInferenceSteps: 10 });
 * // EDICT keeps a pair of latents: two state arrays
 * if (latents.shape.join() !== "1,3,32,32" || exact.state.length !== 2) throw new Error("wrong inversion");
 * ```
 */
export async function invert(
  pipeline: InvertiblePipeline,
  image: Tensor,
  options: InversionOptions = {},
): Promise<InversionResult> {
  const numInferenceSteps = options.numInferenceSteps ?? 50;
  const method = resolveMethod(options);
  checkInferenceSteps(numInferenceSteps, pipeline.scheduler);
  checkImage(pipeline.unet, image);
  const precision = checkPrecision(options.precision ?? "float32");
  if (method === "ddim" && precision !== "float32") {
    throw new RangeError(
      `precision "${precision}" applies to the exact methods edict and bdia; DDIM inversion runs float32`,
    );
  }
  if (method !== "ddim" && options.clipSample === true) {
    throw new RangeError(`${method} runs without clipping: a clipped x0 breaks its exact inverse; drop clipSample`);
  }
  if (method === "bdia") checkBdiaInvertible(options.gamma ?? BDIA_DEFAULT_GAMMA);
  const every = options.trajectory === true ? 1 : typeof options.trajectory === "number" ? options.trajectory : 0;
  if (!Number.isInteger(every) || every < 0) {
    throw new RangeError(`trajectory must be true, false or a positive step interval, got ${options.trajectory}`);
  }
  const config = configOf(pipeline.scheduler);
  const reporter = resolveProgress(options.progress);
  const trajectory: SamplingStep[] = [];
  const record = async (step: SamplingStep, count: number) => {
    if (every > 0 && (step.i % every === 0 || step.i === count - 1)) trajectory.push(step);
    if (options.onStep) await options.onStep(step);
    reporter.tick();
  };
  // run an exact method's loop to the end, recording each step, and return its last state
  const lastState = async <S>(loop: AsyncIterable<SamplingStep & { state: S }>, start: S): Promise<S> => {
    let state = start;
    for await (const step of loop) {
      state = step.state;
      await record(step, numInferenceSteps);
    }
    return state;
  };
  let result: Omit<InversionResult, "image" | "trajectory" | "shape" | "numInferenceSteps">;
  reporter.start(numInferenceSteps, `${METHOD_LABELS[method]} inversion`);
  try {
    if (method === "ddim") {
      // 1. the inverse scheduler from the pipeline's own config: the same alphaBar table, timesteps ascending
      const clipSample = options.clipSample ?? false;
      const inverse = DDIMInverseScheduler.fromConfig({ ...config, clip_sample: clipSample });
      inverse.setTimesteps(numInferenceSteps);
      let latents = image;
      // 2. the ODE run upwards, one model call per step, no noise
      for await (const step of samplingLoop(pipeline.unet, inverse, { sample: image })) {
        latents = step.x;
        await record(step, numInferenceSteps);
      }
      const timesteps = [...inverse.timesteps];
      result = { method, clipSample, state: [latents.data], latents, timesteps, modelCalls: timesteps.length };
    } else if (method === "edict") {
      // 1. EDICT's scheduler on the pipeline's schedule; 2. E4'-E1' at every timestep, ascending, from (x_0, x_0)
      const scheduler = EDICTScheduler.fromConfig(config, { p: options.p });
      scheduler.setTimesteps(numInferenceSteps);
      const start = edictState(image, { precision });
      const state = await lastState(edictInversionLoop(pipeline.unet, scheduler, { state: start }), start);
      const timesteps = [...scheduler.timesteps].reverse();
      result = {
        method,
        p: scheduler.p,
        clipSample: false,
        state: [state.x, state.y],
        latents: new Tensor(Float32Array.from(state.x), image.shape),
        timesteps,
        modelCalls: 2 * timesteps.length,
      };
    } else {
      // 1. BDIA's scheduler on the pipeline's schedule; 2. B0' to t_1, then B1' at t_1 ... t_{S-1}
      const scheduler = BDIAScheduler.fromConfig(config, { gamma: options.gamma });
      scheduler.setTimesteps(numInferenceSteps);
      const start = bdiaInverseState(image, { precision });
      const state = await lastState(bdiaInversionLoop(pipeline.unet, scheduler, { state: start }), start);
      const timesteps = [...scheduler.timesteps].reverse();
      result = {
        method,
        gamma: scheduler.gamma,
        clipSample: false,
        state: [state.sample, state.cleaner!],
        latents: new Tensor(Float32Array.from(state.sample), image.shape),
        timesteps,
        modelCalls: timesteps.length,
      };
    }
  } finally {
    reporter.stop();
  }
  return { ...result, numInferenceSteps, shape: [...image.shape], image, ...(every > 0 ? { trajectory } : {}) };
}

/**
 * Latents for sampling from noise with a method: x_T as the state each method starts from.
 *
 * ddim: [x_T]; edict: [x_T, x_T] (x_T = y_T, as EDICT samples); bdia: [z_S = x_T] (the first step is then DDIM)
 *
 * @param xT the starting noise, NCHW
 * @param options `method` (default "ddim"), `p`, `gamma` (0 allowed: BDIA is then DDIM), `numInferenceSteps`
 *   (default 50), `precision` (default "float32")
 * @returns a state that `decodeLatents` samples from
 * @throws RangeError for an unknown method, a parameter out of range or given for the wrong method
 * @example
 * ```ts
 * import { latentsFromNoise, TorchGenerator } from "../../mod.ts";
 * const noise = new TorchGenerator(0).randn([4, 3, 32, 32]);
 * const start = latentsFromNoise(noise, { method: "bdia", numInferenceSteps: 20 });
 * if (start.method !== "bdia" || start.shape.join() !== "4,3,32,32") throw new Error("wrong state");
 * ```
 */
export function latentsFromNoise(
  xT: Tensor,
  options: MethodOptions & { numInferenceSteps?: number; precision?: StatePrecision } = {},
): LatentState {
  if (!(xT instanceof Tensor)) throw new TypeError("latentsFromNoise takes the noise x_T as a Tensor");
  const method = resolveMethod(options);
  const numInferenceSteps = options.numInferenceSteps ?? 50;
  if (!Number.isInteger(numInferenceSteps) || numInferenceSteps < 1) {
    throw new RangeError(`numInferenceSteps must be a positive integer, got ${numInferenceSteps}`);
  }
  const precision = checkPrecision(options.precision ?? "float32");
  if (method === "ddim" && precision !== "float32") {
    throw new RangeError(`precision "${precision}" applies to the exact methods edict and bdia; DDIM runs float32`);
  }
  const copy = () => {
    const out = precision === "float64" ? new Float64Array(xT.size) : new Float32Array(xT.size);
    out.set(xT.data);
    return out;
  };
  const base = { method, numInferenceSteps, clipSample: false, shape: [...xT.shape] };
  if (method === "edict") return { ...base, p: checkEdictP(options.p ?? EDICT_DEFAULT_P), state: [copy(), copy()] };
  if (method === "bdia") {
    return { ...base, gamma: checkBdiaGamma(options.gamma ?? BDIA_DEFAULT_GAMMA), state: [copy()] };
  }
  return { ...base, state: [copy()] };
}

/** Options of `decodeLatents`: the method and parameters are checked against the state's, never substituted. */
export interface DecodeOptions extends MethodOptions {
  /** When given, must equal the state's `numInferenceSteps`. */
  numInferenceSteps?: number;
  /** Draw a progress bar (true), nothing (false, the default), or report to your own reporter. */
  progress?: boolean | ProgressReporter;
  /** Keep every decoding step (true) or every k-th (a number). */
  trajectory?: boolean | number;
}

/** What `decodeLatents` resolves to. */
export interface DecodeResult {
  /** The decoded x_0 (EDICT: x_0 of the pair; BDIA: z_0), float32, unclamped. */
  samples: Tensor;
  /** The final state in its precision (EDICT: [x_0, y_0]; BDIA: [z_0, z_1]; DDIM: [x_0]). */
  state: StateArray[];
  /** Model calls made: S for DDIM, 2 S for EDICT, S for BDIA from noise and S - 1 from an inversion's pair. */
  modelCalls: number;
  /** The recorded steps, when asked for. */
  trajectory?: SamplingStep[];
}

/**
 * Decode latents with the method that made them (an inversion's, or `latentsFromNoise`'s): DDIM with eta = 0, EDICT's
 * denoising steps E1-E4, or BDIA's B1 (after B0 when starting from noise).
 *
 * x_0 = decode_method(state); a method, p, gamma or step count that differs from the state's is refused
 *
 * @param pipeline a DDIM pipeline
 * @param latents the state with its method (`invert`'s result or `latentsFromNoise`)
 * @param options `method`, `p`, `gamma`, `numInferenceSteps` (each checked against the state's), `progress`,
 *   `trajectory`
 * @returns the samples, the final state and the number of model calls
 * @throws RangeError when the options name another method, p, gamma or step count than the state's, or the state's
 *   shape is not what the model takes
 * @example
 * ```ts
 * import { DDIMPipeline, decodeLatents, invert, Tensor } from "../../mod.ts";
 * const pipe = await DDIMPipeline.fromPretrained("builtin:shapes32");
 * const inversion = await invert(pipe, Tensor.zeros([1, 3, 32, 32]), { method: "bdia", numInferenceSteps: 10 });
 * const { samples } = await decodeLatents(pipe, inversion);
 * // BDIA's inversion is exact: decoding returns the zero image up to float rounding
 * if (samples.data.some((v) => Math.abs(v) > 1e-3)) throw new Error("BDIA did not return the image");
 * ```
 */
export async function decodeLatents(
  pipeline: InvertiblePipeline,
  latents: LatentState,
  options: DecodeOptions = {},
): Promise<DecodeResult> {
  checkLatentState(latents);
  checkSameMethod(latents, options);
  const { method, numInferenceSteps, shape } = latents;
  checkInferenceSteps(numInferenceSteps, pipeline.scheduler);
  const xT = new Tensor(Float32Array.from(latents.state[0]), shape);
  checkLatents(xT, latentShape(pipeline.unet, shape[0] ?? 1), "latents");
  const every = options.trajectory === true ? 1 : typeof options.trajectory === "number" ? options.trajectory : 0;
  if (!Number.isInteger(every) || every < 0) {
    throw new RangeError(`trajectory must be true, false or a positive step interval, got ${options.trajectory}`);
  }
  if (method === "ddim") {
    const run = await pipeline.sample({
      xT,
      numInferenceSteps,
      eta: 0,
      clipSample: latents.clipSample,
      progress: options.progress,
      ...(every > 0 ? { trajectory: every } : {}),
    });
    const trajectory = (run as { trajectory?: SamplingStep[] }).trajectory;
    return {
      samples: run.samples,
      state: [run.samples.data],
      modelCalls: numInferenceSteps,
      ...(trajectory ? { trajectory } : {}),
    };
  }
  const config = configOf(pipeline.scheduler);
  const reporter = resolveProgress(options.progress);
  const trajectory: SamplingStep[] = [];
  let modelCalls = 0;
  let state: StateArray[];
  reporter.start(numInferenceSteps, `${METHOD_LABELS[method]} decoding`);
  try {
    const keep = (step: SamplingStep) => {
      if (every > 0 && (step.i % every === 0 || step.i === numInferenceSteps - 1)) trajectory.push(step);
      reporter.tick();
    };
    if (method === "edict") {
      // E1-E4 at every timestep, descending, from (x_T, y_T)
      const scheduler = EDICTScheduler.fromConfig(config, { p: latents.p });
      scheduler.setTimesteps(numInferenceSteps);
      let pair: EDICTState = { x: latents.state[0], y: latents.state[1], shape };
      for await (const step of edictSamplingLoop(pipeline.unet, scheduler, { state: pair })) {
        pair = step.state;
        modelCalls += 2;
        keep(step);
      }
      state = [pair.x, pair.y];
    } else {
      // from noise: B0 then B1; from an inversion's pair (z_S, z_{S-1}): B1 from the second timestep on
      const scheduler = BDIAScheduler.fromConfig(config, { gamma: latents.gamma });
      scheduler.setTimesteps(numInferenceSteps);
      let current: BDIAState = latents.state.length === 1
        ? { sample: latents.state[0], noisier: null, shape }
        : { sample: latents.state[1], noisier: latents.state[0], shape };
      for await (const step of bdiaSamplingLoop(pipeline.unet, scheduler, { state: current })) {
        current = step.state;
        modelCalls += 1;
        keep(step);
      }
      state = current.noisier === null ? [current.sample] : [current.sample, current.noisier];
    }
  } finally {
    reporter.stop();
  }
  return {
    samples: new Tensor(Float32Array.from(state[0]), shape),
    state,
    modelCalls,
    ...(every > 0 ? { trajectory } : {}),
  };
}

/** What `reconstruct` resolves to. */
export interface ReconstructionResult extends InversionResult, ImageError {
  /** The decode x_0' of the latents with the same method, unclamped. */
  reconstruction: Tensor;
  /** The decode in the state's precision (the float64 state before rounding, when `precision` is "float64"). */
  reconstructionState: StateArray;
  /** Model calls of the decode (the inversion's are in `modelCalls`). */
  decodeModelCalls: number;
}

/**
 * Encode images and decode them again with one method, reporting the round trip's error; or decode an earlier
 * inversion (`invert`'s result), refusing options that name another method than the one it was made with.
 *
 * x_0' = decode_method(invert_method(x_0)); mse = mean(((x_0 - x_0') / 2)^2); psnr = 10 log10(1 / mse)
 *
 * @param pipeline a DDIM pipeline
 * @param image the images in [-1, 1] at the model's size, or an `invert` result to decode
 * @param options `method`, `p`, `gamma`, `numInferenceSteps` (default 50, used both ways), `precision`,
 *   `clipSample`, `progress`, `trajectory`
 * @returns the latents, the reconstruction and its error (MSE on [0, 1], PSNR in dB, per image too)
 * @throws RangeError for an image the model cannot take, steps out of range, a bad method parameter, or options that
 *   differ from the given inversion's method, p, gamma or steps
 * @example
 * ```ts
 * import { DDIMPipeline, reconstruct, Tensor } from "../../mod.ts";
 * const pipe = await DDIMPipeline.fromPretrained("builtin:shapes32");
 * const { mse } = await reconstruct(pipe, Tensor.zeros([1, 3, 32, 32]), { numInferenceSteps: 10 });
 * const exact = await reconstruct(pipe, Tensor.zeros([1, 3, 32, 32]), { method: "bdia", numInferenceSteps: 10 });
 * // DDIM inversion is approximate, BDIA's exact up to float rounding
 * if (!(exact.mse < 1e-6 && exact.mse <= mse)) throw new Error(`BDIA mse ${exact.mse}, DDIM mse ${mse}`);
 * ```
 */
export async function reconstruct(
  pipeline: InvertiblePipeline,
  image: Tensor | InversionResult,
  options: InversionOptions = {},
): Promise<ReconstructionResult> {
  let inversion: InversionResult;
  if (image instanceof Tensor) {
    inversion = await invert(pipeline, image, options);
  } else {
    checkLatentState(image);
    if (!(image.image instanceof Tensor)) {
      throw new TypeError("reconstruct takes an image Tensor or the result of invert (which carries its image)");
    }
    checkSameMethod(image, options);
    inversion = image;
  }
  const decoded = await decodeLatents(pipeline, inversion, { progress: options.progress });
  return {
    ...inversion,
    reconstruction: decoded.samples,
    reconstructionState: decoded.state[0],
    decodeModelCalls: decoded.modelCalls,
    ...imageError(inversion.image, decoded.samples),
  };
}

const METHOD_LABELS: Record<InversionMethod, string> = { ddim: "DDIM", edict: "EDICT", bdia: "BDIA" };

/** The method of the options, with its parameters checked: p only with EDICT, gamma only with BDIA. */
function resolveMethod(options: MethodOptions): InversionMethod {
  const method = options.method ?? "ddim";
  if (!INVERSION_METHODS.includes(method)) {
    throw new RangeError(`method must be "ddim", "edict" or "bdia", got ${JSON.stringify(method)}`);
  }
  if (options.p !== undefined && method !== "edict") {
    throw new RangeError(`p is EDICT's mixing weight and applies to method "edict" only, got method "${method}"`);
  }
  if (options.gamma !== undefined && method !== "bdia") {
    throw new RangeError(`gamma is BDIA's parameter and applies to method "bdia" only, got method "${method}"`);
  }
  if (method === "edict") checkEdictP(options.p ?? EDICT_DEFAULT_P);
  if (method === "bdia") checkBdiaGamma(options.gamma ?? BDIA_DEFAULT_GAMMA);
  return method;
}

/** Refuse decoding options that differ from the state's method, parameter or steps. */
function checkSameMethod(latents: LatentState, options: MethodOptions & { numInferenceSteps?: number }): void {
  const made = latents.method;
  if (options.method !== undefined && options.method !== made) {
    throw new RangeError(
      `These latents were made with method "${made}" and decode only with it, got method "${options.method}"; ` +
        `invert again with "${options.method}" to use it`,
    );
  }
  if (options.p !== undefined && options.p !== latents.p) {
    throw new RangeError(
      made === "edict"
        ? `These latents were made by EDICT with p = ${latents.p} and decode exactly only with it, got p = ${options.p}`
        : `p applies to method "edict", but these latents were made with method "${made}"`,
    );
  }
  if (options.gamma !== undefined && options.gamma !== latents.gamma) {
    throw new RangeError(
      made === "bdia"
        ? `These latents were made by BDIA with gamma = ${latents.gamma} and decode exactly only with it, got gamma = ${options.gamma}`
        : `gamma applies to method "bdia", but these latents were made with method "${made}"`,
    );
  }
  if (options.numInferenceSteps !== undefined && options.numInferenceSteps !== latents.numInferenceSteps) {
    throw new RangeError(
      `These latents were made with ${latents.numInferenceSteps} steps and decode on that schedule, got ` +
        `numInferenceSteps ${options.numInferenceSteps}`,
    );
  }
}

/** Refuse something that is not a latent state of a known method with the right number of arrays. */
function checkLatentState(latents: LatentState): void {
  if (
    latents === null || typeof latents !== "object" || !Array.isArray(latents.state) || !Array.isArray(latents.shape)
  ) {
    throw new TypeError(
      "Latents to decode are { method, numInferenceSteps, state, shape } (from invert or latentsFromNoise)",
    );
  }
  if (!INVERSION_METHODS.includes(latents.method)) {
    throw new RangeError(
      `The latents' method must be "ddim", "edict" or "bdia", got ${JSON.stringify(latents.method)}`,
    );
  }
  const counts: Record<InversionMethod, number[]> = { ddim: [1], edict: [2], bdia: [1, 2] };
  if (!counts[latents.method].includes(latents.state.length)) {
    throw new RangeError(
      `${METHOD_LABELS[latents.method]} latents hold ${
        counts[latents.method].join(" or ")
      } arrays, got ${latents.state.length}`,
    );
  }
  checkStateArrays(latents.state, latents.shape, METHOD_LABELS[latents.method]);
}

/** The error between two image batches on the [0, 1] scale. */
export interface ImageError {
  /** Per-dimension mean squared error on [0, 1] over the whole batch (the DDIM paper's Table 2 unit). */
  mse: number;
  /** Peak signal-to-noise ratio for peak 1, in dB: 10 log10(1 / mse) (Infinity when mse is 0). */
  psnr: number;
  /** `mse` of each batch item. */
  msePerImage: number[];
}

/**
 * The per-dimension MSE on [0, 1] and the PSNR between two image batches in [-1, 1] (no clamping).
 *
 * mse = (1/N) sum_i ((x_i + 1)/2 - (y_i + 1)/2)^2 = (1/4N) sum_i (x_i - y_i)^2; psnr = 10 log10(1 / mse)
 *
 * @param original the reference images
 * @param other the images to compare, same shape
 * @returns the MSE, the PSNR and the MSE of each batch item
 * @throws RangeError when the shapes differ or the batch is empty
 * @example
 * ```ts
 * import { imageError, Tensor } from "../../mod.ts";
 * // in [0, 1] pixel units the first value moves from 0 to 1, the second stays: mse = (1 + 0) / 2
 * const { mse } = imageError(Tensor.from([-1, 1], [1, 2]), Tensor.from([1, 1], [1, 2]));
 * if (mse !== 0.5) throw new Error(`got ${mse}`);
 * ```
 */
export function imageError(original: Tensor, other: Tensor): ImageError {
  if (!original.sameShape(other)) {
    throw new RangeError(
      `Cannot compare images of shape [${original.shape.join(", ")}] and [${other.shape.join(", ")}]`,
    );
  }
  if (original.size === 0) throw new RangeError("Cannot compare empty images");
  const items = original.shape.length >= 2 ? original.shape[0] : 1;
  const length = original.size / items;
  const msePerImage: number[] = [];
  let total = 0;
  for (let item = 0; item < items; item++) {
    let sum = 0;
    for (let k = item * length; k < (item + 1) * length; k++) {
      const difference = (original.data[k] - other.data[k]) / 2;
      sum += difference * difference;
    }
    msePerImage.push(sum / length);
    total += sum;
  }
  const mse = total / original.size;
  return { mse, psnr: 10 * Math.log10(1 / mse), msePerImage };
}

function checkImage(model: DenoisingModel, image: Tensor): void {
  if (!(image instanceof Tensor)) throw new TypeError("The image to invert must be a Tensor in [-1, 1]");
  const batch = image.shape.length === 4 ? image.shape[0] : 1;
  checkLatents(image, latentShape(model, batch), "image");
}
