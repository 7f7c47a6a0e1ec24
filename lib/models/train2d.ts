/**
 * Learned 2-D noise predictors: a small MLP eps_theta(x_t, t) trained with the DDPM objective on exact draws of a
 * 2-D mixture (`ring2d`, `moons2d`, `grid2d`), fast enough to train live in a notebook cell.
 *
 * | paper (DDPM, Ho et al. 2020)  | code                 | meaning                                                 |
 * |-------------------------------|----------------------|---------------------------------------------------------|
 * | x_0 ~ q(x_0)                  | `x0`                 | exact draws of the mixture, [batch, 2]                  |
 * | t ~ U{0, ..., T - 1}          | `timesteps`          | one training timestep per item (T = 1000)               |
 * | eps ~ N(0, I)                 | `noise`              | the noise the network must recover                      |
 * | alphaBar_t                    | `alphasCumprod[t]`   | the builtin DDPMScheduler's table (float32, as diffusers) |
 * | x_t                           | `noisy`              | sqrt(alphaBar_t) x_0 + sqrt(1 - alphaBar_t) eps, eq. (4) |
 * | e(t)                          | `timestepEmbedding`  | sinusoidal embedding of t (Transformer / DDPM)          |
 * | phi(x_t)                      | Fourier features     | sin, cos(2^k pi x) per coordinate, k < K                |
 * | eps_theta(x_t, t)             | `LearnedDenoiser2d`  | MLP([x_t, phi(x_t), e(t)]) -> 2 values                  |
 * | L_simple                      | `loss`               | mean over batch and coordinates of (eps - eps_theta)^2  |
 * | theta-bar                     | EMA parameters       | exponential moving average of theta, what is sampled with |
 *
 * The objective is DDPM's L_simple (Ho et al., arXiv 2006.11239, eq. 14):
 *
 *   L_simple(theta) = E_{t, x_0, eps} || eps - eps_theta(sqrt(alphaBar_t) x_0 + sqrt(1 - alphaBar_t) eps, t) ||^2,
 *
 * reported per coordinate (divided by d = 2, as PyTorch's `mse_loss` does). Its minimiser is the exact eps*(x_t, t)
 * of `GaussianMixture.idealNoise`, and its minimum, the "ideal loss" E || eps - eps* ||^2 / d, is above 0; the
 * excess of a network's loss over it is E || eps_theta - eps* ||^2 / d.
 *
 * One training step draws, from one `TorchGenerator` and in this order: x_0 (`mixture.sample`), t (one 32-bit word
 * per item, t = word mod T), eps (`randn([batch, 2])`). The weights are initialised from the same generator before
 * the first step, so a seed fixes the whole run. The EMA follows diffusers' `EMAModel` (decay 0 at the first update,
 * then min(decay, (1 + s) / (10 + s)) with s = k - 1 at the k-th), and a trained model is the EMA weights rounded to
 * float32, so that saving and loading (safetensors) gives the very same model.
 *
 * The Fourier features phi(x_t) (Tancik et al. 2020, arXiv 2006.10739; NeRF's positional encoding) matter: at small
 * t, eps* varies on the scale of a component's width (0.05 to 0.06 here), which a small SiLU network fed with x_t
 * alone learns slowly. On ring2d, 2000 steps without them left an RMS error of 0.45 in eps at t = 5 and 0.60 at
 * t = 50; with K = 4, 0.17 and 0.23 (same network, seed and steps).
 *
 * Why plain TypeScript rather than TensorFlow.js: see lib/models/mlp.ts. The default network (3 hidden layers of 64,
 * 11,714 parameters) took 23 ms per step of 256 items on the 2-core test machine while other jobs shared it (2000
 * steps in 46 s), and a ring2d model is usable after 1000 to 2000 steps; `hiddenSizes: [32, 32]` and
 * `batchSize: 128` train several times faster (test/models/train2d.test.ts trains 400 such steps in about 2 s).
 *
 * @module
 */
import { renameSync, writeFileSync } from "node:fs";
import process from "node:process";
import { BUILTIN_SCHEDULER_CONFIG, builtinMixture } from "./builtin_models.ts";
import { DDPMScheduler } from "../schedulers/ddpm.ts";
import { GaussianMixture } from "./gaussian_mixture.ts";
import { Adam, Mlp } from "./mlp.ts";
import type { DenoisingModel } from "../core/model.ts";
import { parseSafetensors, readSafetensors, type SafetensorsTensorInput, serializeSafetensors } from "./safetensors.ts";
import { Tensor } from "../core/tensor.ts";
import { TorchGenerator } from "../core/torch_generator.ts";

/**
 * The builtin 2-D data sets a `Denoiser2dTrainer` accepts by name.
 *
 * @example
 * ```ts
 * import { builtinMixture, DATA_SETS_2D } from "../../mod.ts";
 * for (const name of DATA_SETS_2D) {
 *   if (builtinMixture(name).dim !== 2) throw new Error(`${name} is not a law on the plane`);
 * }
 * ```
 */
export const DATA_SETS_2D: readonly string[] = Object.freeze(["ring2d", "moons2d", "grid2d"]);

/** The format tag a saved `LearnedDenoiser2d` carries in its safetensors metadata. */
const FORMAT = "ddimlab.LearnedDenoiser2d/1";

