"""Write test/fixtures/torch-randn-bits.json: the exact float32 bits of torch.randn on the CPU.

For every seed and size, a fresh generator: g = torch.Generator().manual_seed(seed), then
x = torch.randn(size, generator=g) (float32, CPU, contiguous). The raw little-endian bytes of x are stored as hex:
all of them up to FULL_LIMIT elements, and above that the SHA-256 of all the bytes plus the hex of the first HEAD
elements, so the file stays small.

Sizes below 16 take PyTorch's scalar path (float64 Box-Muller, cast to float32); from 16 on, the AVX2 kernel
normal_fill_16_AVX2 (float32 log256_ps and sincos256_ps of avx_mathfun.h) when the build runs with CPU capability
AVX2, which this tool checks and records.

Usage: /usr/bin/python3 tools/torch_randn_fixture.py [OUT.json]
"""

import hashlib
import json
import platform
import sys

import torch

SEEDS = [0, 1, 42, 123456789, 2**32 - 1]
SCALAR_SIZES = [1, 2, 5, 15]
VECTOR_SIZES = [16, 17, 31, 64, 1000, 16 * 3 * 32 * 32, 3 * 256 * 256]
# one long draw (2^24 elements) for two seeds: every block position relative to the mt19937 twists, and 8 million
# Box-Muller pairs
LONG_SIZE = 2**24
LONG_SEEDS = [0, 1]
FULL_LIMIT = 1000
HEAD = 256


def cpu_capability() -> str:
    for line in torch.__config__.show().splitlines():
        if "CPU capability usage:" in line:
            return line.split(":", 1)[1].strip()
    raise SystemExit("torch.__config__.show() does not name the CPU capability")


def entry(seed: int, size: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(size, generator=g)
    assert x.dtype == torch.float32 and x.is_contiguous()
    raw = x.numpy().tobytes()
    if size <= FULL_LIMIT:
        return {"seed": seed, "size": size, "hex": raw.hex()}
    return {
        "seed": seed,
        "size": size,
        "sha256": hashlib.sha256(raw).hexdigest(),
        "head_hex": raw[: 4 * HEAD].hex(),
    }


def main() -> None:
    out = sys.argv[1] if len(sys.argv) > 1 else "test/fixtures/torch-randn-bits.json"
    capability = cpu_capability()
    if capability != "AVX2":
        raise SystemExit(f"The fixture needs PyTorch's AVX2 kernel, but this build runs with {capability}")
    if sys.byteorder != "little":
        raise SystemExit("The fixture stores little-endian float32 bytes; run it on a little-endian machine")
    cases = [entry(seed, size) for seed in SEEDS for size in SCALAR_SIZES + VECTOR_SIZES]
    cases += [entry(seed, LONG_SIZE) for seed in LONG_SEEDS]
    document = {
        "source": (
            "g = torch.Generator().manual_seed(seed); x = torch.randn(size, generator=g) (float32, CPU); "
            "hex: the little-endian float32 bytes of x; above 1000 elements sha256 of all bytes and head_hex "
            "of the first 256 elements"
        ),
        "torch": torch.__version__,
        "cpu_capability": capability,
        "machine": platform.machine(),
        "cases": cases,
    }
    with open(out, "w") as f:
        json.dump(document, f, indent=1)
        f.write("\n")
    print(f"{out}: {len(cases)} cases, torch {torch.__version__}, CPU capability {capability}")


if __name__ == "__main__":
    main()
