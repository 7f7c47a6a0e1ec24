/**
 * The UNet eps_theta(x_t, t) run by onnxruntime-node: one adapter for every ONNX UNet this package runs.
 *
 * | paper      | code              | meaning                                          |
 * |------------|-------------------|--------------------------------------------------|
 * | x_t        | `sample`          | the noisy batch, NCHW float32                    |
 * | t          | `timestep`        | a training timestep (or sigma for score-SDE)     |
 * | eps_theta  | `predict`         | the UNet's output, NCHW float32                  |
 *
 * `loadUNet` accepts an exported `.onnx` file (its input and output names, the timestep's dtype and rank and a
 * fixed or dynamic batch are read from the file), a diffusers `UNet2DModel` folder (`config.json` plus
 * `diffusion_pytorch_model.safetensors` or `.bin`, compiled to ONNX in TypeScript by `unet_onnx.ts` and cached),
 * or `builtin:NAME` for the embedded exact denoisers. `fromPretrained` adds the scheduler named by
 * `scheduler_config.json`.
 *
 * @module
 */
import * as ort from "onnxruntime-node";
import { createHash } from "node:crypto";
import { accessSync, constants, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { availableParallelism, homedir } from "node:os";
import { basename, dirname, join } from "node:path";
import { codeFingerprint, readCache, writeCache } from "./_cache.ts";
import { builtinCheckpointFolder, builtinModel } from "./builtin_models.ts";
import type { DenoisingModel } from "../core/model.ts";
import { Tensor } from "../core/tensor.ts";
import { parseSafetensors } from "./safetensors.ts";
import { parseTorchCheckpoint } from "./torch_checkpoint.ts";
import { parseUNetConfig, type UNet2DConfig } from "./unet_config.ts";
import { type PretrainedScheduler, schedulerFromConfig } from "../schedulers/registry.ts";
import { compileUNet, UNET_COMPILER_VERSION, weightsFromTensors } from "./unet_onnx.ts";

/** How onnxruntime should run the UNet. */
export interface UNetRuntimeOptions {
  /** `"cpu"` (default) or `"webgpu"` (a clear error where the machine has no WebGPU adapter). */
  executionProvider?: "cpu" | "webgpu";
  /**
   * Threads inside one operator. Default: every core this process may use (`os.availableParallelism()`); `0`
   * leaves the choice to onnxruntime, whose own default ran one thread on a 2-core machine (1.7x slower there).
   */
  intraOpNumThreads?: number;
  /** Threads across operators (used with `executionMode: "parallel"`). */
  interOpNumThreads?: number;
  /** onnxruntime graph optimisation level (default `"all"`). */
  graphOptimizationLevel?: "disabled" | "basic" | "extended" | "layout" | "all";
  /** `"sequential"` (default) or `"parallel"` operator scheduling. */
  executionMode?: "sequential" | "parallel";
  /** Use onnxruntime's CPU memory arena (default true). */
  enableCpuMemArena?: boolean;
  /**
   * Plan memory reuse from the first run's shapes (default false: with the plan on, every run of a 256x256 UNet
   * took ~25,000 fresh page faults and was slower; onnxruntime's arena still reuses the memory without it).
   */
  enableMemPattern?: boolean;
  /** Write the optimised graph onnxruntime actually runs to this path. */
  optimizedModelFilePath?: string;
  /** onnxruntime log severity, 0 (verbose) to 4 (fatal); default 3. */
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
  /** Any further onnxruntime session options, applied last. */
  sessionOptions?: ort.InferenceSession.SessionOptions;
}

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

/** What the adapter knows about a model besides its graph. */
export interface UNetFacts {
  /** The trained spatial size. */
  sampleSize?: number | readonly [number, number];
  /** Channels of x_t. */
  inChannels?: number;
  /** Channels of the prediction. */
  outChannels?: number;
  /** The config the model came from (diffusers' config.json, or a builtin model's config). */
  config?: Record<string, unknown>;
  /** Height and width must be multiples of this (2^downsamplings for a UNet); default 1. */
  sizeMultiple?: number;
  /**
   * When set, timesteps must be integers in [0, timestepCount): the graph looks them up in a table of that length
   * (the embedded exact models hold the scheduler's alphaBar table). A UNet's sinusoidal embedding takes any value.
   */
  timestepCount?: number;
}

/** How an ONNX UNet wants its inputs, read from the file. */
export interface OnnxUNetSignature {
  /** The float32 NCHW input's name. */
  sampleName: string;
  /** The timestep input's name. */
  timestepName: string;
  /** The output's name. */
  outputName: string;
  /** The timestep's element type. */
  timestepType: "int64" | "int32" | "float32" | "float64";
  /** 0: one scalar timestep for the batch; 1: one per batch item. */
  timestepRank: 0 | 1;
  /** A fixed batch size, or `"dynamic"`. */
  batch: number | "dynamic";
  /** The sample's fixed dimensions (numbers) or names of dynamic ones. */
  sampleShape: readonly (number | string)[];
  /** The output's fixed dimensions or names of dynamic ones. */
  outputShape: readonly (number | string)[];
}

/**
 * A UNet run by onnxruntime-node, usable wherever a `DenoisingModel` is expected.
 *
 * eps = eps_theta(x_t, t), computed by one `InferenceSession.run`
 *
 * @example
 * ```ts
 * import { OnnxUNet, Tensor } from "../../mod.ts";
 * import { readFileSync } from "node:fs";
 * const bytes = readFileSync("test/fixtures/unet/tiny-ddpm/model.onnx");
 * const unet = await OnnxUNet.fromBytes(bytes, { sampleSize: 16 });
 * const eps = await unet.predict(Tensor.zeros([1, 3, 16, 16]), 999);
 * unet.dispose();
 * ```
 */
export class OnnxUNet implements DenoisingModel {
  /** The trained spatial size. */
  readonly sampleSize: number | readonly [number, number];
  /** Channels of x_t. */
  readonly inChannels: number;
  /** Channels of the prediction. */
  readonly outChannels: number;
  /** The config the model came from (empty when only an .onnx file was given). */
  readonly config: Record<string, unknown>;
  /** The input/output names, timestep type and batch read from the graph. */
  readonly signature: OnnxUNetSignature;
  /** The onnxruntime session (for advanced use: profiling, IO binding). */
  readonly session: ort.InferenceSession;
  readonly #sizeMultiple: number;
  readonly #timestepCount: number | undefined;
  #disposed = false;

  private constructor(session: ort.InferenceSession, signature: OnnxUNetSignature, facts: UNetFacts) {
    this.session = session;
    this.signature = signature;
    const dims = signature.sampleShape;
    const outDims = signature.outputShape;
    const inChannels = facts.inChannels ?? (typeof dims[1] === "number" ? dims[1] : undefined);
    if (inChannels === undefined) {
      throw new Error(`The ONNX UNet's channel dimension is dynamic (${dims[1]}): pass inChannels`);
    }
    this.inChannels = inChannels;
    this.outChannels = facts.outChannels ?? (typeof outDims[1] === "number" ? outDims[1] : inChannels);
    let sampleSize = facts.sampleSize;
    if (sampleSize === undefined && typeof dims[2] === "number" && typeof dims[3] === "number") {
      sampleSize = dims[2] === dims[3] ? dims[2] : [dims[2], dims[3]];
    }
    if (sampleSize === undefined) {
      throw new Error(
        `The ONNX UNet's height and width are dynamic (${dims[2]}, ${
          dims[3]
        }) and no config.json gives sample_size: pass sampleSize`,
      );
    }
    this.sampleSize = sampleSize;
    this.config = facts.config ?? {};
    this.#sizeMultiple = facts.sizeMultiple ?? 1;
    this.#timestepCount = facts.timestepCount;
  }

  /**
   * Build the adapter from ONNX bytes (an exported file's contents or a graph this package compiled).
   *
   * @param bytes the ONNX ModelProto
   * @param facts sample size, channels and config, where the graph does not fix them
   * @param options onnxruntime settings
   * @returns the ready model
   * @example
   * ```ts
   * import { OnnxUNet } from "../../mod.ts";
   * import { readFileSync } from "node:fs";
   * const unet = await OnnxUNet.fromBytes(readFileSync("model.onnx"), { sampleSize: 32 });
   * ```
   */
  static async fromBytes(
    bytes: Uint8Array,
    facts: UNetFacts = {},
    options: UNetRuntimeOptions = {},
  ): Promise<OnnxUNet> {
    if (!(bytes instanceof Uint8Array) || bytes.length === 0) {
      throw new TypeError(`OnnxUNet.fromBytes needs the non-empty bytes of an ONNX model, got ${describeValue(bytes)}`);
    }
    const session = await createSession(bytes, options, "the given bytes");
    return OnnxUNet.#wrap(session, facts);
  }

  /**
   * Build the adapter from an `.onnx` file on disk.
   *
   * @param path the file
   * @param facts sample size, channels and config, where the graph does not fix them
   * @param options onnxruntime settings
   * @returns the ready model
   * @example
   * ```ts
   * import { OnnxUNet } from "../../mod.ts";
   * const unet = await OnnxUNet.fromFile("unet/model.onnx", { sampleSize: 32 });
   * ```
   */
  static async fromFile(path: string, facts: UNetFacts = {}, options: UNetRuntimeOptions = {}): Promise<OnnxUNet> {
    if (!existsSync(path)) throw new Error(`ONNX file not found: ${path}`);
    const session = await createSession(path, options, path);
    return OnnxUNet.#wrap(session, facts);
  }

  static #wrap(session: ort.InferenceSession, facts: UNetFacts): OnnxUNet {
    try {
      return new OnnxUNet(session, readSignature(session), facts);
    } catch (error) {
      void session.release();
      throw error;
    }
  }

  /**
   * Predict eps_theta(x_t, t) for a batch.
   *
   * @param sample x_t, shape [batch, inChannels, height, width]
   * @param timestep one timestep for the batch, or one per item
   * @returns the prediction, shape [batch, outChannels, height, width]
   * @example
   * ```ts
   * import { loadUNet, Tensor } from "../../mod.ts";
   * const unet = await loadUNet("builtin:shapes32");
   * const eps = await unet.predict(Tensor.zeros([2, 3, 32, 32]), [10, 725]);
   * ```
   */
  async predict(sample: Tensor, timestep: number | readonly number[]): Promise<Tensor> {
    if (this.#disposed) throw new Error("This UNet was disposed; load it again");
    const [batch, height, width] = this.#checkSample(sample);
    const timesteps = this.#checkTimesteps(timestep, batch);
    const sig = this.signature;
    const uniform = timesteps.every((t) => t === timesteps[0]);
    // Run the batch in chunks: a fixed batch size, or one item at a time when the model takes a single scalar
    // timestep and the batch's timesteps differ. A short chunk is padded by repeating its last item.
    let chunk = batch;
    if (sig.timestepRank === 0 && !uniform) chunk = 1;
    const runBatch = sig.batch === "dynamic" ? chunk : sig.batch;
    if (sig.batch !== "dynamic" && chunk > sig.batch) chunk = sig.batch;
    const itemIn = this.inChannels * height * width;
    let out: Float32Array | undefined;
    let outShape: number[] = [];
    for (let start = 0; start < batch; start += chunk) {
      const count = Math.min(chunk, batch - start);
      const x = new Float32Array(runBatch * itemIn);
      for (let i = 0; i < runBatch; i++) {
        const src = start + Math.min(i, count - 1);
        x.set(sample.data.subarray(src * itemIn, (src + 1) * itemIn), i * itemIn);
      }
      const ts = Array.from({ length: runBatch }, (_, i) => timesteps[start + Math.min(i, count - 1)]);
      const feeds: Record<string, ort.Tensor> = {
        [sig.sampleName]: new ort.Tensor("float32", x, [runBatch, this.inChannels, height, width]),
        [sig.timestepName]: timestepTensor(sig, ts),
      };
      const result = await this.session.run(feeds);
      const y = result[sig.outputName];
      const dims = y.dims as readonly number[];
      if (dims.length !== 4 || dims[0] !== runBatch) {
        throw new Error(
          `The ONNX UNet returned ${sig.outputName} with shape [${dims.join(", ")}], expected [${runBatch}, C, H, W]`,
        );
      }
      const data = y.data as Float32Array;
      const itemOut = dims[1] * dims[2] * dims[3];
      if (out === undefined) {
        if (start === 0 && count === batch && runBatch === batch) {
          return new Tensor(data instanceof Float32Array ? data : Float32Array.from(data), dims);
        }
        out = new Float32Array(batch * itemOut);
        outShape = [batch, dims[1], dims[2], dims[3]];
      }
      out.set(data.subarray(0, count * itemOut), start * itemOut);
    }
    return new Tensor(out as Float32Array, outShape);
  }

  /**
   * Release the onnxruntime session; `predict` fails afterwards.
   *
   * @example
   * ```ts
   * import { loadUNet } from "../../mod.ts";
   * const unet = await loadUNet("builtin:ring2d");
   * unet.dispose();
   * ```
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    void this.session.release();
  }

  #checkSample(sample: Tensor): [number, number, number] {
    if (!(sample instanceof Tensor)) throw new TypeError(`predict needs a Tensor sample, got ${describeValue(sample)}`);
    if (sample.shape.length !== 4) {
      throw new RangeError(
        `The sample must have shape [batch, ${this.inChannels}, height, width], got [${sample.shape.join(", ")}]`,
      );
    }
    const [batch, channels, height, width] = sample.shape;
    if (batch < 1) throw new RangeError(`The sample's batch is empty: shape [${sample.shape.join(", ")}]`);
    if (channels !== this.inChannels) {
      throw new RangeError(
        `The sample has ${channels} channels but the UNet takes ${this.inChannels}: shape [${sample.shape.join(", ")}]`,
      );
    }
    const dims = this.signature.sampleShape;
    for (const [axis, size, name] of [[2, height, "height"], [3, width, "width"]] as const) {
      const fixed = dims[axis];
      if (typeof fixed === "number" && fixed !== size) {
        throw new RangeError(`The sample's ${name} is ${size} but this ONNX UNet only takes ${fixed}`);
      }
      if (size < 1 || size % this.#sizeMultiple !== 0) {
        throw new RangeError(
          `The sample's ${name} ${size} does not fit the UNet: it must be a positive multiple of ${this.#sizeMultiple} (2^downsamplings)`,
        );
      }
    }
    return [batch, height, width];
  }

  #checkTimesteps(timestep: number | readonly number[], batch: number): number[] {
    const list = typeof timestep === "number" ? [timestep] : Array.isArray(timestep) ? [...timestep] : undefined;
    if (list === undefined) {
      throw new TypeError(`The timestep must be a number or an array of numbers, got ${describeValue(timestep)}`);
    }
    if (list.length !== 1 && list.length !== batch) {
      throw new RangeError(`Got ${list.length} timesteps for a batch of ${batch}: give one, or one per item`);
    }
    for (const t of list) {
      if (typeof t !== "number" || !Number.isFinite(t)) {
        throw new RangeError(`A timestep must be a finite number, got ${t}`);
      }
      const integral = this.signature.timestepType === "int64" || this.signature.timestepType === "int32";
      if (integral && !Number.isInteger(t)) {
        throw new RangeError(`This UNet takes ${this.signature.timestepType} timesteps but got ${t}`);
      }
      const count = this.#timestepCount;
      if (count !== undefined && !(Number.isInteger(t) && t >= 0 && t < count)) {
        throw new RangeError(`This model takes integer timesteps from 0 to ${count - 1}, got ${t}`);
      }
    }
    return list.length === batch ? list : Array.from({ length: batch }, () => list[0]);
  }
}

function timestepTensor(sig: OnnxUNetSignature, ts: number[]): ort.Tensor {
  const dims = sig.timestepRank === 0 ? [] : [ts.length];
  const values = sig.timestepRank === 0 ? [ts[0]] : ts;
  switch (sig.timestepType) {
    case "int64":
      return new ort.Tensor("int64", BigInt64Array.from(values.map((t) => BigInt(t))), dims);
    case "int32":
      return new ort.Tensor("int32", Int32Array.from(values), dims);
    case "float64":
      return new ort.Tensor("float64", Float64Array.from(values), dims);
    default:
      return new ort.Tensor("float32", Float32Array.from(values), dims);
  }
}

/**
 * Read an ONNX UNet's input and output names, timestep dtype and rank, and batch from a session.
 *
 * The sample is the float32 rank-4 input; the timestep is the other input (rank 0 or 1).
 *
 * @param session a loaded onnxruntime session
 * @returns the signature the adapter feeds
 * @example
 * ```ts
 * import * as ort from "onnxruntime-node";
 * import { readSignature } from "../../mod.ts";
 * const s = await ort.InferenceSession.create("model.onnx");
 * readSignature(s).timestepType; // "int64"
 * ```
 */
export function readSignature(session: ort.InferenceSession): OnnxUNetSignature {
  const inputs = session.inputMetadata;
  const outputs = session.outputMetadata;
  const describeIo = (m: readonly ort.InferenceSession.ValueMetadata[]) =>
    m.map((v) => (v.isTensor ? `${v.name}: ${v.type}[${v.shape.join(", ")}]` : `${v.name}: non-tensor`)).join("; ");
  if (inputs.length !== 2) {
    throw new Error(
      `An ONNX UNet2DModel has two inputs (sample, timestep); this file has ${inputs.length}: ${describeIo(inputs)}` +
        (inputs.some((v) => v.name.includes("encoder_hidden_states"))
          ? " (a conditional UNet2DConditionModel is not supported)"
          : ""),
    );
  }
  const tensors = inputs.filter((v): v is ort.InferenceSession.TensorValueMetadata => v.isTensor);
  if (tensors.length !== 2) throw new Error(`The ONNX UNet's inputs must be tensors: ${describeIo(inputs)}`);
  let sample = tensors.find((v) => v.type === "float32" && v.shape.length === 4);
  sample ??= tensors.find((v) => v.name.includes("sample"));
  if (sample === undefined || sample.type !== "float32" || sample.shape.length !== 4) {
    throw new Error(
      `No float32 [batch, channels, height, width] sample input in this ONNX UNet: ${describeIo(inputs)}`,
    );
  }
  const timestep = tensors.find((v) => v !== sample)!;
  const types = ["int64", "int32", "float32", "float64"];
  if (!types.includes(timestep.type)) {
    throw new Error(`The timestep input ${timestep.name} has type ${timestep.type}; supported: ${types.join(", ")}`);
  }
  if (timestep.shape.length > 1) {
    throw new Error(
      `The timestep input ${timestep.name} has rank ${timestep.shape.length} ([${
        timestep.shape.join(", ")
      }]); expected a scalar or [batch]`,
    );
  }
  const firstOut = outputs[0];
  if (firstOut === undefined || !firstOut.isTensor || firstOut.type !== "float32") {
    throw new Error(`The ONNX UNet's first output must be a float32 tensor: ${describeIo(outputs)}`);
  }
  const batchDim = sample.shape[0];
  const tsBatch = timestep.shape.length === 1 ? timestep.shape[0] : undefined;
  const batch = typeof batchDim === "number" ? batchDim : typeof tsBatch === "number" ? tsBatch : "dynamic";
  return {
    sampleName: sample.name,
    timestepName: timestep.name,
    outputName: firstOut.name,
    timestepType: timestep.type as OnnxUNetSignature["timestepType"],
    timestepRank: timestep.shape.length as 0 | 1,
    batch,
    sampleShape: [...sample.shape],
    outputShape: firstOut.shape.length === 4 ? [...firstOut.shape] : [...sample.shape],
  };
}

async function createSession(
  model: Uint8Array | string,
  options: UNetRuntimeOptions,
  what: string,
): Promise<ort.InferenceSession> {
  const provider = options.executionProvider ?? "cpu";
  if (provider !== "cpu" && provider !== "webgpu") {
    throw new RangeError(`Unknown executionProvider ${JSON.stringify(provider)}; use "cpu" or "webgpu"`);
  }
  for (const key of ["intraOpNumThreads", "interOpNumThreads"] as const) {
    const n = options[key];
    if (n !== undefined && (!Number.isInteger(n) || n < 0)) {
      throw new RangeError(`${key} must be a non-negative integer, got ${n}`);
    }
  }
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    executionProviders: [provider],
    graphOptimizationLevel: options.graphOptimizationLevel ?? "all",
    logSeverityLevel: options.logSeverityLevel ?? 3,
    intraOpNumThreads: options.intraOpNumThreads ?? availableParallelism(),
    ...(options.interOpNumThreads !== undefined ? { interOpNumThreads: options.interOpNumThreads } : {}),
    ...(options.executionMode !== undefined ? { executionMode: options.executionMode } : {}),
    ...(options.enableCpuMemArena !== undefined ? { enableCpuMemArena: options.enableCpuMemArena } : {}),
    enableMemPattern: options.enableMemPattern ?? false,
    ...(options.optimizedModelFilePath !== undefined ? { optimizedModelFilePath: options.optimizedModelFilePath } : {}),
    ...options.sessionOptions,
  };
  try {
    return typeof model === "string"
      ? await ort.InferenceSession.create(model, sessionOptions)
      : await ort.InferenceSession.create(model, sessionOptions);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (provider === "webgpu") {
      throw new Error(
        `The WebGPU execution provider is not available on this machine (${message}); use executionProvider "cpu"`,
      );
    }
    throw new Error(`onnxruntime could not load the UNet from ${what}: ${message}`);
  }
}

function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (typeof value === "object") return `a ${(value as object).constructor?.name ?? "object"}`;
  return `${typeof value} ${String(value)}`;
}

