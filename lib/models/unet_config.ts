/**
 * Validation of a diffusers `UNet2DModel` config.json: the subset this package compiles to ONNX.
 *
 * Supported: DownBlock2D / AttnDownBlock2D, UpBlock2D / AttnUpBlock2D, UNetMidBlock2D (with or without its
 * attention), positional (with `flip_sin_to_cos`, `freq_shift`) and fourier time embeddings, SiLU, GroupNorm with
 * the config's groups and eps, `attention_head_dim` null or a number, `downsample_padding`,
 * `center_input_sample`, `mid_block_scale_factor`, `resnet_time_scale_shift: "default"`. Anything else is refused
 * with an error that names the key and the value.
 *
 * @module
 */

/** A validated UNet2DModel config, with diffusers' defaults filled in. */
import { MAX_CHANNELS, MAX_SAMPLE_SIZE } from "../core/_limits.ts";
export interface UNet2DConfig {
  /** The trained spatial size (square side or [height, width]). */
  sampleSize: number | [number, number];
  /** Channels of x_t. */
  inChannels: number;
  /** Channels of the prediction. */
  outChannels: number;
  /** x <- 2x - 1 before the first convolution. */
  centerInputSample: boolean;
  /** How t is embedded. */
  timeEmbeddingType: "positional" | "fourier";
  /** Width of the time MLP (default 4 * blockOutChannels[0]). */
  timeEmbeddingDim: number;
  /** Sinusoid frequency shift (positional). */
  freqShift: number;
  /** [cos, sin] instead of [sin, cos] (positional). */
  flipSinToCos: boolean;
  /** Down block types, outermost first. */
  downBlockTypes: ("DownBlock2D" | "AttnDownBlock2D")[];
  /** Up block types, innermost first. */
  upBlockTypes: ("UpBlock2D" | "AttnUpBlock2D")[];
  /** Channels per resolution level. */
  blockOutChannels: number[];
  /** ResNet blocks per down block (up blocks have one more). */
  layersPerBlock: number;
  /** The mid block's residual divisor. */
  midBlockScaleFactor: number;
  /** Padding of the stride-2 downsampling convolution (0: pad right/bottom by 1). */
  downsamplePadding: number;
  /** Head width of attention, or null for one head over all channels. */
  attentionHeadDim: number | null;
  /** GroupNorm groups. */
  normNumGroups: number;
  /** GroupNorm groups of the mid block's attention (default: normNumGroups). */
  attnNormNumGroups: number;
  /** GroupNorm epsilon. */
  normEps: number;
  /** Whether the mid block has its attention layer. */
  addAttention: boolean;
  /** The raw config as read. */
  raw: Record<string, unknown>;
}

const ignoredKeys = new Set(["_class_name", "_diffusers_version", "_name_or_path", "_use_default_values"]);

/**
 * Validate a diffusers UNet2DModel config and fill in diffusers' defaults.
 *
 * time embedding dim = time_embedding_dim ?? 4 * block_out_channels[0]
 *
 * @param config the parsed config.json
 * @param source a name for error messages (the path)
 * @returns the validated config
 * @throws Error naming the key and value of anything unsupported or invalid
 * @example
 * ```ts
 * import { parseUNetConfig } from "../../mod.ts";
 * const config = parseUNetConfig({ _class_name: "UNet2DModel", sample_size: 32, block_out_channels: [32, 64],
 *   down_block_types: ["DownBlock2D", "AttnDownBlock2D"], up_block_types: ["AttnUpBlock2D", "UpBlock2D"] });
 * // diffusers: time_embed_dim = block_out_channels[0] * 4
 * if (config.timeEmbeddingDim !== 128) throw new Error(`got ${config.timeEmbeddingDim}`);
 * ```
 */
