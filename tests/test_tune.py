"""The Tune object and its reading of ABC: notes, bars, errors, display and files."""

from __future__ import annotations

import html
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolkit.music import m21
from toolkit.music.notes import Note
from toolkit.music.reader import ABCError, parse_abc, performance, play_order, tempo_qpm
from toolkit.music.tune import EXPORT_FORMATS, Tune

KESH = """X:1
T:The Kesh
M:6/8
L:1/8
K:Gmaj
|:GAG GAB|ABA ABd|edd gdd|edB dBA|
GAG GAB|ABA ABd|edd gdd|1 BAF G3:|2 BAF G2A||
"""


def notes(body: str, header: str = "X:1\nM:4/4\nL:1/8\nK:C\n") -> list[tuple[int, float, float]]:
    return [(n.pitch, n.onset, n.duration) for n in parse_abc(header + body).notes]


# ---------------------------------------------------------------------------------------------
# Reading notes
# ---------------------------------------------------------------------------------------------


def test_pitches_octaves_and_lengths():
    assert notes("C, C c c' z A/ A// A3/2 A3/ |]") == [
        (48, 0.0, 0.5), (60, 0.5, 0.5), (72, 1.0, 0.5), (84, 1.5, 0.5),
        (69, 2.5, 0.25), (69, 2.75, 0.125), (69, 2.875, 0.75), (69, 3.625, 0.75)]


def test_accidentals_hold_to_the_end_of_the_bar_in_every_octave():
    # ABC 2.1: an accidental holds for its letter, in every octave, until the bar line
    assert [p for p, _, _ in notes("^F F f =F F | F ^^G G __B B |]")] == [
        66, 66, 78, 65, 65, 65, 69, 69, 69, 69]


def test_key_signatures_and_modes():
    assert [p for p, _, _ in notes("FcB|", "X:1\nL:1/8\nK:Ador\n")] == [66, 72, 71]
    assert [p for p, _, _ in notes("FcB|", "X:1\nL:1/8\nK:Dmix\n")] == [66, 72, 71]
    assert [p for p, _, _ in notes("FcBE|", "X:1\nL:1/8\nK:Bb\n")] == [65, 72, 70, 63]
    assert [p for p, _, _ in notes("FcB|", "X:1\nL:1/8\nK:none\n")] == [65, 72, 71]
    assert [p for p, _, _ in notes("FcB|", "X:1\nL:1/8\nK:D exp ^c\n")] == [65, 73, 71]


def test_ties_merge_and_carry_their_accidental_over_the_bar():
    assert notes("A3- A2 B | ^F4- | F4 |]") == [(69, 0.0, 2.5), (71, 2.5, 0.5), (66, 3.0, 4.0)]
    # a "tie" to another pitch is a phrasing mark, not a tie
    assert notes("A- B |]") == [(69, 0.0, 0.5), (71, 0.5, 0.5)]


def test_broken_rhythm():
    assert notes("A>B A<B A>>B |]") == [
        (69, 0.0, 0.75), (71, 0.75, 0.25), (69, 1.0, 0.25), (71, 1.25, 0.75),
        (69, 2.0, 0.875), (71, 2.875, 0.125)]


def test_tuplets_in_simple_and_compound_meter():
    simple = notes("(3ABc d2 (3A2B2c2 |]")
    assert [round(on, 4) for _, on, _ in simple] == [0, 0.3333, 0.6667, 1.0, 2.0, 2.6667, 3.3333]
    jig = notes("(2AB c (3ABc d |]", "X:1\nM:6/8\nL:1/8\nK:C\n")
    assert [d for _, _, d in jig][:2] == [0.75, 0.75]  # two in the time of three
    assert [round(d, 4) for _, _, d in jig][3:6] == [0.3333, 0.3333, 0.3333]


def test_chords_grace_notes_and_decorations():
    assert notes('[CEG]2 {ag}[C2E2G2] "Am".A ~B !trill!c |]') == [
        (60, 0.0, 1.0), (64, 0.0, 1.0), (67, 0.0, 1.0),
        (60, 1.0, 1.0), (64, 1.0, 1.0), (67, 1.0, 1.0),
        (69, 2.0, 0.5), (71, 2.5, 0.5), (72, 3.0, 0.5)]


