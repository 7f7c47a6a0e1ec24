/**
 * BDIA-DDIM, bi-directional integration approximation (Zhang, Lewis and Kleijn 2023, arXiv 2307.10829): each step
 * uses the noise predicted at z_i twice, for a DDIM step forwards to t_{i-1} and a DDIM step backwards to t_{i+1},
 * and combines them with the sample z_{i+1} one step noisier. The update is a linear combination of
 * (z_{i+1}, z_i, eps(z_i, t_i)), so it can be solved for z_{i+1}: inversion is exact up to float rounding, with one
 * model call per step, as plain DDIM.
 *
 * | paper                        | code                 | meaning                                                    |
 * |------------------------------|----------------------|------------------------------------------------------------|
 * | z_i                          | `state.sample`       | the sample at timestep t_i                                 |
 * | z_{i+1}                      | `state.noisier`      | the sample one schedule entry noisier (sampling)           |
 * | z_{i-1}                      | `state.cleaner`      | the sample one schedule entry cleaner (inversion)          |
 * | eps(z_i, t_i)                | `eps`                | the noise predicted at z_i                                 |
 * | D(t_i -> t_{i-1} given z_i)  | `forwardIncrement`   | DDIM's step to t_{i-1} minus z_i: (a z_i + b eps) - z_i    |
 * | D(t_i -> t_{i+1} given z_i)  | `backwardIncrement`  | DDIM's step back to t_{i+1} minus z_i, with the same eps   |
 * | gamma                        | `gamma`              | in [0, 1]: 0 is DDIM; 1 (default) is time-symmetric        |
 *
 * The update (numbered here B1; the paper's BDIA-DDIM update of z_{i-1}):
 *   B1  z_{i-1} = z_{i+1} - (1 - gamma)(z_{i+1} - z_i) - gamma D(t_i -> t_{i+1} | z_i) + D(t_i -> t_{i-1} | z_i)
 * solved for z_{i+1} (B1', gamma > 0):
 *   B1' z_{i+1} = (z_{i-1} - (1 - gamma) z_i - D(t_i -> t_{i-1} | z_i)) / gamma + D(t_i -> t_{i+1} | z_i)
 *
 * The first step. Sampling starts with one plain DDIM step z_S -> z_{S-1} (B0), as the paper does: there is no z_{S+1}.
 * Inversion starts with one DDIM inversion step z_0 -> z_1 (B0', the model at (z_0, t_1), as DDIM inversion does),
 * then applies B1' at t_1, ..., t_{S-1}. Its result is the pair (z_S, z_{S-1}); decoding applies B1 at t_{S-1}, ...,
 * t_1 starting from that pair and never repeats B0, so the round trip is exact whatever B0' chose for z_1.
 *
 * Stability. Write B1 as z_{i-1} = gamma z_{i+1} + c z_i + (model term). For small steps c is close to 1 - gamma, and
 * the recursion has the modes 1 (the ODE's solution) and -gamma (an oscillation from step to step). Sampling damps
 * the oscillation by gamma per step; inversion runs the recursion the other way and multiplies it by 1 / gamma per
 * step. Rounding errors of size u therefore grow to about u / gamma^S in an inversion: with float32 (u = 6e-8) and
 * S = 50 that is harmless at gamma = 1 but 2^50 u at gamma = 0.5. gamma = 1 is the default for that reason.
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

/**
 * The default gamma: 1, the time-symmetric choice whose inversion does not amplify rounding errors.
 *
 * @example
 * ```ts
 * import { BDIA_DEFAULT_GAMMA, BDIAScheduler } from "../../mod.ts";
 * // Zhang, Lewis and Kleijn 2023 (BDIA, arXiv 2307.10829) use gamma = 1; a scheduler built without gamma uses it
 * if (BDIA_DEFAULT_GAMMA !== 1) throw new Error(`BDIA_DEFAULT_GAMMA is ${BDIA_DEFAULT_GAMMA}`);
 * if (BDIAScheduler.fromConfig({}).gamma !== 1) throw new Error("the default gamma is not 1");
 * ```
 */
