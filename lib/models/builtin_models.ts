/**
 * The embedded exact models: ideal noise predictors eps* of known distributions, compiled to ONNX graphs.
 *
 * | maths                   | code                 | meaning                                                  |
 * |-------------------------|----------------------|----------------------------------------------------------|
 * | alphaBar_t              | `alphasCumprod[t]`   | the scheduler's table, stored inside the graph           |
 * | x_t                     | input `sample`       | [batch, C, H, W] float32                                 |
 * | t                       | input `timestep`     | [batch] int64, one training timestep per item, in [0, T) |
 * | eps*(x_t, t)            | output `out_sample`  | [batch, C, H, W] float32                                 |
 * | r_k = x_t - sqrt(alphaBar_t) mu_k | `residual` | per component, [K, batch, d]                             |
 * | q_k = Q_k^T r_k         | `coords`             | [K, batch, r]                                            |
 * | c_k, c_k + alphaBar lambda_kj | `isotropic`, `eigen` | the eigenvalues of C_k(t) (Woodbury)                 |
 * | w_k(x_t)                | `weights`            | posterior component probabilities (Softmax = log-sum-exp) |
 *
 * The graph evaluates eps*(x_t, t) = sqrt(1 - alphaBar_t) sum_k w_k C_k^{-1} r_k exactly as
 * `GaussianMixture.idealNoise` does (see lib/models/gaussian_mixture.ts), with no subtraction of nearly equal large numbers:
 * the part of r_k outside span(Q_k) is formed explicitly before its norm is taken.
 *
 * The models (`listBuiltinModels()`):
 * - `shapes32`: the default image model, 3x32x32, a mixture of one Gaussian per shape kind of `drawShapes`.
 * - `gaussian32`: one Gaussian fitted to the same images, for which the probability-flow ODE has the exact solution
 *   `gaussian32OdeSolution`.
 * - `ring2d`, `grid2d`, `moons2d`: 2-D mixtures (lib/models/toy_data.ts) as tensors [batch, 2, 1, 1]: two channels, one
 *   pixel, so they go through the same image-shaped model interface.
 *
 * Beside the exact models the package ships trained networks (`kind: "learned"`): diffusers UNet2DModel checkpoint
 * folders under `lib/pretrained/`, made by `tools/train_ddpm.py` on fresh draws from an exact law above, and loaded by
 * the same compiler as a downloaded checkpoint (`builtinCheckpointDir` gives the folder):
 * - `ddpm-shapes32`: a 0.69M-parameter DDPM UNet trained on the `shapes32` law.
 *
 * @module
 */
import { codeFingerprint, moduleClosure, readCache, sha256, writeCache } from "./_cache.ts";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { DDPMScheduler } from "../schedulers/ddpm.ts";
import { type GaussianMixture, probabilityFlowSolution } from "./gaussian_mixture.ts";
import { OnnxGraphBuilder } from "./onnx_graph.ts";
import { shapesMixture } from "./shapes_dataset.ts";
import type { Tensor } from "../core/tensor.ts";
import { gridMixture, moonsMixture, ringMixture } from "./toy_data.ts";

/**
 * The scheduler every builtin model was "trained" with: diffusers' DDPMScheduler defaults.
 *
 * @example
 * ```ts
 * import { BUILTIN_SCHEDULER_CONFIG } from "../../mod.ts";
 * // diffusers' DDPMScheduler: 1000 steps, betas linear from 1e-4 to 0.02
 * const { num_train_timesteps, beta_start, beta_end } = BUILTIN_SCHEDULER_CONFIG;
 * if (num_train_timesteps !== 1000 || beta_start !== 0.0001 || beta_end !== 0.02) throw new Error("not the defaults");
 * ```
 */
export const BUILTIN_SCHEDULER_CONFIG = Object.freeze({
  _class_name: "DDPMScheduler",
  num_train_timesteps: 1000,
  beta_schedule: "linear",
  beta_start: 0.0001,
  beta_end: 0.02,
  clip_sample: true,
  clip_sample_range: 1.0,
  variance_type: "fixed_small",
  prediction_type: "epsilon",
  timestep_spacing: "leading",
  steps_offset: 0,
});

