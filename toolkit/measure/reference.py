"""The reference check: tune validity judged by music21's own ABC parser.

:func:`toolkit.metrics.check_tokens` judges a tune from its tokens, with this project's own
duration arithmetic (thousands of tunes a second).  This module judges the *written ABC* instead,
with music21's parser: its tokenizer, its note lengths (default length, ``/2``, ``3/2``, broken
rhythm, tuplets by its own meter-aware rule) and its classification of bar lines (repeat start,
repeat end, double bar, first and second endings).  It follows the bar lines the text writes
rather than the measures music21 would build (which re-bar silently), and takes about 3 ms a
tune — too slow for sweeps, right for checking the fast checker on the whole corpus
(:func:`cross_check`; ``tests/test_reference.py``).

The rules are the same as the token checker's, stated in music21's terms: every bar lasts the
meter's ``barDuration``; a bar may be shorter when it opens the tune or a section (after a repeat
start, a double bar, a repeat end or an ending mark) or closes a section (before a repeat end, a
double or final bar, an ending mark, or the end of the tune); no bar may be longer.  Repeats:
no repeat start while another is open, none left open at the end, a second ending only after a
first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction

from toolkit.music.check import Validity

__all__ = ["check_abc_music21", "CrossCheck", "cross_check"]

_DEN = 384  # music21 keeps quarter lengths as floats or Fractions; this recovers exact values


def _exact(ql) -> Fraction:
    return Fraction(ql).limit_denominator(_DEN)


def _bar_kind(bar) -> str:
    """'start', 'end', 'both', 'double', 'first', 'second' or 'plain', from music21's reading."""
    if bar.repeatForm in ("first", "second"):
        return bar.repeatForm
    if bar.barType == "repeat":
        return {"start": "start", "end": "end"}.get(bar.repeatForm, "both")
    if bar.barStyle in ("light-light", "light-heavy", "heavy-light", "heavy-heavy"):
        return "double"
    return "plain"


def check_abc_music21(abc: str) -> Validity:
    """Judge one tune's ABC text with music21's parser (see the module docstring for the rules).

    ``bad_bars`` numbers bars from 0 in the order the text writes them (an ending mark starts a
    bar of its own, as music21 reads it).

    >>> check_abc_music21("X:1\\nM:2/4\\nL:1/8\\nK:G\\n|: G2 A>B | c4 :|").ok
    True
    >>> check_abc_music21("X:1\\nM:2/4\\nL:1/8\\nK:G\\nG2 A>B | c6 | d4 |]").bad_bars
    [1]
    """
    from music21 import abcFormat

    v = Validity()
    handler = abcFormat.ABCHandler()
    try:
        handler.process(abc)
    except Exception as err:  # music21 cannot read it: not valid, and say why
        v.complete = v.has_notes = False
        v.problems.append(f"music21 cannot parse it: {type(err).__name__}: {err}")
        return v

    full: Fraction | None = None
    has_mode = False
    bars: list[tuple[Fraction, str, str]] = []  # (length, closed by, opened by)
    filled, opener, notes = Fraction(0), "tune start", 0
    kinds: list[str] = []  # every bar line's kind, in order (for the repeats)
    for tok in handler.tokens:
        if isinstance(tok, abcFormat.ABCMetadata):
            if tok.isMeter():
                ts = tok.getTimeSignatureObject()
                full = _exact(ts.barDuration.quarterLength) if ts is not None else None
            elif tok.isKey():
                has_mode = True
        elif isinstance(tok, abcFormat.ABCNote):  # chords and rests are ABCNotes too
            if tok.inGrace:
                continue
            length = _exact(tok.quarterLength)
            if tok.activeTuplet is not None:
                length *= _exact(tok.activeTuplet.tupletMultiplier())
            filled += length
            notes += not tok.isRest
        elif isinstance(tok, abcFormat.ABCBar):
            kind = _bar_kind(tok)
            kinds.append(kind)
            if bars or filled:  # a bar line before any note opens the first bar
                bars.append((filled, kind, opener))
            filled, opener = Fraction(0), kind
    if filled:
        bars.append((filled, "tune end", opener))

    if full is None or not has_mode:
        v.headers = False
        v.problems.append("meter or mode unknown to music21")
    if not notes:
        v.has_notes = False
        v.problems.append("no notes")
    if full is not None:
        for no, (length, closer, opener) in enumerate(bars):
            if length == full or length == 0:
                continue
            may_be_short = (no == 0 or opener != "plain" or closer != "plain")
            if length > full or not may_be_short:
                v.bad_bars.append(no)
        if v.bad_bars:
            v.bars_ok = False
            v.problems.append(f"{len(v.bad_bars)} bar(s) not {float(full):g} quarters long: "
                              f"bar {', '.join(str(b + 1) for b in v.bad_bars[:5])}")

    open_repeat, had_first = False, False
    for closer in kinds:
        if closer == "start":
            if open_repeat:
                v.repeats_ok = False
                v.problems.append("a repeat starts while another is open")
            open_repeat, had_first = True, False
        elif closer == "end":
            open_repeat = False
        elif closer == "both":
            open_repeat, had_first = True, False
        elif closer == "first":
            had_first = True
        elif closer == "second" and not had_first:
            v.repeats_ok = False
            v.problems.append("a second ending without a first")
        elif closer == "double":
            had_first = False
    if open_repeat:
        v.repeats_ok = False
        v.problems.append("a repeat is never closed")
    return v


@dataclass
class CrossCheck:
    """How often the token checker and music21 agree (:func:`cross_check`)."""

    n: int = 0
    bars_agree: int = 0
    repeats_agree: int = 0
    disagreements: list[str] = field(default_factory=list)

    @property
    def bars_agreement(self) -> float:
        return self.bars_agree / max(self.n, 1)

    @property
    def repeats_agreement(self) -> float:
        return self.repeats_agree / max(self.n, 1)

    def __str__(self) -> str:
        return (f"{self.n} tunes: bar verdicts agree on {self.bars_agreement:.2%}, repeat "
                f"verdicts on {self.repeats_agreement:.2%}")


def cross_check(records: Iterable[dict], progress: bool = False) -> CrossCheck:
    """Judge every record twice — :func:`toolkit.metrics.check_tokens` on its tokens and
    :func:`check_abc_music21` on the ABC that :func:`toolkit.abc.decode` writes — and count
    agreements.  Each disagreement is listed as ``"source: tokens say …, music21 says …"``."""
    from toolkit.music.check import check_tokens
    from toolkit.music.tokens import decode

    records = list(records)
    out = CrossCheck()
    if progress:
        from tqdm.auto import tqdm

        records = tqdm(records, desc="music21 cross-check")
    for rec in records:
        ours = check_tokens(rec["tokens"])
        theirs = check_abc_music21(decode(rec["tokens"]))
        out.n += 1
        out.bars_agree += ours.bars_ok == theirs.bars_ok
        out.repeats_agree += ours.repeats_ok == theirs.repeats_ok
        if ours.bars_ok != theirs.bars_ok or ours.repeats_ok != theirs.repeats_ok:
            out.disagreements.append(
                f"{rec.get('source', '?')}: tokens say {'; '.join(ours.problems) or 'valid'}"
                f" — music21 says {'; '.join(theirs.problems) or 'valid'}")
    return out
