"""Unit tests of toolkit.lm.sampling: what a student, a teacher and the generator rely on."""

from __future__ import annotations

import doctest
import inspect
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from toolkit import sampling as S

NEG_INF = float("-inf")


pytestmark = pytest.mark.usefixtures("one_thread")


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def log_probs(*p: float) -> torch.Tensor:
    """(1, V) logits whose softmax is p."""
    return torch.tensor([p], dtype=torch.float64).log()


def kept(x: torch.Tensor) -> list[list[int]]:
    return [torch.isfinite(row).nonzero().flatten().tolist() for row in x]


def test_docstring_examples_run():
    """Every class docstring carries a tiny example; they must stay true."""
    attempted = 0
    import importlib

    for name in ("", ".base", ".steps", ".schedules", ".user_steps", ".chains", ".constraints"):
        module = importlib.import_module("toolkit.lm.sampling" + name)
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, module.__name__
        attempted += result.attempted
    assert attempted > 20


# ---------------------------------------------------------------------------- API and repr

def test_factories_take_their_classes_parameter_names():
    """S.min_p(min_p=0.1) is MinP(min_p=0.1): a factory's keywords are its class's, so a student
    who reads the class docstring can call the factory with the same names."""
    pairs = {S.temperature: S.Temperature, S.top_k: S.TopK, S.top_p: S.TopP, S.min_p: S.MinP,
             S.typical_p: S.TypicalP, S.epsilon: S.Epsilon, S.eta: S.Eta,
             S.mirostat: S.Mirostat, S.repetition_penalty: S.RepetitionPenalty,
             S.no_repeat_ngram: S.NoRepeatNGram, S.guidance: S.Guidance,
             S.dynamic_temperature: S.DynamicTemperature, S.creativity: S.Creativity}
    for factory, cls in pairs.items():
        made = list(inspect.signature(factory).parameters)
        wanted = list(inspect.signature(cls.__init__).parameters)[1:]
        assert made == wanted, f"S.{factory.__name__}{made} != {cls.__name__}{wanted}"
    assert S.min_p(min_p=0.1).min_p == 0.1
    assert S.eta(epsilon=3e-4).epsilon == 3e-4
    assert S.temperature(temperature=0.7).temperature == 0.7
    assert set(S.__all__) <= set(dir(S))


def test_reprs_read_like_the_code():
    chain = S.chain(S.temperature(1.2), S.top_k(40), S.top_p(0.9))
    assert repr(chain) == "Chain(Temperature(1.2) → TopK(40) → TopP(0.9))"
    assert repr(S.mirostat(3, 0.1)) == "Mirostat(tau=3, eta=0.1)"
    assert repr(S.repetition_penalty(1.2, window=16)) == "RepetitionPenalty(1.2, window=16)"
    assert repr(S.min_p(0.05)) == "MinP(0.05)"
    assert repr(S.eta(3e-4)) == "Eta(0.0003)"

    def no_rests(x):
        return x

    assert repr(S.chain(no_rests)) == "Chain(Custom(no_rests))"
    assert "SectionTemperature([0–4: 0.6, 4–: 1.2]" in repr(
        S.temperature_by_section([(0, 4, 0.6), (4, None, 1.2)]))


def test_presets_list_only_the_active_steps_in_their_order():
    first = S.temperature_first(temperature=0.8, top_k=40, top_p=0.9, min_p=0.05,
                                typical_p=0.95, epsilon=1e-4, eta=1e-3)
    assert [type(s).__name__ for s in first] == [
        "Temperature", "TopK", "TopP", "MinP", "TypicalP", "Epsilon", "Eta"]
    last = S.temperature_last(top_k=40, typical_p=0.95, top_p=0.9, min_p=0.05, temperature=0.8)
    assert [type(s).__name__ for s in last] == ["TopK", "TypicalP", "TopP", "MinP", "Temperature"]
    assert repr(S.temperature_first(top_p=0.9)) == "Chain(TopP(0.9), name='temperature_first')"
    assert len(S.temperature_last()) == 0


def test_the_two_orders_keep_different_tokens():
    """Temperature 2.0 flattens p = [.5, .3, .1, .06, .04] to about [.35, .27, .16, .12, .10]
    before top-p 0.85 looks at it, so temperature-first needs 4 tokens to reach 85 %, while
    temperature-last cuts the model's own distribution, where 3 tokens reach 90 %."""
    x = log_probs(0.5, 0.3, 0.1, 0.06, 0.04)
    first = S.temperature_first(temperature=2.0, top_p=0.85)(x)
    last = S.temperature_last(top_p=0.85, temperature=2.0)(x)
    assert kept(first) == [[0, 1, 2, 3]]
    assert kept(last) == [[0, 1, 2]]
    e_first = S.explain(x, S.temperature_first(temperature=2.0, top_p=0.85), seed=0)
    e_last = S.explain(x, S.temperature_last(top_p=0.85, temperature=2.0), seed=0)
    assert e_first.stages[-1].n_kept == 4 and e_last.stages[-1].n_kept == 3


