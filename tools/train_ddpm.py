"""Train a small DDPM (diffusers' UNet2DModel, epsilon prediction) on a builtin data law and save a diffusers checkpoint.

The objective is Ho et al. 2020's L_simple (their eq. 14), with t uniform over the T training steps:

    L(theta) = E_{x_0, t, eps} || eps - eps_theta(sqrt(alphaBar_t) x_0 + sqrt(1 - alphaBar_t) eps, t) ||^2

| paper            | code               | meaning                                                       |
|------------------|--------------------|---------------------------------------------------------------|
| x_0              | `x0`               | fresh exact draws from the data law (a Gaussian mixture)      |
| alphaBar_t       | `alphas_cumprod`   | diffusers' DDPMScheduler table (linear betas, float32)        |
| eps              | `noise`            | standard normal noise                                         |
| x_t              | `noisy`            | eq. (4) of Ho et al.: the forward process in closed form       |
| eps_theta        | `model`            | the UNet; `ema` holds the exponential moving average of theta  |

The data law is the exact mixture behind a builtin model (`builtin:shapes32` by default), exported by
`tools/export_data_law.ts`, so the data are infinite and seedable and every quality number of the trained model can
be measured against the truth in TypeScript.

Output (a diffusers checkpoint folder, written to a temporary sibling and renamed when complete):
    config.json                        UNet2DModel config, every constructor key, as diffusers writes it
    diffusion_pytorch_model.safetensors the EMA weights, float32
    scheduler_config.json              DDPMScheduler config the model was trained with
    README.md                          model card: data, steps, batch, seed, wall time, loss curve, command
    training_log.csv                   step, loss (running mean), learning rate, seconds
    export_check.safetensors           inputs and PyTorch outputs recorded at export, for conformance tests

Usage (see tools/README.md): /usr/bin/python3 tools/train_ddpm.py --out lib/pretrained/ddpm-shapes32
"""

import argparse
import csv
import json
import math
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from diffusers_unet import DIFFUSERS_VERSION, UNet2DModel, config_json, full_config  # noqa: E402
import safetensors_io  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_SETS = ("shapes32", "gaussian32")

# The UNet: google/ddpm-cifar10-32's design (positional embedding, attention at the coarsest level, padding-0
# downsampling, GroupNorm eps 1e-6) scaled down to train in about an hour on two CPU cores.
UNET_CONFIG = {
    "sample_size": 32,
    "in_channels": 3,
    "out_channels": 3,
    "block_out_channels": [16, 32, 64],
    "down_block_types": ["DownBlock2D", "DownBlock2D", "AttnDownBlock2D"],
    "up_block_types": ["AttnUpBlock2D", "UpBlock2D", "UpBlock2D"],
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "norm_eps": 1e-6,
    "attention_head_dim": None,
    "flip_sin_to_cos": False,
    "freq_shift": 1,
    "downsample_padding": 0,
    "center_input_sample": False,
    "mid_block_scale_factor": 1,
    "act_fn": "silu",
    "time_embedding_type": "positional",
}

