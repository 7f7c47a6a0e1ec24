import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { maxAbsDiff, schedulerFixtures } from "../_fixtures.ts";
import { TorchGenerator } from "../../lib/core/torch_generator.ts";
import {
  loadRandnKernel,
  RANDN_WASM_MIN_ELEMENTS,
  type RandnKernel,
  randnKernel,
  setRandnWasmEnabled,
} from "../../lib/core/_randn_wasm.ts";
import { RANDN_WASM_BASE64 } from "../../lib/core/_randn_wasm_bytes.ts";
import { assembleWat, bytesModuleText, RANDN_BYTES_MODULE, RANDN_WAT } from "../../tools/build_wasm.ts";
import { logAvx2, sinCosAvx2 } from "../../lib/core/_avx_mathfun.ts";
import { describeLikeCase, torchRandnBitsCases } from "../_torch_randn_bits.ts";

const root = new URL("../../", import.meta.url);
const committedBytes = Uint8Array.from(atob(RANDN_WASM_BASE64), (c) => c.charCodeAt(0));

/** The first index where two buffers differ in their float32 bit patterns (-0 and +0 differ), or -1. */
function firstDifference(a: Float32Array, b: Float32Array): number {
  const wordsA = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const wordsB = new Uint32Array(b.buffer, b.byteOffset, b.length);
  if (wordsA.length !== wordsB.length) return Math.min(wordsA.length, wordsB.length);
  for (let k = 0; k < wordsA.length; k++) if (wordsA[k] !== wordsB[k]) return k;
  return -1;
}

/**
 * Draw the same sequence of sizes from two generators of the same seed, one with the WebAssembly kernel (taking runs of
 * 16 elements and up) and one on the JavaScript path; after every draw both take one raw mt19937 output, so their
 * states are compared too. Returns the number of draws compared.
 */
function expectSameStreams(seed: number, sizes: number[]): number {
  const withKernel = new TorchGenerator(seed);
  const withoutKernel = new TorchGenerator(seed);
  let count = 0;
  for (const size of sizes) {
    setRandnWasmEnabled(true, 16);
    const a = withKernel.fillRandn(new Float32Array(size));
    const stateA = withKernel.nextUint32();
    setRandnWasmEnabled(false);
    const b = withoutKernel.fillRandn(new Float32Array(size));
    const stateB = withoutKernel.nextUint32();
    // compare bit patterns (so -0 differs from +0); a mismatch reports the size and the first differing element
    expect({ size, first: firstDifference(a, b) }).toEqual({ size, first: -1 });
    expect({ size, state: stateA }).toEqual({ size, state: stateB });
    count += size;
  }
  return count;
}

/** The shared kernel. */
function kernel(): RandnKernel {
  setRandnWasmEnabled(true, 16);
  const k = randnKernel(16);
  if (k === null) throw new Error("The WebAssembly randn kernel did not load");
  return k;
}

afterEach(() => {
  setRandnWasmEnabled(true);
});

