"""PyTorch peer figures for bench/gpu.ts on the same GPU.

1. diffusers' UNet2DModel with the google/ddpm-celebahq-256 config (random weights), float32: ms per forward and
   images/s of 50-step DDIM (DDIMScheduler, eta = 0) at batch 1 and 16. Only when diffusers is importable; the
   UNet is not reimplemented here, so without diffusers this part is reported as missing.
2. A conv reference, clearly not the UNet: one ResNet-style unit at the celebahq-256 model's first resolution
   (GroupNorm(32) + SiLU + 3x3 conv, 128 -> 128 channels, 256 x 256), to show what the GPU does on the UNet's
   dominant operation. Its FLOP rate counts 2 * 9 * 128 * 128 * 256 * 256 per image for the conv alone.

float32 throughout: TF32 is switched off for matmul and cuDNN convolutions (PyTorch leaves cuDNN's on by default),
so the figures compare with onnxruntime's float32 WebGPU kernels. A second UNet row with TF32 allowed is given for
reference.

Usage: python3 bench/gpu_torch.py [--config google-ddpm-celebahq-256.json] [--out DIR] [--batches 1,16]
       [--steps 50] [--quick]
"""

import argparse
import json
import os
import statistics
import sys
import time

DEFAULT_CONFIG = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "unet", "configs",
    "google-ddpm-celebahq-256.json",
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="PyTorch peer figures for bench/gpu.ts (diffusers UNet2DModel "
                                                 "when importable, and a labelled conv reference).")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="google/ddpm-celebahq-256 config.json")
    parser.add_argument("--out", default=None, help="folder for torch.json and torch.md")
    parser.add_argument("--batches", default="1,16", help="comma-separated batch sizes (default 1,16)")
    parser.add_argument("--steps", type=int, default=50, help="DDIM steps (default 50)")
    parser.add_argument("--quick", action="store_true", help="fewer timed runs")
    args = parser.parse_args(argv)
    try:
        args.batches = [int(b) for b in args.batches.split(",")]
    except ValueError:
        parser.error(f"--batches must be comma-separated integers, got {args.batches!r}")
    if any(b < 1 for b in args.batches):
        parser.error(f"batch sizes must be positive, got {args.batches}")
    if args.steps < 1:
        parser.error(f"--steps must be positive, got {args.steps}")
    return args


def timed(torch, fn, runs):
    """Median ms of `runs` calls after one warm-up call, with the GPU synchronised around each."""
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def set_tf32(torch, allowed):
    torch.backends.cuda.matmul.allow_tf32 = allowed
    torch.backends.cudnn.allow_tf32 = allowed


