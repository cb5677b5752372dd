"""Steering measured: how strongly guidance pulls tunes towards a style, and what the meter
constraint buys.

* :class:`StyleClassifier` — a small naive Bayes classifier that names a tune's style (Irish,
  German, Chinese, …) from its melody alone (token pairs of the body; the header, which states
  the style, is not read).  It is the judge of guidance: trained on the training split, scored
  on the test split so its own accuracy on real tunes is known.
* :func:`measure_guidance` — at each guidance scale, the share of tunes the classifier files
  under the style they were asked for, with their validity and diversity.
* :func:`measure_constraint` — the share of tunes with every bar complete, with and without
  :class:`toolkit.constraints.MeterConstraint`, at several temperatures.

``python benchmarks/steering.py`` writes both tables to ``benchmarks/results/``.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from toolkit.music.tokens import EOS

__all__ = ["StyleClassifier", "measure_guidance", "measure_constraint", "markdown_table"]


def _features(tokens: Sequence[str]) -> list[str]:
    """The melody's tokens and token pairs (header and end mark left out)."""
    body = [t for t in tokens[4:] if t != EOS]
    return body + [f"{a} {b}" for a, b in zip(body, body[1:], strict=False)]


class StyleClassifier:
    """Multinomial naive Bayes over a tune's body tokens and token pairs.

    ``score(style) = Σ_f count(f) · log P(f | style)`` with add-``alpha`` smoothing and equal
    priors (so that the largest collection does not win by default); the style with the highest
    score is the prediction.

    >>> clf = StyleClassifier().fit([
    ...     {"tokens": ["<s>", "M:6/8", "K:maj", "S:irish", "d", "e", "f", "</s>"],
    ...      "style": "irish"},
    ...     {"tokens": ["<s>", "M:2/4", "K:maj", "S:german", "C", "C", "G", "</s>"],
    ...      "style": "german"}])
    >>> clf.predict(["<s>", "M:?", "K:?", "S:?", "d", "e", "f", "</s>"])
    'irish'
    """

    def __init__(self, alpha: float = 0.5):
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha!r}")
        self.alpha = alpha
        self.styles: list[str] = []
        self.log_p: dict[str, dict[str, float]] = {}
        self.log_unseen: dict[str, float] = {}

    def fit(self, records: Iterable[dict]) -> StyleClassifier:
        """Learn from records with ``tokens`` and ``style`` (``toolkit.data.load("train")``)."""
        counts: dict[str, Counter] = {}
        for rec in records:
            counts.setdefault(rec["style"], Counter()).update(_features(rec["tokens"]))
        if len(counts) < 2:
            raise ValueError(f"need tunes of at least two styles, got {sorted(counts)}")
        vocab = set().union(*counts.values())
        self.styles = sorted(counts)
        for style, c in counts.items():
            total = sum(c.values()) + self.alpha * (len(vocab) + 1)
            self.log_p[style] = {f: math.log((n + self.alpha) / total) for f, n in c.items()}
            self.log_unseen[style] = math.log(self.alpha / total)
        return self

    def scores(self, tokens: Sequence[str]) -> dict[str, float]:
        """Log-likelihood of the tune's melody under each style."""
        if not self.styles:
            raise ValueError("the classifier is not trained yet: call .fit(records) first")
        feats = Counter(_features(tokens))
        return {s: sum(n * self.log_p[s].get(f, self.log_unseen[s]) for f, n in feats.items())
                for s in self.styles}

    def predict(self, tokens: Sequence[str]) -> str:
        """The most likely style of one tune's tokens."""
        scores = self.scores(tokens)
        return max(scores, key=scores.get)

    def accuracy(self, records: Iterable[dict], balanced: bool = True) -> float:
        """Share of records whose style is predicted right; ``balanced`` averages the share
        per style (so each style counts the same however many tunes it has)."""
        right: Counter = Counter()
        total: Counter = Counter()
        for rec in records:
            total[rec["style"]] += 1
            right[rec["style"]] += self.predict(rec["tokens"]) == rec["style"]
        if not total:
            raise ValueError("no records to score")
        if balanced:
            return sum(right[s] / total[s] for s in total) / len(total)
        return sum(right.values()) / sum(total.values())


