"""The tokenizer: ABC text <-> tokens, transposition, events, and the token-level validity check.

What users rely on: a tune survives encode -> decode -> encode in any display key; the ABC that
decode writes is what music21 (and so every exporter) reads as the same melody; bad input gets an
error that names the symbol and where it is.
"""

from __future__ import annotations

import importlib.util
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit import data
from toolkit.measure.metrics import check_tokens
from toolkit.music import tokens as abc
from toolkit.music.tokens import (
    ABCSyntaxError,
    Key,
    decode,
    encode,
    encode_fragment,
    events,
    parse_key,
)

ROOT = Path(__file__).resolve().parent.parent

# The pitch and duration tokens of the dataset's vocabulary (datasets/cache/vocab.json, built from
# the corpus); fixed here so that the property tests do not depend on a cache being present.
PITCHES = [
    "=A", "=B", "=B,", "=E", "=F", "=G", "=a", "=b", "=c", "=d", "=e", "=f", "=g", "A", "A,", "B",
    "B,", "C", "C,", "D", "D,", "E", "E,", "F", "F,", "G", "G,", "^C", "^D", "^F", "^F,", "^G",
    "^G,", "^c", "^c'", "^d", "^f", "^g", "_A", "_A,", "_B", "_B,", "_D", "_E", "_a", "_b", "_d",
    "_e", "a", "b", "c", "c'", "d", "d'", "e", "e'", "f", "f'", "g", "g'",
]
DURATIONS = ["/2", "/4", "2", "3", "3/2", "3/4", "4", "6", "8", "12", "16"]
METERS = ["M:2/4", "M:3/4", "M:4/4", "M:6/8", "M:2/2", "M:3/8", "M:9/8", "M:6/4", "M:3/2"]
MODES = sorted(abc.MODES)
TONICS = ["C", "D", "G", "A", "E", "B", "F#", "F", "Bb", "Eb", "Ab"]
# display keys whose signature has at most 7 sharps or flats, per mode
KEYS = {m: [t for t in TONICS if abs(parse_key(t + m).fifths) <= 7] for m in MODES}


def tune(*body: str, meter: str = "M:4/4", mode: str = "K:maj", style: str = "S:?") -> list[str]:
    return ["<s>", meter, mode, style, *body, "</s>"]


def abc_text(body: str, key: str = "D", meter: str = "4/4", unit: str = "1/8") -> str:
    return f"X:1\nT:Test\nM:{meter}\nL:{unit}\nK:{key}\n{body}\n"


