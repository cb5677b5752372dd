"""The sampler steps: temperature, truncation (top-k, top-p, min-p, typical, epsilon, eta),
Mirostat, repetition penalties and classifier-free guidance. Each is one small class whose
docstring states its formula and cites where it comes from."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from toolkit.lm.sampling.base import (
    LN2,
    NEG_INF,
    Context,
    Step,
    _check_logits,
    _check_number,
    _fmt,
    _is_top,
    _keep_argmax,
    _remove,
    _scalar,
    one_row,
)

# --------------------------------------------------------------------------------------------
# Reshaping: temperature
# --------------------------------------------------------------------------------------------

class Temperature(Step):
    """Divide the logits by a temperature T: ``logits / T``.

    ``p_i = exp(l_i / T) / Σ_j exp(l_j / T)``. T < 1 sharpens (the favourite gets likelier),
    T > 1 flattens (rare notes get a chance), T = 1 changes nothing, and T = 0 is greedy
    decoding: only the argmax survives (ties: the lowest token id). Typical range 0.5–1.5;
    allowed T ≥ 0. Very small T gives no NaN: if ``l / T`` overflows, the row's maximum is
    subtracted first and the division done in float64 (the same distribution).

    The softmax temperature goes back to Boltzmann; for neural networks see Hinton, Vinyals and
    Dean, "Distilling the Knowledge in a Neural Network" (2015, arXiv:1503.02531).

    >>> Temperature(2.0)(torch.tensor([[2.0, 0.0]]))
    tensor([[1., 0.]])
    >>> Temperature(0)(torch.tensor([[1.0, 3.0, 3.0]]))
    tensor([[-inf, 3., -inf]])
    """

    def __init__(self, temperature: float = 1.0):
        self.temperature = _check_number("temperature", temperature, "in [0, ∞) (0 = greedy)",
                                         lambda v: 0.0 <= v < math.inf)

    def step(self, logits: Tensor, ctx: Context | None = None) -> Tensor:
        t = self.temperature
        if t == 1.0:
            return logits
        if t == 0.0:
            return _keep_argmax(logits)
        out = logits / _scalar(t, logits)                        # (B, V)
        # A tiny T can overflow a huge logit; a huge T can itself overflow float32 to inf,
        # and -inf / inf is NaN. Then divide the shifted logits in float64 instead.
        if (t < 1.0 or t > 1e3) and not math.isfinite(float(out.amax(dim=-1).sum())):
            out = _divide_shifted(logits, torch.tensor(t, dtype=torch.float64))
        return out

    @property
    def active(self) -> bool:
        return self.temperature != 1.0

    def __repr__(self) -> str:
        return f"Temperature({_fmt(self.temperature)})"


def temperature_entropy(logits: Any, temperatures: Sequence[float] | np.ndarray) -> np.ndarray:
    """Entropy in bits of ``softmax(logits / T)`` for every T (all T > 0): one (V,) row in,
    one number per temperature out.

    >>> temperature_entropy(torch.tensor([1.0, 1.0]), [0.5, 1.0, 2.0])
    array([1., 1., 1.])
    """
    x = one_row(logits)
    t = torch.as_tensor(np.asarray(temperatures, dtype=np.float64))
    if t.dim() != 1 or not bool((t > 0).all()):
        raise ValueError("temperatures must be a 1-D sequence of numbers > 0 (use "
                         "S.temperature(0) for greedy)")
    # the result is made before the (n_T, V) temporaries: made after, it would sit on top of
    # the heap where they were freed, and a list of one result per position (notebook 9 keeps
    # thousands) would hold the heap's top up, tens of MB (tests/test_sampling.py measures it)
    out = np.empty(len(t))
    p = torch.softmax(x[None, :] / t[:, None], dim=-1)          # (n_T, V)
    out[:] = (torch.special.entr(p).sum(dim=-1) / math.log(2)).numpy()
    return out


def _divide_shifted(logits: Tensor, t: Tensor) -> Tensor:
    """``(logits - max) / t`` in float64: tiny t (or a huge logit) overflowed ``logits / t``.

    The favourite gets logit 0, the others large negative numbers or -inf, never NaN.
    """
    x = logits.double()
    return ((x - x.amax(dim=-1, keepdim=True)) / t).to(logits.dtype)


def _divide_rows(logits: Tensor, t: Tensor) -> Tensor:
    """Temperature per row: ``t`` (B,) float64 ≥ 0; rows with t = 0 keep only their argmax."""
    greedy = (t == 0)[:, None]                                   # (B, 1)
    t = torch.where(greedy, 1.0, t[:, None])                     # (B, 1)
    out = logits / t.to(logits.dtype)                            # (B, V)
    if not math.isfinite(float(out.amax(dim=-1).sum())):
        out = _divide_shifted(logits, t)
    if greedy.any():
        out = torch.where(greedy, _keep_argmax(logits), out)
    return out


# --------------------------------------------------------------------------------------------
# Truncation: top-k, top-p, min-p, typical, epsilon, eta
# --------------------------------------------------------------------------------------------

class TopK(Step):
    """Keep the k most likely tokens: every token whose logit ≥ the k-th largest logit.

    Ties at the k-th value are all kept, so more than k tokens may survive (with logits
    ``[3, 2, 2, 1]`` TopK(2) keeps three). k = 0 turns the step off and k ≥ V keeps every
    token. Typical range 5–50 (the shipped model's vocabulary has 117 tokens); allowed k ≥ 0.

    From Fan, Lewis and Dauphin, "Hierarchical Neural Story Generation" (ACL 2018,
    arXiv:1805.04833).

    >>> TopK(2)(torch.tensor([[3.0, 2.0, 2.0, 1.0]]))
    tensor([[3., 2., 2., -inf]])
    """

    def __init__(self, k: int = 0):
        self.k = _check_number("top_k", k, "≥ 0 (0 = off)", lambda v: v >= 0, integer=True)

    def step(self, logits: Tensor, ctx: Context | None = None) -> Tensor:
        if self.k == 0 or self.k >= logits.shape[-1]:
            return logits
        # the k-th largest logit is the (V - k + 1)-th smallest
        kth = torch.kthvalue(logits, logits.shape[-1] - self.k + 1, dim=-1, keepdim=True)[0]
        return _remove(logits, logits < kth)                     # kth: (B, 1)

    @property
    def active(self) -> bool:
        return self.k > 0

    def __repr__(self) -> str:
        return f"TopK({self.k})"


def _remove_beyond_mass(probs: Tensor, order: Tensor, mass: float) -> Tensor:
    """Walk the tokens in ``order`` (B, V) and remove those after the mass reaches ``mass``.

    A token is kept while the probability of the tokens before it is < mass, so the kept set
    is the shortest prefix whose mass is ≥ mass, and the first token is always kept.
    Returns a (B, V) bool mask of removed tokens, in vocabulary order.
    """
    sorted_probs = probs.gather(-1, order)                       # (B, V)
    mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs     # (B, V)
    remove_sorted = mass_before >= mass                          # (B, V)
    return remove_sorted.scatter(-1, order, remove_sorted)


class TopP(Step):
    """Nucleus sampling: keep the smallest set of most likely tokens whose mass reaches p.

    Sort the tokens by probability, add them up from the top, and stop at the first token
    where the total reaches p: ``keep the shortest prefix with Σ p_i ≥ p``. At least one token
    always survives; p = 1 changes nothing. Ties are broken by token id (lower id first), so
    the kept set is minimal: drop its least likely token and the mass falls below p.
    Typical range 0.8–0.95; allowed 0 < p ≤ 1.

    From Holtzman, Buys, Du, Forbes and Choi, "The Curious Case of Neural Text Degeneration"
    (ICLR 2020, arXiv:1904.09751).

    >>> TopP(0.7)(torch.log(torch.tensor([[0.5, 0.3, 0.2]])))
    tensor([[-0.6931, -1.2040,    -inf]])
    """

    def __init__(self, p: float = 1.0):
        self.p = _check_number("top_p", p, "in (0, 1]", lambda v: 0.0 < v <= 1.0)

    def step(self, logits: Tensor, ctx: Context | None = None) -> Tensor:
        if self.p >= 1.0:
            return logits
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True, stable=True)
        sorted_probs = sorted_logits.softmax(dim=-1)             # (B, V) most likely first
        mass_before = sorted_probs.cumsum(dim=-1).sub_(sorted_probs)
        sorted_logits.masked_fill_(mass_before >= _scalar(self.p, mass_before), NEG_INF)
        return logits.scatter(-1, order, sorted_logits)          # back to vocabulary order

    @property
    def active(self) -> bool:
        return self.p < 1.0

    def __repr__(self) -> str:
        return f"TopP({_fmt(self.p)})"


class MinP(Step):
    """Keep the tokens at least ``min_p`` times as likely as the favourite: p_i ≥ min_p · p_max.

    The cut follows the model's confidence: a confident model keeps few tokens, an unsure one
    many. In logits the rule reads ``l_i ≥ l_max + log(min_p)``, which needs no softmax.
    The favourite (and any token tied with it) always survives; min_p = 0 is off.
    Typical range 0.05–0.2; allowed 0 ≤ min_p ≤ 1.

    From Nguyen et al., "Turning Up the Heat: Min-p Sampling for Creative and Coherent LLM
    Outputs" (2024, arXiv:2407.01082).

    >>> MinP(0.5)(torch.log(torch.tensor([[0.5, 0.3, 0.2]])))
    tensor([[-0.6931, -1.2040,    -inf]])
    """

    def __init__(self, min_p: float = 0.0):
        self.min_p = _check_number("min_p", min_p, "in [0, 1] (0 = off)",
                                   lambda v: 0.0 <= v <= 1.0)

    def step(self, logits: Tensor, ctx: Context | None = None) -> Tensor:
        if self.min_p == 0.0:
            return logits
        cut = logits.amax(dim=-1, keepdim=True) + math.log(self.min_p)   # (B, 1)
        return _remove(logits, logits < cut)

    @property
    def active(self) -> bool:
        return self.min_p > 0.0

    def __repr__(self) -> str:
        return f"MinP({_fmt(self.min_p)})"


def _entropy(probs: Tensor) -> Tensor:
    """Entropy ``H = -Σ p log p`` in nats, per row: (B, V) -> (B, 1). p = 0 adds 0."""
    return torch.special.entr(probs).sum(dim=-1, keepdim=True)


class TypicalP(Step):
    """Locally typical sampling: keep the tokens whose surprise is closest to the average.

    The surprise of token i is ``-log p_i``; its average is the entropy ``H = -Σ p log p``.
    Sort the tokens by ``|-log p_i - H|`` (most typical first) and keep them until their mass
    reaches τ (at least one token). This can drop the favourite when it is *too* predictable.
    τ = 1 is off. Typical range 0.2–0.95; allowed 0 < τ ≤ 1.

    From Meister, Pimentel, Wiher and Cotterell, "Locally Typical Sampling" (TACL 2023,
    arXiv:2202.00666).

    >>> TypicalP(0.5)(torch.log(torch.tensor([[0.7, 0.2, 0.1]])))
    tensor([[-0.3567,    -inf,    -inf]])
    """

    def __init__(self, mass: float = 1.0):
        self.mass = _check_number("typical_p", mass, "in (0, 1]", lambda v: 0.0 < v <= 1.0)

    def step(self, logits: Tensor, ctx: Context | None = None) -> Tensor:
        if self.mass >= 1.0:
            return logits
        logp = logits.log_softmax(dim=-1)                        # (B, V)
        probs = logp.exp()
        entropy = _entropy(probs)                                # (B, 1) nats
        distance = (-logp - entropy).abs()                       # (B, V) inf for removed
        order = torch.argsort(distance, dim=-1, stable=True)     # most typical first
        return _remove(logits, _remove_beyond_mass(probs, order, self.mass))

    @property
    def active(self) -> bool:
        return self.mass < 1.0

    def __repr__(self) -> str:
        return f"TypicalP({_fmt(self.mass)})"


class Epsilon(Step):
    """Epsilon sampling: remove every token with probability below ε: keep p_i ≥ ε.

    A fixed floor, whatever the shape of the distribution. The most likely token (and any
    token tied with it) always survives. ε = 0 is off. Typical range 1e-4–1e-2 (an absolute
    probability); allowed 0 ≤ ε < 1.

    From Hewitt, Manning and Liang, "Truncation Sampling as Language Model Desmoothing"
    (Findings of EMNLP 2022, arXiv:2210.15191), which names it epsilon sampling.

    >>> Epsilon(0.15)(torch.log(torch.tensor([[0.6, 0.3, 0.1]])))
    tensor([[-0.5108, -1.2040,    -inf]])
    """

    def __init__(self, epsilon: float = 0.0):
        self.epsilon = _check_number("epsilon", epsilon, "in [0, 1) (0 = off)",
                                     lambda v: 0.0 <= v < 1.0)

    def step(self, logits: Tensor, ctx: Context | None = None) -> Tensor:
        if self.epsilon == 0.0:
            return logits
        remove = (logits.softmax(dim=-1) < self.epsilon) & ~_is_top(logits)   # (B, V)
        return _remove(logits, remove)

    @property
    def active(self) -> bool:
        return self.epsilon > 0.0

    def __repr__(self) -> str:
        return f"Epsilon({_fmt(self.epsilon)})"


class Eta(Step):
    """Eta sampling: an epsilon floor that follows the entropy H (in nats) of the row.

    Remove p_i < η' with ``η' = min(ε, √ε · e^(−H))``: a confident (low-entropy) row gets the
    full floor ε, an unsure one a lower floor, so it keeps more choices. The most likely token
    (and its ties) always survives. ε = 0 is off. Typical range 3e-4–2e-3; allowed 0 ≤ ε < 1.

    From Hewitt, Manning and Liang, "Truncation Sampling as Language Model Desmoothing"
    (Findings of EMNLP 2022, arXiv:2210.15191).

    >>> Eta(0.1)(torch.log(torch.tensor([[0.9, 0.05, 0.05]])))
    tensor([[-0.1054,    -inf,    -inf]])
    """

    def __init__(self, epsilon: float = 0.0):
        self.epsilon = _check_number("eta", epsilon, "in [0, 1) (0 = off)",
                                     lambda v: 0.0 <= v < 1.0)

    def step(self, logits: Tensor, ctx: Context | None = None) -> Tensor:
        if self.epsilon == 0.0:
            return logits
        eps = self.epsilon
        probs = logits.softmax(dim=-1)                           # (B, V)
        entropy = _entropy(probs)                                # (B, 1) nats
        floor = (math.sqrt(eps) * torch.exp(-entropy)).clamp(max=eps)   # (B, 1)
        remove = (probs < floor) & ~_is_top(logits)
        return _remove(logits, remove)

    @property
    def active(self) -> bool:
        return self.epsilon > 0.0

    def __repr__(self) -> str:
        return f"Eta({_fmt(self.epsilon)})"


# --------------------------------------------------------------------------------------------
# Feedback: mirostat
# --------------------------------------------------------------------------------------------

class Mirostat(Step):
    """Mirostat v2: steer the surprise of the drawn tokens towards a target τ (bits).

    Each row keeps a threshold μ (it starts at 2τ). Every step removes the tokens whose
    surprise ``-log2 p_i`` exceeds μ (the favourite always stays); after the draw, with the
    surprise ``s`` of the drawn token under the distribution mirostat saw,
    ``μ ← μ - η · (s - τ)``: too surprising, tighten; too dull, loosen. So the tune keeps a
    steady level of surprise however confident the model is. Typical τ 2–5 bits, η 0.05–0.2.

    Stateful: the chain calls :meth:`observe` after each draw (call ``chain.observe`` yourself
    if you draw tokens some other way) and :meth:`reset` between tunes. ``mu`` holds the
    (B,) thresholds; it starts again at 2τ when the batch size changes. :func:`explain` works on
    a copy, so looking never moves μ.

    Which surprise feeds the update is a choice. Here ``s`` is measured under the distribution
    *as mirostat received it* (before its own cut), so the feedback sees how surprising the
    token is to the model after the earlier steps of the chain. llama.cpp's
    ``llama_sampler_mirostat_v2`` instead renormalises over the tokens it kept and measures ``s``
    there; that ``s`` is never larger than ours (the kept set's mass is ≤ 1), so llama.cpp's μ
    tightens a little less after each draw. With a cut that keeps most of the mass the two agree
    to within ``-log2(kept mass)`` bits per step.

    From Basu, Ramachandran, Keskar and Varshney, "Mirostat: A Neural Text Decoding Algorithm
    that Directly Controls Perplexity" (ICLR 2021, arXiv:2007.14966); v2 is the simplified
    rule of their reference code.

    >>> m = Mirostat(tau=1.0)                                    # μ starts at 2 bits
    >>> m(torch.log(torch.tensor([[0.5, 0.3, 0.2]])))            # -log2 0.2 = 2.3 > 2: removed
    tensor([[-0.6931, -1.2040,    -inf]])
    """

    def __init__(self, tau: float = 3.0, eta: float = 0.1):
        self.tau = _check_number("tau", tau, "in (0, ∞) bits", lambda v: 0.0 < v < math.inf)
        self.eta = _check_number("eta", eta, "in (0, 1]", lambda v: 0.0 < v <= 1.0)
        self.mu: Tensor | None = None               # (B,) float64 threshold in bits
        self.last_surprise: Tensor | None = None    # (B,) bits of the last drawn tokens
        self._logp: Tensor | None = None            # (B, V) log-probs seen by the last step

    def reset(self) -> None:
        self.mu = self.last_surprise = self._logp = None

    def step(self, logits: Tensor, ctx: Context | None = None) -> Tensor:
        if self.mu is None or self.mu.shape[0] != logits.shape[0]:
            self.mu = torch.full((logits.shape[0],), 2.0 * self.tau, dtype=torch.float64,
                                 device=logits.device)
        self._logp = logits.double().log_softmax(dim=-1)         # (B, V)
        surprise = -self._logp / LN2                             # (B, V) bits
        remove = (surprise > self.mu[:, None]) & ~_is_top(logits)
        return _remove(logits, remove)

    def observe(self, tokens: Tensor, probs: Tensor) -> None:
        if self._logp is None or self._logp.shape[0] != tokens.shape[0]:
            return
        s = -self._logp.gather(-1, tokens.view(-1, 1)).view(-1) / LN2   # (B,) bits
        self.last_surprise = s
        self.mu = self.mu - self.eta * (s - self.tau)
        self._logp = None

    def __repr__(self) -> str:
        return f"Mirostat(tau={_fmt(self.tau)}, eta={_fmt(self.eta)})"


# --------------------------------------------------------------------------------------------
# Repetition: penalty and n-gram ban (both read ctx.history)
# --------------------------------------------------------------------------------------------

def _history(ctx: Context | None, logits: Tensor, who: str) -> Tensor | None:
    """ctx.history checked against the logits: (B, T) int64, or None when there is none.

    Checked once per context: the generator builds one context per token, and every step of
    the chain that reads the history gets the checked tensor back without a second pass."""
    if ctx is None or ctx.history is None:
        return None
    checked = ctx.__dict__.get("_checked_history")
    if checked is not None and checked[0] is ctx.history and checked[1] == logits.shape:
        return checked[2]
    h = torch.as_tensor(ctx.history)
    B, V = logits.shape
    if h.dim() == 1 and B == 1:
        h = h[None]                                              # (T,) -> (1, T)
    if h.dim() != 2 or h.shape[0] != B or h.is_floating_point():
        raise ValueError(f"{who} needs ctx.history as a (B, T) tensor of token ids with "
                         f"B = {B}, got {h.dtype} of shape {tuple(h.shape)}")
    if h.numel():
        lo, hi = (int(v) for v in torch.aminmax(h))              # one pass, one sync
        if lo < 0 or hi >= V:
            raise ValueError(f"ctx.history holds token ids outside [0, {V}): min {lo}, "
                             f"max {hi}")
    h = h.long()
    ctx.__dict__["_checked_history"] = (ctx.history, logits.shape, h)
    return h


#: the largest finite value of each float type
_FINFO_MAX = {t: torch.finfo(t).max for t in (torch.float16, torch.bfloat16, torch.float32,
                                              torch.float64)}


class RepetitionPenalty(Step):
    """Make tokens already played less likely (the CTRL / Hugging Face convention).

    For every token in ``ctx.history`` (or only its last ``window`` tokens): a positive logit
    is divided by the penalty, a negative one multiplied by it, so both move down for
    penalty > 1 (and up for penalty < 1). The effect depends on where zero is, a known flaw.
    Music repeats on purpose: a penalty right for prose can break a tune's form, so try a
    short window. No history (or ctx=None) → no change. Typical 1.05–1.3; allowed > 0.

    From Keskar et al., "CTRL: A Conditional Transformer Language Model for Controllable
    Generation" (2019, arXiv:1909.05858).

    >>> RepetitionPenalty(2.0)(torch.tensor([[2.0, -1.0, 1.0]]),
    ...                        Context(history=torch.tensor([[0, 1]])))
    tensor([[ 1., -2.,  1.]])
    """

    def __init__(self, penalty: float = 1.0, window: int | None = None):
        self.penalty = _check_number("repetition_penalty", penalty, "in (0, ∞) (1 = off)",
                                     lambda v: 0.0 < v < math.inf)
        if window is not None:
            window = _check_number("window", window, "≥ 1 (or None for the whole history)",
                                   lambda v: v >= 1, integer=True)
        self.window = window

    def step(self, logits: Tensor, ctx: Context | None = None) -> Tensor:
        history = _history(ctx, logits, "RepetitionPenalty")
        if history is None or self.penalty == 1.0 or history.shape[1] == 0:
            return logits
        if self.window is not None:
            history = history[:, -self.window:]                  # (B, W) recent tokens
        seen = logits.gather(-1, history)                        # (B, W) their logits
        p = _scalar(self.penalty, seen)                          # cached 0-dim tensors
        penalised = torch.where(seen > 0, seen / p, seen * p)
        lo, hi = _scalar(-_FINFO_MAX[seen.dtype], seen), _scalar(_FINFO_MAX[seen.dtype], seen)
        penalised = torch.where(seen == NEG_INF, seen, penalised.clamp(lo, hi))  # huge stay
        return logits.scatter(-1, history, penalised)            # finite; removed stay removed

    @property
    def active(self) -> bool:
        return self.penalty != 1.0

    def __repr__(self) -> str:
        window = "" if self.window is None else f", window={self.window}"
        return f"RepetitionPenalty({_fmt(self.penalty)}{window})"


class NoRepeatNGram(Step):
    """Ban every token that would complete an n-gram already present in ``ctx.history``.

    With the last n−1 tokens ``a b``, NoRepeatNGram(3) finds every earlier ``a b x`` and
    removes each such ``x``. n = 1 bans every token played so far. If every token would be
    banned, the favourite is kept (a repeat beats no note at all). Folk tunes repeat whole
    phrases, so small n ruins them; a large n (8–16) stops only loops. Allowed n ≥ 1.

    From Paulus, Xiong and Socher, "A Deep Reinforced Model for Abstractive Summarization"
    (ICLR 2018, arXiv:1705.04304).

    >>> NoRepeatNGram(2)(torch.zeros(1, 4), Context(history=torch.tensor([[1, 2, 1]])))
    tensor([[0., 0., -inf, 0.]])
    """

    def __init__(self, n: int):
        self.n = _check_number("no_repeat_ngram", n, "≥ 1", lambda v: v >= 1, integer=True)

    def step(self, logits: Tensor, ctx: Context | None = None) -> Tensor:
        history = _history(ctx, logits, "NoRepeatNGram")
        n = self.n
        if history is None or history.shape[1] < n:
            return logits
        ngrams = history.unfold(1, n, 1)                         # (B, W, n) every n-gram so far
        prefix = history[:, history.shape[1] - (n - 1):]         # (B, n-1) the last n-1 tokens
        match = (ngrams[:, :, :-1] == prefix[:, None, :]).all(dim=-1)   # (B, W)
        hits = torch.zeros_like(logits, dtype=torch.long)        # (B, V) how often banned
        hits.scatter_add_(-1, ngrams[:, :, -1], match.long())
        out = _remove(logits, hits > 0)
        empty = out.amax(dim=-1, keepdim=True) == NEG_INF        # (B, 1) all banned?
        return torch.where(empty, _keep_argmax(logits), out) if empty.any() else out

    def __repr__(self) -> str:
        return f"NoRepeatNGram({self.n})"


# --------------------------------------------------------------------------------------------
# Classifier-free guidance
# --------------------------------------------------------------------------------------------

class Guidance(Step):
    """Classifier-free guidance: ``logits = uncond + s · (cond − uncond)``.

    The chain's input is the conditional logits (the model told "6/8, major"), and
    ``ctx.uncond_logits`` the same model's logits with the conditioning dropped. s = 1 gives
    the conditional model, s = 0 the unconditional one, s > 1 pushes further in the direction
    the condition points. Put it first in a chain. A token removed (−inf) in either input stays
    removed (a row where that would remove all keeps the conditional logits). Typical s 1–3;
    allowed s ≥ 0. ``generate(guidance=s)`` puts this step first in the chain: one formula,
    one home.

    From Ho and Salimans, "Classifier-Free Diffusion Guidance" (2022, arXiv:2207.12598), carried
    to language models by Sanchez et al., "Stay on topic with Classifier-Free Guidance" (2023,
    arXiv:2306.17806).

    >>> Guidance(2.0)(torch.tensor([[1.0, 0.0]]),
    ...               Context(uncond_logits=torch.tensor([[0.0, 0.0]])))
    tensor([[2., 0.]])
    """

    def __init__(self, scale: float = 1.0):
        self.scale = _check_number("guidance scale", scale, "in [0, ∞) (1 = off)",
                                   lambda v: 0.0 <= v < math.inf)

    def step(self, logits: Tensor, ctx: Context | None = None) -> Tensor:
        s = self.scale
        if s == 1.0:
            return logits
        uncond = None if ctx is None else ctx.uncond_logits
        if uncond is None:
            raise ValueError(f"{self!r} needs ctx.uncond_logits, the (B, V) logits of the model "
                             "without its conditioning; pass ctx=Context(uncond_logits=...) "
                             "or use scale 1")
        _check_logits(uncond, "ctx.uncond_logits")
        if uncond.shape != logits.shape:
            raise ValueError(f"ctx.uncond_logits must have the logits' shape "
                             f"{tuple(logits.shape)}, got {tuple(uncond.shape)}")
        cond, unc = logits.double(), uncond.double()             # float64: no overflow
        both = (cond > NEG_INF) & (unc > NEG_INF)                # (B, V) alive in both
        info = torch.finfo(logits.dtype)
        guided = (unc + s * (cond - unc)).clamp(info.min, info.max)   # (B, V)
        guided = torch.where(both, guided, NEG_INF).to(logits.dtype)
        return torch.where(both.any(dim=-1, keepdim=True), guided, logits)

    @property
    def active(self) -> bool:
        return self.scale != 1.0

    def __repr__(self) -> str:
        return f"Guidance({_fmt(self.scale)})"


