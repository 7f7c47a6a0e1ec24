/**
 * DDIM inversion and reconstruction (Song et al. 2020, section 5.4): run the deterministic DDIM process backwards,
 * the Euler step of the probability-flow ODE (eq. 14) from x_0 towards x_T, then decode x_T again with eta = 0 and
 * measure how close the round trip comes. The paper's Table 2 reports this error on CIFAR-10 (per-dimension MSE on
 * [0, 1]: 0.014 at 10 steps down to 0.0001 at 1000).
 *
 * | paper                                                                      | code            | meaning            |
 * |----------------------------------------------------------------------------|-----------------|--------------------|
 * | x_0                                                                        | `image`         | the image, [-1, 1] |
 * | x_{t+1} = sqrt(a_{t+1}) ((x_t - sqrt(1-a_t) eps) / sqrt(a_t)) + sqrt(1-a_{t+1}) eps | inverse `step` | one ODE step up |
 * | x_T                                                                        | `latents`       | the encoding       |
 * | x_0' = DDIM_{eta=0}(x_T)                                                   | `reconstruction`| the decode         |
 * | MSE = mean(((x_0 + 1)/2 - (x_0' + 1)/2)^2)                                  | `mse`           | Table 2's unit     |
 * | PSNR = 10 log10(1 / MSE)                                                   | `psnr`          | in dB, peak 1      |
 *
 * Both directions run with `clip_sample` off by default: clipping the predicted x0 is not part of the ODE, and the
 * encode and decode must be the same map run both ways.
 *
 * @module
 */
import { DDIMInverseScheduler } from "./ddim_inverse.ts";
import type { DenoisingModel } from "./model.ts";
import type { ProgressReporter } from "./progress.ts";
import { resolveProgress } from "./progress.ts";
import {
  checkInferenceSteps,
  checkLatents,
  configOf,
  latentShape,
  type PipelineScheduler,
  samplingLoop,
  type SamplingStep,
} from "./sampling.ts";
import { Tensor } from "./tensor.ts";

/** What inversion needs from a pipeline: its model, its scheduler, and a decode from given latents. */
export interface InvertiblePipeline {
  readonly unet: DenoisingModel;
  readonly scheduler: PipelineScheduler;
  sample(options: {
    xT: Tensor;
    numInferenceSteps?: number;
    eta?: number;
    clipSample?: boolean;
    progress?: boolean | ProgressReporter;
  }): Promise<{ samples: Tensor }>;
}

/** Options of `invert` and `reconstruct`. */
export interface InversionOptions {
  /** Steps of the ODE in each direction (default 50). */
  numInferenceSteps?: number;
  /** Clip the predicted x0 while inverting and decoding (default false: the pure ODE). */
  clipSample?: boolean;
  /** Draw a progress bar (true), nothing (false, the default), or report to your own reporter. */
  progress?: boolean | ProgressReporter;
  /** Keep every inversion step `{ i, t, x, predX0 }` (true) or every k-th (a number). */
  trajectory?: boolean | number;
  /** Called after every inversion step. */
  onStep?: (step: SamplingStep) => void | Promise<void>;
}

/** What `invert` resolves to. */
export interface InversionResult {
  /** The encoding x_T, same shape as the image. */
  latents: Tensor;
  /** The ascending schedule the inversion ran. */
  timesteps: number[];
  /** The recorded steps, when asked for. */
  trajectory?: SamplingStep[];
}

/**
 * Invert images to their DDIM latents: run the deterministic process backwards, x_0 -> x_T.
 *
 * x_{t_next} = sqrt(alphaBarNext) predX0 + sqrt(1 - alphaBarNext) eps_theta(x_t, t), predX0 from eq. (12)
 *
 * @param pipeline a DDIM pipeline (its model and scheduler config are used)
 * @param image the images in [-1, 1], shape [batch, inChannels, height, width] at the model's size
 * @param options `numInferenceSteps` (default 50), `clipSample`, `progress`, `trajectory`, `onStep`
 * @returns the latents x_T and the schedule
 * @throws RangeError for an image the model cannot take or steps out of range
 * @example
 * ```ts
 * import { DDIMPipeline, invert, Tensor } from "../mod.ts";
 * const pipe = await DDIMPipeline.fromPretrained("builtin:shapes32");
 * const { latents } = await invert(pipe, Tensor.zeros([1, 3, 32, 32]), { numInferenceSteps: 20 });
 * ```
 */
