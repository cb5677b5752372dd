"""Our sampler steps against an outside implementation: Hugging Face transformers' logits
processors, on the same random logits.

Each step must keep the same tokens as its transformers counterpart and give the same values (or,
for guidance, which transformers computes on log-probabilities, the same distribution: its
``UnbatchedClassifierFreeGuidanceLogitsProcessor`` runs a model for the unconditional logits, so
its formula is applied here by hand to the same two rows).  Random
continuous logits have no exact ties, and the parameters keep clear of the boundaries where a
"≥" against a "<" could differ on one token.  Where the two are known to differ by design, the
test says how.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit import sampling as S

lp = pytest.importorskip("transformers.generation.logits_process")

NEG = float("-inf")


def _logits(seed: int, batch: int, vocab: int = 117, scale: float = 3.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, vocab, generator=g) * scale


def _history(seed: int, batch: int, length: int = 24, vocab: int = 117) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed + 1)
    return torch.randint(0, 12, (batch, length), generator=g)  # few ids: repeats happen


def _same(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    kept_ours, kept_theirs = ours > NEG, theirs > NEG
    assert torch.equal(kept_ours, kept_theirs), (
        f"kept sets differ in {int((kept_ours != kept_theirs).sum())} places")
    assert torch.allclose(ours[kept_ours], theirs[kept_theirs], rtol=1e-5, atol=1e-5)


SEEDS = st.integers(0, 10_000)
BATCH = st.sampled_from([1, 3, 64])


#: step -> (ours, theirs, the parameter's range): the warpers that read the logits alone
WARPERS = {
    "temperature": (S.temperature, lambda v: lp.TemperatureLogitsWarper(v), st.floats(0.1, 5.0)),
    "top-k": (S.top_k, lambda v: lp.TopKLogitsWarper(v, filter_value=NEG), st.integers(1, 116)),
    "top-p": (S.top_p, lambda v: lp.TopPLogitsWarper(v, filter_value=NEG),
              st.floats(0.05, 0.99)),
    "min-p": (S.min_p, lambda v: lp.MinPLogitsWarper(v, filter_value=NEG), st.floats(0.01, 0.9)),
    "typical": (S.typical_p, lambda v: lp.TypicalLogitsWarper(v, filter_value=NEG),
                st.floats(0.05, 0.95)),
    "epsilon": (S.epsilon, lambda v: lp.EpsilonLogitsWarper(v, filter_value=NEG),
                st.floats(1e-4, 0.05)),
    "eta": (S.eta, lambda v: lp.EtaLogitsWarper(v, filter_value=NEG, device="cpu"),
            st.floats(1e-4, 0.05)),
}


@pytest.mark.parametrize("name", WARPERS)
@settings(max_examples=40, deadline=None)
@given(seed=SEEDS, batch=BATCH, data=st.data())
def test_warper(name, seed, batch, data):
    ours, theirs, values = WARPERS[name]
    value = data.draw(values, label=name)
    x = _logits(seed, batch)
    _same(ours(value)(x), theirs(value)(None, x.clone()))


def _ctx(history: torch.Tensor) -> S.Context:
    return S.Context(history=history, step=history.shape[1], vocab=[str(i) for i in range(117)])


@settings(max_examples=40, deadline=None)
@given(seed=SEEDS, batch=BATCH, penalty=st.floats(1.05, 3.0))
def test_repetition_penalty(seed, batch, penalty):
    x, h = _logits(seed, batch), _history(seed, batch)
    theirs = lp.RepetitionPenaltyLogitsProcessor(penalty)(h, x.clone())
    _same(S.repetition_penalty(penalty)(x, _ctx(h)), theirs)


@settings(max_examples=40, deadline=None)
@given(seed=SEEDS, batch=BATCH, n=st.integers(2, 4))
def test_no_repeat_ngram(seed, batch, n):
    x, h = _logits(seed, batch), _history(seed, batch)
    theirs = lp.NoRepeatNGramLogitsProcessor(n)(h, x.clone())
    ours = S.no_repeat_ngram(n)(x, _ctx(h))
    # transformers may ban every token of a row; ours keeps at least one (the row unchanged)
    fine = (theirs > NEG).any(dim=-1)
    _same(ours[fine], theirs[fine])


@settings(max_examples=40, deadline=None)
@given(seed=SEEDS, batch=BATCH, scale=st.floats(0.0, 5.0))
def test_guidance_gives_the_same_distribution(seed, batch, scale):
    cond, uncond = _logits(seed, batch), _logits(seed + 7, batch)
    ctx = S.Context(uncond_logits=uncond)
    ours = S.guidance(scale)(cond, ctx).softmax(-1)
    # transformers mixes log-probabilities: uncond + s * (cond - uncond) on log_softmax; the
    # per-row constants cancel in softmax, so the distributions agree
    c, u = cond.log_softmax(-1), uncond.log_softmax(-1)
    theirs = (scale * (c - u) + u).softmax(-1)
    assert torch.allclose(ours, theirs, atol=1e-5)
