/**
 * The ONNX adapter: a UNet eps_theta(x_t, t) run by onnxruntime-node, one adapter for every ONNX UNet this package
 * runs (an exported `.onnx` file, a graph compiled from a checkpoint, an embedded exact denoiser).
 *
 * | paper      | code              | meaning                                          |
 * |------------|-------------------|--------------------------------------------------|
 * | x_t        | `sample`          | the noisy batch, NCHW float32                    |
 * | t          | `timestep`        | a training timestep (or sigma for score-SDE)     |
 * | eps_theta  | `predict`         | the UNet's output, NCHW float32                  |
 *
 * The graph's input and output names, the timestep's dtype and rank and a fixed or dynamic batch are read from the
 * file (`readSignature`). Loading from a path, a checkpoint folder or `builtin:NAME` is `load.ts`'s job; compiling a
 * checkpoint to ONNX and caching it is `checkpoint_compile.ts`'s.
 *
 * @module
 */
import * as ort from "onnxruntime-node";
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import type { DenoisingModel } from "../core/model.ts";
import { Tensor } from "../core/tensor.ts";
import { describeValue } from "./_describe_value.ts";

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
 * if (eps.shape.join() !== "1,3,16,16" || !eps.data.every(Number.isFinite)) throw new Error(`got [${eps.shape}]`);
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
   * const unet = await OnnxUNet.fromBytes(readFileSync("test/fixtures/unet/tiny-ddpm/model.onnx"), { sampleSize: 16 });
   * unet.dispose();
   * // torch.onnx.export wrote this file with an int64 timestep per batch item and a dynamic batch
   * if (unet.signature.timestepType !== "int64" || unet.signature.batch !== "dynamic") throw new Error("wrong signature");
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
   * const unet = await OnnxUNet.fromFile("test/fixtures/unet/tiny-ddpm/model.onnx", { sampleSize: 16 });
   * unet.dispose();
   * if (unet.inChannels !== 3 || unet.outChannels !== 3) throw new Error("an RGB UNet takes and gives 3 channels");
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
   * unet.dispose();
   * if (eps.shape.join() !== "2,3,32,32") throw new Error(`one prediction per item, got [${eps.shape}]`);
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
   * import { loadUNet, Tensor } from "../../mod.ts";
   * const unet = await loadUNet("builtin:ring2d");
   * unet.dispose();
   * const after = await unet.predict(Tensor.zeros([1, 2, 1, 1]), 10).then(() => "ran", (error) => String(error));
   * if (!after.includes("disposed")) throw new Error(`predict after dispose: ${after}`);
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
 * const s = await ort.InferenceSession.create("test/fixtures/unet/tiny-ddpm/model.onnx");
 * const signature = readSignature(s);
 * await s.release();
 * // the names torch.onnx.export was given for this fixture (test/fixtures/unet/tiny-ddpm/README.txt)
 * if (signature.sampleName !== "sample" || signature.timestepType !== "int64") throw new Error("wrong signature");
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
