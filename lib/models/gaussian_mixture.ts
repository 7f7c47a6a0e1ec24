/**
 * Gaussian mixtures with low-rank-plus-isotropic covariances, and their exact ("ideal") noise predictor.
 *
 * | maths                 | code                     | meaning                                                      |
 * |-----------------------|--------------------------|--------------------------------------------------------------|
 * | pi_k                  | `weights[k]`             | mixing weight of component k                                  |
 * | mu_k                  | `means[k]`               | mean of component k (length d)                                |
 * | Q_k                   | `bases[k]`               | d x r matrix with orthonormal (or zero) columns               |
 * | lambda_kj             | `lowRankVariances[k][j]` | extra variance along column j of Q_k                           |
 * | s2_k                  | `noiseVariances[k]`      | isotropic variance of component k                              |
 * | Sigma_k               |                          | Q_k diag(lambda_k) Q_k^T + s2_k I                              |
 * | alphaBar_t            | `alphaBar`               | cumulative product of (1 - beta), DDPM eq. (4)                 |
 * | c_k(t)                | `isotropic`              | alphaBar_t s2_k + (1 - alphaBar_t)                             |
 * | C_k(t)                |                          | alphaBar_t Sigma_k + (1 - alphaBar_t) I, covariance of x_t | k   |
 * | eps*(x_t, t)          | `idealNoise`             | (x_t - sqrt(alphaBar_t) E[x_0 | x_t]) / sqrt(1 - alphaBar_t)    |
 *
 * With x_t = sqrt(alphaBar_t) x_0 + sqrt(1 - alphaBar_t) eps (DDIM paper, arXiv 2010.02502, eq. 4), x_t given
 * component k is Gaussian with mean sqrt(alphaBar_t) mu_k and covariance C_k(t). The ideal noise predictor, the
 * minimiser of the DDPM training loss, is the posterior mean of eps:
 *
 *   eps*(x_t, t) = sqrt(1 - alphaBar_t) sum_k w_k(x_t) C_k^{-1} (x_t - sqrt(alphaBar_t) mu_k),
 *
 * which equals (x_t - sqrt(alphaBar_t) E[x_0 | x_t]) / sqrt(1 - alphaBar_t) with no cancellation at small t, because
 * x_t - sqrt(alphaBar_t) E_k[x_0 | x_t] = (1 - alphaBar_t) C_k^{-1} r_k exactly. The weights w_k(x_t) are the
 * posterior component probabilities, computed with log-sum-exp. C_k is inverted by Woodbury's identity, which with
 * orthonormal Q_k is diagonal in the basis (Q_k, its complement):
 *
 *   C_k^{-1} r = (r - Q_k q) / c_k + Q_k (q / (c_k + alphaBar_t lambda_k)),  q = Q_k^T r.
 *
 * @module
 */
import { Tensor } from "../core/tensor.ts";

/** Anything that draws standard normal tensors the way `TorchGenerator.randn` does. */
interface StandardNormalSource {
  randn(shape: readonly number[]): Tensor;
}

/** One component as given by the caller: a weight, a mean, a low-rank factor and an isotropic variance. */
export interface GaussianComponentSpec {
  /** Unnormalised mixing weight (the mixture normalises the weights to sum to 1). */
  weight: number;
  /** The mean mu_k, length d. */
  mean: ArrayLike<number>;
  /**
   * The low-rank factor U_k (d rows, r columns, row-major), so that Sigma_k = U_k U_k^T + s2_k I.
   * Any columns are accepted; the mixture re-expresses them in an orthonormal basis. Omit for an isotropic component.
   */
  factor?: ArrayLike<number>;
  /** The isotropic variance s2_k, greater than 0. */
  noiseVariance: number;
}

/** Options of the `GaussianMixture` constructor. */
export interface GaussianMixtureOptions {
  /** The dimension d of each sample. */
  dim: number;
  /** The rank r of the low-rank parts (default: the largest factor's column count). */
  rank?: number;
}

