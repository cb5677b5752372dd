"""The score written as MEI from our own reading (toolkit.music.mei): verovio must read back
every note we read -- pitch, onset and length, a long note as tied notes -- and a hot generated
tune must never need music21 (its import costs a kernel 32 MB)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.music import render
from toolkit.music.mei import mei, note_values
from toolkit.music.reader import parse_abc


def _verovio_hears_ours(abc: str) -> bool:
    parsed = parse_abc(abc)
    text = mei(parsed)
    assert text is not None, parsed.not_plain
    reading = render._reading(render._verovio(), text, "mei", 800)
    assert reading
    return render._mei_sounds(reading, parsed)


@given(st.fractions(min_value=Fraction(1, 32), max_value=Fraction(64))
       .map(lambda f: Fraction(round(f * 32), 32)).filter(bool))
def test_note_values_add_up_to_any_length_in_128ths(length):
    parts = note_values(length)
    assert parts is not None
    total = sum((Fraction(4, int(d)) if d.isdigit() else {"breve": 8, "long": 16}[d])
                * (2 - Fraction(1, 2**dots)) for d, dots in parts)
    assert total == length
    assert note_values(length + Fraction(1, 97)) is None  # no note value holds a 97th


_PITCH = st.sampled_from(["C", "D", "E", "F", "G", "A", "B", "c", "d", "e", "f", "g", "a", "b",
                          "c'", "d'", "A,", "G,"])
_ACC = st.sampled_from(["", "", "", "^", "_", "="])
_LEN = st.sampled_from(["", "", "2", "3", "4", "/2", "3/2", "6", "8", "12", "24", "32", "5", "7"])


@st.composite
def _tune(draw):
    """A tune with what verovio's ABC reader stumbles on: broken rhythms after long notes,
    tuplets cut by bar lines, ties across bars, lengths no one note shows, overfull bars."""
    meter = draw(st.sampled_from(["6/8", "4/4", "3/4", "2/4", "9/8", "C", "C|", "3/2"]))
    key = draw(st.sampled_from(["D", "G", "Ador", "Edor", "F", "Bb", "Amin", "C"]))
    body = []
    for _ in range(draw(st.integers(4, 40))):
        kind = draw(st.sampled_from(["note"] * 6 + ["rest", "bar", "broken", "tie", "tuplet"]))
        if kind == "note":
            body.append(draw(_ACC) + draw(_PITCH) + draw(_LEN))
        elif kind == "rest":
            body.append("z" + draw(_LEN))
        elif kind == "bar" and body and body[-1] not in ("|", ">", "<", "(3"):
            body.append("|")
        elif kind == "broken" and body and body[-1][:1] not in ("|", ">", "<", "(", "-", "z"):
            body.append(draw(st.sampled_from([">", "<", ">>"])))
        elif kind == "tie" and body and body[-1][-1:] not in ("|", ">", "<", "-", "3"):
            body.append("-")
        elif kind == "tuplet":
            body.append(draw(st.sampled_from(["(3", "(2", "(4"])))
    while body and body[-1] in (">", "<", ">>", "(3", "(2", "(4"):
        body.pop()
    return f"X:1\nT:fuzz\nM:{meter}\nL:1/8\nK:{key}\n" + " ".join(body) + " A|]\n"


@settings(max_examples=150, deadline=None)
@given(_tune())
def test_verovio_reads_back_every_note_of_our_mei(abc):
    try:
        parsed = parse_abc(abc)
    except ValueError:  # ABCError: a tie to nothing, say
        return
    if mei(parsed) is None:  # a length of 128ths that no note values sum to
        return
    assert _verovio_hears_ours(abc), abc


def test_what_verovio_misread_is_engraved_from_our_mei():
    misread = "X:1\nT:t\nM:3/4\nL:1/8\nK:Dmin\nc>B c3>AB | c<e c2 A2 |]\n"  # '>' after c3
    parsed = parse_abc(misread)
    assert parsed.verovio_abc is not None  # plain, yet verovio's reading disagrees
    svg, way = render.engrave(parsed)
    assert way == "mei" and svg.count('class="note"') == 10  # c3> is a half tied to a 16th
    assert svg.count('class="tie"') == 1 and 'class="keySig"' in svg


def test_long_notes_are_tied_notes_and_the_title_and_bars_stay():
    parsed = parse_abc("X:1\nT:Long & low\nM:4/4\nL:1/8\nK:G\n|:E40 ^F8|1 G4 z4:|2 G8|]\n")
    assert parsed.verovio_abc is None and parsed.written is not None
    svg, way = render.engrave(parsed)
    assert way == "mei"
    assert "Long &amp; low" in svg and svg.count("ending systemMilestone") == 2
    assert svg.count('class="note"') == 5 + 1 + 1 + 1  # E40: five whole notes, a bar's each
    assert _verovio_hears_ours(parsed.text)


@pytest.mark.parametrize(("abc", "values"), [
    ("M:6/8\nL:1/8\nK:D\nA5 B |]", ['dur="4" dots="1"', 'dur="4"', 'dur="8"']),  # not 2 + 8
    ("M:6/8\nL:1/8\nK:D\nB A5 |]", ['dur="8"', 'dur="4"', 'dur="4" dots="1"']),  # the beat
    ("M:4/4\nL:1/8\nK:G\nG2 A5 B |]", ['dur="4"', 'dur="4"', 'dur="4" dots="1"', 'dur="8"']),
    ("M:3/4\nL:1/8\nK:G\nG6 | A10 |]", ['dur="2" dots="1"', 'dur="2" dots="1"', 'dur="2"']),
])
def test_a_long_note_is_cut_where_it_crosses_the_beat(abc, values):
    """A note no one value shows is drawn as tied notes that show the beat: 5 eighths in 6/8
    are a dotted quarter and a quarter, not a half and an eighth; past a bar's length (an
    overfull bar), a bar's length each. A note one value shows stays one note."""
    parsed = parse_abc("X:1\n" + abc + "\n")
    text = mei(parsed)
    assert re.findall(r'dur="\w+"(?: dots="\d")?', text) == values
    assert _verovio_hears_ours(parsed.text)


