"""What every sampler step shares: the :class:`Context` a step may read, argument checks, and
the :class:`Step` base class."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from toolkit.music.tokens import (
    BARS,
    BOS,
    UnknownTokenError,
)

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
    - ``max_tokens``: how many body tokens the generator may write in all (its budget), so
      ``max_tokens - step`` are left, this one included; None: no limit known.
    """

    history: Tensor | None = None
    step: int = 0
    bar: Tensor | None = None
    uncond_logits: Tensor | None = None
    vocab: list[str] | None = None
    max_tokens: int | None = None

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
    try:
        v = float(value)
    except OverflowError:  # an int past float's range (10**400): out of every range
        raise ValueError(f"{name} must be {'an integer ' if integer else ''}{allowed}, "
                         f"got an integer of {len(str(abs(int(value))))} digits, "
                         "too large for a float") from None
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




def one_row(logits: object) -> Tensor:
    """One row of logits as a float64 ``(V,)`` tensor, from ``(V,)`` or ``(1, V)``."""
    x = torch.as_tensor(logits).detach().double()
    if x.dim() == 2 and x.shape[0] == 1:
        x = x[0]
    if x.dim() != 1:
        raise ValueError(f"logits must be one row of shape (V,) or (1, V), got shape "
                         f"{tuple(x.shape)}")
    return x
