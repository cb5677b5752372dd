"""Quality of the shipped model: cross-entropy against an n-gram baseline, and validity of samples.

    python benchmarks/quality.py   # a few minutes; writes benchmarks/results/quality.json

* cross-entropy (nats/token) and perplexity on the valid and test splits, LSTM vs a 5-gram with
  interpolated absolute discounting (toolkit.lm.ngram), scored on the same tokens;
* 200 tunes sampled at temperature 1.0 with no truncation (seeds 0..3, 50 tunes each): the share
  that parse in music21 and the share whose every bar is as long as the meter says (the token
  checker in toolkit.measure.metrics, which follows the tune's own bar lines; pickups and the last
  bar of a section may be short), both together, and fully valid (repeats balanced too); the same
  200 seeds with the meter constraint (toolkit.lm.sampling.constraints) for comparison;
* the bar share again on 1,000 more tunes (seeds 100..119), with its 95 % Wilson interval, since
  200 tunes alone leave about ±3 points of sampling noise.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from pathlib import Path

import torch

from toolkit import data, generate, load_model
from toolkit import sampling as S
from toolkit.lm.ngram import NGram
from toolkit.lm.sampling.constraints import MeterConstraint
from toolkit.lm.train import evaluate
from toolkit.measure.metrics import check_tokens

UNKNOWN = {"M:?", "K:?", "S:?"}


def parses(abc: str) -> bool:
    import music21

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score = music21.converter.parse(abc, format="abc", forceSource=True)
        return len(score.flatten().notes) > 0
    except Exception:  # noqa: BLE001  (any parser failure counts as "does not parse")
        return False


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a share k/n (95 % for z = 1.96)."""
    p = k / n
    mid = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return mid - half, mid + half


def sample(model, seeds: range, chain=None) -> list:
    """50 tunes per seed, temperature 1.0 and no truncation unless ``chain`` says otherwise."""
    tunes = []
    for seed in seeds:
        tunes += generate(model, n=50, seed=seed, max_tokens=512,
                          sampler=chain or S.chain(S.temperature(1.0)))
    return tunes


def bars_complete(tokens: list[str]) -> bool:
    """The tune ends (``</s>``) and every bar is as long as the meter; a pickup and a section's
    last bar may be short (the lenient bar rule: ``Validity.bad_bars`` is empty)."""
    return tokens[-1] == "</s>" and not check_tokens(tokens).bad_bars


def bar_share(tunes: list) -> dict:
    """The share of tunes that end and have every bar complete, with its Wilson interval."""
    ok = sum(bars_complete(t.tokens) for t in tunes)
    low, high = wilson(ok, len(tunes))
    return {"samples": len(tunes), "share": round(ok / len(tunes), 4),
            "ci95": [round(low, 4), round(high, 4)]}


def main() -> dict:
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    model = load_model()
    valid, test = data.load("valid"), data.load("test")
    res: dict = {"parameters": model.num_parameters}
    for name, recs in (("valid", valid), ("test", test)):
        ce = evaluate(model, recs)
        res[f"lstm_{name}_nats"] = round(ce, 4)
        res[f"lstm_{name}_perplexity"] = round(math.exp(ce), 3)
    t0 = time.perf_counter()
    ngram = NGram(5).fit([r["tokens"] for r in data.load("train")])
    for name, recs in (("valid", valid), ("test", test)):
        ce = ngram.cross_entropy([r["tokens"] for r in recs], skip=UNKNOWN)
        res[f"ngram5_{name}_nats"] = round(ce, 4)
        res[f"ngram5_{name}_perplexity"] = round(math.exp(ce), 3)
    res["ngram_seconds"] = round(time.perf_counter() - t0, 1)

    tunes = sample(model, range(4))
    checks = [check_tokens(t.tokens) for t in tunes]
    bars = [bars_complete(t.tokens) for t in tunes]
    parsed = [parses(t.abc) for t in tunes]
    both = [a and b for a, b in zip(bars, parsed, strict=True)]
    constrained = sample(model, range(4), S.chain(MeterConstraint(), S.temperature(1.0)))
    grammar = sample(model, range(4), S.chain(S.grammar(), S.temperature(1.0)))
    res.update({
        "samples": len(tunes), "sampler": "temperature 1.0, no truncation, seeds 0-3 x 50",
        "share_bars_complete": round(sum(bars) / len(tunes), 4),
        "share_parse_music21": round(sum(parsed) / len(tunes), 4),
        "share_parse_and_bars": round(sum(both) / len(tunes), 4),
        "share_fully_valid": round(sum(c.ok for c in checks) / len(tunes), 4),
        "share_bars_complete_with_meter_constraint": round(
            sum(bars_complete(t.tokens) for t in constrained) / len(constrained), 4),
        "share_fully_valid_with_grammar": round(
            sum(check_tokens(t.tokens).ok for t in grammar) / len(grammar), 4),
        "mean_tokens_per_tune": round(sum(len(t.tokens) for t in tunes) / len(tunes), 1),
    })
    # 200 tunes measure a share to about ±3 points (95 %); 1,000 more (seeds 100..119) pin the
    # bar share down to about ±1.4, with its Wilson interval
    large = bar_share(sample(model, range(100, 120)))
    res.update({"samples_large": large["samples"],
                "share_bars_complete_large": large["share"],
                "share_bars_complete_large_95ci": large["ci95"]})
    for k, v in res.items():
        print(f"{k}: {v}")
    out = Path(__file__).parent / "results" / "quality.json"
    out.write_text(json.dumps(res, indent=1) + "\n")
    return res


if __name__ == "__main__":
    main()