def test_chains_flatten_and_wrap_plain_functions():
    inner = S.chain(S.top_k(3), S.top_p(0.9))
    outer = S.chain(S.temperature(2.0), inner, lambda x: x)
    assert [type(s).__name__ for s in outer] == ["Temperature", "TopK", "TopP", "Custom"]
    with pytest.raises(ValueError, match=r"step 1 of the chain .* got 42"):
        S.chain(S.top_k(3), 42)


# ---------------------------------------------------------------------------- validation

@pytest.mark.parametrize(
    ("make", "value", "expected"),
    [
        (S.temperature, -1.0, "temperature must be in [0, ∞) (0 = greedy), got -1.0"),
        (S.temperature, math.inf, "temperature must be in [0, ∞) (0 = greedy), got inf"),
        (S.temperature, math.nan, "temperature must be in [0, ∞) (0 = greedy), got nan"),
        (S.top_k, -1, "top_k must be an integer ≥ 0 (0 = off), got -1"),
        (S.top_k, 2.5, "top_k must be an integer ≥ 0 (0 = off), got 2.5"),
        (S.top_p, 1.5, "top_p must be in (0, 1], got 1.5"),
        (S.top_p, 0.0, "top_p must be in (0, 1], got 0.0"),
        (S.min_p, 1.01, "min_p must be in [0, 1] (0 = off), got 1.01"),
        (S.typical_p, 0, "typical_p must be in (0, 1], got 0"),
        (S.epsilon, 1.0, "epsilon must be in [0, 1) (0 = off), got 1.0"),
        (S.eta, -0.1, "eta must be in [0, 1) (0 = off), got -0.1"),
        (S.repetition_penalty, 0.0, "repetition_penalty must be in (0, ∞) (1 = off), got 0.0"),
        (S.no_repeat_ngram, 0, "no_repeat_ngram must be an integer ≥ 1, got 0"),
        (S.guidance, -1.0, "guidance scale must be in [0, ∞) (1 = off), got -1.0"),
        (S.creativity, 1.5, "creativity must be in [0, 1], got 1.5"),
        (S.creativity_to_temperature, -0.1, "creativity must be in [0, 1], got -0.1"),
        (S.temperature, 10**400, "temperature must be in [0, ∞) (0 = greedy), got an integer "
                                 "of 401 digits, too large for a float"),
        (S.top_k, -10**400, "top_k must be an integer ≥ 0 (0 = off), got an integer of 401 "
                            "digits, too large for a float"),
    ],
)
def test_bad_arguments_name_the_parameter_value_and_range(make, value, expected):
    with pytest.raises(ValueError) as err:
        make(value)
    assert str(err.value) == expected


@pytest.mark.parametrize("value", [True, "0.9", None, [0.9]])
def test_non_numbers_are_rejected_in_the_same_style(value):
    with pytest.raises(ValueError, match=r"^top_p must be a number in \(0, 1\], got .* \("):
        S.top_p(value)


