/**
 * Interpolation between latents, as the DDIM paper does it (Song et al. 2020, section 5.3 and appendix D.5):
 * spherical linear interpolation of two x_T, then a deterministic (eta = 0) DDIM decode of each point.
 *
 * | paper                                                        | code         | meaning                          |
 * |--------------------------------------------------------------|--------------|----------------------------------|
 * | x_T^(0), x_T^(1)                                              | `z0`, `z1`   | the two end latents              |
 * | alpha                                                        | `alpha`      | the position, 0 at z0, 1 at z1   |
 * | theta = arccos(z0 . z1 / (norm(z0) norm(z1)))                 | `theta`      | the angle between the latents    |
 * | x_T^(alpha) = sin((1-alpha) theta)/sin(theta) z0 + sin(alpha theta)/sin(theta) z1 | `slerp` | the point on the arc |
 *
 * Unlike the paper's code, the cosine is clamped to [-1, 1] before the arccos (rounding can push it past 1), and
 * when theta is near 0 (sin theta near 0, where the formula divides 0 by 0) the plain linear interpolation is used,
 * which is what slerp tends to there. Opposite latents have no unique arc and are refused.
 *
 * @module
 */
import { assertFinite, assertSameShape, Tensor } from "../core/tensor.ts";

/** Options of `slerp`. */
export interface SlerpOptions {
  /** Above this cosine the latents count as parallel and `lerp` is used instead (default 0.9995). */
  dotThreshold?: number;
}

/**
 * Spherical linear interpolation between two latents, per batch item (along the first axis when rank >= 2).
 *
 * slerp(z0, z1, alpha) = sin((1 - alpha) theta) / sin(theta) z0 + sin(alpha theta) / sin(theta) z1,
 * theta = arccos(clamp(z0 . z1 / (norm(z0) norm(z1)), -1, 1)); lerp when cos(theta) > dotThreshold
 *
 * @param z0 the latent at alpha = 0
 * @param z1 the latent at alpha = 1, of the same shape
 * @param alpha the position in [0, 1]
 * @param options `dotThreshold` for the lerp fallback
 * @returns a new tensor of the same shape
 * @throws RangeError when the shapes differ, alpha is outside [0, 1], or the latents point in opposite directions
 * @example
 * ```ts
 * import { slerp, Tensor } from "../../mod.ts";
 * const mid = slerp(Tensor.from([1, 0]), Tensor.from([0, 1]), 0.5);
 * // halfway along the quarter circle: sin(pi / 4) / sin(pi / 2) = 0.7071... on both axes
 * if (Math.abs(mid.data[0] - Math.SQRT1_2) > 1e-6 || Math.abs(mid.data[1] - Math.SQRT1_2) > 1e-6) throw new Error(`${mid.data}`);
 * ```
 */
export function slerp(z0: Tensor, z1: Tensor, alpha: number, options: SlerpOptions = {}): Tensor {
  checkPair(z0, z1, alpha, "slerp");
  const dotThreshold = options.dotThreshold ?? 0.9995;
  if (!(dotThreshold > -1 && dotThreshold <= 1)) {
    throw new RangeError(`dotThreshold must be in (-1, 1], got ${dotThreshold}`);
  }
  const out = new Float32Array(z0.size);
  const [items, length] = z0.shape.length >= 2 ? [z0.shape[0], z0.size / z0.shape[0]] : [1, z0.size];
  for (let item = 0; item < items; item++) {
    const start = item * length;
    let dot = 0;
    let norm0 = 0;
    let norm1 = 0;
    for (let k = start; k < start + length; k++) {
      dot += z0.data[k] * z1.data[k];
      norm0 += z0.data[k] * z0.data[k];
      norm1 += z1.data[k] * z1.data[k];
    }
    // 1. cos(theta) = z0 . z1 / (norm(z0) norm(z1)), clamped so rounding cannot leave arccos's domain
    const cosTheta = norm0 > 0 && norm1 > 0 ? Math.min(1, Math.max(-1, dot / Math.sqrt(norm0 * norm1))) : 1;
    let weight0 = 1 - alpha;
    let weight1 = alpha;
    if (cosTheta <= -dotThreshold) {
      throw new RangeError(
        `slerp is undefined for opposite latents: batch item ${item} has cos(theta) = ${cosTheta}, so no unique arc ` +
          `joins them`,
      );
    }
    // 2. theta = arccos(cos(theta)), and the arc's weights sin((1 - alpha) theta) / sin(theta), sin(alpha theta) / sin(theta)
    const theta = Math.acos(cosTheta);
    const sinTheta = Math.sin(theta);
    if (cosTheta <= dotThreshold && sinTheta > 1e-7) {
      weight0 = Math.sin((1 - alpha) * theta) / sinTheta;
      weight1 = Math.sin(alpha * theta) / sinTheta;
    } // 3. else theta is near 0, where slerp tends to lerp: keep the linear weights
    for (let k = start; k < start + length; k++) out[k] = weight0 * z0.data[k] + weight1 * z1.data[k];
  }
  return new Tensor(out, z0.shape);
}

