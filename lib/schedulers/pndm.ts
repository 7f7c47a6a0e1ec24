/**
 * The PNDM sampler (pseudo numerical methods, Liu, Ren, Lin and Zhao 2022, arXiv 2202.09778), matching diffusers'
 * `PNDMScheduler` number for number: its timesteps (with their repeats), its counter-driven state and its float32
 * arithmetic. With `skip_prk_steps` it is PLMS (pseudo linear multi-step, the sampler of Stable Diffusion's first
 * releases); without, it starts with three pseudo Runge-Kutta steps of four model calls each (F-PNDM).
 *
 * | paper                  | code                | meaning                                                        |
 * |------------------------|---------------------|----------------------------------------------------------------|
 * | alpha-bar_t            | `alphaBar`          | alphasCumprod[t]                                               |
 * | alpha-bar_{t-delta}    | `alphaBarPrev`      | alpha-bar at t - T // n (or the final alpha-bar below 0)       |
 * | delta                  | `stepRatio`         | T // n, the step of every transfer (whatever the spacing)      |
 * | phi(x_t, e_t, t, t-d)  | `transfer`          | the transfer part, eq. (9): one DDIM-like step with noise e    |
 * | e_t                    | `modelOutput`       | eps_theta(x_t, t) (v is turned into eps first)                 |
 * | e'_t                   | `combinedEpsilon`   | the multistep (eq. (12)) or Runge-Kutta (eq. (13)) combination |
 * | e_{t-k delta}          | `ets`               | the last model outputs kept for the multistep formula          |
 * | f_theta(x_t)           | `predX0`            | the x0 implied by this step's model output (not in diffusers)  |
 *
 * @module
 */
import type { Tensor } from "../core/tensor.ts";
import { checkStepCount } from "../math/schedules.ts";
import { SchedulerBase } from "./_base.ts";
import {
  checkTrainTimestep,
  SCHEDULE_DEFAULTS,
  type ScheduleConfig,
  SOLVER_SCHEDULE_RULES,
} from "./_scheduler_config.ts";
import type { SchedulerStepOutput } from "./scheduler.ts";

/** A resolved PNDM config: diffusers' `PNDMScheduler` keys, snake_case. */
export interface PNDMSchedulerConfig extends ScheduleConfig {
  /** Skip the Runge-Kutta warm-up and run PLMS from the first step (diffusers' default false). */
  skip_prk_steps: boolean;
  /** Below timestep 0, alpha-bar_prev is 1 (true) or alphasCumprod[0] (false, diffusers' default). */
  set_alpha_to_one: boolean;
}

/** Options of `PNDMScheduler.step`: none (PNDM is deterministic); a pipeline's generator is accepted and unused. */
export type PNDMStepOptions = Record<string, unknown>;

/** diffusers' `PNDMScheduler` defaults. */
const PNDM_DEFAULTS: Readonly<PNDMSchedulerConfig> = Object.freeze({
  ...SCHEDULE_DEFAULTS,
  skip_prk_steps: false,
  set_alpha_to_one: false,
});

/** The order of the pseudo Runge-Kutta warm-up (diffusers' `pndm_order`): 4 model calls per step. */
const PNDM_ORDER = 4;

/** The coefficients of the transfer eq. (9) between two timesteps, float32 as diffusers computes them. */
interface TransferCoefficients {
  sqrtAlphaBar: number;
  sqrtBetaBar: number;
  /** sqrt(alphaBarPrev / alphaBar). */
  sampleCoeff: number;
  /** alphaBarPrev - alphaBar. */
  alphaBarDiff: number;
  /** alphaBar sqrt(1 - alphaBarPrev) + sqrt(alphaBar (1 - alphaBar) alphaBarPrev). */
  denominator: number;
}

const f32 = Math.fround;

