"""Temperature schedules: a temperature that depends on where the tune is (step, bar, section)
or on how sure the model is (dynamic temperature)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from toolkit.lm.sampling.base import NEG_INF, Context, Step, _check_number, _fmt
from toolkit.lm.sampling.steps import Temperature, _divide_rows, _entropy

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

    From Zhang et al., "EDT: Improving Large Language Models' Generation by Entropy-based
    Dynamic Temperature Sampling" (2024, arXiv:2403.14541); llama.cpp's ``dynatemp`` uses the
    same normalised-entropy rule.

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


