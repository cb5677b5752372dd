"""Engraving: a tune's score as SVG with verovio (MusicXML and MIDI: :mod:`toolkit.music.m21`).

The score is engraved by verovio, offline, in a few tens of milliseconds::

    >>> from toolkit.music.tune import Tune
    >>> tune = Tune.from_abc("X:1\\nT:Scale\\nM:4/4\\nL:1/8\\nK:D\\nDEFG ABcd|]")
    >>> svg(tune).count('class="note"')
    8

How a tune reaches verovio:

1. Plain tunes -- what the generator writes, and most folk tunes -- go in as ABC
   (``inputFrom: "abc"``), in the plain copy :func:`toolkit.tune.parse_abc` writes. verovio's
   reading of every note and rest (pitch and length, from its MEI) is checked against ours;
   the repeats, endings and bar lines its ABC reader leaves out are then written into the MEI,
   which is loaded back and drawn.
2. A plain tune that verovio reads differently (broken rhythms after dotted notes, tuplets
   cut off: a generated tune at a high temperature), or one with lengths no single note shows,
   is written as MEI by :mod:`toolkit.music.mei` from our own reading, and verovio draws that.
3. Anything else (chords, grace notes, key changes, several voices...) goes music21 ->
   MusicXML -> verovio. music21 takes ~40 ms to read a tune and as long again to write
   MusicXML, so this path is several times slower (and its import adds 32 MB to a kernel).
   music21's reading -- the one the MusicXML and MIDI files are written from too -- is
   checked against ours as well, note by note (~2 ms, :func:`toolkit.music.m21.music21_score`):
   where it differs in pitch or time, an :class:`ABCError` names the first difference rather
   than a wrong score or file.

A tie is drawn only where our reading joins two notes of one pitch (``A2-z2`` and ``c2-d2``
sound two notes, and are drawn without a tie).

The same input gives the same SVG, byte for byte (``xmlIdChecksum``). Systems wrap to the
width asked for, all on one page. verovio's own messages are switched off; when it cannot read
something the error says so.

Surprisal colouring (``color_by_surprisal=True``) paints each note and rest -- head, stem and
flag; beams stay black -- by the probability the model gave it, on a log scale from 1 % (and
below) to 100 %, with a colour key under the score. The k-th note or rest of the score takes
the k-th pitch or rest token. A tied note is two notes, each coloured by its own token; notes
the model was given rather than sampled are grey. Chords (which the generator does not write)
can be coloured only when the engraving shows one note head per token, in the order it lists
them; when the heads and the tokens do not pair up, a ValueError says so.
"""

from __future__ import annotations

import functools
import math
import re
import threading
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from toolkit.music.m21 import music21_score, musicxml
from toolkit.music.mei import mei as mei_text
from toolkit.music.mei import shown
from toolkit.music.reader import ABCError, Measure, ParsedTune, ending_spans
from toolkit.music.tokens import NATURAL_SEMITONE

if TYPE_CHECKING:
    from toolkit.music.tune import Tune

__all__ = ["svg", "engrave", "probability_color", "paint_notes", "legend_svg", "COLORMAP",
           "SCALE"]

#: verovio's scale in percent: 40 gives a staff about 1 cm high on a laptop screen.
SCALE = 40
#: the colormap for surprisal colouring (matplotlib's, colour-blind safe), and the part of it
#: used: from 100 % (dark, like ordinary ink) to 1 % (bright orange, standing out).
COLORMAP = "inferno"
_COLOR_RANGE = (0.0, 0.72)
_GIVEN = "#a0a0a0"  # notes the model was given, not asked for
_LOWEST = 0.01  # probabilities below 1 % get the 1 % colour

_lock = threading.Lock()
_toolkit: Any = None


def _verovio() -> Any:
    """The module's verovio toolkit, made on first use (reusing it saves ~2 ms a score)."""
    global _toolkit
    if _toolkit is None:
        import verovio

        verovio.enableLog(verovio.LOG_OFF)
        _toolkit = verovio.toolkit()
    return _toolkit


# ---------------------------------------------------------------------------------------------
# Display key
# ---------------------------------------------------------------------------------------------

