import { describe, expect, test } from "bun:test";
import {
  interpolateLatents,
  interpolationAlphas,
  interpolationRow,
  lerp,
  slerp,
} from "../../lib/pipelines/interpolation.ts";
import { Tensor } from "../../lib/core/tensor.ts";
import { TorchGenerator } from "../../lib/core/torch_generator.ts";

const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((sum, x) => sum + x * x, 0));

describe("slerp as the DDIM paper defines it (section 5.3)", () => {
  test("slerp of two orthogonal unit vectors at alpha = 0.5 is (cos 45 deg, sin 45 deg)", () => {
    const mid = slerp(Tensor.from([1, 0]), Tensor.from([0, 1]), 0.5);
    expect(mid.data[0]).toBeCloseTo(Math.SQRT1_2, 6);
    expect(mid.data[1]).toBeCloseTo(Math.SQRT1_2, 6);
  });

  test("slerp at alpha = 1/3 between orthogonal unit vectors lies at 30 degrees", () => {
    const point = slerp(Tensor.from([1, 0]), Tensor.from([0, 1]), 1 / 3);
    expect(point.data[0]).toBeCloseTo(Math.cos(Math.PI / 6), 6);
    expect(point.data[1]).toBeCloseTo(Math.sin(Math.PI / 6), 6);
  });

  test("slerp returns the end points at alpha = 0 and 1 and keeps the norm of equal-norm Gaussian latents", () => {
    const g = new TorchGenerator(3);
    const z0 = g.randn([1, 3, 8, 8]);
    const raw = g.randn([1, 3, 8, 8]);
    const z1 = new Tensor(raw.data.map((v) => (v * norm(z0.data)) / norm(raw.data)), raw.shape);
    for (const [alpha, end] of [[0, z0], [1, z1]] as const) {
      const point = slerp(z0, z1, alpha);
      for (let k = 0; k < point.size; k++) expect(point.data[k]).toBeCloseTo(end.data[k], 5);
    }
    for (const alpha of [0.1, 0.5, 0.9]) expect(norm(slerp(z0, z1, alpha).data) / norm(z0.data)).toBeCloseTo(1, 5);
    // lerp shrinks the norm in between: the reason the paper uses slerp for Gaussian latents
    expect(norm(lerp(z0, z1, 0.5).data) / norm(z0.data)).toBeLessThan(0.8);
  });

  test("identical and parallel latents fall back to lerp and give no NaN, even with the fallback threshold at 1", () => {
    const z = Tensor.from([0.3, -1.2, 2.5, 0.7]);
    const scaled = Tensor.from([0.9, -3.6, 7.5, 2.1]);
    for (const options of [{}, { dotThreshold: 1 }]) {
      const same = slerp(z, z, 0.4, options);
      expect(Array.from(same.data)).toEqual(Array.from(z.data));
      const parallel = slerp(z, scaled, 0.5, options);
      expect(Array.from(parallel.data)).toEqual(Array.from(lerp(z, scaled, 0.5).data));
    }
    const nearly = Tensor.from([0.3, -1.2, 2.5, 0.7 + 1e-6]);
    expect(Array.from(slerp(z, nearly, 0.5).data).every(Number.isFinite)).toBe(true);
    expect(Array.from(slerp(Tensor.zeros([3]), Tensor.from([1, 2, 3]), 0.5).data)).toEqual([0.5, 1, 1.5]);
  });

  test("the lerp fallback starts at cos(theta) > 0.9995, the threshold of the slerp the paper's code uses", () => {
    // unit vectors at cos(theta) = c: slerp at alpha = 1/2 is the unit bisector (cos(theta/2), sin(theta/2)),
    // lerp is ((1 + c)/2, s/2), shorter by a factor cos(theta/2); the two differ by ~1e-4 here, far above float32 noise
    for (const [c, fallsBack] of [[0.9994, false], [0.9996, true]] as const) {
      const s = Math.sqrt(1 - c * c);
      const z0 = Tensor.from([1, 0]);
      const z1 = Tensor.from([c, s]);
      const got = Array.from(slerp(z0, z1, 0.5).data);
      const half = Math.acos(Math.fround(c)) / 2;
      const expected = fallsBack ? Array.from(lerp(z0, z1, 0.5).data) : [Math.cos(half), Math.sin(half)];
      for (let k = 0; k < 2; k++) expect(Math.abs(got[k] - expected[k])).toBeLessThan(2e-6);
      const other = fallsBack ? [Math.cos(half), Math.sin(half)] : Array.from(lerp(z0, z1, 0.5).data);
      expect(Math.abs(got[0] - other[0])).toBeGreaterThan(5e-5);
    }
  });

  test("latents holding NaN or infinity are refused, naming which and where", () => {
    expect(() => slerp(Tensor.from([1, Number.NaN]), Tensor.from([0, 1]), 0.5)).toThrow(
      "slerp's z0 is not finite: element 1 (index [1]) is NaN",
    );
    expect(() => slerp(Tensor.from([1, 0]), Tensor.from([Infinity, 1]), 0.5)).toThrow(/slerp's z1 is not finite/);
    expect(() => lerp(Tensor.from([1, 0]), Tensor.from([Number.NaN, 1]), 0.5)).toThrow(/lerp's z1 is not finite/);
  });

  test("opposite latents, mismatched shapes and alpha outside [0, 1] are refused with the values named", () => {
    expect(() => slerp(Tensor.from([1, 2]), Tensor.from([-1, -2]), 0.5)).toThrow(/opposite latents.*cos\(theta\) = -1/);
    expect(() => slerp(Tensor.zeros([1, 3, 4, 4]), Tensor.zeros([1, 3, 8, 8]), 0.5)).toThrow(
      /\[1, 3, 4, 4\].*\[1, 3, 8, 8\]/,
    );
    expect(() => slerp(Tensor.from([1, 0]), Tensor.from([0, 1]), 1.5)).toThrow(/alpha in \[0, 1\], got 1.5/);
    expect(() => lerp(Tensor.from([1, 0]), Tensor.from([0, 1]), Number.NaN)).toThrow(/got NaN/);
  });

  test("a batch is interpolated item by item along its first axis", () => {
    const z0 = Tensor.from([1, 0, 2, 0], [2, 2]);
    const z1 = Tensor.from([0, 1, 0, 5], [2, 2]);
    const both = slerp(z0, z1, 0.5);
    const first = slerp(Tensor.from([1, 0]), Tensor.from([0, 1]), 0.5);
    const second = slerp(Tensor.from([2, 0]), Tensor.from([0, 5]), 0.5);
    expect(Array.from(both.data)).toEqual([...first.data, ...second.data]);
  });
});

describe("interpolation rows", () => {
  test("interpolationAlphas spaces alpha evenly from 0 to 1 and refuses fewer than two", () => {
    expect(interpolationAlphas(5)).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect(() => interpolationAlphas(1)).toThrow(/at least 2, got 1/);
  });

  test("interpolateLatents stacks one slerp per alpha, from z0 to z1", () => {
    const g = new TorchGenerator(0);
    const z0 = g.randn([1, 2, 4, 4]);
    const z1 = g.randn([1, 2, 4, 4]);
    const row = interpolateLatents(z0, z1, { alphas: [0, 0.25, 1] });
    expect(row.shape).toEqual([3, 2, 4, 4]);
    expect(Array.from(row.data.subarray(32, 64))).toEqual(Array.from(slerp(z0, z1, 0.25).data));
    expect(() => interpolateLatents(row, row)).toThrow(/single latents of shape \[1, \.\.\.\]/);
  });

  test("interpolationRow decodes the stacked latents with eta = 0 in one call", async () => {
    const calls: { xT: Tensor; eta?: number; numInferenceSteps?: number }[] = [];
    const decoder = {
      sample: (options: { xT: Tensor; eta?: number; numInferenceSteps?: number }) => {
        calls.push(options);
        return Promise.resolve({ samples: options.xT.clone() });
      },
    };
    const g = new TorchGenerator(1);
    const z0 = g.randn([1, 3, 4, 4]);
    const z1 = g.randn([1, 3, 4, 4]);
    const row = await interpolationRow(decoder, [z0, z1], { count: 4, numInferenceSteps: 10 });
    expect(row.alphas).toEqual([0, 1 / 3, 2 / 3, 1]);
    expect(calls.length).toBe(1);
    expect(calls[0].eta).toBe(0);
    expect(calls[0].numInferenceSteps).toBe(10);
    expect(row.samples.shape).toEqual([4, 3, 4, 4]);
  });
});