/** A builtin model: its ONNX bytes plus the configs a diffusers checkpoint would carry. */
export interface BuiltinModel {
  /** The short name, e.g. `"shapes32"` (load it as `"builtin:shapes32"`). */
  name: string;
  /** One line saying what it models. */
  description: string;
  /** The ONNX ModelProto: inputs `sample` [batch, C, H, W] float32 and `timestep` [batch] int64, output `out_sample`. */
  onnx: Uint8Array;
  /** The model's facts in diffusers' config.json spelling. */
  config: {
    _class_name: "IdealDenoiser";
    sample_size: number;
    in_channels: number;
    out_channels: number;
    components: number;
    rank: number;
    [key: string]: unknown;
  };
  /** The scheduler config (diffusers' `scheduler_config.json` form). */
  schedulerConfig: typeof BUILTIN_SCHEDULER_CONFIG & Record<string, unknown>;
}

interface BuiltinRecipe {
  description: string;
  channels: number;
  sampleSize: number;
  mixture: () => GaussianMixture;
}

/** Part of the cache key beside the fingerprint of the code below (which alone covers a source checkout). */
const BUILD_VERSION = "2";

/**
 * The modules whose code builds a builtin graph (this one and everything it imports, followed through): any change
 * to them changes the cache key.
 */
const BUILDER_MODULES = moduleClosure(new URL(import.meta.url));
let builderFingerprint: string | undefined;

const RECIPES: Record<string, BuiltinRecipe> = {
  shapes32: {
    description:
      "32x32 RGB shapes on coloured backgrounds: 6 Gaussians (one per shape kind), rank 16 each; the default",
    channels: 3,
    sampleSize: 32,
    mixture: () => shapesMixture({ rank: 16 }),
  },
  gaussian32: {
    description:
      "32x32 RGB: one Gaussian (rank 16 plus isotropic) fitted to the shapes images; its ODE is solved exactly",
    channels: 3,
    sampleSize: 32,
    mixture: () => shapesMixture({ rank: 16, single: true, samplesPerMode: 40 }),
  },
  ring2d: {
    description: "2-D ring of 8 Gaussians (radius 0.7, std 0.06), as [batch, 2, 1, 1] tensors",
    channels: 2,
    sampleSize: 1,
    mixture: () => ringMixture(),
  },
  grid2d: {
    description: "2-D 5x5 grid of Gaussians on [-0.75, 0.75]^2 (std 0.05), as [batch, 2, 1, 1] tensors",
    channels: 2,
    sampleSize: 1,
    mixture: () => gridMixture(),
  },
  moons2d: {
    description: "2-D two moons, 24 Gaussians stretched along the arcs, as [batch, 2, 1, 1] tensors",
    channels: 2,
    sampleSize: 1,
    mixture: () => moonsMixture(),
  },
};

/** A trained checkpoint shipped with the package: its folder under lib/ and the exact law it was trained on. */
interface LearnedRecipe {
  description: string;
  folder: string;
  dataLaw: string;
}

const LEARNED: Record<string, LearnedRecipe> = {
  "ddpm-shapes32": {
    description:
      "a DDPM UNet (0.69M parameters, diffusers UNet2DModel) trained on the shapes32 law; its data law is exact",
    folder: "../pretrained/ddpm-shapes32",
    dataLaw: "shapes32",
  },
};

/** What `listBuiltinModels` says of each embedded model. */
export interface BuiltinModelInfo {
  /** The short name: load it as `builtin:NAME`. */
  name: string;
  /** One line saying what it models. */
  description: string;
  /** `"exact"`: a closed-form ideal denoiser eps*; `"learned"`: a trained network shipped as a checkpoint. */
  kind: "exact" | "learned";
}

