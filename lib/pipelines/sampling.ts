/**
 * The sampling loop both pipelines share: draw x_T, then for each timestep of the schedule ask the model for its
 * prediction and let the scheduler take one step, yielding `{ i, t, x, predX0 }` as it goes.
 *
 * | paper                   | code          | meaning                                                        |
 * |-------------------------|---------------|----------------------------------------------------------------|
 * | x_T ~ N(0, I)           | `xT`          | the starting noise, [batch, inChannels, height, width]         |
 * | tau_S > ... > tau_1     | `timesteps`   | the scheduler's schedule after `setTimesteps(S)`               |
 * | eps_theta(x_t, t)       | `modelOutput` | the model's prediction at step i                               |
 * | x_{t-1}                 | `x`           | the sample after step i (what the step yields)                 |
 * | f_theta(x_t), eq. (9)   | `predX0`      | the predicted x0 at step i                                     |
 *
 * Noise is drawn as diffusers' pipelines draw it: x_T first with `randn([batch, C, H, W])` from the generator, then
 * every step's variance noise from the same generator inside the scheduler's `step` (DDIM only when eta > 0, DDPM
 * only when t > 0). A diffusers user with the same seed therefore gets the same numbers.
 *
 * @module
 */
import type { PipelineScheduler, SamplingStep, Scheduler } from "../schedulers/scheduler.ts";
import type { DenoisingModel } from "../core/model.ts";
import { type ProgressReporter, resolveProgress } from "../io/progress.ts";
import { Tensor } from "../core/tensor.ts";
import { type RandnGenerator, TorchGenerator } from "../core/torch_generator.ts";
import { fromPretrained, loadUNet } from "../models/load.ts";
import { checkStepCount } from "../math/schedules.ts";
import { statSync } from "node:fs";

/** The eta check lives with the DDIM scheduler; the pipelines and the CLI reach it from here too. */
export { checkEta } from "../schedulers/ddim.ts";

/**
 * The sampling loop as a generator: one model call and one scheduler step per timestep, yielding each step.
 *
 * for i, t in enumerate(timesteps): eps = model(x, t); x, predX0 = scheduler.step(eps, t, x); yield { i, t, x, predX0 }
 *
 * The scheduler must already have its timesteps set. Its generator (if any) goes in `stepOptions`.
 *
 * @param model the denoising model
 * @param scheduler the scheduler, with `setTimesteps` already called
 * @param options `sample`: the starting x; `stepOptions`: passed to every `step` (eta, generator, ...)
 * @returns an async generator of steps whose return value is the final sample
 * @example
 * ```ts
 * import { DDIMScheduler, modelFromFunction, samplingLoop, Tensor } from "../../mod.ts";
 * const model = modelFromFunction((x) => Tensor.zeros(x.shape), { sampleSize: 4, inChannels: 1 });
 * const scheduler = DDIMScheduler.fromConfig({});
 * scheduler.setTimesteps(10);
 * const seen: number[] = [];
 * for await (const { t } of samplingLoop(model, scheduler, { sample: Tensor.zeros([1, 1, 4, 4]) })) seen.push(t);
 * // leading spacing, 10 of 1000: 900, 800, ..., 0 (diffusers' DDIMScheduler.set_timesteps(10))
 * if (seen.join() !== "900,800,700,600,500,400,300,200,100,0") throw new Error(`got ${seen}`);
 * ```
 */
export async function* samplingLoop<Options extends object>(
  model: DenoisingModel,
  scheduler: Scheduler<Options>,
  options: { sample: Tensor; stepOptions?: Options },
): AsyncGenerator<SamplingStep, Tensor> {
  let x = options.sample;
  for (const [i, t] of scheduler.timesteps.entries()) {
    // 1. the model's prediction eps_theta(c_in x_t, t) (c_in = 1 for DDPM and DDIM)
    const modelOutput = await model.predict(scheduler.scaleModelInput(x, t), t);
    // 2. one scheduler step x_t -> x_{t-1}, with the predicted x0 of eq. (12)
    const output = scheduler.step(modelOutput, t, x, options.stepOptions);
    x = output.prevSample;
    yield { i, t, x, predX0: output.predOriginalSample };
  }
  return x;
}

