"""Two models, one sampler: the LSTM beside the transformer, measured the same way.

    python benchmarks/two_models.py                     # the three shipped networks
    python benchmarks/two_models.py lstm transformer runs/tf-linear   # any models, by name/path

writes ``benchmarks/results/two_models.json`` and ``two_models.md``: for each model its
cross-entropy on the validation and test tunes, and for 500 tunes sampled at T = 1.0 and at
T = 0.5 (no truncation, up to 384 tokens) the share valid under the strict checker, the share of
repeated bars, the form measure (the share of tunes that play a section more than once:
``toolkit.measure.metrics.repeats_a_section``) and how much a tune copies its nearest training
tune, beside the corpus's own figures; then speed (``bench_generate.py``) and, for every
transformer, the cost of one more token at lengths 256 and 1,024 and the memory its cache or
state holds there.

Targets (issue 17, 2 CPU cores): transformer cross-entropy below the LSTM's; at T = 1 its share of
repeated bars and its form measure within ±30 % of the corpus's; one 256-token tune <= 100 ms;
a batch of 64 >= 30k tokens/s.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from toolkit import generate, load_model
from toolkit.lm import data as D
from toolkit.lm.train import evaluate
from toolkit.measure.metrics import (
    Memorisation,
    repeat_copy_probabilities,
    repeated_bars,
    repeats_a_section,
)
from toolkit.music.check import check_tokens

sys.path.insert(0, str(Path(__file__).parent))
import bench_generate  # noqa: E402

RESULTS = Path(__file__).parent / "results"
TEMPERATURES = (1.0, 0.5)
N_TUNES, BATCH, MAX_TOKENS = 500, 50, 384
BAND = 0.30  # the targets' ±30 % around the corpus
REPEAT_SIGNS = ("|:", ":|", "::")


def corpus_figures(records: list[dict]) -> dict:
    return {"tunes": len(records),
            "repeated_bars": statistics.mean(repeated_bars(r["tokens"]) for r in records),
            "repeats_a_section": statistics.mean(repeats_a_section(r["tokens"]) for r in records),
            "repeat_sign": statistics.mean(any(x in REPEAT_SIGNS for x in r["tokens"])
                                           for r in records)}


def sample_figures(model, temperature: float, memo: Memorisation) -> dict:
    tunes = []
    for b in range(N_TUNES // BATCH):
        tunes += generate(model, n=BATCH, seed=b, temperature=temperature, max_tokens=MAX_TOKENS)
    toks = [t.tokens for t in tunes]
    return {"tunes": len(toks),
            "valid": statistics.mean(check_tokens(t).ok for t in toks),
            "repeated_bars": statistics.mean(repeated_bars(t) for t in toks),
            "repeats_a_section": statistics.mean(repeats_a_section(t) for t in toks),
            "repeat_sign": statistics.mean(any(x in REPEAT_SIGNS for x in t) for t in toks),
            "copied_from_nearest": statistics.mean(memo.nearest(t)[1] for t in toks),
            "cut_at_max_tokens": statistics.mean(t[-1] != "</s>" for t in toks)}


@torch.inference_mode()
def decode_cost(model, length: int, rows: int) -> dict:
    """ms for one more token at ``length`` (median of the last 16 steps), and the bytes the
    state holds per tune there."""
    state = None
    logits, state = model(torch.full((rows, 4), model.stoi["<s>"]), state)
    tok = torch.full((rows,), model.stoi["C"])
    times = []
    for i in range(4, length):
        t0 = time.perf_counter()
        logits, state = model.step(tok, state)
        if i >= length - 16:
            times.append(time.perf_counter() - t0)
    held = 0
    for layer in state[0]:  # softmax: (keys, values, length) with spare room; linear: (S, z)
        used = [t[:, :, :layer[2]] for t in layer[:2]] if len(layer) == 3 else layer
        held += sum(t.numel() * t.element_size() for t in used)
    return {"ms_per_token": round(1000 * statistics.median(times), 3),
            "state_kib_per_tune": round(held / rows / 1024, 1)}


def main(names: list[str]) -> dict:
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    train, valid, test = D.load("train"), D.load("valid"), D.load("test")
    memo = Memorisation(train)
    out = {"corpus": corpus_figures(D.load("all")), "models": {}}
    for name in names:
        t0 = time.perf_counter()
        model = load_model(name)
        cfg = model.config
        row = {"arch": model.arch, "parameters": model.num_parameters,
               "attention": getattr(cfg, "attention", None),
               "valid_ce": round(evaluate(model, valid), 4),
               "test_ce": round(evaluate(model, test), 4),
               "copy_probability": statistics.mean(
                   p for r in test for p in repeat_copy_probabilities(model, r["tokens"])),
               "samples": {str(t): sample_figures(model, t, memo) for t in TEMPERATURES},
               "speed": bench_generate.main(name, write=False)}
        if model.arch == "transformer":
            row["decode"] = {f"{length}@B{rows}": decode_cost(model, length, rows)
                             for length in (256, 1024) for rows in (1, 64)}
        row["seconds"] = round(time.perf_counter() - t0, 1)
        out["models"][name] = row
        print(name, json.dumps(row), flush=True)
    (RESULTS / "two_models.json").write_text(json.dumps(out, indent=1) + "\n")
    (RESULTS / "two_models.md").write_text(report(out))
    return out


def _band(value: float, target: float) -> str:
    off = value / target - 1
    return f"{off:+.0%} ({'within' if abs(off) <= BAND else 'outside'} ±{BAND:.0%})"


def report(out: dict) -> str:
    c, models = out["corpus"], out["models"]
    names = list(models)
    lines = ["# Two models, one sampler", "",
             "Written by `python benchmarks/two_models.py " + " ".join(names) + "` (2 CPU "
             f"cores, torch {torch.__version__}). {N_TUNES} tunes per model and temperature, "
             f"no truncation, up to {MAX_TOKENS} tokens, seeds 0–{N_TUNES // BATCH - 1} × "
             f"{BATCH}. The corpus figures are over its {c['tunes']:,} tunes. \"P(copy a "
             "repeated bar exactly)\": for each bar of a test tune that repeats an earlier bar, "
             "the probability the network, given the real tune so far, writes that whole bar "
             "again (`metrics.repeat_copy_probabilities`), averaged.", "",
             "| | corpus | " + " | ".join(names) + " |",
             "|---|---:|" + "---:|" * len(names)]

    def row(label, corpus, fmt, get):
        lines.append(f"| {label} | {corpus} | " + " | ".join(fmt.format(get(models[n]))
                                                            for n in names) + " |")

    row("parameters", "", "{:,}", lambda m: m["parameters"])
    row("valid cross-entropy (nats/token)", "", "{:.3f}", lambda m: m["valid_ce"])
    row("test cross-entropy (nats/token)", "", "{:.3f}", lambda m: m["test_ce"])
    row("P(copy a repeated bar exactly), test tunes", "", "{:.3f}",
        lambda m: m["copy_probability"])
    for t in TEMPERATURES:
        k = str(t)
        row(f"T = {t}: valid (strict checker)", "", "{:.1%}",
            lambda m, k=k: m["samples"][k]["valid"])
        row(f"T = {t}: share of repeated bars", f"{c['repeated_bars']:.3f}", "{:.3f}",
            lambda m, k=k: m["samples"][k]["repeated_bars"])
        row(f"T = {t}: form (plays a section twice)", f"{c['repeats_a_section']:.3f}", "{:.3f}",
            lambda m, k=k: m["samples"][k]["repeats_a_section"])
        row(f"T = {t}: has a repeat sign", f"{c['repeat_sign']:.3f}", "{:.3f}",
            lambda m, k=k: m["samples"][k]["repeat_sign"])
        row(f"T = {t}: copied from nearest training tune", "", "{:.1%}",
            lambda m, k=k: m["samples"][k]["copied_from_nearest"])
        row(f"T = {t}: cut at {MAX_TOKENS} tokens", "", "{:.1%}",
            lambda m, k=k: m["samples"][k]["cut_at_max_tokens"])
    row("load (ms)", "", "{:.0f}", lambda m: 1000 * m["speed"]["load_seconds_median"])
    row("one 256-token tune, B = 1 (ms, median)", "", "{:.0f}",
        lambda m: m["speed"]["one_tune_256_tokens_ms_median"])
    row("batch of 64 (tokens/s, median)", "", "{:,}",
        lambda m: m["speed"]["batch64_tokens_per_second_median"])
    lines += ["", "## Against the targets (T = 1.0)", ""]
    for n in names:
        s = models[n]["samples"]["1.0"]
        lines.append(f"- **{n}**: repeated bars {_band(s['repeated_bars'], c['repeated_bars'])}"
                     f" of the corpus; form measure "
                     f"{_band(s['repeats_a_section'], c['repeats_a_section'])}.")
    tf = [n for n in names if "decode" in models[n]]
    if tf:
        lines += ["", "## One more token: softmax (key/value cache) against linear attention "
                  "(recurrent state)", "",
                  "ms for one generation step of the network alone (median of the last 16 steps "
                  "before that length), and what its cache or state holds per tune.", "",
                  "| model | attention | length | ms/token B = 1 | ms/step B = 64 | "
                  "KiB per tune |", "|---|---|---:|---:|---:|---:|"]
        for n in tf:
            d = models[n]["decode"]
            for length in (256, 1024):
                one, many = d[f"{length}@B1"], d[f"{length}@B64"]
                lines.append(f"| {n} | {models[n]['attention']} | {length} | "
                             f"{one['ms_per_token']:.2f} | {many['ms_per_token']:.2f} | "
                             f"{one['state_kib_per_tune']:,.0f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main(sys.argv[1:] or ["lstm", "transformer", "transformer-linear"])
