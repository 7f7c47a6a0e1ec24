import { describe, expect, test } from "bun:test";
import { fitLowRankGaussian, GaussianMixture, probabilityFlowSolution } from "../../lib/models/gaussian_mixture.ts";
import { Tensor } from "../../lib/core/tensor.ts";
import { TorchGenerator } from "../../lib/core/torch_generator.ts";

/** Dense d x d covariance U U^T + s2 I, built without the mixture's orthonormalisation. */
function denseCovariance(factor: number[], dim: number, rank: number, s2: number): number[][] {
  const cov = Array.from({ length: dim }, (_, i) => Array.from({ length: dim }, (_, j) => (i === j ? s2 : 0)));
  for (let i = 0; i < dim; i++) {
    for (let j = 0; j < dim; j++) {
      for (let a = 0; a < rank; a++) cov[i][j] += factor[i * rank + a] * factor[j * rank + a];
    }
  }
  return cov;
}

/** Solve A x = b and return log det A, by Gaussian elimination with partial pivoting (independent of Woodbury). */
function solveDense(matrix: number[][], rhs: number[]): { x: number[]; logDet: number } {
  const n = rhs.length;
  const a = matrix.map((row, i) => [...row, rhs[i]]);
  let logDet = 0;
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(a[r][col]) > Math.abs(a[pivot][col])) pivot = r;
    [a[col], a[pivot]] = [a[pivot], a[col]];
    logDet += Math.log(Math.abs(a[col][col]));
    for (let r = col + 1; r < n; r++) {
      const f = a[r][col] / a[col][col];
      for (let c = col; c <= n; c++) a[r][c] -= f * a[col][c];
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let v = a[r][n];
    for (let c = r + 1; c < n; c++) v -= a[r][c] * x[c];
    x[r] = v / a[r][r];
  }
  return { x, logDet };
}

const DIM = 5;
const RANK = 2;
// Two components with non-orthogonal factors, so the mixture's re-expression in an orthonormal basis is exercised.
const SPECS = [
  {
    weight: 2,
    mean: [0.3, -0.2, 0.1, 0.5, -0.4],
    factor: [0.5, 0.1, -0.2, 0.3, 0.4, 0, 0.1, 0.6, -0.3, 0.2],
    noiseVariance: 0.05,
  },
  {
    weight: 1,
    mean: [-0.4, 0.2, 0.3, -0.1, 0.2],
    factor: [0.2, 0.2, 0.1, -0.5, 0, 0.3, 0.7, 0.1, 0.2, 0.2],
    noiseVariance: 0.02,
  },
];

/** log N(x; mean, cov) with a dense solve. */
function denseLogNormal(x: number[], mean: number[], cov: number[][]): number {
  const r = x.map((v, i) => v - mean[i]);
  const { x: sol, logDet } = solveDense(cov, r);
  const maha = r.reduce((s, v, i) => s + v * sol[i], 0);
  return -0.5 * (x.length * Math.log(2 * Math.PI) + logDet + maha);
}