/**
 * A mixture of Gaussians with covariances Q_k diag(lambda_k) Q_k^T + s2_k I, and its exact noise predictor.
 *
 * p(x) = sum_k pi_k N(x; mu_k, Q_k diag(lambda_k) Q_k^T + s2_k I)
 *
 * All components share one rank r; a component with fewer directions has zero columns with lambda = 0, which
 * leaves its covariance unchanged. Parameters are kept in float64.
 *
 * @example
 * ```ts
 * import { GaussianMixture, Tensor } from "../../mod.ts";
 * const mixture = new GaussianMixture([
 *   { weight: 1, mean: [-0.5, 0], noiseVariance: 0.01 },
 *   { weight: 1, mean: [0.5, 0], factor: [0, 0.2], noiseVariance: 0.01 },
 * ], { dim: 2 });
 * const eps = mixture.idealNoise(Tensor.from([0.1, 0.2], [1, 2]), 0.5); // eps*(x_t, t) where alphaBar_t = 0.5
 * if (eps.shape.join() !== "1,2" || !eps.data.every(Number.isFinite)) throw new Error("expected one finite 2-D eps");
 * ```
 */
export class GaussianMixture {
  /** The dimension d of a sample. */
  readonly dim: number;
  /** The number of components K. */
  readonly count: number;
  /** The shared rank r of the low-rank parts. */
  readonly rank: number;
  /** Normalised mixing weights pi_k, length K. */
  readonly weights: Float64Array;
  /** Means, K x d row-major. */
  readonly means: Float64Array;
  /** Orthonormal (or zero) bases Q_k, K x d x r row-major (row i of Q_k holds the i-th coordinate of each column). */
  readonly bases: Float64Array;
  /** lambda_kj >= 0, K x r. */
  readonly lowRankVariances: Float64Array;
  /** s2_k > 0, length K. */
  readonly noiseVariances: Float64Array;

  /**
   * Build a mixture from its components.
   *
   * @param components weights, means, low-rank factors and isotropic variances
   * @param options the dimension d and optionally the shared rank r
   * @throws RangeError naming the component and the value when a weight, mean, factor or variance is invalid
   */
  constructor(components: readonly GaussianComponentSpec[], options: GaussianMixtureOptions) {
    const dim = options.dim;
    if (!Number.isInteger(dim) || dim < 1) {
      throw new RangeError(`A mixture's dimension must be a positive integer, got ${dim}`);
    }
    if (components.length === 0) throw new RangeError("A mixture needs at least one component, got none");
    const ranks = components.map((c, k) => {
      if (c.factor === undefined) return 0;
      if (c.factor.length % dim !== 0) {
        throw new RangeError(
          `Component ${k}'s factor has ${c.factor.length} values, not a multiple of dimension ${dim}`,
        );
      }
      return c.factor.length / dim;
    });
    const rank = options.rank ?? Math.max(...ranks);
    if (!Number.isInteger(rank) || rank < 0 || rank > dim) {
      throw new RangeError(`A mixture's rank must be an integer in [0, ${dim}], got ${rank}`);
    }
    this.dim = dim;
    this.count = components.length;
    this.rank = rank;
    this.weights = new Float64Array(this.count);
    this.means = new Float64Array(this.count * dim);
    this.bases = new Float64Array(this.count * dim * rank);
    this.lowRankVariances = new Float64Array(this.count * rank);
    this.noiseVariances = new Float64Array(this.count);
    let total = 0;
    for (const [k, c] of components.entries()) {
      if (!(Number.isFinite(c.weight) && c.weight >= 0)) {
        throw new RangeError(`Component ${k}'s weight must be finite and non-negative, got ${c.weight}`);
      }
      if (!(Number.isFinite(c.noiseVariance) && c.noiseVariance > 0)) {
        throw new RangeError(`Component ${k}'s noise variance must be finite and positive, got ${c.noiseVariance}`);
      }
      if (c.mean.length !== dim) {
        throw new RangeError(`Component ${k}'s mean has length ${c.mean.length}, expected ${dim}`);
      }
      if (ranks[k] > rank) {
        throw new RangeError(`Component ${k}'s factor has rank ${ranks[k]}, above the mixture's rank ${rank}`);
      }
      for (let i = 0; i < dim; i++) {
        if (!Number.isFinite(c.mean[i])) {
          throw new RangeError(`Component ${k}'s mean is not finite at index ${i}: ${c.mean[i]}`);
        }
        this.means[k * dim + i] = c.mean[i];
      }
      total += c.weight;
      this.weights[k] = c.weight;
      this.noiseVariances[k] = c.noiseVariance;
      if (ranks[k] > 0) {
        const { basis, variances } = orthonormalize(c.factor!, dim, ranks[k], k);
        for (let i = 0; i < dim; i++) {
          for (let j = 0; j < ranks[k]; j++) this.bases[(k * dim + i) * rank + j] = basis[i * ranks[k] + j];
        }
        for (let j = 0; j < ranks[k]; j++) this.lowRankVariances[k * rank + j] = variances[j];
      }
    }
    if (!(total > 0)) throw new RangeError(`A mixture's weights must not all be zero, got a total of ${total}`);
    for (let k = 0; k < this.count; k++) this.weights[k] /= total;
  }

