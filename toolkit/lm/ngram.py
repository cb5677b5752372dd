"""A simple n-gram baseline: what the LSTM must beat.

Interpolated absolute discounting (the core of Kneser–Ney without continuation counts)::

    P(w | h) = max(c(h, w) − D, 0) / c(h) + D · N₁₊(h ·) / c(h) · P(w | h')

where ``h'`` drops the oldest token of the history ``h``, ``N₁₊(h ·)`` counts the different
tokens seen after ``h``, and the recursion ends in the add-one unigram.  Scored the same way as
the LSTM: nats per token, conditioning given, unknown conditioning tokens not scored.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict

__all__ = ["NGram"]


class NGram:
    """An order-``n`` token model with interpolated absolute discounting ``D``."""

    def __init__(self, n: int = 5, discount: float = 0.75):
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        if not 0 < discount < 1:
            raise ValueError(f"discount must be in (0, 1), got {discount!r}")
        self.n, self.d = n, discount
        self.counts: list[dict[tuple, Counter]] = [defaultdict(Counter) for _ in range(n)]
        self.vocab: set[str] = set()

    def fit(self, sequences: list[list[str]]) -> NGram:
        for seq in sequences:
            self.vocab.update(seq)
            for i in range(1, len(seq)):
                for k in range(self.n):  # history lengths 0 .. n-1
                    if i - k < 0:
                        break
                    self.counts[k][tuple(seq[i - k:i])][seq[i]] += 1
        self._totals = [{h: sum(c.values()) for h, c in level.items()} for level in self.counts]
        return self

    def prob(self, history: tuple[str, ...], token: str) -> float:
        p = (self.counts[0][()][token] + 1) / (self._totals[0][()] + len(self.vocab) + 1)
        for k in range(1, min(self.n, len(history) + 1)):
            h = history[len(history) - k:]
            c = self.counts[k].get(h)
            if not c:
                break
            total = self._totals[k][h]
            p = max(c[token] - self.d, 0) / total + self.d * len(c) / total * p
        return p

    def cross_entropy(self, sequences: list[list[str]], skip: set[str] = frozenset()) -> float:
        """Mean −log P (nats) over every token after the first, except tokens in ``skip``."""
        total, count = 0.0, 0
        for seq in sequences:
            for i in range(1, len(seq)):
                if seq[i] in skip:
                    continue
                total -= math.log(self.prob(tuple(seq[max(0, i - self.n + 1):i]), seq[i]))
                count += 1
        return total / max(count, 1)
