/**
 * Noise schedules and timestep spacings, computed exactly as diffusers (PyTorch float32, numpy float64) does.
 *
 * | paper            | code               | meaning                                            |
 * |------------------|--------------------|----------------------------------------------------|
 * | beta_t           | `betas[t]`         | variance added by the forward step t-1 -> t        |
 * | alpha_t          | `alphas[t]`        | 1 - beta_t                                         |
 * | alpha-bar_t      | `alphasCumprod[t]` | prod_{s <= t} alpha_s (the DDIM paper's alpha_t)   |
 * | T                | `numTrainTimesteps`| number of training timesteps                       |
 * | tau_1..tau_S     | `timesteps`        | the sub-sequence sampled, descending (eq. 13)      |
 *
 * @module
 */

/** A beta schedule name as diffusers spells it in `scheduler_config.json`. */
export type BetaSchedule = "linear" | "scaled_linear" | "squaredcos_cap_v2" | "sigmoid";

/**
 * How `setTimesteps(n)` picks n of the T training timesteps: diffusers' `leading`, `trailing` and `linspace`, plus
 * the official DDIM code's `quad` skip type.
 */
export type TimestepSpacing = "leading" | "trailing" | "linspace" | "quad";

/**
 * The beta schedules this package knows.
 *
 * @example
 * ```ts
 * import { BETA_SCHEDULES, betaSchedule } from "./schedules.ts";
 * for (const name of BETA_SCHEDULES) {
 *   const betas = betaSchedule(name);
 *   if (!betas.every((beta) => beta > 0 && beta < 1)) throw new Error(`${name}: a beta outside (0, 1)`);
 * }
 * ```
 */
export const BETA_SCHEDULES: readonly BetaSchedule[] = ["linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid"];

/**
 * The timestep spacings this package knows.
 *
 * @example
 * ```ts
 * import { spacedTimesteps, TIMESTEP_SPACINGS } from "./schedules.ts";
 * for (const spacing of TIMESTEP_SPACINGS) {
 *   const timesteps = spacedTimesteps(spacing, 10);
 *   if (timesteps.length !== 10) throw new Error(`${spacing}: ${timesteps.length} timesteps for 10 steps`);
 * }
 * ```
 */
export const TIMESTEP_SPACINGS: readonly TimestepSpacing[] = ["leading", "trailing", "linspace", "quad"];

const f32 = Math.fround;

/**
 * `torch.linspace(start, end, steps, dtype=torch.float32)` on the CPU: float32 arithmetic, computed from the start
 * for the first half and from the end for the second half.
 *
 * x_i = start + step * i (i < steps/2), x_i = end - step * (steps - 1 - i) otherwise, step = (end - start)/(steps - 1)
 *
 * @param start the first value (rounded to float32)
 * @param end the last value (rounded to float32)
 * @param steps how many values
 * @returns the values, float32
 * @example
 * ```ts
 * import { linspaceFloat32 } from "./schedules.ts";
 * const grid = linspaceFloat32(0, 1, 5);
 * if (grid.join() !== "0,0.25,0.5,0.75,1") throw new Error(`got ${grid.join()}`);
 * ```
 */
export function linspaceFloat32(start: number, end: number, steps: number): Float32Array {
  if (!Number.isInteger(steps) || steps < 0) {
    throw new RangeError(`linspace needs a whole number of steps, got ${steps}`);
  }
  const out = new Float32Array(steps);
  if (steps === 0) return out;
  const startF = f32(start);
  const endF = f32(end);
  if (steps === 1) {
    out[0] = startF;
    return out;
  }
  const step = f32(f32(endF - startF) / (steps - 1));
  const halfway = Math.floor(steps / 2);
  for (let i = 0; i < steps; i++) {
    out[i] = i < halfway ? f32(startF + f32(step * i)) : f32(endF - f32(step * (steps - i - 1)));
  }
  return out;
}

/**
 * The cosine ("squaredcos_cap_v2", Nichol and Dhariwal 2021) betas, computed in float64 and rounded to float32.
 *
 * beta_t = min(1 - alphaBar((t + 1)/T) / alphaBar(t/T), maxBeta), alphaBar(s) = cos((s + 0.008)/1.008 * pi/2)^2
 *
 * @param numTrainTimesteps T
 * @param maxBeta the cap (diffusers' default 0.999)
 * @returns T betas, float32
 * @example
 * ```ts
 * import { betasForAlphaBar } from "./schedules.ts";
 * const betas = betasForAlphaBar(1000);
 * // beta_0 = 1 - alphaBar(1 / 1000) / alphaBar(0), alphaBar(t) = cos((t + 0.008) / 1.008 * pi / 2)^2 (Nichol and Dhariwal)
 * const alphaBar = (t: number) => Math.cos(((t + 0.008) / 1.008) * Math.PI / 2) ** 2;
 * const beta0 = 1 - alphaBar(1 / 1000) / alphaBar(0);
 * if (betas.length !== 1000 || Math.abs(betas[0] - beta0) > 1e-9) throw new Error(`beta_0 ${betas[0]}, expected ${beta0}`);
 * ```
 */