/**
 * The sinusoidal timestep embedding of the DDPM network (Ho et al.'s `get_timestep_embedding`, after the
 * Transformer's positional encoding): half the entries are sines, half cosines, over geometric frequencies.
 *
 * e(t)_i = sin(t f_i), e(t)_{half + i} = cos(t f_i),  f_i = maxPeriod^(-i / (half - 1)),  i = 0 .. half - 1
 *
 * @param timesteps the timesteps t (any real values, usually integers in [0, T))
 * @param dim the embedding's length, an even number of at least 4
 * @param maxPeriod the longest period, 1 / f_{half-1} (default 10000, as in DDPM)
 * @returns the embeddings, [timesteps.length, dim] row-major
 * @throws RangeError naming the value when `dim` is not an even integer >= 4, `maxPeriod` is not above 1, or a
 *   timestep is not finite
 * @example
 * ```ts
 * import { timestepEmbedding } from "../../mod.ts";
 * const e = timestepEmbedding([0], 4); // sin 0 = 0 twice, then cos 0 = 1 twice
 * if (e.join() !== "0,0,1,1") throw new Error(`got ${e}`);
 * ```
 */
export function timestepEmbedding(timesteps: ArrayLike<number>, dim: number, maxPeriod = 10000): Float64Array {
  if (!Number.isInteger(dim) || dim < 4 || dim % 2 !== 0) {
    throw new RangeError(`The timestep embedding's length must be an even integer of at least 4, got ${dim}`);
  }
  if (!(Number.isFinite(maxPeriod) && maxPeriod > 1)) {
    throw new RangeError(`The timestep embedding's maxPeriod must be a finite number above 1, got ${maxPeriod}`);
  }
  const half = dim / 2;
  const frequencies = new Float64Array(half);
  for (let i = 0; i < half; i++) frequencies[i] = Math.exp((-Math.log(maxPeriod) * i) / (half - 1));
  const out = new Float64Array(timesteps.length * dim);
  for (let b = 0; b < timesteps.length; b++) {
    const t = timesteps[b];
    if (!Number.isFinite(t)) throw new RangeError(`Timestep ${b} is not finite: ${t}`);
    for (let i = 0; i < half; i++) {
      out[b * dim + i] = Math.sin(t * frequencies[i]);
      out[b * dim + half + i] = Math.cos(t * frequencies[i]);
    }
  }
  return out;
}

/** The architecture of a `LearnedDenoiser2d`. */
export interface LearnedDenoiser2dConfig {
  /** Widths of the hidden layers, e.g. [64, 64, 64]. */
  hiddenSizes: readonly number[];
  /** The length of the timestep embedding e(t) (even, >= 4). */
  embeddingDim: number;
  /** The embedding's longest period (10000 in DDPM). */
  maxPeriod: number;
  /** T, the number of training timesteps (the scheduler's `num_train_timesteps`). */
  numTrainTimesteps: number;
  /** K, the Fourier features of x_t: sin and cos of 2^k pi x for k < K, per coordinate (0: x_t alone). */
  coordinateFrequencies: number;
}

/**
 * A trained 2-D noise predictor: an MLP on [x_t, phi(x_t), e(t)], usable wherever a `DenoisingModel` is (tensors
 * [batch, 2, 1, 1], like `builtin:ring2d`).
 *
 * eps_theta(x_t, t) = MLP([x_t, phi(x_t), e(t)])
 *
 * @example
 * ```ts
 * import { DDIMPipeline, DDIMScheduler, trainDenoiser2d } from "../../mod.ts";
 * const model = trainDenoiser2d("ring2d", { steps: 20, hiddenSizes: [16], batchSize: 32 }); // a short run
 * const pipe = new DDIMPipeline({ unet: model, scheduler: DDIMScheduler.fromConfig(model.schedulerConfig) });
 * const { samples } = await pipe.sample({ numInferenceSteps: 10, batchSize: 16, seed: 0 });
 * if (samples.shape.join() !== "16,2,1,1" || !samples.data.every(Number.isFinite)) throw new Error(`got [${samples.shape}]`);
 * ```
 */
export class LearnedDenoiser2d implements DenoisingModel {
  /** One pixel. */
  readonly sampleSize = 1;
  /** The two coordinates, as channels. */
  readonly inChannels = 2;
  /** eps has two coordinates. */
  readonly outChannels = 2;
  /** The architecture. */
  readonly config: LearnedDenoiser2dConfig;
  /** The network, widths [2 + 4K + embeddingDim, ...hiddenSizes, 2]; its `parameters` are the weights (float32). */
  readonly network: Mlp;
  /** The scheduler config the model was trained with (diffusers' `scheduler_config.json` form). */
  readonly schedulerConfig: Record<string, unknown>;
  /** Facts about the training run (data set, steps, seed, ...), saved with the weights. */
  readonly training: Record<string, unknown>;