def test_default_unit_length_follows_the_meter():
    assert parse_abc("X:1\nM:2/4\nK:C\nC|").notes[0].duration == 0.25  # 1/16 below 3/4
    assert parse_abc("X:1\nM:6/8\nK:C\nC|").notes[0].duration == 0.5
    assert parse_abc("X:1\nK:C\nC|").notes[0].duration == 0.5


def test_fields_in_the_body_change_key_meter_and_length():
    tune = parse_abc("X:1\nM:4/4\nL:1/8\nK:C\nF2 [K:G] F2 | [L:1/4] F F |\nK:F\nB |]")
    assert [(n.pitch, n.duration) for n in tune.notes] == [
        (65, 1.0), (66, 1.0), (66, 1.0), (66, 1.0), (70, 1.0)]
    assert tune.verovio_abc is None and "field" in tune.not_plain


def test_multi_bar_rest():
    tune = parse_abc("X:1\nM:3/4\nL:1/8\nK:C\nZ2 | C6 |]")
    assert tune.notes == (Note(60, 6.0, 3.0),)
    assert tune.length == 9


def test_bars_repeats_and_endings():
    measures = parse_abc(KESH).measures
    assert len(measures) == 9
    assert measures[0].left == "rptstart"
    assert [m.right for m in measures] == ["single"] * 7 + ["rptend", "dbl"]
    assert [m.ending for m in measures] == [None] * 7 + ["1", "2"]


def test_tempo_fields():
    assert tempo_qpm("1/4=120") == 120.0
    assert tempo_qpm("3/8=100") == 150.0
    assert tempo_qpm('"Allegro" 1/2=60') == 120.0
    assert tempo_qpm("Allegro") is None
    assert parse_abc("X:1\nQ:3/8=80\nM:6/8\nK:D\nABc|").tempo == "3/8=80"


@pytest.mark.timeout(30)
def test_a_tempo_field_cannot_stall_the_reading():
    # a regular expression with nested repeats once took minutes over a field like this
    assert tempo_qpm("11" + "/111" * 200 + "x") is None


def test_a_plain_tune_gets_a_plain_copy_for_verovio():
    parsed = parse_abc(KESH)
    assert parsed.not_plain is None
    copy = parsed.verovio_abc
    assert copy.startswith("X:1\nT:The Kesh\nM:6/8\nL:1/8\nK:Gmaj\n")
    assert "[1" not in copy and ":|" not in copy  # repeats and endings go into the MEI


def test_what_verovio_cannot_read_is_named():
    assert parse_abc("X:1\nK:C\n[CEG]2 C|").not_plain == "chords"
    assert parse_abc("X:1\nK:C\n{g}A2 C|").not_plain == "grace notes"
    assert "C5" in parse_abc("X:1\nL:1/8\nK:C\nC5 C3|").not_plain


# ---------------------------------------------------------------------------------------------
# Agreement with music21
# ---------------------------------------------------------------------------------------------

AGREEMENT = [
    KESH,
    "X:1\nT:Reel\nM:C|\nL:1/8\nK:D\n|:d2fd Adfd|e2ge cege|d2fd Adfd|1 egfe d4:|2 egfe d2z2||",
    "X:1\nT:Hornpipe\nM:4/4\nL:1/8\nK:G\nB>c|d>cB>A G>AB>G|(3efg d>B c>AF>A|G2 B2 G2:|",
    "X:1\nT:Slip jig\nM:9/8\nL:1/8\nK:Edor\nB2E G2E F3|B2E G2E FED|B2E G2A B2c|d2B A2F FED|]",
    "X:1\nT:Accidentals\nM:3/4\nL:1/8\nK:Bb\n^c2 c2 =B2|_e2 e'2 E2|A,2 ^G,2 A,2|]",
    "X:1\nT:Ties\nM:3/4\nL:1/4\nK:F\nA2- A | B3- | B A G | F3 |]",
    "X:1\nT:Chords\nM:2/4\nL:1/8\nK:C\n[CEG]2 [DF]2 | [EGc]4 |]",
]


@pytest.mark.parametrize("abc", AGREEMENT, ids=lambda a: a.split("\n")[1][2:])
def test_our_notes_are_music21s_notes(abc):
    tune = Tune.from_abc(abc)
    theirs = m21.notes_from_score(tune.score)
    assert [(n.pitch, round(n.onset, 6), round(n.duration, 6)) for n in tune.notes] == [
        (n.pitch, round(n.onset, 6), round(n.duration, 6)) for n in theirs]


