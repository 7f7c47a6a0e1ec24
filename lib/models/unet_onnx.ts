/**
 * Compile a diffusers `UNet2DModel` (a validated config plus its weights) to an ONNX graph, in TypeScript.
 *
 * | diffusers                  | here                   | computation                                           |
 * |----------------------------|------------------------|-------------------------------------------------------|
 * | `time_proj`                | `timeProjection`       | [sin, cos](t * f) or fourier [sin, cos](2 pi log(t) W) |
 * | `time_embedding`           | `timeEmbedding`        | emb = W2 SiLU(W1 t_emb + b1) + b2                      |
 * | `ResnetBlock2D`            | `resnet`               | (x + conv2(SiLU(GN(conv1(SiLU(GN x)) + W emb))))/s     |
 * | `Attention` (spatial)      | `attention`            | x + W_o softmax(q k^T / sqrt(d)) v, over GN(x)         |
 * | `Downsample2D` / `Upsample2D` | `downsample` / `upsample` | stride-2 conv / nearest x2 then conv            |
 *
 * The graph takes `sample` [batch, C, height, width] float32 and `timestep` [batch] float32 (one timestep per
 * item; for fourier models t is sigma) and returns `out_sample`. Batch, height and width are dynamic.
 * Numbered comments follow `UNet2DModel.forward` in diffusers.
 *
 * @module
 */
import { OnnxGraphBuilder } from "./onnx_graph.ts";
import type { UNet2DConfig } from "./unet_config.ts";

/**
 * Bump when the compiled graph changes, so cached graphs are rebuilt.
 *
 * @example
 * ```ts
 * import { UNET_COMPILER_VERSION } from "../../mod.ts";
 * if (!UNET_COMPILER_VERSION.startsWith("ddimlab-unet-onnx-")) throw new Error(UNET_COMPILER_VERSION);
 * ```
 */
export const UNET_COMPILER_VERSION = "ddimlab-unet-onnx-1";

/** A source of UNet weights by diffusers' state_dict name. */
export interface UNetWeights {
  /**
   * The weight called `name`, which must have `shape`.
   *
   * @param name the diffusers state_dict key (current names: `to_q`, `to_k`, `to_v`, `to_out.0`)
   * @param shape the shape the config implies
   * @returns its values, row-major
   */
  take(name: string, shape: readonly number[]): Float32Array;
}

/** A named tensor a checkpoint reader returns. */
export interface NamedTensor {
  /** The dimensions. */
  shape: readonly number[];
  /** The values as float32. */
  data: Float32Array;
}

const legacyAttentionNames: [string, string][] = [
  [".to_q.", ".query."],
  [".to_k.", ".key."],
  [".to_v.", ".value."],
  [".to_out.0.", ".proj_attn."],
];

/**
 * Serve weights from a checkpoint's tensors, checking each shape and accepting the 2022 attention names.
 *
 * key(to_q | to_k | to_v | to_out.0) = key(query | key | value | proj_attn) for the google/ddpm-* checkpoints
 *
 * @param tensors the checkpoint's tensors by name
 * @param source a name for error messages (the file)
 * @returns a weight source that names any missing key or wrong shape, and lists unused keys
 * @example
 * ```ts
 * import { readSafetensors, weightsFromTensors } from "../../mod.ts";
 * const path = "test/fixtures/unet/tiny-ddpm/diffusion_pytorch_model.safetensors";
 * const weights = weightsFromTensors(readSafetensors(path).tensors, "unet");
 * // nothing has been asked for yet, so every tensor of the file is still unused
 * if (!weights.unused().includes("conv_in.weight")) throw new Error("conv_in.weight should be listed as unused");
 * ```
 */
export function weightsFromTensors(
  tensors: ReadonlyMap<string, NamedTensor>,
  source: string,
): UNetWeights & { unused(): string[] } {
  const used = new Set<string>();
  return {
    take(name, shape) {
      let key = name;
      if (!tensors.has(key)) {
        for (const [now, then] of legacyAttentionNames) {
          if (name.includes(now) && tensors.has(name.replace(now, then))) key = name.replace(now, then);
        }
      }
      const tensor = tensors.get(key);
      if (tensor === undefined) {
        throw new Error(`${source} has no weight ${name} (expected shape [${shape.join(", ")}])`);
      }
      const same = tensor.shape.length === shape.length && tensor.shape.every((d, i) => d === shape[i]);
      if (!same) {
        throw new Error(
          `${source}: weight ${key} has shape [${tensor.shape.join(", ")}] but the config needs [${shape.join(", ")}]`,
        );
      }
      used.add(key);
      return tensor.data;
    },
    unused: () => [...tensors.keys()].filter((k) => !used.has(k)),
  };
}

