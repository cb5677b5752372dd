"""What the bar clock's parts do for sampled bars: the same 1,000 tunes' seeds through each model.

    python benchmarks/clock_ablation.py runs/folk-room runs/folk-head-precal runs/folk-head

Each argument is a training run folder (or weights file).  The three above come from
``python -m toolkit train --epochs 24 --threads 2`` with ``--out runs/folk-room --no-clock-head``
(the clock as input only), ``--out runs/folk-head-precal --calibrate-epochs 0`` (with the clock
head, no calibration) and ``--out runs/folk-head`` (the shipped model).  For each: validation
cross-entropy, and the share of 1,000 tunes sampled at temperature 1.0 with no truncation
(seeds 100..119 × 50, as in ``quality.py``) whose every bar is complete, with its 95 % Wilson
interval.  Writes ``benchmarks/results/clock_ablation.json``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from toolkit import data, load_model
from toolkit.lm.train import evaluate

sys.path.insert(0, str(Path(__file__).parent))
from quality import bar_share, sample  # noqa: E402


def measure(path: str) -> dict:
    model = load_model(path)
    bars = bar_share(sample(model, range(100, 120)))
    cfg = model.config
    return {"model": path, "clock_input": cfg.bar_clock, "clock_head": cfg.clock_head,
            "calibration_epochs": len(model.info.get("calibration", [])),
            "parameters": model.num_parameters,
            "valid_nats": round(evaluate(model, data.load("valid")), 4),
            "samples": bars["samples"], "share_bars_complete": bars["share"],
            "share_bars_complete_95ci": bars["ci95"]}


def main(paths: list[str]) -> list[dict]:
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    rows = [measure(p) for p in paths]
    for r in rows:
        print(f"{r['model']}: clock head {r['clock_head']}, calibration {r['calibration_epochs']}"
              f" epochs, valid {r['valid_nats']:.4f} nats/token, bars complete "
              f"{r['share_bars_complete']:.1%} (95 % {r['share_bars_complete_95ci'][0]:.1%}–"
              f"{r['share_bars_complete_95ci'][1]:.1%}) of {r['samples']}")
    out = Path(__file__).parent / "results" / "clock_ablation.json"
    out.write_text(json.dumps(rows, indent=1) + "\n")
    return rows


if __name__ == "__main__":
    main(sys.argv[1:] or ["runs/folk-room", "runs/folk-head-precal", "runs/folk-head"])
