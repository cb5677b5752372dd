"""Reading ABC: the one reader that checks a tune symbol by symbol and works out its notes.

This module also *reads* ABC. :func:`parse_abc` checks the text symbol by symbol, names the line
and column of anything it cannot read (:class:`ABCError`) and works out the notes that sound --
pitch, onset and length, ties merged -- without music21, which needs ~40 ms a tune. It reads one
voice of ABC 2.1: notes with accidentals (which hold to the end of the bar, in every octave, as
ABC 2.1 says), octave marks and lengths, rests, ties, broken rhythm, tuplets, chords, grace
notes (not timed), bar lines, repeats and endings, key, meter and unit-length changes in the
body; decorations, chord symbols, slurs and comments are read and skipped. Tunes with several
voices (``V:``, ``&``) are played from music21's reading instead.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, NamedTuple

from toolkit.music.notes import Note
from toolkit.music.symbols import SYMBOL
from toolkit.music.tokens import ACCIDENTALS, MAJOR_FIFTHS, NATURAL_SEMITONE, default_unit

__all__ = [
    "ABCError", "ScoreEvent", "Measure", "Written", "ParsedTune", "Performance", "parse_abc",
    "tempo_qpm", "ending_spans", "play_order", "performance",
]

# Limits that keep a typo from asking for an hour of audio or a note above the piano.
_MAX_LENGTH = 64  # the longest note, in unit lengths (L:)
_MAX_DIVISOR = 128  # the shortest note is 1/128 of the unit length
_MAX_BARS = 64  # the longest multi-bar rest


class ABCError(ValueError):
    """ABC text that cannot be read as a tune.

    The message names the problem and, where it is known, the line and column (both counted
    from 1) where the reading stopped. The text itself stays available as ``err.abc``, so a
    broken tune is never lost.

    >>> try:
    ...     parse_abc("X:1\\nT:Broken\\nK:G\\nAB \\u00a7 c|")
    ... except ABCError as err:
    ...     print(err)
    ...     print(err.line, err.column, err.abc.splitlines()[1])
    line 4, column 4: '§' is not part of ABC
    4 4 T:Broken
    """

    def __init__(
        self,
        problem: str,
        *,
        abc: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.problem = problem
        self.abc = abc
        self.line = line
        self.column = column
        where = ""
        if line is not None:
            where = f"line {line}, column {column}: " if column is not None else f"line {line}: "
        super().__init__(where + problem)


class ScoreEvent(NamedTuple):
    """One written note, chord or rest as it stands in the score (ties not merged); the
    tokens' own walk is :class:`toolkit.music.tokens.Event`.

    ``pitches`` is empty for a rest; onset and duration are exact, in quarter notes.
    """

    onset: Fraction
    duration: Fraction
    pitches: tuple[int, ...]


class Measure(NamedTuple):
    """One bar as written: its bar lines, the ending (volta) it opens, and how long it is.

    ``left`` and ``right`` use MEI's words: ``single``, ``dbl``, ``end``, ``rptstart``,
    ``rptend``, ``rptboth``, ``dotted``, or ``""`` for no special bar line on the left.
    """

    left: str
    right: str
    ending: str | None
    length: Fraction


class Written(NamedTuple):
    """One note or rest as a score of our own reading writes it (see :func:`_written_copy`).

    ``step`` is ``None`` for a rest, else (letter ``"c"``..``"b"``, octave with middle C in
    4, the accidental shown before it: ``""``, ``"^"``, ``"_"``, ``"="``, ``"^^"`` or
    ``"__"``). ``length`` is the length shown, in quarter notes, before a tuplet's ratio;
    ``tuplet`` is (num, numbase) inside one, and ``opens`` marks its first note. ``tied``:
    tied to the next note. ``beat``: the beamed group it stands in, counted from the bar's
    start (notes in one group and one tuplet share a beam). ``split``: the lengths, in quarter
    notes, it is drawn as, tied (see :func:`_split`): ``(length,)`` when one note value
    shows it, in a tuplet, or off the grid of note values.
    """

    step: tuple[str, int, str] | None
    length: Fraction
    tuplet: tuple[int, int] | None
    opens: bool
    tied: bool
    beat: int
    split: tuple[Fraction, ...]


@dataclass(frozen=True)
class ParsedTune:
    """What :func:`parse_abc` read from one tune's ABC text.

    ``verovio_abc`` is a plain copy of the tune that verovio's own ABC reader takes in
    exactly (every bar line written ``|``; repeats and endings are kept in ``measures``), or
    ``None`` when the tune uses something that reader does not handle (chords, grace notes,
    key changes...): then ``not_plain`` says what.

    ``written`` is the tune bar by bar as :mod:`toolkit.music.mei` writes it for verovio when
    verovio's ABC reader reads a plain tune differently, or the tune holds only lengths and
    tuplets that reader cannot take; ``keysig`` is its key signature in MEI's words (``"2s"``,
    ``"3f"``, ``"0"``). ``written`` is ``None`` for chords, grace notes, several voices,
    changes of key or meter, slurs, decorations and chord symbols...: those are engraved
    through music21.
    """

    text: str
    title: str
    meter: str | None
    unit: Fraction
    key: str
    tempo: str | None
    events: tuple[ScoreEvent, ...]
    notes: tuple[Note, ...]
    measures: tuple[Measure, ...]
    length: Fraction
    voices: int
    verovio_abc: str | None
    not_plain: str | None
    keysig: str = "0"

    @functools.cached_property
    def written(self) -> tuple[tuple[Written, ...], ...] | None:
        """See the class's docstring. Read again from the text when first asked for (then
        kept): most tunes never need it, so reading a tune does not build it."""
        return _written_of(self.text)


# ---------------------------------------------------------------------------------------------
# Keys, meters, lengths and tempo
# ---------------------------------------------------------------------------------------------

_SHARPS = "FCGDAEB"  # the order sharps enter a key signature; flats enter in reverse
_TONIC_FIFTHS = MAJOR_FIFTHS
_MODE_FIFTHS = {"maj": 0, "ion": 0, "min": -3, "aeo": -3, "m": -3,
                "mix": -1, "dor": -2, "phr": -4, "lyd": 1, "loc": -5}
_MODE_NAMES = {"ion": "maj", "aeo": "min", "m": "min"}  # spelt so verovio reads them
_STEP = NATURAL_SEMITONE
_ACCIDENTAL = ACCIDENTALS
_CLEFS = {"treble", "bass", "alto", "tenor", "perc", "none", "bass3", "alto1", "alto2"}


def _key_signature(value: str) -> tuple[dict[str, int], str | None, bool]:
    """Read a K: field: (sharps and flats by letter, key for verovio, plain?).

    The key for verovio is ``None`` for a tune with no key signature (``K:none``); *plain*
    is False when the field sets a clef or explicit accidentals.

    >>> _key_signature("Ador")
    ({'F': 1}, 'Ador', True)
    >>> _key_signature("Bb")
    ({'B': -1, 'E': -1}, 'Bb', True)
    >>> _key_signature("H#lydian")
    Traceback (most recent call last):
    ...
    toolkit.music.reader.ABCError: cannot read 'H#lydian' in the key K:H#lydian
    """
    v = value.strip()
    if v.startswith(("HP", "Hp")):  # Highland pipes
        return ({"F": 1, "C": 1} if v.startswith("Hp") else {}), None, False
    m = re.match(r"([A-G])([#b]?)", v)
    if m is None:  # no tonic: K:none, or only a clef
        words = v.split()
        if words and words[0].lower() == "none":
            words = words[1:]
        return _key_extras({}, words, v), None, not words
    tonic, accidental = m.group(1), m.group(2)
    words = v[m.end():].split()
    mode = ""
    if words and re.fullmatch(r"[A-Za-z]+", words[0]) and words[0].lower() not in _CLEFS | {
            "exp"}:
        mode = words.pop(0)
    elif v[m.end():m.end() + 1].isalpha():  # "Gclef=bass": a mode glued to something else
        raise ABCError(f"cannot read the key K:{v}")
    mode_key = "m" if mode.lower() == "m" else mode.lower()[:3]
    if mode and mode_key not in _MODE_FIFTHS:
        raise ABCError(f"unknown mode {mode!r} in K:{v} "
                       "(use maj, min, m, dor, mix, lyd, phr, loc, aeo or ion)")
    fifths = _TONIC_FIFTHS[tonic] + {"#": 7, "b": -7, "": 0}[accidental]
    fifths += _MODE_FIFTHS[mode_key] if mode else 0
    if not -7 <= fifths <= 7:
        raise ABCError(f"K:{v} would need {abs(fifths)} sharps or flats (at most 7)")
    sig = {s: 1 for s in _SHARPS[:fifths]} if fifths > 0 else {}
    sig.update({s: -1 for s in _SHARPS[::-1][:-fifths]} if fifths < 0 else {})
    name = tonic + accidental + (_MODE_NAMES.get(mode_key, mode_key) if mode else "")
    return _key_extras(sig, words, v), name, not words


def _key_extras(sig: dict[str, int], words: list[str], value: str) -> dict[str, int]:
    """Apply what follows a key's tonic and mode: explicit accidentals, clef settings."""
    sig = dict(sig)
    for word in words:
        acc = re.fullmatch(r"(\^\^|\^|__|_|=)([A-Ga-g])", word)
        if acc:
            sig[acc.group(2).upper()] = _ACCIDENTAL[acc.group(1)]
        elif word.lower() == "exp":
            sig.clear()
        elif word.lower() in _CLEFS or re.fullmatch(r"[A-Za-z.]+=\S*|[A-Za-z]+[+-]8", word):
            pass  # clef=, middle=, transpose=, octave=, stafflines=: no change to pitches
        else:
            raise ABCError(f"cannot read {word!r} in the key K:{value}")
    return sig