export const BDIA_DEFAULT_GAMMA = 1;

/** A BDIA sampling state: z_i and, after the first step, z_{i+1}. */
export interface BDIAState {
  /** z_i, at the timestep of the next step. */
  sample: StateArray;
  /** z_{i+1}, one schedule entry noisier; null before the first step (which is then plain DDIM, B0). */
  noisier: StateArray | null;
  /** The NCHW shape the arrays hold. */
  shape: readonly number[];
}

/** A BDIA inversion state: z_i and, after the first step, z_{i-1}. */
export interface BDIAInverseState {
  /** z_i: the clean image before the first step, then the sample at the timestep of the next step. */
  sample: StateArray;
  /** z_{i-1}, one schedule entry cleaner; null for the clean image (the first step is then DDIM inversion, B0'). */
  cleaner: StateArray | null;
  /** The NCHW shape the arrays hold. */
  shape: readonly number[];
}

/** What `BDIAScheduler.step` returns: the next sampling state and the predicted x0 at z_i. */
export interface BDIAStepOutput extends BDIAState {
  /** predX0 at z_i (DDIM eq. (9)). */
  predX0: Tensor;
}

/** What `BDIAScheduler.inverseStep` returns: the next inversion state and the predicted x0 at z_i. */
export interface BDIAInverseStepOutput extends BDIAInverseState {
  /** predX0 at z_i (DDIM eq. (9)). */
  predX0: Tensor;
}

/** Options of the `BDIAScheduler` constructor. */
export interface BDIASchedulerOptions {
  /** gamma in [0, 1] (default 1); 0 is DDIM, and inversion needs gamma > 0. */
  gamma?: number;
}

/**
 * Refuse a gamma outside [0, 1] (BDIA averages the backward and forward integration approximations with it).
 *
 * 0 <= gamma <= 1
 *
 * @param gamma the value to check
 * @returns gamma
 * @throws RangeError naming gamma otherwise
 * @example
 * ```ts
 * import { checkBdiaGamma } from "../../mod.ts";
 * if (checkBdiaGamma(0.5) !== 0.5) throw new Error("a gamma in [0, 1] is returned");
 * let refused = false;
 * try {
 *   checkBdiaGamma(1.5);
 * } catch {
 *   refused = true;
 * }
 * if (!refused) throw new Error("gamma above 1 must be refused");
 * ```
 */
export function checkBdiaGamma(gamma: number): number {
  if (typeof gamma !== "number" || !(gamma >= 0 && gamma <= 1)) {
    throw new RangeError(`BDIA's gamma must be in [0, 1] (0 is DDIM), got ${gamma}`);
  }
  return gamma;
}

/**
 * Refuse a gamma that cannot invert: gamma = 0 is DDIM, whose step does not depend on z_{i+1} (B1' divides by gamma).
 *
 * 0 < gamma <= 1
 *
 * @param gamma the value to check
 * @returns gamma
 * @throws RangeError naming gamma when it is outside (0, 1]
 * @example
 * ```ts
 * import { checkBdiaInvertible } from "../../mod.ts";
 * checkBdiaInvertible(1);
 * let refused = false;
 * try {
 *   checkBdiaInvertible(0);
 * } catch {
 *   refused = true;
 * }
 * if (!refused) throw new Error("gamma = 0 (DDIM) cannot be solved for z_{i+1}");
 * ```
 */
export function checkBdiaInvertible(gamma: number): number {
  checkBdiaGamma(gamma);
  if (gamma === 0) {
    throw new RangeError(
      "BDIA with gamma = 0 is DDIM: its step does not depend on z_{i+1}, so it cannot be solved for it and the " +
        `inversion would not be exact; use gamma in (0, 1] (default ${BDIA_DEFAULT_GAMMA}) or method "ddim"`,
    );
  }
  return gamma;
}

/** Per-timestep constants, computed once per schedule in float64. */
interface BDIACoefficients extends PredictionForm {
  /** DDIM from t_i to t_{i-1}. */
  forward: AffineStep;
  /** DDIM from t_i back to t_{i+1}; absent at the first timestep. */
  backward: AffineStep | null;
}