def _load_roundtrip_benchmark():
    spec = importlib.util.spec_from_file_location("roundtrip", ROOT / "benchmarks" / "roundtrip.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------------------------
# round trip at the token level, on generated tunes

@st.composite
def notes(draw, rests: bool = True) -> list[str]:
    pitch = draw(st.sampled_from(PITCHES + (["z"] if rests else [])))
    dur = draw(st.none() | st.sampled_from(DURATIONS))
    return [pitch] + ([dur] if dur else [])


@st.composite
def groups(draw) -> list[str]:
    """One musically well-formed group: a note, a broken pair, a triplet or a tie."""
    kind = draw(st.sampled_from(["note", "note", "note", "broken", "triplet", "tie"]))
    if kind == "note":
        return draw(notes())
    if kind == "broken":
        return draw(notes(rests=False)) + [draw(st.sampled_from([">", "<"]))] + draw(notes(False))
    if kind == "triplet":
        return ["(3", *draw(notes()), *draw(notes()), *draw(notes())]
    first = draw(notes(rests=False))
    second = draw(notes(rests=False))
    broken = draw(st.sampled_from([[], [], [">"], ["<"]]))  # "G->G" is read as "G > - G"
    return [*first, *broken, "-", first[0], *second[1:]]  # a tie joins notes of the same pitch


@st.composite
def bodies(draw) -> list[str]:
    """Bars of note groups, separated by bar lines, repeats, endings and ties across bars."""
    body: list[str] = []
    if draw(st.booleans()):
        body.append("|:")
    for n in range(draw(st.integers(1, 6))):
        if n:
            last_note = next(t for t in reversed(body) if abc.is_pitch(t) or t == "z")
            body.append(draw(st.sampled_from(abc.BARS)))
            if draw(st.integers(0, 5)) == 0:
                body.append(draw(st.sampled_from(["[1", "[2"])))
            if last_note != "z" and draw(st.integers(0, 4)) == 0:
                body += ["-", last_note]  # a tie across the bar line
                body += draw(st.sampled_from([[], *[[d] for d in DURATIONS]]))
        for _ in range(draw(st.integers(1, 4))):
            body += draw(groups())
    if draw(st.booleans()):
        body.append(draw(st.sampled_from(["|", ":|", "|]", "||"])))
    return body


@settings(max_examples=100, deadline=None)
@given(body=bodies(), meter=st.sampled_from(METERS), mode=st.sampled_from(MODES),
       data_=st.data())
def test_roundtrip_generated_tokens_in_any_display_key(body, meter, mode, data_):
    tokens = tune(*body, meter=meter, mode=f"K:{mode}", style="S:irish")
    key = data_.draw(st.sampled_from(KEYS[mode]), label="display key")
    text = decode(tokens, key=key)
    back = encode(text)
    assert back[3] == "S:?"  # decode writes no style; everything else comes back
    assert back[:3] + back[4:] == tokens[:3] + tokens[4:], text


@settings(max_examples=100, deadline=None)
@given(pitch=st.sampled_from(PITCHES), mode=st.sampled_from(MODES), data_=st.data())
def test_transposition_keeps_every_interval(pitch, mode, data_):
    """Moving a pitch from C to any key shifts it by the distance between the tonics."""
    key = parse_key(data_.draw(st.sampled_from(KEYS[mode])) + mode)
    c_key = Key("C", 0, mode)
    steps = abc._steps_to(c_key, key.letter)
    moved = abc.transpose_pitch(pitch, c_key, key, steps)
    shift = abc.midi_pitch(moved, key.signature()) - abc.midi_pitch(pitch, c_key.signature())
    tonic_shift = abc.midi_pitch(abc.transpose_pitch("C", c_key, key, steps), key.signature()) - 60
    assert shift == tonic_shift
    assert abc.transpose_pitch(moved, key, c_key, -steps) == pitch  # and back, spelled the same


def test_every_vocabulary_pitch_is_covered():
    """The generated tunes use the vocabulary's pitches; a new pitch in it should be added here."""
    vocab = {t for rec in data.load("all") for t in rec["tokens"]}  # builds the cache if needed
    assert {t for t in vocab if abc.is_pitch(t)} <= set(PITCHES)


# --------------------------------------------------------------------------------------------
# round trip on the corpus

@pytest.fixture(scope="module")
def corpus_sample() -> list[dict]:
    """Every 30th tune of the corpus that the dataset would keep, encoded by the current code.

    (Read from the corpus, not from the cache, so that a stale cache cannot hide or fake a
    failure.)
    """
    items = list(data.iter_corpus())
    sample = []
    for collection, source, text in items[::30]:
        rec = data._encode_one((collection, source, text))
        if "tokens" in rec:
            sample.append({**rec, "text": text})
    return sample


def test_roundtrip_corpus_sample(corpus_sample):
    assert len(corpus_sample) >= 300
    keys = ["D", "G", "A", "Bb", "E", "F", "C"]
    for i, rec in enumerate(corpus_sample):
        tokens = rec["tokens"]
        assert encode(decode(tokens, key=keys[i % len(keys)]), rec["style"]) == tokens, \
            rec["source"]


def test_music21_reads_the_same_melody_on_a_corpus_sample(corpus_sample):
    """decode(tokens, key=<original tonic>) gives music21 the notes of the original ABC.

    The comparison (benchmarks/roundtrip.py, which runs it on every tune): notes and rests in
    order as (MIDI pitch, quarterLength), grace notes removed, chords reduced to their highest
    note, ties between equal pitches merged on both sides.
    """
    rt = _load_roundtrip_benchmark()
    by_collection: dict[str, list[dict]] = {}
    for rec in corpus_sample:
        by_collection.setdefault(rec["collection"], []).append(rec)
    assert set(by_collection) == set(data.COLLECTIONS)
    checked = 0
    for recs in by_collection.values():  # 6 tunes from each collection, spread out
        for rec in recs[:: max(1, len(recs) // 6)][:6]:
            assert rt.compare(rec["text"], rec["tokens"]) is None, rec["source"]
            checked += 1
    assert checked == 30


def test_music21_comparison_sees_a_changed_note():
    """The music21 check can fail: a wrong pitch or length in the tokens is found."""
    rt = _load_roundtrip_benchmark()
    text = abc_text("|: d2e fed | e2f gfe :|", key="D", meter="6/8")
    tokens = encode(text)
    assert rt.compare(text, tokens) is None
    wrong_pitch = [("d" if t == "e" else t) for t in tokens]
    assert rt.compare(text, wrong_pitch).startswith("pitch differs")
    wrong_length = tokens[:5] + ["3"] + tokens[6:]  # c 2 -> c 3
    assert "differs" in rt.compare(text, wrong_length)


# --------------------------------------------------------------------------------------------
# transposition

def test_the_same_tune_in_two_keys_gives_the_same_tokens():
    in_d = encode(abc_text("|: A2d dcd | fed c2A :|", key="D", meter="6/8"))
    in_g = encode(abc_text("|: D2G GFG | BAG F2D :|", key="G", meter="6/8"))
    assert in_d == in_g
    assert in_d[4:-1] == ["|:", "G", "2", "c", "c", "B", "c", "|", "e", "d", "c", "B", "2", "G",
                          ":|"]


def test_explicit_accidentals_survive_transposition_between_modes():
    # the raised seventh of A minor (G#) and of E minor (D#) are B natural in C minor (B-flat key)
    a_minor = encode(abc_text("A2 ^G2 A4 |", key="Am"))
    e_minor = encode(abc_text("e2 ^d2 e4 |", key="Em"))  # E -> C is down, A -> C up
    assert a_minor == e_minor
    assert a_minor[4:-1] == ["c", "2", "=B", "2", "c", "4", "|"]
    # the flattened seventh of D major (C natural) is B-flat in C major
    assert encode(abc_text("d2 =c2 d4 |", key="D"))[4:-1] == ["c", "2", "_B", "2", "c", "4", "|"]
    # A dorian's raised sixth F# is in the key signature; its F natural is explicit
    assert encode(abc_text("F2 =F2 E4 |", key="Ador"))[4:-1] == ["A", "2", "_A", "2", "G", "4", "|"]
    # decoding puts the accidental back on the right note of the display key
    tokens = tune("c", "2", "=B", "2", "c", "4", "|", mode="K:min")
    assert decode(tokens, key="E").splitlines()[-1] == "e2 ^d2 e4 |"
    assert decode(tokens, key="Bb").splitlines()[-1] == "B2 =A2 B4 |"
    assert "K:Bbmin" in decode(tokens, key="Bb")


def test_decode_writes_a_tune_in_the_display_key():
    tokens = encode(abc_text("|: d2e fed :|", key="D", meter="6/8"), "irish")
    text = decode(tokens, key="G", title="My tune", number=3)
    assert text.splitlines()[:5] == ["X:3", "T:My tune", "M:6/8", "L:1/8", "K:Gmaj"]
    assert text.splitlines()[-1] == "|: G2A BAG :|"
    with pytest.raises(ValueError, match="H"):
        decode(tokens, key="H")


def test_decode_writes_a_tie_right_after_its_note_even_across_a_bar():
    tokens = encode(abc_text("d8- | d4 e4 |"))
    assert tokens[4:-1] == ["c", "8", "|", "-", "c", "4", "d", "4", "|"]
    assert "d8- | d4 e4 |" in decode(tokens, key="D")
    tokens = encode(abc_text("d2>-d e4 d4 |"))  # a tie and a broken rhythm: "d2->d", not "d2>-d"
    assert tokens[4:-1] == ["c", "2", ">", "-", "c", "d", "4", "c", "4", "|"]
    assert "d2->d" in decode(tokens, key="D")


def test_decode_writes_a_triplet_without_a_space_inside():
    tokens = encode(abc_text("(3fga (3efd c4 |", meter="4/4"))
    assert "(3fga (3efd c4 |" in decode(tokens, key="D")


# --------------------------------------------------------------------------------------------
# reading ABC

def test_encode_reads_headers_and_drops_what_is_not_melody():
    text = ('X:7\nT:Title\nC:Someone\nM:C|\nL:1/4\nR:reel\nK:G % a comment\n'
            '"G"{a}~g/2 !trill!f/2 (ed) [GBd]2 |]\nw: some lyrics\n')
    tokens = encode(text, "scottish")
    assert tokens == ["<s>", "M:2/2", "K:maj", "S:scottish", "c'", "b", "a", "2", "g", "2",
                      "g", "4", "|]", "</s>"]


def test_tie_is_kept_only_between_notes_of_the_same_pitch():
    assert encode(abc_text("A2-A2 B2-c2 |"))[4:-1] == ["G", "2", "-", "G", "2", "A", "2", "B",
                                                        "2", "|"]


def test_a_second_bar_line_without_notes_between_adds_nothing():
    text = abc_text("|: A4 B4 |\n| c4 d4 :|\n|| e4 f4 |] |: g8 :|\n")
    body = encode(text)[4:-1]
    assert body == ["|:", "G", "4", "A", "4", "|", "B", "4", "c", "4", ":|", "d", "4", "e", "4",
                    "|]", "|:", "f", "8", ":|"]


def test_bar_lines_glued_to_endings_and_chords():
    assert encode(abc_text("|: A4 B4 |1 c8 :|2 d8 |]"))[4:-1] == [
        "|:", "G", "4", "A", "4", "|", "[1", "B", "8", ":|", "[2", "c", "8", "|]"]
    assert encode(abc_text("A4 B4 |[DF]4 [EG]4 |]"))[4:-1] == ["G", "4", "A", "4", "|", "E", "4",
                                                              "F", "4", "|]"]


def test_a_comment_after_the_meter_is_ignored():
    assert encode(abc_text("A9 |", meter="9/8 % or 6/8"))[1] == "M:9/8"


def test_essen_phrase_breaks_are_bar_lines_when_the_bar_is_full():
    text = abc_text("A2 B2\nc4 |\nd2", meter="2/4")
    assert encode(text, phrase_breaks_are_bars=True)[4:-1] == ["G", "2", "A", "2", "|", "B", "4",
                                                              "|", "c", "2"]
    assert "|" not in encode(text)[4:6]


@pytest.mark.parametrize("body, symbol, line, column", [
    ("abc d#e|", "'#'", 6, 6),
    ("abc def|\nga*b|", "'*'", 7, 3),
    ("AB@C |", "'@'", 6, 3),
])
def test_unknown_symbol_names_the_symbol_the_line_and_the_column(body, symbol, line, column):
    with pytest.raises(ABCSyntaxError) as info:
        encode(abc_text(body))
    err = info.value
    assert (err.line, err.column) == (line, column)
    assert symbol in str(err) and f"line {line}, column {column}" in str(err)


@pytest.mark.parametrize("text, message", [
    ("X:1\nM:4/4\nL:1/8\nK:D\nab \"cd|", "unclosed quote"),
    ("X:1\nM:4/4\nL:1/8\nK:D\nab {cd|", "unclosed grace"),
    ("X:1\nM:4/4\nL:1/8\nK:D\nab [cd|", "unclosed chord"),
    ("X:1\nM:none\nL:1/8\nK:D\nabc|", "free meter"),
    ("X:1\nM:4/4\nL:1/8\nabc|\nK:D\n", "music before the key"),
    ("X:1\nM:4/4\nL:1/8\n", "no K: header"),
    ("X:1\nL:1/8\nK:D\nabc|", "no meter"),
    ("X:1\nM:4/4\nL:1/8\nK:D\nz8|", "no notes"),
    ("X:1\nM:4/4\nL:1/8\nK:Hp\nabc|", "Hp"),
    ("X:1\nM:4/4\nL:1/8\nK:D\nab c0 d|", "bad note length '0'"),
    ("X:1\nM:4/4\nL:1/8\nK:D\nab c/0 d|", "bad note length"),
    ("X:1\nM:4/4\nL:1/8\nK:D\nabcd|\nM:3/4\nabc|", "meter changes"),
    ("X:1\nM:4/4\nL:1/8\nK:D\nabcd|[K:G]abcd|", "key changes"),
    ("X:1\nM:4/4\nL:1/8\nK:D\nV:1\nabcd|", "voices"),
    ("X:1\nM:4/4\nL:1/8\nK:D\nab Z2|", "multi-bar rest"),
    ("X:1\nM:4/4\nL:1/8\nK:Fb\nab ^^f2|", "cannot write"),  # a triple sharp in C
])
def test_what_cannot_be_read_is_an_abc_syntax_error(text, message):
    with pytest.raises(ABCSyntaxError, match=message):
        encode(text)


def test_encode_rejects_what_is_not_text():
    with pytest.raises(TypeError, match="str"):
        encode(b"X:1")


# --------------------------------------------------------------------------------------------
# encode_fragment: a student's opening as a primer

def test_encode_fragment_transposes_like_the_training_data():
    assert encode_fragment("|: d2e fed |") == ["|:", "c", "2", "d", "e", "d", "c", "|"]
    assert encode_fragment("E2 ^D2 E4", key="E", mode="min") == ["C", "2", "=B,", "2", "C", "4"]
    assert encode_fragment("") == []


def test_encode_fragment_errors_name_the_problem():
    with pytest.raises(TypeError, match="str"):
        encode_fragment(["d", "e"])
    with pytest.raises(ValueError, match="'X'"):
        encode_fragment("def", key="X")
    with pytest.raises(ABCSyntaxError, match="inline field"):
        encode_fragment("de [K:G] f")
    with pytest.raises(ABCSyntaxError) as info:
        encode_fragment("def\nga#b")
    assert (info.value.line, info.value.column) == (2, 3) and "'#'" in str(info.value)


# --------------------------------------------------------------------------------------------
# keys

@pytest.mark.parametrize("text, expected", [
    # spellings found in the corpus's K: fields
    (" G", ("G", 0, "maj")), ("Bb", ("B", -1, "maj")), (" Eb", ("E", -1, "maj")),
    (" F#", ("F", 1, "maj")), ("Am", ("A", 0, "min")), ("E Minor", ("E", 0, "min")),
    ("A Mixolydian", ("A", 0, "mix")), ("A Dorian ", ("A", 0, "dor")), ("ADor", ("A", 0, "dor")),
    ("AMix", ("A", 0, "mix")), ("EMin", ("E", 0, "min")), ("Dmix", ("D", 0, "mix")),
    ("F# Minor", ("F", 1, "min")), ("F#m", ("F", 1, "min")), ("Bphr", ("B", 0, "phr")),
    ("Glyd", ("G", 0, "lyd")), (" Glydian", ("G", 0, "lyd")), (" EDorian", ("E", 0, "dor")),
    ("D Major", ("D", 0, "maj")), (" EM", ("E", 0, "min")), ("Cm", ("C", 0, "min")),
])
def test_parse_key_reads_the_corpus_spellings(text, expected):
    key = parse_key(text)
    assert (key.letter, key.alter, key.mode) == expected


@pytest.mark.parametrize("text", ["Hp", " H", "Bn", "Dmixm", "Dmix=c", ""])
def test_parse_key_rejects_what_is_not_a_key_and_names_it(text):
    with pytest.raises(ValueError, match=repr(text.strip()) if text.strip() else "key"):
        parse_key(text)


def test_key_signatures():
    assert parse_key("D").signature() == {"C": 1, "D": 0, "E": 0, "F": 1, "G": 0, "A": 0, "B": 0}
    assert parse_key("Ador").fifths == 1 and parse_key("Gm").fifths == -2
    assert parse_key("Edor").signature()["C"] == 1


# --------------------------------------------------------------------------------------------
# events: durations after broken rhythm and tuplets

def durations(tokens: list[str]) -> list[tuple[str, Fraction]]:
    return [(e.token, e.duration) for e in events(tokens) if e.kind != "bar"]


def test_events_broken_rhythm():
    assert durations(["G", "2", ">", "A"]) == [("G", 3), ("A", Fraction(1, 2))]
    assert durations(["G", "<", "A", "2"]) == [("G", Fraction(1, 2)), ("A", 3)]
    assert durations(["G", ">>", "A"]) == [("G", Fraction(7, 4)), ("A", Fraction(1, 4))]


def test_events_tuplets():
    third = Fraction(2, 3)
    assert durations(["(3", "A", "B", "c", "d"]) == [("A", third), ("B", third), ("c", third),
                                                    ("d", 1)]
    assert durations(["(3", "A", "2", "z", "2", "c", "2"]) == [("A", 2 * third),
                                                              ("z", 2 * third), ("c", 2 * third)]
    assert durations(["(2", "A", "B"]) == [("A", Fraction(3, 2)), ("B", Fraction(3, 2))]


def test_events_bars_and_onsets():
    evs = list(events(["A", "2", "B", "|", "c", "/2", "d", "/2", "-", "d", "|]"]))
    assert [(e.kind, e.bar, e.onset) for e in evs] == [
        ("note", 0, 0), ("note", 0, 2), ("bar", 0, 3), ("note", 1, 0),
        ("note", 1, Fraction(1, 2)), ("note", 1, 1), ("bar", 1, 2)]
    assert [e.index for e in evs if e.kind == "note"] == [0, 2, 4, 6, 9]


# --------------------------------------------------------------------------------------------
# check_tokens on hand-made tunes

def test_check_tokens_accepts_a_valid_tune():
    v = check_tokens(tune("|:", "C", "D", "E", "F", "G", "4", "|", "c", "8", ":|"))
    assert v.ok and v.problems == []


def test_check_tokens_finds_a_broken_bar():
    v = check_tokens(tune("C", "8", "|", "D", "4", "|", "E", "8", "|]"))
    assert not v.ok and not v.bars_ok and v.bad_bars == [1]
    v = check_tokens(tune("C", "8", "|", "D", "8", "E", "|", "F", "8", "|]"))
    assert v.bad_bars == [1]  # too long


def test_check_tokens_allows_a_pickup_and_a_last_bar_that_completes_it():
    assert check_tokens(tune("G", "2", "|", "C", "8", "|", "D", "6", "|]")).ok
    assert check_tokens(tune("G", "|:", "c", "2", "d", "2", "e", "4", "|", "f", "6", "e", ":|",
                             meter="M:4/4")).ok
    assert check_tokens(tune("|:", "c", "8", "|", "[1", "d", "8", ":|", "[2", "e", "8", "|]")).ok
    # strict: a repeated section's last bar must complete its pickup, and a section that opens
    # on a full bar must close on one (the lenient verdict, `readable`, lets both pass)
    v = check_tokens(tune("G", "|:", "c", "2", "d", "2", "e", "4", "|", "f", "6", ":|"))
    assert not v.ok and v.readable and "pickup" in v.reason
    v = check_tokens(tune("|:", "c", "8", "|", "[1", "d", "4", ":|", "[2", "e", "8", "|]"))
    assert not v.ok and v.readable and not v.bars_ok


def test_check_tokens_finds_unbalanced_repeats_and_missing_parts():
    v = check_tokens(tune("|:", "C", "8", "|", "D", "8", "|"))
    assert not v.ok and not v.repeats_ok and "never closed" in v.problems[0]
    assert not check_tokens(tune("C", "8", "|", "[2", "D", "8", "|]")).repeats_ok
    assert not check_tokens(tune("C", "8", "|")[:-1]).complete
    assert not check_tokens(tune("C", "8", "|", meter="M:?")).headers
    assert not check_tokens(tune("z", "8", "|")).has_notes


def test_check_tokens_accepts_the_examples_of_the_docs():
    text = abc_text("|: A>B cA | d2 (3cBA | B2 z2 :|", meter="2/4")
    assert check_tokens(encode(text)).ok


def _reference_events(tokens):
    """The durations written out the long way (the tokenizer's old, separate arithmetic): a
    second implementation for events(), which now reads the bar clock."""
    out, notes = [], []
    bar, onset = 0, Fraction(0)
    left, scale_t, broken_next = 0, Fraction(1), None
    for i, tok in enumerate(tokens):
        if abc.is_pitch(tok) or tok == "z":
            for n in notes:
                out.append((n[0], n[1], n[2], n[3], bar, onset))
                onset += n[3]
            notes = []
            scale = Fraction(1)
            if left:
                scale, left = scale_t, left - 1
            if broken_next is not None:
                scale, broken_next = scale * broken_next, None
            notes.append(["note" if tok != "z" else "rest", i, tok, scale])
        elif abc.is_duration(tok) and notes:
            notes[-1][3] *= abc.parse_duration(tok)
        elif tok in abc.BROKEN and notes:
            first, second = abc.BROKEN[tok]
            notes[-1][3] *= first
            broken_next = second
        elif tok.startswith("(") and tok[1:].isdigit():
            left = int(tok[1:])
            scale_t = Fraction(int(abc._TUPLET_Q.get(tok[1:], "2")), left)
        elif abc.is_bar(tok):
            for n in notes:
                out.append((n[0], n[1], n[2], n[3], bar, onset))
                onset += n[3]
            notes = []
            out.append(("bar", i, tok, Fraction(0), bar, onset))
            bar, onset = bar + 1, Fraction(0)
    for n in notes:
        out.append((n[0], n[1], n[2], n[3], bar, onset))
        onset += n[3]
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["G", "c'", "z", "2", "/2", "3/2", "4", ">", "<", "(3", "-",
                                 "|", ":|", "|:", "[1", "M:6/8"]), max_size=40))
