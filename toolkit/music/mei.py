"""A tune's score as MEI, written from our own reading of its ABC.

verovio's ABC reader takes most tunes as they are (:mod:`toolkit.music.render` checks its
reading note by note), but a generated tune at a high temperature soon holds something it
reads differently -- a broken rhythm after a dotted note (``c3>A``), a tuplet cut off by a bar
line -- or a length that reader cannot take as one note (``E5``, five eighths; ``E24``). Such a
tune is written here as MEI, bar by bar, from :attr:`ParsedTune.written`: the pitches spelt as
the ABC spells them, the lengths our reader gave them, a long note as tied notes cut where it
crosses the beat (``E5`` in 6/8: a dotted quarter and a quarter), tuplets and beams on the
beat. verovio then engraves the MEI. It is plain string work, linear in the tune: no other
reader is needed (music21's import alone costs a kernel 32 MB), and no input can make it slow.

    >>> from toolkit.music.reader import parse_abc
    >>> text = mei(parse_abc("X:1\\nM:4/4\\nL:1/8\\nK:G\\nc3>A E12 |]"))
    >>> text.count("<note "), text.count("<tie ")
    (4, 1)

A tune with slurs, decorations or chord symbols is not written here (music21 draws those);
repeats and endings are put in by the renderer, as for verovio's own reading.
"""

from __future__ import annotations

import hashlib
from fractions import Fraction
from typing import Any
from xml.sax.saxutils import escape

from toolkit.music.reader import ParsedTune, Written

__all__ = ["mei", "note_values", "shown"]

# every note value MEI can write as one note: (quarter notes, dur, dots), longest first
_VALUES = sorted(
    ((Fraction(4, int(dur)) if dur.isdigit() else Fraction({"breve": 8, "long": 16}[dur]))
     * (2 - Fraction(1, 2**dots)), dur, dots)
    for dur in ("long", "breve", "1", "2", "4", "8", "16", "32", "64", "128")
    for dots in (0, 1, 2))[::-1]
_ACCID = {"^": "s", "_": "f", "=": "n", "^^": "x", "__": "ff"}
_METER_SYMBOLS = {"C": ' count="4" unit="4" sym="common"', "C|": ' count="2" unit="2" sym="cut"'}


def note_values(length: Fraction) -> list[tuple[str, int]] | None:
    """The notes, tied, that show ``length`` quarter notes: [(dur, dots), ...], longest first
    (None when no sum of note values down to a 128th makes it).

    >>> note_values(Fraction(5, 2))
    [('2', 0), ('8', 0)]
    """
    parts: list[tuple[str, int]] = []
    left = length
    for value, dur, dots in _VALUES:
        while left >= value:
            parts.append((dur, dots))
            left -= value
    return parts if left == 0 and parts else None


def shown(w: Written) -> list[tuple[str, int]] | None:
    """The notes, tied, that draw ``w``: one per length of ``w.split`` (a long note cut where
    it crosses the beat), or several where no one note value shows that length (None when no
    sum of them does)."""
    parts: list[tuple[str, int]] = []
    for length in w.split:
        values = note_values(length)
        if values is None:
            return None
        parts += values
    return parts


def _notes(w: Written, parts: list[tuple[str, int]], ids: list[Any],
           ties: list[int]) -> list[str]:
    """The MEI elements of one note or rest, in tied parts when there are several. ``ids``
    holds the number of the last note written; ``ties`` gets the notes that tie to the next
    (the next note in the tune: a tie joins neighbours)."""
    out = []
    for j, (dur, dots) in enumerate(parts):
        attrs = f' dur="{dur}"' + (f' dots="{dots}"' if dots else "")
        if w.step is None:
            out.append(f"<rest{attrs}/>")
            continue
        letter, octave, accidental = w.step
        if j == 0 and accidental:
            attrs += f' accid="{_ACCID[accidental]}"'
        ids[0] += 1
        if j < len(parts) - 1 or w.tied:
            ties.append(ids[0])
        out.append(f'<note xml:id="{ids[1]}{ids[0]}" pname="{letter}" oct="{octave}"{attrs}/>')
    return out


def _bar(bar: tuple[Written, ...], ids: list[Any]) -> str | None:
    """One measure: notes and rests, in tuplets and beams, then the ties that start in it."""
    out: list[str] = []
    ties: list[int] = []
    beam: list[str] = []
    beam_key: tuple[int, int] | None = None
    tuplets = 0  # tuplets opened in this bar; the one open is the last
    in_tuplet = False

    def flush() -> None:
        out.append(f"<beam>{''.join(beam)}</beam>" if len(beam) > 1 else "".join(beam))
        beam.clear()

    for w in bar:
        if in_tuplet and (w.tuplet is None or w.opens):
            flush()
            out.append("</tuplet>")
            in_tuplet = False
        if w.tuplet is not None and not in_tuplet:
            flush()
            tuplets += 1
            out.append(f'<tuplet num="{w.tuplet[0]}" numbase="{w.tuplet[1]}">')
            in_tuplet = True
        parts = shown(w)
        if parts is None:
            return None
        notes = _notes(w, parts, ids, ties)
        key = (w.beat, tuplets if in_tuplet else 0)
        if w.step is not None and len(parts) == 1 and w.length < 1:  # a beamed note
            if key != beam_key:
                flush()
                beam_key = key
            beam.extend(notes)
        else:
            flush()
            beam_key = None
            out.extend(notes)
    flush()
    if in_tuplet:
        out.append("</tuplet>")
    # a tie may join notes of two spellings (^a-_b holds one pitch), so ties are elements
    return ('<measure right="single"><staff n="1"><layer n="1">'  # no n: no bar numbers
            + "".join(out) + "</layer></staff>"
            + "".join(f'<tie startid="#{ids[1]}{i}" endid="#{ids[1]}{i + 1}"/>' for i in ties)
            + "</measure>")


def mei(parsed: ParsedTune) -> str | None:
    """The tune as MEI text, bar lines all single (``None`` when :attr:`ParsedTune.written`
    is, or a length is no sum of note values)."""
    if parsed.written is None or len(parsed.written) != len(parsed.measures):
        return None
    # [notes so far, the ids' prefix]: the prefix follows the text, so two scores on one page
    # do not share ids (verovio's own ids follow the text too)
    measures = []
    ids: list[Any] = [0, "n" + hashlib.sha1(parsed.text.encode("utf-8")).hexdigest()[:8] + "-"]
    for bar in parsed.written:
        measure = _bar(bar, ids)
        if measure is None:
            return None
        measures.append(measure)
    meter = _METER_SYMBOLS.get(parsed.meter or "")
    if meter is None and parsed.meter and "/" in parsed.meter:
        count, unit = parsed.meter.split("/", 1)
        meter = f' count="{count}" unit="{unit}"'
    title = escape(parsed.title)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<mei xmlns="http://www.music-encoding.org/ns/mei" meiversion="5.0">'
            f"<meiHead><fileDesc><titleStmt><title>{title}</title></titleStmt><pubStmt/>"
            "</fileDesc></meiHead><music><body><mdiv><score>"
            f'<scoreDef keysig="{parsed.keysig}">'
            + (f'<pgHead><rend halign="center" valign="middle">{title}</rend></pgHead>'
               if title else "")
            + '<staffGrp><staffDef n="1" lines="5"><clef shape="G" line="2"/>'
            + (f"<meterSig{meter}/>" if meter else "")
            + "</staffDef></staffGrp></scoreDef><section>"
            + "".join(measures)
            + "</section></score></mdiv></body></music></mei>\n")
