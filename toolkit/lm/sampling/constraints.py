"""Meter-constrained decoding: a chain step that keeps every bar exactly as long as the meter.

The step knows how much of the current bar each tune has filled (in eighth notes) and removes,
before the draw, every token that would break the bar:

* a duration that would make the note overflow the bar;
* a new note or rest when less than the shortest note fits;
* broken rhythm (``>``, ``<``) when the pair would not fit;
* a plain bar line ``|`` (or ``|:``) before the bar is full — except in the first bar, a pickup;
* when the bar is full: anything but a bar line, an end of section, a tie or the end of the tune.

Section ends (``:|``, ``||``, ``|]``, ``::``) may close a short bar, as in real tunes.  If a rule
would leave no token at all, the step leaves the row alone (it never removes every token).

>>> from toolkit import sampling as S, generate, load_model                  # doctest: +SKIP
>>> chain = S.chain(MeterConstraint(), S.temperature(3.0))                   # doctest: +SKIP
>>> tunes = generate(load_model(), n=8, sampler=chain, seed=1)               # doctest: +SKIP
"""

from __future__ import annotations

from fractions import Fraction

import torch
from torch import Tensor

from toolkit.lm.barclock import START, advance
from toolkit.lm.sampling import Context, Step
from toolkit.music.check import SECTION_ENDS
from toolkit.music.tokens import BROKEN, EOS, bar_length, is_duration, is_pitch, parse_duration

__all__ = ["MeterConstraint", "BarState", "meter_constraint"]

SHORTEST = Fraction(1, 4)  # the shortest duration token ("/4") times one eighth


class BarState:
    """How full the current bar is: a :class:`toolkit.barclock.Clock` (the arithmetic the model's
    bar clock uses) plus the bar's full length, and the rule of what may come next.

    ``filled`` counts eighths, including the last note's duration so far; ``last`` is that note's
    length (a duration token multiplies it); ``next_scale()`` is what the next note's length is
    multiplied by (a tuplet, or the second note of a broken-rhythm pair).
    """

    def __init__(self, full: Fraction | None):
        self.full = full
        self.clock = START

    filled = property(lambda self: self.clock.filled)
    last = property(lambda self: self.clock.last)
    after_duration = property(lambda self: self.clock.after_duration)
    bar = property(lambda self: self.clock.bar)

    def next_scale(self) -> Fraction:
        return self.clock.next_scale()

    def push(self, tok: str) -> None:
        self.clock = advance(self.clock, tok)

    def allowed(self, vocab: list[str]) -> list[bool]:
        """Which tokens may come next without breaking the bar."""
        if self.full is None:
            return [True] * len(vocab)
        room = self.full - self.filled
        out = []
        for tok in vocab:
            if is_duration(tok):
                ok = (self.last is not None and not self.after_duration
                      and self.last * (parse_duration(tok) - 1) <= room)
            elif is_pitch(tok) or tok == "z":
                ok = room >= self.next_scale() * SHORTEST and room > 0
                if self.filled > self.full:  # the last note still needs a shortening duration
                    ok = False
            elif tok in BROKEN:
                first, second = BROKEN[tok]
                ok = self.last is not None and self.last * (first - 1) \
                    + self.last * second * SHORTEST <= room
            elif tok in ("|", "|:"):
                ok = self.filled == self.full or (self.bar == 0 and 0 < self.filled < self.full)
            elif tok in SECTION_ENDS or tok == EOS:
                ok = self.filled <= self.full
            elif tok == "-":
                ok = True
            else:  # endings, tuplet marks: only at a sensible place
                ok = room > 0 and self.filled <= self.full
            out.append(ok)
        if self.filled > self.full:  # overflowing: only a duration that shrinks the note helps
            out = [o and is_duration(t) for o, t in zip(out, vocab, strict=True)]
        return out


class MeterConstraint(Step):
    """Remove the tokens that would make a bar longer or shorter than the meter.

    Formula: ``logits[b, v] = −∞`` for every token ``v`` that :class:`BarState` of row ``b``
    does not allow; needs ``ctx.history`` (the tokens so far, with the meter at position 1) and
    ``ctx.vocab``, which :func:`toolkit.generate` provides.  Keeps state between tokens (reset
    by the generator at the start of every batch).
    """

    def __init__(self) -> None:
        self._states: list[BarState] | None = None
        self._vocab: list[str] | None = None
        self._cache: dict[tuple, Tensor] = {}

    def reset(self) -> None:
        self._states = None

    def _start(self, ctx: Context) -> None:
        if ctx is None or ctx.history is None or ctx.vocab is None:
            raise ValueError("MeterConstraint needs ctx.history and ctx.vocab: use it inside "
                             "toolkit.generate(..., sampler=S.chain(MeterConstraint(), ...))")
        self._vocab = list(ctx.vocab)
        self._states = []
        for row in ctx.history.tolist():
            toks = [self._vocab[i] for i in row]
            state = BarState(bar_length(toks[1]) if len(toks) > 1 else None)
            for t in toks[4:]:
                state.push(t)
            self._states.append(state)

    def step(self, logits: Tensor, ctx: Context | None = None) -> Tensor:
        if self._states is None or len(self._states) != logits.shape[0]:
            self._start(ctx)
        masks = []
        for st in self._states:
            key = (st.full, st.filled, st.last, st.after_duration, st.next_scale(), st.bar == 0)
            if key not in self._cache:
                self._cache[key] = torch.tensor(st.allowed(self._vocab), dtype=torch.bool)
            masks.append(self._cache[key])
        allowed = torch.stack(masks).to(logits.device)                     # (B, V)
        allowed &= logits > float("-inf")
        empty = ~allowed.any(dim=-1, keepdim=True)                         # (B, 1) rule kills all
        return logits.masked_fill(~(allowed | empty), float("-inf"))

    def observe(self, tokens: Tensor, probs: Tensor) -> None:
        if self._states is None:
            return
        for st, t in zip(self._states, tokens.tolist(), strict=True):
            st.push(self._vocab[t])

    def __repr__(self) -> str:
        return "MeterConstraint()"


def meter_constraint() -> MeterConstraint:
    """A :class:`MeterConstraint` step for a chain."""
    return MeterConstraint()