@pytest.mark.parametrize("abc", AGREEMENT[:4], ids=lambda a: a.split("\n")[1][2:])
def test_repeats_are_played_as_music21_plays_them(abc):
    tune = Tune.from_abc(abc)
    theirs = m21.notes_from_score(tune.score.expandRepeats())
    played = tune.performance()
    assert [(n.pitch, round(n.onset, 6), round(n.duration, 6)) for n in played.notes] == [
        (n.pitch, round(n.onset, 6), round(n.duration, 6)) for n in theirs]
    assert played.length == pytest.approx(float(tune.score.expandRepeats().highestTime))


def test_the_order_bars_are_played_in():
    kesh = parse_abc(KESH).measures
    assert play_order(kesh) == [0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 8]
    two_parts = parse_abc("X:1\nL:1/4\nK:C\n|:A:|:B::C:|D|]").measures
    assert play_order(two_parts) == [0, 0, 1, 1, 2, 2, 3]
    no_start = parse_abc("X:1\nL:1/4\nK:C\nA|B:|C|]").measures
    assert play_order(no_start) == [0, 1, 0, 1, 2]
    assert performance(parse_abc(KESH), repeats=False).length == 27.0
    assert performance(parse_abc(KESH)).length == 48.0


# ---------------------------------------------------------------------------------------------
# Bad ABC: a clear error, and nothing lost
# ---------------------------------------------------------------------------------------------

MALFORMED = [
    ("", "empty", None),
    ("   \n\t\n", "empty", None),
    ("X:1\nT:No key\n", "no K:", None),
    ("T:No key\nABc|", "K:", 2),
    ("X:1\nT:Only a header\nK:G\n", "no notes", None),
    ("X:1\nT:Header\nK:G\n% only a comment\n", "no notes", None),
    ("X:1\nK:H#major\nabc|", "H#major", 2),
    ("X:1\nK:Gfoo\nabc|", "foo", 2),
    ("X:1\nK:G#maj\nabc|", "sharps or flats", 2),
    ("X:1\nK:\nabc|", "empty", 2),
    ("X:1\nM:6/0\nK:G\nabc|", "meter", 2),
    ("X:1\nM:waltz\nK:G\nabc|", "meter", 2),
    ("X:1\nL:1/0\nK:G\nabc|", "unit length", 2),
    ("X:1\nL:eighth\nK:G\nabc|", "unit length", 2),
    ("X:1\nK:G\n[zA]2 B2|", "a rest inside a chord", 3),
    ("X:1\nQ:1/4=0\nK:G\nabc|", "has no speed", 2),
    ("tunes/my_reel.abc", "looks like a file's name, not ABC text", None),
    (Path("tunes/my_reel.abc"), "takes ABC text, not a path", None),
    ("X:1\nT:Two\nX:2\nK:G\nabc|", "second tune", 3),
    ("X:1\nK:G\nabc|\nX:2\nK:D\ndef|", "second tune", 4),
    ("X:1\nT:t\nabc def\nK:G\n", "before the K:", 3),
    ("X:1\nK:G\nab \u00a7 c|", "not part of ABC", 3),
    ("X:1\nK:G\nab\x00c|", "not part of ABC", 3),
    ("X:1\nK:G\nabc]", "never opened", 3),
    ("X:1\nK:G\n[abc", "not closed", 3),
    ("X:1\nK:G\n[ab|c]", "not closed", 3),
    ("X:1\nK:G\n[]|", "empty chord", 3),
    ('X:1\nK:G\n"Am abc|', "closing", 3),
    ("X:1\nK:G\nab{c|", "never closed", None),
    ("X:1\nK:G\nabc}|", "pair up", 3),
    ("X:1\nK:G\n2 abc|", "no note before it", 3),
    ("X:1\nK:G\nabc | 3/ d|", "no note before it", 3),
    ("X:1\nK:G\na0 b|", "zero", 3),
    ("X:1\nK:G\na999 b|", "out of range", 3),
    ("X:1\nK:G\na//3 b|", "cannot read the note length", 3),
    ("X:1\nK:G\nc''''''''|", "out of range", 3),
    ("X:1\nK:G\n> a b|", "needs a note before it", 3),
    ("X:1\nK:G\na > |", "needs a note after it", 3),
    ("X:1\nK:G\na b>", "needs a note after it", 3),
    ("X:1\nK:G\na [K:Q] b|", "Q", 3),
    ("X:1\nK:G\nab [M:xyz] c|", "meter", 3),
    ("X:1\nK:G\n+trill a b|", "'+'", 3),
    ("X:1\nK:G\na =|", "accidental", 3),
    ("X:1\nK:G\nZ2|", "needs a meter", 3),
    ("X:1\nM:4/4\nK:G\nZ99|", "out of range", 4),
    ("X:1\nM:4/4\nK:G\nA Z0 B|", "out of range", 4),
    (b"X:1\nK:G\n\xff\xfeabc|", "UTF-8", None),
]


