/**
 * The loader: a UNet eps_theta(x_t, t) from a path, and a pipeline's UNet plus scheduler.
 *
 * | paper      | code              | meaning                                                     |
 * |------------|-------------------|-------------------------------------------------------------|
 * | eps_theta  | `loadUNet`        | the model, from a file, a folder or `builtin:NAME`          |
 * | (scheduler)| `fromPretrained`  | the model plus the scheduler `scheduler_config.json` names  |
 *
 * `loadUNet` accepts an exported `.onnx` file (run as it is by `onnx_unet.ts`), a diffusers `UNet2DModel` folder
 * (`config.json` plus `diffusion_pytorch_model.safetensors` or `.bin`, compiled and cached by
 * `checkpoint_compile.ts`), a pipeline folder (its `unet/`), or `builtin:NAME` for the embedded exact denoisers and
 * the shipped trained checkpoints. `fromPretrained` adds the scheduler named by `scheduler_config.json`.
 *
 * @module
 */
import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { readJson, userCacheDir, WEIGHT_FILES } from "./_checkpoint_files.ts";
import { describeValue } from "./_describe_value.ts";
import { builtinCheckpointFolder, builtinModel } from "./builtin_models.ts";
import { compileCheckpoint } from "./checkpoint_compile.ts";
import { OnnxUNet, type UNetFacts, type UNetRuntimeOptions } from "./onnx_unet.ts";
import { parseUNetConfig, type UNet2DConfig } from "./unet_config.ts";
import { type PretrainedScheduler, schedulerFromConfig } from "../schedulers/registry.ts";

/** Options of `loadUNet` and `fromPretrained`. */
export interface LoadUNetOptions extends UNetRuntimeOptions {
  /**
   * Where the ONNX graph compiled from a checkpoint is cached, keyed on the weights, the config and the compiler's
   * code, and verified by SHA-256 before use: a folder, or `false` to compile in memory every time. Default: next
   * to the checkpoint when that folder is writable, else `$DDIMLAB_CACHE/unet/<folder>` (`~/.cache/ddimlab/unet/`).
   */
  cacheDir?: string | false;
  /** Override the spatial size (needed for an `.onnx` file with dynamic height/width and no config.json). */
  sampleSize?: number | readonly [number, number];
  /** Override the input channels (for an `.onnx` file whose channel dimension is dynamic). */
  inChannels?: number;
  /** Override the output channels. */
  outChannels?: number;
}

const BUILTIN_PREFIX = "builtin:";

/**
 * Load a UNet as a `DenoisingModel`: an `.onnx` file, a diffusers UNet2DModel folder (or its weight file), a
 * pipeline folder (its `unet/`), or `builtin:NAME`.
 *
 * eps = eps_theta(x_t, t)
 *
 * A checkpoint's graph is compiled by `compileUNet` and cached as `unet-<hash>.onnx`, where the hash covers the
 * weights, the config and the compiler's code (so changed weights or a changed compiler are recompiled). A cached
 * graph is used only when its sidecar `unet-<hash>.onnx.json` names that hash and the graph's SHA-256 matches.
 *
 * @param path the file, the folder, or `builtin:NAME`
 * @param options onnxruntime settings, `cacheDir`, and facts for a bare `.onnx` file
 * @returns the loaded model (call `dispose()` when done)
 * @throws Error naming the missing file, the unsupported config key and value, the missing weight or wrong shape
 * @example
 * ```ts
 * import { loadUNet, Tensor } from "../../mod.ts";
 * const unet = await loadUNet("test/fixtures/unet/tiny-ddpm", { cacheDir: false });
 * const eps = await unet.predict(Tensor.zeros([1, 3, 16, 16]), 999);
 * unet.dispose();
 * if (eps.shape.join() !== "1,3,16,16" || !eps.data.every(Number.isFinite)) throw new Error(`got [${eps.shape}]`);
 * ```
 */
