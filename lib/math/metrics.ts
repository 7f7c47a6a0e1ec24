/**
 * Sample-quality metrics that are exact when the data distribution is known, as it is for the embedded models.
 *
 * | paper / maths        | code                     | meaning                                                   |
 * |----------------------|--------------------------|-----------------------------------------------------------|
 * | log p(x)             | `logDensity(x)`          | the true data density at one sample (e.g. the mixture's)  |
 * | E_q[log p(x)]        | `meanLogLikelihood`      | mean log-likelihood of generated samples under the truth  |
 * | theta in S^{d-1}     | a projection direction   | uniform on the unit sphere (a normalised Gaussian draw)   |
 * | W_2(mu, nu)          | `wasserstein1D`          | 1-D 2-Wasserstein distance, through sorted samples        |
 * | SW_2(P, Q)           | `slicedWasserstein`      | sqrt(E_theta W_2^2(theta#P, theta#Q))                     |
 * | err ~ C S^(-p)       | `fitConvergenceOrder`    | least-squares order p on log-log data                      |
 *
 * The DDIM paper (Song et al. 2020, arXiv 2010.02502) measures quality with FID on CIFAR-10; with an exact model
 * the true density and fresh exact samples are available, so these metrics replace FID without a learned feature
 * network. Every estimate that has sampling noise reports a standard error.
 *
 * @module
 */
import type { Tensor } from "../core/tensor.ts";
import { TorchGenerator } from "../core/torch_generator.ts";

/** Anything that draws standard normal tensors, such as a `TorchGenerator`. */
export interface NormalGenerator {
  /** Draw a tensor of independent N(0, 1) values with the given shape. */
  randn(shape: readonly number[]): Tensor;
}

/** The mean log-likelihood of a batch of samples, with its sampling error. */
export interface LogLikelihoodResult {
  /** (1/n) sum_i log p(x_i), in nats. */
  mean: number;
  /** `mean` divided by the number of dimensions per sample (nats per dimension). */
  perDimension: number;
  /** The standard error of `mean`: std_i(log p(x_i)) / sqrt(n). */
  standardError: number;
  /** The number of samples n. */
  count: number;
  /** Dimensions per sample d (the product of all axes after the first). */
  dimensions: number;
  /** log p(x_i) for each sample. */
  values: Float64Array;
}

/**
 * The mean log-likelihood of samples under a known density, the exact-model stand-in for a quality score.
 *
 * mean = (1/n) sum_i log p(x_i), standardError = std_i log p(x_i) / sqrt(n)
 *
 * Higher is not always better: samples that collapse onto the modes score above true samples. Compare with the
 * same quantity for exact samples (which estimates -H(p), the negative entropy) rather than reading it alone.
 *
 * @param samples a batch, shape [n, ...]; each row of the first axis is one sample
 * @param logDensity log p(x_i) for every sample of a batch (e.g. `(x) => mixture.logDensity(x)`)
 * @returns the mean, its standard error, and per-sample values
 * @throws RangeError if the batch is empty, a log-density is NaN or the count of values is wrong
 * @example
 * ```ts
 * import { meanLogLikelihood, Tensor } from "../../mod.ts";
 * const x = Tensor.from([0, 1, -1, 2], [4, 1]);
 * const gaussian = (b: Tensor) => Array.from(b.data, (v) => -0.5 * Math.log(2 * Math.PI) - 0.5 * v * v);
 * const { mean } = meanLogLikelihood(x, gaussian);
 * // the mean of -x^2 / 2 over 0, 1, 1, 4 is -0.75
 * if (Math.abs(mean - (-0.5 * Math.log(2 * Math.PI) - 0.75)) > 1e-12) throw new Error(`got ${mean}`);
 * ```
 */
export function meanLogLikelihood(
  samples: Tensor,
  logDensity: (samples: Tensor) => ArrayLike<number>,
): LogLikelihoodResult {
  const [count, dimensions] = rows(samples, "samples");
  const computed = logDensity(samples);
  if (computed.length !== count) {
    throw new RangeError(`logDensity returned ${computed.length} values for ${count} samples; it must give one each`);
  }
  const values = Float64Array.from(computed);
  for (let i = 0; i < count; i++) {
    if (Number.isNaN(values[i])) throw new RangeError(`The log-density of sample ${i} is NaN`);
  }
  const { mean, standardError } = meanAndError(values);
  return { mean, perDimension: mean / dimensions, standardError, count, dimensions, values };
}

