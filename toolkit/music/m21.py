"""music21: imported without its notebook side effects, and its reading of a tune, checked.

music21 reads the ABC that verovio and our own MEI cannot draw (chords, grace notes, several
voices, key and meter changes, marks), and writes MusicXML and MIDI. Its reading is not taken
on trust: it is given a copy of the tune with what it misreads spelt out, its ties and dropped
changes are mended, and its notes are compared with our reader's (the notes the WAV plays);
where they differ an :class:`ABCError` names the first difference, so that no score, MusicXML
or MIDI file shows other notes than the tune plays. :mod:`toolkit.music.render` engraves
through it when it must.

Imported inside Jupyter, music21 starts a timer (``music21.ipython21``) that a second later
switches matplotlib to interactive mode and every inline figure to ``retina``: four times the
pixels for every figure shown afterwards, in memory while it is drawn and in a saved notebook's
PNG outputs.  A student who never asked for music21 (the toolkit reaches for it only when verovio
cannot read a tune, for MusicXML and MIDI, and for the outside checks) would see their plots
change half-way through a notebook.  Every place in the toolkit that imports music21 calls
:func:`load` first, which imports it and stops that timer.
"""

from __future__ import annotations

import bisect
import copy
import math
import re
import sys
from fractions import Fraction
from types import ModuleType
from typing import Any

from toolkit.music.notes import Note
from toolkit.music.reader import (
    ABCError,
    Measure,
    ParsedTune,
    Performance,
    _note_length,
    play_order,
)
from toolkit.music.tokens import NATURAL_SEMITONE, duration_token

__all__ = ["load", "music21_score", "notes_from_score", "performance_from_score", "musicxml",
           "midi", "MAX_REBAR_SECONDS"]


def load() -> ModuleType:
    """``import music21``; the first time, cancel its notebook set-up timer. Returns music21."""
    first = "music21" not in sys.modules
    import music21

    if first:
        timer = getattr(sys.modules.get("music21.ipython21"), "t", None)
        if timer is not None and hasattr(timer, "cancel"):
            timer.cancel()
    return music21


# ---------------------------------------------------------------------------------------------
# music21's reading of a tune, checked; MusicXML and MIDI
# ---------------------------------------------------------------------------------------------


#: How long music21 may be asked to spend re-barring one tune, in seconds (estimated, below).
#:
#: music21 re-bars a bar that is longer than its meter (``abcFormat.translate.reBar``, inside
#: ``converter.parse``): it cuts the bar at the meter's length and gives the overflow a time
#: signature of its own, n/d, found by ``meter.bestTimeSignature``. Making a time signature
#: builds its accent hierarchy in time growing as n squared (``_setDefaultAccentWeights``):
#: 0.1 s for 31/3, 1.5 s for 127/3, 14 s for 379/24, and minutes for 2827/24 -- the overflow of
#: a generated tune cut off at ``max_tokens`` in a long last line with a triplet in it. A time
#: signature music21 cannot make (a beat shorter than 1/128) is worse: it drops the overflow,
#: notes and all, without a word. A bar over by a note or two needs a small time signature:
#: tunes the model or a student gets slightly wrong still go through as before.
MAX_REBAR_SECONDS = 0.5


def _signature_seconds(n: int, d: int) -> float:
    """About how long music21 9.x takes to make the time signature n/d (one core, measured):
    beats of a third, fifth... (tuplets) cost most, beats shorter than 1/32 least.

    >>> round(_signature_seconds(2827, 24)), round(_signature_seconds(1, 8), 6)
    (799, 1.5e-05)
    """
    if d > 32:
        return 5e-5 * n
    return (1.5e-5 if d & (d - 1) == 0 else 1e-4) * n * n