  /**
   * Draw exact samples: a component k ~ pi, then x = mu_k + Q_k (sqrt(lambda_k) z) + sqrt(s2_k) w.
   *
   * x = mu_k + Q_k diag(sqrt(lambda_k)) z + sqrt(s2_k) w,  z ~ N(0, I_r),  w ~ N(0, I_d)
   *
   * The generator is called three times, in this order: `randn([n])` (turned into uniforms u = Phi(z) that pick the
   * components by inverse CDF), `randn([n, r])` (skipped when r = 0), then `randn([n, d])`.
   *
   * @param n how many samples
   * @param generator a `TorchGenerator` (or anything with its `randn`)
   * @returns the samples, shape [n, d], and each one's component index
   * @example
   * ```ts
   * import { GaussianMixture, TorchGenerator } from "../../mod.ts";
   * const mixture = new GaussianMixture([{ weight: 1, mean: [0, 0], noiseVariance: 1 }], { dim: 2 });
   * const { samples, components } = mixture.sample(4, new TorchGenerator(0));
   * if (samples.shape.join() !== "4,2" || components.some((k) => k !== 0)) throw new Error("four draws of the one component");
   * ```
   */
  sample(n: number, generator: StandardNormalSource): { samples: Tensor; components: Int32Array } {
    if (!Number.isInteger(n) || n < 1) {
      throw new RangeError(`The number of samples must be a positive integer, got ${n}`);
    }
    const { dim, rank } = this;
    const choice = generator.randn([n]).data;
    const z = rank > 0 ? generator.randn([n, rank]).data : new Float32Array(0);
    const w = generator.randn([n, dim]).data;
    const cumulative = new Float64Array(this.count);
    let acc = 0;
    for (let k = 0; k < this.count; k++) cumulative[k] = acc += this.weights[k];
    const out = new Float32Array(n * dim);
    const components = new Int32Array(n);
    const coeff = new Float64Array(rank);
    for (let b = 0; b < n; b++) {
      const u = standardNormalCdf(choice[b]) * acc;
      let k = 0;
      while (k < this.count - 1 && (u >= cumulative[k] || this.weights[k] === 0)) k++;
      components[b] = k;
      const sd = Math.sqrt(this.noiseVariances[k]);
      for (let j = 0; j < rank; j++) coeff[j] = Math.sqrt(this.lowRankVariances[k * rank + j]) * z[b * rank + j];
      for (let i = 0; i < dim; i++) {
        let v = this.means[k * dim + i] + sd * w[b * dim + i];
        const row = (k * dim + i) * rank;
        for (let j = 0; j < rank; j++) v += this.bases[row + j] * coeff[j];
        out[b * dim + i] = v;
      }
    }
    return { samples: new Tensor(out, [n, dim]), components };
  }

  /**
   * The log-density of each sample, log p(x) = log sum_k pi_k N(x; mu_k, Sigma_k), with log-sum-exp.
   *
   * log N(x; mu, Sigma) = -(d log 2 pi + log det Sigma + (x - mu)^T Sigma^{-1} (x - mu)) / 2
   *
   * @param x samples, shape [n, ...] with d values per sample
   * @returns log p(x_i) for each sample
   * @example
   * ```ts
   * import { GaussianMixture, Tensor } from "../../mod.ts";
   * const mixture = new GaussianMixture([{ weight: 1, mean: [0], noiseVariance: 1 }], { dim: 1 });
   * const logP = mixture.logDensity(Tensor.from([0], [1, 1]))[0];
   * if (Math.abs(logP + Math.log(2 * Math.PI) / 2) > 1e-12) throw new Error(`log N(0; 0, 1) = -log(2 pi) / 2, got ${logP}`);
   * ```
   */
  logDensity(x: Tensor): Float64Array {
    const n = this.#batch(x, "x");
    const out = new Float64Array(n);
    const logits = new Float64Array(this.count);
    for (let b = 0; b < n; b++) {
      for (let k = 0; k < this.count; k++) logits[k] = this.#componentTerms(x.data, b, k, 1, 0).logit;
      out[b] = logSumExp(logits);
    }
    return out;
  }