/**
 * Linear interpolation between two tensors.
 *
 * lerp(z0, z1, alpha) = (1 - alpha) z0 + alpha z1
 *
 * @param z0 the tensor at alpha = 0
 * @param z1 the tensor at alpha = 1, of the same shape
 * @param alpha the position in [0, 1]
 * @returns a new tensor of the same shape
 * @throws RangeError when the shapes differ or alpha is outside [0, 1]
 * @example
 * ```ts
 * import { lerp, Tensor } from "../../mod.ts";
 * const mid = lerp(Tensor.from([0, 2]), Tensor.from([2, 4]), 0.5);
 * if (mid.data.join() !== "1,3") throw new Error(`got ${mid.data}`);
 * ```
 */
export function lerp(z0: Tensor, z1: Tensor, alpha: number): Tensor {
  checkPair(z0, z1, alpha, "lerp");
  const out = new Float32Array(z0.size);
  for (let k = 0; k < out.length; k++) out[k] = (1 - alpha) * z0.data[k] + alpha * z1.data[k];
  return new Tensor(out, z0.shape);
}

/**
 * Evenly spaced positions from 0 to 1, both ends included.
 *
 * alpha_k = k / (count - 1), k = 0..count-1
 *
 * @param count how many positions (at least 2)
 * @returns the positions
 * @throws RangeError when count is not an integer of at least 2
 * @example
 * ```ts
 * import { interpolationAlphas } from "../../mod.ts";
 * const alphas = interpolationAlphas(5);
 * if (alphas.join() !== "0,0.25,0.5,0.75,1") throw new Error(`got ${alphas}`);
 * ```
 */
export function interpolationAlphas(count: number): number[] {
  if (!Number.isInteger(count) || count < 2) {
    throw new RangeError(`An interpolation row needs an integer count of at least 2, got ${count}`);
  }
  return Array.from({ length: count }, (_, k) => k / (count - 1));
}

/**
 * The latents of an interpolation row stacked as one batch: slerp (or lerp) of two single latents at each alpha.
 *
 * rows_k = slerp(z0, z1, alpha_k)
 *
 * @param z0 the first latent, shape [1, ...]
 * @param z1 the second latent, same shape
 * @param options `alphas` (default 8 evenly spaced), `method` ("slerp", the default, or "lerp"), `dotThreshold`
 * @returns a tensor of shape [alphas.length, ...]
 * @throws RangeError when the latents are not single items of one shape
 * @example
 * ```ts
 * import { interpolateLatents, Tensor } from "../../mod.ts";
 * const row = interpolateLatents(Tensor.from([1, 0], [1, 2]), Tensor.from([0, 1], [1, 2]), { alphas: [0, 0.5, 1] });
 * // alpha = 0 and alpha = 1 give back the ends
 * if (row.shape.join() !== "3,2" || row.data[0] !== 1 || row.data[5] !== 1) throw new Error(`got ${row.data}`);
 * ```
 */
