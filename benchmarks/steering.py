"""Steering measured: guidance scale against style strength, validity and diversity; the meter
constraint against validity at high temperature.

    python benchmarks/steering.py     # writes benchmarks/results/steering.md and steering.json

Guidance: for each of the model's styles, 32 tunes at each scale 0, 1, 2, 3 and 5 (temperature 1,
seed 0), judged by a naive Bayes style classifier (``toolkit.steering.StyleClassifier``) trained
on the training split — its own balanced accuracy on the test split's real tunes is printed as
the ceiling to read the table against; chance is one in the number of styles.  Constraint: 200
tunes at temperatures 1, 2 and 3, the same seed with and without ``MeterConstraint``.  The
sentences under the tables are written from the numbers.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch

from toolkit import data, load_model
from toolkit.measure.steering import (
    StyleClassifier,
    markdown_table,
    measure_constraint,
    measure_guidance,
)

SCALES = [0, 1, 2, 3, 5]
N_PER_STYLE = 32
OUT = Path(__file__).parent / "results"


def main() -> dict:
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    t0 = time.perf_counter()
    model = load_model()
    clf = StyleClassifier().fit(data.load("train"))
    test = data.load("test")
    ceiling = clf.accuracy(test)
    styles = model.choices("style")
    guidance = measure_guidance(model, clf, scales=SCALES, n=N_PER_STYLE, seed=0, progress=True)
    constraint = measure_constraint(model, temperatures=(1.0, 2.0, 3.0), n=200, seed=0)
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "model": model.info.get("id", "folk_lstm"), "styles": styles,
        "classifier_test_accuracy_balanced": ceiling, "chance": 1 / len(styles),
        "guidance": guidance, "constraint": constraint,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    OUT.mkdir(exist_ok=True)
    (OUT / "steering.json").write_text(json.dumps(result, indent=1) + "\n")
    (OUT / "steering.md").write_text(report(result))
    print(report(result))
    return result


def report(r: dict) -> str:
    g, c = r["guidance"], r["constraint"]
    by = {row["guidance"]: row for row in g}
    best = max(g, key=lambda row: row["style_accuracy"])
    lines = [
        "# Steering: guidance and the meter constraint",
        "",
        "Written by `python benchmarks/steering.py` "
        f"({r['machine']}; {r['seconds']:.0f} s). Do not edit by hand.",
        "",
        "## Classifier-free guidance",
        "",
        f"{N_PER_STYLE} tunes per style ({len(r['styles'])} styles: "
        f"{', '.join(r['styles'])}) at each scale, temperature 1. *Style strength* is the share "
        "of tunes that a naive Bayes classifier, reading only the melody, files under the style "
        f"they were asked for (averaged over styles). On real test tunes the classifier gets "
        f"{r['classifier_test_accuracy_balanced']:.0%} right; chance is "
        f"{r['chance']:.0%}. Scale 0 hides the style from the model; 1 is plain conditioning.",
        "",
        markdown_table(g, [("guidance", "guidance scale", "g"),
                           ("style_accuracy", "style strength", ".0%"),
                           ("valid", "valid", ".0%"), ("distinct_4", "distinct-4", ".3f"),
                           ("pairwise_similarity", "pairwise similarity", ".3f")]),
        "",
        "Style strength by style:",
        "",
        markdown_table([{"guidance": row["guidance"], **row["per_style"]} for row in g],
                       [("guidance", "scale", "g")] + [(s, s, ".0%") for s in r["styles"]]),
        "",
        f"What it shows: without the style (scale 0) the classifier's hits are at chance level "
        f"({by[0]['style_accuracy']:.0%}); plain conditioning (scale 1) gives "
        f"{by[1]['style_accuracy']:.0%}; the strongest pull in the table is at scale "
        f"{best['guidance']:g} ({best['style_accuracy']:.0%}). Validity goes from "
        f"{by[1]['valid']:.0%} at scale 1 to {by[SCALES[-1]]['valid']:.0%} at scale "
        f"{SCALES[-1]}, and distinct-4 (diversity within a style's batch) from "
        f"{by[1]['distinct_4']:.3f} to {by[SCALES[-1]]['distinct_4']:.3f}: guidance "
        "buys style at the price of "
        f"{_cost(by[1]['valid'], by[SCALES[-1]]['valid'], 0.03, 'validity')} and "
        f"{_cost(by[1]['distinct_4'], by[SCALES[-1]]['distinct_4'], 0.02, 'diversity')}.",
        "",
        "## Meter-constrained decoding",
        "",
        "200 tunes per temperature, the same seed free, with `MeterConstraint` and with "
        "`S.grammar()` (no truncation). *Bars complete*: every bar as long as the meter "
        "(pickups and section ends may be short); *valid*: the strict checker (ties, tuplets, "
        "broken rhythm, repeats and endings, pickups completed, the tune ends on a full bar).",
        "",
        markdown_table(c, [("temperature", "temperature", "g"),
                           ("bars_ok_free", "bars complete, free", ".1%"),
                           ("bars_ok_constrained", "bars complete, constrained", ".1%"),
                           ("valid_free", "valid, free", ".1%"),
                           ("valid_constrained", "valid, constrained", ".1%"),
                           ("valid_grammar", "valid, grammar", ".1%")]),
        "",
        "What it shows: " + "; ".join(
            f"at T = {row['temperature']:g}, {row['bars_ok_free']:.1%} of free tunes have every "
            f"bar complete against {row['bars_ok_constrained']:.1%} with the constraint"
            for row in c) + ". The meter constraint fixes bar lengths, not the rest: "
        + "; ".join(f"at T = {row['temperature']:g} {row['valid_constrained']:.1%} of its tunes "
                    f"are valid, against {row['valid_grammar']:.1%} under the grammar"
                    for row in c) + ".",
        "",
    ]
    return "\n".join(lines)


def _cost(before: float, after: float, small: float, what: str) -> str:
    """'validity' when it fell by more than ``small``, else 'hardly any validity'."""
    return what if before - after > small else f"hardly any {what}"


if __name__ == "__main__":
    main()