  /**
   * The posterior probability of each component given x_t, w_k(x_t) = p(k | x_t), by log-sum-exp.
   *
   * w_k = pi_k N(x_t; sqrt(alphaBar_t) mu_k, C_k) / sum_l pi_l N(x_t; sqrt(alphaBar_t) mu_l, C_l)
   *
   * @param xt noisy samples, shape [n, ...] with d values per sample
   * @param alphaBar alphaBar_t, one for the batch or one per sample, in (0, 1]
   * @returns the weights, n x K row-major
   * @example
   * ```ts
   * import { GaussianMixture, Tensor } from "../../mod.ts";
   * const m = new GaussianMixture([
   *   { weight: 1, mean: [-1], noiseVariance: 0.1 }, { weight: 1, mean: [1], noiseVariance: 0.1 },
   * ], { dim: 1 });
   * const weights = m.posteriorWeights(Tensor.from([0], [1, 1]), 1); // x = 0 is as close to -1 as to 1
   * if (Math.abs(weights[0] - 0.5) > 1e-12 || Math.abs(weights[1] - 0.5) > 1e-12) throw new Error(`got ${weights}`);
   * ```
   */
  posteriorWeights(xt: Tensor, alphaBar: number | ArrayLike<number>): Float64Array {
    const n = this.#batch(xt, "xt");
    const out = new Float64Array(n * this.count);
    const logits = new Float64Array(this.count);
    for (let b = 0; b < n; b++) {
      const ab = alphaBarAt(alphaBar, b, n);
      for (let k = 0; k < this.count; k++) logits[k] = this.#componentTerms(xt.data, b, k, ab, 0).logit;
      const lse = logSumExp(logits);
      for (let k = 0; k < this.count; k++) out[b * this.count + k] = Math.exp(logits[k] - lse);
    }
    return out;
  }

  /**
   * The ideal noise predictor eps*(x_t, t), the posterior mean of the noise, in float64.
   *
   * eps*(x_t, t) = (x_t - sqrt(alphaBar_t) E[x_0 | x_t]) / sqrt(1 - alphaBar_t)
   *              = sqrt(1 - alphaBar_t) sum_k w_k(x_t) C_k^{-1} (x_t - sqrt(alphaBar_t) mu_k)
   *
   * @param xt noisy samples, shape [n, ...] with d values per sample (the output keeps this shape)
   * @param alphaBar alphaBar_t, one for the batch or one per sample, in (0, 1)
   * @returns eps*, the same shape as `xt`, rounded to float32
   * @example
   * ```ts
   * import { GaussianMixture, Tensor } from "../../mod.ts";
   * const m = new GaussianMixture([{ weight: 1, mean: [0], noiseVariance: 1 }], { dim: 1 });
   * // for x_0 ~ N(0, 1), x_t ~ N(0, 1) too and E[eps | x_t] = sqrt(1 - alphaBar) x_t = sqrt(0.5) * 2
   * const eps = m.idealNoise(Tensor.from([2], [1, 1]), 0.5).data[0];
   * if (Math.abs(eps - Math.SQRT2) > 1e-6) throw new Error(`got ${eps}`);
   * ```
   */
  idealNoise(xt: Tensor, alphaBar: number | ArrayLike<number>): Tensor {
    return this.#posterior(xt, alphaBar, "noise");
  }

  /**
   * The posterior mean E[x_0 | x_t], in float64 (the ideal "predicted x0").
   *
   * E[x_0 | x_t] = sum_k w_k(x_t) (mu_k + sqrt(alphaBar_t) Sigma_k C_k^{-1} (x_t - sqrt(alphaBar_t) mu_k))
   *
   * @param xt noisy samples, shape [n, ...] with d values per sample
   * @param alphaBar alphaBar_t, one for the batch or one per sample, in (0, 1]
   * @returns E[x_0 | x_t], the same shape as `xt`, rounded to float32
   * @example
   * ```ts
   * import { GaussianMixture, Tensor } from "../../mod.ts";
   * const m = new GaussianMixture([{ weight: 1, mean: [0], noiseVariance: 1 }], { dim: 1 });
   * // for x_0 ~ N(0, 1), E[x_0 | x_t] = sqrt(alphaBar) x_t / (alphaBar + 1 - alphaBar) = sqrt(0.5) * 2
   * const mean = m.posteriorMean(Tensor.from([2], [1, 1]), 0.5).data[0];
   * if (Math.abs(mean - Math.SQRT2) > 1e-6) throw new Error(`got ${mean}`);
   * ```
   */
  posteriorMean(xt: Tensor, alphaBar: number | ArrayLike<number>): Tensor {
    return this.#posterior(xt, alphaBar, "mean");
  }

