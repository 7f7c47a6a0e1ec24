/**
 * The DDIM sampling pipeline (Song et al. 2020, eq. 12), as diffusers' `DDIMPipeline`: draw x_T, then run the DDIM
 * scheduler's generalised step with the chosen eta over S of the T training timesteps.
 *
 * | paper                  | code                 | meaning                                             |
 * |------------------------|----------------------|-----------------------------------------------------|
 * | S                      | `numInferenceSteps`  | steps of the sub-sequence tau (default 50)          |
 * | eta                    | `eta`                | 0: deterministic DDIM; 1: the DDPM-like process     |
 * | x_T                    | `xT`                 | starting noise, [batch, inChannels, size, size]     |
 * | eps_theta              | `unet`               | any `DenoisingModel`                                |
 * | x_0                    | `samples`            | the result, in the model's range, unclamped         |
 *
 * With a seed, the numbers equal diffusers' `DDIMPipeline(unet, scheduler)(generator=torch.manual_seed(seed))`
 * before its final `(x / 2 + 0.5).clamp(0, 1)`: x_T is drawn first, then one `randn` per step when eta > 0.
 *
 * @module
 */
import { DDIMScheduler } from "../schedulers/ddim.ts";
import { DDPMScheduler } from "../schedulers/ddpm.ts";
import type { DenoisingModel } from "../core/model.ts";
import {
  checkEta,
  configOf,
  loadPipelineParts,
  runSampling,
  type SampleOptions,
  type SampleResult,
} from "./sampling.ts";
import type { PipelineScheduler } from "../schedulers/scheduler.ts";

/** Options of `DDIMPipeline.sample`: the shared ones plus eta and diffusers' `use_clipped_model_output`. */
export interface DDIMSampleOptions extends SampleOptions {
  /** The eta of eq. (16): 0 (default) is DDIM, 1 the DDPM-like process; must lie in [0, 1]. */
  eta?: number;
  /** Recompute eps from the clipped x0 (diffusers' `use_clipped_model_output`). */
  useClippedModelOutput?: boolean;
}

/** What a pipeline is made of: a model and a scheduler. */
export interface PipelineParts {
  /** The noise predictor: a loaded UNet, a builtin model, or a function wrapped with `modelFromFunction`. */
  unet: DenoisingModel;
  /** The scheduler; a `DDPMScheduler` is converted to a `DDIMScheduler` from its config, any other is used as given. */
  scheduler?: PipelineScheduler;
}

/**
 * Sample with DDIM: x_T ~ N(0, I), then S steps of eq. (12) with sigma_t(eta) from eq. (16).
 *
 * x_{t-1} = sqrt(alphaBarPrev) predX0 + sqrt(1 - alphaBarPrev - sigma_t^2) eps + sigma_t z
 *
 * @example
 * ```ts
 * import { DDIMPipeline } from "../../mod.ts";
 * const pipe = await DDIMPipeline.fromPretrained("builtin:shapes32");
 * const { samples } = await pipe.sample({ numInferenceSteps: 10, eta: 0, seed: 0, batchSize: 4 });
 * if (samples.shape.join() !== "4,3,32,32") throw new Error(`got [${samples.shape}]`);
 * ```
 */
export class DDIMPipeline {
  /** The model eps_theta. */
  unet: DenoisingModel;
  /** The scheduler; assign another to swap it (it is used as given). */
  scheduler: PipelineScheduler;

  /**
   * A pipeline from a model and a scheduler (default: diffusers' `DDIMScheduler` defaults).
   *
   * @param parts `unet` and `scheduler`; a DDPM scheduler is rebuilt as DDIM from its config (as diffusers rebuilds
   *   every scheduler), any other (DDIM, PNDM, Euler, Heun, ...) is used as given, so that the pipeline runs it
   */
  constructor(parts: PipelineParts) {
    if (!parts?.unet || typeof parts.unet.predict !== "function") {
      throw new TypeError("DDIMPipeline needs a unet with a predict(sample, timestep) method");
    }
    this.unet = parts.unet;
    const scheduler = parts.scheduler;
    this.scheduler = scheduler === undefined
      ? DDIMScheduler.fromConfig({})
      : scheduler instanceof DDPMScheduler
      ? DDIMScheduler.fromConfig(configOf(scheduler))
      : scheduler;
  }