/**
 * The BDIA-DDIM scheduler: the DDIM schedule of a diffusers config with BDIA's update B1, its inverse B1', and the
 * plain DDIM first steps B0 and B0'.
 *
 * z_{i-1} = z_{i+1} - (1 - gamma)(z_{i+1} - z_i) - gamma D(t_i -> t_{i+1} | z_i) + D(t_i -> t_{i-1} | z_i)
 *
 * `step` keeps the package's scheduler contract (model output, timestep, sample) with the sample being the state
 * (z_i, z_{i+1}). `clip_sample` and `thresholding` are always off.
 *
 * @example
 * ```ts
 * import { BDIAScheduler, bdiaState, Tensor } from "../../mod.ts";
 * const scheduler = BDIAScheduler.fromConfig({}, { gamma: 1 });
 * scheduler.setTimesteps(10);
 * let state = bdiaState(Tensor.from(new Array(192).fill(1), [1, 3, 8, 8]));
 * for (const t of scheduler.timesteps) {
 *   const eps = Tensor.zeros([1, 3, 8, 8]); // a model that predicts no noise, at state.sample
 *   state = scheduler.step(eps, t, state);
 * }
 * // with eps = 0 every DDIM increment is a rescaling, and BDIA's x_0 is DDIM's: x_T / sqrt(alphaBar_900)
 * const expected = 1 / Math.sqrt(scheduler.alphasCumprod[900]);
 * if (Math.abs(state.sample[0] - expected) > 1e-3 * expected) throw new Error(`got ${state.sample[0]}`);
 * ```
 */
export class BDIAScheduler extends ExactSchedulerBase {
  /** gamma in [0, 1]. */
  readonly gamma: number;
  #coefficients: BDIACoefficients[] = [];
  /** DDIM inversion from the clean end to the last timestep, B0'. */
  #firstInverse: AffineStep & PredictionForm = { a: 1, b: 0, ...exact.epsilonForm("epsilon", 0.5) };

  /**
   * Build the scheduler from a diffusers config (read as DDIM's) and BDIA's gamma.
   *
   * @param config `scheduler_config.json` as an object
   * @param options `gamma` (default 1)
   * @throws RangeError for gamma outside [0, 1] or a bad config value
   */
  constructor(config: ExactSchedulerConfig = {}, options: BDIASchedulerOptions = {}) {
    const gamma = checkBdiaGamma(options.gamma ?? BDIA_DEFAULT_GAMMA);
    super(config, "BDIA");
    this.gamma = gamma;
  }

