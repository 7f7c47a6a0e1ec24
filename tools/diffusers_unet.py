"""The subset of diffusers' UNet2DModel that the DDPM checkpoints use, written from its documented structure.

Parameter names, module nesting and config keys are diffusers' own (diffusers 0.30+), so a state dict saved from
this module loads strictly into `diffusers.UNet2DModel(**config)` and the other way round. The subset covers the
google/ddpm-* family: positional (sinusoidal) time embedding, ResnetBlock2D with the "default" time-scale shift,
DownBlock2D / AttnDownBlock2D / UpBlock2D / AttnUpBlock2D, UNetMidBlock2D with attention, convolutional down- and
upsampling. Anything else in a config is refused with a message that names the key and the value.

Notation (Ho et al. 2020, "Denoising Diffusion Probabilistic Models", appendix B):
    x_t        sample            the noisy image, [B, C, H, W]
    t          timestep          one training timestep per batch item
    emb(t)     time_proj         sinusoidal embedding of t, width block_out_channels[0]
    eps_theta  forward(x_t, t)   the predicted noise, same shape as x_t

Only PyTorch is needed (Debian's python3-torch 1.13 is enough).
"""

import json
import math

import torch
from torch import nn
import torch.nn.functional as F

DIFFUSERS_VERSION = "0.30.0"

# Every UNet2DModel constructor key with diffusers' default, in the spelling of its config.json.
UNET2D_DEFAULTS = {
    "sample_size": None,
    "in_channels": 3,
    "out_channels": 3,
    "center_input_sample": False,
    "time_embedding_type": "positional",
    "time_embedding_dim": None,
    "freq_shift": 0,
    "flip_sin_to_cos": True,
    "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"],
    "mid_block_type": "UNetMidBlock2D",
    "up_block_types": ["AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"],
    "block_out_channels": [224, 448, 672, 896],
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "downsample_padding": 1,
    "downsample_type": "conv",
    "upsample_type": "conv",
    "dropout": 0.0,
    "act_fn": "silu",
    "attention_head_dim": 8,
    "norm_num_groups": 32,
    "attn_norm_num_groups": None,
    "norm_eps": 1e-5,
    "resnet_time_scale_shift": "default",
    "add_attention": True,
    "class_embed_type": None,
    "num_class_embeds": None,
    "num_train_timesteps": None,
}

# The values this subset implements; any other value of these keys is refused.
SUPPORTED = {
    "time_embedding_type": {"positional"},
    "time_embedding_dim": {None},
    "mid_block_type": {"UNetMidBlock2D"},
    "downsample_type": {"conv"},
    "upsample_type": {"conv"},
    "act_fn": {"silu"},
    "resnet_time_scale_shift": {"default"},
    "class_embed_type": {None},
    "num_class_embeds": {None},
    "attn_norm_num_groups": {None},
}
DOWN_TYPES = {"DownBlock2D", "AttnDownBlock2D"}
UP_TYPES = {"UpBlock2D", "AttnUpBlock2D"}


def full_config(**overrides):
    """The complete config diffusers would save for UNet2DModel(**overrides), after checking it is supported."""
    unknown = sorted(set(overrides) - set(UNET2D_DEFAULTS))
    if unknown:
        raise ValueError(f"Unknown UNet2DModel config keys: {', '.join(unknown)}")
    config = {**UNET2D_DEFAULTS, **overrides}
    for key, allowed in SUPPORTED.items():
        if config[key] not in allowed:
            raise ValueError(f"Unsupported {key} {config[key]!r}; this subset implements {sorted(map(str, allowed))}")
    for key, kinds in (("down_block_types", DOWN_TYPES), ("up_block_types", UP_TYPES)):
        for kind in config[key]:
            if kind not in kinds:
                raise ValueError(f"Unsupported {key} entry {kind!r}; this subset implements {sorted(kinds)}")
    n = len(config["block_out_channels"])
    if len(config["down_block_types"]) != n or len(config["up_block_types"]) != n:
        raise ValueError(
            f"down_block_types, up_block_types and block_out_channels must have the same length, got "
            f"{len(config['down_block_types'])}, {len(config['up_block_types'])} and {n}")
    for c in config["block_out_channels"]:
        if c % config["norm_num_groups"] != 0:
            raise ValueError(f"block_out_channels entry {c} is not a multiple of norm_num_groups {config['norm_num_groups']}")
    return config


def config_json(config):
    """config.json text exactly as diffusers' ConfigMixin writes it: sorted keys, indent 2, a final newline."""
    record = {"_class_name": "UNet2DModel", "_diffusers_version": DIFFUSERS_VERSION, **config}
    return json.dumps(record, indent=2, sort_keys=True) + "\n"