_INTERVALS = {1: "m2", 2: "M2", 3: "m3", 4: "M3", 5: "P4", 6: "A4", 7: "P5", 8: "m6", 9: "M6",
              10: "m7", 11: "M7", 12: "P8"}
_LETTERS = "CDEFGAB"
_PITCH_CLASS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_ALTER = {"": 0, "#": 1, "x": 2, "##": 2, "b": -1, "bb": -2}


def _interval(steps: int, semitones: int) -> str:
    """The name of an interval ``steps`` letters and ``semitones`` wide, like ``"m3"``.

    >>> _interval(2, 3), _interval(3, 6), _interval(0, 0)
    ('m3', 'A4', 'P1')
    """
    number = steps + 1
    if number in (1, 4, 5, 8):
        base = {1: 0, 4: 5, 5: 7, 8: 12}[number]
        names = {0: "P", 1: "A", 2: "AA", -1: "d", -2: "dd"}
    else:
        base = {2: 2, 3: 4, 6: 9, 7: 11}[number]
        names = {0: "M", -1: "m", 1: "A", 2: "AA", -2: "d", -3: "dd"}
    return names[semitones - base] + str(number)


def _transposition(key: str | int | None, tonic: str = "C") -> str:
    """verovio's ``transpose`` option (an interval) to show a tune whose key note is ``tonic``
    in the key of ``key``; validates ``key``.

    A tonic moves the shorter way unless it starts with ``+`` (up) or ``-`` (down).

    >>> _transposition("G", "Bb"), _transposition("+G", "Bb"), _transposition(-3, "D")
    ('-m3', '+M6', '-m3')
    >>> _transposition("+M2", "D"), _transposition(None, "D"), _transposition("D", "D")
    ('+M2', '', '')
    """
    problem = (f"key={key!r}: give a tonic such as 'G', 'Bb' or '-F#' (down), an interval "
               "such as '+M2' or '-m3', or a number of semitones from -24 to 24")
    if key is None:
        return ""
    if isinstance(key, bool) or not isinstance(key, int | str):
        raise ValueError(problem)
    if isinstance(key, int):
        if not -24 <= key <= 24:
            raise ValueError(problem)
        if key == 0:
            return ""
        octaves, step = divmod(abs(key), 12)
        name = _INTERVALS[step] if step else "P8"
        if step and octaves:
            name = name[0] + str(int(name[1:]) + 7 * octaves)
        elif not step and octaves > 1:
            name = "P15"
        return ("-" if key < 0 else "+") + name
    text = key.strip()
    if re.fullmatch(r"[+-]?(P|M|m|d+|A+)\d{1,2}", text):
        return text if text[0] in "+-" else "+" + text
    target = re.fullmatch(r"([+-]?)([A-G])(#|b|x|##|bb)?", text)
    source = re.match(r"([A-G])(#|b)?", tonic)
    if target is None or source is None:
        raise ValueError(problem)
    direction, letter, accidental = target.group(1), target.group(2), target.group(3) or ""
    steps = (_LETTERS.index(letter) - _LETTERS.index(source.group(1))) % 7
    semitones = (_PITCH_CLASS[letter] + _ALTER[accidental] - _PITCH_CLASS[source.group(1)]
                 - _ALTER[source.group(2) or ""]) % 12
    if steps == 0 and semitones > 6:
        semitones -= 12  # the same letter a semitone lower: an augmented unison down
    if steps == 0 and semitones == 0:
        return ""
    up = _interval(steps, semitones) if steps else _interval(0, abs(semitones))
    down = _interval((7 - steps) % 7, (12 - semitones) % 12) if steps else up
    if steps == 0:
        return ("-" if semitones < 0 else "+") + up
    if direction == "+" or (not direction and semitones <= 6):
        return "+" + up
    return "-" + down


# ---------------------------------------------------------------------------------------------
# Engraving
# ---------------------------------------------------------------------------------------------


