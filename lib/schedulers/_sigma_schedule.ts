/**
 * Private helpers shared by the Euler and Heun schedulers: the noise levels sigma_t = sqrt((1 - alphaBar_t) /
 * alphaBar_t) of the variance-exploding form x = x0 + sigma eps (Karras et al. 2022, arXiv 2206.00364), the float
 * timesteps diffusers gives them, numpy's `interp`, and the Karras and exponential sigma schedules, each computed
 * with the float32 and float64 steps diffusers takes.
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
import { spacedTimesteps } from "../math/schedules.ts";
import { checkModelOutputShape } from "./_scheduler_config.ts";

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