  /** BDIA's coefficients at every timestep of the schedule just set, in float64. */
  protected buildTables(): void {
    const count = this.timesteps.length;
    const predictionType = this.config.prediction_type;
    this.#coefficients = this.tableOf((k, alphaBar) => ({
      forward: exact.ddimAffine(alphaBar, this.schedule.alphaBarAt(k + 1)),
      backward: k > 0 ? exact.ddimAffine(alphaBar, this.schedule.alphaBarAt(k - 1)) : null,
      ...exact.epsilonForm(predictionType, alphaBar),
    }));
    const last = this.schedule.alphaBarAt(count - 1);
    this.#firstInverse = {
      ...exact.ddimAffine(this.schedule.alphaBarAt(count), last),
      ...exact.epsilonForm(predictionType, last),
    };
  }

  /**
   * One BDIA sampling step at t_i: B1 from (z_i, z_{i+1}), or plain DDIM (B0) when z_{i+1} is null.
   *
   * z_{i-1} = z_{i+1} - (1 - gamma)(z_{i+1} - z_i) - gamma D(t_i -> t_{i+1} | z_i) + D(t_i -> t_{i-1} | z_i)
   *
   * @param modelOutput the model's prediction at (z_i rounded to float32, t_i), shaped like the state
   * @param timestep t_i, an entry of `timesteps`
   * @param state (z_i, z_{i+1})
   * @returns (z_{i-1}, z_i) in the state's precision, and predX0 at z_i
   * @throws RangeError for a timestep not in the schedule, a z_{i+1} at the first timestep, a bad state or a
   *   non-finite result
   * @example
   * ```ts
   * import { BDIAScheduler, bdiaState, Tensor } from "../../mod.ts";
   * const scheduler = BDIAScheduler.fromConfig({});
   * scheduler.setTimesteps(4);
   * const next = scheduler.step(Tensor.zeros([1, 4]), 750, bdiaState(Tensor.from([1, 1, 1, 1], [1, 4])));
   * // the first step is plain DDIM (B0): z_{i-1} = sqrt(alphaBar_500 / alphaBar_750) z_i when eps = 0
   * const a = Math.sqrt(scheduler.alphasCumprod[500] / scheduler.alphasCumprod[750]);
   * if (Math.abs(next.sample[0] - a) > 1e-5 * a || next.noisier?.[0] !== 1) throw new Error("B0");
   * ```
   */
  step(modelOutput: Tensor, timestep: number, state: BDIAState): BDIAStepOutput {
    checkBdiaState(state, state?.noisier ?? null, modelOutput);
    const index = this.schedule.index(timestep);
    const c = this.#coefficients[index];
    const { sample: z, noisier, shape } = state;
    if (noisier !== null && c.backward === null) {
      throw new RangeError(
        `BDIA's step at the first timestep ${timestep} has no z_{i+1}; pass noisier: null there (a DDIM step)`,
      );
    }
    const gamma = this.gamma;
    const m = modelOutput.data;
    const input = z instanceof Float32Array ? z : Float32Array.from(z);
    const out = exact.allocate(exact.precisionOf(z), z.length);
    const { a, b } = c.forward;
    const { epsFromSample: u, epsFromOutput: v } = c;
    if (noisier === null) {
      // B0. the first step: plain DDIM, z_{i-1} = z_i + D(t_i -> t_{i-1} | z_i) = a z_i + b eps
      for (let k = 0; k < out.length; k++) out[k] = a * z[k] + b * (u * input[k] + v * m[k]);
    } else {
      const { a: aBack, b: bBack } = c.backward!;
      for (let k = 0; k < out.length; k++) {
        // 1. eps(z_i, t_i) from the model output
        const eps = u * input[k] + v * m[k];
        // 2. D(t_i -> t_{i-1} | z_i): DDIM forwards minus z_i; 3. D(t_i -> t_{i+1} | z_i): DDIM backwards minus z_i
        const forwardIncrement = a * z[k] + b * eps - z[k];
        const backwardIncrement = aBack * z[k] + bBack * eps - z[k];
        // 4. B1
        out[k] = noisier[k] - (1 - gamma) * (noisier[k] - z[k]) - gamma * backwardIncrement + forwardIncrement;
      }
    }
    exact.checkFinite(out, `BDIA's sample after timestep ${timestep}`);
    return { sample: out, noisier: z, shape, predX0: exact.predictedX0(c, input, m, shape) };
  }

  /**
   * One BDIA inversion step: B1' from (z_i, z_{i-1}) at t_i up to z_{i+1}, or DDIM inversion (B0') from the clean
   * image to the last timestep t_1 when z_{i-1} is null.
   *
   * z_{i+1} = (z_{i-1} - (1 - gamma) z_i - D(t_i -> t_{i-1} | z_i)) / gamma + D(t_i -> t_{i+1} | z_i)
   *
   * @param modelOutput the model's prediction at (z_i rounded to float32, `timestep`)
   * @param timestep t_i, the level of z_i; for the first step (z_{i-1} null) t_1, the last entry of `timesteps`
   * @param state (z_i, z_{i-1})
   * @returns (z_{i+1}, z_i) and predX0 at z_i
   * @throws RangeError when gamma is 0 (DDIM, whose step cannot be solved for z_{i+1}), for a timestep with no
   *   noisier entry, a bad state or a non-finite result
   * @example
   * ```ts
   * import { BDIAScheduler, bdiaInverseState, Tensor } from "../../mod.ts";
   * const scheduler = BDIAScheduler.fromConfig({});
   * scheduler.setTimesteps(4);
   * const first = scheduler.inverseStep(Tensor.zeros([1, 4]), 0, bdiaInverseState(Tensor.from([1, 1, 1, 1], [1, 4])));
   * const second = scheduler.inverseStep(Tensor.zeros([1, 4]), 0, first);
   * // B0' from the clean end (alphaBar = 1) to t_1 = 0 scales by sqrt(alphaBar_0) when eps = 0; then B1' from (z_1, z_0)
   * if (Math.abs(first.sample[0] - Math.sqrt(scheduler.alphasCumprod[0])) > 1e-6) throw new Error("B0'");
   * if (second.cleaner !== first.sample) throw new Error("the state moves up one entry");
   * ```
   */
  inverseStep(modelOutput: Tensor, timestep: number, state: BDIAInverseState): BDIAInverseStepOutput {
    checkBdiaState(state, state?.cleaner ?? null, modelOutput);
    checkBdiaInvertible(this.gamma);
    const index = this.schedule.index(timestep);
    const { sample: z, cleaner, shape } = state;
    const m = modelOutput.data;
    const input = z instanceof Float32Array ? z : Float32Array.from(z);
    const out = exact.allocate(exact.precisionOf(z), z.length);
    let form: PredictionForm;
    if (cleaner === null) {
      if (index !== this.timesteps.length - 1) {
        throw new RangeError(
          `BDIA's first inversion step starts from the clean image and lands on the last timestep ` +
            `${this.timesteps.at(-1)}, got timestep ${timestep}`,
        );
      }
      // B0'. DDIM inversion from the clean end to t_1, with the model at (z_0, t_1): z_1 = a z_0 + b eps
      const { a, b, epsFromSample: u, epsFromOutput: v } = this.#firstInverse;
      for (let k = 0; k < out.length; k++) out[k] = a * z[k] + b * (u * input[k] + v * m[k]);
      form = this.#firstInverse;
    } else {
      const c = this.#coefficients[index];
      if (c.backward === null) {
        throw new RangeError(`BDIA's inversion cannot go above the first timestep ${timestep} of the schedule`);
      }
      const gamma = this.gamma;
      const { a, b } = c.forward;
      const { a: aBack, b: bBack } = c.backward;
      const { epsFromSample: u, epsFromOutput: v } = c;
      for (let k = 0; k < out.length; k++) {
        // 1. eps(z_i, t_i); 2. D(t_i -> t_{i-1} | z_i); 3. D(t_i -> t_{i+1} | z_i)
        const eps = u * input[k] + v * m[k];
        const forwardIncrement = a * z[k] + b * eps - z[k];
        const backwardIncrement = aBack * z[k] + bBack * eps - z[k];
        // 4. B1 solved for z_{i+1}: B1'
        out[k] = (cleaner[k] - (1 - gamma) * z[k] - forwardIncrement) / gamma + backwardIncrement;
      }
      form = c;
    }
    exact.checkFinite(out, `BDIA's inverted sample above timestep ${timestep}`);
    return { sample: out, cleaner: z, shape, predX0: exact.predictedX0(form, input, m, shape) };
  }
}