  /**
   * A model from its architecture and weights.
   *
   * @param config the architecture
   * @param parameters the weights, laid out as `Mlp.parameters` (rounded to float32 here)
   * @param options the scheduler config (default `BUILTIN_SCHEDULER_CONFIG`) and training facts
   * @throws RangeError naming the value when the config is invalid or the weights have the wrong length
   */
  constructor(
    config: LearnedDenoiser2dConfig,
    parameters: ArrayLike<number>,
    options: { schedulerConfig?: Record<string, unknown>; training?: Record<string, unknown> } = {},
  ) {
    this.config = checkConfig(config);
    this.network = new Mlp(networkSizes(this.config));
    if (parameters.length !== this.network.parameterCount) {
      throw new RangeError(
        `This architecture has ${this.network.parameterCount} parameters, got ${parameters.length} weights`,
      );
    }
    for (let i = 0; i < parameters.length; i++) {
      const value = Math.fround(parameters[i]);
      if (!Number.isFinite(value)) throw new RangeError(`Weight ${i} is not finite: ${parameters[i]}`);
      this.network.parameters[i] = value;
    }
    this.schedulerConfig = { ...(options.schedulerConfig ?? BUILTIN_SCHEDULER_CONFIG) };
    this.training = { ...(options.training ?? {}) };
  }

  /**
   * eps_theta for a batch of points given as plain numbers, in float64.
   *
   * eps_theta(x_t, t) = MLP([x_t, phi(x_t), e(t)])
   *
   * @param points x_t, [batch, 2] row-major
   * @param timestep one t for the batch, or one per point
   * @returns eps_theta, [batch, 2] row-major
   * @throws RangeError when the points are not pairs or the timesteps do not match the batch
   * @example
   * ```ts
   * import { trainDenoiser2d } from "../../mod.ts";
   * const model = trainDenoiser2d("ring2d", { steps: 10, hiddenSizes: [8] });
   * const eps = model.noiseAt([0.7, 0, 0, 0.7], 500); // two points at t = 500
   * if (eps.length !== 4 || !eps.every(Number.isFinite)) throw new Error("expected a 2-D eps for each point");
   * ```
   */
  noiseAt(points: ArrayLike<number>, timestep: number | ArrayLike<number>): Float64Array {
    if (points.length % 2 !== 0 || points.length === 0) {
      throw new RangeError(`Expected [batch, 2] points, got ${points.length} values`);
    }
    const batch = points.length / 2;
    const timesteps = typeof timestep === "number" ? new Float64Array(batch).fill(timestep) : timestep;
    if (timesteps.length !== batch) {
      throw new RangeError(`Expected one timestep per point (${batch}), got ${timesteps.length}`);
    }
    const { embeddingDim, maxPeriod } = this.config;
    const input = networkInput(this.config, points, timestepEmbedding(timesteps, embeddingDim, maxPeriod));
    return this.network.forward(input, batch).output;
  }