def test_chords_grace_notes_and_marks_still_go_through_music21():
    for abc in ("X:1\nL:1/8\nK:C\n[CEG]2 c2|]\n", "X:1\nL:1/8\nK:C\n{g}A2 c2|]\n"):
        parsed = parse_abc(abc)
        assert parsed.written is None and mei(parsed) is None
    # verovio misreads c3>AB; our MEI would drop the chord symbols, the trill and the slur
    marked = parse_abc('X:1\nT:t\nM:3/4\nL:1/8\nK:Dmin\n'
                       '"Dm"c>B !trill!c3>AB | "A7"(c<e c2) A2 |]\n')
    svg, way = render.engrave(marked)
    assert marked.written is None and way == "musicxml"
    assert "Dm" in svg and "A7" in svg and 'class="slur"' in svg


def test_two_scores_on_one_page_share_no_ids():
    first, second = (render.engrave(parse_abc(f"X:1\nT:{t}\nM:4/4\nL:1/8\nK:G\nE24 G8|]\n"))
                     for t in ("one", "two"))
    assert first[1] == second[1] == "mei"
    ids = [set(re.findall(r'<g id="([^"]+)" class="note"', svg)) for svg, _ in (first, second)]
    assert ids[0] and ids[1] and not ids[0] & ids[1]


def test_hot_generated_tunes_never_import_music21():
    """A class exploring high temperatures in the rating studio (notebook 10) met ~1 tune in
    3 that verovio's ABC reader misread or could not take; each went through music21. Now
    every readable generated tune is drawn without it (which tunes come out depends on the
    machine's rounding, so the count drawn is checked within a band)."""
    code = """
import collections, json, sys
from toolkit import generate, load_model
model = load_model()
ways = collections.Counter()
for temperature in (1.5, 2.0, 3.0):
    for tune in generate(model, n=24, seed=2, temperature=temperature, max_tokens=256):
        try:
            tune.parsed
        except ValueError:
            ways["unreadable ABC"] += 1
            continue
        ways[tune.svg() and "drawn"] += 1
print(json.dumps({"ways": ways, "music21": "music21" in sys.modules}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=300)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["music21"] is False, result
    assert set(result["ways"]) <= {"drawn", "unreadable ABC"}, result
    assert result["ways"]["drawn"] >= 60, result  # 69 of 72 here


def test_a_long_note_drawn_as_tied_notes_is_coloured_whole():
    from toolkit.music.tune import Tune

    abc = "X:1\nT:t\nM:4/4\nL:1/8\nK:G\nE40 G2 z2 |]\n"  # E40: five whole notes, tied
    tune = Tune.from_abc(abc)
    colors = ["#111111", "#222222", "#333333"]  # one per note and rest, as tokens give them
    svg = render.paint_notes(tune.svg(), tune, colors)
    painted = re.findall(r'class="(?:note|rest)" fill="(#\d+)"', svg)
    assert painted == ["#111111"] * 5 + ["#222222", "#333333"]