/** Options for `slicedWasserstein`. */
export interface SlicedWassersteinOptions {
  /** How many random directions theta to average over (default 128). */
  projections?: number;
  /** Where the directions come from (default `new TorchGenerator(seed)`). */
  generator?: NormalGenerator;
  /** The seed of the default generator (default 0); ignored when `generator` is given. */
  seed?: number;
  /**
   * Fixed directions instead of random ones, shape [L, d] (each normalised here); e.g. directions in the span where
   * the data varies, which resolve far smaller differences than uniform ones in high dimension.
   */
  directions?: Tensor;
}

/** A sliced Wasserstein estimate. */
export interface SlicedWassersteinResult {
  /** SW_2 = sqrt(mean_theta W_2^2(theta#P, theta#Q)). */
  distance: number;
  /** The standard error of `distance` over directions (delta method on the mean of W_2^2). */
  standardError: number;
  /** The number of directions used. */
  projections: number;
  /** W_2^2 along each direction. */
  perProjection: Float64Array;
}

/**
 * The sliced 2-Wasserstein distance between two sample sets, over random directions on the unit sphere.
 *
 * SW_2(P, Q)^2 = E_{theta ~ U(S^{d-1})} W_2^2(theta#P, theta#Q), each 1-D term computed exactly from sorted
 * projections. The same directions are used for both sets. Between two sets of exact samples of the same law the
 * result is not 0 but a noise floor that shrinks like n^(-1/2); report it next to any distance.
 *
 * @param a the first batch, shape [n, ...]
 * @param b the second batch, shape [m, ...], with the same per-sample size as `a` (n and m may differ)
 * @param options the number of directions and their generator, or fixed `directions`
 * @returns the distance, its standard error over directions and each direction's W_2^2
 * @throws RangeError if the per-sample sizes differ, a batch is empty, `projections` is not a positive integer or
 *   `directions` has the wrong shape
 * @example
 * ```ts
 * import { slicedWasserstein, Tensor } from "../../mod.ts";
 * const a = Tensor.from([0, 0, 1, 1], [2, 2]);
 * const b = Tensor.from([0, 0, 1, 1], [2, 2]);
 * const { distance } = slicedWasserstein(a, b, { projections: 16 });
 * if (distance !== 0) throw new Error(`identical samples are at distance 0, got ${distance}`);
 * ```
 */
export function slicedWasserstein(
  a: Tensor,
  b: Tensor,
  options: SlicedWassersteinOptions = {},
): SlicedWassersteinResult {
  const [countA, dimensions] = rows(a, "a");
  const [countB, dimensionsB] = rows(b, "b");
  if (dimensions !== dimensionsB) {
    throw new RangeError(
      `Samples of a have ${dimensions} values each but samples of b have ${dimensionsB}; they must match`,
    );
  }
  if (options.directions !== undefined) {
    const shape = options.directions.shape;
    if (shape.length !== 2 || shape[1] !== dimensions || shape[0] < 1) {
      throw new RangeError(`directions must have shape [L, ${dimensions}], got [${shape.join(", ")}]`);
    }
  }
  const projections = options.directions?.shape[0] ?? options.projections ?? 128;
  if (!Number.isInteger(projections) || projections < 1) {
    throw new RangeError(`projections must be a positive integer, got ${projections}`);
  }
  const directions = options.directions?.data ??
    (options.generator ?? new TorchGenerator(options.seed ?? 0)).randn([projections, dimensions]).data;
  const perProjection = new Float64Array(projections);
  const projectedA = new Float64Array(countA);
  const projectedB = new Float64Array(countB);
  const theta = new Float64Array(dimensions);
  for (let k = 0; k < projections; k++) {
    // 1. theta: a Gaussian draw normalised onto the unit sphere (uniform direction)
    let norm = 0;
    for (let j = 0; j < dimensions; j++) {
      theta[j] = directions[k * dimensions + j];
      norm += theta[j] * theta[j];
    }
    norm = Math.sqrt(norm);
    if (norm === 0) throw new RangeError(`Projection ${k} drew an all-zero direction`);
    for (let j = 0; j < dimensions; j++) theta[j] /= norm;
    // 2. theta#P and theta#Q: project every sample
    project(a.data, countA, dimensions, theta, projectedA);
    project(b.data, countB, dimensions, theta, projectedB);
    // 3. exact 1-D W_2^2 between the two empirical laws
    perProjection[k] = squaredWasserstein1DSorted(projectedA.sort(), projectedB.sort());
  }
  const { mean, standardError } = meanAndError(perProjection);
  const distance = Math.sqrt(mean);
  // delta method: d sqrt(m) = dm / (2 sqrt(m))
  return {
    distance,
    standardError: distance > 0 ? standardError / (2 * distance) : 0,
    projections,
    perProjection,
  };
}