  #posterior(xt: Tensor, alphaBar: number | ArrayLike<number>, what: "noise" | "mean"): Tensor {
    const n = this.#batch(xt, "xt");
    const { dim, count } = this;
    const out = new Float32Array(n * dim);
    const logits = new Float64Array(count);
    const vectors: Float64Array[] = [];
    const acc = new Float64Array(dim);
    for (let b = 0; b < n; b++) {
      const ab = alphaBarAt(alphaBar, b, n);
      if (what === "noise" && ab >= 1) throw new RangeError(`eps* needs alphaBar below 1, got ${ab} for sample ${b}`);
      for (let k = 0; k < count; k++) {
        const terms = this.#componentTerms(xt.data, b, k, ab, what === "noise" ? 1 : 2);
        logits[k] = terms.logit;
        vectors[k] = terms.vector!;
      }
      const lse = logSumExp(logits);
      acc.fill(0);
      for (let k = 0; k < count; k++) {
        const w = Math.exp(logits[k] - lse);
        if (w === 0) continue;
        const v = vectors[k];
        for (let i = 0; i < dim; i++) acc[i] += w * v[i];
      }
      const scale = what === "noise" ? Math.sqrt(1 - ab) : 1;
      for (let i = 0; i < dim; i++) out[b * dim + i] = scale * acc[i];
    }
    return new Tensor(out, xt.shape);
  }

  /**
   * For sample b and component k at alphaBar: the unnormalised log-posterior logit, and on request
   * C^{-1} r (vector = 1) or E_k[x_0 | x_t] (vector = 2).
   */
  #componentTerms(
    data: Float32Array,
    b: number,
    k: number,
    alphaBar: number,
    vector: 0 | 1 | 2,
  ): { logit: number; vector?: Float64Array } {
    const { dim, rank } = this;
    const sqrtAlphaBar = Math.sqrt(alphaBar);
    const s2 = this.noiseVariances[k];
    // 1. c_k = alphaBar s2_k + (1 - alphaBar): the isotropic variance of x_t given k
    const isotropic = alphaBar * s2 + (1 - alphaBar);
    // 2. r = x_t - sqrt(alphaBar) mu_k and its coordinates q = Q_k^T r
    const residual = new Float64Array(dim);
    for (let i = 0; i < dim; i++) residual[i] = data[b * dim + i] - sqrtAlphaBar * this.means[k * dim + i];
    const q = new Float64Array(rank);
    for (let i = 0; i < dim; i++) {
      const row = (k * dim + i) * rank;
      const ri = residual[i];
      for (let j = 0; j < rank; j++) q[j] += this.bases[row + j] * ri;
    }
    // 3. the part of r outside span(Q_k): r_perp = r - Q_k q
    const perp = residual;
    for (let i = 0; i < dim; i++) {
      const row = (k * dim + i) * rank;
      let v = perp[i];
      for (let j = 0; j < rank; j++) v -= this.bases[row + j] * q[j];
      perp[i] = v;
    }
    let perpNorm2 = 0;
    for (let i = 0; i < dim; i++) perpNorm2 += perp[i] * perp[i];
    // 4. Woodbury: eigenvalues of C_k are c_k + alphaBar lambda_kj along Q_k and c_k elsewhere
    let logDet = dim * Math.log(isotropic);
    let mahalanobis = perpNorm2 / isotropic;
    const eigen = new Float64Array(rank);
    for (let j = 0; j < rank; j++) {
      eigen[j] = isotropic + alphaBar * this.lowRankVariances[k * rank + j];
      logDet += Math.log(eigen[j]) - Math.log(isotropic);
      mahalanobis += (q[j] * q[j]) / eigen[j];
    }
    const logit = Math.log(this.weights[k]) - 0.5 * (dim * Math.log(2 * Math.PI) + logDet + mahalanobis);
    if (vector === 0) return { logit };
    // 5. C^{-1} r = r_perp / c + Q (q / eigen);  E_k[x_0|x_t] = mu + sqrt(alphaBar) Sigma C^{-1} r
    const out = new Float64Array(dim);
    const perpScale = vector === 1 ? 1 / isotropic : (sqrtAlphaBar * s2) / isotropic;
    const coeff = new Float64Array(rank);
    for (let j = 0; j < rank; j++) {
      const lambda = this.lowRankVariances[k * rank + j];
      coeff[j] = vector === 1 ? q[j] / eigen[j] : (sqrtAlphaBar * (lambda + s2) * q[j]) / eigen[j];
    }
    for (let i = 0; i < dim; i++) {
      const row = (k * dim + i) * rank;
      let v = perpScale * perp[i] + (vector === 2 ? this.means[k * dim + i] : 0);
      for (let j = 0; j < rank; j++) v += this.bases[row + j] * coeff[j];
      out[i] = v;
    }
    return { logit, vector: out };
  }

  #batch(x: Tensor, name: string): number {
    if (!(x instanceof Tensor)) throw new TypeError(`${name} must be a Tensor`);
    const n = x.shape[0];
    if (x.shape.length < 2 || x.size !== n * this.dim) {
      throw new RangeError(
        `${name} has shape [${x.shape.join(", ")}], expected [n, ...] with ${this.dim} values per sample`,
      );
    }
    return n;
  }
}