export function parseUNetConfig(config: unknown, source = "UNet2DModel config"): UNet2DConfig {
  if (config === null || typeof config !== "object" || Array.isArray(config)) {
    throw new TypeError(`${source} must be a JSON object, got ${JSON.stringify(config)}`);
  }
  const raw = config as Record<string, unknown>;
  const refuse = (key: string, why: string): never => {
    throw new Error(`${source}: unsupported ${key} = ${JSON.stringify(raw[key])} (${why})`);
  };
  const get = <T>(key: string, fallback: T): unknown => (key in raw ? raw[key] : fallback);
  const className = raw._class_name;
  if (className !== undefined && className !== "UNet2DModel") refuse("_class_name", "only UNet2DModel is supported");

  const positiveInt = (key: string, fallback: unknown): number => {
    const v = get(key, fallback);
    if (!Number.isInteger(v) || (v as number) < 1) refuse(key, "expected a positive integer");
    return v as number;
  };
  const bool = (key: string, fallback: boolean): boolean => {
    const v = get(key, fallback);
    if (typeof v !== "boolean") refuse(key, "expected true or false");
    return v as boolean;
  };
  const oneOf = <T extends string>(key: string, fallback: T | null, allowed: readonly (T | null)[]): T | null => {
    const v = get(key, fallback) as T | null;
    if (!allowed.includes(v)) refuse(key, `supported: ${allowed.map((a) => JSON.stringify(a)).join(", ")}`);
    return v;
  };
  const known = new Set<string>();
  const use = (...keys: string[]) => keys.forEach((k) => known.add(k));

  use("sample_size");
  const sampleSizeRaw = get("sample_size", null);
  let sampleSize: number | [number, number];
  if (Number.isInteger(sampleSizeRaw) && (sampleSizeRaw as number) > 0) sampleSize = sampleSizeRaw as number;
  else if (
    Array.isArray(sampleSizeRaw) && sampleSizeRaw.length === 2 &&
    sampleSizeRaw.every((d) => Number.isInteger(d) && d > 0)
  ) sampleSize = [sampleSizeRaw[0], sampleSizeRaw[1]];
  else sampleSize = refuse("sample_size", "expected a positive integer or [height, width]");
  // Limits no real checkpoint meets, checked before any weight is read or graph built (docs/reliability.md)
  if ((typeof sampleSize === "number" ? [sampleSize] : sampleSize).some((d) => d > MAX_SAMPLE_SIZE)) {
    refuse("sample_size", `more than the limit of ${MAX_SAMPLE_SIZE}`);
  }

  use("in_channels", "out_channels", "center_input_sample", "time_embedding_type", "time_embedding_dim");
  const inChannels = positiveInt("in_channels", 3);
  const outChannels = positiveInt("out_channels", 3);
  if (inChannels > MAX_CHANNELS) refuse("in_channels", `more than the limit of ${MAX_CHANNELS}`);
  if (outChannels > MAX_CHANNELS) refuse("out_channels", `more than the limit of ${MAX_CHANNELS}`);
  const centerInputSample = bool("center_input_sample", false);
  const timeEmbeddingType = oneOf("time_embedding_type", "positional", ["positional", "fourier"]) as
    | "positional"
    | "fourier";

  use("freq_shift", "flip_sin_to_cos");
  const freqShift = get("freq_shift", 0);
  if (typeof freqShift !== "number" || !Number.isFinite(freqShift)) refuse("freq_shift", "expected a number");
  const flipSinToCos = bool("flip_sin_to_cos", true);

  use("down_block_types", "up_block_types", "block_out_channels", "mid_block_type");
  const down = get("down_block_types", ["DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"]);
  if (!Array.isArray(down) || down.length === 0) refuse("down_block_types", "expected a non-empty list");
  (down as unknown[]).forEach((t) => {
    if (t !== "DownBlock2D" && t !== "AttnDownBlock2D") {
      refuse(
        "down_block_types",
        `block type ${JSON.stringify(t)} is not supported; use DownBlock2D or AttnDownBlock2D`,
      );
    }
  });
  const up = get("up_block_types", ["AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"]);
  if (!Array.isArray(up) || up.length !== (down as unknown[]).length) {
    refuse("up_block_types", `expected a list as long as down_block_types (${(down as unknown[]).length})`);
  }
  (up as unknown[]).forEach((t) => {
    if (t !== "UpBlock2D" && t !== "AttnUpBlock2D") {
      refuse("up_block_types", `block type ${JSON.stringify(t)} is not supported; use UpBlock2D or AttnUpBlock2D`);
    }
  });
  const channels = get("block_out_channels", [224, 448, 672, 896]);
  if (
    !Array.isArray(channels) || channels.length !== (down as unknown[]).length ||
    !channels.every((c) => Number.isInteger(c) && c > 0)
  ) {
    refuse("block_out_channels", `expected ${(down as unknown[]).length} positive integers, one per down block`);
  }
  if ((channels as number[]).some((c) => c > MAX_CHANNELS)) {
    refuse("block_out_channels", `an entry is more than the limit of ${MAX_CHANNELS}`);
  }
  oneOf("mid_block_type", "UNetMidBlock2D", ["UNetMidBlock2D"]);

  use("layers_per_block", "mid_block_scale_factor", "downsample_padding", "downsample_type", "upsample_type");
  const layersPerBlock = positiveInt("layers_per_block", 2);
  const midBlockScaleFactor = get("mid_block_scale_factor", 1);
  if (typeof midBlockScaleFactor !== "number" || !(midBlockScaleFactor > 0)) {
    refuse("mid_block_scale_factor", "expected a positive number");
  }
  const downsamplePadding = get("downsample_padding", 1);
  if (!Number.isInteger(downsamplePadding) || (downsamplePadding as number) < 0) {
    refuse("downsample_padding", "expected a non-negative integer");
  }
  oneOf("downsample_type", "conv", ["conv"]);
  oneOf("upsample_type", "conv", ["conv"]);

  use("dropout", "act_fn", "attention_head_dim", "norm_num_groups", "attn_norm_num_groups", "norm_eps");
  const dropout = get("dropout", 0);
  if (typeof dropout !== "number" || dropout < 0 || dropout >= 1) refuse("dropout", "expected a number in [0, 1)");
  oneOf("act_fn", "silu", ["silu", "swish"]);
  const headDim = get("attention_head_dim", 8);
  if (headDim !== null && (!Number.isInteger(headDim) || (headDim as number) < 1)) {
    refuse("attention_head_dim", "expected null or a positive integer");
  }
  const normNumGroups = positiveInt("norm_num_groups", 32);
  const attnGroups = get("attn_norm_num_groups", null);
  if (attnGroups !== null && (!Number.isInteger(attnGroups) || (attnGroups as number) < 1)) {
    refuse("attn_norm_num_groups", "expected null or a positive integer");
  }
  const normEps = get("norm_eps", 1e-5);
  if (typeof normEps !== "number" || !(normEps > 0)) refuse("norm_eps", "expected a positive number");

  use("resnet_time_scale_shift", "add_attention", "class_embed_type", "num_class_embeds", "num_train_timesteps");
  oneOf("resnet_time_scale_shift", "default", ["default"]);
  const addAttention = bool("add_attention", true);
  oneOf("class_embed_type", null, [null]);
  if (get("num_class_embeds", null) !== null) refuse("num_class_embeds", "class conditioning is not supported");
  const numTrain = get("num_train_timesteps", null);
  if (numTrain !== null && (!Number.isInteger(numTrain) || (numTrain as number) < 1)) {
    refuse("num_train_timesteps", "expected null or a positive integer");
  }

  const timeEmbeddingDim = raw.time_embedding_dim === undefined || raw.time_embedding_dim === null
    ? 4 * (channels as number[])[0]
    : positiveInt("time_embedding_dim", null);

  for (const key of Object.keys(raw)) {
    if (!known.has(key) && !ignoredKeys.has(key)) refuse(key, "this UNet2DModel option is not supported");
  }
  const blockOutChannels = channels as number[];
  for (const c of blockOutChannels) {
    if (c % normNumGroups !== 0) refuse("norm_num_groups", `block_out_channels entry ${c} is not a multiple of it`);
    if (headDim !== null && c % (headDim as number) !== 0) {
      refuse("attention_head_dim", `block_out_channels entry ${c} is not a multiple of it`);
    }
  }
  return {
    sampleSize,
    inChannels,
    outChannels,
    centerInputSample,
    timeEmbeddingType,
    timeEmbeddingDim,
    freqShift: freqShift as number,
    flipSinToCos,
    downBlockTypes: down as UNet2DConfig["downBlockTypes"],
    upBlockTypes: up as UNet2DConfig["upBlockTypes"],
    blockOutChannels,
    layersPerBlock,
    midBlockScaleFactor: midBlockScaleFactor as number,
    downsamplePadding: downsamplePadding as number,
    attentionHeadDim: headDim as number | null,
    normNumGroups,
    attnNormNumGroups: (attnGroups as number | null) ?? normNumGroups,
    normEps: normEps as number,
    addAttention,
    raw,
  };
}