def _overflows(handler: Any) -> list[tuple[int, Fraction, Fraction]]:
    """The bars music21 will re-bar, as music21 itself reads them (the lengths of notes,
    tuplets and broken rhythm by its own rules, which are not always ours): (bar number from
    1, its length, the meter's bar length), in quarter notes."""
    load()
    from music21 import abcFormat
    from music21.common import opFrac  # music21's own rounding of float lengths to fractions

    found = []
    voices = handler.splitByVoice()
    for part in voices if len(voices) == 1 else [voices[0] + v for v in voices[1:]]:
        if not part.definesMeasures():
            continue  # music21 makes no bars of its own: nothing is re-barred
        bar: Fraction | None = None
        filled, number = Fraction(0), 0
        for token in [*part.tokens, None]:
            if token is None or isinstance(token, abcFormat.ABCBar):
                if filled:
                    number += 1
                    if bar is not None and filled > bar:
                        found.append((number, filled, bar))
                filled = Fraction(0)
            elif isinstance(token, abcFormat.ABCMetadata) and token.isMeter():
                ts = token.getTimeSignatureObject()
                bar = None if ts is None else Fraction(opFrac(ts.barDuration.quarterLength))
            elif isinstance(token, abcFormat.ABCNote) and not token.inGrace:  # chords, rests too
                filled += _music21_length(token)
    return found


def _overflow_signature(extra: Fraction) -> tuple[int, int]:
    """The time signature (n, d) music21's ``bestTimeSignature`` gives an overflow of ``extra``
    quarter notes: in lowest terms over a power of two (x/1 and x/2 written over 4), or, for a
    length no power of two divides (tuplets), its quarter-note fraction as it stands.

    >>> _overflow_signature(Fraction(1, 2)), _overflow_signature(Fraction(2827, 24))
    ((1, 8), (2827, 24))
    """
    if extra.denominator & (extra.denominator - 1):
        return extra.numerator, extra.denominator
    whole = extra / 4
    scale = {1: 4, 2: 2}.get(whole.denominator, 1)
    return whole.numerator * scale, whole.denominator * scale


def _guard_rebarring(handler: Any, abc: str) -> None:
    """Refuse, with the bar named, a tune whose overfull bars music21 cannot re-bar in bounded
    time or without losing notes (see :data:`MAX_REBAR_SECONDS`)."""
    load()
    from music21 import meter

    seconds = 0.0
    seen: set[tuple[int, int]] = set()
    for number, length, bar in _overflows(handler):
        n, d = signature = _overflow_signature(length - bar)
        if signature in seen:
            continue  # music21 keeps what it worked out for a time signature
        seen.add(signature)
        seconds += _signature_seconds(n, d)
        over = (f"bar {number} lasts {float(length):g} quarter notes, "
                f"{float(length - bar):g} more than its meter's {float(bar):g}")
        if seconds > MAX_REBAR_SECONDS:
            took = f"{seconds:.0f}" if seconds >= 10 else f"{seconds:.1f}"
            others = " with the tune's other overfull bars" if len(seen) > 1 else ""
            raise ABCError(f"{over}: music21 would re-bar the overflow in a time signature of "
                           f"{n}/{d}, which would take it about {took} s{others} (at most "
                           f"{MAX_REBAR_SECONDS:g} s); add the missing bar lines", abc=abc)
        try:
            meter.TimeSignature(f"{n}/{d}")  # cheap now; music21 reuses the work when it parses
        except Exception as err:  # music21 raises many kinds; all mean it drops the overflow
            raise ABCError(f"{over}: music21 cannot give the overflow a time signature "
                           f"({n}/{d}: {err}) and would drop its notes; add the missing bar "
                           "lines", abc=abc) from err


_NOTE = r"[_^=]*[A-Ga-gz][,']*"
_BESIDE = r"(?:[()](?!\d)|[ \t.`-]|\{[^}\n]*\}|![^!\n]*!)*"  # marks music21 cannot read past
_MUSIC21_MISREADS = re.compile(
    r"(?P<field>\[[KL]:[^]\n]*])"
    r'|(?P<text>"[^"]*"|%.*$|^\s*[H-Wh-wXY+]:.*$|![^!\n]*!|\+[^+\n]*\+|\[\w:[^]\n]*])'
    rf"|(?P<left>{_NOTE})(?P<llen>\d*/*\d*)(?P<mid1>{_BESIDE})(?P<op><+|>+)"
    rf"(?P<mid2>{_BESIDE})(?P<right>{_NOTE})(?P<rlen>\d*/*\d*)"
    r"|[~HLMOPST]|(?<=[<>])[uv]|(?<![:|])::(?![:|])"
    r"|(?P<tuplet>\(\d[\d:]*)(?P<grace>\s*\{[^}\n]*\})|`+|x", flags=re.M)