def test_more_constructor_checks():
    with pytest.raises(ValueError, match="tau must be in"):
        S.mirostat(tau=0)
    with pytest.raises(ValueError, match="eta must be in"):
        S.mirostat(eta=2.0)
    with pytest.raises(ValueError, match="window must be an integer ≥ 1"):
        S.repetition_penalty(1.2, window=0)
    with pytest.raises(ValueError, match=r"t_max must be in \[t_min = 1, ∞\), got 0.5"):
        S.dynamic_temperature(1.0, 0.5)
    with pytest.raises(ValueError, match="exponent must be in"):
        S.dynamic_temperature(exponent=0)
    with pytest.raises(ValueError, match="temperature for bar 1 must be in"):
        S.temperature_by_bar([1.0, -0.5])
    with pytest.raises(ValueError, match=r"sections\[1\] starts at bar 3, before"):
        S.temperature_by_section([(0, 4, 0.5), (3, 8, 1.0)])
    with pytest.raises(ValueError, match=r"sections\[0\] end_bar must be an integer > start_bar"):
        S.temperature_by_section([(4, 4, 0.5)])
    assert S.top_k(40.0).k == 40                                 # integral floats are fine
    assert S.top_p(np.float32(0.5)).p == 0.5                     # numpy numbers too


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (torch.zeros(5), r"2-D tensor of shape \(B, V\), got shape \(5,\); for one row use"),
        (torch.zeros(1, 2, 3), r"2-D tensor of shape \(B, V\), got shape \(1, 2, 3\)"),
        (torch.zeros(2, 0), "at least one token"),
        (torch.zeros(1, 3, dtype=torch.long), "floating-point tensor, got dtype torch.int64"),
        ([[0.0, 1.0]], "torch.Tensor of shape \\(B, V\\), got list"),
        (torch.tensor([[0.0, math.nan], [0.0, 1.0]]), r"NaN in row\(s\) \[0\]"),
        (torch.tensor([[0.0, 1.0], [math.inf, 1.0]]), r"\+inf in row\(s\) \[1\]"),
        (torch.tensor([[0.0, 1.0], [NEG_INF, NEG_INF]]), r"every logit is -inf in row\(s\) \[1\]"),
    ],
)
def test_bad_logits_get_a_clear_error(bad, message):
    for use in (S.top_k(2), S.chain(S.temperature(0.5)), S.chain().sample, S.draw):
        with pytest.raises(ValueError, match=message):
            use(bad)


def test_huge_finite_logits_pass_the_check():
    x = torch.tensor([[3e38, 3e38], [3e38, 0.0]])                # the row sums overflow
    assert S.draw(x, gen()).shape == (2,)


def test_generator_must_be_a_generator():
    with pytest.raises(ValueError, match="generator must be a torch.Generator"):
        S.chain().sample(torch.zeros(1, 3), generator=7)


# ---------------------------------------------------------------------------- the methods

def test_temperature_divides_and_zero_is_argmax_with_lowest_index_ties():
    x = torch.tensor([[2.0, -1.0, 0.5]])
    assert torch.allclose(S.temperature(2.0)(x), x / 2)
    assert S.temperature(1.0)(x) is x                            # T = 1 is a no-op
    out = S.temperature(0)(torch.tensor([[1.0, 3.0, 3.0], [5.0, NEG_INF, 5.0]]))
    assert kept(out) == [[1], [0]]


def test_tiny_temperature_and_huge_logits_give_no_nan():
    x = torch.tensor([[1e30, 1e30 - 1e24, -1e30, 0.0], [1e-30, 0.0, NEG_INF, -1e-30]])
    for t in (1e-6, 1e-30, 1e-300):
        out = S.temperature(t)(x)
        p = torch.softmax(out, dim=-1)
        assert not torch.isnan(p).any()
        assert torch.allclose(p.sum(-1), torch.ones(2))
        assert p[0, 0] == 1.0                                    # a gap of 1e24 is decisive
    # 1e-30 vs 0 vs -1e-30 is a real gap only at a still smaller temperature
    assert torch.softmax(S.temperature(1e-300)(x), dim=-1)[1, 0] == 1.0
    sched = S.temperature_schedule(lambda step, bar: torch.tensor([1e-300, 0.0]))
    assert not torch.isnan(torch.softmax(sched(x), dim=-1)).any()


def test_huge_temperature_is_uniform_over_the_kept_tokens():
    x = torch.tensor([[5.0, NEG_INF, -3.0]])
    for t in (1e39, 1e300):                                      # inf in float32 / float16
        for dtype in (torch.float32, torch.float16):
            for step in (S.temperature(t), S.temperature_schedule(lambda s, b, t=t: t)):
                p = torch.softmax(step(x.to(dtype)).float(), dim=-1)
                assert torch.allclose(p, torch.tensor([[0.5, 0.0, 0.5]]))