def test_events_read_off_the_bar_clock_match_the_long_way(tokens):
    ours = [(e.kind, e.index, e.token, e.duration, e.bar, e.onset) for e in abc.events(tokens)]
    assert ours == _reference_events(tokens)


# the two readers share one scanner (toolkit.music.symbols): on melody they must agree -----------

_SYMBOLS = st.sampled_from(["C", "d'", "^F", "_B,", "=e", "z", "G2", "A/2", "c3/2", "E/", "|",
                            "-", ">", "(3CDE", '"Am"', "!trill!", "~", "{g}", " ", "[CEG]"])


@settings(max_examples=120, deadline=None)
@given(body=st.lists(_SYMBOLS, min_size=1, max_size=24))
def test_the_tokenizer_and_the_score_reader_find_the_same_notes(body):
    """Every note or rest the score reader sounds is one pitch or rest token of the tokenizer
    (a chord: its top note), whatever text, grace notes or decorations lie between."""
    from toolkit.music.reader import ABCError, parse_abc

    text = "X:1\nM:4/4\nL:1/8\nK:C\n" + "".join(body).replace("-", "-C") + "\n"
    try:
        tokens = abc.encode(text)
    except abc.ABCSyntaxError:
        return  # e.g. no notes at all
    try:
        parsed = parse_abc(text)
    except ABCError:
        return
    notes = [t for t in tokens if abc.is_pitch(t) or t == "z"]
    assert len(notes) == len(parsed.events)