export async function loadUNet(path: string, options: LoadUNetOptions = {}): Promise<OnnxUNet> {
  if (typeof path !== "string" || path.length === 0) {
    throw new TypeError(`loadUNet needs a path, got ${describeValue(path)}`);
  }
  if (path.startsWith(BUILTIN_PREFIX)) return (await loadBuiltin(path, options)).unet;
  if (!existsSync(path)) throw new Error(`No UNet at ${path}: the path does not exist`);
  if (statSync(path).isFile()) {
    if (path.endsWith(".onnx")) return await loadOnnxFile(path, options);
    if (WEIGHT_FILES.some((w) => path.endsWith(w)) || /\.(safetensors|bin)$/.test(path)) {
      return await loadCheckpoint(dirname(path), path, options);
    }
    throw new Error(`Cannot load a UNet from ${path}: expected an .onnx, .safetensors or .bin file, or a folder`);
  }
  const dir = path;
  if (
    existsSync(join(dir, "model_index.json")) ||
    (!existsSync(join(dir, "config.json")) && existsSync(join(dir, "unet")))
  ) {
    if (!existsSync(join(dir, "unet"))) throw new Error(`Pipeline folder ${dir} has no unet/ folder`);
    return await loadUNet(join(dir, "unet"), options);
  }
  const weights = WEIGHT_FILES.map((w) => join(dir, w)).find((w) => existsSync(w));
  if (weights !== undefined) return await loadCheckpoint(dir, weights, options);
  for (const onnxName of ["model.onnx", "unet.onnx"]) {
    if (existsSync(join(dir, onnxName))) return await loadOnnxFile(join(dir, onnxName), options);
  }
  throw new Error(
    `No UNet in ${dir}: expected config.json with ${
      WEIGHT_FILES.join(" or ")
    }, a model.onnx, or a pipeline's unet/ folder`,
  );
}

/** What `fromPretrained` returns. */
export interface Pretrained<Scheduler = PretrainedScheduler> {
  /** The UNet. */
  unet: OnnxUNet;
  /** The scheduler built with the class `scheduler_config.json` names. */
  scheduler: Scheduler;
}

/**
 * Load a pipeline's UNet and scheduler: a folder with `model_index.json`, `unet/` and `scheduler/`, the
 * google/ddpm-* layout (`config.json` and `scheduler_config.json` side by side), or `builtin:NAME`.
 *
 * scheduler = SchedulerClass.fromConfig(scheduler_config.json), SchedulerClass named by its `_class_name`
 *
 * @param dir the folder or `builtin:NAME`
 * @param options as for `loadUNet`
 * @returns `{ unet, scheduler }`
 * @throws Error when the scheduler config is missing or names an unsupported class
 * @example
 * ```ts
 * import { fromPretrained } from "../../mod.ts";
 * const { unet, scheduler } = await fromPretrained("builtin:gaussian32");
 * unet.dispose();
 * // the builtin models carry diffusers' DDPM scheduler config
 * if (scheduler.constructor.name !== "DDPMScheduler" || unet.sampleSize !== 32) throw new Error("unexpected parts");
 * ```
 */
export async function fromPretrained(dir: string, options: LoadUNetOptions = {}): Promise<Pretrained> {
  if (typeof dir !== "string" || dir.length === 0) {
    throw new TypeError(`fromPretrained needs a folder, got ${describeValue(dir)}`);
  }
  if (dir.startsWith(BUILTIN_PREFIX)) {
    const { unet, schedulerConfig } = await loadBuiltin(dir, options);
    return { unet, scheduler: schedulerFromConfig(schedulerConfig, { source: dir }) };
  }
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new Error(`fromPretrained needs a folder; ${dir} is not one`);
  }
  const candidates = [join(dir, "scheduler", "scheduler_config.json"), join(dir, "scheduler_config.json")];
  const schedulerPath = candidates.find((p) => existsSync(p));
  if (schedulerPath === undefined) {
    throw new Error(`No scheduler config in ${dir}: expected scheduler/scheduler_config.json or scheduler_config.json`);
  }
  const schedulerConfig = readJson(schedulerPath);
  const unet = await loadUNet(existsSync(join(dir, "unet")) ? join(dir, "unet") : dir, options);
  try {
    return { unet, scheduler: schedulerFromConfig(schedulerConfig, { source: schedulerPath }) };
  } catch (error) {
    unet.dispose();
    throw error;
  }
}