/**
 * A BDIA sampling state from the starting noise: z_S = x_T, no z_{S+1} (the first step is then plain DDIM).
 *
 * (z_S, z_{S+1}) = (x_T, none)
 *
 * @param xT the starting noise, NCHW
 * @param options `precision`: "float32" (default) or "float64"
 * @returns a fresh state
 * @example
 * ```ts
 * import { bdiaState, TorchGenerator } from "../../mod.ts";
 * const state = bdiaState(new TorchGenerator(0).randn([1, 3, 8, 8]), { precision: "float64" });
 * if (!(state.sample instanceof Float64Array) || state.noisier !== null) throw new Error("a float64 start, no z_{S+1}");
 * ```
 */
export function bdiaState(xT: Tensor, options: { precision?: StatePrecision } = {}): BDIAState {
  return { sample: copyOf(xT, options.precision), noisier: null, shape: [...xT.shape] };
}

/**
 * A BDIA inversion state from the clean image: z_0 = the image, no z_{-1} (the first step is then DDIM inversion).
 *
 * (z_0, z_{-1}) = (x_0, none)
 *
 * @param image the image in the model's range, NCHW
 * @param options `precision`: "float32" (default) or "float64"
 * @returns a fresh state
 * @example
 * ```ts
 * import { bdiaInverseState, Tensor } from "../../mod.ts";
 * const state = bdiaInverseState(Tensor.zeros([1, 3, 8, 8]));
 * if (!(state.sample instanceof Float32Array) || state.cleaner !== null) throw new Error("a float32 image, no z_{-1}");
 * ```
 */
