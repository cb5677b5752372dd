"""Overfull bars must not send music21 into minutes of re-barring (tune 145 of
`generate --n 300 --seed 1`), nor make it drop notes; slightly overfull bars still go through.
The score of such a tune no longer needs music21 at all: it is written as MEI from our reading."""
import time
from fractions import Fraction
from pathlib import Path

import pytest

from toolkit.music import m21, render
from toolkit.music.mei import shown
from toolkit.music.reader import ABCError
from toolkit.music.tune import Tune

TUNE_145 = (Path(__file__).parent / "data" / "overfull_last_bar.abc").read_text()
HEAD = "X:1\nM:2/4\nL:1/8\nK:C\n"


@pytest.mark.parametrize("abc", [
    TUNE_145,
    HEAD + "C4|C64 (3C/8|",          # overflow 721/24: ~50 s in music21
    "X:1\nM:6/2\nL:1/8\nK:C\nC24|C40 C6 C (3C/8|",   # within 2 bars of the meter: 8 s
    "X:1\nM:16/2\nL:1/8\nK:C\nC64|C64C63 (3C/8|",   # within 2 bars of the meter: ~60 s
])
def test_long_overfull_bars_are_refused_quickly(abc):
    tune = Tune.from_abc(abc)
    start = time.perf_counter()
    svg, way = render.engrave(tune.parsed, score=lambda: tune.score)
    assert way == "mei" and svg.count('class="note"') == sum(
        len(shown(w)) for bar in tune.parsed.written for w in bar
        if w.step is not None)  # every note drawn, a long one as tied notes
    assert time.perf_counter() - start < 5  # ~5-40 ms
    for export in (lambda: m21.musicxml(tune.score), lambda: m21.midi(tune.score)):
        start = time.perf_counter()
        with pytest.raises(ABCError, match="re-bar the overflow"):
            export()
        assert time.perf_counter() - start < 5  # refused in ~0.15 s; unguarded: 8 s to minutes
    assert tune.wav()  # our own reader plays it


def test_an_overflow_music21_would_drop_is_refused():
    tune = Tune.from_abc(HEAD + "C4|C4 C3 (3C/128|")  # 577/384: music21 drops 1.5 quarters
    with pytest.raises(ABCError, match="would drop its notes"):
        tune.score  # noqa: B018


@pytest.mark.parametrize("abc", [
    HEAD + "C4|C4 D|E4|]",                                  # over by an eighth
    HEAD + "CD EF|[M:12/8] C3 D3 E3 F3|G3 A3 B3 c3|]",       # a meter change, not overfull
    "X:1\nM:2/4\nL:1/16\nK:G\nE2EGB4 | ABAGE4 | B2AGA4B4\nB2G2A2B2 | G2E2G4 |",  # Essen phrase
])
def test_short_overflows_and_meter_changes_still_go_through(abc):
    tune = Tune.from_abc(abc)
    start = time.perf_counter()
    assert m21.musicxml(tune.score) and m21.midi(tune.score) and tune.svg()
    assert time.perf_counter() - start < 5  # exports in well under 1 s


def test_the_predicted_signature_is_music21s():
    assert m21._overflow_signature(Fraction(2827, 24)) == (2827, 24)
    assert m21._overflow_signature(Fraction(121, 4)) == (121, 16)
    assert m21._overflow_signature(Fraction(1)) == (1, 4)
    assert m21._overflow_signature(Fraction(2)) == (2, 4)
