import { describe, expect, test } from "bun:test";
import { fitConvergenceOrder, meanLogLikelihood, slicedWasserstein, wasserstein1D } from "../../lib/math/metrics.ts";
import { Tensor } from "../../lib/core/tensor.ts";
import { TorchGenerator } from "../../lib/core/torch_generator.ts";

/** n samples of N(mean, std^2 I_d) as an [n, d] tensor, from a seeded PyTorch-compatible generator. */
function gaussianSamples(seed: number, n: number, mean: readonly number[], std: number): Tensor {
  const d = mean.length;
  const z = new TorchGenerator(seed).randn([n, d]);
  const data = new Float32Array(n * d);
  for (let i = 0; i < n * d; i++) data[i] = mean[i % d] + std * z.data[i];
  return new Tensor(data, [n, d]);
}

/** log N(x; 0, std^2 I_d). */
function isotropicLogDensity(std: number) {
  return (batch: Tensor) => {
    const [n, d] = batch.shape;
    return Array.from({ length: n }, (_, i) => {
      let squared = 0;
      for (let j = 0; j < d; j++) squared += batch.data[i * d + j] ** 2;
      return -0.5 * d * Math.log(2 * Math.PI * std * std) - squared / (2 * std * std);
    });
  };
}

describe("wasserstein1D", () => {
  test("a shift by c moves every quantile by c, so W_2 = c", () => {
    expect(wasserstein1D([0, 1, 2], [1, 2, 3])).toBeCloseTo(1, 12);
    expect(wasserstein1D([2, 0, 1], [3, 1, 2])).toBeCloseTo(1, 12); // order of input does not matter
  });

  test("sets of different sizes compare through their quantile functions", () => {
    // the quantile functions of {0, 1} and {0, 0, 1, 1} are the same step function
    expect(wasserstein1D([0, 1], [0, 0, 1, 1])).toBe(0);
    // {0} against {0, 2}: half the mass moves by 2, W_2^2 = 0.5 * 4
    expect(wasserstein1D([0], [0, 2])).toBeCloseTo(Math.SQRT2, 12);
    // {0, 3} against {0, 1, 2}: quantile pieces [0,1/3): 0, [1/3,1/2): 1, [1/2,2/3): 2^2, [2/3,1): 1
    expect(wasserstein1D([0, 3], [0, 1, 2]) ** 2).toBeCloseTo(1 / 6 + 4 / 6 + 1 / 3, 12);
  });

  test("wasserstein1D refuses empty and non-finite input", () => {
    expect(() => wasserstein1D([], [1])).toThrow("at least one sample in a");
    expect(() => wasserstein1D([1], [NaN])).toThrow("non-finite value in b");
  });
});

describe("slicedWasserstein", () => {
  test("between N(0, I) and N(0, 4 I) every projection has W_2 = |1 - 2| = 1 (sets of unequal size)", () => {
    const n = 4000;
    const m = 3000;
    const a = gaussianSamples(1, n, new Array(6).fill(0), 1);
    const b = gaussianSamples(2, m, new Array(6).fill(0), 2);
    const result = slicedWasserstein(a, b, { projections: 64, seed: 3 });
    // the projected sample standard deviations err by about s / sqrt(2n) each
    const tolerance = 4 * Math.sqrt(1 / (2 * n) + 4 / (2 * m));
    expect(Math.abs(result.distance - 1)).toBeLessThan(tolerance);
    expect(result.projections).toBe(64);
    expect(result.perProjection.length).toBe(64);
  });

  test("between N(0, I_d) and N(m, I_d) it equals |m| / sqrt(d), the mean of (theta . m)^2 over the sphere", () => {
    const d = 8;
    const shift = new Array(d).fill(3); // |m|^2 / d = 9
    const a = gaussianSamples(4, 3000, new Array(d).fill(0), 1);
    const b = gaussianSamples(5, 3000, shift, 1);
    const result = slicedWasserstein(a, b, { projections: 400, seed: 6 });
    expect(result.standardError).toBeGreaterThan(0);
    // direction noise (reported) plus the samples' own noise (means err by ~ sqrt(2/n) per direction)
    const tolerance = 4 * result.standardError + 4 * Math.sqrt(2 / 3000);
    expect(Math.abs(result.distance - 3)).toBeLessThan(tolerance);
  });

  test("the noise floor between two exact sample sets of one law shrinks as the sets grow", () => {
    const zero = new Array(16).fill(0);
    const small = slicedWasserstein(gaussianSamples(7, 100, zero, 1), gaussianSamples(8, 100, zero, 1), { seed: 9 });
    const large = slicedWasserstein(gaussianSamples(10, 4000, zero, 1), gaussianSamples(11, 4000, zero, 1), {
      seed: 9,
    });
    expect(large.distance).toBeLessThan(small.distance / 2);
    expect(large.distance).toBeLessThan(0.1);
  });

  test("the distance is symmetric and is 0 from a set to itself", () => {
    const a = gaussianSamples(12, 200, [0, 0, 0], 1);
    const b = gaussianSamples(13, 150, [1, 0, 0], 1);
    expect(slicedWasserstein(a, a, { seed: 1 }).distance).toBe(0);
    const ab = slicedWasserstein(a, b, { seed: 1 }).distance;
    const ba = slicedWasserstein(b, a, { seed: 1 }).distance;
    expect(Math.abs(ab - ba)).toBeLessThan(1e-12);
  });

  test("fixed directions along one axis give that coordinate's 1-D distance: N(0, 1) against N(0, 9) is 2", () => {
    const a = gaussianSamples(14, 4000, [0, 0], 1);
    const wide = gaussianSamples(15, 4000, [0, 0], 1);
    for (let i = 0; i < wide.size; i += 2) wide.data[i] *= 3; // only the first coordinate widens to std 3
    const axis = slicedWasserstein(a, wide, { directions: Tensor.from([2, 0], [1, 2]) });
    expect(axis.projections).toBe(1);
    expect(Math.abs(axis.distance - 2)).toBeLessThan(4 * Math.sqrt(1 / 8000 + 9 / 8000));
    const other = slicedWasserstein(a, wide, { directions: Tensor.from([0, 1], [1, 2]) });
    expect(other.distance).toBeLessThan(0.1);
    expect(() => slicedWasserstein(a, wide, { directions: Tensor.zeros([1, 3]) })).toThrow(
      "directions must have shape [L, 2], got [1, 3]",
    );
  });

  test("slicedWasserstein refuses mismatched sample sizes and bad projection counts", () => {
    const a = Tensor.zeros([4, 3]);
    expect(() => slicedWasserstein(a, Tensor.zeros([4, 2]))).toThrow("have 3 values each but samples of b have 2");
    expect(() => slicedWasserstein(a, a, { projections: 0 })).toThrow("projections must be a positive integer, got 0");
    expect(() => slicedWasserstein(Tensor.zeros([0, 3]), a)).toThrow("a must hold at least one sample");
  });
});