/** Options of `compileUNet`. */
export interface CompileUNetOptions {
  /**
   * Also expose each top-level block's output (`time_proj`, `time_embedding`, `conv_in`, `down_blocks.i`,
   * `mid_block`, `up_blocks.i`, `conv_norm_out`, `conv_act`, `conv_out`) as graph outputs, for debugging.
   */
  debugOutputs?: boolean;
  /** Fold the attention scale 1/sqrt(d) into the query weights (one Mul less per attention; default false). */
  foldAttentionScale?: boolean;
}

/**
 * Build the ONNX graph of a diffusers UNet2DModel from its config and weights.
 *
 * out = UNet2DModel(sample, timestep), divided by sigma = timestep for fourier models, as diffusers does
 *
 * @param config the validated config (`parseUNetConfig`)
 * @param weights the weights by diffusers' names
 * @param options debugging outputs and graph variants
 * @returns the encoded ONNX ModelProto
 * @throws Error naming any missing weight or wrong shape
 * @example
 * ```ts
 * import { compileUNet, parseUNetConfig, readSafetensors, weightsFromTensors } from "../../mod.ts";
 * import { readFileSync } from "node:fs";
 * const dir = "test/fixtures/unet/tiny-ddpm";
 * const config = parseUNetConfig(JSON.parse(readFileSync(`${dir}/config.json`, "utf8")));
 * const weights = weightsFromTensors(readSafetensors(`${dir}/diffusion_pytorch_model.safetensors`).tensors, "unet");
 * const onnxBytes = compileUNet(config, weights);
 * if (weights.unused().length !== 0) throw new Error(`weights left unused: ${weights.unused().join(", ")}`);
 * // an ONNX ModelProto starts with field 1 (ir_version), a varint: tag byte 0x08
 * if (onnxBytes[0] !== 0x08) throw new Error("not an ONNX ModelProto");
 * ```
 */