def _options(width: int, transpose: str, input_from: str) -> dict[str, Any]:
    """Every option we set, every time: a reused toolkit must behave like a fresh one."""
    return {
        "inputFrom": input_from,
        "xmlIdChecksum": True,
        "scale": SCALE,
        "pageWidth": max(100, round(width * 100 / SCALE)),
        "pageHeight": 60000,  # verovio's largest: every system on one page
        "adjustPageHeight": True,
        "pageMarginTop": 30,
        "pageMarginBottom": 30,
        "pageMarginLeft": 40,
        "pageMarginRight": 40,
        "breaks": "auto",
        "header": "auto",
        "footer": "none",
        "transpose": transpose,
    }


_MEI_TAG = re.compile(r"<(/?)(measure|note|rest|tuplet|accid|chord|space|mRest|multiRest|"
                      r"beatRpt|halfmRpt|mRpt|graceGrp|bTrem|fTrem)\b([^>]*)>")
_MEI_ACCID = {"s": 1, "f": -1, "n": 0, "ss": 2, "x": 2, "ff": -2}
_MEI_STEP = {letter.lower(): s for letter, s in NATURAL_SEMITONE.items()}


def _mei_reading(mei: str) -> list[tuple[Fraction, int | None, bool]] | None:
    """verovio's reading of a tune, from its MEI: every note and rest in order as (length in
    quarter notes, MIDI pitch or None, ends a tie?), or None when the MEI holds something our
    reading never writes (chords, grace notes, spaces...).

    Lengths come from ``dur``, ``dots`` and the enclosing tuplets; pitches from ``pname``,
    ``oct``, the key signature and the written accidentals, which hold to the end of the bar in
    their octave; a note at the end of a tie sounds the pitch it is tied from. A tie that does
    not join a note to the next one, of the same pitch, is something our reading never writes
    (verovio's ABC reader draws ``A2-z2 A4`` and ``c2-d2`` with ties that nothing plays).
    """
    ties = {end: start for start, end in re.findall(
        r'<tie\b[^>]*\bstartid="#?([^"]+)"[^>]*\bendid="#?([^"]+)"', mei)}
    if len(ties) != mei.count("<tie "):
        return None  # a tie drawn from or to nothing we can name
    # the key signature: verovio's own accid.ges cannot be trusted (its ABC reader keeps the
    # last tune's sharps for a tune in C), so pitches are worked out from keysig
    keysig = re.search(r'<scoreDef\b[^>]*\bkeysig="(\d)([sf])"', mei)
    count = int(keysig.group(1)) if keysig else 0
    order = "fcgdaeb" if keysig and keysig.group(2) == "s" else "beadgcf"
    in_key = {step: (1 if keysig and keysig.group(2) == "s" else -1) for step in order[:count]}
    reading: list[tuple[Fraction, int | None, bool]] = []
    tuplets: list[Fraction] = []
    held: dict[tuple[str, str], int] = {}  # accidentals written earlier in the bar
    note: list[Any] | None = None  # [step, written accidental, ends a tie] of an open <note>
    last: tuple[str | None, tuple[str, str] | None] = (None, None)  # the last note's id, step
    section = mei.find("<section")

    def sound() -> bool:  # the open note, now that its <accid> children are read
        (pname, octave), written, tied = note
        if written in _MEI_ACCID:
            held[(pname, octave)] = _MEI_ACCID[written]
        alter = held.get((pname, octave), in_key.get(pname, 0))
        pitch = 12 * (int(octave) + 1) + _MEI_STEP[pname] + alter
        if tied and last[1] == (pname, octave) and written not in _MEI_ACCID:
            pitch = reading[-2][1]  # a tie carries its accidental
        reading[-1] = (reading[-1][0], pitch, tied)
        return not tied or pitch == reading[-2][1]

    for m in _MEI_TAG.finditer(mei, max(section, 0)):
        closing, name, attrs = m.group(1), m.group(2), m.group(3)
        a = dict(re.findall(r'([\w.:]+)="([^"]*)"', attrs))
        if note is not None and name != "accid":
            if not sound():
                return None
            note = None
        if name == "measure":
            held = {}
        elif name == "tuplet":
            if closing:
                tuplets.pop()
            else:
                tuplets.append(Fraction(int(a.get("numbase", 2)), int(a.get("num", 3))))
        elif name in ("note", "rest") and not closing:
            whole_notes = {"breve": Fraction(2), "long": Fraction(4)}.get(a.get("dur", ""))
            if whole_notes is None and a.get("dur", "").isdigit() and int(a["dur"]) > 0:
                whole_notes = Fraction(1, int(a["dur"]))
            if "grace" in a or whole_notes is None:
                return None
            dots = int(a.get("dots", 0))
            length = 4 * whole_notes * (2 - Fraction(1, 2**dots))
            for ratio in tuplets:
                length *= ratio
            ident = a.get("xml:id")
            if ident in ties and (name == "rest" or ties[ident] != last[0]):
                return None  # a tie to a rest, or past the next note
            reading.append((length, None, False))
            last = (ident, None)
            if name == "note":
                step = (a.get("pname", ""), a.get("oct", ""))
                if step[0] not in _MEI_STEP or not step[1].lstrip("-").isdigit():
                    return None
                note = [step, a.get("accid"), ident in ties]
                last = (ident, step)
        elif name == "accid" and note is not None and not closing:
            note[1] = a.get("accid", note[1])  # the accidental of the open note
        elif name not in ("accid", "note", "rest"):
            return None  # something our reading does not write: chords, spaces...
    if note is not None and not sound():
        return None
    return reading