/** What `fitLowRankGaussian` returns: a component ready for `GaussianMixture`, and the fit's facts. */
export interface LowRankGaussianFit extends GaussianComponentSpec {
  /** The sample covariance's eigenvalues, largest first (at most n - 1 of them are non-zero). */
  eigenvalues: Float64Array;
  /** The share of the total variance the low-rank part explains. */
  explained: number;
}

/**
 * Fit one low-rank-plus-isotropic Gaussian to samples: probabilistic PCA (Tipping and Bishop, 1999).
 *
 * Sigma = Q_r (Lambda_r - s2 I) Q_r^T + s2 I,  s2 = (trace S - sum_{j<=r} lambda_j) / (d - r)
 *
 * where S is the sample covariance (divided by n) with eigenpairs (lambda_j, Q_j), found through the n x n Gram
 * matrix. `minNoiseVariance` floors s2.
 *
 * @param samples the rows, n x d row-major
 * @param options `dim` d, `rank` r, `minNoiseVariance` (default 1e-6), `weight` (default n)
 * @returns the component (mean, factor, noise variance, weight) plus the eigenvalues and the explained share
 * @example
 * ```ts
 * import { fitLowRankGaussian } from "../../mod.ts";
 * const fit = fitLowRankGaussian(new Float64Array([0, 0, 1, 1, 2, 2.1, 3, 2.9]), { dim: 2, rank: 1 });
 * // the sample mean of (0, 0), (1, 1), (2, 2.1), (3, 2.9) is (1.5, 1.5); one direction explains nearly everything
 * if (Math.abs(fit.mean[0] - 1.5) > 1e-12 || Math.abs(fit.mean[1] - 1.5) > 1e-12) throw new Error("wrong mean");
 * if (!(fit.explained > 0.99)) throw new Error(`explained ${fit.explained}`);
 * ```
 */
export function fitLowRankGaussian(
  samples: ArrayLike<number>,
  options: { dim: number; rank: number; minNoiseVariance?: number; weight?: number },
): LowRankGaussianFit {
  const { dim, rank } = options;
  const n = samples.length / dim;
  if (!Number.isInteger(n) || n < 2) {
    throw new RangeError(`fitLowRankGaussian needs at least 2 rows of ${dim} values, got ${samples.length} values`);
  }
  if (!Number.isInteger(rank) || rank < 0 || rank >= Math.min(dim, n)) {
    throw new RangeError(`fitLowRankGaussian's rank must be an integer in [0, ${Math.min(dim, n) - 1}], got ${rank}`);
  }
  const mean = new Float64Array(dim);
  for (let s = 0; s < n; s++) for (let i = 0; i < dim; i++) mean[i] += samples[s * dim + i];
  for (let i = 0; i < dim; i++) mean[i] /= n;
  const centered = new Float64Array(n * dim);
  for (let s = 0; s < n; s++) for (let i = 0; i < dim; i++) centered[s * dim + i] = samples[s * dim + i] - mean[i];
  // Gram matrix G = X X^T / n shares its non-zero eigenvalues with S = X^T X / n.
  const gram = new Float64Array(n * n);
  for (let a = 0; a < n; a++) {
    for (let b = a; b < n; b++) {
      let v = 0;
      for (let i = 0; i < dim; i++) v += centered[a * dim + i] * centered[b * dim + i];
      gram[a * n + b] = gram[b * n + a] = v / n;
    }
  }
  const { values, vectors } = symmetricEigen(gram, n);
  let trace = 0;
  for (let a = 0; a < n; a++) trace += gram[a * n + a];
  let top = 0;
  for (let j = 0; j < rank; j++) top += Math.max(values[j], 0);
  const noiseVariance = Math.max((trace - top) / (dim - rank), options.minNoiseVariance ?? 1e-6);
  const factor = new Float64Array(dim * rank);
  for (let j = 0; j < rank; j++) {
    const extra = values[j] - noiseVariance;
    if (!(extra > 0)) continue;
    // Q_j = X^T v_j / sqrt(n lambda_j); the factor column is sqrt(extra) Q_j.
    const scale = Math.sqrt(extra / (n * values[j]));
    for (let s = 0; s < n; s++) {
      const coef = vectors[s * n + j] * scale;
      for (let i = 0; i < dim; i++) factor[i * rank + j] += coef * centered[s * dim + i];
    }
  }
  return {
    weight: options.weight ?? n,
    mean,
    factor,
    noiseVariance,
    eigenvalues: values,
    explained: trace > 0 ? top / trace : 0,
  };
}