def _broken_written_out(m: re.Match) -> str:
    """``d>e`` as ``d3/2e/2``: music21 keeps a broken rhythm only between two notes side by
    side, and misreads one with a slur mark, tie, dot, space or grace note beside the ``>``.
    Written out, the marks stay where they are."""
    left, right = _note_length(m.group("llen")), _note_length(m.group("rlen"))
    if isinstance(left, str) or isinstance(right, str):
        return m.group(0)  # a length our reader refuses: leave it to the comparison
    k = 2 ** len(m.group("op"))
    long, short = Fraction(2 * k - 1, k), Fraction(1, k)
    if m.group("op")[0] == "<":
        long, short = short, long
    return (m.group("left") + (duration_token(left * long) or "")
            + (m.group("mid1") + m.group("mid2")).replace("`", "") + m.group("right")
            + (duration_token(right * short) or ""))


def _as_music21_reads(m: re.Match) -> str:
    """What :func:`_music21_text` writes for a match of ``_MUSIC21_MISREADS``."""
    if m.group("field"):
        return "\n" + m.group("field")[1:-1] + "\n"  # it reads [K:Bb] as an empty chord
    if m.group("text"):
        return re.sub(r'^">', '"^', m.group("text"))  # it takes ">x" for broken rhythm
    if m.group("op"):
        return _broken_written_out(m)
    if m.group("tuplet"):
        return m.group("grace") + m.group("tuplet")  # it misreads grace notes in a tuplet
    return {"::": ":|:", "x": "z"}.get(m.group(0), "")


def _music21_text(parsed: ParsedTune) -> str:
    """The tune's text as music21 is given it, with what music21 would misread spelt out.

    ABC's assumptions are written out: the version (2.1, so that accidentals hold to the end
    of the bar), an ``X:`` line, and the ``L:`` unit length, which music21 will not guess.
    Inline key and unit changes (``[K:Bb]``, ``[L:1/16]``), which music21 reads as empty
    chords, go on lines of their own, which it follows. Decorations of one letter, which
    music21 draws not at all or wrongly but misreads notes after (it drops the note after
    ``H``, forgets the accidental of ``T^c`` for the rest of the bar, breaks the rhythm of
    ``g>vg``), are left out; ``::``, before which it drops a note, is written ``:|:``. A clef
    in a ``K:`` field is left out: music21 would move a bass clef's notes two octaves down
    (ABC's clefs move no pitches); :func:`music21_score` draws the tune's clef again. An
    annotation to the right of a note (``">x"``), which music21 reads as a broken rhythm, is
    put above it. A broken rhythm is written out (``d>e`` as ``d3/2e/2``): music21 misreads
    one with a slur mark, tie, dot, space or grace note beside the ``>`` (``(d>ef>)(e``,
    ``B>-c``, ``d>{^c}B``, ``d/>d/``). Beaming backquotes (`` d`e ``) go, grace notes opening a
    tuplet (``(3{d}cAG``) are put before it, and an invisible rest ``x``, which music21 drops,
    is drawn as ``z``. All this only in a tune of one voice, whose notes are then checked
    against ours; a tune of several voices is given as it is (with the header written out).
    """
    text = parsed.text
    if not re.search(r"^\s*L:", text.split("\nK:")[0], flags=re.M):
        unit = f"L:{parsed.unit.numerator}/{parsed.unit.denominator}\n"
        text = re.sub(r"^(\s*K:)", lambda m: unit + m.group(1), text, count=1, flags=re.M)
    key = re.search(r"^\s*K:.*$", text, flags=re.M)
    if key is not None and parsed.voices == 1:  # several voices: music21 is the reference
        text = text[:key.end()] + _MUSIC21_MISREADS.sub(_as_music21_reads, text[key.end():])
    text = re.sub(r"^(\s*K:)(.*)$", lambda m: m.group(1) + " ".join(
        w for w in m.group(2).split() if not re.search(r"bass|-8va", w, flags=re.I)),
        text, flags=re.M)
    if not re.match(r"\s*X:", text):
        text = "X:1\n" + text
    return "%abc-2.1\n" + text  # else music21 reads ABC 1.3: accidentals last one note


