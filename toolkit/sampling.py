"""Sampler chains: how the next note is chosen.

The model does not choose the next token. For each of the B tunes being written at once it
outputs *logits*: one score per token of the vocabulary, a ``(B, V)`` float tensor.
``softmax(logits)`` turns the scores into probabilities, and a *sampler* decides how to draw
from them. That decision shapes the tune as much as the model does.

A **sampler chain** is a list of small steps, each with the same signature
``step(logits, ctx=None) -> logits``::

    logits ─► Temperature(0.8) ─► TopK(40) ─► TopP(0.9) ─► softmax ─► draw ─► token

A step either *reshapes* the distribution (temperature divides the logits: below 1 it
sharpens, above 1 it flattens) or *truncates* it: it removes unlikely tokens by setting their
logit to ``-inf``, so that softmax gives them probability exactly 0. Every step keeps at least
one token. The draw then picks one survivor at random, in proportion to its probability.

**The order matters.** Truncation looks at the distribution *as it is when the step runs*.
Temperature 2.0 before top-p 0.9 flattens first, so more tokens are needed to reach 90 % of
the mass and more survive; temperature after top-p only reshapes the tokens top-p already
chose. Two orders are in wide use, and this module has a preset for each:
:func:`temperature_first` (the Hugging Face order) and :func:`temperature_last` (llama.cpp).

Quick tour::

    >>> import torch
    >>> from toolkit import sampling as S
    >>> chain = S.chain(S.temperature(1.2), S.top_k(40), S.top_p(0.9))
    >>> chain
    Chain(Temperature(1.2) → TopK(40) → TopP(0.9))
    >>> logits = torch.tensor([[3.0, 2.0, 0.5, -1.0]])       # (B=1, V=4)
    >>> chain.sample(logits, generator=torch.Generator().manual_seed(0))   # (B,) token ids
    tensor([2])
    >>> S.explain(logits, chain, seed=0).draw.token              # ...and why it was chosen
    2

Your own function can join a chain: ``S.chain(my_fn, S.temperature(1.2))`` where
``my_fn(logits) -> logits`` or ``my_fn(logits, ctx) -> logits``; :class:`Context` says where the
tune is (its tokens so far, the bar), :func:`token_pitches` and :func:`last_pitches` read its
notes, and a mistake in the function gets a message that says what went wrong and how to fix it.

Conventions: logits are ``(B, V)`` float tensors; removed tokens are ``-inf``; no step modifies
its input in place; a step may return its input unchanged when it has nothing to do.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import numbers
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from toolkit.abc import BARS, BOS, MODES, PITCH_RE, Key, UnknownTokenError, is_pitch, midi_pitch

__all__ = [
    # the context every step may read
    "Context",
    # steps
    "Step", "Temperature", "TopK", "TopP", "MinP", "TypicalP", "Epsilon", "Eta", "Mirostat",
    "RepetitionPenalty", "NoRepeatNGram", "Guidance", "Custom", "CustomStepError",
    # reading the tune so far, for your own steps
    "token_pitches", "last_pitches",
    "StepTemperature", "BarTemperature", "SectionTemperature", "TemperatureSchedule",
    "DynamicTemperature", "Creativity", "creativity_to_temperature",
    # factories for the notebook API
    "temperature", "top_k", "top_p", "min_p", "typical_p", "epsilon", "eta", "mirostat",
    "repetition_penalty", "no_repeat_ngram", "guidance", "custom", "temperature_by_step",
    "temperature_by_bar", "temperature_by_section", "temperature_schedule",
    "dynamic_temperature", "creativity",
    # chains, drawing, diagnostics
    "Chain", "chain", "as_steps", "temperature_first", "temperature_last", "draw",
    "explain", "Explanation", "Stage", "Draw",
]

NEG_INF = float("-inf")
LN2 = math.log(2.0)


@dataclass
class Context:
    """Where we are in the tune: what a step may know besides the logits.

    The generation loop builds one for every token. All fields are optional; a step that
    needs one says so with a clear error, and every other step works with ``ctx=None``.

    - ``history``: ``(B, T)`` LongTensor, the token ids of the tune body so far.
    - ``step``: index of the token being generated in the tune body (0 for the first).
    - ``bar``: ``(B,)`` LongTensor, the 0-based bar index of each row (rows may differ).
    - ``uncond_logits``: ``(B, V)`` logits of the same model without its conditioning
      (meter, mode...), for classifier-free guidance.
    - ``vocab``: token names; ``vocab[i]`` is the name of token ``i``.
    """

    history: Tensor | None = None
    step: int = 0
    bar: Tensor | None = None
    uncond_logits: Tensor | None = None
    vocab: list[str] | None = None

    @classmethod
    def of(cls, tokens: str | Sequence[str] | Sequence[Sequence[str]],
           vocab: Sequence[str]) -> Context:
        """The context the generator passes when the next token follows ``tokens``.

        ``tokens`` is one tune so far, as a token list or space-separated text with its header
        first (``"M:6/8 K:maj S:? |: c 2 e"``; ``<s>`` is added when missing, as
        ``model.next_logits`` does), or a list of such tunes of equal length for B rows. Gives
        ``history`` (B, T) token ids, ``bar`` (the bar lines so far), ``step`` (the tokens
        after the header) and ``vocab``: try your own step at any point of a tune with it.

        >>> ctx = Context.of("M:6/8 K:maj S:? |: c 2 e |", ["<s>", "M:6/8", "K:maj", "S:?",
        ...                                                 "|:", "c", "2", "e", "|"])
        >>> ctx.history.tolist(), ctx.bar.tolist(), ctx.step
        ([[0, 1, 2, 3, 4, 5, 6, 7, 8]], [2], 5)
        """
        one_tune = isinstance(tokens, str) or all(isinstance(t, str) and " " not in t.strip()
                                                  for t in tokens)  # tokens hold no spaces
        if one_tune:
            tokens = [tokens]
        rows = [t.split() if isinstance(t, str) else list(t) for t in tokens]
        rows = [row if row[:1] == [BOS] else [BOS, *row] for row in rows]
        if not rows or len({len(row) for row in rows}) != 1:
            raise ValueError(f"tokens must be one tune or tunes of equal length, got lengths "
                             f"{[len(row) - 1 for row in rows]}")
        index = {t: i for i, t in enumerate(vocab)}
        for row in rows:
            for pos, tok in enumerate(row):
                if tok not in index:
                    raise UnknownTokenError(tok, pos)
        history = torch.tensor([[index[t] for t in row] for row in rows], dtype=torch.long)
        header = sum(1 for t in rows[0][:4] if t == BOS or t[:2] in ("M:", "K:", "S:"))
        bar = torch.tensor([sum(t in BARS for t in row) for row in rows], dtype=torch.long)
        return cls(history=history, step=len(rows[0]) - header, bar=bar, vocab=list(vocab))


# --------------------------------------------------------------------------------------------
# Validation: every bad argument gets a ValueError naming it, its value and the allowed range.
# --------------------------------------------------------------------------------------------

def _check_number(name: str, value: object, allowed: str, ok: Callable[[float], bool],
                  integer: bool = False) -> float:
    """Return ``value`` as a float (an int if ``integer``), or raise a ValueError."""
    if isinstance(value, Tensor) and value.numel() == 1 and value.dtype != torch.bool:
        value = value.item()
    what = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be {what} {allowed}, got {value!r} "
                         f"({type(value).__name__})")
    v = float(value)
    if integer and v.is_integer():
        v = int(v)
    if (integer and not isinstance(v, int)) or math.isnan(v) or not ok(v):
        raise ValueError(f"{name} must be {'an integer ' if integer else ''}{allowed}, "
                         f"got {value!r}")
    return v


def _rows(mask: Tensor) -> list[int]:
    """Indices of the True entries of a (B,) bool mask, for messages."""
    return mask.nonzero().flatten().tolist()


def _check_logits(logits: object, name: str = "logits") -> None:
    """Raise a clear ValueError unless ``logits`` is a usable (B, V) float tensor."""
    if not isinstance(logits, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (B, V), got "
                         f"{type(logits).__name__}; convert with torch.as_tensor(x).float()")
    if logits.dim() != 2:
        hint = "; for one row use logits.unsqueeze(0)" if logits.dim() == 1 else ""
        raise ValueError(f"{name} must be a 2-D tensor of shape (B, V), got shape "
                         f"{tuple(logits.shape)}{hint}")
    if not logits.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {logits.dtype}; "
                         "use logits.float()")
    if logits.shape[1] == 0:
        raise ValueError(f"{name} must have at least one token (V ≥ 1), got shape "
                         f"{tuple(logits.shape)}")
    if logits.requires_grad:
        logits = logits.detach()
    # Fast check: the sum of the row maxima is finite unless a row holds NaN or +inf, or
    # is entirely -inf. (It can also overflow for huge finite logits: then look closer.)
    top = logits.amax(dim=-1)                                    # (B,)
    if math.isfinite(float(top) if top.numel() == 1 else float(top.sum())):
        return
    nan = torch.isnan(logits).any(dim=-1)                        # (B,)
    if nan.any():
        raise ValueError(f"{name} contain NaN in row(s) {_rows(nan)}; softmax of NaN is "
                         "undefined (NaN often comes from 0 * inf or inf - inf)")
    pos_inf = (logits == math.inf).any(dim=-1)                   # (B,)
    if pos_inf.any():
        raise ValueError(f"{name} contain +inf in row(s) {_rows(pos_inf)}; softmax of +inf "
                         "is undefined; use a large finite value instead")
    dead = (logits == NEG_INF).all(dim=-1)                       # (B,)
    if dead.any():
        raise ValueError(f"every logit is -inf in row(s) {_rows(dead)} of {name}: no token "
                         "is left to choose; at least one token must have a finite logit")


def _fmt(v: float) -> str:
    return f"{v:g}"


# A bare Python number in a tensor op costs about 1.5 µs to wrap into a tensor: a real share of
# a 30 µs sampling step. The hot paths use cached 0-dim tensors instead.
_SCALARS: dict[tuple[float, torch.dtype, torch.device], Tensor] = {}


def _scalar(value: float, like: Tensor) -> Tensor:
    """``value`` as a cached 0-dim tensor with the dtype and device of ``like``."""
    key = (value, like.dtype, like.device)
    t = _SCALARS.get(key)
    if t is None:
        if len(_SCALARS) > 4096:
            _SCALARS.clear()
        t = _SCALARS[key] = torch.tensor(value, dtype=like.dtype, device=like.device)
    return t


def _remove(logits: Tensor, mask: Tensor) -> Tensor:
    """Remove the tokens where ``mask`` is True: set their logits to -inf. (B, V) -> (B, V)."""
    return torch.where(mask, _scalar(NEG_INF, logits), logits)


# --------------------------------------------------------------------------------------------
# The base class
# --------------------------------------------------------------------------------------------

class Step:
    """One stage of a sampler chain: ``step(logits, ctx=None) -> logits``.

    ``logits`` is a ``(B, V)`` float tensor; the result has the same shape, with removed tokens
    set to ``-inf``. Calling the step, ``s(logits, ctx)``, checks the logits first and then
    runs ``s.step``. A step that keeps state between tokens (mirostat) gets two more hooks:
    ``observe(tokens, probs)``, called by the chain after each draw, and ``reset()``.
    """

    def step(self, logits: Tensor, ctx: Context | None = None) -> Tensor:
        raise NotImplementedError

    def __call__(self, logits: Tensor, ctx: Context | None = None) -> Tensor:
        _check_logits(logits)
        return self.step(logits, ctx)

    def observe(self, tokens: Tensor, probs: Tensor) -> None:
        """After a draw: ``tokens`` (B,) the ids drawn, ``probs`` (B, V) the final distribution."""

    def reset(self) -> None:
        """Forget the state kept between tokens (a no-op for stateless steps)."""

    @property
    def active(self) -> bool:
        """False when the settings make this step a no-op (e.g. ``TopK(0)``)."""
        return True

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _keep_argmax(logits: Tensor) -> Tensor:
    """Keep only the most likely token of each row (ties: the lowest id); (B, V) -> (B, V)."""
    top = logits.argmax(dim=-1, keepdim=True)                    # (B, 1) first maximum
    return torch.full_like(logits, NEG_INF).scatter_(-1, top, logits.gather(-1, top))


def _is_top(logits: Tensor) -> Tensor:
    """(B, V) bool: the token is the most likely of its row (ties included)."""
    return logits == logits.amax(dim=-1, keepdim=True)


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
    token. Typical range 5–50 (the folk vocabulary has about 140 tokens); allowed k ≥ 0.

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
    (B,) thresholds; it starts again at 2τ when the batch size changes.

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
    """ctx.history checked against the logits: (B, T) int64, or None when there is none."""
    if ctx is None or ctx.history is None:
        return None
    h = torch.as_tensor(ctx.history)
    B, V = logits.shape
    if h.dim() == 1 and B == 1:
        h = h[None]                                              # (T,) -> (1, T)
    if h.dim() != 2 or h.shape[0] != B or h.is_floating_point():
        raise ValueError(f"{who} needs ctx.history as a (B, T) tensor of token ids with "
                         f"B = {B}, got {h.dtype} of shape {tuple(h.shape)}")
    if h.numel() and (h.min() < 0 or h.max() >= V):
        raise ValueError(f"ctx.history holds token ids outside [0, {V}): min {int(h.min())}, "
                         f"max {int(h.max())}")
    return h.long()


class RepetitionPenalty(Step):
    """Make tokens already played less likely (the CTRL / Hugging Face convention).

    For every token in ``ctx.history`` (or only its last ``window`` tokens): a positive logit
    is divided by the penalty, a negative one multiplied by it, so both move down for
    penalty > 1 (and up for penalty < 1). The effect depends on where zero is, a known flaw.
    Music repeats on purpose: a penalty right for prose can break a tune's form, so try a
    short window. No history (or ctx=None) → no change. Typical 1.05–1.3; allowed > 0.

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
        penalised = torch.where(seen > 0, seen / self.penalty, seen * self.penalty)
        info = torch.finfo(logits.dtype)                         # huge logits stay finite,
        penalised = torch.where(seen == NEG_INF, seen, penalised.clamp(info.min, info.max))
        return logits.scatter(-1, history, penalised)            # removed ones stay removed

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
    allowed s ≥ 0.

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


