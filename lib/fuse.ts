/**
 * Image fusion through the latent space: invert two images to their DDIM latents, slerp between them, and decode
 * with eta = 0. This combines the DDIM paper's inversion (section 5.4) and interpolation (section 5.3); because
 * the DDIM decode is deterministic and the latent space is shared, a point between two encodings decodes to an
 * image that mixes them.
 *
 * | paper                                      | code        | meaning                                 |
 * |--------------------------------------------|-------------|-----------------------------------------|
 * | x_0^(a), x_0^(b)                           | `images`    | the two images, [-1, 1]                 |
 * | x_T^(a), x_T^(b)                           | `latents`   | their DDIM inversions                   |
 * | x_T^(alpha) = slerp(x_T^(a), x_T^(b), alpha)| `slerp`    | the mixed latent                        |
 * | DDIM_{eta=0}(x_T^(alpha))                  | `fused`     | the fused image                         |
 *
 * @module
 */
import { interpolateLatents } from "./interpolation.ts";
import { invert, type InvertiblePipeline } from "./inversion.ts";
import type { ProgressReporter } from "./progress.ts";
import { Tensor } from "./tensor.ts";

/** Options of `fuse`. */
export interface FuseOptions {
  /** The mixing position (0 gives the first image back, 1 the second), or several for a row (default 0.5). */
  alpha?: number | readonly number[];
  /** Steps of inversion and of decoding (default 50). */
  numInferenceSteps?: number;
  /** `"slerp"` (default, as the paper) or `"lerp"`. */
  method?: "slerp" | "lerp";
  /** Draw progress bars (true) or not (false, the default), or report to your own reporter. */
  progress?: boolean | ProgressReporter;
}

/** What `fuse` resolves to. */
export interface FuseResult {
  /** The decoded fusions, one batch item per alpha, unclamped in [-1, 1]'s range. */
  fused: Tensor;
  /** The alphas used, in the order of `fused`. */
  alphas: number[];
  /** The two images' latents x_T, each [1, C, H, W]. */
  latents: [Tensor, Tensor];
}

/**
 * Fuse two images: invert both with DDIM, slerp their latents at `alpha`, decode with eta = 0.
 *
 * fused = DDIM_{eta=0}(slerp(invert(x_0^(a)), invert(x_0^(b)), alpha))
 *
 * Both images are checked before any model call: they must be single images of one shape that the model takes.
 *
 * @param pipeline a DDIM pipeline
 * @param images the two images, each [1, C, H, W] in [-1, 1]
 * @param options `alpha` (default 0.5), `numInferenceSteps` (default 50), `method`, `progress`
 * @returns the fused images, the alphas and both latents
 * @throws RangeError when the images differ in shape, are not single images, or alpha is outside [0, 1]
 * @example
 * ```ts
 * import { DDIMPipeline, fuse, Tensor } from "../mod.ts";
 * const pipe = await DDIMPipeline.fromPretrained("builtin:shapes32");
 * const a = Tensor.zeros([1, 3, 32, 32]), b = Tensor.zeros([1, 3, 32, 32]);
 * const { fused } = await fuse(pipe, [a, b], { alpha: 0.5, numInferenceSteps: 20 });
 * ```
 */
export async function fuse(
  pipeline: InvertiblePipeline,
  images: readonly [Tensor, Tensor],
  options: FuseOptions = {},
): Promise<FuseResult> {
  if (!Array.isArray(images) || images.length !== 2 || !images.every((x) => x instanceof Tensor)) {
    throw new RangeError(`fuse takes a pair of image tensors [a, b], got ${images?.length ?? "none"}`);
  }
  const [a, b] = images;
  if (!a.sameShape(b)) {
    throw new RangeError(
      `Cannot fuse images of different shapes: [${a.shape.join(", ")}] and [${b.shape.join(", ")}]`,
    );
  }
  if (a.shape.length !== 4 || a.shape[0] !== 1) {
    throw new RangeError(`fuse takes single images of shape [1, C, H, W], got [${a.shape.join(", ")}]`);
  }
  const alphas = typeof options.alpha === "object" ? [...options.alpha] : [options.alpha ?? 0.5];
  for (const alpha of alphas) {
    if (typeof alpha !== "number" || !(alpha >= 0 && alpha <= 1)) {
      throw new RangeError(`fuse takes alpha in [0, 1], got ${alpha}`);
    }
  }
  if (alphas.length === 0) throw new RangeError("fuse needs at least one alpha, got none");
  const numInferenceSteps = options.numInferenceSteps ?? 50;
  // 1. invert both images in one batch: x_T^(a), x_T^(b)
  const pair = new Tensor(new Float32Array([...a.data, ...b.data]), [2, ...a.shape.slice(1)]);
  const { latents } = await invert(pipeline, pair, { numInferenceSteps, progress: options.progress });
  const latentA = new Tensor(latents.data.slice(0, a.size), a.shape);
  const latentB = new Tensor(latents.data.slice(a.size), a.shape);
  // 2. slerp between the encodings, 3. decode each mixed latent with eta = 0
  const xT = interpolateLatents(latentA, latentB, { alphas, method: options.method });
  const { samples } = await pipeline.sample({
    xT,
    numInferenceSteps,
    eta: 0,
    clipSample: false,
    progress: options.progress,
  });
  return { fused: samples, alphas, latents: [latentA, latentB] };
}