@pytest.mark.parametrize(("abc", "words", "line"), MALFORMED,
                         ids=[f"malformed{i}" for i in range(len(MALFORMED))])
def test_malformed_abc_gets_a_clear_error(abc, words, line):
    with pytest.raises(ABCError) as caught:
        Tune.from_abc(abc)
    err = caught.value
    assert isinstance(err, ValueError)
    assert words in str(err)
    assert err.line == line
    if line is not None:
        assert str(err).startswith(f"line {line}")
    expected = abc.decode("utf-8", "replace") if isinstance(abc, bytes) else (
        None if isinstance(abc, Path) else abc)  # a path holds no text
    assert err.abc == expected  # the text is never lost


@pytest.mark.parametrize("q", ["1/8=30", "1/4=9000", "1/4=" + "9" * 400])
def test_a_tempo_too_slow_or_fast_to_play_still_reads_and_draws(q):
    """A slow air written Q:1/8=30 (15 quarter notes a minute) is drawn; only its sound is
    refused, with the reason, and the display shows the score and that reason."""
    tune = Tune.from_abc(f"X:1\nM:3/4\nL:1/8\nQ:{q}\nK:G\nG4 AB|c6|]")
    assert 'class="note"' in tune.svg()
    with pytest.raises(ValueError, match=rf"the tune's tempo Q:{q} is .* 20 to 400 can be played"):
        tune.wav()
    assert len(tune.wav(tempo=60)) > 44  # a tempo given overrides it
    shown = tune._repr_html_()
    assert "<svg" in shown and "The tune could not be played" in shown and "<audio" not in shown


def test_a_whole_note_unit_length_reads():
    assert parse_abc("X:1\nM:4/4\nL:1\nK:C\nC D|]").unit == 1
    assert [n.duration for n in parse_abc("X:1\nM:4/4\nL:1\nK:C\nC D/2|]").notes] == [4, 2]


def test_the_error_names_line_and_column():
    with pytest.raises(ABCError) as caught:
        Tune.from_abc("X:1\nT:Broken\nM:4/4\nK:G\nGABc dedB|\nAB \u00a7 c|")
    assert (caught.value.line, caught.value.column) == (6, 4)
    assert str(caught.value) == "line 6, column 4: '\u00a7' is not part of ABC"


ABC_SYMBOLS = st.text(alphabet="ABCDEFGabcdefgzxZ|:[]()<>-^_=,'/0123456789 \n{}\"!+.~HTKML%&$",
                      max_size=120)


@settings(max_examples=150, deadline=None)
@given(body=ABC_SYMBOLS)
def test_any_body_reads_or_raises_abcerror(body):
    try:
        tune = Tune.from_abc("X:1\nT:Fuzz\nM:6/8\nL:1/8\nK:G\n" + body)
    except ABCError:
        return
    assert tune.notes or tune.parsed.events


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=300))
def test_any_text_reads_or_raises_abcerror(text):
    try:
        Tune.from_abc(text)
    except ABCError as err:
        assert err.abc == text


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=300))
def test_any_bytes_read_or_raise_abcerror(data):
    try:
        Tune.from_abc(data)
    except ABCError as err:
        assert err.abc is not None


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(min_value=0, max_value=len(KESH)))
def test_truncated_tunes_read_or_raise_and_what_reads_can_be_shown(cut):
    try:
        tune = Tune.from_abc(KESH[:cut])
    except ABCError:
        return
    assert "<svg" in tune.svg()
    assert tune.wav()[:4] == b"RIFF"


# ---------------------------------------------------------------------------------------------
# The Tune object
# ---------------------------------------------------------------------------------------------


def test_a_tune_prints_as_its_abc():
    tune = Tune.from_abc(KESH)
    assert repr(tune) == KESH and str(tune) == KESH


def test_properties_of_a_tune():
    tune = Tune.from_abc(KESH)
    assert (tune.title, tune.meter, tune.key) == ("The Kesh", "6/8", "Gmaj")
    assert tune.length == 27.0  # nine bars of 6/8, endings played one after the other
    assert tune.notes[0] == Note(67, 0.0, 0.5)


