"""The bar clock: how much of the current bar the tokens so far have filled.

A tune's tokens spell durations indirectly (a note, then maybe a length token, a broken-rhythm
sign, a tuplet mark), so "how full is this bar?" takes a little arithmetic.  :func:`advance` does
it one token at a time on an immutable :class:`Clock`; the same arithmetic serves

* the model, which reads the filled length as an extra input at every position (``bar_clock`` in
  :class:`toolkit.model.ModelConfig`) — counting durations is then the easy part of its job —
  and, with ``clock_head``, adds a learnt bias per clock value to its output logits;
* :class:`toolkit.constraints.MeterConstraint`, which removes the durations that would overflow.

Lengths are in eighth notes (every tune is written with ``L:1/8``).  Once the meter token has
gone by (``M:6/8``), the clock also knows how long a full bar is, and the model's input becomes the
*room left* in the bar — the quantity that decides which durations still fit.

>>> c = START
>>> for tok in ["|:", "G", "2", ">", "A", "(3", "B", "c", "d"]:
...     c = advance(c, tok)
>>> c.filled, c.bar
(Fraction(11, 2), 1)
>>> feature(c)        # no meter token seen: the filled length, in twelfths of an eighth
66
>>> c = START
>>> for tok in ["M:6/8", "|:", "G", "2"]:
...     c = advance(c, tok)
>>> c.full - c.filled, feature(c) == ROOM_BASE + ROOM_LOW + 48   # 4 eighths of room left
(Fraction(4, 1), True)
"""

from __future__ import annotations

import math

import torch

from toolkit.music.tokens import START, Clock, advance

__all__ = ["Clock", "START", "advance", "feature", "N_FEATURES", "FILLED_MAX", "ROOM_BASE",
           "ROOM_LOW", "ROOM_HIGH", "BarClock"]

STEPS_PER_EIGHTH = 12  # triplets (2/3) and sixteenths (1/2, 1/4) are whole multiples of 1/12
FILLED_MAX = 192       # meter unknown: 0 .. 191 twelfths filled (16 eighths), 192 = more
ROOM_BASE = FILLED_MAX + 1
ROOM_LOW, ROOM_HIGH = 24, 384  # meter known: room left from −2 to +32 eighths, in twelfths
N_FEATURES = ROOM_BASE + ROOM_LOW + ROOM_HIGH + 1


def feature(clock: Clock) -> int:
    """The model's bar-clock input, one of :data:`N_FEATURES` ids.

    Meter known: ``ROOM_BASE + ROOM_LOW + room`` where room = full − filled in twelfths of an
    eighth, clipped to [−ROOM_LOW, ROOM_HIGH] (negative: the bar has overflowed).  Meter
    unknown (``M:?``): the filled length in twelfths, capped at ``FILLED_MAX``.
    """
    if clock.full is None:
        return min(int(clock.filled * STEPS_PER_EIGHTH), FILLED_MAX)
    room = math.floor((clock.full - clock.filled) * STEPS_PER_EIGHTH)
    return ROOM_BASE + ROOM_LOW + max(-ROOM_LOW, min(room, ROOM_HIGH))


class BarClock:
    """Bar clocks for many rows at once, over token ids of one vocabulary (memoised).

    States are interned as small integers so that a step is a dictionary lookup per row; the bar
    count is left out of the interned state (the model does not read it), which keeps the table
    small.

    >>> clock = BarClock(["<s>", "|", "G", "2"])
    >>> clock.run([[0, 2, 3, 1, 2]])[0]
    [[0, 12, 24, 0, 12]]
    """

    def __init__(self, vocab: list[str]):
        self.vocab = list(vocab)
        self._states: list[Clock] = [START]
        self._index: dict[Clock, int] = {START: 0}
        self._next: dict[tuple[int, int], int] = {}
        self._feature: list[int] = [0]

    def _step(self, state: int, tok: int) -> int:
        key = (state, tok)
        nxt = self._next.get(key)
        if nxt is None:
            clock = advance(self._states[state], self.vocab[tok])._replace(bar=0)
            nxt = self._index.get(clock)
            if nxt is None:
                nxt = self._index[clock] = len(self._states)
                self._states.append(clock)
                self._feature.append(feature(clock))
            self._next[key] = nxt
        return nxt

    def run(self, ids, states: list[int] | None = None) -> tuple[list[list[int]], list[int]]:
        """Feed rows of token ids ``(B, T)``; return the features ``(B, T)`` (the state after
        each token) and the final states, to continue from with the next call."""
        rows = ids.tolist() if isinstance(ids, torch.Tensor) else ids
        states = list(states) if states is not None else [0] * len(rows)
        feats = []
        for r, row in enumerate(rows):
            s, out = states[r], []
            for tok in row:
                s = self._step(s, tok)
                out.append(self._feature[s])
            feats.append(out)
            states[r] = s
        return feats, states