/** Options every pipeline's `sample` takes. */
export interface SampleOptions {
  /** How many denoising steps (DDIM default 50, DDPM default 1000). */
  numInferenceSteps?: number;
  /** A seeded generator for x_T and the step noise (takes precedence over `seed`). */
  generator?: RandnGenerator;
  /** A seed for a new `TorchGenerator` (default: a random one, reported in the result). */
  seed?: number;
  /** The starting noise x_T; when given, nothing is drawn for it. */
  xT?: Tensor;
  /** How many samples (default 1, or `xT`'s batch). */
  batchSize?: number;
  /** Override the scheduler's `clip_sample` for this run (the DDIM write-up turns it off). */
  clipSample?: boolean;
  /** Called after every step with `{ i, t, x, predX0 }`. */
  onStep?: (step: SamplingStep) => void | Promise<void>;
  /** Draw a progress bar (true), nothing (false, the default), or report to a reporter of your own. */
  progress?: boolean | ProgressReporter;
  /** Keep every step's x and predicted x0 (true), every k-th step (a number k), or none (the default). */
  trajectory?: boolean | number;
}

/** What a pipeline's `sample` resolves to. */
export interface SampleResult {
  /** The final x_0, in the model's range, unclamped: [batch, C, H, W]. */
  samples: Tensor;
  /** The starting noise x_T that was used, before the scale by the scheduler's `initNoiseSigma` (1 for DDPM, DDIM). */
  xT: Tensor;
  /** The seed of the generator, when the pipeline made the generator itself. */
  seed?: number;
  /** The recorded steps (every k-th, and always the last), when `trajectory` was asked for. */
  trajectory?: SamplingStep[];
  /** The schedule that was run. */
  timesteps: number[];
}

/**
 * Run a whole sampling loop with a pipeline's options: check them, draw x_T, loop, report progress and steps.
 *
 * x_T ~ N(0, initNoiseSigma^2 I) (a given x_T is scaled likewise); x_{t-1} = scheduler.step(model(x_t, t), t, x_t) for
 * t in timesteps
 *
 * @param model the denoising model
 * @param scheduler the scheduler (its timesteps are set here)
 * @param options the pipeline's options, plus `defaultSteps`, `label` and `stepOptions(generator)`
 * @returns the samples, x_T, the seed used, the schedule and, on request, the trajectory
 * @throws RangeError for out-of-range steps, a bad batch size, or x_T of the wrong shape
 * @example
 * ```ts
 * import { DDIMScheduler, modelFromFunction, runSampling, Tensor } from "../../mod.ts";
 * const model = modelFromFunction((x) => Tensor.zeros(x.shape), { sampleSize: 4, inChannels: 1 });
 * const result = await runSampling(model, DDIMScheduler.fromConfig({}), {
 *   numInferenceSteps: 10, seed: 0, defaultSteps: 50, label: "DDIM", stepOptions: () => ({ eta: 0 }),
 * });
 * if (result.samples.shape.join() !== "1,1,4,4" || result.seed !== 0) throw new Error("one 4x4 sample from seed 0");
 * ```
 */
