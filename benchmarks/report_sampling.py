"""The teacher's table: what temperature and truncation do to tunes, beside the corpus's figures.

    python benchmarks/report_sampling.py            # recomputes everything (about 10 min)
    python benchmarks/report_sampling.py --resume   # keeps the cells already in the .jsonl files

Temperatures 0.5 … 3.0 × {no truncation, top-p 0.9, min-p 0.1}; 4 seeds × 32 tunes = 128 tunes per
cell; every figure is a mean over those tunes.  Memorisation: the share of a tune's 8-token
stretches found in its nearest training tune.  The corpus row measures random batches of test
tunes the same way (their memorisation is against the training split: how much tunes of one
tradition share anyway).  The sentences under the table are written by this script from the
numbers, so they change when the numbers do.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch

from toolkit import data, load_model
from toolkit.measure.metrics import Memorisation
from toolkit.measure.sweep import corpus_reference, sweep

TEMPERATURES = [0.5, 0.8, 1.0, 1.2, 1.5, 2.0, 3.0]
TRUNCATIONS = {"none": {}, "top-p 0.9": {"top_p": 0.9}, "min-p 0.1": {"min_p": 0.1}}
SEEDS, N = [0, 1, 2, 3], 32
COLUMNS = [("valid", "valid", "{:.0%}"), ("distinct_4", "distinct-4", "{:.2f}"),
           ("pairwise_similarity", "pair sim.", "{:.3f}"), ("repeated_bars", "rep. bars", "{:.2f}"),
           ("pitch_class_entropy", "PC entropy", "{:.2f}"),
           ("copied_from_nearest", "copied", "{:.2f}"), ("surprisal_bits", "bits/token", "{:.2f}")]
OUT = Path(__file__).parent / "results"


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resume", action="store_true",
                        help="keep the rows already in results/sampling_report_*.jsonl "
                             "(an interrupted run); without it every cell is recomputed")
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    t0 = time.perf_counter()
    model = load_model()
    memo = Memorisation(data.load("train"))
    rows = []
    for name, extra in TRUNCATIONS.items():
        table = OUT / f"sampling_report_{name.replace(' ', '').replace('.', '')}.jsonl"
        if not args.resume:
            table.unlink(missing_ok=True)
        part = sweep(model, {"temperature": TEMPERATURES, **{k: [v] for k, v in extra.items()}},
                     seeds=SEEDS, n=N, out=table, memorisation=memo, progress=True)
        for r in part:
            r["truncation"] = name
        rows += part
    corpus = corpus_reference(data.load("test"), n=N, batches=len(SEEDS), memorisation=memo)

    def cell(metric: str, trunc: str, t: float) -> float:
        sel = [r[metric] for r in rows if r["truncation"] == trunc and r["temperature"] == t]
        return sum(sel) / len(sel)

    lines = ["# What sampling does to the tunes", "",
             f"Model: shipped weights; {len(SEEDS)} seeds × {N} tunes = {len(SEEDS) * N} tunes "
             f"per row; regenerate with `python benchmarks/report_sampling.py`.", "",
             "| truncation | T | " + " | ".join(c[1] for c in COLUMNS) + " |",
             "|---|---|" + "---|" * len(COLUMNS)]
    for trunc in TRUNCATIONS:
        for t in TEMPERATURES:
            vals = " | ".join(fmt.format(cell(m, trunc, t)) for m, _, fmt in COLUMNS)
            lines.append(f"| {trunc} | {t} | {vals} |")
    corpus_vals = " | ".join(fmt.format(corpus.get(m, float("nan"))) if m in corpus else "—"
                             for m, _, fmt in COLUMNS)
    lines += [f"| **corpus (test split)** | — | {corpus_vals} |", ""]

    v = {t: cell("valid", "none", t) for t in TEMPERATURES}
    d = {t: cell("distinct_4", "none", t) for t in TEMPERATURES}
    best_valid_p = {t: cell("valid", "top-p 0.9", t) for t in TEMPERATURES}
    best_valid_m = {t: cell("valid", "min-p 0.1", t) for t in TEMPERATURES}
    rep = {t: cell("repeated_bars", "none", t) for t in TEMPERATURES}
    lines += [
        "## What it shows", "",
        f"- Without truncation, the share of valid tunes (the strict checker: every bar as long as "
        f"the meter with pickups completed, ties, tuplets and broken rhythm well formed, repeats "
        f"and endings balanced, the tune ending on a full bar) goes from {v[0.5]:.0%} at T = 0.5 "
        f"and {v[1.0]:.0%} at T = 1.0 to "
        f"{v[2.0]:.0%} at T = 2.0 and {v[3.0]:.0%} at T = 3.0.",
        f"- Diversity (distinct-4 over a batch) rises with temperature: {d[0.5]:.2f} at T = 0.5, "
        f"{d[1.0]:.2f} at T = 1.0, {d[3.0]:.2f} at T = 3.0; the corpus's own batches score "
        f"{corpus['distinct_4']:.2f}.",
        f"- Truncation buys back validity at high temperature: at T = 2.0, {v[2.0]:.0%} valid "
        f"without it, {best_valid_p[2.0]:.0%} with top-p 0.9, {best_valid_m[2.0]:.0%} with "
        f"min-p 0.1; at T = 3.0: {v[3.0]:.0%}, {best_valid_p[3.0]:.0%}, {best_valid_m[3.0]:.0%}. "
        f"`constrain=\"grammar\"` keeps every tune valid at any temperature "
        f"(`benchmarks/results/grammar.md`).",
        f"- Repetition is musical: the corpus repeats {corpus['repeated_bars']:.0%} of its bars; "
        f"generated tunes repeat {rep[0.5]:.0%} at T = 0.5, {rep[1.0]:.0%} at T = 1.0 and "
        f"{rep[3.0]:.0%} at T = 3.0.",
        f"- Copying: at T = 0.5 a tune shares {cell('copied_from_nearest', 'none', 0.5):.0%} of "
        f"its 8-token stretches with its nearest training tune, at T = 1.0 "
        f"{cell('copied_from_nearest', 'none', 1.0):.0%}; test-split corpus tunes share "
        f"{corpus['copied_from_nearest']:.0%} with theirs.",
        "", f"Took {time.perf_counter() - t0:.0f} s on {os.cpu_count()} cores.", ""]
    (OUT / "sampling_report.md").write_text("\n".join(lines))
    (OUT / "sampling_report_corpus.json").write_text(json.dumps(corpus, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