describe("GaussianMixture", () => {
  const mixture = new GaussianMixture(SPECS, { dim: DIM });
  // Dyadic coordinates, exact in float32 (the Tensor's type), as are their finite-difference neighbours.
  const points = [
    [0.125, 0.1875, -0.3125, 0.375, 0],
    [-0.5, 0.625, 0.25, -0.1875, 0.3125],
    [1.25, -1, 0.8125, 0.0625, -0.875],
  ];

  test("logDensity equals the dense-covariance density of the same mixture", () => {
    const got = mixture.logDensity(Tensor.from(points.flat(), [points.length, DIM]));
    for (const [b, x] of points.entries()) {
      const terms = SPECS.map((c) =>
        Math.log(c.weight / 3) + denseLogNormal(x, c.mean, denseCovariance(c.factor, DIM, RANK, c.noiseVariance))
      );
      const max = Math.max(...terms);
      const expected = max + Math.log(terms.reduce((s, v) => s + Math.exp(v - max), 0));
      expect(got[b]).toBeCloseTo(expected, 10);
    }
  });

  test("idealNoise equals sqrt(1 - alphaBar) sum_k w_k C_k^{-1} (x_t - sqrt(alphaBar) mu_k) with C_k solved densely", () => {
    for (const alphaBar of [0.9999, 0.9, 0.5, 0.01]) {
      const got = mixture.idealNoise(Tensor.from(points.flat(), [points.length, DIM]), alphaBar);
      for (const [b, x] of points.entries()) {
        const parts = SPECS.map((c) => {
          const cov = denseCovariance(c.factor, DIM, RANK, c.noiseVariance).map((row, i) =>
            row.map((v, j) => alphaBar * v + (i === j ? 1 - alphaBar : 0))
          );
          const mean = c.mean.map((m) => Math.sqrt(alphaBar) * m);
          const r = x.map((v, i) => v - mean[i]);
          return { logit: Math.log(c.weight / 3) + denseLogNormal(x, mean, cov), solved: solveDense(cov, r).x };
        });
        const max = Math.max(...parts.map((p) => p.logit));
        const weights = parts.map((p) => Math.exp(p.logit - max));
        const total = weights[0] + weights[1];
        for (let i = 0; i < DIM; i++) {
          const expected = Math.sqrt(1 - alphaBar) *
            parts.reduce((s, p, k) => s + (weights[k] / total) * p.solved[i], 0);
          expect(got.data[b * DIM + i]).toBeCloseTo(expected, 5);
        }
      }
    }
  });

  test("idealNoise is -sqrt(1 - alphaBar) times the score of the noised density (Tweedie), by finite differences", () => {
    const alphaBar = 0.6;
    // x_t | k ~ N(sqrt(alphaBar) mu_k, alphaBar U U^T + (alphaBar s2 + 1 - alphaBar) I): itself a mixture.
    const noised = new GaussianMixture(
      SPECS.map((c) => ({
        weight: c.weight,
        mean: c.mean.map((m) => Math.sqrt(alphaBar) * m),
        factor: c.factor.map((u) => Math.sqrt(alphaBar) * u),
        noiseVariance: alphaBar * c.noiseVariance + 1 - alphaBar,
      })),
      { dim: DIM },
    );
    const h = 2 ** -12; // exact in float32 next to the dyadic points
    for (const x of points) {
      const eps = mixture.idealNoise(Tensor.from(x, [1, DIM]), alphaBar).data;
      for (let i = 0; i < DIM; i++) {
        const up = [...x];
        const down = [...x];
        up[i] += h;
        down[i] -= h;
        const score =
          (noised.logDensity(Tensor.from(up, [1, DIM]))[0] - noised.logDensity(Tensor.from(down, [1, DIM]))[0]) /
          (2 * h);
        expect(eps[i]).toBeCloseTo(-Math.sqrt(1 - alphaBar) * score, 4);
      }
    }
  });

  test("eps* and the posterior mean satisfy x_t = sqrt(alphaBar) E[x0 | x_t] + sqrt(1 - alphaBar) eps*", () => {
    const x = Tensor.from(points.flat(), [points.length, DIM]);
    const alphaBars = [0.3, 0.8, 0.99];
    const eps = mixture.idealNoise(x, alphaBars);
    const mean = mixture.posteriorMean(x, alphaBars);
    for (let b = 0; b < points.length; b++) {
      for (let i = 0; i < DIM; i++) {
        const rebuilt = Math.sqrt(alphaBars[b]) * mean.data[b * DIM + i] +
          Math.sqrt(1 - alphaBars[b]) * eps.data[b * DIM + i];
        expect(rebuilt).toBeCloseTo(points[b][i], 5);
      }
    }
  });

  test("eps* stays accurate at the smallest DDPM noise level (alphaBar = 1 - 1e-4) with no cancellation", () => {
    // A sample exactly at the mean of a 1-D Gaussian N(0.7, 0.01) shifted by 1e-3: eps* = sqrt(1 - ab) (x - sqrt(ab) mu) / c
    const g = new GaussianMixture([{ weight: 1, mean: [0.7], noiseVariance: 0.01 }], { dim: 1 });
    const alphaBar = 1 - 1e-4;
    const x = Math.fround(Math.sqrt(alphaBar) * 0.7 + 1e-3);
    const c = alphaBar * 0.01 + 1e-4;
    const expected = (Math.sqrt(1e-4) * (x - Math.sqrt(alphaBar) * 0.7)) / c;
    const got = g.idealNoise(Tensor.from([x], [1, 1]), alphaBar).data[0];
    expect(Math.abs(got - expected) / Math.abs(expected)).toBeLessThan(1e-5);
  });

  test("samples have the mixture's component weights, means and variances within sampling error", () => {
    const n = 20000;
    const { samples, components } = mixture.sample(n, new TorchGenerator(7));
    expect(samples.shape).toEqual([n, DIM]);
    for (const [k, spec] of SPECS.entries()) {
      const p = spec.weight / 3;
      const count = components.reduce((s, c) => s + (c === k ? 1 : 0), 0);
      // binomial standard error sqrt(p (1 - p) / n); 4 standard errors
      expect(Math.abs(count / n - p)).toBeLessThan(4 * Math.sqrt((p * (1 - p)) / n));
      const cov = denseCovariance(spec.factor, DIM, RANK, spec.noiseVariance);
      for (let i = 0; i < DIM; i++) {
        let sum = 0;
        let sum2 = 0;
        for (let b = 0; b < n; b++) {
          if (components[b] !== k) continue;
          sum += samples.data[b * DIM + i];
          sum2 += samples.data[b * DIM + i] ** 2;
        }
        const mean = sum / count;
        const variance = sum2 / count - mean * mean;
        expect(Math.abs(mean - spec.mean[i])).toBeLessThan(4 * Math.sqrt(cov[i][i] / count));
        // the variance's standard error for a Gaussian is sigma^2 sqrt(2 / n)
        expect(Math.abs(variance - cov[i][i])).toBeLessThan(4 * cov[i][i] * Math.sqrt(2 / count));
      }
    }
  });

  test("sampling is reproducible from the generator's seed", () => {
    const a = mixture.sample(10, new TorchGenerator(3)).samples.data;
    const b = mixture.sample(10, new TorchGenerator(3)).samples.data;
    const c = mixture.sample(10, new TorchGenerator(4)).samples.data;
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
  });

  test("bad components and inputs are refused with errors naming the value", () => {
    expect(() => new GaussianMixture([], { dim: 2 })).toThrow("at least one component");
    expect(() => new GaussianMixture([{ weight: -1, mean: [0, 0], noiseVariance: 1 }], { dim: 2 })).toThrow(
      "weight must be finite and non-negative, got -1",
    );
    expect(() => new GaussianMixture([{ weight: 1, mean: [0], noiseVariance: 1 }], { dim: 2 })).toThrow(
      "mean has length 1, expected 2",
    );
    expect(() => new GaussianMixture([{ weight: 1, mean: [0, 0], noiseVariance: 0 }], { dim: 2 })).toThrow(
      "noise variance must be finite and positive, got 0",
    );
    expect(() => new GaussianMixture([{ weight: 1, mean: [0, 0], factor: [1, 2, 3], noiseVariance: 1 }], { dim: 2 }))
      .toThrow("not a multiple of dimension 2");
    expect(() => mixture.idealNoise(Tensor.zeros([2, 4]), 0.5)).toThrow("expected [n, ...] with 5 values per sample");
    expect(() => mixture.idealNoise(Tensor.zeros([1, 5]), 1.5)).toThrow("alphaBar must be in (0, 1], got 1.5");
    expect(() => mixture.idealNoise(Tensor.zeros([1, 5]), 1)).toThrow("eps* needs alphaBar below 1");
    expect(() => mixture.idealNoise(Tensor.zeros([2, 5]), [0.5])).toThrow("one alphaBar per sample (2), got 1");
    expect(() => mixture.sample(0, new TorchGenerator(0))).toThrow("positive integer, got 0");
  });
});