export function compileUNet(config: UNet2DConfig, weights: UNetWeights, options: CompileUNetOptions = {}): Uint8Array {
  const g = new OnnxGraphBuilder("UNet2DModel");
  const c = new UNetCompiler(g, config, weights, options);
  const debug: [string, string][] = [];
  const mark = (name: string, value: string) => {
    if (options.debugOutputs) debug.push([name, value]);
    return value;
  };

  let x = g.input("sample", ["batch", config.inChannels, "height", "width"]);
  const timestep = g.input("timestep", ["batch"]);

  // 0. center input: x <- 2x - 1
  if (config.centerInputSample) {
    x = g.node("Sub", [g.node("Mul", [x, g.constant([2], [])]), g.constant([1], [])], {}, "centered");
  }

  // 1. time: t_emb = time_proj(t), emb = time_embedding(t_emb)
  const tEmb = mark("time_proj", c.timeProjection(timestep));
  const emb = mark("time_embedding", c.timeEmbedding(tEmb));
  const embAct = c.silu(emb); // every ResnetBlock2D applies SiLU to emb before its projection

  // 2. pre-process
  x = mark("conv_in", c.conv("conv_in", x, config.inChannels, config.blockOutChannels[0], 3, 1, [1, 1, 1, 1]));

  // 3. down: collect the skip connections
  const skips: [string, number][] = [[x, config.blockOutChannels[0]]];
  let channels = config.blockOutChannels[0];
  config.downBlockTypes.forEach((type, i) => {
    const prefix = `down_blocks.${i}`;
    const outChannels = config.blockOutChannels[i];
    for (let j = 0; j < config.layersPerBlock; j++) {
      x = c.resnet(`${prefix}.resnets.${j}`, x, j === 0 ? channels : outChannels, outChannels, embAct, 1);
      if (type === "AttnDownBlock2D") {
        x = c.attention(`${prefix}.attentions.${j}`, x, outChannels, config.normNumGroups, 1);
      }
      skips.push([x, outChannels]);
    }
    channels = outChannels;
    if (i < config.downBlockTypes.length - 1) {
      x = c.downsample(`${prefix}.downsamplers.0`, x, outChannels);
      skips.push([x, outChannels]);
    }
    mark(prefix, x);
  });

  // 4. mid: resnet, attention, resnet, each residual divided by mid_block_scale_factor
  const midScale = config.midBlockScaleFactor;
  x = c.resnet("mid_block.resnets.0", x, channels, channels, embAct, midScale);
  if (config.addAttention) x = c.attention("mid_block.attentions.0", x, channels, config.attnNormNumGroups, midScale);
  x = mark("mid_block", c.resnet("mid_block.resnets.1", x, channels, channels, embAct, midScale));

  // 5. up: concatenate the skips in reverse order
  const reversed = [...config.blockOutChannels].reverse();
  config.upBlockTypes.forEach((type, i) => {
    const prefix = `up_blocks.${i}`;
    const outChannels = reversed[i];
    for (let j = 0; j <= config.layersPerBlock; j++) {
      const [skip, skipChannels] = skips.pop()!;
      x = g.node("Concat", [x, skip], { axis: 1 }, `${prefix}.concat`);
      x = c.resnet(`${prefix}.resnets.${j}`, x, channels + skipChannels, outChannels, embAct, 1);
      channels = outChannels;
      if (type === "AttnUpBlock2D") {
        x = c.attention(`${prefix}.attentions.${j}`, x, outChannels, config.normNumGroups, 1);
      }
    }
    if (i < config.upBlockTypes.length - 1) x = c.upsample(`${prefix}.upsamplers.0`, x, outChannels);
    mark(prefix, x);
  });

  // 6. post-process: GroupNorm, SiLU, conv_out
  x = mark("conv_norm_out", c.groupNorm("conv_norm_out", x, channels, config.normNumGroups));
  x = mark("conv_act", c.silu(x));
  x = mark("conv_out", c.conv("conv_out", x, channels, config.outChannels, 3, 1, [1, 1, 1, 1]));

  // fourier (score-SDE) models predict the score times sigma: divide by sigma = timestep
  if (config.timeEmbeddingType === "fourier") {
    x = g.node("Div", [x, g.node("Reshape", [timestep, g.ints([-1, 1, 1, 1])])], {}, "divided_by_sigma");
  }
  g.output(x, "out_sample", ["batch", config.outChannels, "height", "width"]);
  for (const [name, value] of debug) g.output(value, `debug:${name}`, null);
  return g.encode({ docString: `${UNET_COMPILER_VERSION}: diffusers UNet2DModel compiled by ddimlab` });
}

class UNetCompiler {
  readonly #g: OnnxGraphBuilder;
  readonly #config: UNet2DConfig;
  readonly #weights: UNetWeights;
  readonly #options: CompileUNetOptions;

  constructor(g: OnnxGraphBuilder, config: UNet2DConfig, weights: UNetWeights, options: CompileUNetOptions) {
    this.#g = g;
    this.#config = config;
    this.#weights = weights;
    this.#options = options;
  }

  weight(name: string, shape: number[]): string {
    return this.#g.initializer(name, this.#weights.take(name, shape), shape);
  }

  silu(x: string): string {
    return this.#g.node("Mul", [x, this.#g.node("Sigmoid", [x])], {}, "silu");
  }