# --------------------------------------------------------------------------------------------
# Temperature schedules: a temperature that depends on where we are in the tune
# --------------------------------------------------------------------------------------------

def _check_temperature(t: object, where: str) -> float:
    return _check_number(f"the temperature {where}", t, "in [0, ∞)",
                         lambda v: 0.0 <= v < math.inf)


def _bars(ctx: Context | None, B: int, who: str) -> Tensor:
    """ctx.bar as a (B,) int64 tensor, or a clear error."""
    if ctx is None or ctx.bar is None:
        raise ValueError(f"{who} needs ctx.bar, the (B,) 0-based bar index of each row; pass "
                         "ctx=Context(bar=torch.tensor([...])) (the generator does this)")
    bar = torch.as_tensor(ctx.bar)
    if bar.dim() == 0:
        bar = bar.expand(B)                                      # one bar for every row
    if bar.shape != (B,) or bar.is_floating_point():
        raise ValueError(f"ctx.bar must be a (B,) tensor of bar indices with B = {B}, got "
                         f"{bar.dtype} of shape {tuple(bar.shape)}")
    return bar.long()


class TemperatureSchedule(Step):
    """A temperature that depends on the position: ``T = fn(step, bar)``.

    ``fn`` receives ``ctx.step`` (int) and ``ctx.bar`` ((B,) LongTensor or None) and returns a
    float, or a (B,) tensor with one temperature per row; T = 0 means greedy. The base of the
    ready-made schedules below. After each call ``last_temperature`` holds the (B,) float64
    temperatures applied, so a plot can show the temperature behind every note.

    >>> warm_up = TemperatureSchedule(lambda step, bar: 0.5 if step < 4 else 1.0)
    >>> warm_up(torch.tensor([[1.0, 0.0]]), Context(step=2))
    tensor([[2., 0.]])
    >>> warm_up.last_temperature
    tensor([0.5000], dtype=torch.float64)
    """

    def __init__(self, fn: Callable[[int, Tensor | None], float | Tensor] | None = None,
                 name: str = ""):
        if (fn is None and type(self) is TemperatureSchedule) or not (fn is None or callable(fn)):
            raise ValueError(f"fn must be a function (step, bar) -> temperature, got {fn!r}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", type(fn).__name__)
        self.last_temperature: Tensor | None = None              # (B,) float64

    def temperatures(self, logits: Tensor, ctx: Context | None) -> Tensor:
        """The (B,) float64 temperatures for this call (subclasses override this)."""
        step = 0 if ctx is None else ctx.step
        t = self.fn(step, None if ctx is None else ctx.bar)
        if isinstance(t, Tensor) and t.numel() > 1:
            t = t.double().reshape(-1)
            if t.shape[0] != logits.shape[0] or not ((t >= 0) & (t < math.inf)).all():
                raise ValueError(f"{self!r} returned {t.tolist()} at step {step}; it must return "
                                 f"one temperature in [0, ∞) or {logits.shape[0]} of them")
            return t
        t = _check_temperature(t, f"returned by {self!r} at step {step}")
        return torch.full((logits.shape[0],), t, dtype=torch.float64)

    def step(self, logits: Tensor, ctx: Context | None = None) -> Tensor:
        t = self.temperatures(logits, ctx)                       # (B,)
        self.last_temperature = t
        return _divide_rows(logits, t)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name})"