def _meter(value: str) -> tuple[str | None, Fraction | None, bool]:
    """Read an M: field: (meter as written, bar length in quarter notes, plain?).

    >>> _meter("6/8")
    ('6/8', Fraction(3, 1), True)
    >>> _meter("C|")
    ('C|', Fraction(4, 1), True)
    >>> _meter("none")
    (None, None, True)
    """
    v = value.strip()
    if v.lower() in ("", "none"):
        return None, None, True
    if v in ("C", "C|"):
        return v, Fraction(4), True
    m = re.fullmatch(r"\(?(\d+(?:\s*\+\s*\d+)*)\)?\s*/\s*(\d+)", v)
    if m is None:
        raise ABCError(f"cannot read the meter M:{v} (write it like M:6/8, M:C or M:none)")
    top = sum(int(n) for n in m.group(1).split("+"))
    bottom = int(m.group(2))
    if not 0 < top <= 64 or not 0 < bottom <= 64:
        raise ABCError(f"the meter M:{v} is out of range")
    plain = "+" not in v and "(" not in v and bottom & (bottom - 1) == 0
    return v.replace(" ", ""), Fraction(4 * top, bottom), plain


def _compound(meter: str | None) -> bool:
    """Is the meter compound (6/8, 9/8, 12/8...: beats of three)?"""
    m = re.fullmatch(r"(\d+)/(\d+)", meter or "")
    return m is not None and int(m.group(1)) % 3 == 0 and int(m.group(1)) > 3


def _unit_length(value: str) -> Fraction:
    """Read an L: field as a fraction of a whole note, like ``1/8`` (``1``: a whole note)."""
    m = re.fullmatch(r"\s*(\d+)\s*(?:/\s*(\d+)\s*)?", value)
    if m is None or int(m.group(1)) == 0 or int(m.group(2) or 1) == 0:
        raise ABCError(f"cannot read the unit length L:{value.strip()} (write it like L:1/8)")
    unit = Fraction(int(m.group(1)), int(m.group(2) or 1))
    if not Fraction(1, 256) <= unit <= 4:
        raise ABCError(f"the unit length L:{value.strip()} is out of range")
    return unit