export async function invert(
  pipeline: InvertiblePipeline,
  image: Tensor,
  options: InversionOptions = {},
): Promise<InversionResult> {
  const numInferenceSteps = options.numInferenceSteps ?? 50;
  checkInferenceSteps(numInferenceSteps, pipeline.scheduler);
  checkImage(pipeline.unet, image);
  const every = options.trajectory === true ? 1 : typeof options.trajectory === "number" ? options.trajectory : 0;
  if (!Number.isInteger(every) || every < 0) {
    throw new RangeError(`trajectory must be true, false or a positive step interval, got ${options.trajectory}`);
  }
  // 1. the inverse scheduler from the pipeline's own config: the same alphaBar table, timesteps ascending
  const inverse = DDIMInverseScheduler.fromConfig({
    ...configOf(pipeline.scheduler),
    clip_sample: options.clipSample ?? false,
  });
  inverse.setTimesteps(numInferenceSteps);
  const timesteps = [...inverse.timesteps];
  const reporter = resolveProgress(options.progress);
  const trajectory: SamplingStep[] = [];
  let latents = image;
  reporter.start(timesteps.length, "DDIM inversion");
  try {
    // 2. the ODE run upwards, one model call per step, no noise
    for await (const step of samplingLoop(pipeline.unet, inverse, { sample: image })) {
      latents = step.x;
      if (every > 0 && (step.i % every === 0 || step.i === timesteps.length - 1)) trajectory.push(step);
      if (options.onStep) await options.onStep(step);
      reporter.tick();
    }
  } finally {
    reporter.stop();
  }
  return { latents, timesteps, ...(every > 0 ? { trajectory } : {}) };
}

/** What `reconstruct` resolves to. */
export interface ReconstructionResult extends InversionResult, ImageError {
  /** The decode x_0' of the latents (DDIM, eta = 0), unclamped. */
  reconstruction: Tensor;
}

/**
 * Encode images with DDIM inversion and decode them again, reporting the round trip's error.
 *
 * x_0' = DDIM_{eta=0}(invert(x_0)); mse = mean(((x_0 - x_0') / 2)^2); psnr = 10 log10(1 / mse)
 *
 * @param pipeline a DDIM pipeline
 * @param image the images in [-1, 1] at the model's size
 * @param options `numInferenceSteps` (default 50, used both ways), `clipSample`, `progress`, `trajectory`
 * @returns the latents, the reconstruction and its error (MSE on [0, 1], PSNR in dB, per image too)
 * @throws RangeError for an image the model cannot take or steps out of range
 * @example
 * ```ts
 * import { DDIMPipeline, reconstruct, Tensor } from "../mod.ts";
 * const pipe = await DDIMPipeline.fromPretrained("builtin:shapes32");
 * const { mse, psnr } = await reconstruct(pipe, Tensor.zeros([1, 3, 32, 32]), { numInferenceSteps: 20 });
 * ```
 */
export async function reconstruct(
  pipeline: InvertiblePipeline,
  image: Tensor,
  options: InversionOptions = {},
): Promise<ReconstructionResult> {
  const numInferenceSteps = options.numInferenceSteps ?? 50;
  const inversion = await invert(pipeline, image, options);
  const { samples } = await pipeline.sample({
    xT: inversion.latents,
    numInferenceSteps,
    eta: 0,
    clipSample: options.clipSample ?? false,
    progress: options.progress,
  });
  return { ...inversion, reconstruction: samples, ...imageError(image, samples) };
}

/** The error between two image batches on the [0, 1] scale. */
export interface ImageError {
  /** Per-dimension mean squared error on [0, 1] over the whole batch (the DDIM paper's Table 2 unit). */
  mse: number;
  /** Peak signal-to-noise ratio for peak 1, in dB: 10 log10(1 / mse) (Infinity when mse is 0). */
  psnr: number;
  /** `mse` of each batch item. */
  msePerImage: number[];
}

/**
 * The per-dimension MSE on [0, 1] and the PSNR between two image batches in [-1, 1] (no clamping).
 *
 * mse = (1/N) sum_i ((x_i + 1)/2 - (y_i + 1)/2)^2 = (1/4N) sum_i (x_i - y_i)^2; psnr = 10 log10(1 / mse)
 *
 * @param original the reference images
 * @param other the images to compare, same shape
 * @returns the MSE, the PSNR and the MSE of each batch item
 * @throws RangeError when the shapes differ or the batch is empty
 * @example
 * ```ts
 * import { imageError, Tensor } from "../mod.ts";
 * imageError(Tensor.from([-1, 1], [1, 2]), Tensor.from([1, 1], [1, 2])).mse; // 0.5
 * ```
 */
export function imageError(original: Tensor, other: Tensor): ImageError {
  if (!original.sameShape(other)) {
    throw new RangeError(
      `Cannot compare images of shape [${original.shape.join(", ")}] and [${other.shape.join(", ")}]`,
    );
  }
  if (original.size === 0) throw new RangeError("Cannot compare empty images");
  const items = original.shape.length >= 2 ? original.shape[0] : 1;
  const length = original.size / items;
  const msePerImage: number[] = [];
  let total = 0;
  for (let item = 0; item < items; item++) {
    let sum = 0;
    for (let k = item * length; k < (item + 1) * length; k++) {
      const difference = (original.data[k] - other.data[k]) / 2;
      sum += difference * difference;
    }
    msePerImage.push(sum / length);
    total += sum;
  }
  const mse = total / original.size;
  return { mse, psnr: 10 * Math.log10(1 / mse), msePerImage };
}

function checkImage(model: DenoisingModel, image: Tensor): void {
  if (!(image instanceof Tensor)) throw new TypeError("The image to invert must be a Tensor in [-1, 1]");
  const batch = image.shape.length === 4 ? image.shape[0] : 1;
  checkLatents(image, latentShape(model, batch), "image");
}