def timestep_embedding(timesteps, dim, flip_sin_to_cos, freq_shift, max_period=10000):
    """Sinusoidal embedding of diffusers' get_timestep_embedding: exp(-log(P) k / (dim/2 - shift)) t, sin then cos."""
    half = dim // 2
    exponent = -math.log(max_period) * torch.arange(0, half, dtype=torch.float32) / (half - freq_shift)
    args = timesteps[:, None].float() * torch.exp(exponent)[None, :]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=-1)
    if flip_sin_to_cos:
        emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
    if dim % 2 == 1:
        emb = F.pad(emb, (0, 1, 0, 0))
    return emb


class TimestepEmbedding(nn.Module):
    """linear_1 -> SiLU -> linear_2, diffusers' TimestepEmbedding."""

    def __init__(self, in_channels, embed_dim):
        super().__init__()
        self.linear_1 = nn.Linear(in_channels, embed_dim)
        self.linear_2 = nn.Linear(embed_dim, embed_dim)

    def forward(self, x):
        return self.linear_2(F.silu(self.linear_1(x)))


class ResnetBlock2D(nn.Module):
    """GroupNorm-SiLU-conv, plus the projected time embedding, GroupNorm-SiLU-conv, and the (1x1) skip connection."""

    def __init__(self, in_channels, out_channels, temb_channels, groups, eps, dropout, output_scale_factor=1.0):
        super().__init__()
        self.output_scale_factor = output_scale_factor
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=eps, affine=True)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb_channels, out_channels)
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=eps, affine=True)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        skip = self.conv_shortcut(x) if self.conv_shortcut is not None else x
        return (skip + h) / self.output_scale_factor


class Attention(nn.Module):
    """Spatial self-attention with a GroupNorm in front and a residual connection (diffusers' Attention block)."""

    def __init__(self, channels, head_dim, groups, eps, rescale_output_factor=1.0):
        super().__init__()
        self.heads = channels // head_dim
        self.scale = head_dim ** -0.5
        self.rescale_output_factor = rescale_output_factor
        self.group_norm = nn.GroupNorm(groups, channels, eps=eps, affine=True)
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(channels, channels)
        self.to_v = nn.Linear(channels, channels)
        self.to_out = nn.ModuleList([nn.Linear(channels, channels), nn.Dropout(0.0)])

    def forward(self, x):
        b, c, h, w = x.shape
        tokens = self.group_norm(x).view(b, c, h * w).transpose(1, 2)

        def split(y):
            return y.reshape(b, h * w, self.heads, c // self.heads).permute(0, 2, 1, 3)

        q, k, v = split(self.to_q(tokens)), split(self.to_k(tokens)), split(self.to_v(tokens))
        weights = torch.softmax((q @ k.transpose(-1, -2)).float() * self.scale, dim=-1).to(q.dtype)
        out = (weights @ v).permute(0, 2, 1, 3).reshape(b, h * w, c)
        out = self.to_out[1](self.to_out[0](out))
        out = out.transpose(1, 2).reshape(b, c, h, w)
        return (out + x) / self.rescale_output_factor


class Downsample2D(nn.Module):
    """A stride-2 3x3 convolution; with padding 0 the input is first padded by one on the right and bottom."""

    def __init__(self, channels, padding):
        super().__init__()
        self.padding = padding
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=padding)

    def forward(self, x):
        if self.padding == 0:
            x = F.pad(x, (0, 1, 0, 1))
        return self.conv(x)


class Upsample2D(nn.Module):
    """Nearest-neighbour upsampling by 2, then a 3x3 convolution."""

    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class DownBlock(nn.Module):
    """DownBlock2D, or AttnDownBlock2D with `attention`: resnets (each followed by attention), then a downsampler."""

    def __init__(self, cfg, in_channels, out_channels, temb, attention, add_downsample):
        super().__init__()
        groups, eps, layers = cfg["norm_num_groups"], cfg["norm_eps"], cfg["layers_per_block"]
        if attention:
            head_dim = cfg["attention_head_dim"] or out_channels
            self.attentions = nn.ModuleList(Attention(out_channels, head_dim, groups, eps) for _ in range(layers))
        else:
            self.attentions = None
        self.resnets = nn.ModuleList(
            ResnetBlock2D(in_channels if i == 0 else out_channels, out_channels, temb, groups, eps, cfg["dropout"])
            for i in range(layers))
        if add_downsample:
            self.downsamplers = nn.ModuleList([Downsample2D(out_channels, cfg["downsample_padding"])])
        else:
            self.downsamplers = None

    def forward(self, x, temb):
        states = []
        for i, resnet in enumerate(self.resnets):
            x = resnet(x, temb)
            if self.attentions is not None:
                x = self.attentions[i](x)
            states.append(x)
        if self.downsamplers is not None:
            x = self.downsamplers[0](x)
            states.append(x)
        return x, states