def _table_or_fn(temperatures: Sequence[float] | Callable[[int], float], what: str):
    """A list of temperatures (checked) or a function, plus a short name for the repr."""
    if callable(temperatures):
        return temperatures, getattr(temperatures, "__name__", type(temperatures).__name__)
    if isinstance(temperatures, (str, bytes)) or not isinstance(temperatures, Sequence) \
            or len(temperatures) == 0:
        raise ValueError(f"temperatures must be a non-empty list (one per {what}) or a function "
                         f"{what} -> temperature, got {temperatures!r}")
    table = [_check_temperature(t, f"for {what} {i}") for i, t in enumerate(temperatures)]
    short = ", ".join(_fmt(t) for t in table[:4]) + (", …" if len(table) > 4 else "")
    return table, f"[{short}]"


class StepTemperature(TemperatureSchedule):
    """Temperature by token position: ``T = temperatures[ctx.step]`` (the last one holds on),
    or ``T = fn(ctx.step)``. Works without ctx (step 0).

    >>> cool_down = StepTemperature([1.5, 1.0, 0.5])
    >>> _ = cool_down(torch.zeros(1, 3), Context(step=7)); cool_down.last_temperature
    tensor([0.5000], dtype=torch.float64)
    """

    def __init__(self, temperatures: Sequence[float] | Callable[[int], float]):
        table, name = _table_or_fn(temperatures, "step")
        if callable(table):
            super().__init__(lambda step, bar: table(step), name)
        else:
            super().__init__(lambda step, bar: table[min(step, len(table) - 1)], name)


class BarTemperature(TemperatureSchedule):
    """Temperature by bar: ``T = temperatures[bar]`` for each row (the last one holds on), or
    ``T = fn(bar)``. Needs ``ctx.bar``; rows in different bars get different temperatures.

    >>> by_bar = BarTemperature([0.6, 1.2])
    >>> _ = by_bar(torch.zeros(2, 3), Context(bar=torch.tensor([0, 5]))); by_bar.last_temperature
    tensor([0.6000, 1.2000], dtype=torch.float64)
    """

    def __init__(self, temperatures: Sequence[float] | Callable[[int], float]):
        self.table, name = _table_or_fn(temperatures, "bar")
        super().__init__(name=name)

    def temperatures(self, logits: Tensor, ctx: Context | None) -> Tensor:
        bar = _bars(ctx, logits.shape[0], repr(self))            # (B,)
        if callable(self.table):
            return torch.tensor([_check_temperature(self.table(b), f"for bar {b}")
                                 for b in bar.tolist()], dtype=torch.float64)
        table = torch.tensor(self.table, dtype=torch.float64)
        return table[bar.clamp(0, len(self.table) - 1)]


class SectionTemperature(TemperatureSchedule):
    """Temperature by section of the tune, each section a range of bars ``[start, end)``.

    ``sections`` is a list of ``(start_bar, end_bar, temperature)``, with ``end_bar`` None for
    "to the end"; bars outside every section get ``default``. Calm opening, bolder middle,
    calm close for a 16-bar tune: ``[(0, 4, 0.6), (4, 12, 1.2), (12, None, 0.6)]``.
    Needs ``ctx.bar``.

    >>> arc = SectionTemperature([(0, 4, 0.6), (4, 12, 1.2), (12, None, 0.6)])
    >>> _ = arc(torch.zeros(3, 2), Context(bar=torch.tensor([1, 6, 14]))); arc.last_temperature
    tensor([0.6000, 1.2000, 0.6000], dtype=torch.float64)
    """

    def __init__(self, sections: Sequence[tuple[int, int | None, float]],
                 default: float = 1.0):
        self.default = _check_temperature(default, "default")
        checked: list[tuple[int, float, float]] = []
        for i, sec in enumerate(sections):
            if not isinstance(sec, Sequence) or len(sec) != 3:
                raise ValueError(f"sections[{i}] must be (start_bar, end_bar, temperature), "
                                 f"got {sec!r}")
            start = _check_number(f"sections[{i}] start_bar", sec[0], "≥ 0", lambda v: v >= 0,
                                  integer=True)
            end = math.inf if sec[1] is None else _check_number(
                f"sections[{i}] end_bar", sec[1], f"> start_bar = {start} (or None)",
                lambda v, s=start: v > s, integer=True)
            if checked and start < checked[-1][1]:
                raise ValueError(f"sections[{i}] starts at bar {start}, before the previous "
                                 f"section ends ({checked[-1][1]}); list sections in order "
                                 "without overlap")
            checked.append((start, end, _check_temperature(sec[2], f"of sections[{i}]")))
        self.sections = checked
        name = ", ".join(f"{s}–{'' if e == math.inf else int(e)}: {_fmt(t)}"
                         for s, e, t in checked)
        super().__init__(name=f"[{name}], default={_fmt(self.default)}")

    def temperatures(self, logits: Tensor, ctx: Context | None) -> Tensor:
        bar = _bars(ctx, logits.shape[0], repr(self))            # (B,)
        t = torch.full(bar.shape, self.default, dtype=torch.float64)
        for start, end, temp in self.sections:
            t = torch.where((bar >= start) & (bar < end), temp, t)
        return t


