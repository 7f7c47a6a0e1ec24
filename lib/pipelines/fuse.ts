/**
 * Image fusion through the latent space: invert two images to their latents, slerp between them, and decode.
 * This combines the DDIM paper's inversion (section 5.4) and interpolation (section 5.3); because the decode is
 * deterministic and the latent space is shared, a point between two encodings decodes to an image that mixes them.
 * The inversion is plain DDIM (default), EDICT or BDIA-DDIM (`method`); for the exact methods every array of the
 * state (EDICT's x_T and y_T, BDIA's z_S and z_{S-1}) is slerped with the same alpha, so alpha = 0 and 1 give the
 * images back up to float rounding.
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
import {
  decodeLatents,
  INVERSION_METHODS,
  type InversionMethod,
  invert,
  type InvertiblePipeline,
  type LatentState,
} from "./inversion.ts";
import type { ProgressReporter } from "../io/progress.ts";
import { Tensor } from "../core/tensor.ts";

/** Options of `fuse`. */
export interface FuseOptions {
  /** The mixing position (0 gives the first image back, 1 the second), or several for a row (default 0.5). */
  alpha?: number | readonly number[];
  /** Steps of inversion and of decoding (default 50). */
  numInferenceSteps?: number;
  /** How to invert and decode: "ddim" (default), "edict" or "bdia". */
  method?: InversionMethod;
  /** EDICT's mixing weight p (default 0.93); only with method "edict". */
  p?: number;
  /** BDIA's gamma in (0, 1] (default 1); only with method "bdia". */
  gamma?: number;
  /** `"slerp"` (default, as the paper) or `"lerp"`. */
  interpolation?: "slerp" | "lerp";
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
  /** The two images' whole states with their method (what `decodeLatents` takes). */
  states: [LatentState, LatentState];
}

/**
 * Fuse two images: invert both (DDIM, EDICT or BDIA), slerp their latent states at `alpha`, decode with the method.
 *
 * fused = decode(slerp(invert(x_0^(a)), invert(x_0^(b)), alpha)), each array of the state slerped alike
 *
 * Both images are checked before any model call: they must be single images of one shape that the model takes.
 *
 * @param pipeline a DDIM pipeline
 * @param images the two images, each [1, C, H, W] in [-1, 1]
 * @param options `alpha` (default 0.5), `numInferenceSteps` (default 50), `method`, `p`, `gamma`, `interpolation`,
 *   `progress`
 * @returns the fused images, the alphas and both latents with their states
 * @throws RangeError when the images differ in shape, are not single images, alpha is outside [0, 1], or the
 *   method or its parameter is not valid
 * @example
 * ```ts
 * import { DDIMPipeline, fuse, Tensor } from "../../mod.ts";
 * const pipe = await DDIMPipeline.fromPretrained("builtin:shapes32");
 * const a = Tensor.zeros([1, 3, 32, 32]), b = Tensor.zeros([1, 3, 32, 32]);
 * const { fused } = await fuse(pipe, [a, b], { alpha: 0.5, numInferenceSteps: 10 });
 * const exact = await fuse(pipe, [a, b], { alpha: [0, 0.5, 1], method: "edict", numInferenceSteps: 10 });
 * if (fused.shape.join() !== "1,3,32,32" || exact.fused.shape.join() !== "3,3,32,32") throw new Error("wrong shapes");
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
  const interpolation = options.interpolation ?? "slerp";
  if (interpolation !== "slerp" && interpolation !== "lerp") {
    throw new RangeError(
      `fuse interpolates with "slerp" or "lerp", got interpolation ${JSON.stringify(interpolation)}`,
    );
  }
  const method = options.method ?? "ddim";
  if (!INVERSION_METHODS.includes(method)) {
    const hint = (method as string) === "slerp" || (method as string) === "lerp"
      ? `; the interpolation is chosen with interpolation: "${method}"`
      : "";
    throw new RangeError(`fuse inverts with method "ddim", "edict" or "bdia", got ${JSON.stringify(method)}${hint}`);
  }
  const numInferenceSteps = options.numInferenceSteps ?? 50;
  // 1. invert both images in one batch: x_T^(a), x_T^(b) (and the rest of the state for EDICT and BDIA)
  const pair = new Tensor(new Float32Array([...a.data, ...b.data]), [2, ...a.shape.slice(1)]);
  const inversion = await invert(pipeline, pair, {
    numInferenceSteps,
    method,
    ...(options.p === undefined ? {} : { p: options.p }),
    ...(options.gamma === undefined ? {} : { gamma: options.gamma }),
    progress: options.progress,
  });
  const half = (array: Float32Array | Float64Array, k: number) =>
    new Tensor(Float32Array.from(array.subarray(k * a.size, (k + 1) * a.size)), a.shape);
  const parts = inversion.state.map((array) => [half(array, 0), half(array, 1)] as const);
  const methodFields = {
    method,
    numInferenceSteps,
    clipSample: false,
    ...(inversion.p === undefined ? {} : { p: inversion.p }),
    ...(inversion.gamma === undefined ? {} : { gamma: inversion.gamma }),
  };
  const stateOf = (k: number): LatentState => ({
    ...methodFields,
    state: parts.map((p) => p[k].data),
    shape: [...a.shape],
  });
  // 2. slerp every array of the state between the encodings, 3. decode each mixed state with the same method
  const mixed = parts.map(([partA, partB]) => interpolateLatents(partA, partB, { alphas, method: interpolation }).data);
  const { samples } = await decodeLatents(pipeline, {
    ...methodFields,
    state: mixed,
    shape: [alphas.length, ...a.shape.slice(1)],
  }, { progress: options.progress });
  return { fused: samples, alphas, latents: [parts[0][0], parts[0][1]], states: [stateOf(0), stateOf(1)] };
}