export function bdiaInverseState(image: Tensor, options: { precision?: StatePrecision } = {}): BDIAInverseState {
  return { sample: copyOf(image, options.precision), cleaner: null, shape: [...image.shape] };
}

/** One step of a BDIA loop: the shared `{ i, t, x, predX0 }` plus the state. */
export interface BDIALoopStep<S> extends SamplingStep {
  /** The state after the step, in its precision. */
  readonly state: S;
}

/**
 * The BDIA sampling loop as a generator: B0 at the first timestep when starting from noise, then B1 at each timestep.
 *
 * for t_i in timesteps: eps = model(z_i, t_i); (z_{i-1}, z_i) <- step; yield { i, t, x, predX0 }
 *
 * A state with `noisier` set is a decode of an inversion's pair (z_S, z_{S-1}): `sample` is z_{S-1}, at the second
 * timestep, and the loop starts there.
 *
 * @param model the denoising model
 * @param scheduler a BDIA scheduler with `setTimesteps` called
 * @param options `state`: `bdiaState(xT)`, or an inversion's pair
 * @returns an async generator of steps whose return value is the final state (z_0 in `sample`)
 * @example
 * ```ts
 * import { BDIAScheduler, bdiaSamplingLoop, bdiaState, modelFromFunction, Tensor } from "../../mod.ts";
 * const model = modelFromFunction((x) => Tensor.zeros(x.shape), { sampleSize: 4, inChannels: 1 });
 * const scheduler = BDIAScheduler.fromConfig({});
 * scheduler.setTimesteps(10);
 * const seen: number[] = [];
 * for await (const { t } of bdiaSamplingLoop(model, scheduler, { state: bdiaState(Tensor.zeros([1, 1, 4, 4])) })) {
 *   seen.push(t);
 * }
 * if (seen.join() !== scheduler.timesteps.join()) throw new Error("one step per timestep, noisiest first");
 * ```
 */
export async function* bdiaSamplingLoop(
  model: DenoisingModel,
  scheduler: BDIAScheduler,
  options: { state: BDIAState },
): AsyncGenerator<BDIALoopStep<BDIAState>, BDIAState> {
  checkBdiaState(options.state, options.state?.noisier ?? null);
  const entries = [...scheduler.timesteps.entries()].slice(options.state.noisier === null ? 0 : 1);
  return yield* exact.exactLoop(entries, options.state, async (t, state) => {
    // 1. eps(z_i, t_i), one model call; 2. B0 or B1
    const { output } = await exact.predictAt(model, state.sample, state.shape, t);
    return scheduler.step(new Tensor(output, state.shape), t, state);
  }, bdiaSample);
}