def _mei_agrees(mei: str, parsed: ParsedTune) -> bool:
    """Does verovio's reading (its MEI) hold every note and rest of ours, with the same pitch
    and length, in the same order, tied where our reading joins a note to the one before?"""
    reading = _mei_reading(mei)
    if reading is None or len(reading) != len(parsed.events):
        return False
    starts = {(n.pitch, n.onset) for n in parsed.notes}  # a joined note starts no sound
    return all(length == event.duration and (pitch is None) == (not event.pitches)
               and (pitch is None or (pitch == event.pitches[0] and tied == (
                   (pitch, float(event.onset)) not in starts)))
               for (length, pitch, tied), event in zip(reading, parsed.events, strict=True))


def _mei_sounds(mei: str, parsed: ParsedTune) -> bool:
    """Does verovio's reading (its MEI) sound every note of ours, ties joined, at the same
    time for as long? (For our own MEI, where one of our notes may be several tied.)"""
    reading = _mei_reading(mei)
    if reading is None:
        return False
    sounds: list[list[Any]] = []  # [pitch, onset, duration]
    time = Fraction(0)
    for length, pitch, tied in reading:
        if pitch is not None:
            last = sounds[-1] if sounds else None
            if tied and last is not None and last[0] == pitch and last[1] + last[2] == time:
                last[2] += length
            else:
                sounds.append([pitch, time, length])
        time += length
    return time == parsed.length and len(sounds) == len(parsed.notes) and all(
        p == n.pitch and math.isclose(n.onset, float(o)) and math.isclose(n.duration, float(e))
        for (p, o, e), n in zip(sounds, parsed.notes, strict=True))


def _write_bars(mei: str, measures: tuple[Measure, ...]) -> str | None:
    """Put our bar lines, repeats and endings into verovio's MEI (None if the bars differ)."""
    starts = [m for m in re.finditer(r"<measure\b[^>]*>", mei)]
    ends = [m.end() for m in re.finditer(r"</measure>", mei)]
    if len(starts) != len(measures) or len(ends) != len(measures):
        return None
    tags = []
    for m, bar in zip(starts, measures, strict=True):
        tag = re.sub(r'\s(left|right)="[^"]*"', "", m.group(0))[:-1]
        if bar.left:
            tag += f' left="{bar.left}"'
        tags.append(tag + f' right="{bar.right}">')
    spans = ending_spans(measures)
    opening = {first: label for first, _, label in spans}
    closing = {last for _, last, _ in spans}
    out, pos = [], 0
    for i, m in enumerate(starts):
        out.append(mei[pos:m.start()])
        if i in opening:
            label = re.sub(r"[^0-9,-]", "", opening[i])
            out.append(f'<ending xml:id="ending-{i}" n="{label}">')
        out.append(tags[i])
        out.append(mei[m.end():ends[i]])
        if i in closing:
            out.append("</ending>")
        pos = ends[i]
    out.append(mei[pos:])
    return "".join(out)