class DynamicTemperature(TemperatureSchedule):
    """Entropy-based temperature: ``T(H) = T_min + (T_max − T_min) · (H / log N)^exponent``.

    H is the entropy (nats) of softmax(logits) and N the number of tokens still in play
    (finite logits), so H / log N ∈ [0, 1] measures how unsure the model is. A confident row
    (low H) is sampled cool, an unsure one warm. N = 1 gives T_min. Allowed
    0 ≤ t_min ≤ t_max, exponent > 0; typical t_min 0.5, t_max 1.5, exponent 1.

    >>> dyn = DynamicTemperature(0.5, 1.5)
    >>> _ = dyn(torch.tensor([[0.0, 0.0], [0.0, -30.0]])); dyn.last_temperature
    tensor([1.5000, 0.5000], dtype=torch.float64)
    """

    def __init__(self, t_min: float = 0.5, t_max: float = 1.5, exponent: float = 1.0):
        self.t_min = _check_number("t_min", t_min, "in [0, ∞)", lambda v: 0 <= v < math.inf)
        self.t_max = _check_number("t_max", t_max, f"in [t_min = {_fmt(self.t_min)}, ∞)",
                                   lambda v: self.t_min <= v < math.inf)
        self.exponent = _check_number("exponent", exponent, "in (0, ∞)",
                                      lambda v: 0 < v < math.inf)
        super().__init__(name=f"t_min={_fmt(self.t_min)}, t_max={_fmt(self.t_max)}, "
                              f"exponent={_fmt(self.exponent)}")

    def temperatures(self, logits: Tensor, ctx: Context | None) -> Tensor:
        x = logits.double()
        entropy = _entropy(x.softmax(dim=-1)).squeeze(-1)         # (B,) nats
        n = (x > NEG_INF).sum(dim=-1)                             # (B,) tokens in play
        log_n = torch.where(n > 1, n.double().log(), torch.ones_like(entropy))
        ratio = torch.where(n > 1, entropy / log_n, torch.zeros_like(entropy)).clamp(0, 1)
        return self.t_min + (self.t_max - self.t_min) * ratio ** self.exponent


CREATIVITY_T_MIN, CREATIVITY_T_MAX = 0.3, 2.5


def creativity_to_temperature(c: float | np.ndarray) -> float | np.ndarray:
    """Map the creativity knob c ∈ [0, 1] to a temperature; monotone increasing.

    ``log T`` is linear on each half: c = 0 → T = 0.3 (safe, repetitive), c = 0.5 → T = 1.0
    (the model as trained), c = 1 → T = 2.5 (wild)::

        T = 0.3 · (1 / 0.3)^(2c)   for c ≤ 0.5
        T = 2.5^(2c − 1)           for c ≥ 0.5

    Accepts a float (returns a float) or a numpy array (for plotting the curve).

    >>> [round(creativity_to_temperature(c), 3) for c in (0.0, 0.25, 0.5, 1.0)]
    [0.3, 0.548, 1.0, 2.5]
    """
    if isinstance(c, np.ndarray):
        c = c.astype(np.float64)
        if not ((c >= 0) & (c <= 1)).all():
            raise ValueError(f"creativity must be in [0, 1], got values from {c.min()} to "
                             f"{c.max()}")
    else:
        c = _check_number("creativity", c, "in [0, 1]", lambda v: 0.0 <= v <= 1.0)
    low = CREATIVITY_T_MIN * (1.0 / CREATIVITY_T_MIN) ** (2 * c)
    high = CREATIVITY_T_MAX ** (2 * c - 1)
    return np.where(c <= 0.5, low, high) if isinstance(c, np.ndarray) else \
        (low if c <= 0.5 else high)


class Creativity(Temperature):
    """One knob, c ∈ [0, 1], for a temperature: ``T = creativity_to_temperature(c)``.

    >>> Creativity(0.5)
    Creativity(0.5, T=1)
    """

    def __init__(self, c: float = 0.5):
        self.c = _check_number("creativity", c, "in [0, 1]", lambda v: 0.0 <= v <= 1.0)
        super().__init__(creativity_to_temperature(self.c))

    def __repr__(self) -> str:
        return f"Creativity({_fmt(self.c)}, T={self.temperature:.3g})"


# --------------------------------------------------------------------------------------------
# Your own step: any function f(logits) -> logits
# --------------------------------------------------------------------------------------------

class CustomStepError(TypeError, ValueError):
    """A student's function in a chain failed, or returned something the sampler cannot use.

    The message names the function, says what went wrong and how to fix it. When the function
    itself raised, its error is chained (``err.__cause__``), so the traceback shows the line.
    """


def _parameters(fn: Callable) -> list[inspect.Parameter] | None:
    try:
        return list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None


def _wants_ctx(fn: Callable) -> bool:
    """True if fn takes a ``ctx`` argument or two required positional arguments."""
    params = _parameters(fn)
    if params is None:
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    return any(p.name == "ctx" for p in positional) or len(required) >= 2


def _check_signature(fn: Callable, name: str) -> None:
    """A step is called as f(logits) or f(logits, ctx): say so now, not at the first token."""
    params = _parameters(fn)
    if params is None:
        return
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p.name for p in positional if p.default is p.empty]
    star = any(p.kind == p.VAR_POSITIONAL for p in params)
    keyword_only = [p.name for p in params if p.kind == p.KEYWORD_ONLY and p.default is p.empty]
    if not positional and not star:
        raise CustomStepError(f"your function {name} takes no arguments, but a step receives the "
                              f"logits: write def {name}(logits) or def {name}(logits, ctx)")
    if len(required) > 2:
        a, b, c = required[:3]
        raise CustomStepError(
            f"your function {name} needs {len(required)} arguments ({', '.join(required)}), but "
            f"a step receives only the logits and ctx; give the others a default value "
            f"(def {name}({a}, {b}, {c}=...)) or fix them with a lambda: "
            f"S.custom(lambda logits, ctx: {name}(logits, ctx, ...))")
    if keyword_only:
        raise CustomStepError(f"your function {name} needs the keyword argument(s) "
                              f"{', '.join(keyword_only)}, which a step never receives; give "
                              "them a default value")


def _private_copy(ctx: Context | None) -> Context | None:
    """A copy of ctx that a student's function may change without changing the tune."""
    if ctx is None:
        return None

    def own(x: object) -> object:
        return x.clone() if isinstance(x, Tensor) else x

    return dataclasses.replace(ctx, history=own(ctx.history), bar=own(ctx.bar),
                               uncond_logits=own(ctx.uncond_logits),
                               vocab=None if ctx.vocab is None else list(ctx.vocab))


def _line_of(fn: Callable, err: BaseException) -> str:
    """' in line 4 `best = ...`': the deepest line of the student's own code in the traceback."""
    inner = getattr(fn, "func", fn)                              # functools.partial
    code = getattr(inner, "__code__", None)
    if code is None:                                             # an object with a __call__
        code = getattr(vars(type(inner)).get("__call__"), "__code__", None)
    if code is None:
        return ""
    mine = [f for f in traceback.extract_tb(err.__traceback__) if f.filename == code.co_filename]
    if not mine:
        return ""
    line = (mine[-1].line or "").strip()
    if "  #" in line:                                            # leave out a trailing comment
        line = line[:line.index("  #")].rstrip()
    return f" in line {mine[-1].lineno}" + (f" `{line}`" if line else "")


def _hint(err: Exception, logits: Tensor, ctx: Context | None, wants_ctx: bool) -> str:
    """How to fix the most common mistakes inside a step function."""
    text = str(err)
    B, V = logits.shape
    if isinstance(err, ValueError) and "needs ctx." in text:     # a helper said what it needs
        return ""
    if "NoneType" in text and wants_ctx:
        if ctx is None:
            return ("Your function reads ctx, but it was called without one (ctx=None). The "
                    "generator, the tune studio and the step-through always pass ctx; with "
                    "S.explain or an explorer give ctx=S.Context.of(tokens, model.vocab), or let "
                    "your function return the logits unchanged when ctx is None.")
        missing = [f"ctx.{f}" for f in ("history", "bar", "vocab", "uncond_logits")
                   if getattr(ctx, f) is None]
        if missing:
            return (f"Something your function reads is None: in this call "
                    f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} None.")
    if isinstance(err, RuntimeError) and ("size of tensor" in text or "shape" in text):
        return (f"The shapes do not line up. The logits have shape ({B}, {V}): one row per tune "
                f"({B} written at once) and one column per token. A number per row needs shape "
                f"({B}, 1) to combine with them: use keepdim=True (logits.max(dim=-1, "
                "keepdim=True)) or x[:, None].")
    if isinstance(err, IndexError):
        return (f"An index is out of range. The logits have shape ({B}, {V}); ctx.history holds "
                "the tokens so far, only the four header tokens at the first step, so check its "
                "length (or use S.last_pitches, which pads with NaN) before looking back.")
    return "The error is in your function, not in the sampler: the traceback above shows where."