def tempo_qpm(value: str, unit: Fraction = Fraction(1, 8)) -> float | None:
    """Quarter notes a minute for a tempo written as in an ABC ``Q:`` field.

    ``"1/4=120"`` is 120; ``"3/8=100"`` (a jig at 100 dotted quarters) is 150; a bare number
    counts unit lengths (ABC 1.6). ``None`` when the field holds no number (``"Allegro"``).

    >>> tempo_qpm("3/8=100"), tempo_qpm('"Lively" 1/2=90'), tempo_qpm("Allegro")
    (150.0, 180.0, None)
    """
    m = re.search(r"(\d+/\d+(?:\s+\d+/\d+)*)\s*=\s*(\d+(?:\.\d*)?)", value)
    if m:
        qpm = sum(Fraction(b) for b in m.group(1).split()) * 4 * Fraction(m.group(2))
    elif m := re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*", value):
        qpm = unit * 4 * Fraction(m.group(1))
    else:
        return None
    try:
        return float(qpm)
    except OverflowError:  # hundreds of digits: faster than anything plays
        return math.inf


# ---------------------------------------------------------------------------------------------
# The body, symbol by symbol
# ---------------------------------------------------------------------------------------------

# a field on a line of its own in the body: not a note or rest letter followed by ':' ("A:|")
_BODY_FIELD = re.compile(r"([H-Wh-wY+]):(.*)")
_PLAIN_TUPLETS = {2, 3, 4, 6, 8}  # verovio's reader gives these their standard ratios
# what keeps a tune off verovio's ABC reader but not off :func:`_written_copy`, which writes
# every length and tuplet itself, tying notes where one cannot hold a length
_LENGTHS_WRITTEN = ("a length verovio cannot write as one note", "the unit length", "the tuplet")
# decorations verovio engraves; others (rolls ~, !slide!...) stay out of its copy
_VEROVIO_DECORATIONS = {".", "T", "H", "u", "v", "!trill!", "!fermata!", "!accent!", "!>!",
                        "!tenuto!", "!upbow!", "!downbow!", "!staccato!"}


def _bar_lines(bar: str) -> tuple[str, str]:
    """MEI's words for a bar-line symbol: (the right line of the bar it closes, the left line
    of the bar it opens).

    >>> _bar_lines("|"), _bar_lines(":|"), _bar_lines("|:"), _bar_lines("::"), _bar_lines("|]")
    (('single', ''), ('rptend', ''), ('single', 'rptstart'), ('rptboth', ''), ('end', ''))
    """
    if bar.startswith(":") and (bar.endswith(":") or "|" not in bar):
        return "rptboth", ""
    if bar.startswith(":"):
        return "rptend", ""
    if bar.endswith(":"):
        return ("dbl" if "||" in bar else "single"), "rptstart"
    if bar == ".|":
        return "dotted", ""
    if bar.endswith("]"):
        return "end", ""
    if "||" in bar or "[|" in bar:
        return "dbl", ""
    return "single", ""


def _plain_length(whole_notes: Fraction) -> bool:
    """Can one note (plain, dotted or double-dotted) of this length be written?

    >>> _plain_length(Fraction(3, 8)), _plain_length(Fraction(5, 8))
    (True, False)
    """
    num, den = whole_notes.numerator, whole_notes.denominator
    if num <= 0:
        return False
    while num % 2 == 0:
        num //= 2
    return num in (1, 3, 7) and den & (den - 1) == 0 and Fraction(1, 128) <= whole_notes <= 2


@functools.lru_cache(maxsize=512)
def _note_length(text: str) -> Fraction | str:
    """A note's length as written after it ("3/2", "/", "2"), in unit lengths; or, for a
    length that cannot be read, why not."""
    m = re.fullmatch(r"(\d*)(/*)(\d*)", text)
    if m is None or (m.group(3) and len(m.group(2)) > 1):
        return f"cannot read the note length {text!r}"
    num = int(m.group(1)) if m.group(1) else 1
    den = int(m.group(3)) if m.group(3) else 2 ** len(m.group(2))
    if num == 0 or den == 0:
        return f"a note length of zero ({text!r})"
    if num > _MAX_LENGTH or den > _MAX_DIVISOR:
        return f"the note length {text!r} is out of range"
    return Fraction(num, den)


@functools.lru_cache(maxsize=512)
def _whole_notes(written: Fraction, unit: Fraction) -> tuple[Fraction, bool]:
    """A written length in whole notes, and whether verovio can write it as one note."""
    whole = written * unit
    return whole, _plain_length(whole)