export function interpolateLatents(
  z0: Tensor,
  z1: Tensor,
  options: { alphas?: readonly number[]; method?: "slerp" | "lerp"; dotThreshold?: number } = {},
): Tensor {
  assertSameShape(z0, z1, ["z0", "z1"]);
  if (z0.shape.length < 2 || z0.shape[0] !== 1) {
    throw new RangeError(`An interpolation row takes single latents of shape [1, ...], got [${z0.shape.join(", ")}]`);
  }
  const method = options.method ?? "slerp";
  if (method !== "slerp" && method !== "lerp") throw new RangeError(`Unknown interpolation method "${method}"`);
  const alphas = options.alphas ?? interpolationAlphas(8);
  if (alphas.length === 0) throw new RangeError("An interpolation row needs at least one alpha, got none");
  const out = new Float32Array(alphas.length * z0.size);
  for (const [k, alpha] of alphas.entries()) {
    const point = method === "slerp" ? slerp(z0, z1, alpha, options) : lerp(z0, z1, alpha);
    out.set(point.data, k * z0.size);
  }
  return new Tensor(out, [alphas.length, ...z0.shape.slice(1)]);
}

/** What `interpolationRow` needs from a pipeline: a deterministic decode of given latents. */
export interface LatentDecoder {
  sample(options: {
    xT: Tensor;
    numInferenceSteps?: number;
    eta?: number;
    progress?: boolean | import("../io/progress.ts").ProgressReporter;
  }): Promise<{ samples: Tensor }>;
}

/** The result of `interpolationRow`. */
export interface InterpolationRow {
  /** The positions alpha_k. */
  alphas: number[];
  /** The interpolated latents x_T^(alpha_k), one batch item each. */
  latents: Tensor;
  /** Their DDIM (eta = 0) decodes, one batch item each. */
  samples: Tensor;
}

/**
 * Decode an interpolation row: slerp two latents at evenly spaced alphas and run DDIM with eta = 0 on each.
 *
 * x_0^(alpha) = DDIM_{eta=0}(slerp(x_T^(0), x_T^(1), alpha))
 *
 * @param pipeline a DDIM pipeline (anything whose `sample` takes `xT` and `eta`)
 * @param latents the two end latents, each of shape [1, C, H, W]
 * @param options `count` (default 8) or `alphas`, `method`, `numInferenceSteps` (default 50), `progress`
 * @returns the alphas, the latents and the decoded samples
 * @throws RangeError for mismatched latents or a bad count
 * @example
 * ```ts
 * import { DDIMPipeline, interpolationRow, TorchGenerator } from "../../mod.ts";
 * const pipe = await DDIMPipeline.fromPretrained("builtin:shapes32");
 * const g = new TorchGenerator(0);
 * const ends: [ReturnType<typeof g.randn>, ReturnType<typeof g.randn>] = [g.randn([1, 3, 32, 32]), g.randn([1, 3, 32, 32])];
 * const row = await interpolationRow(pipe, ends, { count: 3, numInferenceSteps: 10 });
 * if (row.alphas.join() !== "0,0.5,1" || row.samples.shape.join() !== "3,3,32,32") throw new Error("wrong row");
 * ```
 */
export async function interpolationRow(
  pipeline: LatentDecoder,
  latents: readonly [Tensor, Tensor],
  options: {
    count?: number;
    alphas?: readonly number[];
    method?: "slerp" | "lerp";
    numInferenceSteps?: number;
    progress?: boolean | import("../io/progress.ts").ProgressReporter;
  } = {},
): Promise<InterpolationRow> {
  if (!Array.isArray(latents) || latents.length !== 2) {
    throw new RangeError(`interpolationRow takes a pair of latents [z0, z1], got ${latents?.length} of them`);
  }
  const alphas = options.alphas ? [...options.alphas] : interpolationAlphas(options.count ?? 8);
  const xT = interpolateLatents(latents[0], latents[1], { alphas, method: options.method });
  const { samples } = await pipeline.sample({
    xT,
    eta: 0,
    numInferenceSteps: options.numInferenceSteps ?? 50,
    progress: options.progress,
  });
  return { alphas, latents: xT, samples };
}

function checkPair(z0: Tensor, z1: Tensor, alpha: number, name: string): void {
  if (!(z0 instanceof Tensor) || !(z1 instanceof Tensor)) throw new TypeError(`${name} takes two Tensors`);
  assertSameShape(z0, z1, ["z0", "z1"]);
  if (typeof alpha !== "number" || !(alpha >= 0 && alpha <= 1)) {
    throw new RangeError(`${name} takes alpha in [0, 1], got ${alpha}`);
  }
  // a NaN or infinity would otherwise spread through cos(theta) into every element of the result
  assertFinite(z0, `${name}'s z0`);
  assertFinite(z1, `${name}'s z1`);
}