export function betasForAlphaBar(numTrainTimesteps: number, maxBeta = 0.999): Float32Array {
  const alphaBar = (s: number) => Math.cos((s + 0.008) / 1.008 * Math.PI / 2) ** 2;
  const betas = new Float32Array(numTrainTimesteps);
  for (let i = 0; i < numTrainTimesteps; i++) {
    const t1 = i / numTrainTimesteps;
    const t2 = (i + 1) / numTrainTimesteps;
    betas[i] = Math.min(1 - alphaBar(t2) / alphaBar(t1), maxBeta);
  }
  return betas;
}

/** What `betaSchedule` needs besides the schedule's name. */
export interface BetaScheduleOptions {
  /** T, the number of training timesteps (default 1000). */
  numTrainTimesteps?: number;
  /** beta_1 (default 0.0001). */
  betaStart?: number;
  /** beta_T (default 0.02). */
  betaEnd?: number;
}

/**
 * The betas of a named schedule, float32 as diffusers builds them.
 *
 * linear: beta = linspace(beta_start, beta_end, T); scaled_linear: beta = linspace(sqrt beta_start, sqrt beta_end,
 * T)^2; squaredcos_cap_v2: see `betasForAlphaBar`; sigmoid: beta = sigmoid(linspace(-6, 6, T)) (beta_end -
 * beta_start) + beta_start
 *
 * @param name the schedule
 * @param options T and the beta range
 * @returns T betas, float32
 * @throws RangeError for an unknown schedule, naming it
 * @example
 * ```ts
 * import { betaSchedule } from "./schedules.ts";
 * const betas = betaSchedule("scaled_linear", { betaStart: 0.00085, betaEnd: 0.012 });
 * // linear in sqrt(beta) from sqrt(0.00085) to sqrt(0.012): the ends are the given betas
 * if (Math.abs(betas[0] - 0.00085) > 1e-9 || Math.abs(betas[999] - 0.012) > 1e-9) throw new Error("wrong ends");
 * ```
 */
export function betaSchedule(name: BetaSchedule, options: BetaScheduleOptions = {}): Float32Array {
  const numTrainTimesteps = options.numTrainTimesteps ?? 1000;
  const betaStart = options.betaStart ?? 0.0001;
  const betaEnd = options.betaEnd ?? 0.02;
  switch (name) {
    case "linear":
      return linspaceFloat32(betaStart, betaEnd, numTrainTimesteps);
    case "scaled_linear": {
      const roots = linspaceFloat32(Math.sqrt(betaStart), Math.sqrt(betaEnd), numTrainTimesteps);
      return roots.map((r) => f32(r * r));
    }
    case "squaredcos_cap_v2":
      return betasForAlphaBar(numTrainTimesteps);
    case "sigmoid": {
      const x = linspaceFloat32(-6, 6, numTrainTimesteps);
      const range = f32(betaEnd - betaStart);
      const start = f32(betaStart);
      return x.map((v) => f32(f32(f32(1 / f32(1 + f32(Math.exp(-v)))) * range) + start));
    }
    default:
      throw new RangeError(
        `Unknown beta_schedule "${String(name)}"; expected one of ${BETA_SCHEDULES.join(", ")}`,
      );
  }
}

/**
 * The cumulative products of the alphas, as `torch.cumprod(1 - betas)` on the CPU: alphas in float32, the running
 * product in float64, each entry stored as float32.
 *
 * alphaBar_t = prod_{s <= t} (1 - beta_s)
 *
 * @param betas the betas, float32
 * @returns alphaBar, float32, same length
 * @example
 * ```ts
 * import { alphasCumprod, betaSchedule } from "./schedules.ts";
 * const alphaBar = alphasCumprod(betaSchedule("linear"));
 * // the product of 1 - beta_t, beta_t = 1e-4 + (0.02 - 1e-4) t / 999, in float64
 * let product = 1;
 * for (let t = 0; t < 1000; t++) product *= 1 - (1e-4 + (0.02 - 1e-4) * t / 999);
 * if (Math.abs(alphaBar[999] / product - 1) > 1e-3) throw new Error(`alphaBar_999 ${alphaBar[999]}, expected ${product}`);
 * ```
 */
