"""Meter-constrained decoding: hand-built bar states, and whole tunes at a high temperature."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch

from toolkit import generate, load_model
from toolkit import sampling as S
from toolkit.lm.sampling.constraints import BarState, MeterConstraint
from toolkit.measure.metrics import check_tokens

VOCAB = ["<pad>", "<s>", "</s>", "M:6/8", "K:maj", "S:?", "G", "A", "z", "2", "3", "4", "6",
         "/2", ">", "|", ":|", "|:", "-", "(3", "[1"]


def state_after(tokens: list[str], meter: str = "M:6/8") -> BarState:
    st = BarState(Fraction(int(meter[2]), int(meter[4])) * 8)
    for t in tokens:
        st.push(t)
    return st


def allowed(st: BarState) -> set[str]:
    return {t for t, ok in zip(VOCAB, st.allowed(VOCAB), strict=True) if ok}


def test_a_full_bar_requires_a_bar_line():
    st = state_after(["|", "G", "2", "A", "G", "2", "A"])  # 2+1+2+1 = 6 eighths of 6/8
    assert st.filled == 6
    # a bar line, a section end, the end, a tie — or shortening the last note ("/2")
    assert allowed(st) == {"|", ":|", "|:", "</s>", "-", "/2"}


def test_durations_that_would_overflow_are_removed():
    st = state_after(["|", "G", "2", "A", "2", "G"])  # 5 of 6 filled, G may still grow
    ok = allowed(st)
    assert {"2", "/2", "A", "z"} <= ok  # G2 fills the bar exactly; so does G then an eighth
    assert not {"3", "4", "6", "|"} & ok  # longer would overflow; a bar line now cuts it short
    st = state_after(["|", "G", "2", "A", "2", "G", "2"])  # full: no new note fits
    assert not {"A", "z", "2"} & allowed(st)


def test_a_plain_bar_line_may_not_cut_a_bar_short_except_the_pickup():
    assert "|" in allowed(state_after(["G"]))  # bar 0: a pickup
    st = state_after(["|", "G", "2"])
    assert "|" not in allowed(st) and ":|" in allowed(st)  # a section end may be short


def test_broken_rhythm_and_tuplets_are_counted():
    st = state_after(["|", "G", ">", "A"])  # 3/2 + 1/2 = 2 eighths
    assert st.filled == 2
    st = state_after(["|", "(3", "G", "A", "G"])  # three in the time of two
    assert st.filled == 2


def test_the_step_never_removes_every_token():
    step = MeterConstraint()
    history = torch.tensor([[VOCAB.index(t) for t in ["<s>", "M:6/8", "K:maj", "S:?", "|"]]])
    ctx = S.Context(history=history, vocab=VOCAB)
    logits = torch.full((1, len(VOCAB)), float("-inf"))
    logits[0, VOCAB.index("4")] = 0.0  # only a stray duration is left: nothing the rule allows
    out = step.step(logits, ctx)
    assert torch.isfinite(out).sum() == 1


def test_the_step_needs_the_generators_context():
    with pytest.raises(ValueError, match="ctx.history"):
        MeterConstraint().step(torch.zeros(1, 4), None)


def test_every_bar_is_complete_at_temperature_three():
    model = load_model()
    chain = S.chain(MeterConstraint(), S.temperature(3.0))
    tunes = generate(model, n=24, seed=5, sampler=chain, max_tokens=200)
    # no bar too long or cut short inside a section (the lenient rule: the meter constraint
    # still lets a section end on a short bar; S.grammar() is the strict one)
    assert all(check_tokens(t.tokens).bad_bars == [] for t in tunes)
    free = generate(model, n=24, seed=5, sampler=S.chain(S.temperature(3.0)), max_tokens=200)
    assert sum(check_tokens(t.tokens).bad_bars == [] for t in free) < 24  # the constraint did it