/**
 * The names, kinds and one-line descriptions of the embedded models: the exact ones, then the trained ones.
 *
 * eps*(x_t, t) = E[eps | x_t] for `kind: "exact"`; eps_theta(x_t, t) fitted by L_simple for `kind: "learned"`
 *
 * @returns one entry per model, the default image model (`shapes32`) first
 * @example
 * ```ts
 * import { listBuiltinModels } from "../../mod.ts";
 * const names = listBuiltinModels().map(({ name, kind }) => `builtin:${name} (${kind})`);
 * if (!names.includes("builtin:ddpm-shapes32 (learned)")) throw new Error("the trained model is missing");
 * ```
 */
export function listBuiltinModels(): BuiltinModelInfo[] {
  return [
    ...Object.entries(RECIPES).map(([name, r]) => ({ name, description: r.description, kind: "exact" as const })),
    ...Object.entries(LEARNED).map(([name, r]) => ({ name, description: r.description, kind: "learned" as const })),
  ];
}

/**
 * The folder of a trained checkpoint shipped with the package, or `undefined` for an exact model.
 *
 * folder = lib/pretrained/NAME (config.json, diffusion_pytorch_model.safetensors, scheduler_config.json, README.md)
 *
 * @param name a builtin's name, with or without the `builtin:` prefix
 * @returns the absolute folder path for `kind: "learned"` models, `undefined` for exact ones
 * @throws Error listing the known names when `name` is not one
 * @example
 * ```ts
 * import { builtinCheckpointDir } from "../../mod.ts";
 * import { existsSync } from "node:fs";
 * import { join } from "node:path";
 * const dir = builtinCheckpointDir("builtin:ddpm-shapes32"); // a diffusers UNet2DModel folder
 * if (dir === undefined || !existsSync(join(dir, "config.json"))) throw new Error("expected a checkpoint folder");
 * if (builtinCheckpointDir("shapes32") !== undefined) throw new Error("shapes32 is exact");
 * ```
 */
export function builtinCheckpointDir(name: string): string | undefined {
  const key = recipeName(name);
  const learned = LEARNED[key];
  if (learned === undefined) return undefined;
  const url = new URL(`./${learned.folder}`, import.meta.url);
  if (url.protocol !== "file:") {
    throw new Error(`builtin:${key} ships at ${url.href}, not on disk: use builtinCheckpointFolder, which fetches it`);
  }
  return fileURLToPath(url);
}

/** The files of a shipped checkpoint that loading it needs. */
const CHECKPOINT_FILES = ["config.json", "diffusion_pytorch_model.safetensors", "scheduler_config.json"];

/**
 * A local folder holding a trained builtin checkpoint: the package's own `lib/pretrained/NAME` when the package is
 * on disk (npm, Bun, a clone), else a copy fetched once from where the package was imported (JSR serves its files
 * over https) into `$DDIMLAB_CACHE/pretrained/NAME`, written whole through a rename.
 *
 * folder = lib/pretrained/NAME, or a copy of its config.json, weights and scheduler_config.json
 *
 * @param name a builtin's name, with or without the `builtin:` prefix
 * @param options `baseUrl`: where the package's `lib/` is (default: this module's own URL); `cacheDir`
 * @returns the folder for a learned model, `undefined` for an exact one
 * @throws Error naming the file and the HTTP status when a fetch fails
 * @example
 * ```ts
 * import { builtinCheckpointFolder } from "../../mod.ts";
 * import { existsSync } from "node:fs";
 * import { join } from "node:path";
 * const dir = await builtinCheckpointFolder("builtin:ddpm-shapes32");
 * if (dir === undefined) throw new Error("ddpm-shapes32 is a learned model");
 * if (!existsSync(join(dir, "diffusion_pytorch_model.safetensors"))) throw new Error(`no weights in ${dir}`);
 * ```
 */