class Custom(Step):
    """Your own step: wrap any function ``f(logits) -> logits`` (or ``f(logits, ctx)``).

    ``f`` receives a copy of the (B, V) logits (B tunes written at once, V tokens), so editing
    them in place is safe, and a copy of ``ctx`` (:class:`Context`), so changing the history it
    reads cannot change the tune. It must return a float tensor of the same shape with removed
    tokens set to ``float('-inf')``. It is called with ``ctx`` when it has a parameter named
    ``ctx`` or two required ones; more parameters need default values.

    Everything is checked, and a mistake raises :class:`CustomStepError` naming the function,
    what went wrong and how to fix it: an error raised inside it (with the line), a result that
    is None, not a tensor, a mask or token ids, the wrong shape, NaN or +inf, a token brought
    back that an earlier step (or the generator's spelling rules) removed, or every token of a
    row removed.

    >>> def no_rests(logits):
    ...     logits[:, 0] = float("-inf")                          # say token 0 is the rest "z"
    ...     return logits
    >>> Custom(no_rests)(torch.zeros(1, 3))
    tensor([[-inf, 0., 0.]])
    """

    def __init__(self, fn: Callable[..., Tensor], name: str = ""):
        if isinstance(fn, Tensor) or fn is None:
            raise CustomStepError(
                f"custom needs the function itself, got {'None' if fn is None else 'a tensor'}: "
                "pass my_step, not my_step(logits) (no brackets: the sampler calls it)")
        if not callable(fn):
            raise CustomStepError(f"custom needs a function f(logits) -> logits, got {fn!r} "
                                  f"({type(fn).__name__})")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", type(fn).__name__)
        _check_signature(fn, self.name)
        self._wants_ctx = _wants_ctx(fn)

    def step(self, logits: Tensor, ctx: Context | None = None) -> Tensor:
        x = logits.clone()
        try:
            out = self.fn(x, _private_copy(ctx)) if self._wants_ctx else self.fn(x)
        except CustomStepError:
            raise
        except Exception as err:
            hint = _hint(err, logits, ctx, self._wants_ctx)
            raise CustomStepError(
                f"your function {self.name} raised {type(err).__name__}{_line_of(self.fn, err)}: "
                f"{str(err).rstrip('.')}.{' ' + hint if hint else ''}") from err
        return self._check(out, logits, ctx)

    def _check(self, out: object, logits: Tensor, ctx: Context | None) -> Tensor:
        me, shape = f"your function {self.name}", tuple(logits.shape)
        B, V = shape
        vocab = None if ctx is None else ctx.vocab

        def where(mask: Tensor) -> str:                          # "row 0, token 3 ('G')"
            row, tok = (int(i) for i in mask.nonzero()[0])
            name = f" ({vocab[tok]!r})" if vocab is not None and tok < len(vocab) else ""
            return f"row {row}, token {tok}{name}"

        if out is None:
            raise CustomStepError(f"{me} returned None instead of logits; did you forget "
                                  "`return logits` at the end?")
        if isinstance(out, np.ndarray):
            raise CustomStepError(f"{me} returned a numpy array; return a torch tensor, e.g. "
                                  "torch.as_tensor(result, dtype=logits.dtype)")
        if isinstance(out, tuple) and any(isinstance(o, Tensor) for o in out):
            raise CustomStepError(f"{me} returned a tuple of {len(out)} items; return only the "
                                  "logits tensor (`return logits`, not `return logits, ...`)")
        if not isinstance(out, Tensor):
            raise CustomStepError(f"{me} returned a {type(out).__name__}; it must return a "
                                  f"torch.Tensor of logits with shape {shape}")
        if out.dtype == torch.bool:
            raise CustomStepError(f"{me} returned a bool mask; to keep only the True tokens "
                                  "return logits.masked_fill(~mask, float('-inf'))")
        if not out.is_floating_point():
            raise CustomStepError(f"{me} returned a tensor of dtype {out.dtype}, not logits; "
                                  "return float logits (token ids, e.g. from argmax, do not "
                                  "belong here; set unwanted tokens to float('-inf'))")
        got = tuple(out.shape)
        if got != shape:
            if got == (V,):
                fix = (f"keep the row dimension: the logits are (B, V) = {shape}, one row per "
                       "tune; write logits[:, i] for token i (not logits[i]) and reduce with "
                       "dim=-1, keepdim=True")
            elif len(got) == 2 and got[1] == V:
                fix = (f"return every row: the input had {B} row(s), one per tune written at "
                       f"once, and your result has {got[0]}; work on all rows together "
                       "(logits[:, i], dim=-1) rather than on logits[0]")
            elif got in ((B, 1), (B,)):
                fix = ("that is one number per row (a max, a sum...), not logits; return the "
                       "whole (B, V) tensor, e.g. logits - that_number")
            else:
                fix = ("return one logit per token in the same (B, V) layout (use dim=-1, "
                       "keepdim=True for row statistics)")
            raise CustomStepError(f"{me} returned shape {got}, but its input had shape "
                                  f"{shape}; {fix}")
        out = out.to(logits.dtype)
        nan = torch.isnan(out)
        if nan.any():
            removed = logits == NEG_INF
            if (nan & ~removed).any():
                raise CustomStepError(f"{me} returned NaN at {where(nan & ~removed)}; NaN often "
                                      "comes from 0 * inf, inf - inf or log of a negative "
                                      "number. To remove a token set its logit to "
                                      "float('-inf')")
            raise CustomStepError(
                f"{me} returned NaN at {where(nan)}, a token removed (-inf) before your step: "
                "arithmetic on -inf gives NaN (-inf * 0, -inf - (-inf), -inf + inf). Leave "
                "removed tokens alone, e.g. "
                "out = torch.where(logits == float('-inf'), logits, out)")
        if (out == math.inf).any():
            raise CustomStepError(f"{me} returned +inf at {where(out == math.inf)}; softmax "
                                  "cannot handle +inf. To favour a token add a large finite "
                                  "number, or set the others to float('-inf')")
        revived = (logits == NEG_INF) & (out != NEG_INF)
        if revived.any():
            raise CustomStepError(
                f"{me} brought back {where(revived)}: it had been removed (-inf) before your "
                "step, by an earlier step or by the generator's spelling rules of ABC, and your "
                "function gave it a finite logit. A step may reshape or remove tokens but never "
                "bring a removed one back (clamp, nan_to_num or zeros_like turn -inf into "
                "numbers): keep -inf where it was, e.g. "
                "out = torch.where(logits == float('-inf'), logits, out)")
        dead = (out == NEG_INF).all(dim=-1)
        if dead.any():
            rows = _rows(dead)
            alive = int((logits[rows[0]] > NEG_INF).sum())
            before = (f"; the steps before yours had left only {alive}: put your step first in "
                      "the chain, so that truncation chooses among what your rule allows"
                      if alive <= 5 else "")
            were = "was" if alive == 1 else "were"
            raise CustomStepError(
                f"{me} removed every token in row(s) {rows} (all logits are -inf; {alive} of "
                f"the {V} tokens of row {rows[0]} {were} still in play when your step "
                f"ran){before}. "
                "Keep at least one token in every row: where your rule would remove them all, "
                "return the row unchanged, e.g. "
                "torch.where(out.isneginf().all(dim=-1, keepdim=True), logits, out)")
        return out

    def __repr__(self) -> str:
        return f"Custom({self.name})"


