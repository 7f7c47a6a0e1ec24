import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import {
  fusedStep,
  fusedStepScalar,
  fusedStepSimd,
  type KernelResult,
  type StepCoefficients,
} from "../../lib/schedulers/_kernels.ts";
import { TorchGenerator } from "../../lib/core/torch_generator.ts";
import { assembleKernels, kernelsModuleSource } from "../../tools/build_kernels_wasm.ts";

const root = new URL("../../", import.meta.url).pathname;

/** A DDIM-like record: predX0 from (x, m), clamped to [-1, 1] or not, then a mix of all three inputs. */
function record(clipRange: number): StepCoefficients {
  return {
    x0FromSample: 1.0512,
    x0FromOutput: -0.3251,
    clipRange,
    x0Coeff: 0.9731,
    sampleCoeff: 0.0123,
    outputCoeff: 0.2297,
    noiseCoeff: 0.1184,
  };
}

/** Inputs with the awkward values in them: exact clamp bounds, signed zeros, huge values. */
function inputs(size: number, seed: number): { x: Float32Array; m: Float32Array; z: Float32Array } {
  const generator = new TorchGenerator(seed);
  const x = generator.randn([size]).data.map((v) => 2 * v);
  const m = generator.randn([size]).data;
  const z = generator.randn([size]).data;
  const special = [1, -1, 0, -0, 3e38, -3e38, 1e-40, Number.NaN, Infinity, -Infinity, 1.0000001, -1.0000001];
  special.forEach((v, k) => {
    if (k < size) x[k] = v;
  });
  return { x, m, z };
}

function sameBits(a: KernelResult, b: KernelResult): void {
  expect(Array.from(b.prev, (v) => Object.is(v, -0) ? "-0" : v)).toEqual(
    Array.from(a.prev, (v) => Object.is(v, -0) ? "-0" : v),
  );
  expect(Array.from(b.predX0)).toEqual(Array.from(a.predX0));
  expect(Number.isNaN(b.check)).toBe(Number.isNaN(a.check));
}

describe("the fused step kernel", () => {
  test("the committed WebAssembly bytes are the build of lib/schedulers/_kernels.wat (bun tools/build_kernels_wasm.ts)", async () => {
    const bytes = await assembleKernels(readFileSync(`${root}lib/schedulers/_kernels.wat`, "utf8"));
    expect(readFileSync(`${root}lib/schedulers/_kernels_wasm.ts`, "utf8")).toBe(kernelsModuleSource(bytes));
  });

  test("this engine runs the SIMD kernel (so the speed figures are the SIMD ones)", () => {
    const { x, m } = inputs(8, 0);
    expect(fusedStepSimd(record(1), m, x, null)).not.toBeNull();
  });

  for (const clipRange of [1, Infinity]) {
    for (const withNoise of [false, true]) {
      test(`SIMD and scalar kernels give the same bits (clip ${clipRange}, ${withNoise ? "with" : "no"} noise)`, () => {
        for (const size of [12, 48, 1024]) {
          const { x, m, z } = inputs(size, size);
          const noise = withNoise ? z : null;
          sameBits(fusedStepScalar(record(clipRange), m, x, noise), fusedStepSimd(record(clipRange), m, x, noise)!);
        }
      });
    }
  }

  test("each element is the float64 formula up to float32 rounding of its terms (4 ulp of their magnitudes)", () => {
    const { x, m, z } = inputs(4096, 7);
    const k = record(1);
    const { prev, predX0 } = fusedStep(k, m, x, z);
    const ulp = 2 ** -23;
    for (let i = 12; i < x.length; i++) {
      const terms = [k.x0FromSample * x[i], k.x0FromOutput * m[i]];
      const exactX0 = Math.min(Math.max(terms[0] + terms[1], -1), 1);
      const x0Scale = Math.abs(terms[0]) + Math.abs(terms[1]);
      expect(Math.abs(predX0[i] - exactX0)).toBeLessThanOrEqual(4 * ulp * x0Scale);
      const mix = [k.x0Coeff * exactX0, k.sampleCoeff * x[i], k.outputCoeff * m[i], k.noiseCoeff * z[i]];
      const exactPrev = mix.reduce((a, b) => a + b);
      const prevScale = mix.reduce((a, b) => a + Math.abs(b), 0) + k.x0Coeff * 4 * ulp * x0Scale;
      expect(Math.abs(prev[i] - exactPrev)).toBeLessThanOrEqual(5 * ulp * prevScale);
    }
  });

  test("a NaN or infinite model output, or an overflow, sets the check; finite inputs leave it 0", () => {
    for (const size of [6, 8]) {
      const { x, m } = inputs(size, 1);
      x.fill(0.5);
      expect(fusedStep(record(1), m, x, null).check).toBe(0);
      for (const bad of [Number.NaN, Infinity]) {
        const broken = m.slice();
        broken[size - 1] = bad;
        expect(Number.isNaN(fusedStep(record(1), broken, x, null).check)).toBe(true);
      }
      const huge = x.slice();
      huge[2] = 3e38;
      expect(Number.isNaN(fusedStep({ ...record(Infinity), sampleCoeff: 10 }, m, huge, null).check)).toBe(true);
    }
  });
});