export async function builtinCheckpointFolder(
  name: string,
  options: { baseUrl?: string | URL; cacheDir?: string } = {},
): Promise<string | undefined> {
  const key = recipeName(name);
  const learned = LEARNED[key];
  if (learned === undefined) return undefined;
  const url = new URL(`./${learned.folder}/`, options.baseUrl ?? import.meta.url);
  if (url.protocol === "file:") return resolve(fileURLToPath(url));
  const base = options.cacheDir ?? join(dirname(defaultCacheDir()), "pretrained");
  const dir = join(base, key);
  for (const file of CHECKPOINT_FILES) {
    const path = join(dir, file);
    if (existsSync(path)) continue;
    const response = await fetch(new URL(file, url));
    if (!response.ok) {
      throw new Error(`Cannot fetch ${file} of builtin:${key} from ${url.href}: HTTP ${response.status}`);
    }
    const bytes = new Uint8Array(await response.arrayBuffer());
    mkdirSync(dir, { recursive: true });
    const partial = `${path}.${process.pid}.${Date.now()}.partial`;
    writeFileSync(partial, bytes);
    renameSync(partial, path);
  }
  return dir;
}

/** One logged step of a trained checkpoint's `training_log.csv`. */
export interface TrainingLogRow {
  /** The optimiser step. */
  step: number;
  /** The running mean of L_simple per dimension. */
  loss: number;
  /** The learning rate at that step. */
  lr: number;
  /** Wall time since training started, in seconds. */
  seconds: number;
}

/**
 * The training record shipped with a learned builtin model (`training_log.csv`, written by tools/train_ddpm.py).
 *
 * loss = running mean of |eps - eps_theta(x_t, t)|^2 / d over the steps so far (decay 0.98)
 *
 * @param name a learned builtin's name, with or without the `builtin:` prefix
 * @returns one row per logged step
 * @throws Error for an exact model (it was never trained) or an unknown name
 * @example
 * ```ts
 * import { builtinTrainingLog } from "../../mod.ts";
 * const log = builtinTrainingLog("builtin:ddpm-shapes32");
 * if (!(log[log.length - 1].loss < log[0].loss)) throw new Error("the loss did not fall");
 * ```
 */
export function builtinTrainingLog(name: string): TrainingLogRow[] {
  const dir = builtinCheckpointDir(name);
  if (dir === undefined) throw new Error(`builtin:${recipeName(name)} is an exact model: it has no training log`);
  const [header, ...lines] = readFileSync(join(dir, "training_log.csv"), "utf8").trim().split("\n");
  if (header.trim() !== "step,loss,lr,seconds") {
    throw new Error(`${dir}/training_log.csv has an unexpected header: ${header}`);
  }
  return lines.map((line) => {
    const [step, loss, lr, seconds] = line.split(",").map(Number);
    return { step, loss, lr, seconds };
  });
}

const mixtureMemo = new Map<string, GaussianMixture>();

/**
 * The exact data distribution behind a builtin model, for direct evaluation in TypeScript; for a learned model, the
 * law it was trained on.
 *
 * p(x_0) = sum_k pi_k N(x_0; mu_k, Q_k diag(lambda_k) Q_k^T + s2_k I)
 *
 * @param name a builtin's name, with or without the `builtin:` prefix
 * @returns its mixture (built once, then shared)
 * @throws Error listing the known names when `name` is not one
 * @example
 * ```ts
 * import { builtinMixture, TorchGenerator } from "../../mod.ts";
 * const { samples } = builtinMixture("ring2d").sample(100, new TorchGenerator(0)); // exact draws of x_0
 * if (samples.shape.join() !== "100,2") throw new Error(`expected 100 points in the plane, got [${samples.shape}]`);
 * ```
 */
export function builtinMixture(name: string): GaussianMixture {
  const recipe = recipeName(name);
  const key = LEARNED[recipe]?.dataLaw ?? recipe;
  let mixture = mixtureMemo.get(key);
  if (!mixture) {
    mixture = RECIPES[key].mixture();
    mixtureMemo.set(key, mixture);
  }
  return mixture;
}

/** Options of `builtinModel`. */
export interface BuiltinModelOptions {
  /**
   * Where compiled graphs are cached: a folder, or `false` to build in memory every time. Default: the
   * `DDIMLAB_CACHE` environment variable, else `~/.cache/ddimlab/builtin`. An unwritable folder is skipped silently.
   * A cached graph is used only when its sidecar names the code and recipe that built it and its SHA-256 matches;
   * otherwise it is rebuilt (docs/reliability.md).
   */
  cacheDir?: string | false;
}

