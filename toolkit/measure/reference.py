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

Strict rules, read from music21's tokens in the same spirit (what music21 says a note is, not
what our tokens say): a tie starts on a note and stops on the very next note, with the same
pitch as music21 spells it, no rest or section line between; a broken-rhythm pair is two notes
written with equal lengths, not chained, in one bar; a ``(3`` is followed by three notes of one
length in one bar; a section that opens on a short bar (pickup) ends on a bar that completes it
(a repeat end must; a double bar or the tune's end may also close on a full bar), and one that
opens on a full bar ends on a full bar; the bar before a repeat start is full unless it is a
pickup; the tune does not stop inside a bar.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction

from toolkit.music import m21
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
    m21.load()
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
    if v.has_notes:
        _strict(v, handler.tokens, bars, full)
    return v


_WRITTEN = re.compile(r"[A-Ga-gz][,']*([0-9]*/*[0-9]*)")


def _written(src: str) -> Fraction:
    """The length a note's text writes (``2``, ``/2``, none...), before broken rhythm or
    tuplets, in units of L."""
    from toolkit.music.tokens import parse_duration

    m = _WRITTEN.search(src)
    text = m.group(1) if m else ""
    return Fraction(1, 4) if text == "//" else parse_duration(text)


def _midi(name: str | None) -> int | None:
    """The MIDI number of a music21 pitch name ('F#4', 'An4'): spellings of one pitch agree."""
    m21.load()
    from music21 import pitch

    return pitch.Pitch(name).midi if name else None


def _strict(v: Validity, tokens, bars, full) -> None:
    """The strict rules in music21's terms (see the module docstring)."""
    m21.load()
    from music21 import abcFormat

    def fail(field_name: str, why: str) -> None:
        if getattr(v, field_name):
            setattr(v, field_name, False)
            v.problems.append(f"music21: {why}")

    items = [t for t in tokens if isinstance(t, abcFormat.ABCNote | abcFormat.ABCBar |
                                             abcFormat.ABCTuplet |
                                             abcFormat.ABCBrokenRhythmMarker)
             and not getattr(t, "inGrace", False)]
    for i, t in enumerate(items):
        if not isinstance(t, abcFormat.ABCNote):
            continue
        if t.tie in ("start", "continue"):
            j = i + 1
            while j < len(items) and isinstance(items[j], abcFormat.ABCBar) \
                    and _bar_kind(items[j]) == "plain":
                j += 1
            nxt = items[j] if j < len(items) else None
            if not isinstance(nxt, abcFormat.ABCNote) or nxt.tie not in ("stop", "continue") \
                    or nxt.isRest or _midi(nxt.pitchName) != _midi(t.pitchName):
                fail("ties_ok", f"the tie on {t.src} does not reach the same pitch")
        marker = t.brokenRhythmMarker
        if marker and marker[1] == "left":
            nxt = items[i + 2] if i + 2 < len(items) else None
            if not isinstance(items[i + 1], abcFormat.ABCBrokenRhythmMarker) \
                    or not isinstance(nxt, abcFormat.ABCNote):
                fail("broken_ok", f"broken rhythm after {t.src} has no second note in the bar")
            elif _written(t.src) != _written(nxt.src):
                fail("broken_ok", f"broken rhythm between unequal notes {t.src} {nxt.src}")
            elif i + 3 < len(items) and isinstance(items[i + 3],
                                                   abcFormat.ABCBrokenRhythmMarker):
                fail("broken_ok", f"chained broken rhythm after {nxt.src}")
            elif t.activeTuplet is not None or nxt.activeTuplet is not None:
                fail("broken_ok", "broken rhythm inside a tuplet")
    for i, t in enumerate(items):
        if isinstance(t, abcFormat.ABCTuplet):
            group = items[i + 1:i + 4]
            if len(group) < 3 or not all(isinstance(n, abcFormat.ABCNote) for n in group):
                fail("tuplets_ok", "a (3 is not followed by three notes in its bar")
            elif len({_exact(n.quarterLength) for n in group}) != 1:
                fail("tuplets_ok", "a (3 holds notes of unequal length")
    if full is None:
        return
    # sections, as music21's bar lines divide them: (length, closer, opener) per bar
    section: list[Fraction] = []
    carried, last_pickup = None, Fraction(0)  # a second ending goes on with the section's pickup
    for length, closer, opener in bars:
        if not length:  # two bar lines in a row (":| |:") hold no bar
            continue
        if opener in ("start", "both", "double", "end", "tune start") or not section:
            if not (opener == "start" and carried is not None and not section):
                carried = last_pickup if opener == "second" else None
            section = []
        section.append(length)
        if closer == "start" and len(section) == 1 and length < full:
            # a pickup before the repeat ("G2 |: c4 ..."): the repeated section completes it
            section, carried = [], length
            continue
        if closer in ("end", "both", "double", "tune end", "start"):
            pickup = section[0] if len(section) > 1 and section[0] < full else Fraction(0)
            if carried is not None:
                pickup = carried
            last_pickup = pickup
            last = section[-1]
            allowed = {full - pickup} if closer in ("end", "both") and pickup else {full}
            if closer not in ("end", "both", "start") and pickup:
                allowed.add(full - pickup)  # a bar before a repeat start is full
            if len(section) == 1 and carried is None:
                allowed = {full} | ({last} if opener not in ("end", "both") else set())
            if last not in allowed:
                where = "the tune ends" if closer == "tune end" else "a section ends"
                fail("bars_ok", f"{where} on a bar of {float(last):g} quarters "
                                f"(pickup {float(pickup):g}, bar {float(full):g})")
            section, carried = [], None


@dataclass
class CrossCheck:
    """How often the token checker and music21 agree (:func:`cross_check`)."""

    n: int = 0
    bars_agree: int = 0
    repeats_agree: int = 0
    agree: int = 0                  # the overall verdicts (every rule) agree
    ours_valid: int = 0
    music21_valid: int = 0
    disagreements: list[str] = field(default_factory=list)

    @property
    def agreement(self) -> float:
        return self.agree / max(self.n, 1)

    @property
    def bars_agreement(self) -> float:
        return self.bars_agree / max(self.n, 1)

    @property
    def repeats_agreement(self) -> float:
        return self.repeats_agree / max(self.n, 1)

    def __str__(self) -> str:
        return (f"{self.n} tunes: verdicts agree on {self.agreement:.2%} (valid: ours "
                f"{self.ours_valid}, music21 {self.music21_valid}); bar verdicts on "
                f"{self.bars_agreement:.2%}, repeat verdicts on {self.repeats_agreement:.2%}")


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
        out.agree += ours.ok == theirs.ok
        out.ours_valid += ours.ok
        out.music21_valid += theirs.ok
        if ours.ok != theirs.ok or ours.bars_ok != theirs.bars_ok \
                or ours.repeats_ok != theirs.repeats_ok:
            out.disagreements.append(
                f"{rec.get('source', '?')}: tokens say {'; '.join(ours.problems) or 'valid'}"
                f" — music21 says {'; '.join(theirs.problems) or 'valid'}")
    return out