export function alphasCumprod(betas: Float32Array): Float32Array {
  const out = new Float32Array(betas.length);
  let product = 1;
  for (let t = 0; t < betas.length; t++) {
    product *= f32(1 - betas[t]);
    out[t] = product;
  }
  return out;
}

/**
 * Rescale betas so the last timestep has zero signal-to-noise ratio (Lin et al. 2023, arXiv 2305.08891, Algorithm 1),
 * in float32 as diffusers' `rescale_zero_terminal_snr`.
 *
 * sqrt(alphaBar)'_t = (sqrt(alphaBar_t) - sqrt(alphaBar_T)) * sqrt(alphaBar_1) / (sqrt(alphaBar_1) - sqrt(alphaBar_T))
 *
 * @param betas the original betas, float32
 * @returns new betas whose alphaBar ends at exactly 0
 * @example
 * ```ts
 * import { betaSchedule, rescaleZeroTerminalSnr } from "./schedules.ts";
 * const betas = rescaleZeroTerminalSnr(betaSchedule("scaled_linear", { betaStart: 0.00085, betaEnd: 0.012 }));
 * // zero terminal SNR: alphaBar_T = 0, so the last beta is 1
 * if (betas[999] !== 1) throw new Error(`the last beta is ${betas[999]}, expected 1`);
 * ```
 */
export function rescaleZeroTerminalSnr(betas: Float32Array): Float32Array {
  const n = betas.length;
  const sqrtAlphaBar = alphasCumprod(betas).map((a) => f32(Math.sqrt(a)));
  const first = sqrtAlphaBar[0];
  const last = sqrtAlphaBar[n - 1];
  const scale = f32(first / f32(first - last));
  const alphaBar = sqrtAlphaBar.map((s) => {
    const shifted = f32(f32(s - last) * scale);
    return f32(shifted * shifted);
  });
  const out = new Float32Array(n);
  out[0] = f32(1 - alphaBar[0]);
  for (let t = 1; t < n; t++) out[t] = f32(1 - f32(alphaBar[t] / alphaBar[t - 1]));
  return out;
}

/**
 * Round half to even, as numpy's `round` does.
 *
 * round(2.5) = 2, round(3.5) = 4
 *
 * @param x a number
 * @returns the nearest integer, ties to even
 * @example
 * ```ts
 * import { roundHalfEven } from "./schedules.ts";
 * if (roundHalfEven(499.5) !== 500 || roundHalfEven(498.5) !== 498) throw new Error("ties go to the even neighbour");
 * ```
 */
export function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/**
 * `np.arange(start, stop, step)` for floats, in float64 with numpy's length and fill rule.
 *
 * length ceil((stop - start)/step), x_0 = start, x_1 = start + step, x_i = start + i ((start + step) - start), i >= 2
 *
 * @param start the first value
 * @param stop the end, not included
 * @param step the step (negative for a descending range)
 * @returns the values, float64
 * @example
 * ```ts
 * import { numpyArange } from "./schedules.ts";
 * // np.arange(1000, 0, -1000 / 3) is [1000, 666.66..., 333.33...]
 * const values = numpyArange(1000, 0, -1000 / 3);
 * if (values.length !== 3 || Math.abs(values[2] - 1000 / 3) > 1e-9) throw new Error("np.arange");
 * ```
 */
export function numpyArange(start: number, stop: number, step: number): number[] {
  const length = Math.max(0, Math.ceil((stop - start) / step));
  const values: number[] = [];
  if (length >= 1) values.push(start);
  if (length >= 2) values.push(start + step);
  const delta = (start + step) - start;
  for (let i = 2; i < length; i++) values.push(start + i * delta);
  return values;
}

/**
 * `np.linspace(start, stop, num)` in float64, the last value exactly `stop`.
 *
 * x_i = start + i (stop - start) / (num - 1)
 *
 * @param start the first value
 * @param stop the last value
 * @param num how many values
 * @returns the values, float64
 * @example
 * ```ts
 * import { numpyLinspace } from "./schedules.ts";
 * // np.linspace(0, 999, 4) is [0, 333, 666, 999]
 * if (numpyLinspace(0, 999, 4).join() !== "0,333,666,999") throw new Error("np.linspace");
 * ```
 */
export function numpyLinspace(start: number, stop: number, num: number): number[] {
  if (num === 1) return [start];
  const step = (stop - start) / (num - 1);
  const values = Array.from({ length: num }, (_, i) => i * step + start);
  values[num - 1] = stop;
  return values;
}