/**
 * The exact 2-Wasserstein distance between two 1-D empirical distributions (equal weights per sample).
 *
 * W_2^2(mu, nu) = integral_0^1 (F_mu^{-1}(u) - F_nu^{-1}(u))^2 du, with F^{-1} the empirical quantile functions
 * (sorted samples; for equal sizes this is (1/n) sum_i (a_(i) - b_(i))^2).
 *
 * @param a samples of the first law
 * @param b samples of the second law (any size)
 * @returns W_2(mu, nu)
 * @throws RangeError if either set is empty or holds a non-finite value
 * @example
 * ```ts
 * import { wasserstein1D } from "../../mod.ts";
 * // a shift by 1 moves every point by 1
 * if (Math.abs(wasserstein1D([0, 1, 2], [1, 2, 3]) - 1) > 1e-12) throw new Error("W1 of a shift by 1 is 1");
 * ```
 */
export function wasserstein1D(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const sortedA = Float64Array.from(a).sort();
  const sortedB = Float64Array.from(b).sort();
  for (const [name, values] of [["a", sortedA], ["b", sortedB]] as const) {
    if (values.length === 0) throw new RangeError(`wasserstein1D needs at least one sample in ${name}`);
    // sorted Float64Arrays put NaN last; infinities sit at the ends
    if (!Number.isFinite(values[0]) || !Number.isFinite(values[values.length - 1])) {
      throw new RangeError(`wasserstein1D found a non-finite value in ${name}`);
    }
  }
  return Math.sqrt(squaredWasserstein1DSorted(sortedA, sortedB));
}

/** A power law err = constant * S^(-order) fitted by least squares on log-log data. */
export interface ConvergenceFit {
  /** p in err ~ C S^(-p): minus the slope of log err against log S. */
  order: number;
  /** C in err ~ C S^(-p). */
  constant: number;
  /** The coefficient of determination of the log-log line (1 = a perfect power law). */
  rSquared: number;
  /** The number of points used. */
  points: number;
}

/**
 * Fit a convergence order: the least-squares line through (log S, log err), err ~ C S^(-p).
 *
 * slope = sum (u - mean u)(v - mean v) / sum (u - mean u)^2 with u = log S, v = log err; p = -slope,
 * C = exp(mean v - slope mean u)
 *
 * @param steps the step counts S (or any positive resolution), at least two distinct values
 * @param errors the global error at each S, positive
 * @returns the order p, the constant C and the fit's R^2
 * @throws RangeError if the lengths differ, fewer than two distinct S are given, or a value is not positive
 * @example
 * ```ts
 * import { fitConvergenceOrder } from "../../mod.ts";
 * const { order } = fitConvergenceOrder([10, 100, 1000], [0.1, 0.01, 0.001]);
 * if (Math.abs(order - 1) > 1e-9) throw new Error(`error = 1 / steps has order 1, got ${order}`);
 * ```
 */
