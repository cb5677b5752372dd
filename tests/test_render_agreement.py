"""music21's reading (the fallback engraving, MusicXML, MIDI) and verovio's ties agree with
our reading, the one the WAV plays; where music21 cannot, a clear error names the first
difference instead of a wrong score or file."""

from __future__ import annotations

import re

import pytest

from toolkit.music import m21, render
from toolkit.music.reader import ABCError
from toolkit.music.tune import Tune

HEAD = "X:1\nM:4/4\nL:1/8\n"


def heard(notes) -> list[tuple[int, float, float]]:
    return [(n.pitch, round(n.onset, 6), round(n.duration, 6)) for n in notes]


def musicxml_notes(tune: Tune) -> list[tuple[int, float, float]]:
    """The notes of the tune's MusicXML file, read back by music21."""
    from music21 import converter

    return heard(m21.notes_from_score(converter.parse(m21.musicxml(tune.score))))


# Each was drawn and exported with other notes than the WAV plays; music21 now reads them right
READ_RIGHT = {
    "inline key change": HEAD + "K:D\nDEFG ABcd|[K:Bb]BcdB F2F2|]",
    "inline unit length": HEAD + "K:C\n[CE]2 [L:1/16] D2 E2|]",
    "bass clef": HEAD + "K:G clef=bass\nA,B,CD|]",
    "fermata H": HEAD + "K:D\ne2(e/f/Hg) BHe d2|]",
    "trill before an accidental": HEAD + "K:G\ne4 T^c4| d2 ed T^c3 B/c/| d8|]",
    "bowing after broken rhythm": HEAD + "K:G\nvg>vg a2 ud>ud|]",
    "annotation to the right": HEAD + 'K:G\n">"(de)">"(cd) B2 (B>A)|G2 B>d (gbaf)|]',
    "double repeat ::": HEAD + "K:D\nGEEF G2FE::DDDF EEEF|]",
    "tie carries its accidental": HEAD + "K:D\nG4 A2_B2- | B2G2=F2G2 | A8|]",
    "tie to a rest": HEAD + "K:D\nA2-z2 A4|B8|]",
    "tie to another pitch": HEAD + "K:D\nc2-d2 e4|f8|]",
    "broken rhythm by a slur's end": HEAD + "K:D\nA2 A2 (d>ef>)(e d<B)|A8|]",
    "broken rhythm by a slur's start": HEAD + "K:G\ng>(f g/a/b/a/) gfed|B8|]",
    "broken rhythm before a staccato": HEAD + "K:D\n.d2.d>.d (dc)(BA)|d8|]",
    "broken rhythm and a tie": HEAD + "K:G\nc2 B>-c A2 A-c|B8|]",
    "broken rhythm after a space": HEAD + "K:G\nA> (BA/B/) G> (AB/d/)|]",
    "broken rhythm with grace notes": HEAD + "K:G\nd>{^cBA}BGB dg/a/ b>a|g8|]",
    "broken rhythm of half units": HEAD + "K:G\ndd/>d/ BB/>A/ G4|]",
    "beaming backquotes": HEAD + "K:D\nD>d``fd e2 d2|a<f``f>b a>fed|]",
    "grace notes opening a tuplet": HEAD + "K:D\nB2 d2 (3{d}cAG A2|G8|]",
    "invisible rest": HEAD + "K:G\nedd d2(e/^f/)|xgag ged|]",
    "[K:D] in a comment": HEAD + "K:G\nGABc dedB | % now [K:D] comes\nd2d2 [CEG]4 |]",
    "[K:D] in an annotation": HEAD + 'K:G\n"[K:D]"GABc dedB | d2d2 [CEG]4 |]',
    "a line starting d:|": HEAD + "K:G\nd:| [CEG]2 x2 G4 |]",
    "a tuplet, a space, grace notes": HEAD + "K:D\nB2 d2 (3 {d}cAG A2|G8|]",
}


def test_the_marks_beside_a_broken_rhythm_are_kept():
    """The broken rhythm is written out (d3/2e/2), so music21 keeps the slur, the staccato and
    the grace note beside the '>' (and no slur runs on to the end of the tune)."""
    tune = Tune.from_abc(HEAD + "K:G\n(de)>f A2 B2 c2 | d>(ef) .d>.e {g}d>{g}e [CEG]2 |]")
    assert heard(m21.notes_from_score(tune.score)) == heard(tune.notes)
    slurs = list(tune.score.recurse().getElementsByClass("Slur"))
    assert [len(s.getSpannedElements()) for s in slurs] == [2, 2]
    notes = list(tune.score.recurse().notes)
    assert sum(n.duration.isGrace for n in notes) == 2
    assert sum(any(a.name == "staccato" for a in n.articulations) for n in notes) == 2


def test_a_tune_of_several_voices_is_given_to_music21_as_it_is():
    """Its notes are not checked against ours (music21 plays them), so nothing is rewritten:
    a [K:D] in a comment stays a comment."""
    tune = Tune.from_abc("X:1\nM:4/4\nL:1/8\nK:G\nV:1\nGABc dedB | % modulate [K:D] later\n"
                         "d2d2 d4 |]\nV:2\nG,4 D,4 | G,8 |]")
    assert len(tune.notes) == 14 and "% modulate [K:D] later" in m21._music21_text(tune.parsed)


