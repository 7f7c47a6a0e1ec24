import { afterEach, describe, expect, test } from "bun:test";
import { TorchGenerator } from "../../lib/core/torch_generator.ts";
import { setRandnWasmEnabled } from "../../lib/core/_randn_wasm.ts";
import { maxAbsDiff, schedulerFixtures } from "../_fixtures.ts";
import { describeLikeCase, torchRandnBitsCases } from "../_torch_randn_bits.ts";

afterEach(() => {
  setRandnWasmEnabled(true);
});

describe("TorchGenerator", () => {
  test("mt19937 with seed 5489 gives 4123659995 as its 10000th output (C++ standard, [rand.predef])", () => {
    const g = new TorchGenerator(5489);
    let last = 0;
    for (let i = 0; i < 10000; i++) last = g.nextUint32();
    expect(last).toBe(4123659995);
  });

  test("randn reproduces torch.randn(shape, generator=g) for every fixture seed, shape and successive draw (1e-5)", () => {
    const fixtures = schedulerFixtures().torch_randn;
    expect(fixtures.length).toBeGreaterThan(0);
    for (const { seed, draws, values } of fixtures) {
      const g = new TorchGenerator(seed);
      draws.forEach((shape, k) => {
        const z = g.randn(shape);
        expect(z.shape).toEqual(shape);
        expect(maxAbsDiff(z.data, values[k])).toBeLessThan(1e-5);
      });
    }
  });

  test(
    "randn gives the exact bits of torch.randn(size, generator=g) for every seed and size of torch-randn-bits.json",
    () => {
      // the JavaScript path only (the WebAssembly kernel is checked against the same fixture in randn_wasm.test.ts):
      // sizes 1..15 take the scalar float64 path, 16 and up PyTorch's float32 AVX2 Box-Muller; above 1000 elements the
      // fixture holds the SHA-256 of all the bytes and the first 256 values
      setRandnWasmEnabled(false);
      const cases = torchRandnBitsCases();
      expect(cases.length).toBeGreaterThanOrEqual(50);
      expect(cases.some((c) => c.size === 3 * 256 * 256) && cases.some((c) => c.size === 16 * 3 * 32 * 32)).toBe(true);
      for (const c of cases) {
        const values = new TorchGenerator(c.seed).randn([c.size]).data;
        expect(describeLikeCase(c, values)).toEqual(c);
      }
    },
    120_000,
  );

  test("element 3 of torch.randn(64) with seed 0 is -0.4338788092136383 (PyTorch 1.13 AVX2 kernel), not one ulp off", () => {
    // the float64 logarithm and cosine give -0.4338788390159607; PyTorch's float32 polynomials give this value
    setRandnWasmEnabled(false);
    expect(new TorchGenerator(0).randn([64]).data[3]).toBe(-0.4338788092136383);
  });

  test("torch.manual_seed(0); torch.randn(5) is [1.5410, -0.2934, -2.1788, 0.5684, -1.0845] (PyTorch docs and REPL)", () => {
    const z = new TorchGenerator(0).randn([5]).data;
    expect(maxAbsDiff(Array.from(z, (v) => Math.round(v * 1e4) / 1e4), [1.541, -0.2934, -2.1788, 0.5684, -1.0845]))
      .toBeLessThan(1e-9);
  });

  test("manualSeed restarts the stream and forgets the cached scalar normal", () => {
    const g = new TorchGenerator(3);
    const first = g.randn([3]).data; // leaves a cached sin value
    g.manualSeed(3);
    expect(Array.from(g.randn([3]).data)).toEqual(Array.from(first));
    expect(g.seed).toBe(3);
  });

  test("seeds equal modulo 2^32 give the same stream, as PyTorch seeds mt19937 with the low 32 bits", () => {
    const a = new TorchGenerator(7).randn([20]).data;
    const b = new TorchGenerator(7 + 2 ** 32).randn([20]).data;
    expect(Array.from(b)).toEqual(Array.from(a));
  });

  test("a negative seed seeds mt19937 with its two's-complement low 32 bits, as PyTorch's uint64 seed does", () => {
    // torch.Generator().manual_seed(-1) keeps the seed as the uint64 2^64 - 1, and mt19937 takes its low 32 bits,
    // 0xffffffff; likewise -2^32 + 5 wraps to low bits 5 and -2^40 - 3 to 2^32 - 3
    const draw = (seed: number) => Array.from(new TorchGenerator(seed).randn([20]).data);
    expect(draw(-1)).toEqual(draw(2 ** 32 - 1));
    expect(draw(-(2 ** 32) + 5)).toEqual(draw(5));
    expect(draw(-(2 ** 40) - 3)).toEqual(draw(2 ** 32 - 3));
    expect(draw(-1)).not.toEqual(draw(1));
  });

  test("randn of many elements has mean near 0 and variance near 1", () => {
    const z = new TorchGenerator(1).randn([200000]).data;
    let sum = 0, sq = 0;
    for (const v of z) {
      sum += v;
      sq += v * v;
    }
    const mean = sum / z.length;
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(Math.abs(sq / z.length - mean * mean - 1)).toBeLessThan(0.01);
  });

  test("new TorchGenerator() throws if the seed is not a safe integer", () => {
    for (const bad of [1.5, NaN, Infinity, 2 ** 53, "1" as unknown as number]) {
      expect(() => new TorchGenerator(bad)).toThrow(/safe integer/);
    }
  });
});
