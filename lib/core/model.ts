/**
 * The model interface every sampler and pipeline takes: a noise predictor eps_theta(x_t, t).
 *
 * | paper        | code          | meaning                                   |
 * |--------------|---------------|-------------------------------------------|
 * | x_t          | `sample`      | the noisy sample at timestep t, NCHW      |
 * | t            | `timestep`    | a training timestep in [0, T), per batch  |
 * | eps_theta    | `predict`     | the network's output (noise, x0 or v)     |
 *
 * A pretrained UNet (`loadUNet`), an embedded exact denoiser (`loadUNet("builtin:...")`) and a plain function
 * (`modelFromFunction`) all satisfy it, so tests can inject a stand-in and the ONNX session lives in one adapter.
 *
 * @module
 */
import type { Tensor } from "./tensor.ts";

/**
 * A denoising model: predicts eps_theta(x_t, t) (or x0, or v, as its scheduler's `prediction_type` says).
 */
export interface DenoisingModel {
  /**
   * Run the model on a batch.
   *
   * @param sample x_t, shape [batch, inChannels, height, width]
   * @param timestep one timestep for the whole batch, or one per batch item
   * @returns the prediction, shape [batch, outChannels, height, width]
   */
  predict(sample: Tensor, timestep: number | readonly number[]): Promise<Tensor>;
  /** The spatial size the model was trained on (square side, or [height, width]). */
  readonly sampleSize: number | readonly [number, number];
  /** Channels of x_t. */
  readonly inChannels: number;
  /** Channels of the prediction (twice `inChannels` for `learned_range` variance). */
  readonly outChannels: number;
}

/** What `modelFromFunction` needs to know besides the function. */
export interface ModelFromFunctionOptions {
  /** The spatial size (default: taken as 32). */
  sampleSize?: number | readonly [number, number];
  /** Channels of x_t (default 3). */
  inChannels?: number;
  /** Channels of the prediction (default `inChannels`). */
  outChannels?: number;
}

/**
 * Wrap a plain function as a `DenoisingModel`, for tests and toy experiments.
 *
 * eps_theta(x_t, t) = fn(x_t, t)
 *
 * @param fn computes the prediction for a batch (may be synchronous)
 * @param options the model's facts
 * @returns a model whose `predict` calls `fn`
 * @example
 * ```ts
 * import { modelFromFunction, Tensor } from "../../mod.ts";
 * const zero = modelFromFunction((x) => Tensor.zeros(x.shape), { sampleSize: 8, inChannels: 3 });
 * const eps = await zero.predict(Tensor.zeros([1, 3, 8, 8]), 999);
 * if (eps.shape.join() !== "1,3,8,8" || eps.data.some((v) => v !== 0)) throw new Error("expected zeros of shape [1, 3, 8, 8]");
 * ```
 */
export function modelFromFunction(
  fn: (sample: Tensor, timestep: number | readonly number[]) => Tensor | Promise<Tensor>,
  options: ModelFromFunctionOptions = {},
): DenoisingModel {
  const inChannels = options.inChannels ?? 3;
  return {
    sampleSize: options.sampleSize ?? 32,
    inChannels,
    outChannels: options.outChannels ?? inChannels,
    predict: async (sample, timestep) => await fn(sample, timestep),
  };
}
