"""Engraving with verovio, surprisal colouring, and the MusicXML and MIDI exports."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from toolkit import render
from toolkit.music import m21
from toolkit.music.reader import ABCError
from toolkit.music.tune import Tune

ROOT = Path(__file__).resolve().parent.parent

# 19 notes and 2 rests, with a tie, a triplet, broken rhythm, an accidental, repeats and endings
FIXED = """X:1
T:Fixed
M:4/4
L:1/8
K:D
|:A2 FA d2 cB|(3ABA G>F E2 z2|1 ^G4- G2 z2:|2 d4 ABcd||
"""
FIXED_NOTES, FIXED_RESTS = 19, 2

# 32 bars of reel, with a pickup, repeats and two endings in each part (shared with the benchmark)
REEL = (ROOT / "benchmarks" / "data" / "reel_32_bars.abc").read_text().rstrip("\n")


def count(svg: str, css_class: str) -> int:
    return svg.count(f'class="{css_class}"')


def test_every_note_gets_a_note_head():
    svg = Tune.from_abc(FIXED).svg()
    assert count(svg, "notehead") == FIXED_NOTES
    assert count(svg, "note") == FIXED_NOTES
    assert count(svg, "rest") == FIXED_RESTS
    assert count(svg, "tie") == 1 and count(svg, "tuplet") == 1
    assert count(svg, "ending systemMilestone") == 2


def test_the_svg_is_well_formed_xml_of_the_width_asked_for():
    svg = Tune.from_abc(FIXED).svg(width=640)
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("width") == "640px"
    assert "max-width:100%" in root.get("style")
    with pytest.raises(ValueError, match="width="):
        Tune.from_abc(FIXED).svg(width=50)


def test_a_long_tune_wraps_and_shows_every_bar():
    tune = Tune.from_abc(REEL)
    svg = tune.svg()
    written = len(tune.parsed.measures)
    assert written == 38  # four parts of eight bars, two pickups, four second endings
    assert count(svg, "measure") == written
    assert count(svg, "note") == sum(len(e.pitches) for e in tune.parsed.events)
    assert count(svg, "system") >= 5
    assert count(svg, "ending systemMilestone") == 8
    narrow = tune.svg(width=500)
    assert count(narrow, "measure") == written
    assert count(narrow, "system") > count(svg, "system")


def test_the_same_tune_gives_the_same_svg_bytes():
    one = Tune.from_abc(FIXED).svg()
    Tune.from_abc(REEL).svg()  # another tune in between
    Tune.from_abc(REEL).svg(key="A")
    assert Tune.from_abc(FIXED).svg() == one


@pytest.mark.parametrize("abc", [FIXED, "X:1\nT:Rich\nM:3/4\nL:1/8\nK:G\n{A}B2 [GBd]2 c2|d6|]"],
                         ids=["verovio-abc", "music21-musicxml"])
def test_the_same_svg_bytes_from_fresh_processes_seconds_apart(abc):
    script = ("import sys; from toolkit.music.tune import Tune; "
              "sys.stdout.write(Tune.from_abc(sys.stdin.read()).svg())")
    runs = []
    for _ in range(2):
        runs.append(subprocess.run([sys.executable, "-c", script], input=abc,
                                   capture_output=True, text=True, check=True,
                                   timeout=120).stdout)
        time.sleep(1.1)  # verovio dates its MEI to the second: the date must not matter
    assert runs[0] == runs[1] == Tune.from_abc(abc).svg()


def test_plain_tunes_go_to_verovio_as_abc_and_others_through_music21():
    plain = Tune.from_abc(FIXED)
    assert render.engrave(plain.parsed)[1] == "abc"
    rich = Tune.from_abc("X:1\nT:Rich\nM:3/4\nL:1/8\nK:G\n{A}B2 [GBd]2 c2|d6|]")
    svg, way = render.engrave(rich.parsed, score=lambda: rich.score)
    assert way == "musicxml"
    assert count(svg, "note") == 1 + 1 + 3 + 1 + 1  # grace, B, the chord's three, c, d


def key_accidentals(svg: str) -> tuple[int, str]:
    """How many sharps or flats the first key signature has, and which."""
    first = svg.split('class="keySig"', 1)[1].split('class="layer"', 1)[0]
    glyphs = re.findall(r'xlink:href="#(E26[02])', first)
    return len(glyphs), {"E262": "sharp", "E260": "flat", None: ""}[glyphs[0] if glyphs else None]


@pytest.mark.parametrize(("key", "shown", "expected"), [
    ("D", None, (2, "sharp")),
    ("D", "G", (1, "sharp")),
    ("D", "-F", (1, "flat")),
    ("Bb", "G", (1, "sharp")),      # the tonic's flat counts: Bb to G is down a minor third
    ("F#m", "A", (0, "")),          # A minor
    ("Ador", "E", (2, "sharp")),    # E dorian
    ("D", "+M2", (4, "sharp")),     # E major
    ("D", -2, (0, "")),             # C major
])
def test_the_score_can_be_shown_in_another_key(key, shown, expected):
    tune = Tune.from_abc(f"X:1\nM:4/4\nL:1/8\nK:{key}\nFGAB cdef|]")
    assert key_accidentals(tune.svg(key=shown)) == expected


@pytest.mark.parametrize("bad", ["H", "G major", "++M2", 99, 2.5, True])
def test_a_bad_display_key_is_refused(bad):
    with pytest.raises(ValueError, match="key="):
        Tune.from_abc(FIXED).svg(key=bad)


# ---------------------------------------------------------------------------------------------
# Surprisal colouring
# ---------------------------------------------------------------------------------------------


def generated_tune() -> Tune:
    """FIXED as a model would hand it over: folk-rnn tokens with made-up log-probabilities."""
    tokens = ("<s> M:4/4 K:maj |: A 2 F A d 2 c B | (3 A B A G > F E 2 z 2 [1 ^G 4 - G 2 z 2 :| "
              "[2 d 4 A B c d ||").split()
    logprobs: list[float | None] = [None, None, None]
    for i, tok in enumerate(tokens[3:]):
        logprobs.append(math.log(0.9) if tok in ("|", "2", "4") else math.log(0.005 + (i % 7) / 7))
    return Tune(abc=FIXED, tokens=tokens, logprobs=logprobs)


def test_surprisal_colours_every_note_and_rest_and_draws_a_key():
    tune = generated_tune()
    probabilities = tune.note_probabilities()
    assert len(probabilities) == FIXED_NOTES + FIXED_RESTS
    svg = tune.svg(color_by_surprisal=True)
    ET.fromstring(svg)  # still well-formed
    painted = re.findall(r'<g id="[^"]+" class="(?:note|rest)" fill="(#[0-9a-f]{6})"', svg)
    assert painted == [render.probability_color(p) for p in probabilities]
    assert 'class="legend"' in svg and "note probability" in svg
    assert "linearGradient" in svg and "100%" in svg and "1%" in svg
    assert "given, not sampled" not in svg


def test_surprisal_colours_run_from_dark_to_bright():
    sure, unsure = render.probability_color(1.0), render.probability_color(0.01)
    assert sure != unsure
    assert render.probability_color(0.001) == unsure  # 1 % and below look alike
    assert render.probability_color(None) == "#a0a0a0"

    def brightness(color: str) -> int:
        return sum(int(color[i:i + 2], 16) for i in (1, 3, 5))

    assert brightness(sure) < brightness(render.probability_color(0.1)) < brightness(unsure)


def test_given_notes_are_grey_and_named_in_the_key():
    tune = generated_tune()
    tune.logprobs = [None if tok == "A" else lp for tok, lp in zip(tune.tokens, tune.logprobs,
                                                                    strict=True)]
    svg = tune.svg(color_by_surprisal=True)
    assert 'fill="#a0a0a0"' in svg and "given, not sampled" in svg


def test_colouring_needs_probabilities_that_fit_the_score():
    with pytest.raises(ValueError, match="no token probabilities"):
        Tune.from_abc(FIXED).svg(color_by_surprisal=True)
    short = generated_tune()
    short.tokens, short.logprobs = short.tokens[:-3], short.logprobs[:-3]
    with pytest.raises(ValueError, match="21 notes and rests but the tokens hold 19"):
        short.svg(color_by_surprisal=True)


# ---------------------------------------------------------------------------------------------
# MusicXML and MIDI
# ---------------------------------------------------------------------------------------------


def sounding(stream) -> list[tuple[int, float, float]]:
    """(MIDI pitch, onset, length) of every note music21 hears in a stream, ties merged."""
    out = []
    for n in stream.flatten().stripTies().notes:
        for p in n.pitches:
            out.append((int(p.midi), round(float(n.offset), 3), round(float(n.quarterLength), 3)))
    return sorted(out)


def test_the_midi_file_holds_the_tunes_pitches_and_lengths(tmp_path):
    from music21 import converter

    tune = Tune.from_abc(FIXED)
    (path,) = tune.save(tmp_path, formats=["mid"])
    heard = sounding(converter.parse(path))
    # MIDI has no repeat signs: the file plays the tune as music21 reads it, repeats taken
    assert heard == sounding(tune.score.expandRepeats())
    # ... which is what the WAV plays too
    played = tune.performance()
    assert heard == sorted((n.pitch, round(n.onset, 3), round(n.duration, 3))
                           for n in played.notes)
    assert len(heard) == 30  # the first 12 notes twice, the first ending, the second ending


def test_the_musicxml_file_holds_the_tunes_pitches_and_lengths(tmp_path):
    from music21 import converter

    tune = Tune.from_abc(REEL)
    (path,) = tune.save(tmp_path, formats=["musicxml"])

    def pitches_and_lengths(stream):
        return [(int(n.pitch.midi), float(n.quarterLength))
                for n in stream.flatten().stripTies().notes]

    read_back = pitches_and_lengths(converter.parse(path))
    assert read_back == pitches_and_lengths(tune.score)
    assert read_back == [(n.pitch, n.duration) for n in tune.notes]


def test_music21_failures_become_abc_errors():
    with pytest.raises(ABCError, match="MusicXML") as caught:
        m21.musicxml(object())
    assert caught.value.abc is None


def test_in_a_notebook_music21_no_longer_turns_every_figure_retina():
    """Imported in Jupyter, music21 switches inline figures to 'retina' a second later (four
    times the pixels); the toolkit's import of it must not (toolkit.music.m21)."""
    from jupyter_client.manager import start_new_kernel

    code = {
        "toolkit": "from toolkit.music import m21; m21.load()",
        "plain": "import music21",
    }
    seen = {}
    for name, load in code.items():
        km, kc = start_new_kernel(kernel_name="python3")
        try:
            outputs = []
            kc.execute_interactive(
                "%matplotlib inline\n" + load + "\nimport time; time.sleep(2)\n"
                "from matplotlib_inline.config import InlineBackend\n"
                "print(sorted(InlineBackend.instance().figure_formats))",
                timeout=120,
                output_hook=lambda m, out=outputs: out.append(m["content"].get("text", "")))
            seen[name] = "".join(outputs).strip()
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    assert seen["plain"] == "['retina']"          # what music21 does on its own
    assert seen["toolkit"] == "['png']"           # what the toolkit's import leaves