def _pages(tk: Any) -> str:
    """The score's SVG; pages (there should be one) are stacked if verovio made several."""
    count = tk.getPageCount()
    if count <= 1:
        return tk.renderToSVG(1)
    pages = [tk.renderToSVG(n) for n in range(1, count + 1)]
    sizes = [_size(p) for p in pages]
    width = max(w for w, _ in sizes)
    height = sum(h for _, h in sizes)
    parts, y = [], 0.0
    for page, (_, h) in zip(pages, sizes, strict=True):
        parts.append(f'<g transform="translate(0,{y:g})">{page}</g>')
        y += h
    return (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
            f'width="{width:g}px" height="{height:g}px" viewBox="0 0 {width:g} {height:g}">'
            + "".join(parts) + "</svg>")


def _size(svg_text: str) -> tuple[float, float]:
    """The width and height in pixels of an SVG's root element."""
    root = svg_text[: svg_text.index(">")]
    width = re.search(r'\swidth="([\d.]+)(px)?"', root)
    height = re.search(r'\sheight="([\d.]+)(px)?"', root)
    if width is None or height is None:
        raise ValueError("the SVG has no width and height")
    return float(width.group(1)), float(height.group(1))


def _reading(tk: Any, data: str, input_from: str, width: int) -> str:
    """verovio's reading of a tune as MEI ("" if it cannot read it); this load only reads the
    notes, so it skips the layout."""
    reading = _options(width, "", input_from)
    reading["breaks"] = "none"
    tk.setOptions(reading)
    return tk.getMEI() if tk.loadData(data) else ""


def _drawn(tk: Any, mei: str, parsed: ParsedTune, width: int, transpose: str) -> str | None:
    """The SVG of an MEI reading with our bar lines, repeats and endings written in (None when
    its bars are not ours, or verovio cannot load it)."""
    mei = _write_bars(mei, parsed.measures)
    if mei is None:
        return None
    tk.setOptions(_options(width, transpose, "mei"))
    return _pages(tk) if tk.loadData(mei) else None


def engrave(parsed: ParsedTune, *, width: int = 800, key: str | int | None = None,
            score: Any = None) -> tuple[str, str]:
    """Engrave a read tune: (SVG text, the way it went: ``"abc"``, ``"mei"`` or
    ``"musicxml"``).

    ``score`` is music21's reading of the tune, or a function that makes it; it is needed only
    when neither verovio's ABC reader nor our MEI can take the tune. See the module's docstring
    for the three ways.
    """
    if isinstance(width, bool) or not isinstance(width, int) or not 200 <= width <= 4000:
        raise ValueError(f"width={width!r}: give a whole number of pixels from 200 to 4000")
    tonic = re.match(r"\s*([A-G][#b]?)", parsed.key)
    transpose = _transposition(key, tonic.group(1) if tonic else "C")
    tk = _verovio()
    if parsed.verovio_abc is not None:
        with _lock:
            mei = _reading(tk, parsed.verovio_abc, "abc", width)
            if _mei_agrees(mei, parsed):
                # verovio dates its MEI to the second, and seeds the ids from the whole text;
                # its ABC reader carries the last tune's key into the gestural accidentals
                mei = re.sub(r'\sisodate="[^"]*"', "", mei)
                drawn = _drawn(tk, re.sub(r'\saccid\.ges="[^"]*"', "", mei), parsed, width,
                               transpose)
                if drawn is not None:
                    return drawn, "abc"
    ours = mei_text(parsed)
    if ours is not None:
        with _lock:  # verovio's reading of our MEI is checked as its reading of ABC is
            if _mei_sounds(_reading(tk, ours, "mei", width), parsed):
                drawn = _drawn(tk, ours, parsed, width, transpose)
                if drawn is not None:
                    return drawn, "mei"
    if callable(score):
        score = score()
    if score is None:
        score = music21_score(parsed)
    try:
        xml = musicxml(score).decode("utf-8")
    except ABCError as err:
        err.abc = parsed.text
        raise
    xml = re.sub(r"<encoding-date>[^<]*</encoding-date>", "", xml)  # the ids follow the text
    with _lock:
        tk.setOptions(_options(width, transpose, "musicxml"))
        if not tk.loadData(xml):
            raise ABCError("verovio could not engrave this tune", abc=parsed.text)
        return _pages(tk), "musicxml"