/**
 * The PNDM scheduler: PLMS (`skip_prk_steps: true`) or F-PNDM (Runge-Kutta warm-up, then PLMS), as diffusers'
 * `PNDMScheduler`.
 *
 * x_{t-delta} = sqrt(alphaBarPrev / alphaBar) x_t - (alphaBarPrev - alphaBar) e' /
 *   (alphaBar sqrt(1 - alphaBarPrev) + sqrt(alphaBar (1 - alphaBar) alphaBarPrev)), eq. (9)
 *
 * The step is driven by a counter, as in diffusers: call `step` once for each entry of `timesteps`, in order (the
 * timesteps repeat where a step reuses a sample). Every transfer goes from t to t - T // n, whatever the spacing
 * (diffusers does the same; with `leading` spacing that is the next entry of the schedule).
 *
 * @example
 * ```ts
 * import { PNDMScheduler, Tensor } from "../../mod.ts";
 * const scheduler = PNDMScheduler.fromConfig({ skip_prk_steps: true });
 * scheduler.setTimesteps(10); // [900, 800, 800, 700, ..., 0]
 * let x = Tensor.from(new Array(192).fill(1), [1, 3, 8, 8]);
 * for (const t of scheduler.timesteps) {
 *   const eps = Tensor.zeros(x.shape); // a model's prediction
 *   x = scheduler.step(eps, t, x).prevSample;
 * }
 * // eps = 0: each step scales by sqrt(alphaBar_prev / alphaBar_t) (PNDM eq. (9)), from t = 900 down to the final
 * // alpha-bar, alphaBar_0 (set_alpha_to_one: false), so x_0 = sqrt(alphaBar_0 / alphaBar_900) x_T
 * const expected = Math.sqrt(scheduler.alphasCumprod[0] / scheduler.alphasCumprod[900]);
 * if (Math.abs(x.data[0] - expected) > 1e-4 * expected) throw new Error(`got ${x.data[0]}, expected ${expected}`);
 * ```
 */
export class PNDMScheduler extends SchedulerBase<PNDMSchedulerConfig, PNDMStepOptions> {
  /** alpha-bar used below timestep 0: 1, or alphasCumprod[0] when `set_alpha_to_one` is false. */
  readonly finalAlphaCumprod: number;
  #prkTimesteps: readonly number[] = [];
  #plmsTimesteps: readonly number[] = [];
  #counter = 0;
  #ets: Float32Array[] = [];
  #curSample: Float32Array | null = null;
  #curModelOutput: Float32Array | null = null;
  #coefficients = new Map<string, TransferCoefficients>();
  #combined = new Float32Array(0);

  /**
   * Build a scheduler from a diffusers config (snake_case; absent keys take diffusers' defaults).
   *
   * @param config `scheduler_config.json` as an object
   * @throws RangeError or TypeError naming a bad key and value
   */
  constructor(config: Partial<PNDMSchedulerConfig> | Record<string, unknown> = {}) {
    super(config, PNDM_DEFAULTS, {
      scheduler: "PNDMScheduler",
      ...SOLVER_SCHEDULE_RULES,
    });
    if (typeof this.config.skip_prk_steps !== "boolean") {
      throw new RangeError(
        `PNDMScheduler config skip_prk_steps must be true or false, got ${String(this.config.skip_prk_steps)}`,
      );
    }
    if (this.config.prediction_type === "sample") {
      throw new RangeError(
        'PNDMScheduler supports prediction_type "epsilon" and "v_prediction" (as diffusers), got "sample"',
      );
    }
    this.finalAlphaCumprod = this.config.set_alpha_to_one ? 1 : this.alphasCumprod[0];
  }

  /** The Runge-Kutta part of the schedule (empty with `skip_prk_steps`). */
  get prkTimesteps(): readonly number[] {
    return this.#prkTimesteps;
  }

  /** The multistep part of the schedule. */
  get plmsTimesteps(): readonly number[] {
    return this.#plmsTimesteps;
  }

  /** How many steps were taken since `setTimesteps` (diffusers' `counter`). */
  get counter(): number {
    return this.#counter;
  }