/**
 * Build (or load from the cache) an embedded exact model: its ONNX graph, config and scheduler config.
 *
 * eps*(x_t, t) = (x_t - sqrt(alphaBar_t) E[x_0 | x_t]) / sqrt(1 - alphaBar_t)
 *
 * @param name `"shapes32"`, `"gaussian32"`, `"ring2d"`, `"grid2d"` or `"moons2d"`, optionally prefixed `builtin:`
 * @param options `cacheDir`
 * @returns the model's name, description, ONNX bytes, config and scheduler config
 * @throws Error listing the known names when `name` is not one
 * @example
 * ```ts
 * import { builtinModel } from "../../mod.ts";
 * const model = await builtinModel("ring2d");
 * if (model.config.in_channels !== 2) throw new Error("a 2-D model takes two channels");
 * ```
 */
// deno-lint-ignore require-await -- a Promise by contract: errors arrive as rejections, and compiling may move off the main thread
export async function builtinModel(name: string, options: BuiltinModelOptions = {}): Promise<BuiltinModel> {
  const key = recipeName(name);
  if (Object.hasOwn(LEARNED, key)) {
    throw new Error(
      `builtin:${key} is a trained checkpoint, not an exact model: load it with loadUNet or fromPretrained("builtin:${key}")`,
    );
  }
  const recipe = RECIPES[key];
  const schedulerConfig = { ...BUILTIN_SCHEDULER_CONFIG };
  const cacheDir = options.cacheDir === undefined ? defaultCacheDir() : options.cacheDir;
  builderFingerprint ??= codeFingerprint(BUILDER_MODULES, BUILD_VERSION);
  const cacheKey = sha256(JSON.stringify([BUILD_VERSION, builderFingerprint, key, schedulerConfig]));
  const cachePath = cacheDir === false ? undefined : join(cacheDir, `${key}-${cacheKey.slice(0, 16)}.onnx`);
  let onnx: Uint8Array | undefined;
  let facts: { components: number; rank: number } | undefined;
  const cached = cachePath === undefined ? undefined : readCache(cachePath, cacheKey);
  if (cached && Number.isInteger(cached.facts.components) && Number.isInteger(cached.facts.rank)) {
    onnx = cached.bytes;
    facts = { components: cached.facts.components as number, rank: cached.facts.rank as number };
  }
  if (!onnx || !facts) {
    const mixture = builtinMixture(key);
    onnx = compileIdealDenoiser(mixture, {
      alphasCumprod: schedulerAlphasCumprod(schedulerConfig),
      shape: [recipe.channels, recipe.sampleSize, recipe.sampleSize],
      name: key,
    });
    facts = { components: mixture.count, rank: mixture.rank };
    // A read-only or missing cache folder only costs a rebuild next time.
    if (cachePath) writeCache(cachePath, cacheKey, onnx, facts);
  }
  return {
    name: key,
    description: recipe.description,
    onnx,
    config: {
      _class_name: "IdealDenoiser",
      sample_size: recipe.sampleSize,
      in_channels: recipe.channels,
      out_channels: recipe.channels,
      components: facts.components,
      rank: facts.rank,
    },
    schedulerConfig,
  };
}

/** Options of `compileIdealDenoiser`. */
export interface CompileIdealDenoiserOptions {
  /** alphaBar_t for t = 0 .. T-1, the scheduler's `alphasCumprod` (float32, as diffusers stores it). */
  alphasCumprod: Float32Array;
  /** [C, H, W] of one sample; C H W must equal the mixture's dimension. */
  shape: [number, number, number];
  /** The graph's name (default `"ideal_denoiser"`). */
  name?: string;
}