def svg(tune: Tune, *, width: int = 800, key: str | int | None = None,
        color_by_surprisal: bool = False, note_colors: list[str | None] | None = None) -> str:
    """The tune's score as SVG text, ``width`` pixels wide (it scales down in narrow cells).

    ``key`` shows it in another key: a tonic (``"G"``, ``"Bb"``, ``"-F#"`` to go down), an
    interval (``"+M2"``, ``"-m3"``) or semitones (``-2``). With ``color_by_surprisal`` every
    note and rest is coloured by the probability the model gave it, and a colour key is drawn
    under the score; the tune needs ``tokens`` and ``logprobs`` for that. ``note_colors`` paints
    the k-th note or rest (``"#rrggbb"``; None leaves it black) instead, with no key: one colour
    for each, in score order (the attention view uses it).
    """
    if color_by_surprisal and note_colors is not None:
        raise ValueError("give color_by_surprisal or note_colors, not both")
    probabilities = tune.note_probabilities() if color_by_surprisal else None
    parsed = tune.parsed
    text, _ = engrave(parsed, width=width, key=key, score=lambda: tune.score)
    width_px, height_px = _size(text)
    view = "" if "viewBox=" in text[: text.index(">")] else (
        f' viewBox="0 0 {width_px:g} {height_px:g}"')
    text = re.sub(r"^<svg\b", f'<svg style="max-width:100%;height:auto"{view}', text, count=1)
    if note_colors is not None:
        return _color_notes(text, list(note_colors), parsed, "colour the notes",
                            f"{len(note_colors)} colours were given")
    if probabilities is None:
        return text
    return _with_legend(_color_notes(text, [probability_color(p) for p in probabilities], parsed,
                                     "colour by surprisal", f"the tokens hold "
                                     f"{len(probabilities)} pitch and rest tokens"),
                        has_given=any(p is None for p in probabilities))


# ---------------------------------------------------------------------------------------------
# Surprisal colouring
# ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _palette() -> list[str]:
    """256 colours along the used part of the colormap, from 100 % to 1 %."""
    from matplotlib import colormaps

    lo, hi = _COLOR_RANGE
    colors = []
    for i in range(256):
        r, g, b, _ = colormaps[COLORMAP](lo + (hi - lo) * i / 255)
        colors.append(f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}")
    return colors


def probability_color(p: float | None) -> str:
    """The colour (``"#rrggbb"``) for a note the model gave probability ``p``.

    Log scale: 100 % is dark like ordinary ink, 10 % purple-red, 1 % and below bright orange;
    ``None`` (a given note) is grey.

    >>> probability_color(1.0), probability_color(0.01), probability_color(None)
    ('#000004', '#f68013', '#a0a0a0')
    """
    if p is None:
        return _GIVEN
    p = min(max(float(p), _LOWEST), 1.0) if not math.isnan(p) else _LOWEST
    surprise = math.log(p) / math.log(_LOWEST)  # 0 at 100 %, 1 at 1 %
    return _palette()[round(255 * surprise)]


def paint_notes(score_svg: str, tune: Tune, colors: list[str | None]) -> str:
    """An engraved score (``tune.svg()``) with its k-th note or rest painted ``colors[k]``
    (None leaves it): repaint one engraving many times without engraving it again."""
    return _color_notes(score_svg, list(colors), tune.parsed, "colour the notes",
                        f"{len(colors)} colours were given")