def test_from_abc_reads_utf8_bytes():
    assert Tune.from_abc(KESH.encode()).abc == KESH


def test_a_changed_abc_is_read_afresh():
    tune = Tune.from_abc(KESH)
    first = tune.notes
    tune.abc = tune.abc.replace("K:Gmaj", "K:Gmin")
    assert tune.key == "Gmin" and tune.notes != first


def test_note_probabilities_follow_the_pitch_and_rest_tokens():
    tune = Tune("X:1\nK:C\nC2 z D|", tokens=["<s>", "K:maj", "C", "2", "z", "^D", "|"],
                logprobs=[None, None, math.log(0.5), -0.1, math.log(0.25), None, -0.2])
    assert tune.note_probabilities() == pytest.approx([0.5, 0.25, None])
    with pytest.raises(ValueError, match="no token probabilities"):
        Tune.from_abc(KESH).note_probabilities()
    with pytest.raises(ValueError, match="same length"):
        Tune("X:1\nK:C\nC|", tokens=["C", "|"], logprobs=[-1.0]).note_probabilities()


def test_html_shows_score_and_player():
    tune = Tune.from_abc(KESH)
    tune.settings = {"sampler": "temperature(1.2)", "seed": 7, "internal": "hidden"}
    shown = tune._repr_html_()
    assert "<svg" in shown and 'class="note"' in shown
    assert '<audio controls' in shown and 'src="data:audio/wav;base64,UklGR' in shown
    assert "seed 7" in shown and "internal" not in shown


def test_html_of_a_broken_tune_shows_the_problem_and_the_abc():
    broken = Tune(abc="X:1\nT:<b>Bad</b>\nK:G\nab \u00a7 c|")
    shown = broken._repr_html_()  # must not raise
    assert "line 4, column 4" in shown and "not part of ABC" in shown
    assert html.escape(broken.abc) in shown
    assert "<b>Bad</b>" not in shown  # the ABC is escaped, not interpreted
    assert "<svg" not in shown and "<audio" not in shown


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


def test_save_writes_every_format_by_default(tmp_path):
    tune = Tune.from_abc(KESH)
    paths = tune.save(tmp_path / "new" / "folder")
    assert [p.name for p in paths] == [f"The_Kesh.{f}" for f in EXPORT_FORMATS]
    assert all(p.stat().st_size > 0 for p in paths)
    assert paths[0].read_text() == KESH
    assert paths[1].read_bytes().startswith(b"<?xml")
    assert paths[2].read_bytes().startswith(b"MThd")
    assert paths[3].read_bytes().startswith(b"RIFF")
    assert paths[4].read_text().startswith("<svg")


def test_save_chooses_formats_and_names(tmp_path):
    tune = Tune.from_abc(KESH)
    assert tune.save(tmp_path, formats=["wav", "abc"], stem="kesh") == [
        tmp_path / "kesh.abc", tmp_path / "kesh.wav"]
    assert tune.save(tmp_path, formats="mid") == [tmp_path / "The_Kesh.mid"]
    untitled = Tune.from_abc("X:1\nK:G\nGABc|")
    assert untitled.save(tmp_path, formats=("abc",)) == [tmp_path / "tune.abc"]
    assert [p.suffix for p in untitled.save(tmp_path / "all", formats=None)] == [
        f".{f}" for f in EXPORT_FORMATS]  # None: every format, as by default


@pytest.mark.parametrize("formats", [("abc", "pdf"), "mp3", ["WAV"], (), 3, {"abc": 1}])
def test_save_rejects_unknown_formats(tmp_path, formats):
    with pytest.raises(ValueError) as caught:
        Tune.from_abc(KESH).save(tmp_path, formats=formats)
    message = str(caught.value)
    assert "formats=" in message and "abc, musicxml, mid, wav, svg" in message
    for f in ([formats] if isinstance(formats, str | int) else formats):
        if f not in EXPORT_FORMATS:
            assert repr(f) in message
    assert list(Path(tmp_path).iterdir()) == []


@pytest.mark.parametrize("stem", ["a/b", "../up", "", ".."])
def test_save_rejects_stems_with_folders(tmp_path, stem):
    with pytest.raises(ValueError, match="stem="):
        Tune.from_abc(KESH).save(tmp_path, stem=stem)