# --------------------------------------------------------------------------------------------
# Reading the tune so far: helpers for your own steps
# --------------------------------------------------------------------------------------------

_HEADER = ("M:", "K:", "S:")


class _VocabPitches:
    """What the pitch helpers need to know about a vocabulary, worked out once per vocabulary."""

    def __init__(self, vocab: tuple[str, ...]):
        self.vocab = vocab
        self.is_pitch = [is_pitch(t) for t in vocab]
        self.is_bar = [t in BARS for t in vocab]
        self.is_header = [t == BOS or t[:2] in _HEADER for t in vocab]
        self.mode = {i: t[2:] for i, t in enumerate(vocab) if t[:2] == "K:" and t[2:] in MODES}
        self.plain: dict[tuple[str, str], int] = {}      # (letter, marks) -> id, no accidental
        self.natural: dict[tuple[str, str], int] = {}    # (letter, marks) -> MIDI of the natural
        self.accidental: dict[int, tuple[tuple[str, str], int]] = {}   # id -> (key, alter)
        for i, t in enumerate(vocab):
            if not self.is_pitch[i]:
                continue
            acc, letter, marks = PITCH_RE.match(t).groups()
            key = (letter, marks)
            self.natural[key] = midi_pitch(letter + marks, {})
            if acc:
                self.accidental[i] = (key, midi_pitch(t, {}) - self.natural[key])
            else:
                self.plain[key] = i
        self.base: dict[str, Tensor] = {}                 # mode -> (V,) float64
        for mode in MODES:
            signature = Key("C", 0, mode).signature()
            self.base[mode] = torch.tensor(
                [float(midi_pitch(t, signature)) if self.is_pitch[i] else math.nan
                 for i, t in enumerate(vocab)], dtype=torch.float64)

    def header(self, row: list[int]) -> int:
        """How many tokens at the start of ``row`` are its header (``<s> M:.. K:.. S:..``)."""
        n = 0
        while n < min(4, len(row)) and self.is_header[row[n]]:
            n += 1
        return n

    def row_mode(self, row: list[int]) -> str:
        return next((self.mode[t] for t in row[:4] if t in self.mode), "maj")

    def carried(self, row: list[int]) -> dict[tuple[str, str], int]:
        """Accidentals written earlier in the current bar: (letter, marks) -> alteration."""
        i = len(row)
        while i > 0 and not self.is_bar[row[i - 1]]:
            i -= 1
        out: dict[tuple[str, str], int] = {}
        for t in row[i:]:
            if t in self.accidental:
                key, alter = self.accidental[t]
                out[key] = alter
        return out

    def last_pitches(self, row: list[int], k: int) -> list[int]:
        """The MIDI pitches of the last k notes of ``row`` (fewer at the start of a tune).

        Reads as little of the tune as it can: from the bar line before the k-th note from the
        end, one bar further back at a time while ties leave fewer than k notes. Starting right
        after a bar line makes the carried accidentals exact; a note tied over that bar line
        into the window is counted as a note of its own, with the pitch it has anyway.
        """
        from toolkit.metrics import notes_of

        head = self.header(row)
        i, seen = len(row), 0
        while i > head and seen < k:
            i -= 1
            seen += self.is_pitch[row[i]]
        if seen == 0:
            return []
        names = [self.vocab[t] for t in row[:head]]
        while True:
            while i > head and not self.is_bar[row[i - 1]]:
                i -= 1
            notes = notes_of(names + [self.vocab[t] for t in row[i:]], key="C")
            if len(notes) >= k or i <= head:
                return [n.pitch for n in notes[-k:]]
            i -= 1                                               # into the bar before


@functools.lru_cache(maxsize=8)
def _vocab_pitches(vocab: tuple[str, ...]) -> _VocabPitches:
    return _VocabPitches(vocab)


def _tune_rows(ctx: Context | None, who: str) -> tuple[list[list[int]], _VocabPitches]:
    """ctx.history as lists of token ids, and what the vocabulary says about pitches."""
    if ctx is None or ctx.history is None or ctx.vocab is None:
        raise ValueError(f"{who} needs ctx.history and ctx.vocab, the tune so far; the "
                         "generator, the tune studio, the step-through and the explorers pass "
                         "them (to try a function by hand, build one: "
                         "S.Context.of(tokens, model.vocab))")
    h = torch.as_tensor(ctx.history)
    if h.dim() == 1:
        h = h[None]                                              # (T,) -> (1, T)
    if h.dim() != 2 or h.is_floating_point():
        raise ValueError(f"{who} needs ctx.history as a (B, T) tensor of token ids, got "
                         f"{h.dtype} of shape {tuple(h.shape)}")
    return h.tolist(), _vocab_pitches(tuple(ctx.vocab))


def token_pitches(ctx: Context | None) -> Tensor:
    """The MIDI pitch each token would sound if it came next: ``(B, V)`` float64.

    NaN for the tokens that are not notes (lengths, bar lines, rests, ``</s>``...), so that a
    comparison with them is False. A pitch token sounds as the key signature of the tune's mode
    says (the model writes every tune with the tonic C: ``E`` is E♭ in ``K:min``), unless an
    accidental earlier in the same bar changed that letter, as in ABC: after ``^F``, ``F`` is F♯.
    Middle C is 60, one octave is 12. Needs ``ctx.history`` and ``ctx.vocab``.

    >>> vocab = ["<s>", "M:6/8", "K:min", "S:?", "|", "^F", "F", "E", "c", "2"]
    >>> token_pitches(Context.of("M:6/8 K:min S:? | ^F", vocab))[0, 5:].tolist()
    [66.0, 66.0, 63.0, 72.0, nan]
    """
    rows, info = _tune_rows(ctx, "token_pitches")
    out = []
    for row in rows:
        pitches = info.base[info.row_mode(row)]
        carried = info.carried(row)
        if carried:
            pitches = pitches.clone()
            for key, alter in carried.items():
                if key in info.plain:
                    pitches[info.plain[key]] = info.natural[key] + alter
        out.append(pitches)
    return torch.stack(out)


def last_pitches(ctx: Context | None, k: int = 1) -> Tensor:
    """The MIDI pitches of the last ``k`` notes of each tune so far: ``(B, k)`` float64.

    Oldest first, so ``[:, -1]`` is the latest note; NaN fills the front while a tune has fewer
    than k notes (at its start), and a comparison with NaN is False. Notes are counted as
    :func:`toolkit.metrics.notes_of` counts them: rests are skipped, a tied note is one note,
    accidentals last to the end of the bar. Needs ``ctx.history`` and ``ctx.vocab``.

    >>> vocab = ["<s>", "M:6/8", "K:maj", "S:?", "|", "G", "c", "z", "2"]
    >>> last_pitches(Context.of("M:6/8 K:maj S:? G c 2 z |", vocab), k=3).tolist()
    [[nan, 67.0, 72.0]]
    """
    k = _check_number("k", k, "≥ 1", lambda v: v >= 1, integer=True)
    rows, info = _tune_rows(ctx, "last_pitches")
    out = torch.full((len(rows), k), math.nan, dtype=torch.float64)
    for r, row in enumerate(rows):
        pitches = info.last_pitches(row, k)
        if pitches:
            out[r, k - len(pitches):] = torch.tensor(pitches, dtype=torch.float64)
    return out


# --------------------------------------------------------------------------------------------
# The chain and the draw
# --------------------------------------------------------------------------------------------

