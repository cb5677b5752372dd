"""Speed of the measurements: the token validity checker, and a sweep with every metric.

    python benchmarks/bench_metrics.py     # writes benchmarks/results/metrics.json

Targets (issue 7, 2 cores): the checker >= 500 tunes/s; a sweep of 7 temperatures x 64 tunes
with all metrics (memorisation included) <= 60 s.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch

from toolkit import data, load_model
from toolkit.measure.metrics import Memorisation, check_tokens, tune_metrics
from toolkit.measure.sweep import sweep


def main() -> dict:
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    recs = data.load("all")
    t0 = time.perf_counter()
    for r in recs:
        check_tokens(r["tokens"])
    check_rate = len(recs) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for r in recs[:2000]:
        tune_metrics(r["tokens"])
    metrics_rate = 2000 / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    memo = Memorisation(data.load("train"))
    index_seconds = time.perf_counter() - t0
    model = load_model()
    t0 = time.perf_counter()
    sweep(model, {"temperature": [0.5, 0.8, 1.0, 1.2, 1.5, 2.0, 3.0]}, seeds=[0], n=64,
          memorisation=memo, progress=False)
    sweep_seconds = time.perf_counter() - t0
    result = {"checker_tunes_per_second": round(check_rate),
              "all_tune_metrics_tunes_per_second": round(metrics_rate),
              "memorisation_index_seconds": round(index_seconds, 1),
              "sweep_7_temperatures_x_64_tunes_seconds": round(sweep_seconds, 1),
              "corpus_tunes_checked": len(recs)}
    for k, v in result.items():
        print(f"{k}: {v}")
    (Path(__file__).parent / "results" / "metrics.json").write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