class _Reader:
    """Reads the body of one tune symbol by symbol; see :func:`parse_abc`."""

    def __init__(self, text: str, sig: dict[str, int], unit: Fraction, bar: Fraction | None,
                 compound: bool) -> None:
        self.text = text
        self.sig, self.unit, self.bar, self.compound = sig, unit, bar, compound
        self.time = Fraction(0)
        self.bar_start = Fraction(0)
        self.bar_accidentals: dict[str, int] = {}  # letter -> alteration, to the bar's end
        self.shown: dict[tuple[str, int], int] = {}  # what the engraving shows, by octave
        self.events: list[ScoreEvent] = []
        self.notes: list[list[Any]] = []  # [pitch, onset, duration]: ties may lengthen them
        self.last: list[int] = []  # the notes (indices in self.notes) of the last note or chord
        self.tied: dict[int, int] = {}  # pitch -> index in self.notes, waiting for its tie
        self.tied_steps: dict[tuple[str, int], int] = {}  # (letter, octave) -> tied pitch
        self.broken: Fraction | None = None  # length factor waiting for the next note
        self.broken_at: tuple[int, int] = (0, 0)
        self.tuplet: tuple[Fraction, int] | None = None  # (ratio, notes left)
        self.chord: list[tuple[int, Fraction]] | None = None
        self.grace = False
        self.measures: list[Measure] = []
        self.content = False  # anything timed since the last bar line?
        self.left: str = ""
        self.ending: str | None = None
        self.voices = 1
        self.voice_names: set[str] = set()
        self.continued = False
        self.not_plain: str | None = None
        self.writable = True  # can :func:`_written_copy` write it? (no chords, voices...)
        self.pieces: list[tuple[str, Any]] = []  # the plain copy for verovio, built as we go

    def error(self, problem: str, line: int, column: int) -> ABCError:
        return ABCError(problem, abc=self.text, line=line, column=column)

    def unplain(self, why: str) -> None:
        if self.not_plain is None:
            self.not_plain = why
        if not why.startswith(_LENGTHS_WRITTEN):
            self.writable = False

    # -- pitches and lengths -------------------------------------------------------------------
    def pitch(self, acc: str, letter: str, octave: str, pos: tuple[int, int]) -> tuple[int, str]:
        """The MIDI pitch of a note, and the accidental the engraving must write before it.

        As ABC 2.1 says, an accidental holds for its letter in every octave to the end of the
        bar, and a tie carries a note's accidental over the bar line. Staff notation carries
        accidentals in their own octave only, so where the two differ the accidental is
        written out for the engraving.
        """
        step = letter.upper()
        number = (5 if letter.islower() else 4) + octave.count("'") - octave.count(",")
        tied = not acc and (step, number) in self.tied_steps
        if acc:
            alter = self.bar_accidentals[step] = _ACCIDENTAL[acc]
        elif tied:
            alter = self.tied_steps[(step, number)]
        else:
            alter = self.bar_accidentals.get(step, self.sig.get(step, 0))
        written = acc
        if not acc and not tied and alter != self.shown.get((step, number),
                                                              self.sig.get(step, 0)):
            written = {2: "^^", 1: "^", 0: "=", -1: "_", -2: "__"}[alter]
        if written:
            self.shown[(step, number)] = alter
        midi = 12 * (number + 1) + _STEP[step] + alter
        if not 0 <= midi <= 127:
            raise self.error(f"the note {acc}{letter}{octave} is out of range", *pos)
        return midi, written

    def length(self, text: str, pos: tuple[int, int]) -> Fraction:
        length = _note_length(text)
        if isinstance(length, str):
            raise self.error(length, *pos)
        return length

    # -- timed symbols -------------------------------------------------------------------------
    def sound(self, pitches: list[int], written: Fraction, piece: str) -> None:
        """A note, chord or rest (no pitches) of ``written`` unit lengths starts now."""
        if self.grace:
            return
        whole, plain = _whole_notes(written, self.unit)
        if not plain:
            self.unplain(f"a length verovio cannot write as one note ({piece})")
        if self.broken is not None:
            whole *= self.broken
            self.broken = None
        closing_tuplet = False
        if self.tuplet is not None:
            ratio, left = self.tuplet
            whole *= ratio
            self.tuplet = (ratio, left - 1) if left > 1 else None
            closing_tuplet = left == 1
        duration = whole * 4
        self.events.append(ScoreEvent(self.time, duration, tuple(pitches)))
        self.pieces.append(("note", (piece, self.time - self.bar_start)))
        if closing_tuplet:
            self.pieces.append(("tuplet_end", None))
        tied, self.tied, self.tied_steps = self.tied, {}, {}
        self.last = []
        for p in pitches:
            if p in tied:
                self.notes[tied[p]][2] += duration
                self.last.append(tied[p])
            else:
                self.notes.append([p, self.time, duration])
                self.last.append(len(self.notes) - 1)
        self.time += duration
        self.content = True

    def tie(self, steps: list[tuple[str, int]]) -> None:
        """A tie: the notes just written carry on into the next notes of the same pitch."""
        self.tied = {self.notes[i][0]: i for i in self.last}
        for (step, number), i in zip(steps, self.last, strict=False):
            self.tied_steps[(step, number)] = self.notes[i][0] - 12 * (number + 1) - _STEP[step]

    def broken_rhythm(self, symbol: str, pos: tuple[int, int]) -> None:
        if not self.content or self.broken is not None:
            raise self.error(f"a broken rhythm {symbol!r} needs a note before it", *pos)
        dots = len(symbol)
        longer, shorter = 2 - Fraction(1, 2**dots), Fraction(1, 2**dots)
        first, second = (longer, shorter) if symbol[0] == ">" else (shorter, longer)
        last = self.events[-1]
        extra = last.duration * (first - 1)
        self.events[-1] = ScoreEvent(last.onset, last.duration * first, last.pitches)
        for i in self.last:
            self.notes[i][2] += extra
        self.time += extra
        self.broken, self.broken_at = second, pos
        self.pieces.append(("broken", symbol))

    def bar_line(self, bar: str, ending: str | None, pos: tuple[int, int]) -> None:
        if self.broken is not None:
            raise self.error("a broken rhythm '>' or '<' needs a note after it", *self.broken_at)
        right, opens = _bar_lines(bar)
        if self.content:
            self.measures.append(Measure(self.left, right, self.ending,
                                         self.time - self.bar_start))
            self.left, self.ending = opens, None
            self.pieces.append(("bar", None))
        else:  # a bar line before any music, or two in a row (":| |:")
            self.left = opens or self.left
            if self.measures and right != "single" and self.measures[-1].right == "single":
                self.measures[-1] = self.measures[-1]._replace(right=right)
        if ending is not None:
            self.ending = ending.lstrip("[")
        self.content = False
        self.bar_start = self.time
        self.bar_accidentals, self.shown = {}, {}
        self.tuplet = None

    def finish(self) -> None:
        if self.broken is not None:
            raise self.error("a broken rhythm '>' or '<' needs a note after it", *self.broken_at)
        if self.grace:
            raise ABCError("grace notes '{' are never closed with '}'", abc=self.text)
        if self.content:
            self.measures.append(Measure(self.left, "single", self.ending,
                                         self.time - self.bar_start))
            self.pieces.append(("bar", None))

    # -- one line of music ---------------------------------------------------------------------
    def line(self, line: str, number: int) -> None:
        i = 0
        steps: list[tuple[str, int]] = []  # letters and octaves of the last note or chord
        while i < len(line):
            m = SYMBOL.match(line, i)
            pos = (number, i + 1)
            if m is None:
                raise self.error(_unreadable(line[i]), *pos)
            i = m.end()
            kind = m.lastgroup
            if kind == "comment":
                break
            if kind == "space":
                self.pieces.append(("space", None))
                continue
            if kind == "cont":
                self.continued = True
                continue
            if self.chord is not None and kind not in ("note", "chordend", "tie", "deco", "text"):
                if kind == "rest":
                    raise self.error("a rest inside a chord '[...]': write it before or after "
                                     "the chord", *pos)
                raise self.error("a chord '[' is not closed with ']' before this", *pos)
            if kind == "note":
                letter, octave = m.group("letter"), m.group("oct")
                p, written = self.pitch(m.group("acc") or "", letter, octave, pos)
                n = self.length(m.group("len"), pos)
                step = (letter.upper(), (5 if letter.islower() else 4) + octave.count("'")
                        - octave.count(","))
                if self.chord is not None:
                    self.chord.append((p, n))
                    steps.append(step)
                else:
                    self.sound([p], n, written + letter + octave + m.group("len"))
                    steps = [step]
            elif kind == "rest":
                if m.group(0)[0] == "x":
                    self.unplain("an invisible rest (x)")
                self.sound([], self.length(m.group("rlen"), pos), "z" + m.group("rlen"))
                steps = []
            elif kind == "mrest":
                bars = int(m.group("bars") or 1)
                if self.bar is None:
                    raise self.error("a multi-bar rest (Z) needs a meter", *pos)
                if not 0 < bars <= _MAX_BARS:
                    raise self.error(f"a rest of {bars} bars is out of range", *pos)
                self.unplain("a multi-bar rest (Z)")
                self.sound([], self.bar * bars / 4 / self.unit, m.group(0))
                steps = []
            elif kind == "bar":
                self.bar_line(m.group("barline"), m.group("barend"), pos)
            elif kind == "ending":
                self.ending = m.group(0)[1:]
            elif kind == "tuplet":
                p = int(m.group("p"))
                q = int(m.group("q")) if m.group("q") else (
                    3 if p in (2, 4, 8) else 2 if p in (3, 6) else 3 if self.compound else 2)
                r = int(m.group("r")) if m.group("r") else p
                if p not in _PLAIN_TUPLETS or m.group("q") is not None:
                    self.unplain(f"the tuplet {m.group(0)}")
                self.tuplet = (Fraction(q, p), r)
                self.pieces.append(("tuplet", (m.group(0), p, q)))
            elif kind == "slur":
                self.pieces.append(("mark", m.group(0).lstrip(".")))
            elif kind == "tie":
                if self.chord is None:
                    self.tie(steps)
                    self.pieces.append(("mark", "-"))
            elif kind == "grace":
                opening = m.group(0).startswith("{")
                if opening == self.grace:
                    raise self.error("grace notes '{' and '}' do not pair up", *pos)
                self.grace = opening
                self.unplain("grace notes")
            elif kind == "chord":
                self.chord = []
                steps = []
                self.unplain("chords")
            elif kind == "chordend":
                if self.chord is None:
                    raise self.error("']' closes a chord that was never opened", *pos)
                if not self.chord:
                    raise self.error("an empty chord '[]'", *pos)
                outer = self.length(m.group("clen"), pos)
                chord, self.chord = self.chord, None
                self.sound([p for p, _ in chord], chord[0][1] * outer, "[chord]")
            elif kind == "broken":
                self.broken_rhythm(m.group(0), pos)
            elif kind == "field":
                self.field(m.group(0)[1], m.group(0)[3:-1], pos)
            elif kind == "text":
                if m.group(0)[1:2] not in ("^", "_", "<", ">", "@"):
                    self.pieces.append(("mark", m.group(0)))
            elif kind == "deco":
                if m.group(0) in _VEROVIO_DECORATIONS:
                    self.pieces.append(("mark", m.group(0)))
            elif kind == "misc" and m.group(0) == "&":
                self.voices = max(self.voices, 2)
        if self.chord is not None:
            raise self.error("a chord '[' is not closed with ']' on its line", number, len(line))
        if not self.continued:
            self.pieces.append(("line", None))
        self.continued = False

    def field(self, key: str, value: str, pos: tuple[int, int]) -> None:
        """A field in the body: on a line of its own, or inline like ``[K:G]``."""
        try:
            if key == "K":
                self.sig = _key_signature(value)[0]
            elif key == "L":
                self.unit = _unit_length(value)
            elif key == "M":
                _, self.bar, _ = _meter(value)
            elif key == "V":
                self.voice_names.add((value.split() or [""])[0])
                self.voices = max(self.voices, len(self.voice_names))
        except ABCError as err:
            raise self.error(err.problem, *pos) from None
        if key == "X":
            raise self.error("a second tune starts here (X:); a Tune holds one tune", *pos)
        if key not in "rIN":  # remarks, instructions and notes change nothing
            self.unplain(f"a {key}: field in the body")


