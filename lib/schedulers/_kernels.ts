/**
 * The element-wise layer under the schedulers: every first-order step here (DDIM, DDPM, DDIM inversion) is, element by
 * element, an affine map of the sample x, the model output m and the noise z, with one clamp on the predicted x0. A
 * scheduler computes the coefficients once per timestep (its tables), fills a `StepCoefficients` record, and one fused
 * pass reads x, m and z once and writes predX0 and x_{t-1}.
 *
 * | paper (DDIM notation)             | code                           | meaning                                        |
 * |-----------------------------------|--------------------------------|------------------------------------------------|
 * | f_theta(x_t), eq. (9)             | `predX0`                       | x0FromSample x + x0FromOutput m, then clamped  |
 * | eps_theta(x_t)                    | `epsFromSample`, `...Output`   | eps as a linear form of (x, m)                 |
 * | x_{t-1}                           | `prev`                         | x0Coeff predX0 + sampleCoeff x + outputCoeff m |
 * |                                   |                                |   + noiseCoeff z                               |
 * | z ~ N(0, I)                       | `noise`                        | the step's fresh noise, or null                |
 *
 * The fused pass computes in float32 with every operation rounded, as PyTorch computes diffusers' float32 step; the
 * coefficients themselves are computed once per timestep (float32 or float64, as diffusers does).
 *
 * @module
 */
import type { PredictionType } from "./_scheduler_config.ts";
import { KERNELS_WASM_BASE64 } from "./_kernels_wasm.ts";

/** predX0 and eps as linear forms of the sample x and the model output m at one timestep. */
export interface PredictionForm {
  /** predX0 = x0FromSample x + x0FromOutput m (DDIM eq. (9) for an eps model). */
  x0FromSample: number;
  x0FromOutput: number;
  /** eps = epsFromSample x + epsFromOutput m. */
  epsFromSample: number;
  epsFromOutput: number;
}

/**
 * x0 and eps from the model output for each `prediction_type`, from x_t = sqrt(alphaBar) x0 + sqrt(1 - alphaBar) eps
 * (DDIM eq. (4)) and, for v, v = sqrt(alphaBar) eps - sqrt(1 - alphaBar) x0 (Salimans and Ho 2022, arXiv 2202.00512).
 *
 * epsilon: x0 = (x - sqrt(1 - alphaBar) m) / sqrt(alphaBar), eps = m;
 * sample: x0 = m, eps = (x - sqrt(alphaBar) m) / sqrt(1 - alphaBar);
 * v: x0 = sqrt(alphaBar) x - sqrt(1 - alphaBar) m, eps = sqrt(alphaBar) m + sqrt(1 - alphaBar) x
 *
 * @param predictionType what the model predicts
 * @param sqrtAlphaBar sqrt(alphaBar_t)
 * @param sqrtBetaBar sqrt(1 - alphaBar_t)
 * @returns the four coefficients
 */
export function predictionForm(
  predictionType: PredictionType | string,
  sqrtAlphaBar: number,
  sqrtBetaBar: number,
): PredictionForm {
  switch (predictionType) {
    case "epsilon":
      return {
        x0FromSample: 1 / sqrtAlphaBar,
        x0FromOutput: -sqrtBetaBar / sqrtAlphaBar,
        epsFromSample: 0,
        epsFromOutput: 1,
      };
    case "sample":
      return {
        x0FromSample: 0,
        x0FromOutput: 1,
        epsFromSample: 1 / sqrtBetaBar,
        epsFromOutput: -sqrtAlphaBar / sqrtBetaBar,
      };
    default: // v_prediction
      return {
        x0FromSample: sqrtAlphaBar,
        x0FromOutput: -sqrtBetaBar,
        epsFromSample: sqrtBetaBar,
        epsFromOutput: sqrtAlphaBar,
      };
  }
}

/** The per-step record a fused step reads: how predX0 is formed and clamped, and how x_{t-1} mixes its inputs. */
export interface StepCoefficients {
  /** predX0 = x0FromSample x + x0FromOutput m. */
  x0FromSample: number;
  x0FromOutput: number;
  /** predX0 is clamped to [-clipRange, clipRange] (Infinity: no clipping). */
  clipRange: number;
  /** x_{t-1} = x0Coeff predX0 + sampleCoeff x + outputCoeff m + noiseCoeff z. */
  x0Coeff: number;
  sampleCoeff: number;
  outputCoeff: number;
  noiseCoeff: number;
}

