/**
 * A seeded random number generator that reproduces PyTorch's CPU generator, so that a seed gives the same noise
 * (and so the same image) here as in a diffusers notebook.
 *
 * | PyTorch                                         | code               | meaning                              |
 * |-------------------------------------------------|--------------------|--------------------------------------|
 * | `torch.Generator().manual_seed(s)`              | `new TorchGenerator(s)` | mt19937 seeded with the low 32 bits |
 * | `torch.randn(shape, generator=g)` (float32)     | `g.randn(shape)`   | standard normal samples, row-major   |
 * | `at::mt19937` output                            | `nextUint32()`     | one 32-bit Mersenne Twister output   |
 *
 * How PyTorch's CPU `randn` turns mt19937 outputs into normals (float32):
 * - 16 elements or more: every element first gets a uniform u = (r & 0xFFFFFF) / 2^24 from one 32-bit output;
 *   then each block of 16 is transformed by Box-Muller (`normal_fill_16_AVX2`, in float32), for j < 8:
 *   u1 = 1 - d[j], u2 = d[j + 8], rho = sqrt(-2 ln u1), theta = float32(2 pi) u2, d[j] = rho cos theta,
 *   d[j + 8] = rho sin theta, with ln, cos and sin the float32 Cephes polynomials of avx_mathfun.h
 *   (lib/core/_avx_mathfun.ts). When the count is not a multiple of 16, the last 16 positions are refilled with fresh
 *   uniforms and transformed again.
 * - fewer than 16 elements: one double at a time, Box-Muller on two 53-bit uniforms (u1, u2) built from two outputs
 *   each: rho = sqrt(-2 ln(1 - u2)), theta = 2 pi u1; it returns rho cos theta and keeps rho sin theta in the
 *   generator for the next scalar draw (until reseeded).
 *
 * Both paths give PyTorch's bits exactly (test/fixtures/torch-randn-bits.json, made by PyTorch 1.13 with its AVX2
 * kernel; a PyTorch build or machine without AVX2 runs a generic kernel on the C library's logf, cosf and sinf,
 * whose last bits can differ).
 *
 * @module
 */
import { shapeSize, Tensor } from "./tensor.ts";
import { randnKernel } from "./_randn_wasm.ts";
import { logAvx2, sinCosAvx2 } from "./_avx_mathfun.ts";

const STATE_SIZE = 624;
const SHIFT_SIZE = 397;
const MATRIX_A = 0x9908b0df;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;
const TWO_POW_24_INV = 1 / 16777216;
const TWO_POW_32 = 4294967296;
const TWO_POW_53_INV = 1 / 9007199254740992;
/** `_mm256_set1_ps(2.0f * c10::pi<double>)`: 2 pi rounded to float32. */
const TWO_PI_FLOAT32 = Math.fround(2 * Math.PI);

/**
 * Anything that draws standard normal tensors the way `torch.randn(shape, generator=g)` does: x_T comes from
 * `randn`, and the schedulers draw each step's noise into a reused buffer with `fillRandn` (the same numbers as
 * `randn` of that many elements). `TorchGenerator` has both.
 */
export interface RandnGenerator {
  /** A new tensor of standard normal draws. */
  randn(shape: readonly number[]): Tensor;
  /** Fill `data` with standard normal draws (the same stream as `randn`) and return it. */
  fillRandn(data: Float32Array): Float32Array;
}

/**
 * PyTorch's CPU random generator (mt19937 plus its normal transforms), seeded like `torch.Generator().manual_seed`.
 *
 * randn: z = sqrt(-2 ln(1 - u_a)) * (cos | sin)(2 pi u_b), u from mt19937 outputs in PyTorch's order, in float32
 * with PyTorch's own logarithm, sine and cosine polynomials from 16 elements up.
 *
 * @example
 * ```ts
 * import { TorchGenerator } from "./torch_generator.ts";
 * const g = new TorchGenerator(0);
 * const z = g.randn([5]);
 * // torch.randn(5, generator=torch.Generator().manual_seed(0)) is [1.5410, -0.2934, -2.1788, 0.5684, -1.0845]
 * // (PyTorch's documentation of torch.manual_seed, and its REPL)
 * const shown = Array.from(z.data, (v) => v.toFixed(4)).join();
 * if (shown !== "1.5410,-0.2934,-2.1788,0.5684,-1.0845") throw new Error(`got ${shown}`);
 * ```
 */
