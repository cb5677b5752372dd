"""The grammar of a valid tune: the strict checker's reasons, and S.grammar() keeping every tune
valid — under any logits (property tests), within the token budget, and as music21 reads it."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolkit import generate, load_model
from toolkit import sampling as S
from toolkit.lm.sampling.constraints import CLOSING_MAX, GrammarConstraint, _GrammarTables
from toolkit.measure.reference import check_abc_music21
from toolkit.music import grammar as G
from toolkit.music.check import check_tokens
from toolkit.music.tokens import EOS, decode

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model():
    return load_model()


def tune(*body: str, meter: str = "M:4/4", mode: str = "K:maj") -> list[str]:
    return ["<s>", meter, mode, "S:?", *body, EOS]


# ---- the strict checker names each class of error ------------------------------------------

GOOD = tune("G", "2", "|:", "c", "2", "-", "c", "2", "d", ">", "e", "(3", "f", "g", "a", "|",
            "[1", "b", "2", "c'", "4", ":|", "[2", "b", "2", "c'", "4", "|]")


def test_a_tune_with_every_feature_is_valid():
    v = check_tokens(GOOD)
    assert v.ok, v.problems


@pytest.mark.parametrize("body, field, words", [
    (("F", "-", "-", "F", "7", "|]"), "ties_ok", "tie"),                       # F--
    (("F", "8", "-", "|", "F", "8", "|]"), "ties_ok", "tie"),                  # tie before a bar
    (("F", "4", "-", "G", "4", "|]"), "ties_ok", "same pitch"),               # different pitches
    (("^F", "4", "-", "F", "4", "|]"), "ties_ok", "same pitch"),              # accidental carry
    (("(3", "F", "G", "|", "A", "8", "|]"), "tuplets_ok", "three notes"),     # cut by a bar
    (("(3", "F", "2", "G", "A", "F", "4", "|]"), "tuplets_ok", "as long"),    # unequal notes
    (("F", ">", "G", "2", "A", "4", "|]"), "broken_ok", "as long"),           # unequal pair
    (("c'", ">", "b", ">", "c'", "B", "4", "|]"), "broken_ok", "cannot follow"),  # chained
    (("C", "8", "|", "D", "4"), "complete", "middle of a bar"),                 # stops mid-bar
    (("|:", "C", "8", "|", "D", "8", "|]"), "repeats_ok", ":|"),               # :| missing
    (("C", "8", "|", "D", "4", "[1", "E", "8", ":|"), "repeats_ok", "[1"),     # [1 misplaced
    (("G", "2", "|:", "c", "8", "|", "d", "8", ":|"), "bars_ok", "pickup"),    # not completed
])
def test_the_checker_rejects_each_class_with_a_reason(body, field, words):
    v = check_tokens(tune(*body))
    assert not v.ok and not getattr(v, field), v
    assert any(words in p for p in v.problems), v.problems


def test_a_cut_tune_is_not_complete():
    v = check_tokens(GOOD[:-3])
    assert not v.ok and not v.complete


# ---- the grammar's own promises ------------------------------------------------------------

def _random_walk(rng, vocab, meter, steps):
    """A state reached by allowed tokens drawn at random."""
    s = G.start(meter)
    for _ in range(steps):
        allowed = [t for t in vocab if G.why_not(s, t) is None and t != EOS]
        if not allowed:
            break
        s = G.advance(s, allowed[int(rng.integers(len(allowed)))])
    return s


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), meter=st.sampled_from(["M:6/8", "M:4/4", "M:3/4", "M:2/4",
                                                           "M:9/8", "M:3/2", "M:4/1"]),
       steps=st.integers(0, 60))
def test_the_closing_is_allowed_short_and_consistent(model, seed, meter, steps):
    import numpy as np

    tables = _GrammarTables.of(model.vocab)
    s = _random_walk(np.random.default_rng(seed), model.vocab, meter, steps)
    path = G.finish(s, tables.durations, pitch=tables.pitch)
    assert path[-1] == EOS and len(path) <= CLOSING_MAX
    assert tables.closing(s) == len(path)
    for tok in path:  # every closing token is allowed, and the rest is the next state's closing
        assert G.why_not(s, tok) is None, (s, tok)
        s = G.advance(s, tok)


def _run_grammar(vocab, meter, mode, logits_fn, max_tokens):
    """Drive S.grammar() alone, as the generator does, with the given logits each step."""
    step = GrammarConstraint()
    head = ["<s>", meter, mode, "S:?"]
    ids = [vocab.index(t) for t in head]
    for i in range(max_tokens):
        ctx = S.Context(history=torch.tensor([ids]), step=i, vocab=vocab, max_tokens=max_tokens)
        out = step.step(logits_fn(i), ctx)
        tok = int(torch.argmax(out[0]))
        assert out[0, tok] > float("-inf")
        step.observe(torch.tensor([tok]), None)
        ids.append(tok)
        if vocab[tok] == EOS:
            break
    return [vocab[i] for i in ids]


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1), scale=st.sampled_from([0.1, 1.0, 5.0, 30.0]),
       meter=st.sampled_from(["M:6/8", "M:4/4", "M:3/4", "M:2/4", "M:9/8", "M:3/2"]),
       mode=st.sampled_from(["K:maj", "K:min", "K:dor", "K:mix"]),
       max_tokens=st.integers(30, 220), eos_bias=st.sampled_from([0.0, 5.0, -5.0]))
def test_any_logits_under_the_grammar_give_a_valid_tune(model, seed, scale, meter, mode,
                                                       max_tokens, eos_bias):
    vocab = list(model.vocab)
    g = torch.Generator().manual_seed(seed)
    eos = vocab.index(EOS)

    def logits(_i):
        x = torch.randn(1, len(vocab), generator=g) * scale
        x[0, eos] += eos_bias
        return x

    tokens = _run_grammar(vocab, meter, mode, logits, max_tokens)
    assert tokens[-1] == EOS and len(tokens) - 4 <= max_tokens
    v = check_tokens(tokens)
    assert v.ok, (v.problems, " ".join(tokens))


def test_generated_tunes_are_valid_under_the_checker_and_music21(model):
    for temperature in (1.0, 3.0):
        tunes = generate(model, n=24, seed=3, temperature=temperature, constrain="grammar",
                         max_tokens=160)
        for t in tunes:
            assert check_tokens(t.tokens).ok, t.tokens
        outside = [check_abc_music21(decode(t.tokens)).ok for t in tunes]
        assert sum(outside) >= 22, [check_abc_music21(decode(t.tokens)).problems
                                     for t in tunes]


def test_constrain_is_the_grammar_step_first_in_the_chain(model):
    a = generate(model, n=4, seed=9, sampler=S.chain(S.temperature(2.0), S.top_p(0.9)),
                 constrain="grammar")
    b = generate(model, n=4, seed=9,
                 sampler=S.chain(S.grammar(), S.temperature(2.0), S.top_p(0.9)))
    assert [t.tokens for t in a] == [t.tokens for t in b]


def test_the_grammar_composes_with_guidance_and_your_own_step(model):
    def no_rests(logits, ctx):
        z = ctx.vocab.index("z")
        return logits.index_fill(1, torch.tensor([z]), float("-inf"))

    tunes = generate(model, n=6, seed=2, style="irish", guidance=2.0, constrain="grammar",
                     sampler=S.chain(S.custom(no_rests), S.temperature(1.5)))
    assert all(check_tokens(t.tokens).ok and "z" not in t.tokens for t in tunes)


def test_every_tune_closes_within_a_small_budget(model):
    tunes = generate(model, n=16, seed=4, temperature=2.0, constrain="grammar", max_tokens=40)
    for t in tunes:
        assert t.tokens[-1] == EOS and len(t.tokens) - 4 <= 40
        assert check_tokens(t.tokens).ok


# ---- clear errors --------------------------------------------------------------------------

def test_bad_constrain_values_name_the_argument(model):
    with pytest.raises(ValueError, match="constrain must be one of 'grammar', 'meter'"):
        generate(model, constrain="json")
    with pytest.raises(ValueError, match="stop_at_end"):
        generate(model, constrain="grammar", stop_at_end=False)


def test_a_budget_too_small_for_any_tune_is_named(model):
    with pytest.raises(RuntimeError, match="max_tokens"):
        generate(model, n=2, seed=0, meter="6/8", constrain="grammar", max_tokens=2)


def test_a_primer_that_breaks_the_grammar_is_named(model):
    with pytest.raises(ValueError, match="opening breaks the grammar at its token"):
        generate(model, n=1, seed=0, meter="6/8", prime=["F", "-", "G"], constrain="grammar")


def test_a_truncation_before_the_grammar_is_named(model):
    def eos_only(logits, ctx):  # a step that keeps only </s>, before the grammar
        keep = torch.arange(logits.shape[1]) == ctx.vocab.index(EOS)
        return torch.where(keep, logits, torch.full_like(logits, float("-inf")))

    with pytest.raises(ValueError, match="put S.grammar\\(\\) first"):
        generate(model, n=1, seed=0, sampler=S.chain(S.custom(eos_only), S.grammar()))


def _min_fill(s: G.State):
    """The oracle: the least the bar will hold once what is open in state ``s`` is complete
    (the current note at its shortest or needed length, the tuplet's and pair's rest too)."""
    c = s.clock
    filled = c.filled
    m_now = G._mult(s)
    if s.kind == "note":
        m_now = G.SHORTEST if s.need is None else s.need
        filled -= c.last - s.scale * m_now
    if c.tuplet_left:
        m = s.tuplet_m if s.tuplet_m is not None else (
            m_now if s.kind in ("note", "dur") and s.tuplet_first else G.SHORTEST)
        filled += c.tuplet_left * c.tuplet_scale * m
    if c.broken_next is not None and s.kind == "broken":
        filled += c.broken_next * s.need
    return filled


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), meter=st.sampled_from(["M:6/8", "M:4/4", "M:3/4", "M:9/8"]),
       steps=st.integers(0, 50))
def test_the_quick_bar_arithmetic_agrees_with_building_the_state(model, seed, meter, steps):
    import numpy as np

    s = _random_walk(np.random.default_rng(seed), model.vocab, meter, steps)
    for tok in ("c", "z", "(3", ">", "<"):
        why = G.why_not(s, tok)
        if why is None or "room" in why[1]:  # the cases where why_not reads the arithmetic
            assert G._fill_after(s, tok) == _min_fill(G.advance(s, tok)), (s, tok)


@pytest.mark.parametrize("steps", [
    lambda: [S.temperature(2.0), S.top_k(5)],
    lambda: [S.temperature(1.5), S.typical_p(0.5)],
    lambda: [S.temperature(2.0), S.epsilon(3e-4)],
    lambda: [S.temperature(2.0), S.eta(3e-4)],
    lambda: [S.mirostat(tau=5.0)],
    lambda: [S.repetition_penalty(1.5), S.no_repeat_ngram(3)],
    lambda: [S.temperature_by_bar([0.5, 2.5])],
    lambda: [S.dynamic_temperature(0.5, 3.0)],
    lambda: [S.creativity(0.9)],
], ids=["top-k", "typical", "epsilon", "eta", "mirostat", "penalties", "by-bar", "dynamic",
        "creativity"])
def test_the_grammar_composes_with_every_kind_of_step(model, steps):
    tunes = generate(model, n=8, seed=6, sampler=S.chain(*steps()), constrain="grammar",
                     max_tokens=120)
    for t in tunes:
        v = check_tokens(t.tokens)
        assert v.ok, (v.problems, " ".join(t.tokens))
