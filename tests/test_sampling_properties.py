"""Property-based tests of the sampler steps over awkward logits.

The logits mix ordinary values with ties, -inf (tokens an earlier step removed), huge (±1e30)
and tiny (1e-30) values, one token (V = 1) and batches whose rows differ. Whatever the input,
every step must return logits whose softmax is a distribution with at least one token left.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from toolkit import sampling as S

SETTINGS = settings(max_examples=100, deadline=None)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors gain nothing from threads, and on a busy 2-core machine an OpenMP barrier
    can stall a (4, 12) softmax for 10 ms."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
SPECIAL = [float("-inf"), 0.0, 1.0, -1.0, 2.0, 1e30, -1e30, 1e-30, -1e-30, 3.5]


def _rows_with_a_token(a: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    x = torch.tensor(a, dtype=dtype)
    x[~torch.isfinite(x).any(dim=-1), 0] = 0.0
    return x


def logits(max_b: int = 4, max_v: int = 12, dtype: torch.dtype = torch.float32):
    """(B, V) logits; every row keeps at least one finite entry."""
    value = st.one_of(st.sampled_from(SPECIAL), st.floats(-30, 30, width=32))
    shape = st.tuples(st.integers(1, max_b), st.integers(1, max_v))
    return hnp.arrays(np.float64, shape, elements=value).map(
        lambda a: _rows_with_a_token(a, dtype))


def small_int_logits(max_b: int = 4, max_v: int = 12):
    """Logits on an integer grid (gaps ≥ 1 or exact ties), some removed."""
    value = st.one_of(st.integers(-4, 4).map(float), st.just(float("-inf")))
    shape = st.tuples(st.integers(1, max_b), st.integers(1, max_v))
    return hnp.arrays(np.float64, shape, elements=value).map(
        lambda a: _rows_with_a_token(a, torch.float32))


def probs64(x: torch.Tensor) -> np.ndarray:
    return torch.softmax(x.double(), dim=-1).numpy()


def assert_distribution(out: torch.Tensor, inp: torch.Tensor) -> None:
    """Same shape, no NaN or +inf, ≥ 1 token per row, softmax sums to 1."""
    assert out.shape == inp.shape
    assert not torch.isnan(out).any()
    assert not (out == math.inf).any()
    assert torch.isfinite(out).any(dim=-1).all(), "a row lost every token"
    p = torch.softmax(out.double(), dim=-1)
    assert torch.allclose(p.sum(dim=-1), torch.ones(out.shape[0], dtype=torch.float64))


truncations = st.one_of(
    st.integers(0, 15).map(S.TopK),
    st.floats(1e-6, 1.0).map(S.TopP),
    st.floats(0.0, 1.0).map(S.MinP),
    st.floats(1e-6, 1.0).map(S.TypicalP),
    st.floats(0.0, 0.99).map(S.Epsilon),
    st.floats(0.0, 0.99).map(S.Eta),
    st.builds(S.Mirostat, st.floats(0.1, 8.0), st.floats(0.01, 1.0)),
)
reshapers = st.one_of(
    st.floats(0.0, 5.0).map(S.Temperature),
    st.sampled_from([0.0, 1e-300, 1e-6, 1e-3, 1e39, 1e300]).map(S.Temperature),
    st.builds(S.DynamicTemperature, st.just(0.0) | st.floats(0.01, 1.0), st.floats(1.0, 3.0),
              st.floats(0.1, 3.0)),
    st.floats(0.0, 1.0).map(S.Creativity),
)


@SETTINGS
@given(logits(), st.one_of(truncations, reshapers))
def test_every_step_returns_a_distribution(x, step):
    assert_distribution(step(x), x)


@SETTINGS
@given(logits(), truncations)
def test_truncation_only_removes(x, step):
    """A truncation step never revives a removed token and never changes a kept logit."""
    out = step(x)
    kept = torch.isfinite(out)
    assert not (kept & ~torch.isfinite(x)).any()
    assert torch.equal(out[kept], x[kept])


@SETTINGS
@given(logits(), st.lists(st.one_of(truncations, reshapers), max_size=5))
def test_any_chain_leaves_a_token_and_draws_a_kept_one(x, steps):
    chain = S.chain(*steps)
    out = chain(x)
    assert_distribution(out, x)
    # stateful steps (mirostat) change only after a draw, so this is what the draw will see
    final = chain(x)
    tokens = chain.sample(x, generator=torch.Generator().manual_seed(0))
    assert tokens.shape == (x.shape[0],)
    assert torch.isfinite(final.gather(-1, tokens[:, None])).all(), "drew a removed token"


@SETTINGS
@given(logits(dtype=torch.float64))
def test_temperature_zero_keeps_exactly_the_first_argmax(x):
    out = S.Temperature(0)(x)
    for row_in, row_out in zip(x.tolist(), out.tolist(), strict=True):
        best = max(row_in)
        first = row_in.index(best)                 # ties: the lowest index among the maxima
        kept = [i for i, v in enumerate(row_out) if math.isfinite(v)]
        assert kept == [first]
        assert row_out[first] == best              # the kept logit itself is not moved


@SETTINGS
@given(small_int_logits(), st.integers(0, 2**31 - 1))
def test_temperature_towards_zero_draws_the_argmax(x, seed):
    """T = 1e-6: every token below the maximum (gap ≥ 1) gets probability 0, no NaN."""
    out = S.Temperature(1e-6)(x)
    assert_distribution(out, x)
    tokens = S.draw(out, torch.Generator().manual_seed(seed))
    assert torch.equal(x.gather(-1, tokens[:, None]).squeeze(-1), x.amax(dim=-1))


@SETTINGS
@given(logits(), st.integers(0, 15))
def test_top_k_keeps_every_token_at_least_the_kth_largest(x, k):
    out = S.TopK(k)(x)
    if k == 0 or k >= x.shape[1]:
        assert torch.equal(out, x)
        return
    kth = torch.sort(x, dim=-1, descending=True).values[:, k - 1 : k]
    assert torch.equal(torch.isfinite(out), torch.isfinite(x) & (x >= kth))


@SETTINGS
@given(logits(max_v=16, dtype=torch.float64), st.floats(1e-4, 1.0))
def test_top_p_keeps_the_minimal_set_reaching_p(x, p):
    out = S.TopP(p)(x)
    probs = probs64(x)
    kept = torch.isfinite(out).numpy()
    for row_p, row_kept in zip(probs, kept, strict=True):
        mass = row_p[row_kept].sum()
        assert mass >= p - 1e-9, "kept mass below p"
        smallest = row_p[row_kept].min()
        assert (row_p[~row_kept] <= smallest).all(), "kept a less likely token than a removed one"
        if row_kept.sum() > 1:
            assert mass - smallest < p + 1e-9, "not minimal: the set is still ≥ p without it"


@SETTINGS
@given(logits(dtype=torch.float64), st.floats(0.0, 1.0))
def test_min_p_threshold(x, min_p):
    kept = torch.isfinite(S.MinP(min_p)(x)).numpy()
    # compared in log space: p and min_p · p_max can both underflow to 0 as plain floats
    logp = torch.log_softmax(x.double(), dim=-1).numpy()
    cut = (math.log(min_p) if min_p > 0 else -math.inf) + logp.max(axis=-1, keepdims=True)
    assert not (kept & (logp < cut - 1e-9)).any(), "kept a token below min_p · p_max"
    if min_p > 0:
        assert (kept | (logp < cut + 1e-9) | ~np.isfinite(x.numpy())).all()


@SETTINGS
@given(logits(dtype=torch.float64), st.floats(0.0, 0.99))
def test_epsilon_threshold_keeps_the_top_token(x, eps):
    out = S.Epsilon(eps)(x)
    kept = torch.isfinite(out).numpy()
    probs = probs64(x)
    top = (x == x.amax(dim=-1, keepdim=True)).numpy()
    assert (kept[top]).all(), "the most likely token must survive"
    if eps > 0:
        assert not (kept & ~top & (probs < eps * (1 - 1e-9))).any()
        assert (kept | top | (probs < eps * (1 + 1e-9))).all()


@SETTINGS
@given(logits(dtype=torch.float64), st.floats(1e-6, 0.99))
def test_eta_threshold_follows_the_entropy(x, eps):
    kept = torch.isfinite(S.Eta(eps)(x)).numpy()
    probs = probs64(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.nansum(np.where(probs > 0, probs * np.log(probs), 0.0), axis=-1)
    floor = np.minimum(eps, math.sqrt(eps) * np.exp(-entropy))[:, None]
    top = (x == x.amax(dim=-1, keepdim=True)).numpy()
    assert kept[top].all()
    assert not (kept & ~top & (probs < floor * (1 - 1e-9))).any()
    assert (kept | top | (probs < floor * (1 + 1e-9))).all()


@SETTINGS
@given(logits(max_v=16, dtype=torch.float64), st.floats(1e-3, 1.0))
def test_typical_keeps_the_most_typical_tokens_up_to_the_mass(x, mass):
    kept = torch.isfinite(S.TypicalP(mass)(x)).numpy()
    probs = probs64(x)
    for row_p, row_kept in zip(probs, kept, strict=True):
        assert row_p[row_kept].sum() >= mass - 1e-9
        with np.errstate(divide="ignore", invalid="ignore"):
            surprise = -np.log(row_p)
            entropy = float(np.sum(np.where(row_p > 0, row_p * surprise, 0.0)))
        distance = np.abs(surprise - entropy)
        assert distance[row_kept].max() <= distance[~row_kept].min(initial=np.inf) + 1e-9


@SETTINGS
@given(logits(), st.integers(0, 2**31 - 1))
def test_a_chain_with_every_step_off_is_plain_softmax_sampling(x, seed):
    """Same draws as the plain sampler and as a hand-written inverse CDF, with the same seed."""
    off = S.temperature_first()
    assert len(off) == 0
    everything_off = S.chain(S.Temperature(1.0), S.TopK(0), S.TopP(1.0), S.MinP(0.0),
                             S.TypicalP(1.0), S.Epsilon(0.0), S.Eta(0.0))
    assert torch.equal(everything_off(x), x)
    a = off.sample(x, generator=torch.Generator().manual_seed(seed))
    b = everything_off.sample(x, generator=torch.Generator().manual_seed(seed))
    c = S.draw(x, generator=torch.Generator().manual_seed(seed))
    u = torch.rand(x.shape[0], generator=torch.Generator().manual_seed(seed),
                   dtype=torch.float64).numpy()
    cdf = np.cumsum(probs64(x), axis=-1)
    cdf /= cdf[:, -1:]
    expected = [int(np.searchsorted(row, ui, side="right")) for row, ui in zip(cdf, u,
                                                                             strict=True)]
    assert a.tolist() == b.tolist() == c.tolist() == expected


@SETTINGS
@given(logits(max_b=1), st.integers(0, 2**31 - 1),
       st.lists(st.one_of(truncations, reshapers), max_size=4))
def test_explain_agrees_with_sample(x, seed, steps):
    chain = S.chain(*steps)
    e = S.explain(x, chain, seed=seed)
    token = chain.sample(x, generator=torch.Generator().manual_seed(seed))
    assert e.draw.token == int(token)
    lo, hi = e.draw.interval
    assert lo <= e.draw.u < hi
    assert e.draw.prob > 0
    assert hi - lo == pytest.approx(e.draw.prob, abs=1e-12)
    for stage in e.stages:
        assert stage.probs.sum() == pytest.approx(1.0)
        assert stage.kept.any()