def music21_score(parsed: ParsedTune) -> Any:
    """music21's reading of one tune (a ``Score``); raises :class:`ABCError`.

    music21 reads richer ABC than verovio (several voices, chords, grace notes) but takes
    ~40 ms a tune. It is given the tune's text with what it would misread spelt out (see
    :func:`_music21_text`). Overfull bars are checked first, in music21's own reading (a few
    ms): see :data:`MAX_REBAR_SECONDS`. A tune of one voice is ours to play: music21's ties
    are kept only where our reading joins two notes, the key and meter changes it drops are
    put back, and its notes are then checked against ours (:func:`_music21_differs`), so that
    no score, MusicXML or MIDI file shows other notes than the tune plays.
    """
    load()
    from music21 import abcFormat, converter, stream

    text = _music21_text(parsed)
    try:
        handler = abcFormat.ABCFile().readstr(text)  # music21's tokens: what it will read
        _guard_rebarring(handler, parsed.text)
        score = converter.parse(text, format="abc", forceSource=True)
    except ABCError:
        raise
    except Exception as err:  # music21 raises many kinds; to the user they all mean this
        raise ABCError(f"music21 cannot read this ABC: {type(err).__name__}: {err}",
                       abc=parsed.text) from err
    if isinstance(score, stream.Opus):
        if not score.scores:
            raise ABCError("music21 found no tune in this ABC", abc=parsed.text)
        score = score.scores[0]
    if not score.flatten().notesAndRests:
        raise ABCError("music21 found no notes in this ABC", abc=parsed.text)
    # music21's re-barring gives the bar after an overflow the very TimeSignature object of an
    # earlier bar; its MIDI writer then fails ("... is already found in this Stream")
    seen: set[int] = set()
    for bar in score.recurse().getElementsByClass(stream.Measure):
        if bar.timeSignature is not None:
            if id(bar.timeSignature) in seen:
                bar.timeSignature = copy.deepcopy(bar.timeSignature)
            seen.add(id(bar.timeSignature))
    header_key = abcFormat.ABCMetadata("K:" + parsed.key)
    header_key.preParse()
    clef = header_key.getClefObject()[0]  # the clef left out of music21's text, now drawn
    for part in score.parts if clef is not None else ():
        first = part.getElementsByClass(stream.Measure).first() or part
        first.remove(list(first.getElementsByOffset(0).getElementsByClass("Clef")))
        first.insert(0, copy.deepcopy(clef))
    if parsed.voices == 1:
        _mend_ties(score)
        _put_back_changes(score, handler, parsed)
        problem = _music21_differs(score, parsed)
        if problem:
            raise ABCError(f"{problem}: music21's score, MusicXML and MIDI would not be the "
                           "tune that plays", abc=parsed.text)
    return score


def _mend_ties(score: Any) -> None:
    """Keep music21's ties only between two notes of one pitch, as our reading joins them:
    music21 ties a note to whatever comes next (a rest, another pitch: ``A2-z2``, ``c-d``).
    A tie carries its accidental to the same note in the next bar (``_B2-|B2``) unless that
    note writes its own, as in ABC."""
    load()
    from music21 import note, tie

    elements = list(score.flatten().notesAndRests)
    for a, b in zip(elements, elements[1:], strict=False):
        if not isinstance(a, note.Note) or a.tie is None or a.tie.type == "stop":
            continue
        if (isinstance(b, note.Note) and b.pitch.midi != a.pitch.midi
                and (b.pitch.step, b.pitch.octave) == (a.pitch.step, a.pitch.octave)
                and getattr(b.pitch.accidental, "displayStatus", None) is not True):
            b.pitch = copy.deepcopy(a.pitch)
        if not (isinstance(b, note.Note) and b.pitch.midi == a.pitch.midi):
            a.tie = None if a.tie.type == "start" else tie.Tie("stop")
            if b.tie is not None and b.tie.type != "start":
                b.tie = None if b.tie.type == "stop" else tie.Tie("start")