describe("fitLowRankGaussian", () => {
  test("recovers a known rank-2 plus isotropic covariance from its samples (probabilistic PCA)", () => {
    const dim = 30;
    const lambdas = [4, 1];
    const s2 = 0.04;
    // orthonormal directions: two coordinate-free unit vectors
    const q1 = Array.from({ length: dim }, (_, i) => Math.sin(i + 1));
    const q2raw = Array.from({ length: dim }, (_, i) => Math.cos(2 * i));
    const norm = (v: number[]) => Math.hypot(...v);
    const u1 = q1.map((v) => v / norm(q1));
    const dot = q2raw.reduce((s, v, i) => s + v * u1[i], 0);
    const q2 = q2raw.map((v, i) => v - dot * u1[i]);
    const u2 = q2.map((v) => v / norm(q2));
    const factor = Array.from({ length: dim * 2 }, (_, idx) => {
      const i = Math.floor(idx / 2);
      return idx % 2 === 0 ? Math.sqrt(lambdas[0]) * u1[i] : Math.sqrt(lambdas[1]) * u2[i];
    });
    const truth = new GaussianMixture([{ weight: 1, mean: new Array(dim).fill(0.5), factor, noiseVariance: s2 }], {
      dim,
    });
    const n = 400;
    const { samples } = truth.sample(n, new TorchGenerator(11));
    const fit = fitLowRankGaussian(samples.data, { dim, rank: 2 });
    const model = new GaussianMixture([fit], { dim });
    // s2: ML estimate from (n - 1)(d - 2) residual degrees of freedom; relative standard error about sqrt(2 / (n (d - 2)))
    expect(Math.abs(fit.noiseVariance - s2) / s2).toBeLessThan(4 * Math.sqrt(2 / (n * (dim - 2))) + 0.01);
    // lambda_j + s2 are the top eigenvalues; relative standard error sqrt(2 / n) each
    const top = Array.from(model.lowRankVariances);
    expect(Math.abs(top[0] - lambdas[0]) / lambdas[0]).toBeLessThan(4 * Math.sqrt(2 / n));
    expect(Math.abs(top[1] - lambdas[1]) / lambdas[1]).toBeLessThan(4 * Math.sqrt(2 / n));
    for (let i = 0; i < dim; i++) {
      expect(Math.abs(fit.mean[i] - 0.5)).toBeLessThan(4 * Math.sqrt((lambdas[0] + lambdas[1] + s2) / n));
    }
  });

  test("refuses a rank that the samples cannot support", () => {
    expect(() => fitLowRankGaussian(new Float64Array(6), { dim: 3, rank: 2 })).toThrow(
      "rank must be an integer in [0, 1], got 2",
    );
  });
});