/** What `spacedTimesteps` needs besides the spacing and the count. */
export interface SpacedTimestepsOptions {
  /** T, the number of training timesteps (default 1000). */
  numTrainTimesteps?: number;
  /** Added to every timestep of the `leading` spacing (default 0), as diffusers' `steps_offset`. */
  stepsOffset?: number;
}

/**
 * The descending timesteps tau_S > ... > tau_1 that `setTimesteps(n)` samples, exactly as diffusers picks them (numpy
 * float64, round half to even), plus the official DDIM code's `quad` skip type.
 *
 * leading: tau = k floor(T/n) + offset; trailing: tau = round(arange(T, 0, -T/n)) - 1;
 * linspace: tau = round(linspace(0, T - 1, n)); quad: tau = floor(linspace(0, sqrt(0.8 T), n)^2)
 *
 * @param spacing the rule
 * @param numInferenceSteps n, between 1 and T
 * @param options T and the steps offset
 * @returns n integer timesteps, descending
 * @throws RangeError for an unknown spacing, a bad n, or a `quad` schedule that repeats a timestep
 * @example
 * ```ts
 * import { spacedTimesteps } from "./schedules.ts";
 * // diffusers: round(arange(1000, 0, -1000 / 3)) - 1 = [1000, 667, 333] - 1
 * const timesteps = spacedTimesteps("trailing", 3);
 * if (timesteps.join() !== "999,666,332") throw new Error(`got ${timesteps.join()}`);
 * ```
 */
export function spacedTimesteps(
  spacing: TimestepSpacing,
  numInferenceSteps: number,
  options: SpacedTimestepsOptions = {},
): number[] {
  const numTrainTimesteps = options.numTrainTimesteps ?? 1000;
  const stepsOffset = options.stepsOffset ?? 0;
  checkStepCount(numInferenceSteps, numTrainTimesteps);
  const n = numInferenceSteps;
  const T = numTrainTimesteps;
  switch (spacing) {
    case "leading": {
      const ratio = Math.floor(T / n);
      return Array.from({ length: n }, (_, k) => (n - 1 - k) * ratio + stepsOffset);
    }
    case "trailing":
      // numpy's length rule gives n + 1 values for some n (ceil(T / (T / n)) > n, e.g. T = 1000, n = 223); the extra
      // value is ~0 and would become timestep -1, which diffusers keeps and this package drops.
      return numpyArange(T, 0, -(T / n)).map((x) => roundHalfEven(x) - 1).filter((t) => t >= 0);
    case "linspace":
      return numpyLinspace(0, T - 1, n).map(roundHalfEven).reverse();
    case "quad": {
      const timesteps = numpyLinspace(0, Math.sqrt(T * 0.8), n).map((x) => Math.trunc(x * x)).reverse();
      for (let k = 1; k < timesteps.length; k++) {
        if (timesteps[k] === timesteps[k - 1]) {
          throw new RangeError(
            `quad spacing with ${n} steps repeats timestep ${timesteps[k]} (T = ${T}); use fewer steps`,
          );
        }
      }
      return timesteps;
    }
    default:
      throw new RangeError(
        `Unknown timestep_spacing "${String(spacing)}"; expected one of ${TIMESTEP_SPACINGS.join(", ")}`,
      );
  }
}

/**
 * Throw unless n is a whole number of inference steps between 1 and T: the one check of a step count, used by every
 * scheduler's `setTimesteps` and by the pipelines before they draw anything.
 *
 * 1 <= n <= T
 *
 * @param numInferenceSteps n
 * @param numTrainTimesteps T
 * @throws RangeError naming n and T
 * @example
 * ```ts
 * import { checkStepCount } from "./schedules.ts";
 * checkStepCount(50, 1000);
 * let message = "";
 * try {
 *   checkStepCount(1001, 1000);
 * } catch (error) {
 *   message = (error as Error).message;
 * }
 * if (!message.includes("1000 training timesteps, got 1001")) throw new Error(message);
 * ```
 */
export function checkStepCount(numInferenceSteps: number, numTrainTimesteps: number): void {
  const positive = typeof numInferenceSteps === "number" && Number.isInteger(numInferenceSteps) &&
    numInferenceSteps > 0;
  if (!positive || numInferenceSteps > numTrainTimesteps) {
    throw new RangeError(
      `Cannot take ${String(numInferenceSteps)} inference steps: numInferenceSteps must be an integer from 1 to the ` +
        `${numTrainTimesteps} training timesteps${positive ? "" : ", so a positive integer"}, got ${
          String(numInferenceSteps)
        }`,
    );
  }
}