def test_top_k_keeps_ties_at_the_kth_value():
    x = torch.tensor([[3.0, 2.0, 2.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    assert kept(S.top_k(2)(x)) == [[0, 1, 2], [0, 1, 2, 3]]
    assert kept(S.top_k(1)(x)) == [[0], [0, 1, 2, 3]]
    assert S.top_k(0)(x) is x and S.top_k(4)(x) is x


def test_top_p_breaks_ties_by_token_id_and_one_is_a_no_op():
    x = torch.zeros(1, 4)                                        # four tokens of 25 %
    assert kept(S.top_p(0.5)(x)) == [[0, 1]]
    assert kept(S.top_p(0.51)(x)) == [[0, 1, 2]]
    assert kept(S.top_p(1e-9)(log_probs(0.1, 0.6, 0.3))) == [[1]]
    assert S.top_p(1.0)(x) is x


def test_rows_of_a_batch_are_treated_independently():
    x = torch.cat([log_probs(0.7, 0.2, 0.1), log_probs(0.1, 0.2, 0.7),
                   log_probs(0.34, 0.33, 0.33)]).float()
    assert kept(S.top_p(0.8)(x)) == [[0, 1], [1, 2], [0, 1, 2]]
    assert kept(S.min_p(0.25)(x)) == [[0, 1], [1, 2], [0, 1, 2]]
    tokens = S.chain(S.temperature(0)).sample(x, gen())
    assert tokens.tolist() == [0, 2, 0]


def test_min_p_epsilon_and_eta_on_a_known_row():
    x = log_probs(0.5, 0.3, 0.15, 0.05)
    assert kept(S.min_p(0.3)(x)) == [[0, 1, 2]]                  # 0.15 ≥ 0.3 · 0.5
    assert kept(S.min_p(0.31)(x)) == [[0, 1]]
    assert kept(S.epsilon(0.1)(x)) == [[0, 1, 2]]
    assert kept(S.epsilon(0.9)(x)) == [[0]]                      # the top token stays
    h = -(0.5 * math.log(0.5) + 0.3 * math.log(0.3) + 0.15 * math.log(0.15)
          + 0.05 * math.log(0.05))
    eps = 0.2
    floor = min(eps, math.sqrt(eps) * math.exp(-h))              # ≈ 0.133
    assert 0.05 < floor < 0.15
    assert kept(S.eta(eps)(x)) == [[0, 1, 2]]


def test_typical_can_drop_the_favourite():
    """p = [.6, .3, .1]: H ≈ 0.90 nats, surprises 0.51, 1.20, 2.30 nats, so the distances
    to H are 0.39, 0.31, 1.41: the second token is the most typical, and with τ = 0.25 it is
    the only one kept."""
    x = log_probs(0.6, 0.3, 0.1)
    assert kept(S.typical_p(0.25)(x)) == [[1]]
    assert kept(S.typical_p(0.5)(x)) == [[0, 1]]
    assert kept(S.typical_p(0.95)(x)) == [[0, 1, 2]]


def test_v_equal_one_survives_everything():
    x = torch.tensor([[0.3], [-2.0]])
    steps = [S.temperature(0), S.temperature(0.5), S.top_k(1), S.top_p(0.1), S.min_p(1.0),
             S.typical_p(0.1), S.epsilon(0.99), S.eta(0.99), S.mirostat(0.1),
             S.dynamic_temperature(0, 2), S.no_repeat_ngram(1)]
    ctx = S.Context(history=torch.zeros(2, 3, dtype=torch.long))
    for step in steps:
        assert torch.isfinite(step(x, ctx)).all(), step
    assert S.chain(*steps).sample(x, gen(), ctx).tolist() == [0, 0]


# ---------------------------------------------------------------------------- mirostat

def zipf_logits(v: int = 100) -> torch.Tensor:
    return torch.log(1.0 / torch.arange(1, v + 1, dtype=torch.float32))[None]   # (1, V)


def test_mirostat_reaches_the_target_surprise_on_a_zipf_distribution():
    """On a fixed Zipf distribution over 100 tokens the average surprise of the drawn tokens
    (under that distribution) comes within 10 % of τ = 3 bits over 2000 steps."""
    logits = zipf_logits()
    logp = torch.log_softmax(logits.double(), dim=-1)[0]
    miro = S.mirostat(tau=3.0, eta=0.1)
    chain, g = S.chain(miro), gen(1)
    surprises = []
    for _ in range(2000):
        token = chain.sample(logits, g)
        surprises.append(-float(logp[token]) / math.log(2))
        assert miro.last_surprise.item() == pytest.approx(surprises[-1])
    assert abs(np.mean(surprises) - 3.0) < 0.3
    # plain sampling from the same distribution is far more surprising
    assert -(logp.exp() * logp).sum().item() / math.log(2) > 4.5


def test_mirostat_state_is_per_row_and_reset_restores_it():
    logits = torch.cat([zipf_logits(), torch.zeros(1, 100)])     # confident row, flat row
    miro = S.mirostat(tau=3.0, eta=0.5)
    chain = S.chain(S.temperature(1.0), miro)
    assert miro.mu is None
    g = gen(3)
    for _ in range(50):
        chain.sample(logits, g)
    assert miro.mu.shape == (2,) and miro.mu[0] != miro.mu[1]
    chain.reset()
    assert miro.mu is None
    chain(logits)
    assert torch.equal(miro.mu, torch.full((2,), 6.0, dtype=torch.float64))   # μ starts at 2τ


def test_mirostat_truncates_by_surprise():
    miro = S.mirostat(tau=1.0)                                   # μ = 2 bits: keep p ≥ 1/4
    x = log_probs(0.3, 0.26, 0.24, 0.2)
    assert kept(miro(x)) == [[0, 1]]


def test_observe_hooks_get_the_drawn_tokens_and_final_probabilities():
    seen = []

    class Spy(S.Step):
        def step(self, logits, ctx=None):
            return logits

        def observe(self, tokens, probs):
            seen.append((tokens.clone(), probs.clone()))

    x = torch.tensor([[0.0, 1.0, NEG_INF], [2.0, 0.0, 0.0]])
    tokens = S.chain(S.top_k(1), Spy()).sample(x, gen())
    (obs_tokens, probs), = seen
    assert torch.equal(obs_tokens, tokens) and tokens.tolist() == [1, 0]
    assert probs.dtype == torch.float64 and torch.equal(probs[:, :2], torch.eye(2)[[1, 0]]
                                                        .double())


# ---------------------------------------------------------------------------- repetition

def test_repetition_penalty_divides_positive_and_multiplies_negative_logits():
    x = torch.tensor([[2.0, -1.0, 1.0, 0.0, NEG_INF], [2.0, -1.0, 1.0, 0.0, 0.5]])
    ctx = S.Context(history=torch.tensor([[0, 1, 1, 3, 4], [2, 2, 2, 2, 2]]))
    out = S.repetition_penalty(2.0)(x, ctx)
    assert out.tolist() == [[1.0, -2.0, 1.0, 0.0, NEG_INF], [2.0, -1.0, 0.5, 0.0, 0.5]]
    windowed = S.repetition_penalty(2.0, window=2)(x, ctx)       # only tokens 3 and 4 count
    assert windowed.tolist()[0] == [2.0, -1.0, 1.0, 0.0, NEG_INF]
    assert S.repetition_penalty(2.0)(x) is x                     # no history: nothing to do
    huge = torch.tensor([[-3e38, -3e38]])
    assert torch.isfinite(S.repetition_penalty(4.0)(huge, S.Context(history=torch.tensor(
        [[0, 1]])))).all()


def test_no_repeat_ngram_bans_exactly_the_completing_tokens():
    x = torch.zeros(1, 6)
    #                                        a  b  c  a  b  d  a  b
    ends_a_b = S.Context(history=torch.tensor([[0, 1, 2, 0, 1, 3, 0, 1]]))
    assert kept(S.no_repeat_ngram(3)(x, ends_a_b)) == [[0, 1, 4, 5]]   # "a b c", "a b d"
    #                                        a  b  c  a  b  d  e  b
    ends_e_b = S.Context(history=torch.tensor([[0, 1, 2, 0, 1, 3, 4, 1]]))
    assert kept(S.no_repeat_ngram(3)(x, ends_e_b)) == [[0, 1, 2, 3, 4, 5]]   # no "e b ?" yet
    assert kept(S.no_repeat_ngram(2)(x, ends_e_b)) == [[0, 1, 4, 5]]   # "b c", "b d"
    assert kept(S.no_repeat_ngram(1)(x, ends_e_b)) == [[5]]      # every token played so far
    assert S.no_repeat_ngram(9)(x, ends_e_b) is x                # no complete 9-gram yet
    # two rows with different histories
    two = S.Context(history=torch.tensor([[0, 1, 0], [2, 3, 4]]))
    assert kept(S.no_repeat_ngram(2)(torch.zeros(2, 5), two)) == [[0, 2, 3, 4], [0, 1, 2, 3, 4]]


def test_no_repeat_ngram_keeps_the_favourite_when_everything_is_banned():
    ctx = S.Context(history=torch.tensor([[0, 1, 2]]))
    out = S.no_repeat_ngram(1)(torch.tensor([[0.0, 2.0, 1.0]]), ctx)
    assert kept(out) == [[1]]


def test_history_is_checked():
    with pytest.raises(ValueError, match="ctx.history holds token ids outside"):
        S.repetition_penalty(1.2)(torch.zeros(1, 3), S.Context(history=torch.tensor([[5]])))
    with pytest.raises(ValueError, match=r"needs ctx.history as a \(B, T\) tensor"):
        S.no_repeat_ngram(2)(torch.zeros(2, 3), S.Context(history=torch.tensor([[1, 2]])))


# ---------------------------------------------------------------------------- guidance

def test_guidance_formula():
    cond = torch.tensor([[1.0, 0.0, -2.0]])
    uncond = torch.tensor([[0.5, 0.5, 0.0]])
    ctx = S.Context(uncond_logits=uncond)
    for s in (0.0, 0.5, 2.0, 3.0):
        assert torch.allclose(S.guidance(s)(cond, ctx), uncond + s * (cond - uncond))
    assert torch.equal(S.guidance(0.0)(cond, ctx), uncond)
    assert S.guidance(1.0)(cond) is cond                         # s = 1 needs no uncond


def test_guidance_errors_and_removed_tokens():
    with pytest.raises(ValueError, match="needs ctx.uncond_logits"):
        S.guidance(2.0)(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="must have the logits' shape"):
        S.guidance(2.0)(torch.zeros(1, 3), S.Context(uncond_logits=torch.zeros(2, 3)))
    cond = torch.tensor([[0.0, NEG_INF, 1.0]])
    uncond = torch.tensor([[0.0, 1.0, NEG_INF]])
    out = S.guidance(0.0)(cond, S.Context(uncond_logits=uncond))
    assert kept(out) == [[0]]


# ---------------------------------------------------------------------------- schedules

def test_dynamic_temperature_matches_its_formula():
    g = gen(5)
    x = torch.randn(6, 20, generator=g) * 3
    x[0, 5:] = NEG_INF                                           # N = 5 in row 0
    x[1, 1:] = NEG_INF                                           # N = 1 in row 1
    dyn = S.dynamic_temperature(0.4, 1.6, exponent=2.0)
    out = dyn(x)
    p = torch.softmax(x.double(), dim=-1)
    h = -(p * torch.log(p.clamp_min(1e-300))).sum(-1)
    n = torch.isfinite(x).sum(-1).double()
    ratio = torch.where(n > 1, h / n.log().clamp_min(1e-12), torch.zeros_like(h))
    expected = 0.4 + 1.2 * ratio ** 2
    assert torch.allclose(dyn.last_temperature, expected)
    assert dyn.last_temperature[1] == 0.4
    assert torch.allclose(out, x / expected[:, None].float())
    flat = S.dynamic_temperature(0.4, 1.6)(torch.zeros(1, 8))
    assert flat.shape == (1, 8)


def test_step_bar_section_and_function_schedules_give_the_intended_temperature():
    x = torch.tensor([[2.0, 0.0]] * 3)
    by_step = S.temperature_by_step([0.5, 1.0, 2.0])
    for step, t in [(0, 0.5), (1, 1.0), (2, 2.0), (50, 2.0)]:
        out = by_step(x, S.Context(step=step))
        assert by_step.last_temperature.tolist() == [t] * 3
        assert torch.allclose(out, x / t)
    assert by_step(x).shape == x.shape                           # ctx=None means step 0

    bars = S.Context(bar=torch.tensor([0, 3, 20]))
    by_bar = S.temperature_by_bar([0.6, 0.8, 1.0, 1.2])
    by_bar(x, bars)
    assert by_bar.last_temperature.tolist() == [0.6, 1.2, 1.2]
    fn_bar = S.temperature_by_bar(lambda bar: 0.5 + 0.1 * bar)
    fn_bar(x, bars)
    assert torch.allclose(fn_bar.last_temperature, torch.tensor([0.5, 0.8, 2.5],
                                                                dtype=torch.float64))

    arc = S.temperature_by_section([(0, 4, 0.6), (4, 12, 1.3), (12, None, 0.7)], default=1.0)
    out = arc(x, S.Context(bar=torch.tensor([3, 4, 15])))
    assert arc.last_temperature.tolist() == [0.6, 1.3, 0.7]
    assert torch.allclose(out[1], x[1] / 1.3)
    gap = S.temperature_by_section([(2, 4, 0.5)], default=0.9)
    gap(x, S.Context(bar=torch.tensor([0, 2, 4])))
    assert gap.last_temperature.tolist() == [0.9, 0.5, 0.9]

    def rise(step, bar):
        return 0.5 + 0.1 * bar.double() + 0.01 * step

    fn = S.temperature_schedule(rise)
    fn(x, S.Context(step=10, bar=torch.tensor([0, 1, 2])))
    assert torch.allclose(fn.last_temperature, torch.tensor([0.6, 0.7, 0.8],
                                                            dtype=torch.float64))
    greedy = S.temperature_schedule(lambda step, bar: torch.tensor([0.0, 1.0, 2.0]))
    assert kept(greedy(x)) == [[0], [0, 1], [0, 1]]


def test_bar_schedules_need_ctx_bar_and_check_what_functions_return():
    x = torch.zeros(2, 3)
    for sched in (S.temperature_by_bar([1.0]), S.temperature_by_section([(0, 4, 0.5)])):
        with pytest.raises(ValueError, match=r"needs ctx.bar, the \(B,\) 0-based bar index"):
            sched(x)
        with pytest.raises(ValueError, match=r"ctx.bar must be a \(B,\) tensor"):
            sched(x, S.Context(bar=torch.tensor([1, 2, 3])))
    with pytest.raises(ValueError, match="temperature for bar 0 must be in"):
        S.temperature_by_bar(lambda bar: -1.0)(x, S.Context(bar=torch.tensor([0, 0])))
    with pytest.raises(ValueError, match="returned by TemperatureSchedule.* at step 0"):
        S.temperature_schedule(lambda step, bar: "hot")(x)
    with pytest.raises(ValueError, match="fn must be a function"):
        S.temperature_schedule(None)


def test_creativity_mapping_is_monotone_and_documented():
    assert S.creativity_to_temperature(0.0) == pytest.approx(0.3)
    assert S.creativity_to_temperature(0.5) == pytest.approx(1.0)
    assert S.creativity_to_temperature(1.0) == pytest.approx(2.5)
    c = np.linspace(0, 1, 101)
    t = S.creativity_to_temperature(c)
    assert isinstance(t, np.ndarray) and t.shape == (101,)
    assert (np.diff(t) > 0).all()
    assert S.creativity(0.5).temperature == pytest.approx(1.0)
    with pytest.raises(ValueError, match="creativity must be in"):
        S.creativity_to_temperature(np.array([0.2, 1.2]))


# ---------------------------------------------------------------------------- your own step

def test_custom_function_joins_a_chain_and_may_edit_in_place():
    def ban_token_two(logits):
        logits[:, 2] = NEG_INF
        return logits

    x = torch.zeros(2, 4)
    chain = S.chain(S.temperature(2.0), ban_token_two)
    assert kept(chain(x)) == [[0, 1, 3]] * 2
    assert torch.equal(x, torch.zeros(2, 4))                     # the input is untouched

    def with_ctx(logits, ctx):
        return logits - ctx.step

    assert S.custom(with_ctx)(x, S.Context(step=3)).tolist() == [[-3.0] * 4] * 2

    def with_default(logits, strength=2.0):                      # gets no ctx
        return logits * strength

    assert S.custom(with_default)(torch.ones(1, 2)).tolist() == [[2.0, 2.0]]
    e = S.explain(torch.zeros(4), chain, seed=0)
    assert [s.n_kept for s in e.stages] == [4, 4, 3]


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (lambda x: None, "returned None instead of logits; did you forget `return logits`"),
        (lambda x: x.numpy(), "returned a numpy array; return a torch tensor"),
        (lambda x: x.tolist(), r"returned a list; it must return a torch.Tensor .* \(2, 4\)"),
        (lambda x: x[0], r"returned shape \(4,\), but its input had shape \(2, 4\)"),
        (lambda x: x.argmax(dim=-1, keepdim=True), "dtype torch.int64, not logits"),
        (lambda x: x > 0, "returned a bool mask"),
        (lambda x: x * math.inf, r"returned NaN at row 0, token 1 \('A'\)"),
        (lambda x: x + math.inf, r"returned \+inf at row 0, token 0 \('G'\)"),
        (lambda x: torch.where(torch.arange(2)[:, None] == 1, NEG_INF, x),
         r"removed every token in row\(s\) \[1\]"),
        (lambda x: x / "two", "raised TypeError"),
    ],
)
def test_custom_function_mistakes_get_a_clear_message(fn, message):
    x = torch.tensor([[1.0, 0.0, 2.0, -1.0], [0.5, 0.5, 0.5, 0.5]])
    chain = S.chain(S.temperature(1.5), S.custom(fn, name="my_step"))
    ctx = S.Context(vocab=["G", "A", "B", "c"])
    for run in (lambda: chain(x, ctx), lambda: chain.sample(x, gen(), ctx)):
        with pytest.raises(S.CustomStepError, match=message) as err:
            run()
        assert "your function my_step" in str(err.value)
        assert isinstance(err.value, ValueError)


# ---------------------------------------------------------------------------- sampling

def test_sampling_is_reproducible_with_a_seed_and_rows_differ():
    x = torch.randn(64, 140, generator=gen(0))
    chain = S.temperature_first(temperature=1.2, top_k=40, top_p=0.9)
    a = chain.sample(x, gen(7))
    b = chain.sample(x, gen(7))
    assert torch.equal(a, b) and a.dtype == torch.long and a.shape == (64,)
    assert not torch.equal(a, chain.sample(x, gen(8)))
    assert len(set(a.tolist())) > 10


def test_draw_frequencies_follow_the_probabilities():
    x = log_probs(0.5, 0.3, 0.2, 0.0).float().expand(20000, 4)
    counts = torch.bincount(S.draw(x, gen(2)), minlength=4) / 20000
    assert torch.allclose(counts, torch.tensor([0.5, 0.3, 0.2, 0.0]), atol=0.015)


def test_sample_detaches_logits_that_require_grad():
    x = torch.zeros(1, 3, requires_grad=True)
    assert S.chain(S.top_k(2)).sample(x, gen()).shape == (1,)


# ---------------------------------------------------------------------------- explain

def test_explain_reports_every_stage_and_the_draw():
    vocab = ["G", "A", "B", "c", "d"]
    x = log_probs(0.5, 0.3, 0.1, 0.06, 0.04)
    chain = S.chain(S.temperature(2.0), S.top_k(3), S.top_p(0.7))
    e = S.explain(x, chain, seed=11, vocab=vocab)
    assert [s.name for s in e.stages] == ["input (softmax)", "Temperature(2)", "TopK(3)",
                                          "TopP(0.7)"]
    np.testing.assert_allclose(e.stages[0].probs, [0.5, 0.3, 0.1, 0.06, 0.04])
    assert [s.n_kept for s in e.stages] == [5, 5, 3, 2]
    assert e.stages[2].kept.tolist() == [True, True, True, False, False]
    assert e.stages[0].probs.dtype == np.float64 and e.stages[0].kept.dtype == np.bool_
    for before, after in zip(e.stages, e.stages[1:], strict=False):
        assert after.kept_mass == pytest.approx(before.probs[after.kept].sum())
        assert after.probs.sum() == pytest.approx(1.0)
    p = e.stages[1].probs
    assert e.stages[1].entropy_bits == pytest.approx(-(p * np.log2(p)).sum())
    assert e.stages[1].effective_choices == pytest.approx(2 ** e.stages[1].entropy_bits)
    assert e.probs.shape == (4, 5)
    d = e.draw
    assert d.interval[0] <= d.u < d.interval[1]
    assert d.token == int(chain.sample(x, gen(11)))
    assert d.name == vocab[d.token]
    final = e.stages[-1].probs
    assert d.prob == pytest.approx(final[d.token])
    assert d.rank == 1 + int((final > final[d.token]).sum())
    table = e.to_table()
    assert "TopP(0.7)" in table and "u = " in table and repr(d.name) in table
    assert repr(e) == table


def test_explain_accepts_one_row_in_either_shape_and_rejects_batches():
    x = torch.randn(30, generator=gen(4))
    chain = S.chain(S.top_p(0.8))
    a = S.explain(x, chain, seed=3)
    b = S.explain(x[None], chain, generator=gen(3))
    assert a.draw == b.draw
    with pytest.raises(ValueError, match="explain works on one row, got 2 rows"):
        S.explain(torch.zeros(2, 3), chain)
    assert S.explain(x, S.top_k(3), seed=0).stages[-1].n_kept == 3   # a bare step is fine


def test_explain_does_not_move_mirostat():
    miro = S.mirostat(3.0)
    chain = S.chain(miro)
    chain.sample(zipf_logits(), gen())
    mu = miro.mu.clone()
    S.explain(zipf_logits(), chain, seed=1)
    assert torch.equal(miro.mu, mu)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")
def test_keeping_every_positions_entropy_curve_does_not_grow_the_heap():
    """Notebook 9 keeps one curve per position (7,500 of them); when each result was made after
    the call's (n_T, V) temporaries it stood on the heap's top where they had been, and the
    list cost the kernel 63-77 MB (measured) instead of a couple."""
    code = """
import numpy as np, torch
from toolkit import load_model, sampling as S
def rss():
    return int([x for x in open('/proc/self/status') if x.startswith('VmRSS')][0].split()[1])
model = load_model('lstm')          # a heap like a kernel's, with a network loaded
torch.manual_seed(0)
rows = [torch.randn(250, model.vocab_size) for _ in range(30)]   # 30 tunes' logits
temperatures = np.geomspace(0.25, 4, 25)
before = rss()
curves = [S.temperature_entropy(x, temperatures) for r in rows for x in r]
print((rss() - before) // 1024)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert int(out.stdout.split()[-1]) < 30, out.stdout  # 6 MB here; 89 before