def bench_unet(torch, args, report):
    try:
        import diffusers
        from diffusers import DDIMScheduler, UNet2DModel
    except ImportError as error:
        report["unet"] = {"status": "missing", "reason": f"diffusers is not importable here ({error}); "
                          "no UNet2DModel peer figure (carry a diffusers wheel to get one)"}
        print(f"UNet2DModel: MISSING: {report['unet']['reason']}")
        return
    with open(args.config, encoding="utf8") as f:
        config = {k: v for k, v in json.load(f).items() if not k.startswith("_")}
    torch.manual_seed(0)
    unet = UNet2DModel(**config).to("cuda").eval()
    params = sum(p.numel() for p in unet.parameters())
    scheduler = DDIMScheduler(num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear")
    size = config["sample_size"]
    rows = []
    for tf32 in (False, True):
        set_tf32(torch, tf32)
        for batch in args.batches:
            x = torch.randn(batch, config["in_channels"], size, size, device="cuda")
            t = torch.full((batch,), 500, device="cuda", dtype=torch.long)
            runs = 3 if args.quick else (10 if batch == 1 else 5)
            with torch.no_grad():
                forward_ms = timed(torch, lambda: unet(x, t).sample, runs)

                def ddim():
                    scheduler.set_timesteps(args.steps)
                    sample = torch.randn(batch, config["in_channels"], size, size, device="cuda",
                                         generator=torch.Generator("cuda").manual_seed(0))
                    for step_t in scheduler.timesteps:
                        eps = unet(sample, step_t).sample
                        sample = scheduler.step(eps, step_t, sample, eta=0.0).prev_sample
                    return sample

                torch.cuda.synchronize()
                start = time.perf_counter()
                ddim()
                torch.cuda.synchronize()
                seconds = time.perf_counter() - start
            row = {"batch": batch, "tf32": tf32, "forward_ms": forward_ms, "ddim_steps": args.steps,
                   "ddim_seconds": seconds, "images_per_second": batch / seconds}
            rows.append(row)
            print(f"UNet2DModel celebahq-256 batch {batch} ({'TF32 allowed' if tf32 else 'float32'}): "
                  f"{forward_ms:.1f} ms per forward, {args.steps}-step DDIM {seconds:.2f} s, "
                  f"{row['images_per_second']:.3f} images/s")
            del x, t
        if args.quick:
            break
    set_tf32(torch, False)
    report["unet"] = {"status": "ok", "diffusers": diffusers.__version__, "parameters": params, "rows": rows}
    del unet
    torch.cuda.empty_cache()


def bench_conv(torch, args, report):
    set_tf32(torch, False)
    channels, size = 128, 256
    unit = torch.nn.Sequential(
        torch.nn.GroupNorm(32, channels, eps=1e-6), torch.nn.SiLU(),
        torch.nn.Conv2d(channels, channels, 3, padding=1),
    ).to("cuda").eval()
    rows = []
    for batch in args.batches:
        x = torch.randn(batch, channels, size, size, device="cuda")
        with torch.no_grad():
            ms = timed(torch, lambda: unit(x), 5 if args.quick else 20)
        flops = 2 * 9 * channels * channels * size * size * batch
        rows.append({"batch": batch, "ms": ms, "conv_tflops": flops / (ms / 1000) / 1e12})
        print(f"conv reference (GroupNorm + SiLU + 3x3 conv 128->128 at 256x256, NOT the UNet) batch {batch}: "
              f"{ms:.2f} ms, {rows[-1]['conv_tflops']:.1f} TFLOP/s (conv only)")
        del x
    report["conv_reference"] = {"what": "GroupNorm(32) + SiLU + Conv2d(128, 128, 3, padding=1) at 256x256, "
                                "float32, TF32 off; not the UNet", "rows": rows}


def markdown(report):
    lines = [f"PyTorch {report.get('torch', 'missing')}, {report.get('device', 'no GPU')}", ""]
    unet = report.get("unet")
    if unet is None:
        pass
    elif unet["status"] != "ok":
        lines += [f"UNet2DModel (celebahq-256): MISSING: {unet['reason']}", ""]
    else:
        lines += [f"UNet2DModel (celebahq-256, diffusers {unet['diffusers']}, {unet['parameters']} parameters, "
                  "random weights):", "",
                  "| batch | precision | ms per forward | DDIM steps | DDIM s | images/s |", "|---|---|---|---|---|---|"]
        for r in unet["rows"]:
            lines.append(f"| {r['batch']} | {'TF32 allowed' if r['tf32'] else 'float32'} | {r['forward_ms']:.1f} | "
                         f"{r['ddim_steps']} | {r['ddim_seconds']:.2f} | {r['images_per_second']:.3f} |")
        lines.append("")
    conv = report.get("conv_reference")
    if conv:
        lines += [f"Conv reference ({conv['what']}):", "", "| batch | ms | conv TFLOP/s |", "|---|---|---|"]
        lines += [f"| {r['batch']} | {r['ms']:.2f} | {r['conv_tflops']:.1f} |" for r in conv["rows"]]
    if report.get("error"):
        lines += ["", f"Error: {report['error']}"]
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse_args(argv)
    report = {}
    try:
        import torch
    except ImportError as error:
        report["error"] = f"PyTorch is not importable here ({error}); no peer figures"
    else:
        report["torch"] = torch.__version__
        if not torch.cuda.is_available():
            report["error"] = "PyTorch sees no CUDA device; no GPU peer figures"
        else:
            report["device"] = torch.cuda.get_device_name(0)
            for part in (bench_unet, bench_conv):
                try:
                    part(torch, args, report)
                except Exception as error:  # report and go on with the other part
                    report.setdefault("failures", []).append(f"{part.__name__}: {type(error).__name__}: {error}")
                    print(f"{part.__name__} failed: {type(error).__name__}: {error}", file=sys.stderr)
    text = markdown(report)
    print(text)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "torch.json"), "w", encoding="utf8") as f:
            json.dump(report, f, indent=2)
        with open(os.path.join(args.out, "torch.md"), "w", encoding="utf8") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