@pytest.mark.parametrize("abc", READ_RIGHT.values(), ids=READ_RIGHT.keys())
def test_music21_reads_what_the_tune_plays(abc):
    tune = Tune.from_abc(abc)
    assert heard(m21.notes_from_score(tune.score)) == heard(tune.notes)
    assert musicxml_notes(tune) == heard(tune.notes)


def test_a_bass_clef_is_drawn_without_moving_the_notes():
    tune = Tune.from_abc(READ_RIGHT["bass clef"])
    assert [n.pitch for n in tune.notes] == [57, 59, 60, 62]
    assert "<sign>F</sign>" in m21.musicxml(tune.score).decode()


@pytest.mark.parametrize(("abc", "meters"), [
    (HEAD + "K:D\nDEFG ABcd|[M:3/4]BcdB F2|[M:7/8]FGAB cde|]", ["4/4", "3/4", "7/8"]),
    (HEAD + "K:D\nDEFG ABcd|\nM:3/4\nBcdB F2|\nM:7/8\nFGAB cde|]", ["4/4", "3/4", "7/8"]),
    # to a longer meter: music21 cuts the 4/4 bars by 3/4; they are joined again
    ("X:1\nM:3/4\nL:1/8\nK:D\nDEFG AB|[M:4/4]BcdB F2F2|BcdB F2F2|]", ["3/4", "4/4", None]),
])
def test_meter_changes_reach_the_score_and_the_musicxml(abc, meters):
    from music21 import stream

    tune = Tune.from_abc(abc)
    bars = list(tune.score.recurse().getElementsByClass(stream.Measure))
    assert [m.timeSignature.ratioString if m.timeSignature else None for m in bars] == meters
    assert [float(m.offset) for m in bars] == ([0.0, 4.0, 7.0] if meters[1] == "3/4" else
                                               [0.0, 3.0, 7.0])
    xml = m21.musicxml(tune.score).decode()
    shown = [f"{b}/{t}" for b, t in re.findall(r"<beats>(\d+)</beats>\s*<beat-type>(\d+)<", xml)]
    assert shown == [m for m in meters if m]


def test_a_tune_music21_misreads_is_refused_with_the_first_difference(tmp_path):
    tune = Tune.from_abc(HEAD + "K:D exp ^c _b\nABcd|]")  # music21 ignores exp and _b
    expected = "the B 1/2 of a quarter note into bar 1 as B natural, the tune has B flat"
    with pytest.raises(ABCError, match=expected) as caught:
        tune.score  # noqa: B018
    assert caught.value.abc == tune.abc
    for export in ("musicxml", "mid", "svg"):  # the score falls back to music21 here
        with pytest.raises(ABCError, match="B natural"):
            tune.save(tmp_path, formats=[export])
    assert tune.save(tmp_path, formats=["wav"])  # our reading still plays it
    shown = tune._repr_html_()
    assert "B natural" in shown and "exp ^c _b" in shown and "<audio" in shown


def test_a_difference_in_length_is_named():
    tune = Tune.from_abc("X:1\nM:6/8\nL:1/8\nK:D\nA | d2d de (3f/2e | dc/2dA | GGA FED |]")
    with pytest.raises(ABCError, match="bar 3 as 1/3 of a quarter note long, the tune has "
                                       "1/2 of a quarter note"):
        tune.score  # noqa: B018  (music21 carries the triplet over the bar line)


# ---------------------------------------------------------------------------------------------
# verovio draws a tie only where our reading joins two notes
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("body", ["A2-z2 A4|]", "c2-d2 e4|]", "d'-z d' z2 z4|]"])
def test_no_tie_is_drawn_that_does_not_sound(body):
    tune = Tune.from_abc(HEAD + "K:D\n" + body)
    assert not render._mei_agrees(render._reading(render._verovio(), tune.parsed.verovio_abc,
                                                  "abc", 800), tune.parsed)
    svg, way = render.engrave(tune.parsed)
    assert way == "mei" and svg.count('class="tie"') == 0


def test_ties_that_sound_are_still_drawn_from_the_abc():
    tune = Tune.from_abc(HEAD + "K:D\n^G2-G2 G4-|G8|]")  # the tie carries the sharp over
    svg, way = render.engrave(tune.parsed)
    assert way == "abc" and svg.count('class="tie"') == 2
    assert [n.pitch for n in tune.notes] == [68, 68]


# ---------------------------------------------------------------------------------------------
# MIDI of repeats music21 cannot follow
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("body", [
    "|:DEFG ABcd|efga bagf|gfed cBAG|]",                 # a repeat left open
    "DEFG ABcd|efga bagf::gfed cBAG||[2 DEFG A4|]",      # an ending with no first ending
])
def test_midi_plays_repeats_music21_cannot_follow_as_the_wav_does(tmp_path, body):
    from music21 import converter

    tune = Tune.from_abc(HEAD + "K:D\n" + body)
    with pytest.raises(Exception, match="badly formed repeats"):
        tune.score.expandRepeats()
    (path,) = tune.save(tmp_path, formats=["mid"])
    played = sorted(heard(tune.performance().notes), key=lambda n: (n[1], n[0]))
    assert heard(m21.notes_from_score(converter.parse(path))) == played
