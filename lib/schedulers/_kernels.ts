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
 * Arithmetic is float64 per element with predX0 rounded to float32 (as diffusers stores it) and x_{t-1} rounded once,
 * when it is stored.
 *
 * @module
 */
import type { PredictionType } from "./_scheduler_config.ts";

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

/**
 * Branch-free clamp slots [lower, value, upper]: a clamp writes the value into slot 1 and reads slot
 * 1 + (value > upper) - (value < lower), so random data costs no mispredicted branches (a plain `if` clamp is about
 * ten times slower on N(0, 1) samples). NaN reads slot 1 and stays NaN.
 */
function clampSlots(range: number): Float64Array {
  return new Float64Array([-range, 0, range]);
}

/**
 * One fused pass of a first-order step: predX0 (clamped, float32) and x_{t-1} from the record.
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
  const size = x.length;
  const prev = new Float32Array(size);
  const predX0 = new Float32Array(size);
  const { x0FromSample, x0FromOutput, clipRange, x0Coeff, sampleCoeff, outputCoeff, noiseCoeff } = k;
  const lower = -clipRange;
  const slots = clampSlots(clipRange);
  const fround = Math.fround;
  let check = 0;
  for (let i = 0; i < size; i++) {
    const xi = x[i];
    const mi = m[i];
    const unclipped = x0FromSample * xi + x0FromOutput * mi;
    slots[1] = unclipped;
    const x0 = fround(
      slots[1 + ((unclipped > clipRange) as unknown as number | 0) - ((unclipped < lower) as unknown as number | 0)],
    );
    let out = x0Coeff * x0 + sampleCoeff * xi + outputCoeff * mi;
    if (noise !== null) out += noiseCoeff * noise[i];
    predX0[i] = x0;
    prev[i] = out;
    check += (mi - mi) + (out - out);
  }
  return { prev, predX0, check };
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
  const { x0FromSample, x0FromOutput } = k;
  for (let i = 0; i < x.length; i++) predX0[i] = x0FromSample * x[i] + x0FromOutput * m[i];
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
  const { x0Coeff, sampleCoeff, outputCoeff, noiseCoeff } = k;
  let check = 0;
  for (let i = 0; i < x.length; i++) {
    let out = x0Coeff * predX0[i] + sampleCoeff * x[i] + outputCoeff * m[i];
    if (noise !== null) out += noiseCoeff * noise[i];
    prev[i] = out;
    check += (m[i] - m[i]) + (out - out);
  }
  return { prev, predX0, check };
}
