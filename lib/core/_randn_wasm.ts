/**
 * Private: the WebAssembly SIMD kernel behind `TorchGenerator.randn` for long runs of blocks (lib/core/wasm/randn.wat),
 * and its loader. It twists, tempers and transforms exactly as the JavaScript path of lib/core/torch_generator.ts, so the
 * two give the same bits; where WebAssembly SIMD is missing, `randnKernel` returns null and that path runs instead.
 *
 * | generator (lib/core/torch_generator.ts)   | kernel memory    | meaning                                         |
 * |--------------------------------------|------------------|-------------------------------------------------|
 * | `#state`                             | state            | the 624 mt19937 words                           |
 * | `#uniforms`                          | uniforms (f32)   | u = (temper(word) & 0xFFFFFF) / 2^24 per word   |
 * | `#index`                             | `index` argument | the next stream position (624: a twist is due)  |
 *
 * The generator keeps its state; a call copies it in, runs, and copies it back when the kernel twisted.
 *
 * @module
 */
import { RANDN_WASM_BASE64 } from "./_randn_wasm_bytes.ts";

const STATE_SIZE = 624;

/**
 * Fewest elements for which the generator calls the kernel: 16, every run of blocks. Even for a single block the
 * kernel, copying the state in and out included, is faster than the JavaScript path's float32 Box-Muller
 * (bench/randn.ts measures both).
 */
export const RANDN_WASM_MIN_ELEMENTS = 16;

interface RandnExports {
  memory: WebAssembly.Memory;
  stateOffset: WebAssembly.Global;
  uniformsOffset: WebAssembly.Global;
  outputOffset: WebAssembly.Global;
  outputCapacity: WebAssembly.Global;
  fillNormalBlocks(index: number, blocks: number): number;
}

/** One instance of the randn module, shared by every generator (each call brings its generator's state). */
export class RandnKernel {
  #exports: RandnExports;
  #state: Int32Array;
  #uniforms: Float32Array;
  #output: Float32Array;

  /**
   * Instantiate the module.
   *
   * @param module the compiled randn module
   */
  constructor(module: WebAssembly.Module) {
    const exports = new WebAssembly.Instance(module).exports as unknown as RandnExports;
    this.#exports = exports;
    const buffer = exports.memory.buffer;
    this.#state = new Int32Array(buffer, exports.stateOffset.value, STATE_SIZE);
    this.#uniforms = new Float32Array(buffer, exports.uniformsOffset.value, STATE_SIZE);
    this.#output = new Float32Array(buffer, exports.outputOffset.value, exports.outputCapacity.value);
  }

  /**
   * Fill data[start..end) (a whole number of blocks of 16) with normals from a generator's stream, as its
   * JavaScript block loop would, and update its state.
   *
   * z ~ N(0, 1) by float32 Box-Muller on consecutive blocks of 16 uniforms
   *
   * @param state the generator's mt19937 words, read, and overwritten if the kernel twisted
   * @param uniforms the generator's uniforms of those words, likewise
   * @param index the generator's stream position, 0..624
   * @param data the buffer to write
   * @param start first element to write
   * @param end one past the last element to write; end - start must be a multiple of 16
   * @returns the new stream position
   */
  fillNormalBlocks(
    state: Int32Array,
    uniforms: Float32Array,
    index: number,
    data: Float32Array,
    start: number,
    end: number,
  ): number {
    const twists = index + (end - start) > STATE_SIZE;
    if (twists) this.#state.set(state);
    if (index < STATE_SIZE) this.#uniforms.set(uniforms.subarray(index), index);
    const output = this.#output;
    const fill = this.#exports.fillNormalBlocks;
    for (let offset = start; offset < end;) {
      const count = Math.min(end - offset, output.length);
      index = fill(index, count / 16);
      data.set(count === output.length ? output : output.subarray(0, count), offset);
      offset += count;
    }
    if (twists) {
      state.set(this.#state);
      uniforms.set(this.#uniforms);
    }
    return index;
  }
}

let kernel: RandnKernel | null | undefined;
let enabled = true;
let minElements = RANDN_WASM_MIN_ELEMENTS;

/**
 * The shared kernel for a run of `elements` normals, made on first use; null where the run is shorter than the
 * threshold, where WebAssembly or its SIMD extension is missing, or after `setRandnWasmEnabled(false)`.
 *
 * @param elements how many normals the caller is about to draw in blocks of 16
 * @returns the kernel, or null
 */
export function randnKernel(elements: number): RandnKernel | null {
  if (!enabled || elements < minElements) return null;
  if (kernel === undefined) {
    kernel = loadRandnKernel(Uint8Array.from(atob(RANDN_WASM_BASE64), (c) => c.charCodeAt(0)));
  }
  return kernel;
}

/**
 * Turn the kernel off (every generator then runs the JavaScript path, as where WebAssembly SIMD is missing) or back
 * on, and set the shortest run it takes; for tests and benchmarks.
 *
 * @param on whether generators may use the kernel
 * @param fewestElements the shortest run of normals handed to it (default `RANDN_WASM_MIN_ELEMENTS`)
 * @returns whether they could before
 */
export function setRandnWasmEnabled(on: boolean, fewestElements = RANDN_WASM_MIN_ELEMENTS): boolean {
  const before = enabled;
  enabled = on;
  minElements = fewestElements;
  return before;
}

/**
 * Compile and instantiate a randn module; null where WebAssembly is missing or the engine rejects the module (an
 * engine without the SIMD extension rejects every SIMD instruction).
 *
 * @param bytes the module's bytes
 * @returns the kernel, or null
 */
export function loadRandnKernel(bytes: Uint8Array<ArrayBuffer>): RandnKernel | null {
  if (typeof WebAssembly !== "object" || !WebAssembly.validate(bytes)) return null;
  try {
    return new RandnKernel(new WebAssembly.Module(bytes));
  } catch {
    return null;
  }
}