const BUILTIN_PREFIX = "builtin:";
const WEIGHT_FILES = ["diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"];

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

/**
 * Compile a UNet2DModel checkpoint folder to an `.onnx` file that `loadUNet` (or any onnxruntime) can load.
 *
 * The folder's config.json is copied next to the file when that folder has none, so the file reloads with its facts.
 *
 * @param dir the checkpoint folder (config.json + weights)
 * @param outPath where to write the `.onnx` file
 * @returns the path written
 * @example
 * ```ts
 * import { exportUNetOnnx, loadUNet } from "../../mod.ts";
 * const file = exportUNetOnnx("test/fixtures/unet/tiny-ddpm", "/tmp/tiny/unet.onnx");
 * const unet = await loadUNet(file);
 * ```
 */
export function exportUNetOnnx(dir: string, outPath: string): string {
  const { config, configPath, bytes, weightsPath } = readCheckpoint(dir);
  const onnxBytes = compileFromCheckpoint(config, bytes, weightsPath);
  mkdirSync(dirname(outPath), { recursive: true });
  writeFileSync(outPath, onnxBytes);
  const sidecar = join(dirname(outPath), "config.json");
  if (!existsSync(sidecar)) writeFileSync(sidecar, readFileSync(configPath));
  return outPath;
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

function readCheckpoint(dir: string, weightsFile?: string) {
  const configPath = join(dir, "config.json");
  if (!existsSync(configPath)) throw new Error(`No config.json in ${dir}: a UNet2DModel checkpoint needs one`);
  const config = parseUNetConfig(readJson(configPath), configPath);
  const weightsPath = weightsFile ?? WEIGHT_FILES.map((w) => join(dir, w)).find((w) => existsSync(w));
  if (weightsPath === undefined) throw new Error(`No weights in ${dir}: expected ${WEIGHT_FILES.join(" or ")}`);
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(weightsPath);
  } catch (error) {
    throw new Error(`Cannot read the weight file ${weightsPath}: ${error instanceof Error ? error.message : error}`);
  }
  return { config, configPath, weightsPath, bytes };
}