/**
 * Compile a mixture's ideal noise predictor to an ONNX graph with the alphaBar table inside.
 *
 * eps*(x_t, t) = sqrt(1 - alphaBar_t) sum_k softmax_k(log pi_k - (log det C_k + r_k^T C_k^{-1} r_k) / 2) C_k^{-1} r_k
 *
 * @param mixture the data distribution (dimension C H W)
 * @param options the alphaBar table, the sample shape and the graph's name
 * @returns the ONNX bytes: inputs `sample` [batch, C, H, W] float32 and `timestep` [batch] int64, output `out_sample`
 * @example
 * ```ts
 * import { compileIdealDenoiser, OnnxUNet, ringMixture, Tensor } from "../../mod.ts";
 * const table = Float32Array.from({ length: 1000 }, (_, t) => Math.exp(-0.005 * (t + 1)));
 * const mixture = ringMixture();
 * const bytes = compileIdealDenoiser(mixture, { alphasCumprod: table, shape: [2, 1, 1] });
 * const unet = await OnnxUNet.fromBytes(bytes, { sampleSize: 1, inChannels: 2 });
 * const eps = await unet.predict(Tensor.from([0.3, -0.2], [1, 2, 1, 1]), 500);
 * unet.dispose();
 * // the graph computes the mixture's own eps*(x_t, t) at alphaBar_500
 * const direct = mixture.idealNoise(Tensor.from([0.3, -0.2], [1, 2]), table[500]);
 * if (Math.abs(eps.data[0] - direct.data[0]) > 1e-4) throw new Error(`graph ${eps.data[0]}, direct ${direct.data[0]}`);
 * ```
 */