export async function runSampling<Options extends object>(
  model: DenoisingModel,
  scheduler: Scheduler<Options>,
  options: SampleOptions & {
    defaultSteps: number;
    label: string;
    stepOptions: (generator: RandnGenerator) => Options;
  },
): Promise<SampleResult> {
  const numInferenceSteps = options.numInferenceSteps ?? options.defaultSteps;
  checkInferenceSteps(numInferenceSteps, scheduler);
  const every = trajectoryEvery(options.trajectory);
  const shape = latentShape(model, options.batchSize ?? options.xT?.shape[0] ?? 1, "batchSize");
  if (options.xT !== undefined) checkLatents(options.xT, shape);
  const { generator, seed } = resolveGenerator(options);
  const activeScheduler = options.clipSample === undefined ? scheduler : withClipSample(scheduler, options.clipSample);
  // 1. x_T: drawn first from the generator, as diffusers' pipelines do (unless the caller fixed it)
  const xT = options.xT ?? generator.randn(shape);
  // 2. the schedule tau_S > ... > tau_1
  activeScheduler.setTimesteps(numInferenceSteps);
  const timesteps = [...activeScheduler.timesteps];
  // 3. the noise at the scheduler's starting scale, known once the schedule is set (sigma_max for Euler and Heun)
  const start = scaleByInitNoiseSigma(xT, activeScheduler.initNoiseSigma);
  const reporter = resolveProgress(options.progress);
  const trajectory: SamplingStep[] = [];
  let samples = start;
  reporter.start(timesteps.length, options.label);
  try {
    // 4. the loop; each step's noise comes from the same generator, inside the scheduler
    const loop = samplingLoop(model, activeScheduler, { sample: start, stepOptions: options.stepOptions(generator) });
    for await (const step of loop) {
      samples = step.x;
      if (every > 0 && (step.i % every === 0 || step.i === timesteps.length - 1)) trajectory.push(step);
      if (options.onStep) await options.onStep(step);
      reporter.tick();
    }
  } finally {
    reporter.stop();
  }
  return { samples, xT, seed, timesteps, ...(every > 0 ? { trajectory } : {}) };
}

/**
 * The number of training timesteps a scheduler was configured with (diffusers' `num_train_timesteps`).
 *
 * @param scheduler a scheduler with a diffusers-style config
 * @returns T (1000 when the config does not say)
 * @example
 * ```ts
 * import { DDIMScheduler, trainTimesteps } from "../../mod.ts";
 * if (trainTimesteps(DDIMScheduler.fromConfig({ num_train_timesteps: 500 })) !== 500) throw new Error("expected 500");
 * ```
 */
export function trainTimesteps(scheduler: PipelineScheduler): number {
  const config = scheduler.config as Record<string, unknown>;
  const value = config.num_train_timesteps ?? config.numTrainTimesteps ?? 1000;
  return Number(value);
}

/**
 * Refuse a number of inference steps that is not an integer between 1 and the scheduler's training timesteps (the
 * schedulers' own check, `checkStepCount`, run before anything is drawn).
 *
 * 1 <= S <= T
 *
 * @param numInferenceSteps S
 * @param scheduler the scheduler whose T bounds S
 * @returns nothing when S is valid
 * @throws RangeError naming S and T otherwise
 * @example
 * ```ts
 * import { checkInferenceSteps, DDIMScheduler } from "../../mod.ts";
 * checkInferenceSteps(50, DDIMScheduler.fromConfig({})); // fine: no error
 * let refused = false;
 * try {
 *   checkInferenceSteps(1001, DDIMScheduler.fromConfig({}));
 * } catch {
 *   refused = true;
 * }
 * if (!refused) throw new Error("1001 steps of a 1000-step schedule were accepted");
 * ```
 */
export function checkInferenceSteps(numInferenceSteps: number, scheduler: PipelineScheduler): void {
  checkStepCount(numInferenceSteps, trainTimesteps(scheduler));
}

/**
 * The shape of x_T for a model: [batch, inChannels, height, width], as diffusers' pipelines build it.
 *
 * @param model the model (its `sampleSize` and `inChannels`)
 * @param batchSize the batch
 * @param name how to call the batch in errors
 * @returns the shape
 * @throws RangeError when the batch is not a positive integer or the model's size is not one
 * @example
 * ```ts
 * import { latentShape, modelFromFunction, Tensor } from "../../mod.ts";
 * const shape = latentShape(modelFromFunction((x) => x, { sampleSize: 32 }), 4);
 * if (shape.join() !== "4,3,32,32") throw new Error(`got ${shape}`);
 * ```
 */
export function latentShape(model: DenoisingModel, batchSize: number, name = "batchSize"): number[] {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`${name} must be a positive integer, got ${batchSize}`);
  }
  const size = model.sampleSize;
  const [height, width] = typeof size === "number" ? [size, size] : [size[0], size[1]];
  if (![height, width, model.inChannels].every((d) => Number.isInteger(d) && d > 0)) {
    throw new RangeError(
      `The model's sampleSize ${JSON.stringify(size)} and inChannels ${model.inChannels} must be positive integers`,
    );
  }
  return [batchSize, model.inChannels, height, width];
}

