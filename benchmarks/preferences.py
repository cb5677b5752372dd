"""Steering from ratings, measured with simulated listeners.

    python benchmarks/preferences.py   # writes benchmarks/results/preferences.{md,json,png}
    python benchmarks/preferences.py --seeds 1  # a quicker, noisier run

Each listener of ``toolkit.measure.listeners`` (five the models were developed with, and one
held out, written after them) rates tunes through the studio's own logic
(``RatingSession``). After 0, 5, 10, 20 and 40 ratings the preference models are fitted on its
log, and the listener judges three batches of 32 tunes by its expected liking: unsteered (the
studio's exploration settings), steered (history-model mixture with guidance 1.5, best of 8 by
the reward model) and random steering (the same models fitted on the log with its ratings
shuffled). Each figure is the mean over the seeds (each seed: a fresh listener history and
fresh batches). The sentences under the tables are written from the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from toolkit import load_model
from toolkit.lessons.plots import plot_learning_curves, save_png
from toolkit.measure.listeners import CHECKPOINTS, HELD_OUT, LISTENERS, learning_curve

OUT = Path(__file__).parent / "results"
TARGET = 2.0          # steered / unsteered, from 20 ratings on


def summarize(curves: list[dict]) -> dict:
    """Mean over seeds of each column, per checkpoint."""
    cols = ["unsteered", "steered", "random", "unsteered_distinct4", "steered_distinct4",
            "steered_headers", "unsteered_headers", "liked_in_log", "fit_seconds", "events"]
    rows = []
    for i, k in enumerate(CHECKPOINTS):
        row = {"ratings": k}
        for c in cols:
            row[c] = float(np.mean([cv["rows"][i][c] for cv in curves]))
        row["gain"] = row["steered"] / row["unsteered"] if row["unsteered"] > 0 else float("nan")
        row["random_gain"] = (row["random"] / row["unsteered"] if row["unsteered"] > 0
                              else float("nan"))
        rows.append(row)
    first = curves[0]
    return {"listener": first["listener"], "description": first["description"],
            "expressible": first["expressible"], "ceiling": first["ceiling"], "rows": rows,
            "seeds": [cv["seed"] for cv in curves]}


def verdict(s: dict) -> str:
    late = [r for r in s["rows"] if r["ratings"] >= 20]
    gains = ", ".join(f"{r['gain']:.1f}× at {r['ratings']}" for r in late)
    met = all(r["gain"] >= TARGET for r in late)
    if not s["expressible"]:
        return (f"the control, a taste no feature can express: steered ÷ unsteered {gains} "
                f"({'below the target, as expected' if not met else 'at the target: suspect'})")
    line = f"target (≥ {TARGET:g}× from 20 ratings on): **{'met' if met else 'missed'}** ({gains})"
    if met:
        return line
    why = []
    for r in late:
        if r["gain"] >= TARGET:
            continue
        most = s["ceiling"] / r["unsteered"] if r["unsteered"] > 0 else float("inf")
        if most < TARGET or r["steered"] >= 0.9 * s["ceiling"]:
            why.append(f"at {r['ratings']} steering is at the ceiling: the taste's highest "
                       f"P(like) is {s['ceiling']:.2f} and unsteered batches already get "
                       f"{r['unsteered']:.2f}, so at most {most:.2f}× is possible; steered gets "
                       f"{r['steered']:.2f}, {r['steered'] / s['ceiling']:.0%} of the ceiling")
        elif r["ratings"] == 20 and s["listener"] == "changes taste":
            why.append("at 20 the listener has just changed its taste and no rating has shown "
                       "the new one yet: no model can follow it before it is rated")
        else:
            why.append(f"at {r['ratings']}: {r['liked_in_log']:.1f} likes in the log on average "
                       f"were too few to learn the taste from")
    return line + ". Why: " + "; ".join(why) + "."


def markdown(summaries: list[dict], meta: dict) -> str:
    out = ["# Steering from ratings, measured with simulated listeners", "",
           f"Written by `python benchmarks/preferences.py` on {meta['machine']} "
           f"(torch {meta['torch']}, model `{meta['model']}`), {meta['seconds']:.0f} s. "
           f"Batches of {meta['batch']} tunes, best of {meta['N']}; each figure is the mean over "
           f"seeds {meta['seeds']}. Liked share = the listener's expected liking of the batch.",
           "", "![learning curves](preferences.png)", ""]
    for s in summaries:
        held = " (held out: not used while the models were developed)" \
            if s["listener"] == HELD_OUT.name else ""
        out += [f"## {s['listener']}{held}", "", s["description"] + ".", "",
                "| ratings | liked in log | unsteered | steered | random steering | steered ÷ "
                "unsteered | distinct 4-grams steered / unsteered | headers steered / unsteered "
                "| fit (s) |",
                "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in s["rows"]:
            out.append(f"| {r['ratings']} | {r['liked_in_log']:.1f} | {r['unsteered']:.2f} | "
                       f"{r['steered']:.2f} | {r['random']:.2f} | {r['gain']:.2f} | "
                       f"{r['steered_distinct4']:.2f} / {r['unsteered_distinct4']:.2f} | "
                       f"{r['steered_headers']:.1f} / {r['unsteered_headers']:.1f} | "
                       f"{r['fit_seconds']:.2f} |")
        out += ["", verdict(s), ""]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3, help="listener histories per rater (3)")
    ap.add_argument("--batch", type=int, default=32, help="tunes per judged batch (32)")
    ap.add_argument("--out", type=Path, default=OUT, help="results folder")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite the .md and .png from the .json, measuring nothing")
    args = ap.parse_args(argv)
    if args.report_only:
        result = json.loads((args.out / "preferences.json").read_text())
        write_report(result["listeners"], result["meta"], args.out)
        return result
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    t0 = time.perf_counter()
    model = load_model()
    listeners = [*LISTENERS, HELD_OUT]
    summaries = []
    with tqdm(total=len(listeners) * args.seeds * len(CHECKPOINTS), unit="checkpoint") as bar:
        for listener in listeners:
            curves = []
            for seed in range(args.seeds):
                curves.append(learning_curve(model, listener, batch=args.batch, seed=seed,
                                             progress=lambda m: bar.update(1)))
            summaries.append(summarize(curves))
            tqdm.write(f"{listener.name}: {verdict(summaries[-1])}")
    meta = {"machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "torch": torch.__version__, "model": model.info.get("id", "folk_lstm"),
            "seconds": time.perf_counter() - t0, "batch": args.batch, "N": 8,
            "seeds": list(range(args.seeds)), "target": TARGET}
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"meta": meta, "listeners": summaries}
    (args.out / "preferences.json").write_text(json.dumps(result, indent=1) + "\n")
    write_report(summaries, meta, args.out)
    return result


def write_report(summaries: list[dict], meta: dict, out: Path) -> None:
    (out / "preferences.md").write_text(markdown(summaries, meta))
    fig = plot_learning_curves(summaries, show=False)
    save_png(fig, out / "preferences.png", dpi=80)
    print(f"wrote {out / 'preferences.md'} ({meta['seconds']:.0f} s of measuring)")


if __name__ == "__main__":
    main()