  /**
   * Load a model and its scheduler config from a checkpoint folder, an `.onnx` file or a builtin name.
   *
   * @param source a path, or `"builtin:NAME"`
   * @param options passed on to the model loader (execution provider, threads)
   * @returns the pipeline, its scheduler rebuilt as DDIM from the checkpoint's scheduler config
   * @example
   * ```ts
   * import { DDIMPipeline } from "../../mod.ts";
   * const pipe = await DDIMPipeline.fromPretrained("builtin:shapes32");
   * if (pipe.unet.sampleSize !== 32) throw new Error("shapes32 is a 32x32 model");
   * ```
   */
  static async fromPretrained(source: string, options: Record<string, unknown> = {}): Promise<DDIMPipeline> {
    const { unet, scheduler } = await loadPipelineParts(source, options);
    return new DDIMPipeline({ unet, scheduler: scheduler as PipelineScheduler | undefined });
  }

  /**
   * Run the sampler.
   *
   * x_T ~ N(0, I); for tau_S > ... > tau_1: x <- DDIM step with eta
   *
   * @param options `numInferenceSteps` (default 50), `eta` (default 0), `seed` or `generator`, `xT`, `batchSize`,
   *   `useClippedModelOutput`, `clipSample`, `onStep`, `progress`, `trajectory`
   * @returns the samples (unclamped), x_T, the seed, the schedule and, on request, the trajectory
   * @throws RangeError for eta outside [0, 1] (or not 0 with a non-DDIM scheduler), steps out of range, a bad batch
   *   size or x_T of the wrong shape
   * @example
   * ```ts
   * import { DDIMPipeline, modelFromFunction, Tensor } from "../../mod.ts";
   * const pipe = new DDIMPipeline({ unet: modelFromFunction((x) => Tensor.zeros(x.shape), { sampleSize: 8 }) });
   * const { samples, xT } = await pipe.sample({ numInferenceSteps: 10, seed: 0 });
   * // with eps = 0, eq. (12) keeps the predicted x0 = x_t / sqrt(alphaBar_t) from the first step on (x_T at t = 900,
   * // leading spacing, 10 of 1000), clipped to [-1, 1] as diffusers' default clip_sample does
   * let alphaBar = 1;
   * for (let t = 0; t <= 900; t++) alphaBar *= 1 - (1e-4 + (0.02 - 1e-4) * t / 999);
   * samples.data.forEach((x0, i) => {
   *   const expected = Math.max(-1, Math.min(1, xT.data[i] / Math.sqrt(alphaBar)));
   *   if (Math.abs(x0 - expected) > 1e-3 * Math.abs(expected)) throw new Error(`x_0 ${x0}, expected ${expected}`);
   * });
   * ```
   */
  async sample(options: DDIMSampleOptions = {}): Promise<SampleResult> {
    const eta = options.eta ?? 0;
    checkEta(eta);
    if (eta !== 0 && !(this.scheduler instanceof DDIMScheduler)) {
      throw new RangeError(
        `eta ${eta} is a DDIMScheduler option; this pipeline's ${this.scheduler.constructor.name} takes no eta`,
      );
    }
    return await runSampling(this.unet, this.scheduler, {
      ...options,
      defaultSteps: 50,
      label: `DDIM eta ${eta}`,
      stepOptions: (generator) => ({
        eta,
        generator,
        ...(options.useClippedModelOutput === undefined
          ? {}
          : { useClippedModelOutput: options.useClippedModelOutput }),
      }),
    });
  }
}