/**
 * Refuse a tensor whose shape is not what the model takes.
 *
 * @param x the tensor (x_T or an image)
 * @param shape the expected shape
 * @param name how to call it in the error (default "xT")
 * @returns nothing when the shapes agree
 * @throws RangeError naming both shapes
 * @example
 * ```ts
 * import { checkLatents, Tensor } from "../../mod.ts";
 * checkLatents(Tensor.zeros([1, 3, 8, 8]), [1, 3, 8, 8]); // fine: no error
 * let refused = false;
 * try {
 *   checkLatents(Tensor.zeros([1, 3, 8, 4]), [1, 3, 8, 8]);
 * } catch {
 *   refused = true;
 * }
 * if (!refused) throw new Error("latents of the wrong shape were accepted");
 * ```
 */
export function checkLatents(x: Tensor, shape: readonly number[], name = "xT"): void {
  if (!(x instanceof Tensor)) throw new TypeError(`${name} must be a Tensor`);
  const same = x.shape.length === shape.length && x.shape.every((d, k) => d === shape[k]);
  if (!same) {
    throw new RangeError(
      `${name} has shape [${x.shape.join(", ")}] but the model takes [${shape.join(", ")}] ` +
        `([batch, inChannels, height, width])`,
    );
  }
  for (let k = 0; k < x.size; k++) {
    if (!Number.isFinite(x.data[k])) throw new RangeError(`${name} is not finite: element ${k} is ${x.data[k]}`);
  }
}

/**
 * The generator a run uses: the caller's, or a new `TorchGenerator` from `seed` (random when absent).
 *
 * @param options `generator` or `seed`
 * @returns the generator and the seed it was made from (when made here)
 * @example
 * ```ts
 * import { resolveGenerator, TorchGenerator } from "../../mod.ts";
 * const { generator, seed } = resolveGenerator({ seed: 7 });
 * if (seed !== 7 || generator.randn([3]).data.join() !== new TorchGenerator(7).randn([3]).data.join()) {
 *   throw new Error("seed 7 should give torch.manual_seed(7)'s stream");
 * }
 * ```
 */