  /**
   * Build a scheduler from a diffusers `scheduler_config.json` object.
   *
   * @param config the config, snake_case
   * @returns a new scheduler
   * @example
   * ```ts
   * import { PNDMScheduler } from "../../mod.ts";
   * const scheduler = PNDMScheduler.fromConfig({ skip_prk_steps: true, steps_offset: 1 });
   * scheduler.setTimesteps(10);
   * // diffusers' leading spacing plus the offset, [1, 101, ..., 901], reversed with 801 repeated for the PLMS start
   * const expected = "901,801,801,701,601,501,401,301,201,101,1";
   * if (scheduler.timesteps.join() !== expected) throw new Error(`got ${scheduler.timesteps.join()}`);
   * ```
   */
  static fromConfig(config: Partial<PNDMSchedulerConfig> | Record<string, unknown> = {}): PNDMScheduler {
    return new PNDMScheduler(config);
  }

  /**
   * Choose the schedule for n inference steps, as diffusers: the n spaced timesteps, then with the Runge-Kutta
   * warm-up its 12 half-step timesteps followed by the rest, or for PLMS the list with its second entry repeated.
   *
   * PLMS: [tau_n, tau_{n-1}, tau_{n-1}, tau_{n-2}, ..., tau_1]; PRK: the last 4 spaced timesteps and their
   * midpoints (+ (T // n) // 2), each inner one twice, then tau_{n-3}, ..., tau_1
   *
   * @param numInferenceSteps n (at least 4 with the Runge-Kutta warm-up)
   * @throws RangeError when n is not an integer in [1, T], or below 4 without `skip_prk_steps`
   * @example
   * ```ts
   * import { PNDMScheduler } from "../../mod.ts";
   * const scheduler = PNDMScheduler.fromConfig({ steps_offset: 1 });
   * scheduler.setTimesteps(10);
   * // diffusers' set_timesteps: Runge-Kutta (PRK) steps over the last 4 of [1, 101, ..., 901] at half spacing, then
   * // PLMS from 601 down
   * const expected = "901,851,851,801,801,751,751,701,701,651,651,601,601,501,401,301,201,101,1";
   * if (scheduler.timesteps.join() !== expected) throw new Error(`got ${scheduler.timesteps.join()}`);
   * ```
   */
  override setTimesteps(numInferenceSteps: number): void {
    if (typeof numInferenceSteps !== "number") {
      throw new TypeError(
        `PNDMScheduler.setTimesteps takes a number of inference steps, got ${String(numInferenceSteps)}`,
      );
    }
    checkStepCount(numInferenceSteps, this.numTrainTimesteps);
    if (!this.config.skip_prk_steps && numInferenceSteps < PNDM_ORDER) {
      throw new RangeError(
        `PNDMScheduler with the Runge-Kutta warm-up needs numInferenceSteps >= ${PNDM_ORDER}, got ` +
          `${numInferenceSteps}; use skip_prk_steps: true for fewer steps`,
      );
    }
    // 1. the spaced timesteps, ascending
    const spaced = this.spacedSchedule(numInferenceSteps).reverse();
    const n = spaced.length;
    if (this.config.skip_prk_steps) {
      // 2a. PLMS: the second-to-last timestep twice (its second visit redoes the first step with the averaged e)
      this.#prkTimesteps = [];
      this.#plmsTimesteps = [...spaced.slice(0, n - 1), ...spaced.slice(Math.max(0, n - 2), n - 1), spaced[n - 1]]
        .reverse();
    } else {
      // 2b. PRK: the last four timesteps and their midpoints, each inner point visited twice, then PLMS
      const half = Math.floor(Math.floor(this.numTrainTimesteps / numInferenceSteps) / 2);
      const points = spaced.slice(n - PNDM_ORDER).flatMap((t) => [t, t + half]).slice(0, -1);
      this.#prkTimesteps = points.flatMap((t) => [t, t]).slice(1, -1).reverse();
      this.#plmsTimesteps = spaced.slice(0, n - 3).reverse();
    }
    this.setSchedule([...this.prkTimesteps, ...this.plmsTimesteps], numInferenceSteps);
  }