export class TorchGenerator {
  // Int32Array, not Uint32Array: words above 2^31 would read as doubles and slow every bit operation
  #state = new Int32Array(STATE_SIZE);
  /** u = (r & 0xFFFFFF) / 2^24 of each tempered word r of the current state (exact in float32), made at every twist. */
  #uniforms = new Float32Array(STATE_SIZE);
  /** The 16 uniforms of a block that straddles two twists. */
  #block = new Float32Array(16);
  #index = STATE_SIZE;
  #seed = 0;
  #cachedNormal: number | null = null;

  /**
   * Seed a new generator, as `torch.Generator().manual_seed(seed)` does.
   *
   * @param seed a safe integer; PyTorch keeps it as 64 bits and seeds mt19937 with the low 32 bits
   * @throws TypeError if the seed is not a safe integer
   */
  constructor(seed: number) {
    this.manualSeed(seed);
  }

  /** The seed this generator was last seeded with. */
  get seed(): number {
    return this.#seed;
  }

  /**
   * Reseed in place, forgetting any cached normal sample, as `Generator.manual_seed` does.
   *
   * state[0] = seed mod 2^32, state[i] = 1812433253 (state[i-1] xor (state[i-1] >> 30)) + i mod 2^32
   *
   * @param seed a safe integer (negative seeds wrap modulo 2^64, so their low 32 bits are seed mod 2^32)
   * @returns this generator
   * @throws TypeError if the seed is not a safe integer
   * @example
   * ```ts
   * import { TorchGenerator } from "./torch_generator.ts";
   * const g = new TorchGenerator(1).manualSeed(0);
   * // reseeded to 0, it draws what a fresh torch.Generator().manual_seed(0) draws: torch.randn(1) = 1.5410
   * if (g.seed !== 0 || g.randn([1]).data[0].toFixed(4) !== "1.5410") throw new Error("not reseeded");
   * ```
   */
  manualSeed(seed: number): this {
    if (typeof seed !== "number" || !Number.isSafeInteger(seed)) {
      throw new TypeError(`A generator seed must be a safe integer, got ${String(seed)}`);
    }
    this.#seed = seed;
    const low = ((seed % TWO_POW_32) + TWO_POW_32) % TWO_POW_32;
    const state = this.#state;
    state[0] = low;
    for (let i = 1; i < STATE_SIZE; i++) {
      const previous = state[i - 1] ^ (state[i - 1] >>> 30);
      state[i] = Math.imul(1812433253, previous) + i;
    }
    this.#index = STATE_SIZE;
    this.#cachedNormal = null;
    return this;
  }