describe("probabilityFlowSolution", () => {
  const dim = 4;
  const single = new GaussianMixture(
    [{ weight: 1, mean: [0.2, -0.1, 0.4, 0], factor: [0.6, 0.1, -0.2, 0.3, 0.3, 0.5, 0.1, -0.4], noiseVariance: 0.03 }],
    { dim },
  );
  const x = Tensor.from([0.5, -0.3, 1.1, 0.2], [1, dim]);

  test("its derivative in sigma is eps*, the DDIM paper's eq. (14): d(x/sqrt(alphaBar)) / d sigma = eps*(x, t)", () => {
    const alphaBar = 0.4;
    const sigma = Math.sqrt((1 - alphaBar) / alphaBar);
    const h = 1e-4;
    const at = (s: number) => {
      const ab = 1 / (1 + s * s);
      const xs = probabilityFlowSolution(single, x, { alphaBarT: alphaBar, alphaBarS: ab }).data;
      return Array.from(xs, (v) => v / Math.sqrt(ab));
    };
    const up = at(sigma + h);
    const down = at(sigma - h);
    const eps = single.idealNoise(x, alphaBar).data;
    for (let i = 0; i < dim; i++) expect((up[i] - down[i]) / (2 * h)).toBeCloseTo(eps[i], 3);
  });

  test("is the identity from t to t and composes: (t -> u) then (u -> s) equals (t -> s)", () => {
    const same = probabilityFlowSolution(single, x, { alphaBarT: 0.3, alphaBarS: 0.3 }).data;
    for (let i = 0; i < dim; i++) expect(same[i]).toBeCloseTo(x.data[i], 6);
    const direct = probabilityFlowSolution(single, x, { alphaBarT: 0.05, alphaBarS: 0.99 }).data;
    const mid = probabilityFlowSolution(single, x, { alphaBarT: 0.05, alphaBarS: 0.5 });
    const twoSteps = probabilityFlowSolution(single, mid, { alphaBarT: 0.5, alphaBarS: 0.99 }).data;
    for (let i = 0; i < dim; i++) expect(twoSteps[i]).toBeCloseTo(direct[i], 5);
  });

  test("refuses a mixture of more than one component", () => {
    const two = new GaussianMixture([
      { weight: 1, mean: [0], noiseVariance: 1 },
      { weight: 1, mean: [1], noiseVariance: 1 },
    ], { dim: 1 });
    expect(() => probabilityFlowSolution(two, Tensor.zeros([1, 1]), { alphaBarT: 0.5, alphaBarS: 0.9 })).toThrow(
      "single Gaussian",
    );
  });
});