function compileFromCheckpoint(config: UNet2DConfig, bytes: Uint8Array, weightsPath: string): Uint8Array {
  const tensors = weightsPath.endsWith(".bin") || weightsPath.endsWith(".pt") || weightsPath.endsWith(".pth")
    ? parseTorchCheckpoint(bytes, weightsPath)
    : parseSafetensors(bytes, weightsPath).tensors;
  return compileUNet(config, weightsFromTensors(tensors, weightsPath));
}

async function loadCheckpoint(dir: string, weightsFile: string, options: LoadUNetOptions): Promise<OnnxUNet> {
  const { config, bytes, weightsPath } = readCheckpoint(dir, weightsFile);
  const facts = withOverrides(factsOf(config), options);
  // The key covers the code that compiles (its sources' fingerprint), the config and the weights' bytes.
  compilerFingerprint ??= codeFingerprint(COMPILER_MODULES, UNET_COMPILER_VERSION);
  const key = createHash("sha256")
    .update(UNET_COMPILER_VERSION)
    .update(compilerFingerprint)
    .update(JSON.stringify(config.raw, Object.keys(config.raw).sort()))
    .update(bytes)
    .digest("hex");
  const cacheDir = resolveCacheDir(options.cacheDir, dir);
  const cachePath = cacheDir === undefined ? undefined : join(cacheDir, `unet-${key.slice(0, 20)}.onnx`);
  // A cached graph is used only when its sidecar names this key and its SHA-256 matches; else it is recompiled.
  const cached = cachePath === undefined ? undefined : readCache(cachePath, key);
  if (cached !== undefined) {
    try {
      return await OnnxUNet.fromBytes(cached.bytes, facts, options);
    } catch {
      // intact bytes that onnxruntime still refuses (another onnxruntime version, say): recompiled below
    }
  }
  const onnxBytes = compileFromCheckpoint(config, bytes, weightsPath);
  // caching is an optimisation: an unwritable folder only costs a recompile next time
  if (cachePath !== undefined) writeCache(cachePath, key, onnxBytes);
  return await OnnxUNet.fromBytes(onnxBytes, facts, options);
}