  /**
   * The next raw 32-bit mt19937 output, as `std::mt19937` (and PyTorch's `at::mt19937`) gives it.
   *
   * @returns an integer in [0, 2^32)
   * @example
   * ```ts
   * import { TorchGenerator } from "./torch_generator.ts";
   * const first = new TorchGenerator(5489).nextUint32();
   * // 3499211612: the first output of std::mt19937 at its default seed 5489 (Matsumoto and Nishimura's mt19937ar)
   * if (first !== 3499211612) throw new Error(`got ${first}`);
   * ```
   */
  nextUint32(): number {
    if (this.#index >= STATE_SIZE) this.#twist();
    let y = this.#state[this.#index++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /**
   * Samples from the standard normal distribution, exactly as `torch.randn(shape, generator=g)` in float32 on the CPU.
   *
   * z ~ N(0, 1), drawn in PyTorch's order (vectorised Box-Muller from 16 elements up, scalar below)
   *
   * @param shape the dimensions of the result
   * @returns a new tensor of that shape
   * @example
   * ```ts
   * import { TorchGenerator } from "./torch_generator.ts";
   * const noise = new TorchGenerator(42).randn([2, 3]);
   * // torch.manual_seed(42); torch.randn(2, 3) is [[0.3367, 0.1288, 0.2345], [0.2303, -1.1229, -0.1863]] (PyTorch)
   * const shown = Array.from(noise.data, (v) => v.toFixed(4)).join();
   * if (noise.shape.join() !== "2,3" || shown !== "0.3367,0.1288,0.2345,0.2303,-1.1229,-0.1863") {
   *   throw new Error(`got ${shown}`);
   * }
   * ```
   */
  randn(shape: readonly number[]): Tensor {
    const data = new Float32Array(shapeSize(shape));
    this.fillRandn(data);
    return new Tensor(data, shape);
  }

  /**
   * Fill a buffer with standard normal samples, as `randn` would for a tensor of `data.length` elements.
   *
   * z ~ N(0, 1), in PyTorch's order
   *
   * @param data the buffer to overwrite
   * @returns the same buffer
   * @example
   * ```ts
   * import { TorchGenerator } from "./torch_generator.ts";
   * const buffer = new TorchGenerator(0).fillRandn(new Float32Array(64));
   * // element 3 of torch.randn(64) with seed 0 is -0.4338788092136383 in float32 (PyTorch 1.13's AVX2 kernel,
   * // test/fixtures/torch-randn-bits.json)
   * if (buffer[3] !== -0.4338788092136383) throw new Error(`got ${buffer[3]}`);
   * ```
   */
  fillRandn(data: Float32Array): Float32Array {
    const size = data.length;
    if (size >= 16) {
      // PyTorch first draws one uniform per element, transforms every full block of 16, and, when size is not a
      // multiple of 16, draws 16 fresh uniforms for the last 16 positions and transforms them again. Drawing each
      // block's uniforms just before transforming it consumes the stream in the same order.
      const tail = size % 16;
      this.#fillNormalBlocks(data, 0, size - tail);
      if (tail !== 0) {
        this.#skip(tail); // the tail's first uniforms, overwritten below
        this.#fillNormalBlocks(data, size - 16, size);
      }
    } else {
      for (let i = 0; i < size; i++) data[i] = this.#nextDoubleNormal();
    }
    return data;
  }

  /**
   * For each block of 16 in [start, end): the next 16 uniforms u_k = (r_k & 0xFFFFFF) / 2^24 of the stream (from
   * `#uniforms`, made at the last twist), then Box-Muller on them (`boxMuller16`). Long runs go to the WebAssembly
   * SIMD kernel (lib/core/_randn_wasm.ts), which performs the same float32 operations and so gives the same bits.
   */
  #fillNormalBlocks(data: Float32Array, start: number, end: number): void {
    const kernel = randnKernel(end - start);
    if (kernel !== null) {
      this.#index = kernel.fillNormalBlocks(this.#state, this.#uniforms, this.#index, data, start, end);
      return;
    }
    let index = this.#index;
    for (let offset = start; offset + 16 <= end; offset += 16) {
      if (index + 16 <= STATE_SIZE) {
        boxMuller16(this.#uniforms, index, data, offset);
        index += 16;
      } else {
        const block = this.#block;
        for (let k = 0; k < 16; k++) {
          if (index >= STATE_SIZE) {
            this.#twist();
            index = 0;
          }
          block[k] = this.#uniforms[index++];
        }
        boxMuller16(block, 0, data, offset);
      }
    }
    this.#index = index;
  }

  /** Advance the stream by `count` outputs without using them. */
  #skip(count: number): void {
    for (let k = 0; k < count; k++) {
      if (this.#index >= STATE_SIZE) this.#twist();
      this.#index++;
    }
  }

  #nextDoubleUniform(): number {
    const high = this.nextUint32();
    const low = this.nextUint32();
    return ((high & 0x1fffff) * TWO_POW_32 + low) * TWO_POW_53_INV;
  }

  #nextDoubleNormal(): number {
    if (this.#cachedNormal !== null) {
      const cached = this.#cachedNormal;
      this.#cachedNormal = null;
      return cached;
    }
    const u1 = this.#nextDoubleUniform();
    const u2 = this.#nextDoubleUniform();
    const rho = Math.sqrt(-2 * Math.log(1 - u2));
    const theta = 2 * Math.PI * u1;
    this.#cachedNormal = rho * Math.sin(theta);
    return rho * Math.cos(theta);
  }

