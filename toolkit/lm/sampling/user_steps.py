"""Your own step: any function ``f(logits) -> logits`` joins a chain, with messages that say
what went wrong; and helpers that read the tune so far."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import traceback
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from toolkit.lm.sampling.base import NEG_INF, Context, Step, _check_number, _rows
from toolkit.music.tokens import (
    BARS,
    BOS,
    MODES,
    PITCH_RE,
    Key,
    is_pitch,
    midi_pitch,
)

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
        from toolkit.music.notes import notes_of

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


