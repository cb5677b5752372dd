"""How full is the bar? Duration arithmetic over tokens, one token at a time.

A tune's tokens spell durations indirectly (a note, then maybe a length token, a broken-rhythm
sign, a tuplet mark).  :func:`advance` does the arithmetic on an immutable :class:`Clock`; the
model's bar-clock input (:mod:`toolkit.lm.barclock`), the meter constraint and the grammar
(:mod:`toolkit.music.grammar`) all read it.  Lengths are in eighth notes (``L:1/8``).

>>> c = START
>>> for tok in ["|:", "G", "2", ">", "A", "(3", "B", "c", "d"]:
...     c = advance(c, tok)
>>> c.filled, c.bar
(Fraction(11, 2), 1)
"""

from __future__ import annotations

from fractions import Fraction
from typing import NamedTuple

from toolkit.music.tokens import (
    _TUPLET_Q,
    BARS,
    BROKEN,
    bar_length,
    is_duration,
    is_pitch,
    parse_duration,
)

__all__ = ["Clock", "START", "advance"]


class Clock(NamedTuple):
    """The state of the current bar after some tokens (immutable, hashable)."""

    filled: Fraction = Fraction(0)      # eighths so far, the last note's duration included
    last: Fraction | None = None        # length of the last note or rest (None after a bar line)
    after_duration: bool = False        # the last note already has its duration token
    tuplet_left: int = 0                # notes still inside a tuplet
    tuplet_scale: Fraction = Fraction(1)
    broken_next: Fraction | None = None  # the second note of a broken-rhythm pair is scaled
    bar: int = 0                        # bar lines passed (0: still in the first bar)
    full: Fraction | None = None        # a full bar's length, once a meter token has gone by

    def next_scale(self) -> Fraction:
        """What the next note's length is multiplied by (tuplet and broken rhythm)."""
        scale = self.tuplet_scale if self.tuplet_left else Fraction(1)
        return scale * (self.broken_next or 1)


START = Clock()


def advance(clock: Clock, tok: str) -> Clock:
    """The clock after one more token (the arithmetic of :func:`toolkit.music.tokens.events`)."""
    if is_pitch(tok) or tok == "z":
        length = clock.next_scale()
        return clock._replace(filled=clock.filled + length, last=length, after_duration=False,
                              tuplet_left=max(0, clock.tuplet_left - 1), broken_next=None)
    if is_duration(tok):
        if clock.last is None or clock.after_duration:
            return clock
        d = parse_duration(tok)
        return clock._replace(filled=clock.filled + clock.last * (d - 1), last=clock.last * d,
                              after_duration=True)
    if tok in BROKEN:
        if clock.last is None:
            return clock
        first, second = BROKEN[tok]
        return clock._replace(filled=clock.filled + clock.last * (first - 1), broken_next=second)
    if tok.startswith("(") and tok[1:].isdigit():
        p = int(tok[1:])
        return clock._replace(tuplet_left=p, tuplet_scale=Fraction(int(_TUPLET_Q.get(str(p), "2")),
                                                                   p))
    if tok in BARS:
        return clock._replace(filled=Fraction(0), last=None, after_duration=False,
                              bar=clock.bar + 1)
    if tok.startswith("M:"):
        return clock._replace(full=bar_length(tok))
    return clock