  /**
   * Run the model on x_t shaped [batch, 2, 1, 1] (or [batch, 2]), as every scheduler and pipeline calls it.
   *
   * eps_theta(x_t, t) = MLP([x_t, phi(x_t), e(t)])
   *
   * @param sample x_t
   * @param timestep one timestep for the batch, or one per item
   * @returns eps_theta, the same shape as `sample`, float32
   * @throws RangeError when the sample does not hold two values per item or the timesteps do not match the batch
   */
  predict(sample: Tensor, timestep: number | readonly number[]): Promise<Tensor> {
    if (!(sample instanceof Tensor)) return Promise.reject(new TypeError("sample must be a Tensor"));
    const batch = sample.shape[0];
    if (sample.shape.length < 2 || sample.shape[1] !== 2 || sample.size !== 2 * batch) {
      return Promise.reject(
        new RangeError(`A 2-D model takes samples of shape [batch, 2, 1, 1], got [${sample.shape.join(", ")}]`),
      );
    }
    try {
      return Promise.resolve(new Tensor(Float32Array.from(this.noiseAt(sample.data, timestep)), sample.shape));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * The weights as a safetensors file: `layers.{l}.weight` [n_{l+1}, n_l] and `layers.{l}.bias` (F32, PyTorch's
   * `nn.Linear` layout), with the config, the scheduler config and the training facts as JSON metadata.
   *
   * bytes = u64le(n) ++ header_json[n] ++ float32 tensors
   *
   * @returns the file's bytes
   * @example
   * ```ts
   * import { LearnedDenoiser2d, trainDenoiser2d } from "../../mod.ts";
   * const model = trainDenoiser2d("ring2d", { steps: 10, hiddenSizes: [8] });
   * const copy = LearnedDenoiser2d.fromSafetensors(model.toSafetensors());
   * if (copy.noiseAt([0.3, 0.4], 100).join() !== model.noiseAt([0.3, 0.4], 100).join()) throw new Error("the copy differs");
   * ```
   */
  toSafetensors(): Uint8Array {
    const { sizes, offsets, parameters } = this.network;
    const tensors: Record<string, SafetensorsTensorInput> = {};
    for (let l = 0; l + 1 < sizes.length; l++) {
      const weightSize = sizes[l] * sizes[l + 1];
      tensors[`layers.${l}.weight`] = {
        shape: [sizes[l + 1], sizes[l]],
        data: Float32Array.from(parameters.subarray(offsets[l], offsets[l] + weightSize)),
      };
      tensors[`layers.${l}.bias`] = {
        shape: [sizes[l + 1]],
        data: Float32Array.from(parameters.subarray(offsets[l] + weightSize, offsets[l] + weightSize + sizes[l + 1])),
      };
    }
    return serializeSafetensors(tensors, {
      format: FORMAT,
      config: JSON.stringify(this.config),
      scheduler_config: JSON.stringify(this.schedulerConfig),
      training: JSON.stringify(this.training),
    });
  }

  /**
   * Write the model to a safetensors file (through a temporary file renamed when complete).
   *
   * @param path the file to write, e.g. `ring2d.safetensors`
   * @returns the path
   * @example
   * ```ts
   * import { LearnedDenoiser2d, trainDenoiser2d } from "../../mod.ts";
   * import { mkdtempSync } from "node:fs";
   * import { tmpdir } from "node:os";
   * import { join } from "node:path";
   * const model = trainDenoiser2d("ring2d", { steps: 10, hiddenSizes: [8] });
   * const path = model.save(join(mkdtempSync(join(tmpdir(), "ddimlab-")), "ring2d.safetensors"));
   * if (LearnedDenoiser2d.load(path).noiseAt([0.5, 0], 10)[0] !== model.noiseAt([0.5, 0], 10)[0]) throw new Error("lost");
   * ```
   */
  save(path: string): string {
    const temporary = `${path}.tmp-${process.pid}`;
    writeFileSync(temporary, this.toSafetensors());
    renameSync(temporary, path);
    return path;
  }

  /**
   * Read a model written by `toSafetensors`.
   *
   * @param bytes the safetensors file's bytes
   * @param source a name for error messages
   * @returns the model
   * @throws Error naming the source and the problem when the file is not a saved 2-D model or a weight is missing or
   *   has the wrong shape
   * @example
   * ```ts
   * import { LearnedDenoiser2d, trainDenoiser2d } from "../../mod.ts";
   * const bytes = trainDenoiser2d("moons2d", { steps: 10, hiddenSizes: [8] }).toSafetensors();
   * const hidden = LearnedDenoiser2d.fromSafetensors(bytes).config.hiddenSizes;
   * if (hidden.join() !== "8") throw new Error(`got ${hidden}`);
   * ```
   */
  static fromSafetensors(bytes: Uint8Array, source = "safetensors data"): LearnedDenoiser2d {
    return fromFile(parseSafetensors(bytes, source), source);
  }

  /**
   * Load a model saved with `save`.
   *
   * @param path the safetensors file
   * @returns the model
   * @throws Error naming the file when it cannot be read or is not a saved 2-D model
   * @example
   * ```ts
   * import { LearnedDenoiser2d, trainDenoiser2d } from "../../mod.ts";
   * import { mkdtempSync } from "node:fs";
   * import { tmpdir } from "node:os";
   * import { join } from "node:path";
   * const path = join(mkdtempSync(join(tmpdir(), "ddimlab-")), "grid2d.safetensors");
   * trainDenoiser2d("grid2d", { steps: 10, hiddenSizes: [8] }).save(path);
   * const model = LearnedDenoiser2d.load(path);
   * if (model.config.hiddenSizes.join() !== "8") throw new Error("the loaded model has another shape");
   * ```
   */
  static load(path: string): LearnedDenoiser2d {
    return fromFile(readSafetensors(path), path);
  }
}

/** Options of `Denoiser2dTrainer` (and `trainDenoiser2d`). */
export interface Denoiser2dTrainerOptions {
  /** Seeds the generator of the initial weights and every draw (default 0). */
  seed?: number;
  /** Items per step (default 256). */
  batchSize?: number;
  /** Adam's step size alpha (default 2e-3). */
  learningRate?: number;
  /** Widths of the hidden layers (default [64, 64, 64]). */
  hiddenSizes?: readonly number[];
  /** Length of the timestep embedding (default 32). */
  embeddingDim?: number;
  /** The embedding's longest period (default 10000, DDPM's). */
  maxPeriod?: number;
  /** K: Fourier features sin, cos(2^k pi x) of each coordinate for k < K (default 4; 0: x_t alone). */
  coordinateFrequencies?: number;
  /** Cosine decay of the learning rate to 0 over this many steps (default: none, a constant rate). */
  decaySteps?: number;
  /** The EMA's largest decay (default 0.995); in [0, 1). */
  emaDecay?: number;
  /** The scheduler config whose alphaBar table defines x_t (default `BUILTIN_SCHEDULER_CONFIG`). */
  schedulerConfig?: Record<string, unknown>;
}

/** What `Denoiser2dTrainer.train` yields. */
export interface TrainingProgress {
  /** Steps taken so far (the optimiser's k). */
  step: number;
  /** L_simple per coordinate, averaged over the steps since the last report. */
  loss: number;
  /** Seconds spent training so far (all calls of `train` together). */
  seconds: number;
  /** The EMA decay used at this step. */
  emaDecay: number;
}

/**
 * DDPM training of a 2-D MLP noise predictor on exact draws of a 2-D Gaussian mixture, one step at a time.
 *
 * theta <- Adam(theta, grad_theta || eps - eps_theta(sqrt(alphaBar_t) x_0 + sqrt(1 - alphaBar_t) eps, t) ||^2),
 * theta-bar <- decay theta-bar + (1 - decay) theta
 *
 * @example
 * ```ts
 * import { Denoiser2dTrainer } from "../../mod.ts";
 * const trainer = new Denoiser2dTrainer("ring2d", { seed: 0, hiddenSizes: [16], batchSize: 32 });
 * const losses: number[] = [];
 * for (const { loss } of trainer.train(60, { reportEvery: 20 })) losses.push(loss);
 * const model = trainer.model(); // the EMA weights, a DenoisingModel
 * if (losses.length !== 3 || !losses.every((l) => l > 0) || model.inChannels !== 2) throw new Error(`losses ${losses}`);
 * ```
 */
export class Denoiser2dTrainer {
  /** The data distribution q(x_0). */
  readonly mixture: GaussianMixture;
  /** The data set's name (`"ring2d"`, ...), or `"custom"` for a mixture given directly. */
  readonly dataName: string;
  /** The architecture being trained. */
  readonly config: LearnedDenoiser2dConfig;
  /** The scheduler whose `addNoise` forms x_t. */
  readonly scheduler: DDPMScheduler;
  /** The network whose `parameters` are the current (raw) weights theta. */
  readonly network: Mlp;
  /** The EMA weights theta-bar. */
  readonly emaParameters: Float64Array;
  /** The optimiser. */
  readonly optimizer: Adam;
  readonly #generator: TorchGenerator;
  readonly #batchSize: number;
  readonly #emaDecay: number;
  readonly #seed: number;
  readonly #decaySteps: number | undefined;
  readonly #embeddingTable: Float64Array;
  readonly #gradient: Float64Array;
  #seconds = 0;
  #lastLoss = NaN;

  /**
   * Set up a training run: the data, the network (initialised from the seed), Adam and the EMA.
   *
   * @param data `"ring2d"`, `"moons2d"` or `"grid2d"` (optionally `builtin:`-prefixed), or a 2-D `GaussianMixture`
   * @param options seed, batch size, learning rate, architecture, EMA decay, scheduler config
   * @throws RangeError naming the value for an unknown data set, a mixture that is not 2-D, a batch size that is
   *   not a positive integer, a learning rate that is not a positive finite number, or an EMA decay outside [0, 1)
   */
  constructor(data: string | GaussianMixture, options: Denoiser2dTrainerOptions = {}) {
    const { mixture, name } = resolveData(data);
    this.mixture = mixture;
    this.dataName = name;
    const seed = options.seed ?? 0;
    if (!Number.isSafeInteger(seed)) throw new RangeError(`The seed must be a safe integer, got ${seed}`);
    this.#seed = seed;
    const batchSize = options.batchSize ?? 256;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new RangeError(`The batch size must be a positive integer, got ${batchSize}`);
    }
    this.#batchSize = batchSize;
    const emaDecay = options.emaDecay ?? 0.995;
    if (!(typeof emaDecay === "number" && emaDecay >= 0 && emaDecay < 1)) {
      throw new RangeError(`The EMA decay must be in [0, 1), got ${emaDecay}`);
    }
    this.#emaDecay = emaDecay;
    const decaySteps = options.decaySteps;
    if (decaySteps !== undefined && (!Number.isInteger(decaySteps) || decaySteps < 1)) {
      throw new RangeError(`decaySteps must be a positive integer, got ${decaySteps}`);
    }
    this.#decaySteps = decaySteps;
    this.scheduler = DDPMScheduler.fromConfig(options.schedulerConfig ?? BUILTIN_SCHEDULER_CONFIG);
    this.config = checkConfig({
      hiddenSizes: options.hiddenSizes ?? [64, 64, 64],
      embeddingDim: options.embeddingDim ?? 32,
      maxPeriod: options.maxPeriod ?? 10000,
      coordinateFrequencies: options.coordinateFrequencies ?? 4,
      numTrainTimesteps: this.scheduler.alphasCumprod.length,
    });
    // the learning rate is checked by Adam, with the same sentence for every bad value
    this.#generator = new TorchGenerator(seed);
    this.network = new Mlp(networkSizes(this.config), { generator: this.#generator });
    this.optimizer = new Adam(this.network.parameterCount, { learningRate: options.learningRate ?? 2e-3 });
    this.emaParameters = Float64Array.from(this.network.parameters);
    this.#gradient = new Float64Array(this.network.parameterCount);
    // e(t) for every training timestep, computed once
    const T = this.config.numTrainTimesteps;
    this.#embeddingTable = timestepEmbedding(
      Float64Array.from({ length: T }, (_, t) => t),
      this.config.embeddingDim,
      this.config.maxPeriod,
    );
  }

  /**
   * Steps taken so far.
   *
   * @example
   * ```ts
   * import { Denoiser2dTrainer } from "../../mod.ts";
   * const trainer = new Denoiser2dTrainer("ring2d", { hiddenSizes: [8], batchSize: 16 });
   * [...trainer.train(5)]; // five steps
   * if (trainer.step !== 5) throw new Error(`got ${trainer.step}`);
   * ```
   */
  get step(): number {
    return this.optimizer.steps;
  }

  /**
   * L_simple per coordinate of the most recent step (NaN before the first).
   *
   * @example
   * ```ts
   * import { Denoiser2dTrainer } from "../../mod.ts";
   * const trainer = new Denoiser2dTrainer("ring2d", { hiddenSizes: [8], batchSize: 16 });
   * if (!Number.isNaN(trainer.lastLoss)) throw new Error("no loss before the first step");
   * [...trainer.train(1)]; // one step
   * if (!(trainer.lastLoss > 0)) throw new Error(`got ${trainer.lastLoss}`);
   * ```
   */
  get lastLoss(): number {
    return this.#lastLoss;
  }

  /**
   * Train for `steps` more steps, yielding progress every `reportEvery` steps (and after the last one).
   *
   * loss_k = (1 / (batch d)) sum_b || eps_b - eps_theta(x_t,b, t_b) ||^2
   *
   * @param steps how many steps to take, a positive integer
   * @param options `reportEvery` (default 10): how often to yield; `loss` is the mean over those steps
   * @returns a generator of `{ step, loss, seconds, emaDecay }`; stop iterating to pause, call again to continue
   * @throws RangeError naming the value when `steps` or `reportEvery` is not a positive integer, or the loss stops
   *   being finite
   * @example
   * ```ts
   * import { Denoiser2dTrainer } from "../../mod.ts";
   * const trainer = new Denoiser2dTrainer("moons2d", { hiddenSizes: [16], batchSize: 32 });
   * const steps: number[] = [];
   * for (const { step } of trainer.train(50, { reportEvery: 20 })) steps.push(step);
   * if (steps.join() !== "20,40,50") throw new Error(`progress every 20 steps and after the last, got ${steps}`);
   * ```
   */
  *train(steps: number, options: { reportEvery?: number } = {}): Generator<TrainingProgress, void> {
    if (!Number.isInteger(steps) || steps < 1) {
      throw new RangeError(`The number of steps must be a positive integer, got ${steps}`);
    }
    const reportEvery = options.reportEvery ?? 10;
    if (!Number.isInteger(reportEvery) || reportEvery < 1) {
      throw new RangeError(`reportEvery must be a positive integer, got ${reportEvery}`);
    }
    let sum = 0;
    let count = 0;
    for (let s = 0; s < steps; s++) {
      const start = performance.now();
      const loss = this.#step();
      this.#seconds += (performance.now() - start) / 1000;
      sum += loss;
      count++;
      if (count === reportEvery || s === steps - 1) {
        yield { step: this.step, loss: sum / count, seconds: this.#seconds, emaDecay: this.#decayAt(this.step) };
        sum = 0;
        count = 0;
      }
    }
  }

  /**
   * The trained model: the EMA weights theta-bar (or the raw weights theta), rounded to float32, as a
   * `DenoisingModel` that no longer changes when training continues.
   *
   * @param options `ema` (default true): false for the raw weights
   * @returns the model, carrying the scheduler config and the training facts
   * @example
   * ```ts
   * import { Denoiser2dTrainer } from "../../mod.ts";
   * const trainer = new Denoiser2dTrainer("grid2d", { hiddenSizes: [16], batchSize: 32 });
   * for (const progress of trainer.train(20)) if (!(progress.loss > 0)) throw new Error(`loss ${progress.loss}`);
   * const model = trainer.model();
   * if (model.config.hiddenSizes.join() !== "16") throw new Error("the model has the trainer's shape");
   * ```
   */
  model(options: { ema?: boolean } = {}): LearnedDenoiser2d {
    const ema = options.ema ?? true;
    return new LearnedDenoiser2d(this.config, ema ? this.emaParameters : this.network.parameters, {
      schedulerConfig: this.scheduler.toConfig() as Record<string, unknown>,
      training: {
        data: this.dataName,
        steps: this.step,
        batch_size: this.#batchSize,
        learning_rate: this.optimizer.learningRate,
        decay_steps: this.#decaySteps ?? null,
        ema_decay: this.#emaDecay,
        weights: ema ? "ema" : "raw",
        seed: this.#seed,
        seconds: Number(this.#seconds.toFixed(3)),
        objective: "L_simple (epsilon prediction), t uniform over the training timesteps",
      },
    });
  }

  /**
   * The learning rate of step k + 1 (k steps taken): constant, or cosine-decayed to 0 over `decaySteps`.
   *
   * alpha_k = alpha (1 + cos(pi min(k, K) / K)) / 2 with K = decaySteps
   *
   * @param k steps taken so far
   * @returns alpha_k (never below 1e-3 alpha, so that Adam's step stays defined)
   * @example
   * ```ts
   * import { Denoiser2dTrainer } from "../../mod.ts";
   * const trainer = new Denoiser2dTrainer("ring2d", { learningRate: 0.01, decaySteps: 100 });
   * // cosine decay: alpha at k = K / 2 is alpha (1 + cos(pi / 2)) / 2 = alpha / 2
   * if (Math.abs(trainer.learningRateAt(50) - 0.005) > 1e-12) throw new Error(`got ${trainer.learningRateAt(50)}`);
   * ```
   */
  learningRateAt(k: number): number {
    const alpha = this.optimizer.learningRate;
    if (this.#decaySteps === undefined) return alpha;
    const progress = Math.min(k, this.#decaySteps) / this.#decaySteps;
    return Math.max(alpha * 0.5 * (1 + Math.cos(Math.PI * progress)), 1e-3 * alpha);
  }

  /**
   * The EMA decay of the k-th update, as diffusers' `EMAModel.get_decay` (no warm-up, `update_after_step` 0): with
   * s = k - 1, 0 when s = 0 (the EMA starts as a copy), else min(decay, (1 + s) / (10 + s)).
   */
  #decayAt(k: number): number {
    const s = k - 1;
    return s <= 0 ? 0 : Math.min(this.#emaDecay, (1 + s) / (10 + s));
  }

  /** One DDPM training step; returns its L_simple per coordinate. */
  #step(): number {
    const batch = this.#batchSize;
    const generator = this.#generator;
    const T = this.config.numTrainTimesteps;
    const { embeddingDim } = this.config;
    // 1. x_0 ~ q(x_0): exact draws of the mixture
    const x0 = this.mixture.sample(batch, generator).samples;
    // 2. t ~ U{0, ..., T - 1}, one 32-bit word per item (the modulo bias is below T / 2^32)
    const timesteps = new Array<number>(batch);
    for (let b = 0; b < batch; b++) timesteps[b] = generator.nextUint32() % T;
    // 3. eps ~ N(0, I)
    const noise = generator.randn([batch, 2]);
    // 4. x_t = sqrt(alphaBar_t) x_0 + sqrt(1 - alphaBar_t) eps, DDPM eq. (4) (diffusers' add_noise)
    const noisy = this.scheduler.addNoise(x0, noise, timesteps);
    // 5. the network's input [x_t, Fourier features of x_t, e(t)]
    const embedding = new Float64Array(batch * embeddingDim);
    for (let b = 0; b < batch; b++) {
      const row = timesteps[b] * embeddingDim;
      embedding.set(this.#embeddingTable.subarray(row, row + embeddingDim), b * embeddingDim);
    }
    const input = networkInput(this.config, noisy.data, embedding);
    // 6. eps_theta and L_simple = mean (eps_theta - eps)^2, with dL/d eps_theta = 2 (eps_theta - eps) / (batch d)
    const pass = this.network.forward(input, batch);
    const gradOutput = new Float64Array(2 * batch);
    let loss = 0;
    for (let i = 0; i < 2 * batch; i++) {
      const difference = pass.output[i] - noise.data[i];
      loss += difference * difference;
      gradOutput[i] = (2 * difference) / (2 * batch);
    }
    loss /= 2 * batch;
    if (!Number.isFinite(loss)) {
      throw new RangeError(
        `The training loss is not finite at step ${this.step + 1} (${loss}); lower the learning rate`,
      );
    }
    // 7. backpropagation and one Adam step on theta
    this.network.backward(pass, gradOutput, this.#gradient);
    this.optimizer.step(this.network.parameters, this.#gradient, this.learningRateAt(this.step));
    // 8. theta-bar <- decay theta-bar + (1 - decay) theta
    const decay = this.#decayAt(this.step);
    const theta = this.network.parameters;
    const ema = this.emaParameters;
    for (let i = 0; i < ema.length; i++) ema[i] = decay * ema[i] + (1 - decay) * theta[i];
    this.#lastLoss = loss;
    return loss;
  }
}

/** Options of `trainDenoiser2d`: the trainer's, plus how long to train and where to report. */
export interface TrainDenoiser2dOptions extends Denoiser2dTrainerOptions {
  /** Training steps (default 3000). */
  steps?: number;
  /** Called with every report (every `reportEvery` steps). */
  onProgress?: (progress: TrainingProgress) => void;
  /** How often to report (default 100). */
  reportEvery?: number;
}

/**
 * Train a 2-D noise predictor in one call and return its EMA model.
 *
 * theta* ~ argmin_theta E || eps - eps_theta(sqrt(alphaBar_t) x_0 + sqrt(1 - alphaBar_t) eps, t) ||^2
 *
 * @param data `"ring2d"`, `"moons2d"` or `"grid2d"`, or a 2-D `GaussianMixture`
 * @param options `steps` (default 3000), `onProgress`, `reportEvery`, and the trainer's options
 * @returns the trained model (EMA weights)
 * @throws RangeError as `Denoiser2dTrainer` and its `train` do
 * @example
 * ```ts
 * import { trainDenoiser2d } from "../../mod.ts";
 * const seen: number[] = [];
 * const model = trainDenoiser2d("ring2d", { steps: 30, hiddenSizes: [16], reportEvery: 10, onProgress: ({ step }) => seen.push(step) });
 * if (seen.join() !== "10,20,30" || model.inChannels !== 2) throw new Error(`progress at ${seen}`);
 * ```
 */
export function trainDenoiser2d(
  data: string | GaussianMixture,
  options: TrainDenoiser2dOptions = {},
): LearnedDenoiser2d {
  const steps = options.steps ?? 3000;
  const trainer = new Denoiser2dTrainer(data, { decaySteps: steps, ...options });
  for (const progress of trainer.train(steps, { reportEvery: options.reportEvery ?? 100 })) {
    options.onProgress?.(progress);
  }
  return trainer.model();
}

function resolveData(data: string | GaussianMixture): { mixture: GaussianMixture; name: string } {
  if (data instanceof GaussianMixture) {
    if (data.dim !== 2) throw new RangeError(`A 2-D trainer needs a mixture of dimension 2, got dimension ${data.dim}`);
    return { mixture: data, name: "custom" };
  }
  const name = typeof data === "string" && data.startsWith("builtin:") ? data.slice("builtin:".length) : data;
  if (typeof name !== "string" || !DATA_SETS_2D.includes(name)) {
    throw new RangeError(`Unknown 2-D data set ${JSON.stringify(data)}; the known ones are ${DATA_SETS_2D.join(", ")}`);
  }
  return { mixture: builtinMixture(name), name };
}

function checkConfig(config: LearnedDenoiser2dConfig): LearnedDenoiser2dConfig {
  const { hiddenSizes, embeddingDim, maxPeriod, numTrainTimesteps, coordinateFrequencies } = config ?? {};
  if (!Array.isArray(hiddenSizes) || hiddenSizes.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new RangeError(`hiddenSizes must be an array of positive integers, got ${JSON.stringify(hiddenSizes)}`);
  }
  if (!Number.isInteger(embeddingDim) || embeddingDim < 4 || embeddingDim % 2 !== 0) {
    throw new RangeError(`The embedding length must be an even integer of at least 4, got ${embeddingDim}`);
  }
  if (!(Number.isFinite(maxPeriod) && maxPeriod > 1)) {
    throw new RangeError(`maxPeriod must be a finite number above 1, got ${maxPeriod}`);
  }
  if (!Number.isInteger(numTrainTimesteps) || numTrainTimesteps < 1) {
    throw new RangeError(`numTrainTimesteps must be a positive integer, got ${numTrainTimesteps}`);
  }
  if (!Number.isInteger(coordinateFrequencies) || coordinateFrequencies < 0 || coordinateFrequencies > 16) {
    throw new RangeError(`coordinateFrequencies must be an integer in [0, 16], got ${coordinateFrequencies}`);
  }
  return Object.freeze({
    hiddenSizes: Object.freeze([...hiddenSizes]),
    embeddingDim,
    maxPeriod,
    numTrainTimesteps,
    coordinateFrequencies,
  });
}

function networkSizes(config: LearnedDenoiser2dConfig): number[] {
  return [2 + 4 * config.coordinateFrequencies + config.embeddingDim, ...config.hiddenSizes, 2];
}

/**
 * The network's input rows [x, y, sin(2^k pi x), cos(2^k pi x), sin(2^k pi y), cos(2^k pi y) for k < K, e(t)]
 * (Fourier features of the coordinates, as in NeRF's positional encoding, then the timestep embedding).
 */
function networkInput(
  config: LearnedDenoiser2dConfig,
  points: ArrayLike<number>,
  embedding: Float64Array,
): Float64Array {
  const { embeddingDim, coordinateFrequencies: K } = config;
  const batch = points.length / 2;
  const width = 2 + 4 * K + embeddingDim;
  const input = new Float64Array(batch * width);
  for (let b = 0; b < batch; b++) {
    const row = b * width;
    for (let c = 0; c < 2; c++) {
      const x = points[2 * b + c];
      input[row + c] = x;
      for (let k = 0; k < K; k++) {
        const angle = 2 ** k * Math.PI * x;
        input[row + 2 + 4 * k + 2 * c] = Math.sin(angle);
        input[row + 2 + 4 * k + 2 * c + 1] = Math.cos(angle);
      }
    }
    input.set(embedding.subarray(b * embeddingDim, (b + 1) * embeddingDim), row + 2 + 4 * K);
  }
  return input;
}

function fromFile(
  file: { tensors: Map<string, { shape: number[]; data: Float32Array }>; metadata: Record<string, string> },
  source: string,
) {
  const { tensors, metadata } = file;
  if (metadata.format !== FORMAT) {
    throw new Error(
      `${source} is not a saved 2-D model: its metadata format is ${
        JSON.stringify(metadata.format)
      }, expected "${FORMAT}"`,
    );
  }
  let config: LearnedDenoiser2dConfig;
  let schedulerConfig: Record<string, unknown>;
  let training: Record<string, unknown>;
  try {
    config = JSON.parse(metadata.config);
    schedulerConfig = JSON.parse(metadata.scheduler_config);
    training = JSON.parse(metadata.training ?? "{}");
  } catch (error) {
    throw new Error(`${source} has unreadable JSON metadata (${error instanceof Error ? error.message : error})`);
  }
  const sizes = networkSizes(checkConfig(config));
  const parameters: number[] = [];
  for (let l = 0; l + 1 < sizes.length; l++) {
    for (const [part, shape] of [["weight", [sizes[l + 1], sizes[l]]], ["bias", [sizes[l + 1]]]] as const) {
      const name = `layers.${l}.${part}`;
      const tensor = tensors.get(name);
      if (!tensor) throw new Error(`${source} is missing the weight ${name}`);
      if (tensor.shape.join(",") !== shape.join(",")) {
        throw new Error(`${source}: ${name} has shape [${tensor.shape.join(", ")}], expected [${shape.join(", ")}]`);
      }
      for (const v of tensor.data) parameters.push(v);
    }
  }
  return new LearnedDenoiser2d(config, parameters, { schedulerConfig, training });
}