  /**
   * The mt19937 state transition: all 624 words at once, in three loops so that no index wraps inside a loop; then
   * the uniforms of the new words.
   */
  #twist(): void {
    const state = this.#state;
    const wrap = STATE_SIZE - SHIFT_SIZE; // 227
    let i = 0;
    for (; i < wrap; i++) {
      const y = (state[i] & UPPER_MASK) | (state[i + 1] & LOWER_MASK);
      state[i] = state[i + SHIFT_SIZE] ^ (y >>> 1) ^ (-(y & 1) & MATRIX_A);
    }
    for (; i < STATE_SIZE - 1; i++) {
      const y = (state[i] & UPPER_MASK) | (state[i + 1] & LOWER_MASK);
      state[i] = state[i - wrap] ^ (y >>> 1) ^ (-(y & 1) & MATRIX_A);
    }
    const y = (state[STATE_SIZE - 1] & UPPER_MASK) | (state[0] & LOWER_MASK);
    state[STATE_SIZE - 1] = state[SHIFT_SIZE - 1] ^ (y >>> 1) ^ (-(y & 1) & MATRIX_A);
    // temper every new word once, in one tight loop, and keep its float32 uniform for randn
    const uniforms = this.#uniforms;
    for (let k = 0; k < STATE_SIZE; k++) {
      let word = state[k];
      word ^= word >>> 11;
      word ^= (word << 7) & 0x9d2c5680;
      word ^= (word << 15) & 0xefc60000;
      word ^= word >>> 18;
      uniforms[k] = (word & 0xffffff) * TWO_POW_24_INV;
    }
    this.#index = 0;
  }
}

/**
 * Box-Muller on the 16 uniforms u[from..from + 16), written to data[offset..offset + 16), as PyTorch's
 * `normal_fill_16_AVX2` computes it in float32: for j < 8, u1 = 1 - u[from + j], rho = sqrt(-2 ln u1),
 * theta = float32(2 pi) u[from + j + 8], data[offset + j] = rho cos theta, data[offset + j + 8] = rho sin theta.
 *
 * Each operation is rounded to float32 where PyTorch rounds it: 1 - u and 2 pi u by `Math.fround`; -2 ln u1 is exact
 * and the float64 square root rounds to the float32 one; the float64 products rho cos theta and rho sin theta round to
 * float32 when stored. PyTorch stores fmadd(n, std = 1, mean = 0), which equals n except that -0 becomes +0: the
 * `+ 0` below.
 */
function boxMuller16(u: Float32Array, from: number, data: Float32Array, offset: number): void {
  const sinCos = SIN_COS;
  for (let j = 0; j < 8; j++) {
    const rho = Math.fround(Math.sqrt(-2 * logAvx2(Math.fround(1 - u[from + j]))));
    sinCosAvx2(Math.fround(TWO_PI_FLOAT32 * u[from + j + 8]), sinCos);
    data[offset + j] = rho * sinCos[1] + 0;
    data[offset + j + 8] = rho * sinCos[0] + 0;
  }
}

/** [sin theta, cos theta] of the current element in `boxMuller16`. */
const SIN_COS = new Float64Array(2);