/** The modules whose code compiles a checkpoint: any change to them changes the cache key. */
const COMPILER_MODULES = [
  "./unet_onnx.ts",
  "./onnx_graph.ts",
  "./unet_config.ts",
  "./safetensors.ts",
  "./torch_checkpoint.ts",
].map((path) => new URL(path, import.meta.url));
let compilerFingerprint: string | undefined;

function resolveCacheDir(option: string | false | undefined, checkpointDir: string): string | undefined {
  if (option === false) return undefined;
  if (typeof option === "string") return option;
  try {
    accessSync(checkpointDir, constants.W_OK);
    return checkpointDir;
  } catch {
    return userCacheDir(checkpointDir);
  }
}

/** The per-user cache folder of a checkpoint's compiled graph: `$DDIMLAB_CACHE/unet/NAME` or `~/.cache/ddimlab/...`. */
function userCacheDir(checkpointDir: string): string {
  const base = process.env.DDIMLAB_CACHE ?? join(homedir(), ".cache", "ddimlab");
  return join(base, "unet", basename(checkpointDir));
}

function readJson(path: string): Record<string, unknown> {
  try {
    const value = JSON.parse(readFileSync(path, "utf8"));
    if (value === null || typeof value !== "object" || Array.isArray(value)) throw new Error("not a JSON object");
    return value;
  } catch (error) {
    throw new Error(`Cannot read ${path}: ${error instanceof Error ? error.message : error}`);
  }
}
