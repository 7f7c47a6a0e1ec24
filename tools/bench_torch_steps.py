"""PyTorch's time per scheduler step, the reference bench/schedulers.ts prints its own times beside.

    /usr/bin/python3 tools/bench_torch_steps.py [--out docs/benchmarks/torch_steps.json] [--threads 1,2]

diffusers is not installable here, so each step is diffusers' `DDIMScheduler.step` and `DDPMScheduler.step`
(diffusers 0.2x, default configs: linear betas 1e-4..0.02, T = 1000, clip_sample on, 50 inference steps, t = 500)
written out with the same torch operations in the same order: float32 tensors, 0-d alpha-bar tensors, one
`torch.randn(shape, generator=...)` per noisy step. Each case is timed twice: the whole step, and the step with its
noise passed in (the time without the draw), plus the draw alone. Medians of many repetitions, in milliseconds, once
per thread count (`torch.set_num_threads`): PyTorch's default here is one thread, and two use both cores.
"""

import argparse
import json
import os
import platform
import statistics
import time

import torch

SHAPES = [(1, 3, 256, 256), (16, 3, 32, 32)]
T = 1000
STEPS = 50
TIMESTEP = 500

# diffusers' defaults: linear betas, float32, alpha-bar as a cumulative product
BETAS = torch.linspace(0.0001, 0.02, T, dtype=torch.float32)
ALPHAS_CUMPROD = torch.cumprod(1.0 - BETAS, dim=0)
FINAL_ALPHA_CUMPROD = torch.tensor(1.0)
ONE = torch.tensor(1.0)


def ddim_step(model_output, timestep, sample, eta, generator=None, noise=None):
    """diffusers' DDIMScheduler.step (steps 1-7), clip_sample on."""
    prev_timestep = timestep - T // STEPS
    alpha_prod_t = ALPHAS_CUMPROD[timestep]
    alpha_prod_t_prev = ALPHAS_CUMPROD[prev_timestep] if prev_timestep >= 0 else FINAL_ALPHA_CUMPROD
    beta_prod_t = 1 - alpha_prod_t
    pred_original_sample = (sample - beta_prod_t ** (0.5) * model_output) / alpha_prod_t ** (0.5)
    pred_epsilon = model_output
    pred_original_sample = pred_original_sample.clamp(-1.0, 1.0)
    beta_prod_t_prev = 1 - alpha_prod_t_prev
    variance = (beta_prod_t_prev / beta_prod_t) * (1 - alpha_prod_t / alpha_prod_t_prev)
    std_dev_t = eta * variance ** (0.5)
    pred_sample_direction = (1 - alpha_prod_t_prev - std_dev_t**2) ** (0.5) * pred_epsilon
    prev_sample = alpha_prod_t_prev ** (0.5) * pred_original_sample + pred_sample_direction
    if eta > 0:
        if noise is None:
            noise = torch.randn(model_output.shape, generator=generator, dtype=model_output.dtype)
        prev_sample = prev_sample + std_dev_t * noise
    return prev_sample, pred_original_sample


def ddpm_step(model_output, timestep, sample, generator=None, noise=None):
    """diffusers' DDPMScheduler.step (steps 1-6), fixed_small variance, clip_sample on."""
    prev_t = timestep - T // STEPS
    alpha_prod_t = ALPHAS_CUMPROD[timestep]
    alpha_prod_t_prev = ALPHAS_CUMPROD[prev_t] if prev_t >= 0 else ONE
    beta_prod_t = 1 - alpha_prod_t
    beta_prod_t_prev = 1 - alpha_prod_t_prev
    current_alpha_t = alpha_prod_t / alpha_prod_t_prev
    current_beta_t = 1 - current_alpha_t
    pred_original_sample = (sample - beta_prod_t ** (0.5) * model_output) / alpha_prod_t ** (0.5)
    pred_original_sample = pred_original_sample.clamp(-1.0, 1.0)
    pred_original_sample_coeff = (alpha_prod_t_prev ** (0.5) * current_beta_t) / beta_prod_t
    current_sample_coeff = current_alpha_t ** (0.5) * beta_prod_t_prev / beta_prod_t
    pred_prev_sample = pred_original_sample_coeff * pred_original_sample + current_sample_coeff * sample
    variance = 0
    if timestep > 0:
        if noise is None:
            noise = torch.randn(model_output.shape, generator=generator, dtype=model_output.dtype)
        posterior = torch.clamp((1 - alpha_prod_t_prev) / (1 - alpha_prod_t) * current_beta_t, min=1e-20)
        variance = (posterior ** 0.5) * noise
    return pred_prev_sample + variance, pred_original_sample


def median_ms(run, repetitions):
    for _ in range(min(50, repetitions)):
        run()
    times = []
    for _ in range(repetitions):
        start = time.perf_counter_ns()
        run()
        times.append((time.perf_counter_ns() - start) / 1e6)
    return statistics.median(times)


def bench(repetitions):
    rows = []
    for shape in SHAPES:
        generator = torch.Generator().manual_seed(0)
        sample = torch.randn(shape, generator=generator)
        model_output = torch.randn(shape, generator=generator)
        noise = torch.randn(shape, generator=generator)
        reps = repetitions if shape[0] == 1 else repetitions * 4
        cases = [
            ("DDIM eta 0", lambda: ddim_step(model_output, TIMESTEP, sample, 0.0), None),
            (
                "DDIM eta 1 + generator",
                lambda: ddim_step(model_output, TIMESTEP, sample, 1.0, generator=generator),
                lambda: ddim_step(model_output, TIMESTEP, sample, 1.0, noise=noise),
            ),
            (
                "DDPM + generator",
                lambda: ddpm_step(model_output, TIMESTEP, sample, generator=generator),
                lambda: ddpm_step(model_output, TIMESTEP, sample, noise=noise),
            ),
        ]
        draw_ms = median_ms(lambda: torch.randn(shape, generator=generator), reps)
        for name, whole, given in cases:
            row = {"case": name, "shape": "x".join(map(str, shape)), "medianMs": median_ms(whole, reps)}
            row["withoutDrawMs"] = median_ms(given, reps) if given is not None else row["medianMs"]
            row["drawMs"] = draw_ms if given is not None else 0.0
            rows.append(row)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join("docs", "benchmarks", "torch_steps.json"))
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts, each measured in turn")
    parser.add_argument("--repetitions", type=int, default=300)
    args = parser.parse_args()
    try:
        thread_counts = [int(n) for n in args.threads.split(",")]
    except ValueError:
        parser.error(f"--threads must be comma-separated positive integers, got {args.threads!r}")
    if any(n < 1 for n in thread_counts) or args.repetitions < 1:
        parser.error(f"--threads must be positive and --repetitions >= 1, got {args.threads} and {args.repetitions}")
    load_before = os.getloadavg()[0]
    runs = []
    for threads in thread_counts:
        torch.set_num_threads(threads)
        runs.append({"threads": torch.get_num_threads(), "rows": bench(args.repetitions)})
    result = {
        "what": "median ms per scheduler step, diffusers' DDIM/DDPM step written in torch (tools/bench_torch_steps.py)",
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "loadBefore": load_before,
        "runs": runs,
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    for run in runs:
        for row in run["rows"]:
            print(f"{row['case']:<25}{row['shape']:<15}{row['medianMs']:9.3f} {row['withoutDrawMs']:9.3f}")
        print(f"torch {torch.__version__}, {run['threads']} thread(s)")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