describe("meanLogLikelihood", () => {
  test("exact samples of N(0, s^2 I_d) score -d/2 log(2 pi s^2) - d/2, the negative entropy", () => {
    const d = 16;
    const n = 2000;
    const std = 0.5;
    const x = gaussianSamples(20, n, new Array(d).fill(0), std);
    const result = meanLogLikelihood(x, isotropicLogDensity(std));
    const negativeEntropy = -0.5 * d * Math.log(2 * Math.PI * std * std) - d / 2;
    // log p = const - chi^2_d / 2 has standard deviation sqrt(d / 2)
    const expectedError = Math.sqrt(d / 2) / Math.sqrt(n);
    expect(Math.abs(result.standardError / expectedError - 1)).toBeLessThan(0.1);
    expect(Math.abs(result.mean - negativeEntropy)).toBeLessThan(4 * expectedError);
    expect(result.perDimension).toBeCloseTo(result.mean / d, 12);
    expect(result.count).toBe(n);
    expect(result.dimensions).toBe(d);
  });

  test("samples twice as wide as the truth score -d/2 log(2 pi) - 2 d under N(0, I)", () => {
    const d = 16;
    const n = 2000;
    const x = gaussianSamples(21, n, new Array(d).fill(0), 2);
    const result = meanLogLikelihood(x, isotropicLogDensity(1));
    const expected = -0.5 * d * Math.log(2 * Math.PI) - (4 * d) / 2;
    // log p = const - 2 chi^2_d has standard deviation 2 sqrt(2 d)
    expect(Math.abs(result.mean - expected)).toBeLessThan((4 * 2 * Math.sqrt(2 * d)) / Math.sqrt(n));
  });

  test("meanLogLikelihood refuses a NaN density, a wrong count of values and an empty batch", () => {
    expect(() => meanLogLikelihood(Tensor.zeros([2, 2]), () => [0, NaN])).toThrow("log-density of sample 1 is NaN");
    expect(() => meanLogLikelihood(Tensor.zeros([2, 2]), () => [0])).toThrow("returned 1 values for 2 samples");
    expect(() => meanLogLikelihood(Tensor.zeros([0, 2]), () => 0)).toThrow("samples must hold at least one sample");
  });
});

describe("fitConvergenceOrder", () => {
  test("an exact power law 3 S^-1.5 gives order 1.5, constant 3 and R^2 = 1", () => {
    const steps = [5, 10, 20, 50, 100];
    const fit = fitConvergenceOrder(steps, steps.map((s) => 3 * s ** -1.5));
    expect(fit.order).toBeCloseTo(1.5, 10);
    expect(fit.constant).toBeCloseTo(3, 10);
    expect(fit.rSquared).toBeCloseTo(1, 10);
    expect(fit.points).toBe(5);
  });

  test("Euler's method on y' = -y is order 1 and Heun's method is order 2", () => {
    // global error at t = 1 of S steps of size 1/S, against the exact solution exp(-1)
    const steps = [5, 10, 20, 50, 100, 200, 500, 1000];
    const exact = Math.exp(-1);
    const euler = steps.map((s) => Math.abs((1 - 1 / s) ** s - exact));
    const heun = steps.map((s) => Math.abs((1 - 1 / s + 1 / (2 * s * s)) ** s - exact));
    expect(Math.abs(fitConvergenceOrder(steps, euler).order - 1)).toBeLessThan(0.05);
    expect(Math.abs(fitConvergenceOrder(steps, heun).order - 2)).toBeLessThan(0.05);
  });

  test("fitConvergenceOrder refuses mismatched lengths, non-positive errors and a single step count", () => {
    expect(() => fitConvergenceOrder([1, 2], [1])).toThrow("steps has 2 entries but errors has 1");
    expect(() => fitConvergenceOrder([1, 2], [1, 0])).toThrow("errors[1] must be a positive finite number, got 0");
    expect(() => fitConvergenceOrder([4, 4], [1, 2])).toThrow("at least two distinct step counts");
  });
});