class UpBlock(nn.Module):
    """UpBlock2D, or AttnUpBlock2D with `attention`: each resnet takes the next skip connection, then an upsampler."""

    def __init__(self, cfg, in_channels, prev_channels, out_channels, temb, attention, add_upsample):
        super().__init__()
        groups, eps, layers = cfg["norm_num_groups"], cfg["norm_eps"], cfg["layers_per_block"] + 1
        if attention:
            head_dim = cfg["attention_head_dim"] or out_channels
            self.attentions = nn.ModuleList(Attention(out_channels, head_dim, groups, eps) for _ in range(layers))
        else:
            self.attentions = None
        resnets = []
        for i in range(layers):
            skip_channels = in_channels if i == layers - 1 else out_channels
            resnet_in = prev_channels if i == 0 else out_channels
            resnets.append(ResnetBlock2D(resnet_in + skip_channels, out_channels, temb, groups, eps, cfg["dropout"]))
        self.resnets = nn.ModuleList(resnets)
        self.upsamplers = nn.ModuleList([Upsample2D(out_channels)]) if add_upsample else None

    def forward(self, x, skips, temb):
        for i, resnet in enumerate(self.resnets):
            x = resnet(torch.cat([x, skips.pop()], dim=1), temb)
            if self.attentions is not None:
                x = self.attentions[i](x)
        if self.upsamplers is not None:
            x = self.upsamplers[0](x)
        return x


class MidBlock(nn.Module):
    """UNetMidBlock2D: resnet, then (attention, resnet) once."""

    def __init__(self, cfg, channels, temb):
        super().__init__()
        groups, eps, scale = cfg["norm_num_groups"], cfg["norm_eps"], cfg["mid_block_scale_factor"]
        head_dim = cfg["attention_head_dim"] or channels
        self.attentions = nn.ModuleList(
            [Attention(channels, head_dim, groups, eps, rescale_output_factor=scale)] if cfg["add_attention"] else [])
        self.resnets = nn.ModuleList(
            ResnetBlock2D(channels, channels, temb, groups, eps, cfg["dropout"], output_scale_factor=scale)
            for _ in range(2))

    def forward(self, x, temb):
        x = self.resnets[0](x, temb)
        if len(self.attentions) > 0:
            x = self.attentions[0](x)
        return self.resnets[1](x, temb)


class UNet2DModel(nn.Module):
    """eps_theta(x_t, t): the DDPM UNet, with diffusers' module names so state dicts are interchangeable."""

    def __init__(self, **config):
        super().__init__()
        cfg = full_config(**config)
        self.config = cfg
        channels = cfg["block_out_channels"]
        temb = channels[0] * 4
        self.conv_in = nn.Conv2d(cfg["in_channels"], channels[0], 3, padding=1)
        self.time_embedding = TimestepEmbedding(channels[0], temb)
        self.down_blocks = nn.ModuleList()
        out_channels = channels[0]
        for i, kind in enumerate(cfg["down_block_types"]):
            in_channels, out_channels = out_channels, channels[i]
            self.down_blocks.append(DownBlock(cfg, in_channels, out_channels, temb, kind == "AttnDownBlock2D",
                                              add_downsample=i < len(channels) - 1))
        self.up_blocks = nn.ModuleList()  # registered before mid_block, as diffusers does (the state dict's order)
        self.mid_block = MidBlock(cfg, channels[-1], temb)
        reversed_channels = list(reversed(channels))
        out_channels = reversed_channels[0]
        for i, kind in enumerate(cfg["up_block_types"]):
            prev_channels, out_channels = out_channels, reversed_channels[i]
            in_channels = reversed_channels[min(i + 1, len(channels) - 1)]
            self.up_blocks.append(UpBlock(cfg, in_channels, prev_channels, out_channels, temb,
                                          kind == "AttnUpBlock2D", add_upsample=i < len(channels) - 1))
        self.conv_norm_out = nn.GroupNorm(cfg["norm_num_groups"], channels[0], eps=cfg["norm_eps"])
        self.conv_out = nn.Conv2d(channels[0], cfg["out_channels"], 3, padding=1)

    def forward(self, sample, timestep):
        cfg = self.config
        if cfg["center_input_sample"]:
            sample = 2 * sample - 1.0
        if not torch.is_tensor(timestep):
            timestep = torch.tensor([timestep], dtype=torch.long)
        timestep = timestep.reshape(-1) * torch.ones(sample.shape[0], dtype=timestep.dtype)
        t_emb = timestep_embedding(timestep, cfg["block_out_channels"][0], cfg["flip_sin_to_cos"], cfg["freq_shift"])
        emb = self.time_embedding(t_emb.to(sample.dtype))
        x = self.conv_in(sample)
        skips = [x]
        for block in self.down_blocks:
            x, states = block(x, emb)
            skips.extend(states)
        x = self.mid_block(x, emb)
        for block in self.up_blocks:
            x = block(x, skips, emb)
        return self.conv_out(F.silu(self.conv_norm_out(x)))