/**
 * The BDIA inversion loop as a generator: B0' from the image to t_1, then B1' at t_1, ..., t_{S-1}.
 *
 * z_1 = DDIM inversion of z_0; for i = 1 .. S-1: eps = model(z_i, t_i); z_{i+1} from (z_{i-1}, z_i); yield
 *
 * Each yielded `t` is the timestep of the model call that made the step (t_1 twice: B0' and the first B1').
 *
 * @param model the denoising model
 * @param scheduler a BDIA scheduler with gamma > 0 and `setTimesteps` called
 * @param options `state`: `bdiaInverseState(image)`
 * @returns an async generator of steps whose return value is (z_S, z_{S-1}) as `{ sample, cleaner }`
 * @throws RangeError when the scheduler's gamma is 0
 * @example
 * ```ts
 * import { BDIAScheduler, bdiaInversionLoop, bdiaInverseState, modelFromFunction, Tensor } from "../../mod.ts";
 * const model = modelFromFunction((x) => Tensor.zeros(x.shape), { sampleSize: 4, inChannels: 1 });
 * const scheduler = BDIAScheduler.fromConfig({});
 * scheduler.setTimesteps(10);
 * const loop = bdiaInversionLoop(model, scheduler, { state: bdiaInverseState(Tensor.zeros([1, 1, 4, 4])) });
 * const seen: number[] = [];
 * for await (const step of loop) seen.push(step.t);
 * // B0' and the first B1' both call the model at t_1 = 0; then t_2, ..., t_{S-1}
 * if (seen.join() !== "0,0,100,200,300,400,500,600,700,800") throw new Error(seen.join());
 * ```
 */
export async function* bdiaInversionLoop(
  model: DenoisingModel,
  scheduler: BDIAScheduler,
  options: { state: BDIAInverseState },
): AsyncGenerator<BDIALoopStep<BDIAInverseState>, BDIAInverseState> {
  const start = options.state;
  checkBdiaState(start, start?.cleaner ?? null);
  if (start.cleaner !== null) throw new RangeError("BDIA's inversion loop starts from the clean image (cleaner: null)");
  checkBdiaInvertible(scheduler.gamma);
  const timesteps = scheduler.timesteps;
  const last = timesteps.length - 1;
  // B0' with the model at (z_0, t_1), then B1' with the model at (z_i, t_i) for t_1, ..., t_{S-1}
  const modelTimesteps = [timesteps[last], ...[...timesteps].reverse().slice(0, last)];
  return yield* exact.exactLoop(modelTimesteps.entries(), start, async (t, state) => {
    let output: Float32Array;
    try {
      ({ output } = await exact.predictAt(model, state.sample, state.shape, t));
    } catch (error) {
      if (scheduler.gamma === 1 || !(error instanceof RangeError)) throw error;
      const growth = Math.pow(1 / scheduler.gamma, timesteps.length - 1);
      throw new RangeError(
        `${error.message}. BDIA's inversion with gamma = ${scheduler.gamma} multiplies rounding errors by about ` +
          `gamma^-(S - 1) = ${growth.toExponential(1)} over ${timesteps.length} steps; use gamma closer to 1, fewer ` +
          `steps, or a float64 state`,
      );
    }
    return scheduler.inverseStep(new Tensor(output, state.shape), t, state);
  }, bdiaSample);
}

/** z_i of a BDIA state as a float32 tensor. */
function bdiaSample(state: BDIAState | BDIAInverseState): Tensor {
  return exact.stateTensor(state.sample, state.shape);
}

function copyOf(x: Tensor, precision: StatePrecision | undefined): StateArray {
  if (!(x instanceof Tensor)) throw new TypeError("A BDIA state starts from a Tensor");
  const out = exact.allocate(exact.checkPrecision(precision ?? "float32"), x.size);
  out.set(x.data);
  return out;
}

function checkBdiaState(state: BDIAState | BDIAInverseState, neighbour: StateArray | null, output?: Tensor): void {
  if (state === null || typeof state !== "object" || !Array.isArray(state.shape)) {
    throw new TypeError("A BDIA state is { sample, noisier (or cleaner), shape } (see bdiaState, bdiaInverseState)");
  }
  exact.checkStateArrays(neighbour === null ? [state.sample] : [state.sample, neighbour], state.shape, "BDIA");
  if (output !== undefined) {
    if (!(output instanceof Tensor) || output.size !== state.sample.length) {
      throw new RangeError(
        `The model output has shape [${output?.shape?.join(", ")}] but the BDIA state has shape [${
          state.shape.join(", ")
        }]`,
      );
    }
  }
}
