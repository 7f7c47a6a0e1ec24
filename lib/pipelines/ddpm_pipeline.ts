/**
 * The DDPM ancestral sampling pipeline (Ho et al. 2020, Algorithm 2), as diffusers' `DDPMPipeline`: draw x_T, then
 * step through the DDPM scheduler's schedule (all T timesteps by default), adding fresh noise at every t > 0.
 *
 * | paper                        | code                 | meaning                                           |
 * |------------------------------|----------------------|---------------------------------------------------|
 * | T                            | `numInferenceSteps`  | steps (default 1000, every training timestep)     |
 * | x_T                          | `xT`                 | starting noise, [batch, inChannels, size, size]   |
 * | x_{t-1} = mu_theta + sigma_t z | DDPM `step`        | one ancestral step; z drawn from the generator    |
 * | x_0                          | `samples`            | the result, in the model's range, unclamped       |
 *
 * With a seed, the numbers equal diffusers' `DDPMPipeline(unet, scheduler)(generator=torch.manual_seed(seed))` before
 * its final `(x / 2 + 0.5).clamp(0, 1)`: x_T first, then one `randn` per step with t > 0. The DDIM paper's eta = 1
 * process equals this one only with `variance_type: "fixed_small"` and `clip_sample` off.
 *
 * @module
 */
import { DDPMScheduler } from "../schedulers/ddpm.ts";
import type { DenoisingModel } from "../core/model.ts";
import { configOf, loadPipelineParts, runSampling, type SampleOptions, type SampleResult } from "./sampling.ts";
import type { PipelineScheduler } from "../schedulers/scheduler.ts";

/**
 * Sample with DDPM: x_T ~ N(0, I), then x_{t-1} = mu_theta(x_t, t) + sigma_t z for every timestep.
 *
 * mu_theta(x_t, t) = (1 / sqrt(alpha_t)) (x_t - beta_t / sqrt(1 - alphaBar_t) eps_theta(x_t, t))
 *
 * @example
 * ```ts
 * import { DDPMPipeline } from "../../mod.ts";
 * const pipe = await DDPMPipeline.fromPretrained("builtin:shapes32");
 * const { samples } = await pipe.sample({ seed: 0, batchSize: 2, numInferenceSteps: 10 });
 * if (samples.shape.join() !== "2,3,32,32") throw new Error(`got [${samples.shape}]`);
 * ```
 */
export class DDPMPipeline {
  /** The model eps_theta. */
  unet: DenoisingModel;
  /** The scheduler; assign another to swap it (it is used as given, as in diffusers). */
  scheduler: PipelineScheduler;

  /**
   * A pipeline from a model and a scheduler (default: diffusers' `DDPMScheduler` defaults).
   *
   * @param parts `unet` and `scheduler` (used as given)
   */
  constructor(parts: { unet: DenoisingModel; scheduler?: PipelineScheduler }) {
    if (!parts?.unet || typeof parts.unet.predict !== "function") {
      throw new TypeError("DDPMPipeline needs a unet with a predict(sample, timestep) method");
    }
    this.unet = parts.unet;
    this.scheduler = parts.scheduler ?? DDPMScheduler.fromConfig({});
  }

  /**
   * Load a model and its scheduler config from a checkpoint folder, an `.onnx` file or a builtin name.
   *
   * @param source a path, or `"builtin:NAME"`
   * @param options passed on to the model loader (execution provider, threads)
   * @returns the pipeline, with a `DDPMScheduler` built from the checkpoint's scheduler config
   * @example
   * ```ts
   * import { DDPMPipeline } from "../../mod.ts";
   * const pipe = await DDPMPipeline.fromPretrained("builtin:shapes32");
   * if (pipe.unet.sampleSize !== 32) throw new Error("shapes32 is a 32x32 model");
   * ```
   */
  static async fromPretrained(source: string, options: Record<string, unknown> = {}): Promise<DDPMPipeline> {
    const { unet, scheduler } = await loadPipelineParts(source, options);
    const ddpm = scheduler === undefined
      ? undefined
      : scheduler instanceof DDPMScheduler
      ? scheduler
      : DDPMScheduler.fromConfig(configOf(scheduler as PipelineScheduler));
    return new DDPMPipeline({ unet, scheduler: ddpm });
  }

  /**
   * Run the sampler.
   *
   * x_T ~ N(0, I); for t = T-1 ... 0: x <- DDPM step (noise from the generator when t > 0)
   *
   * @param options `numInferenceSteps` (default 1000), `seed` or `generator`, `xT`, `batchSize`, `clipSample`,
   *   `onStep`, `progress`, `trajectory`
   * @returns the samples (unclamped), x_T, the seed, the schedule and, on request, the trajectory
   * @throws RangeError for steps out of range, a bad batch size or x_T of the wrong shape
   * @example
   * ```ts
   * import { DDPMPipeline, modelFromFunction, Tensor } from "../../mod.ts";
   * const pipe = new DDPMPipeline({ unet: modelFromFunction((x) => Tensor.zeros(x.shape), { sampleSize: 8 }) });
   * const { samples } = await pipe.sample({ numInferenceSteps: 20, seed: 0 });
   * if (samples.shape.join() !== "1,3,8,8" || !samples.data.every(Number.isFinite)) throw new Error(`got [${samples.shape}]`);
   * ```
   */
  async sample(options: SampleOptions = {}): Promise<SampleResult> {
    if ((options as { eta?: unknown }).eta !== undefined) {
      throw new RangeError("DDPMPipeline takes no eta (its variance is the scheduler's); use DDIMPipeline for eta");
    }
    return await runSampling(this.unet, this.scheduler, {
      ...options,
      defaultSteps: 1000,
      label: "DDPM",
      stepOptions: (generator) => ({ generator }),
    });
  }
}