  /** A new schedule clears the multistep history and the counter. */
  protected override onSchedule(): void {
    this.#counter = 0;
    this.#ets = [];
    this.#curSample = null;
    this.#curModelOutput = null;
    this.#coefficients.clear();
  }

  /**
   * One PNDM step: a Runge-Kutta stage while the warm-up lasts, then a pseudo linear multi-step, each a transfer
   * eq. (9) with the combined noise e'.
   *
   * PLMS: e' = (55 e_t - 59 e_{t-d} + 37 e_{t-2d} - 9 e_{t-3d}) / 24, eq. (12) (lower orders while history is short);
   * PRK: e' = (e1 + 2 e2 + 2 e3 + e4) / 6, eq. (13)
   *
   * `predOriginalSample` (diffusers' PNDM returns none) is the x0 implied by this call's model output at this call's
   * timestep and sample: (x_t - sqrt(1 - alphaBar_t) e_t) / sqrt(alphaBar_t), or sqrt(alphaBar_t) x_t -
   * sqrt(1 - alphaBar_t) v_t for v-prediction.
   *
   * @param modelOutput eps (or v) at `timestep`, shaped like `sample`
   * @param timestep t, the next entry of `timesteps` (the state counts the steps)
   * @param sample x_t
   * @param _options unused (PNDM draws no noise)
   * @returns x_{t-delta} (or the Runge-Kutta stage's point) and the predicted x0
   * @throws RangeError when `setTimesteps` was not called, t is not the expected next timestep, the shapes differ,
   *   or an input or the result is not finite
   * @example
   * ```ts
   * import { PNDMScheduler, Tensor } from "../../mod.ts";
   * const scheduler = PNDMScheduler.fromConfig({ skip_prk_steps: true });
   * scheduler.setTimesteps(5);
   * const x = Tensor.from(new Array(192).fill(1), [1, 3, 8, 8]);
   * const { prevSample } = scheduler.step(Tensor.zeros(x.shape), scheduler.timesteps[0], x);
   * // leading spacing, step 200: t = 800 goes to 600; with eps = 0 the step scales by sqrt(alphaBar_600 / alphaBar_800)
   * const expected = Math.sqrt(scheduler.alphasCumprod[600] / scheduler.alphasCumprod[800]);
   * if (Math.abs(prevSample.data[0] - expected) > 1e-5 * expected) throw new Error(`got ${prevSample.data[0]}`);
   * ```
   */
  step(modelOutput: Tensor, timestep: number, sample: Tensor, _options: PNDMStepOptions = {}): SchedulerStepOutput {
    this.checkStepInputs(modelOutput, sample);
    const expected = this.timesteps[this.counter];
    if (expected === undefined) {
      throw new RangeError(
        `PNDMScheduler took all ${this.timesteps.length} steps of its schedule; call setTimesteps(n) to start again`,
      );
    }
    if (timestep !== expected) {
      checkTrainTimestep(timestep, this.numTrainTimesteps);
      throw new RangeError(
        `PNDMScheduler expected timestep ${expected} (step ${this.counter} of its schedule), got ${timestep}; ` +
          "its state counts the steps, so pass the timesteps in order",
      );
    }
    const m = modelOutput.data;
    const x = sample.data;
    const result = this.counter < this.prkTimesteps.length ? this.#stepPrk(m, x, timestep) : this.#stepPlms(m, x);
    const predX0 = this.#impliedX0(m, x, timestep);
    let check = 0;
    for (let i = 0; i < m.length; i++) check += (m[i] - m[i]) + (result[i] - result[i]);
    const output = this.finishStep(
      check,
      result,
      predX0,
      [[modelOutput, "modelOutput"], [sample, "sample"]],
      sample.shape,
    );
    this.#counter += 1;
    return output;
  }