export function fitConvergenceOrder(steps: readonly number[], errors: readonly number[]): ConvergenceFit {
  if (steps.length !== errors.length) {
    throw new RangeError(`steps has ${steps.length} entries but errors has ${errors.length}; they must match`);
  }
  for (let i = 0; i < steps.length; i++) {
    if (!(steps[i] > 0) || !Number.isFinite(steps[i])) {
      throw new RangeError(`steps[${i}] must be a positive finite number, got ${steps[i]}`);
    }
    if (!(errors[i] > 0) || !Number.isFinite(errors[i])) {
      throw new RangeError(`errors[${i}] must be a positive finite number, got ${errors[i]}`);
    }
  }
  if (new Set(steps).size < 2) {
    throw new RangeError(`A convergence fit needs at least two distinct step counts, got [${steps.join(", ")}]`);
  }
  const u = steps.map(Math.log);
  const v = errors.map(Math.log);
  const n = u.length;
  const meanU = u.reduce((s, x) => s + x, 0) / n;
  const meanV = v.reduce((s, x) => s + x, 0) / n;
  let covariance = 0;
  let varianceU = 0;
  let varianceV = 0;
  for (let i = 0; i < n; i++) {
    covariance += (u[i] - meanU) * (v[i] - meanV);
    varianceU += (u[i] - meanU) ** 2;
    varianceV += (v[i] - meanV) ** 2;
  }
  const slope = covariance / varianceU;
  const residual = varianceV - slope * covariance;
  return {
    order: -slope,
    constant: Math.exp(meanV - slope * meanU),
    rSquared: varianceV > 0 ? 1 - residual / varianceV : 1,
    points: n,
  };
}

/** Split a batch into [rows, values per row], refusing empty or scalar tensors. */
function rows(x: Tensor, name: string): [number, number] {
  if (x.shape.length < 1 || x.shape[0] < 1) {
    throw new RangeError(`${name} must hold at least one sample on its first axis, got shape [${x.shape.join(", ")}]`);
  }
  const count = x.shape[0];
  const dimensions = x.size / count;
  if (dimensions < 1) throw new RangeError(`${name} has empty samples, shape [${x.shape.join(", ")}]`);
  return [count, dimensions];
}

function project(data: Float32Array, count: number, dimensions: number, theta: Float64Array, out: Float64Array) {
  for (let i = 0; i < count; i++) {
    let dot = 0;
    const offset = i * dimensions;
    for (let j = 0; j < dimensions; j++) dot += data[offset + j] * theta[j];
    out[i] = dot;
  }
}

/** integral_0^1 (F_a^{-1}(u) - F_b^{-1}(u))^2 du for sorted samples, walking the merged quantile breakpoints. */
function squaredWasserstein1DSorted(a: Float64Array, b: Float64Array): number {
  const n = a.length;
  const m = b.length;
  if (n === m) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += (a[i] - b[i]) ** 2;
    return sum / n;
  }
  let i = 0;
  let j = 0;
  let u = 0;
  let total = 0;
  while (i < n && j < m) {
    const nextA = (i + 1) / n;
    const nextB = (j + 1) / m;
    const next = Math.min(nextA, nextB);
    total += (next - u) * (a[i] - b[j]) ** 2;
    u = next;
    if (nextA <= next) i++;
    if (nextB <= next) j++;
  }
  return total;
}

/**
 * The mean of a sample and its standard error.
 *
 * se = sqrt(sum_i (v_i - mean)^2 / (n - 1) / n), 0 for a single value
 *
 * @param values the sample
 * @returns `{ mean, standardError }`
 * @example
 * ```ts
 * import { meanAndError } from "../../mod.ts";
 * const { mean, standardError } = meanAndError(Float64Array.from([1, 2, 3]));
 * if (mean !== 2 || Math.abs(standardError - 1 / Math.sqrt(3)) > 1e-12) throw new Error("wrong");
 * ```
 */
export function meanAndError(values: Float64Array): { mean: number; standardError: number } {
  const n = values.length;
  let mean = 0;
  for (const v of values) mean += v;
  mean /= n;
  if (n < 2) return { mean, standardError: 0 };
  let variance = 0;
  for (const v of values) variance += (v - mean) ** 2;
  variance /= n - 1;
  return { mean, standardError: Math.sqrt(variance / n) };
}