/** What a fused step writes: x_{t-1}, predX0, and NaN in `check` when an input or output element was not finite. */
export interface KernelResult {
  prev: Float32Array;
  predX0: Float32Array;
  /** 0, or NaN when m or x_{t-1} had a non-finite element. */
  check: number;
}

/** The record with every coefficient rounded to float32, as the kernels (and PyTorch's 0-d tensors) use them. */
function float32Record<K extends Partial<StepCoefficients>>(k: K): K {
  const rounded = { ...k };
  for (const key of Object.keys(rounded) as (keyof K)[]) {
    rounded[key] = Math.fround(rounded[key] as number) as K[keyof K];
  }
  return rounded;
}

/**
 * Branch-free clamp slots [lower, value, upper]: a clamp writes the value into slot 1 and reads slot
 * 1 + (value > upper) - (value < lower), so random data costs no mispredicted branches (a plain `if` clamp is about
 * ten times slower on N(0, 1) samples). NaN reads slot 1 and stays NaN.
 */
function clampSlots(range: number): Float64Array {
  return new Float64Array([-range, 0, range]);
}

/**
 * One fused pass of a first-order step: predX0 (clamped) and x_{t-1} from the record, in float32. Runs in WebAssembly
 * SIMD (`_kernels.wat`, four lanes at a time) when the engine has it and the size is a multiple of 4, else in plain
 * JavaScript; the two do the same float32 operations in the same order and give the same bits.
 *
 * predX0 = clamp(x0FromSample x + x0FromOutput m); x_{t-1} = x0Coeff predX0 + sampleCoeff x + outputCoeff m + noiseCoeff z
 *
 * @param k the step's coefficients
 * @param m the model output
 * @param x the sample x_t
 * @param noise z, or null for a step without noise
 * @returns x_{t-1}, predX0 and the finiteness check
 */
export function fusedStep(
  k: StepCoefficients,
  m: Float32Array,
  x: Float32Array,
  noise: Float32Array | null,
): KernelResult {
  return fusedStepSimd(k, m, x, noise) ?? fusedStepScalar(k, m, x, noise);
}

/**
 * `fusedStep` in plain JavaScript, one element at a time, each operation rounded to float32.
 *
 * @param k the step's coefficients
 * @param m the model output
 * @param x the sample x_t
 * @param noise z, or null
 * @returns x_{t-1}, predX0 and the finiteness check
 */
export function fusedStepScalar(
  k: StepCoefficients,
  m: Float32Array,
  x: Float32Array,
  noise: Float32Array | null,
): KernelResult {
  const size = x.length;
  const prev = new Float32Array(size);
  const predX0 = new Float32Array(size);
  const fround = Math.fround;
  const { x0FromSample, x0FromOutput, clipRange: upper, x0Coeff, sampleCoeff, outputCoeff, noiseCoeff } = float32Record(
    k,
  );
  const lower = -upper;
  const slots = clampSlots(upper);
  let check = 0;
  for (let i = 0; i < size; i++) {
    const xi = x[i];
    const mi = m[i];
    // every operation rounded to float32, as PyTorch (and the SIMD kernel) computes it
    const unclipped = fround(fround(x0FromSample * xi) + fround(x0FromOutput * mi));
    slots[1] = unclipped;
    const x0 =
      slots[1 + ((unclipped > upper) as unknown as number | 0) - ((unclipped < lower) as unknown as number | 0)];
    let out = fround(fround(fround(x0Coeff * x0) + fround(sampleCoeff * xi)) + fround(outputCoeff * mi));
    if (noise !== null) out = fround(out + fround(noiseCoeff * noise[i]));
    predX0[i] = x0;
    prev[i] = out;
    check += (mi - mi) + (out - out);
  }
  return { prev, predX0, check };
}

/** The instantiated SIMD kernel, null when the engine lacks WebAssembly SIMD, undefined before the first call. */
let simd: { memory: WebAssembly.Memory; fused: SimdFused } | null | undefined;

type SimdFused = (
  m: number,
  x: number,
  z: number,
  n: number,
  x0FromSample: number,
  x0FromOutput: number,
  lower: number,
  upper: number,
  x0Coeff: number,
  sampleCoeff: number,
  outputCoeff: number,
  noiseCoeff: number,
  withNoise: number,
) => number;