  /** 1. a Runge-Kutta stage, eq. (13): e1..e4 at t, t - d/2, t - d/2, t - d, each transferred from the stage's x_t. */
  #stepPrk(m: Float32Array, x: Float32Array, timestep: number): Float32Array {
    const counter = this.counter;
    const stepRatio = Math.floor(this.numTrainTimesteps / this.numInferenceSteps!);
    const prevTimestep = timestep - (counter % 2 === 1 ? 0 : Math.floor(stepRatio / 2));
    const start = this.prkTimesteps[counter - (counter % 4)];
    const stage = counter % 4;
    let combined = m;
    if (stage === 0) {
      this.#curModelOutput = axpy(null, f32(1 / 6), m);
      this.#ets.push(m.slice());
      this.#curSample = x.slice();
    } else if (stage === 1 || stage === 2) {
      this.#curModelOutput = axpy(this.#curModelOutput, f32(1 / 3), m);
    } else {
      combined = axpy(this.#curModelOutput, f32(1 / 6), m);
      this.#curModelOutput = null;
    }
    return this.#transfer(this.#curSample ?? x, start, prevTimestep, combined);
  }

  /** 2. a pseudo linear multi-step, eq. (12), with the lower-order starts diffusers uses. */
  #stepPlms(m: Float32Array, x: Float32Array): Float32Array {
    if (!this.config.skip_prk_steps && this.#ets.length < 3) {
      throw new RangeError("PNDMScheduler reached a multistep step before the Runge-Kutta warm-up filled its history");
    }
    const stepRatio = Math.floor(this.numTrainTimesteps / this.numInferenceSteps!);
    let timestep = this.timesteps[this.counter];
    let prevTimestep = timestep - stepRatio;
    let sample = x;
    if (this.counter !== 1) {
      // keep the last four outputs, reusing the dropped one's buffer
      this.#ets = this.#ets.slice(-4);
      const recycled = this.#ets.length === 4 && this.#ets[0].length === m.length ? this.#ets.shift()! : null;
      if (recycled === null) this.#ets = this.#ets.slice(-3);
      this.#ets.push(recycled === null ? m.slice() : (recycled.set(m), recycled));
    } else {
      // the second PLMS call redoes the first step from the same x_t with the average of the two outputs
      prevTimestep = timestep;
      timestep = timestep + stepRatio;
    }
    const ets = this.#ets;
    const size = m.length;
    if (this.#combined.length !== size) this.#combined = new Float32Array(size);
    const combined = this.#combined;
    if (ets.length === 1 && this.counter === 0) {
      combined.set(m);
      this.#curSample = x.slice();
    } else if (ets.length === 1 && this.counter === 1) {
      averageInto(m, ets[0], combined);
      sample = this.#curSample!;
      this.#curSample = null;
    } else {
      multistepInto(ets, combined);
    }
    return this.#transfer(sample, timestep, prevTimestep, combined);
  }