  /** t_emb: positional [sin(t f_i), cos(t f_i)] with f_i = exp(-ln(10000) i / (half - shift)), or fourier. */
  timeProjection(timestep: string): string {
    const g = this.#g;
    const config = this.#config;
    const dim = config.blockOutChannels[0];
    if (config.timeEmbeddingType === "fourier") {
      // GaussianFourierProjection(log=True, flip_sin_to_cos=False): x = log(sigma)[:, None] * W * 2 * pi
      const w = this.weight("time_proj.weight", [dim]);
      const logSigma = g.node("Unsqueeze", [g.node("Log", [timestep]), g.ints([1])]);
      let proj = g.node("Mul", [logSigma, w]);
      proj = g.node("Mul", [proj, g.constant([2], [])]);
      proj = g.node("Mul", [proj, g.constant([Math.PI], [])], {}, "fourier_phase");
      return g.node("Concat", [g.node("Sin", [proj]), g.node("Cos", [proj])], { axis: 1 }, "time_proj");
    }
    // get_timestep_embedding: exponent = -ln(max_period) * arange(half) / (half - freq_shift), in float32
    const half = Math.floor(dim / 2);
    const frequencies = new Float32Array(half);
    const minusLogPeriod = Math.fround(-Math.log(10000));
    for (let i = 0; i < half; i++) {
      const exponent = Math.fround(Math.fround(minusLogPeriod * i) / Math.fround(half - config.freqShift));
      frequencies[i] = Math.fround(Math.exp(exponent));
    }
    const phase = g.node("Mul", [g.node("Unsqueeze", [timestep, g.ints([1])]), g.constant(frequencies, [1, half])]);
    const sin = g.node("Sin", [phase]);
    const cos = g.node("Cos", [phase]);
    let emb = g.node("Concat", config.flipSinToCos ? [cos, sin] : [sin, cos], { axis: 1 }, "time_proj");
    if (dim % 2 === 1) emb = g.node("Pad", [emb, g.ints([0, 0, 0, 1])]);
    return emb;
  }

  timeEmbedding(tEmb: string): string {
    const config = this.#config;
    const inDim = config.timeEmbeddingType === "fourier" ? 2 * config.blockOutChannels[0] : config.blockOutChannels[0];
    const hidden = this.linear("time_embedding.linear_1", tEmb, inDim, config.timeEmbeddingDim);
    return this.linear("time_embedding.linear_2", this.silu(hidden), config.timeEmbeddingDim, config.timeEmbeddingDim);
  }

  linear(prefix: string, x: string, inDim: number, outDim: number): string {
    const w = this.weight(`${prefix}.weight`, [outDim, inDim]);
    const b = this.weight(`${prefix}.bias`, [outDim]);
    return this.#g.node("Gemm", [x, w, b], { transB: 1 }, prefix);
  }