def _draw(logits: Tensor, generator: torch.Generator | None):
    """Inverse-CDF sampling: returns tokens (B,), probs (B, V), u (B,), cdf (B, V).

    Each row's tokens are laid side by side on [0, 1), token i taking the interval
    [cdf[i-1], cdf[i]) of length p_i; a uniform u lands in exactly one interval. float64
    keeps the intervals exact enough to print; removed tokens have empty intervals.
    """
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator (e.g. "
                         f"torch.Generator().manual_seed(7)) or None, got {generator!r}")
    probs = torch.softmax(logits, dim=-1, dtype=torch.float64)   # (B, V)
    cdf = probs.cumsum(dim=-1)                                   # (B, V)
    cdf = cdf / cdf[:, -1:]                                      # last entry exactly 1.0
    u = torch.rand(logits.shape[0], 1, generator=generator, dtype=torch.float64,
                   device=logits.device)                         # (B, 1) in [0, 1)
    tokens = torch.searchsorted(cdf, u, right=True).view(-1)     # first i with cdf[i] > u
    return tokens, probs, u.view(-1), cdf


def draw(logits: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Draw one token per row from softmax(logits): plain sampling, (B, V) -> (B,) ids.

    >>> draw(torch.tensor([[0.0, 5.0, -math.inf]]), torch.Generator().manual_seed(1))
    tensor([1])
    """
    _check_logits(logits)
    return _draw(logits.detach(), generator)[0]


class Chain(Step):
    """Steps applied in the order given; a chain is itself a step.

    ``chain(logits, ctx)`` returns the final logits; :meth:`sample` draws from them with an
    explicit ``torch.Generator`` (the same seed gives the same tokens) and then lets stateful
    steps observe the draw. Plain functions become :class:`Custom` steps; nested chains are
    flattened.

    >>> Chain(Temperature(1.2), TopK(40), TopP(0.9))
    Chain(Temperature(1.2) → TopK(40) → TopP(0.9))
    """

    def __init__(self, *steps: Step | Callable[..., Tensor], name: str = ""):
        flat: list[Step] = []
        for i, s in enumerate(steps):
            if isinstance(s, Chain):
                flat.extend(s.steps)
            elif isinstance(s, Step):
                flat.append(s)
            elif callable(s):
                flat.append(Custom(s))
            elif isinstance(s, Tensor) or s is None:
                raise ValueError(f"step {i} of the chain is {'None' if s is None else 'a tensor'}"
                                 ": pass the function itself, my_step, not my_step(logits) (no "
                                 "brackets: the chain calls it)")
            else:
                raise ValueError(f"step {i} of the chain must be a sampler step (e.g. "
                                 f"S.top_k(40)) or a function f(logits) -> logits, got {s!r}")
        self.steps: tuple[Step, ...] = tuple(flat)
        self.name = name
        self._observers = [s for s in flat if type(s).observe is not Step.observe]

    def step(self, logits: Tensor, ctx: Context | None = None) -> Tensor:
        for s in self.steps:
            logits = s.step(logits, ctx)
        return logits

    def sample(self, logits: Tensor, generator: torch.Generator | None = None,
               ctx: Context | None = None) -> Tensor:
        """Run the chain on (B, V) logits and draw one token per row: a (B,) LongTensor."""
        _check_logits(logits)
        if logits.requires_grad:
            logits = logits.detach()
        tokens, probs, _, _ = _draw(self.step(logits, ctx), generator)
        for s in self._observers:
            s.observe(tokens, probs)
        return tokens

    def observe(self, tokens: Tensor, probs: Tensor) -> None:
        for s in self._observers:
            s.observe(tokens, probs)

    def reset(self) -> None:
        for s in self.steps:
            s.reset()

    @property
    def active(self) -> bool:
        return any(s.active for s in self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def __getitem__(self, i: int) -> Step:
        return self.steps[i]

    def __repr__(self) -> str:
        name = f", name={self.name!r}" if self.name else ""
        return f"Chain({' → '.join(repr(s) for s in self.steps)}{name})"


def temperature_first(temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                      min_p: float = 0.0, typical_p: float = 1.0, epsilon: float = 0.0,
                      eta: float = 0.0) -> Chain:
    """The Hugging Face order: temperature → top-k → top-p → min-p → typical → epsilon → eta.

    Temperature reshapes first, so every truncation sees the flattened (or sharpened)
    distribution. Steps left at their "off" value are omitted; the repr shows what is active.

    >>> temperature_first(temperature=0.8, top_p=0.9)
    Chain(Temperature(0.8) → TopP(0.9), name='temperature_first')
    """
    steps = [Temperature(temperature), TopK(top_k), TopP(top_p), MinP(min_p),
             TypicalP(typical_p), Epsilon(epsilon), Eta(eta)]
    return Chain(*[s for s in steps if s.active], name="temperature_first")


def temperature_last(top_k: int = 0, typical_p: float = 1.0, top_p: float = 1.0,
                     min_p: float = 0.0, temperature: float = 1.0) -> Chain:
    """The llama.cpp order: top-k → typical → top-p → min-p → temperature.

    Truncation sees the model's own distribution; temperature only reshapes the survivors.
    Off steps are omitted.

    >>> temperature_last(top_p=0.9, temperature=0.8)
    Chain(TopP(0.9) → Temperature(0.8), name='temperature_last')
    """
    steps = [TopK(top_k), TypicalP(typical_p), TopP(top_p), MinP(min_p),
             Temperature(temperature)]
    return Chain(*[s for s in steps if s.active], name="temperature_last")


# --------------------------------------------------------------------------------------------
# explain: what each step did to one row, and why the drawn token was drawn
# --------------------------------------------------------------------------------------------

@dataclass
class Stage:
    """The distribution after one step (the first stage is the input).

    Arrays are numpy, shape (V,): ``logits`` and ``probs`` float64, ``kept`` bool.
    ``kept_mass`` is the share of the previous stage's probability on the tokens that
    survived this step (1.0 for the input).
    """

    name: str
    logits: np.ndarray
    probs: np.ndarray
    kept: np.ndarray
    kept_mass: float
    entropy_bits: float

    @property
    def effective_choices(self) -> float:
        """2^H: as many equally likely tokens would have the same entropy."""
        return 2.0 ** self.entropy_bits

    @property
    def n_kept(self) -> int:
        return int(self.kept.sum())


@dataclass
class Draw:
    """The draw: ``u`` fell in ``interval = [lo, hi)`` of the final cumulative probabilities,
    which belongs to ``token``; ``rank`` 1 is the most likely token (ties share a rank)."""

    u: float
    token: int
    name: str | None
    rank: int
    prob: float
    interval: tuple[float, float]


@dataclass
class Explanation:
    """What a chain did to one row of logits; print it, or plot from ``stages``."""

    chain: Chain
    stages: list[Stage]
    draw: Draw
    vocab: list[str] | None = None

    @property
    def probs(self) -> np.ndarray:
        """(n_stages, V) float64: the probabilities at every stage, input first."""
        return np.stack([s.probs for s in self.stages])

    def _label(self, i: int) -> str:
        return self.vocab[i] if self.vocab is not None and i < len(self.vocab) else f"#{i}"

    def to_table(self, top: int = 8) -> str:
        """A readable summary: one line per stage, then the most likely tokens per stage."""
        V = len(self.stages[0].probs)
        lines = [f"explain {self.chain!r}",
                 f"  {'stage':<28}{'kept':>9}{'kept mass':>11}{'entropy':>14}{'choices':>9}"]
        for i, s in enumerate(self.stages):
            lines.append(f"  {i}: {s.name[:25]:<25}{f'{s.n_kept}/{V}':>9}"
                         f"{s.kept_mass:>11.1%}{s.entropy_bits:>9.2f} bits"
                         f"{s.effective_choices:>9.1f}")
        order = np.argsort(-self.stages[0].probs, kind="stable")[:top].tolist()
        if self.draw.token not in order:
            order.append(self.draw.token)
        header = "".join(f"{i:>8}" for i in range(len(self.stages)))
        lines.append(f"  {'token':<12}{header}   (probability at each stage; — = removed)")
        for tok in order:
            cells = "".join(f"{s.probs[tok]:>8.1%}" if s.kept[tok] else f"{'—':>8}"
                            for s in self.stages)
            mark = "  ← drawn" if tok == self.draw.token else ""
            lines.append(f"  {self._label(tok):<12}{cells}{mark}")
        d = self.draw
        lines.append(f"  draw: u = {d.u:.4f} fell in [{d.interval[0]:.4f}, {d.interval[1]:.4f})"
                     f" → token {d.token} {self._label(d.token)!r} (rank {d.rank}, "
                     f"p = {d.prob:.1%})")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.to_table()


def _stage(name: str, logits: Tensor, previous: Stage | None) -> Stage:
    x = logits[0].double()                                       # (V,)
    probs = x.softmax(dim=-1)
    kept = (x > NEG_INF).numpy()
    mass = 1.0 if previous is None else float(previous.probs[kept].sum())
    entropy_bits = float(_entropy(probs)) / LN2
    return Stage(name, x.numpy(), probs.numpy(), kept, mass, entropy_bits)


def explain(logits: Tensor, chain: Step | Callable[..., Tensor], ctx: Context | None = None,
            generator: torch.Generator | None = None, seed: int | None = None,
            vocab: list[str] | None = None) -> Explanation:
    """Run ``chain`` on one row of logits ((V,) or (1, V)) and record every stage and the draw.

    The draw uses ``generator``, else a new one seeded with ``seed``, else torch's global
    generator; with the same seed it draws the same token as ``chain.sample``. explain never
    updates stateful steps (it does not call ``observe``).

    >>> e = explain(torch.tensor([2.0, 1.0, 0.0]), Chain(TopK(2)), seed=0, vocab=["G", "A", "B"])
    >>> [s.n_kept for s in e.stages], e.draw.name
    ([3, 2], 'A')
    """
    if isinstance(logits, Tensor) and logits.dim() == 1:
        logits = logits[None]                                    # (V,) -> (1, V)
    _check_logits(logits)
    if logits.shape[0] != 1:
        raise ValueError(f"explain works on one row, got {logits.shape[0]} rows; pass "
                         "logits[i] for row i")
    chain = chain if isinstance(chain, Chain) else Chain(chain)
    if seed is not None and generator is None:
        generator = torch.Generator().manual_seed(seed)
    vocab = vocab if vocab is not None else (None if ctx is None else ctx.vocab)
    x = logits.detach()
    stages = [_stage("input (softmax)", x, None)]
    for s in chain.steps:
        x = s.step(x, ctx)
        stages.append(_stage(repr(s), x, stages[-1]))
    tokens, probs, u, cdf = _draw(x, generator)
    tok = int(tokens[0])
    p = probs[0]
    lo = float(cdf[0, tok - 1]) if tok > 0 else 0.0
    rank = 1 + int((p > p[tok]).sum())
    name = vocab[tok] if vocab is not None and tok < len(vocab) else None
    return Explanation(chain, stages, Draw(float(u[0]), tok, name, rank, float(p[tok]),
                                           (lo, float(cdf[0, tok]))), vocab)


# --------------------------------------------------------------------------------------------
# Factories: the notebook API (S.temperature(1.2) is Temperature(1.2), and so on)
# --------------------------------------------------------------------------------------------

def temperature(t: float = 1.0) -> Temperature:
    """Divide the logits by T (0 = greedy). See :class:`Temperature`."""
    return Temperature(t)


def top_k(k: int) -> TopK:
    """Keep the k most likely tokens (ties kept; 0 = off). See :class:`TopK`."""
    return TopK(k)


def top_p(p: float) -> TopP:
    """Keep the smallest set of tokens with mass ≥ p. See :class:`TopP`."""
    return TopP(p)


def min_p(p: float) -> MinP:
    """Keep tokens with p ≥ min_p · p_max. See :class:`MinP`."""
    return MinP(p)


def typical_p(mass: float) -> TypicalP:
    """Keep the most typical tokens up to mass τ. See :class:`TypicalP`."""
    return TypicalP(mass)


def epsilon(eps: float) -> Epsilon:
    """Remove tokens with p < ε. See :class:`Epsilon`."""
    return Epsilon(eps)


def eta(eps: float) -> Eta:
    """Remove tokens with p < min(ε, √ε·e^(−H)). See :class:`Eta`."""
    return Eta(eps)


def mirostat(tau: float = 3.0, eta: float = 0.1) -> Mirostat:
    """Steer the surprise towards τ bits. See :class:`Mirostat`."""
    return Mirostat(tau, eta)


def repetition_penalty(penalty: float, window: int | None = None) -> RepetitionPenalty:
    """Penalise tokens already played. See :class:`RepetitionPenalty`."""
    return RepetitionPenalty(penalty, window)


def no_repeat_ngram(n: int) -> NoRepeatNGram:
    """Ban tokens that would repeat an n-gram. See :class:`NoRepeatNGram`."""
    return NoRepeatNGram(n)


def guidance(scale: float) -> Guidance:
    """Classifier-free guidance with scale s. See :class:`Guidance`."""
    return Guidance(scale)


def custom(fn: Callable[..., Tensor], name: str = "") -> Custom:
    """Your own function f(logits) -> logits as a step. See :class:`Custom`."""
    return Custom(fn, name)


def temperature_by_step(temperatures: Sequence[float] | Callable[[int], float]
                        ) -> StepTemperature:
    """Temperature by token position. See :class:`StepTemperature`."""
    return StepTemperature(temperatures)


def temperature_by_bar(temperatures: Sequence[float] | Callable[[int], float]
                       ) -> BarTemperature:
    """Temperature by bar. See :class:`BarTemperature`."""
    return BarTemperature(temperatures)


def temperature_by_section(sections: Sequence[tuple[int, int | None, float]],
                           default: float = 1.0) -> SectionTemperature:
    """Temperature by section (bar ranges). See :class:`SectionTemperature`."""
    return SectionTemperature(sections, default)


def temperature_schedule(fn: Callable[[int, Tensor | None], float | Tensor]
                         ) -> TemperatureSchedule:
    """Temperature from your function of (step, bar). See :class:`TemperatureSchedule`."""
    return TemperatureSchedule(fn)


def dynamic_temperature(t_min: float = 0.5, t_max: float = 1.5, exponent: float = 1.0
                        ) -> DynamicTemperature:
    """Temperature from the entropy of each row. See :class:`DynamicTemperature`."""
    return DynamicTemperature(t_min, t_max, exponent)


def creativity(c: float) -> Creativity:
    """One knob c ∈ [0, 1] for the temperature. See :func:`creativity_to_temperature`."""
    return Creativity(c)


def as_steps(steps: object, name: str = "extra_steps") -> tuple:
    """Your own steps as a tuple: one function or step, a list of them, or None (no steps).

    Each must be able to join a chain (a clear error now, not at the first token):

    >>> def no_rests(logits): return logits
    >>> as_steps(no_rests) == (no_rests,), as_steps(None)
    (True, ())
    """
    if steps is None:
        return ()
    if callable(steps):
        steps = (steps,)
    if isinstance(steps, str | Tensor) or not isinstance(steps, Sequence):
        raise ValueError(f"{name} must be your step function (pass the function itself, not its "
                         f"result), a sampler step, or a list of them; got "
                         f"{type(steps).__name__}")
    Chain(*steps)
    return tuple(steps)


def chain(*steps: Step | Callable[..., Tensor]) -> Chain:
    """Apply steps in the order given: ``chain(temperature(1.2), top_k(40), top_p(0.9))``."""
    return Chain(*steps)