/**
 * The exact solution of the probability-flow ODE for a single Gaussian, from alphaBar_t to alphaBar_s.
 *
 * x_s = sqrt(alphaBar_s) (mu + (Sigma + sigma_s^2 I)^{1/2} (Sigma + sigma_t^2 I)^{-1/2} (x_t / sqrt(alphaBar_t) - mu)),
 * sigma^2 = (1 - alphaBar) / alphaBar
 *
 * In the variables of the DDIM paper's eq. (14), x-bar = x / sqrt(alphaBar) and sigma, the ODE reads
 * dx-bar / dsigma = eps*(x, t) = sigma (Sigma + sigma^2 I)^{-1} (x-bar - mu), which is solved eigenvalue by
 * eigenvalue: y(sigma) = y(sigma_t) sqrt((v + sigma^2) / (v + sigma_t^2)). DDIM with eta = 0 is Euler's method for
 * this equation, so its error is measured against this function.
 *
 * @param mixture a mixture with exactly one component
 * @param xt samples at time t, shape [n, ...] with d values per sample
 * @param options `alphaBarT` and `alphaBarS`, both in (0, 1]
 * @returns x_s, the same shape as `xt` (float32)
 * @example
 * ```ts
 * import { GaussianMixture, probabilityFlowSolution, Tensor } from "../../mod.ts";
 * const g = new GaussianMixture([{ weight: 1, mean: [0], noiseVariance: 1 }], { dim: 1 });
 * const xs = probabilityFlowSolution(g, Tensor.from([1], [1, 1]), { alphaBarT: 0.5, alphaBarS: 0.9 }).data[0];
 * if (Math.abs(xs - 1) > 1e-6) throw new Error(`N(0, I) is stationary, so the flow leaves x at 1; got ${xs}`);
 * ```
 */
export function probabilityFlowSolution(
  mixture: GaussianMixture,
  xt: Tensor,
  options: { alphaBarT: number; alphaBarS: number },
): Tensor {
  if (mixture.count !== 1) {
    throw new RangeError(
      `probabilityFlowSolution needs a single Gaussian, got a mixture of ${mixture.count} components`,
    );
  }
  const { alphaBarT, alphaBarS } = options;
  for (const [name, v] of [["alphaBarT", alphaBarT], ["alphaBarS", alphaBarS]] as const) {
    if (!(v > 0 && v <= 1)) throw new RangeError(`${name} must be in (0, 1], got ${v}`);
  }
  const { dim, rank } = mixture;
  const n = xt.shape[0];
  if (xt.shape.length < 2 || xt.size !== n * dim) {
    throw new RangeError(`xt has shape [${xt.shape.join(", ")}], expected [n, ...] with ${dim} values per sample`);
  }
  const sigma2T = (1 - alphaBarT) / alphaBarT;
  const sigma2S = (1 - alphaBarS) / alphaBarS;
  const s2 = mixture.noiseVariances[0];
  const gain = (v: number) => Math.sqrt((v + sigma2S) / (v + sigma2T));
  const isoGain = gain(s2);
  const extraGain = new Float64Array(rank);
  for (let j = 0; j < rank; j++) extraGain[j] = gain(s2 + mixture.lowRankVariances[j]) - isoGain;
  const out = new Float32Array(n * dim);
  const y = new Float64Array(dim);
  const q = new Float64Array(rank);
  const { means, bases } = mixture;
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < dim; i++) y[i] = xt.data[b * dim + i] / Math.sqrt(alphaBarT) - means[i];
    q.fill(0);
    for (let i = 0; i < dim; i++) for (let j = 0; j < rank; j++) q[j] += bases[i * rank + j] * y[i];
    for (let i = 0; i < dim; i++) {
      let v = isoGain * y[i];
      for (let j = 0; j < rank; j++) v += bases[i * rank + j] * extraGain[j] * q[j];
      out[b * dim + i] = Math.sqrt(alphaBarS) * (means[i] + v);
    }
  }
  return new Tensor(out, xt.shape);
}