export function compileIdealDenoiser(mixture: GaussianMixture, options: CompileIdealDenoiserOptions): Uint8Array {
  const { alphasCumprod, shape } = options;
  const [channels, height, width] = shape;
  const dim = channels * height * width;
  if (dim !== mixture.dim) {
    throw new RangeError(
      `Sample shape [${shape.join(", ")}] holds ${dim} values but the mixture's dimension is ${mixture.dim}`,
    );
  }
  if (!(alphasCumprod instanceof Float32Array) || alphasCumprod.length === 0) {
    throw new TypeError("alphasCumprod must be a non-empty Float32Array");
  }
  for (const [t, v] of alphasCumprod.entries()) {
    if (!(v > 0 && v < 1)) throw new RangeError(`alphasCumprod[${t}] must be in (0, 1), got ${v}`);
  }
  const K = mixture.count;
  // A rank-0 mixture gets one zero column with lambda = 0, which leaves every covariance unchanged.
  const rank = Math.max(mixture.rank, 1);
  const g = new OnnxGraphBuilder(options.name ?? "ideal_denoiser");

  // Tables over t, in float64 from the float32 alphaBar, rounded once.
  const T = alphasCumprod.length;
  const table = (f: (alphaBar: number) => number) => g.constant(Float32Array.from(alphasCumprod, f), [T]);
  const alphaBarTable = table((ab) => ab);
  const sqrtAlphaBarTable = table((ab) => Math.sqrt(ab));
  const oneMinusAlphaBarTable = table((ab) => 1 - ab);
  const sqrtOneMinusAlphaBarTable = table((ab) => Math.sqrt(1 - ab));

  // Mixture parameters, laid out [K, ...].
  const basisData = new Float32Array(K * dim * rank);
  const lambdaData = new Float32Array(K * rank);
  for (let k = 0; k < K; k++) {
    for (let i = 0; i < dim; i++) {
      for (let j = 0; j < mixture.rank; j++) {
        basisData[(k * dim + i) * rank + j] = mixture.bases[(k * dim + i) * mixture.rank + j];
      }
    }
    for (let j = 0; j < mixture.rank; j++) lambdaData[k * rank + j] = mixture.lowRankVariances[k * mixture.rank + j];
  }
  const means = g.initializer("means", Float32Array.from(mixture.means), [K, 1, dim]);
  const basis = g.initializer("basis", basisData, [K, dim, rank]);
  const basisT = g.node("Transpose", [basis], { perm: [0, 2, 1] }, "basis_t");
  const lambda = g.initializer("low_rank_variances", lambdaData, [K, 1, rank]);
  const noiseVariance = g.initializer("noise_variances", Float32Array.from(mixture.noiseVariances), [K, 1, 1]);
  const logWeights = g.initializer("log_weights", Float32Array.from(mixture.weights, Math.log), [K, 1, 1]);

  // Inputs.
  const sample = g.input("sample", ["batch", channels, height, width]);
  const timestep = g.input("timestep", ["batch"], "int64");

  // 1. alphaBar_t and its companions per batch item, shaped [1, batch, 1] to broadcast over [K, batch, *].
  const perItem = (tableName: string, name: string) =>
    g.node("Reshape", [g.node("Gather", [tableName, timestep], { axis: 0 }), g.ints([1, -1, 1])], {}, name);
  const alphaBar = perItem(alphaBarTable, "alpha_bar");
  const sqrtAlphaBar = perItem(sqrtAlphaBarTable, "sqrt_alpha_bar");
  const oneMinusAlphaBar = perItem(oneMinusAlphaBarTable, "one_minus_alpha_bar");
  const sqrtOneMinusAlphaBar = perItem(sqrtOneMinusAlphaBarTable, "sqrt_one_minus_alpha_bar");

  // 2. r_k = x_t - sqrt(alphaBar) mu_k, [K, batch, d]
  const flat = g.node("Reshape", [sample, g.ints([1, -1, dim])], {}, "x_t");
  const residual = g.node("Sub", [flat, g.node("Mul", [sqrtAlphaBar, means])], {}, "residual");
  // 3. q_k = Q_k^T r_k [K, batch, r] and r_perp = r_k - Q_k q_k [K, batch, d]
  const coords = g.node("MatMul", [residual, basis], {}, "coords");
  const perp = g.node("Sub", [residual, g.node("MatMul", [coords, basisT])], {}, "residual_perp");
  // 4. eigenvalues of C_k: c_k = alphaBar s2_k + (1 - alphaBar) off span(Q_k), c_k + alphaBar lambda_kj along it
  const isotropic = g.node("Add", [g.node("Mul", [alphaBar, noiseVariance]), oneMinusAlphaBar], {}, "isotropic");
  const eigen = g.node("Add", [isotropic, g.node("Mul", [alphaBar, lambda])], {}, "eigen");
  // 5. r^T C^{-1} r = |r_perp|^2 / c + sum_j q_j^2 / e_j;  log det C = d log c + sum_j log(e_j / c)
  const sumLast = (x: string, name: string) => g.node("ReduceSum", [x, g.ints([2])], { keepdims: 1 }, name);
  const perpNorm2 = g.node("ReduceSumSquare", [perp], { axes: [2], keepdims: 1 }, "perp_norm2");
  const coordsOverEigen = g.node("Div", [coords, eigen], {}, "coords_over_eigen");
  const mahalanobis = g.node(
    "Add",
    [
      g.node("Div", [perpNorm2, isotropic]),
      sumLast(g.node("Mul", [coords, coordsOverEigen]), "low_rank_mahalanobis"),
    ],
    {},
    "mahalanobis",
  );
  const logDet = g.node(
    "Add",
    [
      g.node("Mul", [g.constant([dim], []), g.node("Log", [isotropic])]),
      sumLast(g.node("Log", [g.node("Div", [eigen, isotropic])]), "low_rank_log_det"),
    ],
    {},
    "log_det",
  );
  // 6. w_k = softmax_k(log pi_k - (log det C_k + mahalanobis_k) / 2): log-sum-exp, inside Softmax
  const logits = g.node(
    "Sub",
    [
      logWeights,
      g.node("Mul", [g.constant([0.5], []), g.node("Add", [logDet, mahalanobis])]),
    ],
    {},
    "logits",
  );
  const weights = g.node("Softmax", [logits], { axis: 0 }, "weights");
  // 7. eps* = sqrt(1 - alphaBar) sum_k w_k (r_perp / c_k + Q_k (q_k / e_k))
  const perComponent = g.node(
    "Add",
    [
      g.node("Mul", [g.node("Div", [weights, isotropic]), perp]),
      g.node("MatMul", [g.node("Mul", [weights, coordsOverEigen]), basisT]),
    ],
    {},
    "weighted_noise",
  );
  const summed = g.node("ReduceSum", [perComponent, g.ints([0])], { keepdims: 0 }, "posterior_noise");
  const scale = g.node("Reshape", [sqrtOneMinusAlphaBar, g.ints([-1, 1])], {}, "noise_scale");
  const eps = g.node("Mul", [summed, scale], {}, "eps");
  const out = g.node("Reshape", [eps, g.node("Shape", [sample])], {}, "eps_nchw");
  g.output(out, "out_sample", ["batch", channels, height, width]);
  return g.encode({
    opset: 17,
    docString: `Ideal noise predictor of a ${K}-component Gaussian mixture (rank ${mixture.rank}) over [${
      shape.join(", ")
    }]`,
  });
}