def _unreadable(ch: str) -> str:
    """Why a character cannot start any ABC symbol, in words."""
    if ch.isdigit() or ch == "/":
        return f"a note length {ch!r} with no note before it"
    if ch == "]":
        return "']' closes a chord that was never opened"
    if ch == '"':
        return "a chord symbol or annotation is missing its closing '\"'"
    if ch == "[":
        return "'[' opens a chord or a field that is never closed"
    if ch == "+":
        return "a decoration '+' is missing its closing '+'"
    if ch in "^_=":
        return f"an accidental {ch!r} with no note after it"
    return f"{ch!r} is not part of ABC"


# ---------------------------------------------------------------------------------------------
# The plain copy for verovio
# ---------------------------------------------------------------------------------------------


def _beam_group(meter: str | None) -> Fraction | None:
    """How long one beamed group of short notes is, in quarter notes (None: follow spaces)."""
    if meter in ("C", "C|"):
        return Fraction(2)
    m = re.fullmatch(r"(\d+)/(\d+)", meter or "")
    if m is None:
        return None
    top, bottom = int(m.group(1)), int(m.group(2))
    if _compound(meter):
        return Fraction(12, bottom)  # a dotted beat
    if bottom == 2 or (top, bottom) == (4, 4):
        return Fraction(2)
    if bottom == 4:
        return Fraction(1)
    if (top, bottom) == (3, 8):
        return Fraction(3, 2)
    return None