async function loadBuiltin(path: string, options: LoadUNetOptions) {
  const checkpoint = await builtinCheckpointFolder(path);
  if (checkpoint !== undefined) {
    // A shipped trained checkpoint: the same compiler as a downloaded folder, its graph cached outside the package.
    const cacheDir = options.cacheDir ?? userCacheDir(checkpoint);
    const unet = await loadUNet(checkpoint, { ...options, cacheDir });
    return { unet, schedulerConfig: readJson(join(checkpoint, "scheduler_config.json")) };
  }
  const model = await builtinModel(path, options.cacheDir === undefined ? {} : { cacheDir: options.cacheDir });
  const unet = await OnnxUNet.fromBytes(model.onnx, {
    sampleSize: model.config.sample_size,
    inChannels: model.config.in_channels,
    outChannels: model.config.out_channels,
    config: model.config,
    timestepCount: model.schedulerConfig.num_train_timesteps,
  }, options);
  return { unet, schedulerConfig: model.schedulerConfig as Record<string, unknown> };
}

async function loadOnnxFile(path: string, options: LoadUNetOptions): Promise<OnnxUNet> {
  const configPath = join(dirname(path), "config.json");
  let facts: UNetFacts = {};
  if (existsSync(configPath)) {
    const raw = readJson(configPath);
    if (raw._class_name === "UNet2DModel") facts = factsOf(parseUNetConfig(raw, configPath));
    else {
      facts = {
        config: raw,
        ...(typeof raw.sample_size === "number" ? { sampleSize: raw.sample_size } : {}),
        ...(typeof raw.in_channels === "number" ? { inChannels: raw.in_channels } : {}),
        ...(typeof raw.out_channels === "number" ? { outChannels: raw.out_channels } : {}),
      };
    }
  }
  return await OnnxUNet.fromFile(path, withOverrides(facts, options), options);
}

function factsOf(config: UNet2DConfig): UNetFacts {
  return {
    sampleSize: config.sampleSize,
    inChannels: config.inChannels,
    outChannels: config.outChannels,
    config: config.raw,
    sizeMultiple: 2 ** (config.blockOutChannels.length - 1),
  };
}

function withOverrides(facts: UNetFacts, options: LoadUNetOptions): UNetFacts {
  return {
    ...facts,
    ...(options.sampleSize !== undefined ? { sampleSize: options.sampleSize } : {}),
    ...(options.inChannels !== undefined ? { inChannels: options.inChannels } : {}),
    ...(options.outChannels !== undefined ? { outChannels: options.outChannels } : {}),
  };
}

async function loadCheckpoint(dir: string, weightsFile: string, options: LoadUNetOptions): Promise<OnnxUNet> {
  const cacheDir = options.cacheDir;
  const compiled = compileCheckpoint(dir, { weightsFile, ...(cacheDir !== undefined ? { cacheDir } : {}) });
  const facts = withOverrides(factsOf(compiled.config), options);
  if (compiled.fromCache) {
    try {
      return await OnnxUNet.fromBytes(compiled.onnx, facts, options);
    } catch {
      // intact bytes that onnxruntime still refuses (another onnxruntime version, say): recompiled below
    }
  }
  const onnx = compiled.fromCache
    ? compileCheckpoint(dir, { weightsFile, refresh: true, ...(cacheDir !== undefined ? { cacheDir } : {}) }).onnx
    : compiled.onnx;
  return await OnnxUNet.fromBytes(onnx, facts, options);
}
