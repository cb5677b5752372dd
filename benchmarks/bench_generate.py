"""Speed of the generator on this machine: model load, one 256-token tune, a batch of 64.

    python benchmarks/bench_generate.py                 # the LSTM: results/generate.json
    python benchmarks/bench_generate.py transformer     # results/generate_transformer.json

Targets (issue 3, on 2 CPU cores): load <= 1 s; one 256-token tune <= 100 ms (median);
a batch of 64 tunes >= 30k tokens/s.  Generated tunes write their ABC text when it is first
read, so the batch rate counts the model and the sampler; writing the 64 texts is timed apart.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from toolkit import generate, load_model


def main(name: str = "lstm", write: bool = True) -> dict:
    """Time the model ``name`` (``"lstm"``, ``"transformer"``, a weights file or run folder)."""
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    loads = []
    for _ in range(5):
        t0 = time.perf_counter()
        model = load_model(name)
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
    # a generated Tune writes its ABC text when first read: what that costs for the whole batch
    writes, with_text = [], []
    for seed in range(3):
        t0 = time.perf_counter()
        tunes = generate(model, n=64, seed=seed, max_tokens=256, stop_at_end=False)
        t1 = time.perf_counter()
        [t.abc for t in tunes]  # noqa: B018 -- the first reading writes the text
        t2 = time.perf_counter()
        writes.append(t2 - t1)
        with_text.append(sum(len(t.tokens) - 4 for t in tunes) / (t2 - t0))

    result = {
        "model": name,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
                   f"{torch.get_num_threads()} threads",
        "load_seconds_median": round(statistics.median(loads), 4),
        "one_tune_256_tokens_ms_median": round(1000 * statistics.median(one), 1),
        "batch64_tokens_per_second_median": round(statistics.median(rates)),
        "batch64_tokens_per_second_range": [round(min(rates)), round(max(rates))],
        "batch64_write_abc_ms_median": round(1000 * statistics.median(writes), 1),
        "batch64_with_abc_text_tokens_per_second_median": round(statistics.median(with_text)),
    }
    for k, v in result.items():
        print(f"{k}: {v}")
    if write:
        out = Path(__file__).parent / "results" / (
            "generate.json" if name == "lstm" else f"generate_{name}.json")
        out.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main(*sys.argv[1:2])
