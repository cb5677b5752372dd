"""The bar clock: the filled length of the current bar, as the model and the constraint read it.

What users rely on: the clock counts a bar exactly as the validity checker and the decoder do
(``abc.events``), so a model reading it learns true bar lengths; a model with the clock gives the
same predictions whether a tune is fed in one go or token by token (generation).
"""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.lm.barclock import (
    FILLED_MAX,
    N_FEATURES,
    ROOM_BASE,
    ROOM_LOW,
    START,
    BarClock,
    advance,
    feature,
)
from toolkit.lm.model import FolkLSTM, ModelConfig
from toolkit.music.tokens import events, is_duration, is_pitch

BODY_TOKENS = ["C", "D", "G", "a", "z", "/2", "/4", "2", "3", "3/2", "4", ">", "<", "(3", "(2",
               "-", "|", "||", ":|", "|:", "[1", "[2"]
VOCAB = ["<pad>", "<s>", "</s>", "M:6/8", "K:maj", "S:?", *BODY_TOKENS]


def grammatical(tokens: list[str]) -> list[str]:
    """Keep the token grammar that generation enforces: a duration only right after a note or
    rest, broken rhythm only after a note or its duration."""
    out: list[str] = []
    for tok in tokens:
        prev = out[-1] if out else ""
        if is_duration(tok) and not (is_pitch(prev) or prev == "z"):
            continue
        if tok in (">", "<") and not (is_pitch(prev) or prev == "z" or is_duration(prev)):
            continue
        out.append(tok)
    return out


@given(st.lists(st.sampled_from(BODY_TOKENS), max_size=60).map(grammatical))
@settings(max_examples=300, deadline=None)
def test_clock_counts_each_bar_like_abc_events(body):
    per_bar: dict[int, Fraction] = {}
    for e in events(body):
        if e.kind != "bar":
            per_bar[e.bar] = per_bar.get(e.bar, Fraction(0)) + e.duration
    clock, at_bar_end = START, {}
    for tok in body:
        before, clock = clock, advance(clock, tok)
        if clock.bar != before.bar:
            at_bar_end[before.bar] = before.filled
    at_bar_end[clock.bar] = clock.filled
    for bar, length in per_bar.items():
        assert at_bar_end[bar] == length, (bar, body)


def test_clock_feature_reads_twelfths_of_an_eighth_and_is_capped():
    clock = START
    for tok in ["G", "2", ">", "A", "(3", "B", "c", "d"]:   # 3 + 1/2 + 3 × 2/3 eighths
        clock = advance(clock, tok)
    assert clock.filled == Fraction(11, 2)
    assert feature(clock) == 66
    for tok in ["G", "16", "G", "16"]:
        clock = advance(clock, tok)
    assert feature(clock) == FILLED_MAX
    assert feature(advance(clock, "|")) == 0


def test_clock_reads_the_room_left_once_the_meter_is_known():
    clock = START
    for tok in ["<s>", "M:3/4", "K:maj", "S:?", "|:", "A", "2"]:
        clock = advance(clock, tok)
    assert clock.full == 6 and clock.full - clock.filled == 4
    assert feature(clock) == ROOM_BASE + ROOM_LOW + 48          # 4 eighths left
    full_bar = feature(advance(advance(clock, "B"), "4"))
    assert full_bar == ROOM_BASE + ROOM_LOW                     # no room: a bar line is due
    over = advance(advance(clock, "B"), "8")                    # 2 + 8 > 6: overflowed
    assert ROOM_BASE <= feature(over) < ROOM_BASE + ROOM_LOW
    assert feature(advance(over, "|")) == ROOM_BASE + ROOM_LOW + 72   # a new bar: all room
    assert max(feature(advance(START, "M:4/1")), 0) < N_FEATURES


@given(st.lists(st.sampled_from(range(len(VOCAB))), min_size=2, max_size=40),
       st.integers(1, 39))
@settings(max_examples=100, deadline=None)
def test_bar_clock_continues_across_calls(ids, cut):
    clock = BarClock(VOCAB)
    whole, _ = clock.run([ids])
    first, state = clock.run([ids[:cut]])
    rest, _ = clock.run([ids[cut:]], state)
    assert first[0] + rest[0] == whole[0]


@pytest.mark.parametrize("clock_head", [False, True])
def test_model_with_bar_clock_gives_the_same_logits_in_one_go_and_step_by_step(clock_head):
    torch.manual_seed(0)
    model = FolkLSTM(ModelConfig(VOCAB, emb=16, hidden=24, layers=2, bar_clock=True,
                                 clock_head=clock_head)).eval()
    if clock_head:
        torch.nn.init.normal_(model.clock_bias.weight)  # zeros at the start: make it count
    tokens = ["<s>", "M:6/8", "K:maj", "S:?", "|:", "G", "2", ">", "a", "(3", "C", "D", "G",
              "|", "z", "3", ":|", "</s>"]
    ids = model.token_ids(tokens)[None]
    with torch.no_grad():
        whole, _ = model(ids)
        logits, state = model(ids[:, :4])
        steps = [logits[:, -1]]
        for i in range(4, ids.shape[1] - 1):
            logits, state = model.step(ids[:, i], state)
            steps.append(logits)
    assert torch.allclose(torch.stack(steps, 1), whole[:, 3:-1], atol=1e-5)


def test_model_reads_the_bar_clock():
    """Two prefixes that differ only in how full the bar is get different predictions."""
    torch.manual_seed(0)
    model = FolkLSTM(ModelConfig(VOCAB, emb=16, hidden=24, layers=1, bar_clock=True)).eval()
    with torch.no_grad():
        model.bar_embed.weight.normal_()
        a = model.next_logits(["M:6/8", "K:maj", "S:?", "G", "2"])
        b = model.next_logits(["M:6/8", "K:maj", "S:?", "G", "4"])
        model.bar_embed.weight.zero_()
        c = model.next_logits(["M:6/8", "K:maj", "S:?", "G", "2"])
        d = model.next_logits(["M:6/8", "K:maj", "S:?", "G", "4"])
    assert not torch.allclose(a, b)
    assert not torch.allclose(a, c)
    assert c.shape == d.shape == (len(VOCAB),)


def test_clock_head_biases_the_output_by_the_room_left_in_the_bar():
    """With the clock head, the bias row of the bar's room is added to the logits, and only it."""
    torch.manual_seed(0)
    model = FolkLSTM(ModelConfig(VOCAB, emb=16, hidden=24, layers=1, bar_clock=True,
                                 clock_head=True)).eval()
    prefix = ["M:6/8", "K:maj", "S:?", "G", "2"]
    with torch.no_grad():
        plain = model.next_logits(prefix)
        row = model.clock_bias.weight[ROOM_BASE + ROOM_LOW + 4 * 12]  # 4 eighths of room left
        row.copy_(torch.arange(len(VOCAB), dtype=torch.float))
        biased = model.next_logits(prefix)
    assert torch.allclose(biased - plain, torch.arange(len(VOCAB), dtype=torch.float))
    with pytest.raises(ValueError, match="bar_clock"):
        FolkLSTM(ModelConfig(VOCAB, clock_head=True))