/**
 * Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations, eigenvalues sorted largest first.
 *
 * A = V diag(values) V^T
 */
function symmetricEigen(matrix: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const a = matrix.slice();
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  let scale = 0;
  for (let i = 0; i < n * n; i++) scale += a[i] * a[i];
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q] * a[p * n + q];
    if (off <= 1e-30 * scale) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p];
          const akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k];
          const aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p];
          const vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => a[j * n + j] - a[i * n + i]);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  for (const [col, src] of order.entries()) {
    values[col] = a[src * n + src];
    for (let k = 0; k < n; k++) vectors[k * n + col] = v[k * n + src];
  }
  return { values, vectors };
}

/** Re-express a factor U (d x r) as Q diag(lambda) Q^T with orthonormal Q, through the eigenpairs of U^T U. */
function orthonormalize(
  factor: ArrayLike<number>,
  dim: number,
  rank: number,
  component: number,
): { basis: Float64Array; variances: Float64Array } {
  const gram = new Float64Array(rank * rank);
  for (let i = 0; i < dim; i++) {
    for (let a = 0; a < rank; a++) {
      const ua = factor[i * rank + a];
      if (!Number.isFinite(ua)) {
        throw new RangeError(`Component ${component}'s factor is not finite at row ${i}, column ${a}: ${ua}`);
      }
      for (let b = 0; b < rank; b++) gram[a * rank + b] += ua * factor[i * rank + b];
    }
  }
  const { values, vectors } = symmetricEigen(gram, rank);
  const basis = new Float64Array(dim * rank);
  const variances = new Float64Array(rank);
  const tiny = 1e-12 * Math.max(values[0], 0);
  for (let j = 0; j < rank; j++) {
    if (!(values[j] > tiny)) continue;
    variances[j] = values[j];
    const inv = 1 / Math.sqrt(values[j]);
    for (let i = 0; i < dim; i++) {
      let v = 0;
      for (let a = 0; a < rank; a++) v += factor[i * rank + a] * vectors[a * rank + j];
      basis[i * rank + j] = v * inv;
    }
  }
  return { basis, variances };
}

function alphaBarAt(alphaBar: number | ArrayLike<number>, b: number, n: number): number {
  let value: number;
  if (typeof alphaBar === "number") value = alphaBar;
  else {
    if (alphaBar.length !== n) throw new RangeError(`Expected one alphaBar per sample (${n}), got ${alphaBar.length}`);
    value = alphaBar[b];
  }
  if (!(value > 0 && value <= 1)) throw new RangeError(`alphaBar must be in (0, 1], got ${value} for sample ${b}`);
  return value;
}

function logSumExp(values: Float64Array): number {
  let max = -Infinity;
  for (const v of values) if (v > max) max = v;
  if (max === -Infinity) return -Infinity;
  let sum = 0;
  for (const v of values) sum += Math.exp(v - max);
  return max + Math.log(sum);
}

/** Phi(z), the standard normal CDF, as 0.5 erfc(-z / sqrt 2). */
function standardNormalCdf(z: number): number {
  // erfc by the Chebyshev-fitted formula of Numerical Recipes' erfcc (fractional error below 1.2e-7).
  const x = -z / Math.SQRT2;
  const ax = Math.abs(x);
  const t = 1 / (1 + 0.5 * ax);
  const r = t *
    Math.exp(
      -ax * ax - 1.26551223 +
        t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 +
                            t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  const erfc = x >= 0 ? r : 2 - r;
  return 0.5 * erfc;
}