def _put_back_changes(score: Any, handler: Any, parsed: ParsedTune) -> None:
    """Put back the key and meter changes inside a tune of one voice, which music21 reads but
    leaves out of its bars, at the bars they start (a key change inside a bar needs none:
    music21's notes carry their accidentals). Where the meter changes, music21 has cut the
    tune's bars by the meter before: the pieces are joined again, so that the bars are ours."""
    load()
    from music21 import abcFormat, meter, stream

    changes, time, started = [], Fraction(0), False
    for token in handler.tokens:
        field = token.src.strip("[]") if isinstance(token, abcFormat.ABCChord) else None
        if field is not None and re.match(r"[KM]:", field):
            token = abcFormat.ABCMetadata(field)  # music21 reads [M:3/4] as an empty chord
            token.preParse()
        if isinstance(token, abcFormat.ABCMetadata) and started:
            change = (token.getTimeSignatureObject() if token.isMeter() else
                      token.getKeySignatureObject() if token.isKey() else None)
            if change is not None:
                changes.append((time, change))
        elif isinstance(token, abcFormat.ABCNote) and not token.inGrace and field is None:
            started = True
            time += _music21_length(token)
    part = score.parts[0]
    bars = list(part.getElementsByClass(stream.Measure))
    if not bars:  # no bars: music21 keeps the changes of fields on lines of their own
        for time, change in changes:
            if not part.getElementsByOffset(float(time)).getElementsByClass(type(change)):
                part.insert(float(time), change)
        return
    meters = {t: c for t, c in changes if isinstance(c, meter.TimeSignature)}
    keys = {t: c for t, c in changes if not isinstance(c, meter.TimeSignature)}
    ours = set(_bar_starts(parsed))
    kept = bars[0]
    for m in bars[1:]:
        start = Fraction(m.offset).limit_denominator(10**6)
        if meters and start not in ours:  # a piece music21 cut off one of our bars
            shift = m.offset - kept.offset
            for element in list(m.notesAndRests):
                offset = element.offset
                m.remove(element)
                kept.insert(shift + offset, element)
            kept.rightBarline = m.rightBarline
            part.remove(m)
            continue
        if meters:
            m.timeSignature = meters.get(start)
            m.number = kept.number + 1
        if start in keys:
            m.keySignature = keys[start]
        kept = m


def _bar_starts(parsed: ParsedTune) -> list[Fraction]:
    """When each of the tune's bars starts, in quarter notes from its start."""
    starts, time = [], Fraction(0)
    for bar in parsed.measures:
        starts.append(time)
        time += bar.length
    return starts


def _music21_length(token: Any) -> Fraction:
    """How long music21 makes a note, chord or rest token, in quarter notes."""
    from music21.common import opFrac  # music21's own rounding of float lengths to fractions

    length = Fraction(opFrac(token.quarterLength))
    if token.activeTuplet is not None:
        length *= Fraction(opFrac(token.activeTuplet.tupletMultiplier()))
    return length


_ALTER_WORDS = {-2: "double flat", -1: "flat", 0: "natural", 1: "sharp", 2: "double sharp"}


def _named(pitch: int, letter: str | None, octave: bool) -> str:
    """A MIDI pitch spelt on ``letter`` (None: as a keyboard names it): ``"B flat"``, or with
    its octave ``"Bb3"``.

    >>> _named(70, "B", False), _named(57, "A", True), _named(70, "B", True), _named(76, None, 0)
    ('B flat', 'A3', 'Bb4', 'E5')
    """
    alter = None if letter is None else (pitch - NATURAL_SEMITONE[letter] + 6) % 12 - 6
    if letter is None or alter not in _ALTER_WORDS:
        letter = "CCDEEFFGAABB"[pitch % 12]
        alter, octave = pitch % 12 - NATURAL_SEMITONE[letter], True
    number = (pitch - NATURAL_SEMITONE[letter] - alter) // 12 - 1
    if octave:
        return f"{letter}{'#' * alter if alter > 0 else 'b' * -alter}{number}"
    return f"{letter} {_ALTER_WORDS[alter]}"