describe("WebAssembly randn kernel", () => {
  test(
    "the committed bytes are a fresh build of lib/core/wasm/randn.wat, and the module text is what the build writes",
    async () => {
      const fresh = await assembleWat(RANDN_WAT);
      expect(Array.from(committedBytes)).toEqual(Array.from(fresh));
      expect(readFileSync(new URL(RANDN_BYTES_MODULE, root), "utf8")).toBe(bytesModuleText(fresh));
    },
    60_000,
  );

  test("the kernel loads under this runtime (WebAssembly SIMD is available), so the tests below compare two paths", () => {
    expect(WebAssembly.validate(committedBytes)).toBe(true);
    expect(randnKernel(RANDN_WASM_MIN_ELEMENTS)).not.toBeNull();
  });

  test("kernel and JavaScript path give the same bits and states for sizes 1..40, 255..257, 623..626 and 1000", () => {
    const sizes = [
      ...Array.from({ length: 40 }, (_, k) => k + 1),
      255,
      256,
      257,
      623,
      624,
      625,
      626,
      1000,
    ];
    for (const seed of [0, 1, 42, 2 ** 32 - 1]) expectSameStreams(seed, sizes);
  });

  test("kernel and JavaScript path give the same bits for sizes that move every block across a twist", () => {
    // a block straddles a twist when 624 - index is not a multiple of 16; sizes 16k + 1..15 shift the position by
    // every residue, and each consecutive call starts where the previous one (and its raw output) left the stream
    const sizes: number[] = [];
    for (let k = 0; k < 200; k++) sizes.push(16 * (1 + (k % 50)) + (k % 16));
    expectSameStreams(7, sizes);
  });

  test(
    "kernel and JavaScript path give the same bits on 2^24 draws (3x256x256 and 16x3x32x32 batches, odd sizes)",
    () => {
      const sizes: number[] = [];
      let total = 0;
      for (let k = 0; total < 2 ** 24; k++) {
        const size = [3 * 256 * 256, 16 * 3 * 32 * 32, 65536 + 16 * k + 5, 100_003][k % 4];
        sizes.push(size);
        total += size;
      }
      expect(expectSameStreams(123, sizes)).toBeGreaterThanOrEqual(2 ** 24);
    },
    60_000,
  );

  test("a scalar draw (fewer than 16 elements) between kernel draws keeps both paths in step", () => {
    expectSameStreams(3, [5, 300, 1, 2, 3, 4096, 15, 16, 17, 7, 65536 + 3]);
  });

  test("with the kernel taking every block, randn reproduces torch.randn(shape, generator=g) fixtures (1e-5)", () => {
    // the same PyTorch fixtures as test/torch_generator.test.ts (shapes 16, 17, 1x3x8x8, 2x3x4x4 and 20 go through
    // the kernel here)
    setRandnWasmEnabled(true, 16);
    const fixtures = schedulerFixtures().torch_randn;
    expect(fixtures.length).toBeGreaterThan(0);
    for (const { seed, draws, values } of fixtures) {
      const g = new TorchGenerator(seed);
      draws.forEach((shape, k) => expect(maxAbsDiff(g.randn(shape).data, values[k])).toBeLessThan(1e-5));
    }
  });

  test(
    "with the kernel taking every block, randn gives the exact bits of torch.randn for every case of torch-randn-bits.json",
    () => {
      setRandnWasmEnabled(true, 16);
      for (const c of torchRandnBitsCases()) {
        const values = new TorchGenerator(c.seed).randn([c.size]).data;
        expect(describeLikeCase(c, values)).toEqual(c);
      }
    },
    120_000,
  );

  test(
    "kernel and the scalar float32 functions agree on every 24-bit uniform, as u1 = 1 - u and as theta = 2 pi u",
    () => {
      // blocks of 16 uniforms: u[j] and u[j + 8] both run through k / 2^24 for k = 0..2^24 - 1, so every value meets
      // the logarithm (rho) and the sine and cosine; the expected outputs come from lib/core/_avx_mathfun.ts
      const k = kernel();
      const twoPi = Math.fround(2 * Math.PI);
      const uniforms = new Float32Array(624);
      const out = new Float32Array(608);
      const expected = new Float32Array(608);
      const sinCos = new Float64Array(2);
      const blocks = 38;
      let next = 0;
      let differences = 0;
      while (next < 2 ** 24) {
        for (let b = 0; b < blocks; b++) {
          for (let j = 0; j < 8; j++) {
            const u = Math.min(next++, 2 ** 24 - 1) / 2 ** 24;
            uniforms[16 * b + j] = u;
            uniforms[16 * b + j + 8] = u;
            const rho = Math.fround(Math.sqrt(-2 * logAvx2(Math.fround(1 - u))));
            sinCosAvx2(Math.fround(twoPi * u), sinCos);
            expected[16 * b + j] = rho * sinCos[1] + 0;
            expected[16 * b + j + 8] = rho * sinCos[0] + 0;
          }
        }
        k.fillNormalBlocks(new Int32Array(624), uniforms, 0, out, 0, 16 * blocks);
        if (firstDifference(out, expected) !== -1) differences++;
      }
      expect(differences).toBe(0);
    },
    120_000,
  );

  test("u = 0 gives ln 1 = +0 and rho = sqrt(-0) = -0, and PyTorch's fmadd(n, 1, 0) stores +0 in both outputs", () => {
    // -0 times cos 0 = 1 is -0 and times sin 0 = +0 is -0; normal_fill_16_AVX2 stores fmadd(n, std, mean) with std = 1
    // and mean = 0, and -0 + 0 = +0 (IEEE 754)
    const uniforms = new Float32Array(624);
    const out = new Float32Array(16).fill(Number.NaN);
    kernel().fillNormalBlocks(new Int32Array(624), uniforms, 0, out, 0, 16);
    expect(Object.is(out[0], 0)).toBe(true);
    expect(Object.is(out[8], 0)).toBe(true);
  });

  test("an engine that rejects the module gets no kernel, and the generator then runs the JavaScript path", () => {
    // a module whose only function holds an undefined opcode (0xff) fails validation like a SIMD module does on an
    // engine without SIMD; loadRandnKernel must answer null rather than throw
    const invalid = new Uint8Array([
      0x00,
      0x61,
      0x73,
      0x6d,
      0x01,
      0x00,
      0x00,
      0x00, // magic, version
      0x01,
      0x04,
      0x01,
      0x60,
      0x00,
      0x00, // type section: () -> ()
      0x03,
      0x02,
      0x01,
      0x00, // function section
      0x0a,
      0x05,
      0x01,
      0x03,
      0x00,
      0xff,
      0x0b, // code: an undefined opcode
    ]);
    expect(WebAssembly.validate(invalid)).toBe(false);
    expect(loadRandnKernel(invalid)).toBeNull();
    setRandnWasmEnabled(false);
    expect(randnKernel(1 << 20)).toBeNull();
    expect(new TorchGenerator(0).randn([4096]).data.length).toBe(4096);
  });
});