  /** 3. the transfer eq. (9) from `timestep` to `prevTimestep` with noise e (v turned into eps first). */
  #transfer(x: Float32Array, timestep: number, prevTimestep: number, e: Float32Array): Float32Array {
    const c = this.#coefficientsAt(timestep, prevTimestep);
    return transfer(x, e, this.config.prediction_type === "v_prediction", c);
  }

  /** 4. the x0 this call's model output implies at its timestep (eq. (9) of the DDIM paper, or the v identity). */
  #impliedX0(m: Float32Array, x: Float32Array, timestep: number): Float32Array {
    const alphaBar = this.alphasCumprod[timestep];
    const sqrtAlphaBar = f32(Math.sqrt(alphaBar));
    const sqrtBetaBar = f32(Math.sqrt(f32(1 - alphaBar)));
    const out = new Float32Array(x.length);
    if (this.config.prediction_type === "v_prediction") {
      for (let i = 0; i < x.length; i++) out[i] = f32(sqrtAlphaBar * x[i]) - f32(sqrtBetaBar * m[i]);
    } else {
      for (let i = 0; i < x.length; i++) out[i] = f32(x[i] - f32(sqrtBetaBar * m[i])) / sqrtAlphaBar;
    }
    return out;
  }

  #coefficientsAt(timestep: number, prevTimestep: number): TransferCoefficients {
    const key = `${timestep},${prevTimestep}`;
    const cached = this.#coefficients.get(key);
    if (cached !== undefined) return cached;
    checkTrainTimestep(timestep, this.numTrainTimesteps);
    const alphaBar = this.alphasCumprod[timestep];
    const alphaBarPrev = prevTimestep >= 0 ? this.alphasCumprod[prevTimestep] : this.finalAlphaCumprod;
    const betaBar = f32(1 - alphaBar);
    const betaBarPrev = f32(1 - alphaBarPrev);
    const coefficients: TransferCoefficients = {
      sqrtAlphaBar: f32(Math.sqrt(alphaBar)),
      sqrtBetaBar: f32(Math.sqrt(betaBar)),
      sampleCoeff: f32(Math.sqrt(f32(alphaBarPrev / alphaBar))),
      alphaBarDiff: f32(alphaBarPrev - alphaBar),
      denominator: f32(
        f32(alphaBar * f32(Math.sqrt(betaBarPrev))) +
          f32(Math.sqrt(f32(f32(alphaBar * betaBar) * alphaBarPrev))),
      ),
    };
    this.#coefficients.set(key, coefficients);
    return coefficients;
  }
}

/**
 * The transfer eq. (9) elementwise in float32: sqrt(a'/a) x - (a' - a) e / denominator, with e = sqrt(a) v +
 * sqrt(1 - a) x first for v-prediction.
 */
function transfer(x: Float32Array, e: Float32Array, fromV: boolean, c: TransferCoefficients): Float32Array {
  const { sqrtAlphaBar, sqrtBetaBar, sampleCoeff, alphaBarDiff, denominator } = c;
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const eps = fromV ? f32(f32(sqrtAlphaBar * e[i]) + f32(sqrtBetaBar * x[i])) : e[i];
    out[i] = f32(f32(sampleCoeff * x[i]) - f32(f32(alphaBarDiff * eps) / denominator));
  }
  return out;
}

/** (m + e) / 2 in float32: the second PLMS call's average of two outputs. */
function averageInto(m: Float32Array, e: Float32Array, out: Float32Array): void {
  for (let i = 0; i < out.length; i++) out[i] = f32(m[i] + e[i]) / 2;
}

/**
 * The pseudo linear multi-step combination eq. (12) of the last 2, 3 or 4 outputs (oldest first), in float32 as
 * diffusers: (3 e1 - e2) / 2, (23 e1 - 16 e2 + 5 e3) / 12, (55 e1 - 59 e2 + 37 e3 - 9 e4) / 24.
 */
function multistepInto(ets: readonly Float32Array[], out: Float32Array): void {
  const size = out.length;
  const e1 = ets[ets.length - 1];
  const e2 = ets[ets.length - 2];
  if (ets.length === 2) {
    for (let i = 0; i < size; i++) out[i] = f32(f32(3 * e1[i]) - e2[i]) / 2;
    return;
  }
  const e3 = ets[ets.length - 3];
  if (ets.length === 3) {
    for (let i = 0; i < size; i++) out[i] = f32(f32(f32(f32(23 * e1[i]) - f32(16 * e2[i])) + f32(5 * e3[i])) / 12);
    return;
  }
  const e4 = ets[ets.length - 4];
  const oneOver24 = f32(1 / 24);
  for (let i = 0; i < size; i++) {
    out[i] = f32(oneOver24 * f32(f32(f32(f32(55 * e1[i]) - f32(59 * e2[i])) + f32(37 * e3[i])) - f32(9 * e4[i])));
  }
}

/** acc + a m in float32 (acc absent: a m), into a new array. */
function axpy(acc: Float32Array | null, a: number, m: Float32Array): Float32Array {
  const out = new Float32Array(m.length);
  for (let i = 0; i < m.length; i++) {
    const term = f32(a * m[i]);
    out[i] = acc === null ? term : acc[i] + term;
  }
  return out;
}