  conv(prefix: string, x: string, inC: number, outC: number, kernel: number, stride: number, pads: number[]): string {
    const w = this.weight(`${prefix}.weight`, [outC, inC, kernel, kernel]);
    const b = this.weight(`${prefix}.bias`, [outC]);
    return this.#g.node("Conv", [x, w, b], {
      kernel_shape: [kernel, kernel],
      strides: [stride, stride],
      pads,
    }, prefix);
  }

  /** GroupNorm(x) = (x - mean_g) / sqrt(var_g + eps) * gamma + beta, as InstanceNormalization over [N, G, -1]. */
  groupNorm(prefix: string, x: string, channels: number, groups: number, eps = this.#config.normEps): string {
    const g = this.#g;
    if (channels % groups !== 0) {
      throw new Error(`${prefix}: GroupNorm with ${groups} groups cannot split ${channels} channels`);
    }
    const gamma = this.weight(`${prefix}.weight`, [channels]);
    const beta = this.weight(`${prefix}.bias`, [channels]);
    const grouped = g.node("Reshape", [x, g.ints([0, groups, -1])]);
    const normed = g.node("InstanceNormalization", [
      grouped,
      g.constant(new Float32Array(groups).fill(1), [groups]),
      g.constant(new Float32Array(groups), [groups]),
    ], { epsilon: eps });
    const back = g.node("Reshape", [normed, g.node("Shape", [x])]);
    const scale = g.node("Reshape", [gamma, g.ints([channels, 1, 1])]);
    const shift = g.node("Reshape", [beta, g.ints([channels, 1, 1])]);
    return g.node("Add", [g.node("Mul", [back, scale]), shift], {}, prefix);
  }

  resnet(prefix: string, x: string, inC: number, outC: number, embAct: string, outputScale: number): string {
    const g = this.#g;
    const groups = this.#config.normNumGroups;
    let h = this.silu(this.groupNorm(`${prefix}.norm1`, x, inC, groups));
    h = this.conv(`${prefix}.conv1`, h, inC, outC, 3, 1, [1, 1, 1, 1]);
    const temb = this.linear(`${prefix}.time_emb_proj`, embAct, this.#config.timeEmbeddingDim, outC);
    h = g.node("Add", [h, g.node("Unsqueeze", [temb, g.ints([2, 3])])]);
    h = this.silu(this.groupNorm(`${prefix}.norm2`, h, outC, groups));
    h = this.conv(`${prefix}.conv2`, h, outC, outC, 3, 1, [1, 1, 1, 1]);
    const shortcut = inC === outC ? x : this.conv(`${prefix}.conv_shortcut`, x, inC, outC, 1, 1, [0, 0, 0, 0]);
    let out = g.node("Add", [shortcut, h], {}, prefix);
    if (outputScale !== 1) out = g.node("Div", [out, g.constant([outputScale], [])]);
    return out;
  }

  /** Spatial self-attention with a residual: x + W_o softmax(q k^T / sqrt(d)) v over GroupNorm(x). */
  attention(prefix: string, x: string, channels: number, groups: number, rescale: number): string {
    const g = this.#g;
    const headDim = this.#config.attentionHeadDim ?? channels;
    const heads = channels / headDim;
    const scale = 1 / Math.sqrt(headDim);
    const normed = this.groupNorm(`${prefix}.group_norm`, x, channels, groups);
    const tokens = g.node("Transpose", [g.node("Reshape", [normed, g.ints([0, channels, -1])])], { perm: [0, 2, 1] });
    const project = (name: string, input: string, factor = 1) => {
      const w = this.#weights.take(`${prefix}.${name}.weight`, [channels, channels]);
      const b = this.#weights.take(`${prefix}.${name}.bias`, [channels]);
      const wT = new Float32Array(channels * channels);
      for (let o = 0; o < channels; o++) {
        for (let i = 0; i < channels; i++) wT[i * channels + o] = w[o * channels + i] * factor;
      }
      const bias = factor === 1 ? b : b.map((v) => v * factor);
      const wName = g.initializer(`${prefix}.${name}.weight_t`, wT, [channels, channels]);
      const bName = g.initializer(`${prefix}.${name}.bias`, bias, [channels]);
      return g.node("Add", [g.node("MatMul", [input, wName]), bName], {}, `${prefix}.${name}`);
    };
    const fold = this.#options.foldAttentionScale === true;
    const q = project("to_q", tokens, fold ? scale : 1);
    const k = project("to_k", tokens);
    const v = project("to_v", tokens);
    let attended: string;
    if (heads === 1) {
      let scores = g.node("MatMul", [q, g.node("Transpose", [k], { perm: [0, 2, 1] })]);
      if (!fold) scores = g.node("Mul", [scores, g.constant([scale], [])]);
      attended = g.node("MatMul", [g.node("Softmax", [scores], { axis: -1 }), v]);
    } else {
      const split = (t: string, perm: number[]) =>
        g.node("Transpose", [g.node("Reshape", [t, g.ints([0, -1, heads, headDim])])], { perm });
      let scores = g.node("MatMul", [split(q, [0, 2, 1, 3]), split(k, [0, 2, 3, 1])]);
      if (!fold) scores = g.node("Mul", [scores, g.constant([scale], [])]);
      const heads4 = g.node("MatMul", [g.node("Softmax", [scores], { axis: -1 }), split(v, [0, 2, 1, 3])]);
      attended = g.node("Reshape", [g.node("Transpose", [heads4], { perm: [0, 2, 1, 3] }), g.ints([0, -1, channels])]);
    }
    const projected = project("to_out.0", attended);
    const spatial = g.node("Reshape", [g.node("Transpose", [projected], { perm: [0, 2, 1] }), g.node("Shape", [x])]);
    let out = g.node("Add", [spatial, x], {}, prefix);
    if (rescale !== 1) out = g.node("Div", [out, g.constant([rescale], [])]);
    return out;
  }

  /** Downsample2D: conv 3x3 stride 2; with padding 0, diffusers pads right and bottom by one first. */
  downsample(prefix: string, x: string, channels: number): string {
    const p = this.#config.downsamplePadding;
    const pads = p === 0 ? [0, 0, 1, 1] : [p, p, p, p];
    return this.conv(`${prefix}.conv`, x, channels, channels, 3, 2, pads);
  }

  /** Upsample2D: nearest-neighbour x2, then conv 3x3. */
  upsample(prefix: string, x: string, channels: number): string {
    const g = this.#g;
    const up = g.node("Resize", [x, "", g.constant([1, 1, 2, 2], [4])], {
      mode: "nearest",
      coordinate_transformation_mode: "asymmetric",
      nearest_mode: "floor",
    });
    return this.conv(`${prefix}.conv`, up, channels, channels, 3, 1, [1, 1, 1, 1]);
  }
}