def measure_guidance(model: Any, classifier: StyleClassifier,
                     scales: Sequence[float] = (0, 1, 2, 3, 5),
                     styles: Sequence[str] | None = None, n: int = 32, seed: int = 0,
                     temperature: float = 1.0, progress: bool = False) -> list[dict]:
    """One row per guidance scale: how strongly the tunes take on the style asked for.

    For every style (default: all the model knows) ``n`` tunes are generated with
    ``style=...`` and ``guidance=scale`` (0: the model with the style hidden; 1: plain
    conditioning; above 1: pushed further), then the row gives ``style_accuracy`` (share of
    tunes the classifier files under the asked style, averaged over styles), ``valid``
    (share passing :func:`toolkit.metrics.check_tokens`), ``distinct_4`` and
    ``pairwise_similarity`` (diversity within each style's batch, averaged), ``seconds``.
    """
    from toolkit.lm.generation import generate
    from toolkit.measure.metrics import distinct_n, mean_pairwise_similarity
    from toolkit.music.check import check_tokens

    styles = list(styles or model.choices("style"))
    rows = []
    cells = [(s, st) for s in scales for st in styles]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(cells), desc="guidance")
    for scale in scales:
        t0 = time.perf_counter()
        hit, valid, distinct, similar, per_style = [], [], [], [], {}
        for style in styles:
            tunes = generate(model, n=n, seed=seed, style=style, guidance=float(scale),
                             temperature=temperature)
            toks = [t.tokens for t in tunes]
            share = sum(classifier.predict(t) == style for t in toks) / n
            per_style[style] = share
            hit.append(share)
            valid.append(sum(check_tokens(t).ok for t in toks) / n)
            distinct.append(distinct_n(toks, 4))
            similar.append(mean_pairwise_similarity(toks, 4))
            if bar is not None:
                bar.update(1)
        rows.append({"guidance": scale, "style_accuracy": sum(hit) / len(hit),
                     "valid": sum(valid) / len(valid), "distinct_4": sum(distinct) / len(distinct),
                     "pairwise_similarity": sum(similar) / len(similar),
                     "per_style": per_style, "tunes": n * len(styles),
                     "seconds": round(time.perf_counter() - t0, 2)})
    if bar is not None:
        bar.close()
    return rows


def measure_constraint(model: Any, temperatures: Sequence[float] = (1.0, 2.0, 3.0),
                       n: int = 200, seed: int = 0) -> list[dict]:
    """One row per temperature: the share of ``n`` tunes with every bar complete (no bar too
    long, none short inside a section: the lenient bar rule) and fully valid (the strict
    checker), free, with :class:`MeterConstraint` and with :class:`GrammarConstraint`, same
    seeds."""
    from toolkit.lm import sampling as S
    from toolkit.lm.generation import generate
    from toolkit.lm.sampling.constraints import MeterConstraint
    from toolkit.music.check import check_tokens

    rows = []
    for temp in temperatures:
        row: dict[str, Any] = {"temperature": temp, "tunes": n}
        for label, chain in (("free", S.chain(S.temperature(temp))),
                             ("constrained", S.chain(MeterConstraint(), S.temperature(temp))),
                             ("grammar", S.chain(S.grammar(), S.temperature(temp)))):
            t0 = time.perf_counter()
            checks = [check_tokens(t.tokens) for t in generate(model, n=n, seed=seed,
                                                               sampler=chain)]
            row[f"bars_ok_{label}"] = sum(not v.bad_bars for v in checks) / n
            row[f"valid_{label}"] = sum(v.ok for v in checks) / n
            row[f"seconds_{label}"] = round(time.perf_counter() - t0, 2)
        rows.append(row)
    return rows


def markdown_table(rows: Sequence[dict], columns: Sequence[tuple[str, str, str]]) -> str:
    """A markdown table of ``rows``; ``columns`` are (key, header, format) such as
    ``("valid", "valid", ".0%")``."""
    head = "| " + " | ".join(h for _, h, _ in columns) + " |"
    rule = "|" + "|".join("---:" for _ in columns) + "|"
    body = ["| " + " | ".join(format(r[k], f) for k, _, f in columns) + " |" for r in rows]
    return "\n".join([head, rule, *body])