def _color_notes(text: str, colors: list[str | None], parsed: ParsedTune, what: str,
                 given: str) -> str:
    """Paint the k-th note or rest of the SVG with the k-th colour (None: leave it); ``what``
    and ``given`` word the error (what was tried, how many colours came)."""
    heads = list(re.finditer(r'<g id="[^"]+" class="(note|rest)"', text))
    written = sum(len(ev.pitches) or 1 for ev in parsed.events)
    if len(colors) != written:
        raise ValueError(f"cannot {what}: the score has {written} notes and rests but {given}")
    if len(heads) != len(colors) and parsed.written is not None:
        # our MEI draws a long note as tied notes: each takes the colour of the note
        parts = [len(shown(w) or ()) for bar in parsed.written for w in bar]
        if len(parts) == len(colors) and sum(parts) == len(heads):
            colors = [c for c, n in zip(colors, parts, strict=True) for _ in range(n)]
    if len(heads) != len(colors):
        raise ValueError(f"cannot {what}: the engraving shows {len(heads)} notes "
                         f"and rests for {len(colors)} tokens (music21 split some notes)")
    out, pos = [], 0
    for m, color in zip(heads, colors, strict=True):
        out.append(text[pos:m.end()])
        if color is not None:
            out.append(f' fill="{color}" color="{color}"')
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)


def legend_svg(width: float, *, has_given: bool = False, name: str = "") -> str:
    """The colour key drawn under a coloured score: "note probability: 1 % ... 100 %".

    ``name`` makes the gradient's id unique on a page that shows several scores.
    """
    gradient = f"folk-sampler-surprisal{'-' + name if name else ''}"
    bar_x, bar_w, bar_y, bar_h = 130.0, min(260.0, max(120.0, width - 330.0)), 8.0, 12.0
    stops = []
    for i in range(11):
        p = _LOWEST ** (1 - i / 10)  # left 1 %, right 100 %
        stops.append(f'<stop offset="{i / 10:g}" stop-color="{probability_color(p)}"/>')
    ticks = []
    for p, label in ((0.01, "≤1%"), (0.1, "10%"), (1.0, "100%")):
        x = bar_x + bar_w * (1 - math.log(p) / math.log(_LOWEST))
        ticks.append(f'<line x1="{x:g}" y1="{bar_y + bar_h:g}" x2="{x:g}" '
                     f'y2="{bar_y + bar_h + 4:g}" stroke="#333"/>'
                     f'<text x="{x:g}" y="{bar_y + bar_h + 15:g}" text-anchor="middle">'
                     f"{label}</text>")
    given = ""
    if has_given:
        gx = bar_x + bar_w + 30
        given = (f'<rect x="{gx:g}" y="{bar_y:g}" width="12" height="{bar_h:g}" '
                 f'fill="{_GIVEN}"/><text x="{gx + 18:g}" y="{bar_y + 10:g}">given, '
                 "not sampled</text>")
    return (f'<g class="legend" font-family="sans-serif" font-size="12" fill="#333">'
            f'<defs><linearGradient id="{gradient}">{"".join(stops)}'
            f"</linearGradient></defs>"
            f'<text x="{bar_x - 8:g}" y="{bar_y + 10:g}" text-anchor="end">note probability'
            f"</text>"
            f'<rect x="{bar_x:g}" y="{bar_y:g}" width="{bar_w:g}" height="{bar_h:g}" '
            f'fill="url(#{gradient})" stroke="#666" stroke-width="0.5"/>'
            f'{"".join(ticks)}{given}</g>')


def _with_legend(score_svg: str, *, has_given: bool) -> str:
    """Stack the score and its colour key into one SVG."""
    width, height = _size(score_svg)
    legend_height = 44.0
    root_id = re.search(r'\sid="([^"]+)"', score_svg[: score_svg.index(">")])
    name = root_id.group(1) if root_id else ""
    inner = re.sub(r'^<svg style="[^"]*"( viewBox="[^"]*")?', "<svg", score_svg, count=1)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
            f'style="max-width:100%;height:auto" width="{width:g}px" '
            f'height="{height + legend_height:g}px" '
            f'viewBox="0 0 {width:g} {height + legend_height:g}">{inner}'
            f'<g transform="translate(0,{height:g})">'
            f'{legend_svg(width, has_given=has_given, name=name)}'
            f"</g></svg>")