export function resolveGenerator(options: { generator?: RandnGenerator; seed?: number }): {
  generator: RandnGenerator;
  seed?: number;
} {
  if (options.generator !== undefined) {
    const missing = (["randn", "fillRandn"] as const).filter((m) => typeof options.generator?.[m] !== "function");
    if (missing.length > 0) {
      throw new TypeError(
        `generator must have randn(shape) and fillRandn(data) methods, as TorchGenerator does; it lacks ${
          missing.join(" and ")
        }`,
      );
    }
    return { generator: options.generator };
  }
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 32);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed must be a safe integer >= 0, got ${seed}`);
  return { generator: new TorchGenerator(seed), seed };
}

/**
 * A copy of a scheduler with `clip_sample` set, made from its config with its own class's `fromConfig`.
 *
 * @param scheduler the scheduler to copy
 * @param clipSample the new `clip_sample`
 * @returns a new scheduler of the same class
 * @throws TypeError when the scheduler's class has no `fromConfig`
 * @example
 * ```ts
 * import { configOf, DDIMScheduler, withClipSample } from "../../mod.ts";
 * const unclipped = withClipSample(DDIMScheduler.fromConfig({}), false);
 * if (configOf(unclipped).clip_sample !== false) throw new Error("clip_sample should be off");
 * ```
 */
export function withClipSample<S extends PipelineScheduler>(scheduler: S, clipSample: boolean): S {
  return withConfig(scheduler, { clip_sample: clipSample });
}

/**
 * A copy of a scheduler with some config keys replaced, made with its own class's `fromConfig`.
 *
 * @param scheduler the scheduler to copy
 * @param changes snake_case config keys and their new values
 * @returns a new scheduler of the same class
 * @throws TypeError when the scheduler's class has no `fromConfig`
 * @example
 * ```ts
 * import { configOf, DDIMScheduler, withConfig } from "../../mod.ts";
 * const trailing = withConfig(DDIMScheduler.fromConfig({}), { timestep_spacing: "trailing" });
 * if (configOf(trailing).timestep_spacing !== "trailing") throw new Error("the spacing did not change");
 * ```
 */
export function withConfig<S extends PipelineScheduler>(scheduler: S, changes: Record<string, unknown>): S {
  const factory = (scheduler.constructor as unknown as { fromConfig?: (config: object) => S }).fromConfig;
  if (typeof factory !== "function") {
    throw new TypeError(`The scheduler ${scheduler.constructor?.name} has no static fromConfig to copy it with`);
  }
  return factory.call(scheduler.constructor, { ...configOf(scheduler), ...changes });
}

/**
 * A scheduler's config in diffusers' snake_case form (`toConfig()` when it has one, else `config`).
 *
 * @param scheduler the scheduler
 * @returns a plain object of snake_case keys
 * @example
 * ```ts
 * import { configOf, DDIMScheduler } from "../../mod.ts";
 * // diffusers' DDIMScheduler default: num_train_timesteps = 1000
 * if (configOf(DDIMScheduler.fromConfig({})).num_train_timesteps !== 1000) throw new Error("expected 1000");
 * ```
 */
export function configOf(scheduler: PipelineScheduler): Record<string, unknown> {
  const withToConfig = scheduler as unknown as { toConfig?: () => Record<string, unknown> };
  if (typeof withToConfig.toConfig === "function") return withToConfig.toConfig();
  return { ...(scheduler.config as Record<string, unknown>) };
}

/**
 * Load a pipeline's model and scheduler from a checkpoint folder, a builtin name, or a bare `.onnx` file.
 *
 * A folder or builtin carries its `scheduler_config.json`; a bare `.onnx` file does not, so its scheduler is left
 * undefined and the pipeline uses diffusers' defaults.
 *
 * @param source a folder, an `.onnx` file, or `"builtin:NAME"`
 * @param options passed on to the model loader
 * @returns the model and, when the source has one, its scheduler
 * @example
 * ```ts
 * import { loadPipelineParts } from "../../mod.ts";
 * const { unet, scheduler } = await loadPipelineParts("builtin:shapes32");
 * if (unet.sampleSize !== 32 || scheduler === undefined) throw new Error("expected the model and its scheduler");
 * ```
 */
export async function loadPipelineParts(
  source: string,
  options: Record<string, unknown> = {},
): Promise<{ unet: DenoisingModel; scheduler?: PipelineScheduler }> {
  let isFile = false;
  try {
    isFile = typeof source === "string" && !source.startsWith("builtin:") && statSync(source).isFile();
  } catch {
    isFile = false;
  }
  if (isFile) return { unet: await loadUNet(source, options) };
  const { unet, scheduler } = await fromPretrained(source, options);
  return { unet, scheduler: scheduler as PipelineScheduler };
}

/** x_T times the scheduler's `initNoiseSigma` in float32, as diffusers' pipelines scale their latents (1: as is). */
function scaleByInitNoiseSigma(xT: Tensor, initNoiseSigma: number | undefined): Tensor {
  if (initNoiseSigma === 1 || initNoiseSigma === undefined) return xT;
  if (typeof initNoiseSigma !== "number" || !(initNoiseSigma > 0 && initNoiseSigma < Infinity)) {
    throw new RangeError(`The scheduler's initNoiseSigma must be a positive finite number, got ${initNoiseSigma}`);
  }
  return new Tensor(xT.data.map((v) => v * initNoiseSigma), xT.shape);
}

function trajectoryEvery(trajectory: boolean | number | undefined): number {
  if (trajectory === undefined || trajectory === false) return 0;
  if (trajectory === true) return 1;
  if (!Number.isInteger(trajectory) || trajectory < 1) {
    throw new RangeError(`trajectory must be true, false or a positive step interval, got ${trajectory}`);
  }
  return trajectory;
}