/**
 * The exact probability-flow ODE solution of `builtin:gaussian32` from timestep t to timestep s.
 *
 * x_s = sqrt(alphaBar_s) (mu + (Sigma + sigma_s^2 I)^{1/2} (Sigma + sigma_t^2 I)^{-1/2} (x_t / sqrt(alphaBar_t) - mu))
 *
 * DDIM with eta = 0 approximates this map (it is Euler's method for the ODE of the DDIM paper's eq. 14), so the
 * distance between the two measures DDIM's global error.
 *
 * @param xt samples at timestep t, shape [n, 3, 32, 32]
 * @param options `t` and `s`, training timesteps in [0, 1000), or `s = -1` for alphaBar_s = 1 (the clean image,
 *   which is where DDIM with `set_alpha_to_one` ends)
 * @returns x_s, shape [n, 3, 32, 32]
 * @example
 * ```ts
 * import { gaussian32OdeSolution, TorchGenerator } from "../../mod.ts";
 * const xT = new TorchGenerator(0).randn([1, 3, 32, 32]);
 * const x0 = gaussian32OdeSolution(xT, { t: 999, s: -1 });
 * if (x0.shape.join() !== "1,3,32,32" || !x0.data.every(Number.isFinite)) throw new Error("expected a finite image");
 * ```
 */
export function gaussian32OdeSolution(xt: Tensor, options: { t: number; s: number }): Tensor {
  const table = schedulerAlphasCumprod(BUILTIN_SCHEDULER_CONFIG);
  const at = (step: number, name: string) => {
    if (step === -1 && name === "s") return 1;
    if (!Number.isInteger(step) || step < 0 || step >= table.length) {
      throw new RangeError(
        `Timestep ${name} must be an integer in [0, ${table.length - 1}]${name === "s" ? " or -1" : ""}, got ${step}`,
      );
    }
    return table[step];
  };
  return probabilityFlowSolution(builtinMixture("gaussian32"), xt, {
    alphaBarT: at(options.t, "t"),
    alphaBarS: at(options.s, "s"),
  });
}

function recipeName(name: string): string {
  if (typeof name !== "string") throw new TypeError(`A builtin model name must be a string, got ${typeof name}`);
  const key = name.startsWith("builtin:") ? name.slice("builtin:".length) : name;
  if (!Object.hasOwn(RECIPES, key) && !Object.hasOwn(LEARNED, key)) {
    const known = [...Object.keys(RECIPES), ...Object.keys(LEARNED)].map((k) => `builtin:${k}`).join(", ");
    throw new Error(`Unknown builtin model "${name}"; the known ones are ${known}`);
  }
  return key;
}

function defaultCacheDir(): string {
  const fromEnv = typeof process !== "undefined" ? process.env.DDIMLAB_CACHE : undefined;
  return fromEnv && fromEnv.length > 0 ? join(fromEnv, "builtin") : join(homedir(), ".cache", "ddimlab", "builtin");
}

/** alphaBar_t of the builtin scheduler config, float32 as diffusers stores it, from the scheduler itself. */
function schedulerAlphasCumprod(config: typeof BUILTIN_SCHEDULER_CONFIG): Float32Array {
  return DDPMScheduler.fromConfig(config).alphasCumprod;
}