def _music21_differs(score: Any, parsed: ParsedTune) -> str | None:
    """The first note where music21's reading of a tune of one voice differs from ours in
    pitch or time, in words ("music21 reads the B at the start of bar 2 as B natural, the
    tune has B flat"), or None when every note agrees (ties merged, grace notes left out, as
    both play them). Times and lengths are in quarter notes."""
    starts = [float(t) for t in _bar_starts(parsed)]

    def where(onset: float) -> str:
        number = max(1, bisect.bisect_right(starts, onset + 1e-9))
        into = onset - starts[number - 1] if starts else onset
        return f"{_quarters(into)} into bar {number}" if into > 1e-9 else (
            f"at the start of bar {number}")

    def same(a: float, b: float) -> bool:
        return math.isclose(a, b, abs_tol=1e-6)

    theirs = _sounding(score)
    ours = parsed.notes
    for k in range(max(len(ours), len(theirs))):
        our = ours[k] if k < len(ours) else None
        their, spelt = theirs[k] if k < len(theirs) else (None, None)
        if our is None or their is None or not same(our.onset, their.onset):
            onset = min(n.onset for n in (our, their) if n is not None)
            said = [f"{_named(n.pitch, None, True)}, {_quarters(n.duration)} long,"
                    if n is not None and same(n.onset, onset) else "no note"
                    for n in (their, our)]
            return f"music21 reads {said[0]} {where(onset)}, the tune has {said[1]} there"
        if our.pitch != their.pitch:
            apart = abs(our.pitch - their.pitch)  # a semitone: one letter's accidentals
            octave, letter = apart != 1, spelt if apart == 1 or apart % 12 == 0 else None
            hint = ""
            if re.search(r"^\s*K:.*\s(exp|[_^=]+[A-Ga-g])\b", parsed.text, flags=re.M):
                hint = " (music21 ignores a key's own accidentals)"
            return (f"music21 reads the {spelt} {where(our.onset)} as "
                    f"{_named(their.pitch, spelt, octave)}, the tune has "
                    f"{_named(our.pitch, letter, octave)}{hint}")
        if not same(our.duration, their.duration):
            return (f"music21 reads the {spelt} {where(our.onset)} as "
                    f"{_quarters(their.duration)} long, the tune has {_quarters(our.duration)}")
    return None


def _quarters(length: float) -> str:
    """A length in quarter notes, in words.

    >>> _quarters(1.0), _quarters(0.5), _quarters(11 / 3)
    ('1 quarter note', '1/2 of a quarter note', '11/3 quarter notes')
    """
    q = Fraction(length).limit_denominator(384)
    return "1 quarter note" if q == 1 else f"{q} of a quarter note" if q < 1 else (
        f"{q} quarter notes")


def _sounding(score: Any) -> list[tuple[Note, str]]:
    """The sounding notes of a music21 score (see :func:`notes_from_score`), each with the
    letter music21 spells it on. Ties are merged here, a note into the one of its pitch that
    ends where it starts: music21's ``stripTies`` takes ~20 ms a tune, this ~1 ms."""
    load()
    from music21 import harmony

    notes: list[list[Any]] = []  # [pitch, onset, duration, letter]
    held: dict[int, list[Any]] = {}  # pitch -> the note a tie carries on
    for element in score.flatten().notes:
        if isinstance(element, harmony.ChordSymbol) or element.duration.quarterLength == 0:
            continue
        onset, length = float(element.offset), float(element.duration.quarterLength)
        for part in element.notes if element.isChord else (element,):
            pitch, tie = int(part.pitch.midi), part.tie or element.tie
            last = held.pop(pitch, None)
            if (tie is not None and tie.type != "start" and last is not None
                    and math.isclose(last[1] + last[2], onset, abs_tol=1e-9)):
                last[2] += length
            else:
                last = [pitch, onset, length, part.pitch.step]
                notes.append(last)
            if tie is not None and tie.type != "stop":
                held[pitch] = last
    notes.sort(key=lambda n: (n[1], n[0]))
    return [(Note(p, o, d), letter) for p, o, d, letter in notes]