function loadSimd(): typeof simd {
  try {
    const bytes = Uint8Array.from(atob(KERNELS_WASM_BASE64), (c) => c.charCodeAt(0));
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), {});
    const exports = instance.exports as { memory: WebAssembly.Memory; fused: SimdFused };
    return { memory: exports.memory, fused: exports.fused };
  } catch {
    return null; // no WebAssembly, or no SIMD: the scalar kernel serves
  }
}

/**
 * `fusedStep` in WebAssembly SIMD: copies m, x (and z) into the module's memory, runs the .wat kernel, which writes
 * predX0 over m and x_{t-1} over x (each vector is read before it is written, so the step needs no further memory
 * and stays in cache), and copies both out into fresh arrays.
 *
 * @param k the step's coefficients
 * @param m the model output
 * @param x the sample x_t
 * @param noise z, or null
 * @returns x_{t-1}, predX0 and the finiteness check, or null when SIMD is missing or the size is not a multiple of 4
 */
export function fusedStepSimd(
  k: StepCoefficients,
  m: Float32Array,
  x: Float32Array,
  noise: Float32Array | null,
): KernelResult | null {
  const size = x.length;
  if (size % 4 !== 0 || m.length !== size || (noise !== null && noise.length !== size)) return null;
  if (simd === undefined) simd = loadSimd();
  const kernel = simd;
  if (kernel === null || kernel === undefined) return null;
  const bytes = 4 * size;
  const needed = (noise === null ? 2 : 3) * bytes - kernel.memory.buffer.byteLength;
  if (needed > 0) kernel.memory.grow(Math.ceil(needed / 65536));
  const heap = new Float32Array(kernel.memory.buffer);
  heap.set(m, 0);
  heap.set(x, size);
  if (noise !== null) heap.set(noise, 2 * size);
  const check = kernel.fused(
    0,
    bytes,
    2 * bytes,
    size,
    k.x0FromSample,
    k.x0FromOutput,
    -k.clipRange,
    k.clipRange,
    k.x0Coeff,
    k.sampleCoeff,
    k.outputCoeff,
    k.noiseCoeff,
    noise === null ? 0 : 1,
  );
  return { predX0: heap.slice(0, size), prev: heap.slice(size, 2 * size), check };
}

/**
 * The unclamped predX0 alone, for a step that thresholds it before going on (`stepFromPredX0`).
 *
 * predX0 = x0FromSample x + x0FromOutput m
 *
 * @param k the step's coefficients (only the two predX0 weights are read)
 * @param m the model output
 * @param x the sample x_t
 * @returns predX0, float32
 */
export function linearPredX0(
  k: Pick<StepCoefficients, "x0FromSample" | "x0FromOutput">,
  m: Float32Array,
  x: Float32Array,
): Float32Array {
  const predX0 = new Float32Array(x.length);
  const fround = Math.fround;
  const { x0FromSample, x0FromOutput } = float32Record(k);
  for (let i = 0; i < x.length; i++) predX0[i] = fround(x0FromSample * x[i]) + fround(x0FromOutput * m[i]);
  return predX0;
}

/**
 * The rest of a step once predX0 is known (after dynamic thresholding).
 *
 * x_{t-1} = x0Coeff predX0 + sampleCoeff x + outputCoeff m + noiseCoeff z
 *
 * @param k the step's coefficients (the predX0 weights and clipRange are not read)
 * @param m the model output
 * @param x the sample x_t
 * @param noise z, or null
 * @param predX0 the (thresholded) predicted x0
 * @returns x_{t-1}, the same predX0 and the finiteness check
 */
export function stepFromPredX0(
  k: StepCoefficients,
  m: Float32Array,
  x: Float32Array,
  noise: Float32Array | null,
  predX0: Float32Array,
): KernelResult {
  const prev = new Float32Array(x.length);
  const fround = Math.fround;
  const { x0Coeff, sampleCoeff, outputCoeff, noiseCoeff } = float32Record(k);
  let check = 0;
  for (let i = 0; i < x.length; i++) {
    const mi = m[i];
    // the same float32 operations as the fused kernels, after the thresholded predX0
    let out = fround(fround(fround(x0Coeff * predX0[i]) + fround(sampleCoeff * x[i])) + fround(outputCoeff * mi));
    if (noise !== null) out = fround(out + fround(noiseCoeff * noise[i]));
    prev[i] = out;
    check += (mi - mi) + (out - out);
  }
  return { prev, predX0, check };
}
