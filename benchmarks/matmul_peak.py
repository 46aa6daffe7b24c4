"""Measure this machine's matrix-multiply rate (GFLOP/s) in fp32 and bf16, the ceiling for training.

    python benchmarks/matmul_peak.py [--size 2048] [--repeats 10]
"""

import argparse
import time

import torch


def rate(dtype: torch.dtype, size: int, repeats: int) -> float:
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    for _ in range(2):
        a @ b
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    seconds = (time.perf_counter() - started) / repeats
    return 2 * size**3 / seconds / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    print(f"threads {torch.get_num_threads()}, {args.size}x{args.size} matmul")
    for dtype in (torch.float32, torch.bfloat16):
        print(f"{str(dtype).removeprefix('torch.'):9s} {rate(dtype, args.size, args.repeats):7.1f} GFLOP/s")


if __name__ == "__main__":
    main()