def _split(onset: Fraction, length: Fraction, group: Fraction | None,
           bar: Fraction | None) -> tuple[Fraction, ...]:
    """The lengths, tied, that draw a note or rest of ``length`` quarter notes standing
    ``onset`` quarters into its bar: itself when one note value shows it; else cut where it
    crosses a beamed group's start (and a bar's length, in an overfull bar), and joined again,
    from each group's start, into the longest run that one note value shows. The reader of
    the score then sees where the beats fall. A note that starts off the grid of note values
    (after a tuplet) stays whole.

    >>> _split(Fraction(0), Fraction(5, 2), Fraction(3, 2), Fraction(3))   # E5 in 6/8
    (Fraction(3, 2), Fraction(1, 1))
    >>> _split(Fraction(1), Fraction(5, 2), Fraction(2), Fraction(4))      # on 4/4's 2nd beat
    (Fraction(1, 1), Fraction(3, 2))
    >>> [str(x) for x in _split(Fraction(0), Fraction(12), Fraction(3, 2), Fraction(3))]
    ['3', '3', '3', '3']
    """
    if group is None or bar is None or _plain_length(length / 4):
        return (length,)
    end = onset + length
    cuts = {end} | {t * group for t in range(int(onset // group) + 1, int(end // group) + 1)}
    cuts |= {t * bar for t in range(int(onset // bar) + 1, int(end // bar) + 1)}
    points = [onset] + sorted(t for t in cuts if onset < t <= end)
    out: list[Fraction] = []
    i = 0
    while i < len(points) - 1:
        start, best = points[i], i + 1
        if start % group == 0:  # from a group's start: the longest run one note value shows
            for j in range(i + 1, len(points)):
                if _plain_length((points[j] - start) / 4):
                    best = j
                if points[j] % bar == 0:
                    break
        out.append(points[best] - start)
        i = best
    if any(x.denominator & (x.denominator - 1) for x in out):
        return (length,)  # it starts off the beats' grid (after a tuplet): no note values fit
    return tuple(out)


def _pickup_shift(measures: list[Measure], bar: Fraction | None) -> Fraction:
    """How far into a bar the first bar's notes stand: a pickup's stand at the end of one."""
    if measures and bar is not None and measures[0].length < bar:
        return bar - measures[0].length
    return Fraction(0)


def _verovio_copy(header: list[str], pieces: list[tuple[str, Any]], measures: list[Measure],
                  meter: str | None, bar: Fraction | None) -> str:
    """Write the plain ABC that verovio reads: bar lines as '|', beams broken on the beat,
    tuplets closed off by spaces."""
    group = _beam_group(meter)
    out: list[str] = []
    in_tuplet = False
    measure = 0
    shift = _pickup_shift(measures, bar)
    for kind, value in pieces:
        if kind == "note":
            text, onset = value
            onset += shift if measure == 0 else 0
            if group is not None and not in_tuplet and onset % group == 0:
                out.append(" ")
            out.append(text)
        elif kind == "tuplet_end":
            out.append(" ")
            in_tuplet = False
        elif kind == "space":
            if not in_tuplet:
                out.append(" ")
        elif kind == "broken":
            while out and out[-1] == " ":
                out.pop()
            out.append(value)
        elif kind == "tuplet":
            out.append(" " + value[0])
            in_tuplet = True
        elif kind == "bar":
            out.append(" |")
            measure += 1
            in_tuplet = False
        elif kind == "line":
            out.append("\n")
        else:  # slurs, ties, chord symbols, decorations
            out.append(value)
    lines = (re.sub(r" +", " ", line).strip() for line in "".join(out).split("\n"))
    return "\n".join(header) + "\n" + "\n".join(line for line in lines if line) + "\n"


def _written_copy(pieces: list[tuple[str, Any]], events: list[ScoreEvent],
                  measures: list[Measure], meter: str | None,
                  bar: Fraction | None) -> tuple[tuple[Written, ...], ...] | None:
    """The tune bar by bar as :class:`Written` notes and rests: pitches spelt as the ABC
    spells them, lengths as our reading timed them (broken rhythms and tuplets included), a
    tie only where our reading joins the two notes (the same pitch). None when the tune has
    slurs, decorations or chord symbols, which :mod:`toolkit.music.mei` does not write."""
    beats = _beam_group(meter)
    group = beats or Fraction(1)
    shift = _pickup_shift(measures, bar)
    out: list[list[Written]] = [[]]
    last: list[Written] | None = None  # the bar holding the last note or rest
    tuplet: tuple[int, int] | None = None
    opens = False
    k = 0
    for kind, value in pieces:
        if kind == "note":
            text, onset = value
            event = events[k]
            if last and last[-1].tied and events[k - 1].pitches != event.pitches:
                last[-1] = last[-1]._replace(tied=False)  # a tie to another pitch joins nothing
            k += 1
            step = None
            if event.pitches:
                m = _SPELLING.match(text)
                step = (m.group(2).lower(), (5 if m.group(2).islower() else 4)
                        + m.group(3).count("'") - m.group(3).count(","), m.group(1) or "")
            length = event.duration
            if tuplet is not None:
                length = length * tuplet[0] / tuplet[1]
            onset += shift if len(out) == 1 else 0
            split = (length,) if tuplet is not None else _split(onset, length, beats, bar)
            out[-1].append(Written(step, length, tuplet, opens, False, int(onset // group), split))
            last, opens = out[-1], False
        elif kind == "mark" and value == "-":
            if last:
                last[-1] = last[-1]._replace(tied=last[-1].step is not None)
        elif kind == "mark":
            return None  # a slur, decoration or chord symbol: music21 draws it, our MEI would not
        elif kind == "tuplet":
            tuplet, opens = (value[1], value[2]), True
        elif kind == "tuplet_end":
            tuplet = None
        elif kind == "bar":
            out.append([])
            tuplet, opens = None, False
    if last and last[-1].tied:
        last[-1] = last[-1]._replace(tied=False)  # a tie to nothing
    return tuple(tuple(b) for b in out[:-1])


def _mei_keysig(sig: dict[str, int]) -> str:
    """A key signature in MEI's words: ``"2s"``, ``"3f"``, ``"0"`` (mixed ones: ``"0"``)."""
    alters = set(sig.values())
    if len(alters) != 1 or alters - {1, -1}:
        return "0"
    return f"{len(sig)}{'s' if alters == {1} else 'f'}"


_SPELLING = re.compile(r"(\^\^|\^|__|_|=)?([A-Ga-g])([',]*)")


# ---------------------------------------------------------------------------------------------
# Reading a whole tune
# ---------------------------------------------------------------------------------------------


def parse_abc(text: str | bytes) -> ParsedTune:
    """Read the ABC text of one tune; raise :class:`ABCError` where it cannot be read.

    The header runs from the first line to the ``K:`` (key) line; ``X:``, ``T:``, ``M:``,
    ``L:``, ``Q:`` and ``K:`` are read, other header fields are kept in the text but not used.
    The body is read symbol by symbol.

    >>> tune = parse_abc("X:1\\nM:3/4\\nL:1/8\\nK:D\\nA>B c2- c2 | d6 |]")
    >>> [(n.pitch, n.onset, n.duration) for n in tune.notes]
    [(69, 0.0, 0.75), (71, 0.75, 0.25), (73, 1.0, 2.0), (74, 3.0, 3.0)]
    >>> [m.right for m in tune.measures]
    ['single', 'end']
    """
    text, reader, titles, fields, meter, bar, unit, key_name, sig, tempo = _read(text)

    verovio_abc = None
    if reader.not_plain is None:
        head = ["X:1"]
        if titles and titles[0]:
            head.append("T:" + titles[0])
        if meter is not None:
            head.append("M:" + meter)
        head.append(f"L:{unit.numerator}/{unit.denominator}")
        head.append("K:" + (key_name or "C"))
        verovio_abc = _verovio_copy(head, reader.pieces, reader.measures, meter, bar)

    notes = sorted((Note(int(p), float(on), float(d)) for p, on, d in reader.notes),
                   key=lambda n: (n.onset, n.pitch))
    return ParsedTune(
        text=text,
        title=titles[0] if titles else "",
        meter=meter,
        unit=unit,
        key=fields["K"][0],
        tempo=tempo,
        events=tuple(reader.events),
        notes=tuple(notes),
        measures=tuple(reader.measures),
        length=reader.time,
        voices=reader.voices,
        verovio_abc=verovio_abc,
        not_plain=reader.not_plain,
        keysig=_mei_keysig(sig),
    )


def _written_of(text: str) -> tuple[tuple[Written, ...], ...] | None:
    """:attr:`ParsedTune.written`, read again from the tune's text."""
    _, reader, _, _, meter, bar, *_ = _read(text)
    if not reader.writable:  # several voices, chords...
        return None
    return _written_copy(reader.pieces, reader.events, reader.measures, meter, bar)


def _read(text: str | bytes) -> tuple[Any, ...]:
    """Read a tune's header and body: (the text, the body's reader, titles, header fields,
    meter, bar length, unit length, key for verovio, key signature, tempo)."""
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as err:
            raise ABCError(f"the ABC is not UTF-8 text ({err.reason} at byte {err.start})",
                           abc=bytes(text).decode("utf-8", "replace")) from None
    if not isinstance(text, str):
        raise TypeError(f"ABC text must be a str, not {type(text).__name__}")
    if not text.strip():
        raise ABCError("the ABC text is empty", abc=text)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")

    # -- the header ----------------------------------------------------------------------------
    fields: dict[str, tuple[str, int]] = {}
    titles: list[str] = []
    k_line = 0
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("%"):
            continue
        m = re.match(r"([A-Za-z+]):(.*)", stripped)
        if m is None:
            raise ABCError("music before the K: (key) field; the header must end with a K: line",
                           abc=text, line=number, column=1)
        key, value = m.group(1), m.group(2).split("%")[0].strip()
        if key == "X" and "X" in fields:
            raise ABCError("a second tune starts here (X:); a Tune holds one tune",
                           abc=text, line=number, column=1)
        if key == "T":
            titles.append(value)
        fields.setdefault(key, (value, number))
        if key == "K":
            k_line = number
            break
    if not k_line:
        raise ABCError("no K: (key) field: an ABC tune needs a header ending with K:, "
                       "like X:1 / M:6/8 / L:1/8 / K:G", abc=text)

    def header(key: str, read: Any, default: str) -> Any:
        value, number = fields.get(key, (default, 0))
        try:
            return read(value)
        except ABCError as err:
            raise ABCError(err.problem, abc=text, line=number, column=1) from None

    meter, bar, meter_plain = header("M", _meter, "none")
    unit = header("L", _unit_length, "") if "L" in fields else default_unit(bar)
    if not fields["K"][0]:
        raise ABCError("the K: (key) field is empty (write e.g. K:G, K:Ador or K:none)",
                       abc=text, line=k_line, column=1)
    sig, key_name, key_plain = header("K", _key_signature, "")
    tempo = fields["Q"][0] if "Q" in fields else None
    if tempo is not None and tempo_qpm(tempo, unit) == 0:  # too slow or fast: read; audio says
        raise ABCError(f"the tempo Q:{tempo} has no speed", abc=text, line=fields["Q"][1],
                       column=1)

    # -- the body ------------------------------------------------------------------------------
    reader = _Reader(text, sig, unit, bar, _compound(meter))
    if not meter_plain:
        reader.unplain(f"the meter M:{meter}")
    if not key_plain:
        reader.unplain(f"the key K:{fields['K'][0]}")
    if unit.numerator != 1 or unit.denominator & (unit.denominator - 1):
        reader.unplain(f"the unit length L:{fields['L'][0]}")
    for number, line in enumerate(lines[k_line:], k_line + 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("%"):
            continue
        m = _BODY_FIELD.match(stripped) or re.match(r"([KLMPQTVX]):(.*)", stripped)
        if m:
            reader.field(m.group(1), m.group(2).split("%")[0], (number, 1))
            continue
        reader.line(line.rstrip(), number)
    reader.finish()
    if not reader.events:
        raise ABCError("the tune has no notes or rests", abc=text)
    if reader.voices > 1:
        reader.unplain("several voices")
    return text, reader, titles, fields, meter, bar, unit, key_name, sig, tempo


# ---------------------------------------------------------------------------------------------
# The form: endings, repeats, the order bars are played in
# ---------------------------------------------------------------------------------------------

_CLOSING = ("rptend", "rptboth", "dbl", "end")


def ending_spans(measures: tuple[Measure, ...] | list[Measure]) -> list[tuple[int, int, str]]:
    """Which bars each ending (volta) covers: (first bar, last bar, label), counted from 0.

    An ending runs to a repeat sign, a double or final bar line, the next ending or the start
    of a repeat; one left open is as long as the ending before it (or one bar) unless a closing
    bar line follows within eight bars.

    >>> ending_spans(parse_abc(
    ...     "X:1\\nL:1/4\\nK:C\\n|:C D|1 E F:|2 G A|B c||").measures)
    [(1, 1, '1'), (2, 3, '2')]
    """
    spans: list[tuple[int, int, str]] = []
    i = 0
    while i < len(measures):
        label = measures[i].ending
        if label is None:
            i += 1
            continue
        open_limit = spans[-1][1] - spans[-1][0] + 1 if spans and spans[-1][1] == i - 1 else 1
        j = i
        while measures[j].right not in _CLOSING and j + 1 < len(measures):
            following = measures[j + 1]
            if following.ending is not None or following.left == "rptstart":
                break
            if j - i + 1 >= open_limit and not any(
                    m.right in _CLOSING for m in measures[j + 1:j + 9]):
                break  # left open, and no closing bar line soon
            j += 1
        spans.append((i, j, label))
        i = j + 1
    return spans


def _ending_numbers(label: str) -> set[int]:
    """The passes an ending is played on: "1" -> {1}, "1,3" -> {1, 3}, "1-2" -> {1, 2}."""
    numbers: set[int] = set()
    for part in label.split(","):
        low, _, high = part.partition("-")
        if low.isdigit():
            numbers.update(range(int(low), int(high if high.isdigit() else low) + 1))
    return numbers


def play_order(measures: tuple[Measure, ...] | list[Measure]) -> list[int]:
    """The bars (counted from 0) in the order a musician plays them: each repeated section
    twice, with its first ending the first time and its second ending the second time.

    A ``:|`` with no ``|:`` before it repeats from the start (or from the last ``:|``).

    >>> play_order(parse_abc("X:1\\nL:1/4\\nK:C\\n|:C D|1 E F:|2 G A||B c|]").measures)
    [0, 1, 0, 2, 3]
    """
    spans = {first: last for first, last, _ in ending_spans(measures)}
    order: list[int] = []
    i, start, second_time = 0, 0, False
    for _ in range(4 * len(measures) + 4):  # a safe bound: each bar is played at most twice
        if i >= len(measures):
            return order
        bar = measures[i]
        if bar.left == "rptstart" and i != start:
            start, second_time = i, False
        if bar.ending is not None and i in spans:
            if (2 if second_time else 1) not in _ending_numbers(bar.ending):
                i = spans[i] + 1  # not this time round
                continue
        order.append(i)
        if bar.right in ("rptend", "rptboth"):
            if not second_time:
                i, second_time = start, True
                continue
            start, second_time = i + 1, False
        i += 1
    return list(range(len(measures)))  # a form we cannot follow: play it as written


class Performance(NamedTuple):
    """A tune as played: its notes in time, how long it lasts (quarter notes), and when each
    bar starts (for the lilt of the first beat)."""

    notes: list[Note]
    length: float
    downbeats: set[float]


def performance(parsed: ParsedTune, repeats: bool = True) -> Performance:
    """The notes of a read tune as played: repeats taken (unless ``repeats`` is False), tied
    notes merged.

    >>> played = performance(parse_abc("X:1\\nL:1/4\\nK:C\\n|:C D|1 E:|2 F|]"))
    >>> [(n.pitch, n.onset) for n in played.notes], played.length
    ([(60, 0.0), (62, 1.0), (64, 2.0), (60, 3.0), (62, 4.0), (65, 5.0)], 6.0)
    """
    starts, time = [], Fraction(0)
    for bar in parsed.measures:
        starts.append(float(time))
        time += bar.length
    in_bar: list[list[Note]] = [[] for _ in parsed.measures]
    k = 0
    for note in parsed.notes:
        while k + 1 < len(starts) and note.onset >= starts[k + 1] - 1e-9:
            k += 1
        in_bar[k].append(note)
    order = play_order(parsed.measures) if repeats else range(len(parsed.measures))
    notes, downbeats, now = [], set(), 0.0
    for k in order:
        shift = now - starts[k]
        notes.extend(Note(n.pitch, n.onset + shift, n.duration) for n in in_bar[k])
        downbeats.add(round(now, 6))
        now += float(parsed.measures[k].length)
    return Performance(notes, now, downbeats)