def notes_from_score(score: Any) -> list[Note]:
    """The sounding notes of a music21 score (ties merged, grace notes and chord symbols
    left out), as :class:`toolkit.music.notes.Note`."""
    return [note for note, _ in _sounding(score)]


def performance_from_score(score: Any, repeats: bool = True) -> Performance:
    """A music21 score as played (repeats taken if music21 can follow them)."""
    played = score
    if repeats:
        try:
            played = score.expandRepeats()
        except Exception:  # music21 cannot follow badly formed repeats: play as written
            played = score
    downbeats = {round(float(m.getOffsetInHierarchy(played)), 6)
                 for m in played.recurse().getElementsByClass("Measure")}
    return Performance(notes_from_score(played), float(played.highestTime), downbeats)


def musicxml(score: Any) -> bytes:
    """A music21 score as MusicXML (bytes, UTF-8); :class:`ABCError` if music21 cannot.

    The same score gives the same bytes on the same day (the file carries its date).
    """
    load()
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    try:
        xml = bytes(GeneralObjectExporter(score).parse()).decode("utf-8")
    except Exception as err:  # music21 raises many kinds; to the user they mean this
        raise ABCError(f"music21 cannot write this tune as MusicXML: {err}") from err
    # music21 names parts with random ids: number them, so the same tune gives the same file
    names: dict[str, str] = {}
    xml = re.sub(r'\bid="(P[0-9a-f]{16,})"',
                 lambda m: f'id="{names.setdefault(m.group(1), f"P{len(names) + 1}")}"', xml)
    return xml.encode("utf-8")


def midi(score: Any) -> bytes:
    """A music21 score as a standard MIDI file (bytes); :class:`ABCError` if music21 cannot.

    MIDI has no repeat signs: the file plays the repeats. Where music21 cannot follow them (a
    repeat left open, an ending with no repeat: a generated tune may write these), the bars
    are played in the order our reading plays them (:func:`_as_played`), as the WAV does.
    """
    load()
    from music21.midi.translate import music21ObjectToMidiFile
    from music21.repeat import ExpanderException

    try:
        try:
            return bytes(music21ObjectToMidiFile(score).writestr())
        except ExpanderException:
            return bytes(music21ObjectToMidiFile(_as_played(score)).writestr())
    except Exception as err:  # ditto
        raise ABCError(f"music21 cannot write this tune as MIDI: {err}") from err


def _as_played(score: Any) -> Any:
    """A copy of a music21 score with its bars in the order :func:`reader.play_order` plays
    them (read from the score's repeat signs and endings), and no repeat signs left."""
    load()
    from music21 import bar, spanner, stream

    kinds = {"double": "dbl", "final": "end", "light-heavy": "end"}
    played = stream.Score()
    for part in score.parts:
        bars = list(part.getElementsByClass(stream.Measure))
        endings = {id(b.getFirst()): str(b.number) for b in part.spanners
                   if isinstance(b, spanner.RepeatBracket) and b.getFirst() is not None}
        marks = [Measure("rptstart" if isinstance(m.leftBarline, bar.Repeat) else "",
                         "rptend" if isinstance(m.rightBarline, bar.Repeat) else
                         kinds.get(getattr(m.rightBarline, "type", ""), "single"),
                         endings.get(id(m)), Fraction(m.duration.quarterLength))
                 for m in bars]
        copied = stream.Part()
        for element in part.getElementsNotOfClass((stream.Measure, spanner.Spanner)):
            copied.insert(0, copy.deepcopy(element))  # the instrument
        for i in play_order(marks):
            m = copy.deepcopy(bars[i])
            m.leftBarline = None
            if isinstance(m.rightBarline, bar.Repeat):
                m.rightBarline = None
            copied.append(m)
        played.insert(0, copied)
    return played
