"""Speed of the generator on this machine: model load, one 256-token tune, a batch of 64.

    python benchmarks/bench_generate.py   # writes benchmarks/results/generate.json

Targets (issue 3, on 2 CPU cores): load <= 1 s; one 256-token tune <= 100 ms (median);
a batch of 64 tunes >= 30k tokens/s.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from toolkit import generate, load_model


def main() -> dict:
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    loads = []
    for _ in range(5):
        t0 = time.perf_counter()
        model = load_model()
        loads.append(time.perf_counter() - t0)

    generate(model, n=1, seed=0, max_tokens=32)  # warm-up
    # one tune of exactly 256 tokens: the end token is forbidden so every run does 256 steps
    one = []
    for seed in range(15):
        t0 = time.perf_counter()
        generate(model, n=1, seed=seed, max_tokens=256, stop_at_end=False)
        one.append(time.perf_counter() - t0)

    rates = []  # 7 batches: one run's batches vary by up to a quarter on 2 shared cores
    for seed in range(7):
        t0 = time.perf_counter()
        tunes = generate(model, n=64, seed=seed, max_tokens=256, stop_at_end=False)
        dt = time.perf_counter() - t0
        new_tokens = sum(len(t.tokens) - 4 for t in tunes)
        rates.append(new_tokens / dt)

    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
                   f"{torch.get_num_threads()} threads",
        "load_seconds_median": round(statistics.median(loads), 4),
        "one_tune_256_tokens_ms_median": round(1000 * statistics.median(one), 1),
        "batch64_tokens_per_second_median": round(statistics.median(rates)),
        "batch64_tokens_per_second_range": [round(min(rates)), round(max(rates))],
    }
    for k, v in result.items():
        print(f"{k}: {v}")
    out = Path(__file__).parent / "results" / "generate.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