# diffusers' DDPMScheduler config, every key, as google/ddpm-* ship it (clip_sample on, the small variance).
SCHEDULER_CONFIG = {
    "_class_name": "DDPMScheduler",
    "_diffusers_version": DIFFUSERS_VERSION,
    "beta_end": 0.02,
    "beta_schedule": "linear",
    "beta_start": 0.0001,
    "clip_sample": True,
    "clip_sample_range": 1.0,
    "dynamic_thresholding_ratio": 0.995,
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "rescale_betas_zero_snr": False,
    "sample_max_value": 1.0,
    "steps_offset": 0,
    "thresholding": False,
    "timestep_spacing": "leading",
    "trained_betas": None,
    "variance_type": "fixed_small",
}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="the checkpoint folder to create")
    p.add_argument("--data", default="shapes32", help=f"the builtin data law, one of {', '.join(DATA_SETS)}")
    p.add_argument("--law", help="a data-law JSON from tools/export_data_law.ts (default: exported now with bun)")
    p.add_argument("--steps", type=int, default=4000, help="optimiser steps")
    p.add_argument("--batch", type=int, default=64, help="images per step")
    p.add_argument("--lr", type=float, default=1e-3, help="peak Adam learning rate")
    p.add_argument("--warmup", type=int, default=100, help="linear warm-up steps")
    p.add_argument("--ema", type=float, default=0.999, help="EMA decay (ramped as min(decay, (1 + n) / (10 + n)))")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights, the data and the noise")
    p.add_argument("--threads", type=int, default=2, help="PyTorch CPU threads")
    p.add_argument("--log-every", type=int, default=50, help="steps between log lines")
    p.add_argument("--force", action="store_true", help="replace an existing output folder")
    args = p.parse_args(argv)
    if args.data not in DATA_SETS:
        p.error(f"unknown data set {args.data!r}; the known ones are {', '.join(DATA_SETS)}")
    for name in ("steps", "batch", "threads", "log_every"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    if args.warmup < 0:
        p.error(f"--warmup must be a non-negative integer, got {args.warmup}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        p.error(f"--lr must be a positive number, got {args.lr}")
    if not (0 <= args.ema < 1):
        p.error(f"--ema must be in [0, 1), got {args.ema}")
    if os.path.exists(args.out) and not args.force:
        p.error(f"the output folder {args.out} exists; pass --force to replace it")
    return args


class MixtureLaw:
    """Exact draws x_0 = mu_k + Q_k diag(sqrt(lambda_k)) z + sqrt(s2_k) w, k ~ pi (the data law of a builtin)."""

    def __init__(self, law):
        k, d, r = law["count"], law["dim"], law["rank"]
        self.shape = tuple(law["shape"])
        self.weights = torch.tensor(law["weights"], dtype=torch.float64)
        self.means = torch.tensor(law["means"], dtype=torch.float64).reshape(k, d)
        # Q_k diag(sqrt(lambda_k)), [K, d, r]
        bases = torch.tensor(law["bases"], dtype=torch.float64).reshape(k, d, r)
        scales = torch.tensor(law["lowRankVariances"], dtype=torch.float64).reshape(k, 1, r).sqrt()
        self.factors = (bases * scales).float()
        self.noise_sd = torch.tensor(law["noiseVariances"], dtype=torch.float64).sqrt().float()
        self.means = self.means.float()

    def sample(self, n, generator):
        component = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.factors.shape[2], 1, generator=generator)
        w = torch.randn(n, self.means.shape[1], generator=generator)
        x0 = self.means[component] + torch.bmm(self.factors[component], z)[:, :, 0] + self.noise_sd[component, None] * w
        return x0.reshape(n, *self.shape)


def load_law(args, workdir):
    path = args.law
    if path is None:
        path = os.path.join(workdir, f"{args.data}_law.json")
        bun = shutil.which("bun") or os.path.join(REPO, "node_modules", ".bin", "bun")
        subprocess.run([bun, os.path.join(REPO, "tools", "export_data_law.ts"), args.data, path], check=True, cwd=REPO)
    with open(path) as f:
        return json.load(f)


def alphas_cumprod(config):
    """diffusers' DDPMScheduler table for the linear schedule: float32 linspace of betas, cumulative product."""
    betas = torch.linspace(config["beta_start"], config["beta_end"], config["num_train_timesteps"], dtype=torch.float32)
    return torch.cumprod(1.0 - betas, dim=0)


def learning_rate(step, args):
    """Linear warm-up to the peak, then cosine decay to a tenth of it."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def train(args, law):
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    model = UNet2DModel(**UNET_CONFIG)
    ema = UNet2DModel(**UNET_CONFIG)
    ema.load_state_dict(model.state_dict())
    ema.requires_grad_(False)
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr)
    table = alphas_cumprod(SCHEDULER_CONFIG)
    data_gen = torch.Generator().manual_seed(args.seed + 1)
    noise_gen = torch.Generator().manual_seed(args.seed + 2)
    timesteps = SCHEDULER_CONFIG["num_train_timesteps"]
    log, running, start = [], None, time.time()
    for step in range(args.steps):
        for group in optimiser.param_groups:
            group["lr"] = learning_rate(step, args)
        # 1. x_0 from the data law, t uniform, eps standard normal
        x0 = law.sample(args.batch, data_gen)
        t = torch.randint(0, timesteps, (args.batch,), generator=noise_gen)
        noise = torch.randn(x0.shape, generator=noise_gen)
        # 2. x_t = sqrt(alphaBar_t) x_0 + sqrt(1 - alphaBar_t) eps (Ho et al. eq. 4)
        alpha_bar = table[t].reshape(-1, 1, 1, 1)
        noisy = alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise
        # 3. L_simple and one Adam step, gradients clipped at norm 1 as in DDPM
        loss = torch.mean((model(noisy, t) - noise) ** 2)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        # 4. theta_ema <- d theta_ema + (1 - d) theta
        decay = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for p_ema, p in zip(ema.parameters(), model.parameters()):
                p_ema.mul_(decay).add_(p, alpha=1 - decay)
        value = loss.item()
        if not math.isfinite(value):
            raise FloatingPointError(f"the loss became {value} at step {step}; lower --lr")
        running = value if running is None else 0.98 * running + 0.02 * value
        if (step + 1) % args.log_every == 0 or step + 1 == args.steps:
            elapsed = time.time() - start
            log.append({"step": step + 1, "loss": running, "lr": learning_rate(step, args), "seconds": elapsed})
            print(f"step {step + 1}/{args.steps}  loss {running:.5f}  lr {learning_rate(step, args):.2e}  "
                  f"{elapsed / 60:.1f} min", flush=True)
    for b_ema, b in zip(ema.buffers(), model.buffers()):
        b_ema.copy_(b)
    return ema.eval(), log, time.time() - start


def export_check(model):
    """Inputs a test can rebuild (torch.randn with seed 0) and the EMA model's float32 outputs on them."""
    generator = torch.Generator().manual_seed(0)
    sample = torch.randn(2, 3, 32, 32, generator=generator)
    timestep = torch.tensor([10, 500], dtype=torch.int64)
    with torch.no_grad():
        expected = model(sample, timestep)
        expected_t999 = model(sample, 999)
    return {"sample": sample, "timestep": timestep, "expected": expected, "expected_t999": expected_t999}


def model_card(args, log, seconds, params, command):
    rows = [log[i] for i in sorted({int(round(j * (len(log) - 1) / 10)) for j in range(11)})]
    curve = "\n".join(f"| {r['step']} | {r['loss']:.4f} | {r['lr']:.2e} | {r['seconds'] / 60:.1f} |" for r in rows)
    return f"""# ddpm-shapes32: a small DDPM trained on the exact shapes law

A diffusers `UNet2DModel` checkpoint (epsilon prediction, {params:,} parameters) trained with the DDPM objective
(Ho et al. 2020, L_simple) on fresh exact draws from the data law of `builtin:{args.data}`: a mixture of Gaussians
fitted to ddimlab's rendered shapes images (32x32 RGB in [-1, 1]). Because the law is known exactly, every quality
number of this model can be measured against the truth (see docs/benchmarks.md).

Load it with `fromPretrained("builtin:ddpm-shapes32")`, or as a folder with any diffusers-compatible loader
(`UNet2DModel.from_pretrained(folder)` and `DDPMScheduler.from_pretrained(folder)`).

## Training
| setting | value |
| --- | --- |
| data | `builtin:{args.data}` mixture, fresh draws every step (seeded) |
| objective | L_simple, t uniform over 1000 steps, linear betas 1e-4 to 0.02 |
| steps x batch | {args.steps} x {args.batch} ({args.steps * args.batch:,} images) |
| optimiser | Adam, peak lr {args.lr:g}, {args.warmup} warm-up steps, cosine decay to {args.lr / 10:g}, grad-norm clip 1 |
| EMA | decay {args.ema} (ramped as min(decay, (1 + n) / (10 + n))); the saved weights are the EMA |
| seed | {args.seed} |
| hardware | CPU, {args.threads} threads, PyTorch {torch.__version__} |
| wall time | {seconds / 60:.1f} minutes |

Command: `{command}`

## Loss curve (running mean of L_simple per dimension)
| step | loss | lr | minutes |
| --- | --- | --- | --- |
{curve}

`training_log.csv` has every logged step. `export_check.safetensors` holds a sample (`torch.randn(2, 3, 32, 32)`
with `torch.Generator().manual_seed(0)`), timesteps [10, 500], and this model's PyTorch float32 outputs on them
(`expected`, and `expected_t999` at the scalar timestep 999), recorded at export for conformance tests.
"""


def main(argv):
    args = parse_args(argv)
    out = os.path.abspath(args.out)
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.tmp-", dir=parent)
    os.chmod(tmp, 0o755)

    def discard(signum=None, frame=None):
        shutil.rmtree(tmp, ignore_errors=True)
        if signum is not None:
            print(f"interrupted: nothing written to {out}", file=sys.stderr)
            sys.exit(130)

    signal.signal(signal.SIGINT, discard)
    signal.signal(signal.SIGTERM, discard)
    try:
        law = MixtureLaw(load_law(args, tmp))
        model, log, seconds = train(args, law)
        params = sum(p.numel() for p in model.parameters())
        config = full_config(**UNET_CONFIG)
        with open(os.path.join(tmp, "config.json"), "w") as f:
            f.write(config_json(config))
        safetensors_io.save(model.state_dict(), os.path.join(tmp, "diffusion_pytorch_model.safetensors"),
                            metadata={"format": "pt"})
        with open(os.path.join(tmp, "scheduler_config.json"), "w") as f:
            f.write(json.dumps(SCHEDULER_CONFIG, indent=2, sort_keys=True) + "\n")
        with open(os.path.join(tmp, "training_log.csv"), "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["step", "loss", "lr", "seconds"])
            writer.writeheader()
            writer.writerows(log)
        safetensors_io.save(export_check(model), os.path.join(tmp, "export_check.safetensors"))
        command = (f"/usr/bin/python3 tools/train_ddpm.py --out {shlex.quote(os.path.relpath(out, REPO))} "
                   f"--data {args.data} --steps {args.steps} --batch {args.batch} --lr {args.lr:g} "
                   f"--warmup {args.warmup} --ema {args.ema:g} --seed {args.seed} --threads {args.threads}")
        with open(os.path.join(tmp, "README.md"), "w") as f:
            f.write(model_card(args, log, seconds, params, command))
        if args.law is None:
            os.remove(os.path.join(tmp, f"{args.data}_law.json"))
        if os.path.exists(out):
            shutil.rmtree(out)
        os.rename(tmp, out)
    except BaseException:
        discard()
        raise
    print(f"wrote {out} ({params:,} parameters, {seconds / 60:.1f} minutes)")


if __name__ == "__main__":
    main(sys.argv[1:])
