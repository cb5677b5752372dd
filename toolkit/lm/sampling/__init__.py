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

from collections.abc import Callable, Sequence

from torch import Tensor

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
    # constraints: masks from the rules of a valid tune
    "GrammarConstraint", "MeterConstraint", "grammar", "meter_constraint",
    # chains, drawing, diagnostics
    "Chain", "chain", "as_steps", "temperature_first", "temperature_last", "draw",
    "ORDERS", "STEP_CLASSES", "ordered_chain", "temperature_entropy",
    "explain", "Explanation", "Stage", "Draw",
]
from toolkit.lm.sampling.base import Context, Step
from toolkit.lm.sampling.chains import (
    ORDERS,
    STEP_CLASSES,
    Chain,
    Draw,
    Explanation,
    Stage,
    draw,
    explain,
    ordered_chain,
    temperature_first,
    temperature_last,
)
from toolkit.lm.sampling.constraints import (
    GrammarConstraint,
    MeterConstraint,
    grammar,
    meter_constraint,
)
from toolkit.lm.sampling.schedules import (
    BarTemperature,
    Creativity,
    DynamicTemperature,
    SectionTemperature,
    StepTemperature,
    TemperatureSchedule,
    creativity_to_temperature,
)
from toolkit.lm.sampling.steps import (
    Epsilon,
    Eta,
    Guidance,
    MinP,
    Mirostat,
    NoRepeatNGram,
    RepetitionPenalty,
    Temperature,
    TopK,
    TopP,
    TypicalP,
    temperature_entropy,
)
from toolkit.lm.sampling.user_steps import Custom, CustomStepError, last_pitches, token_pitches

# --------------------------------------------------------------------------------------------
# Factories: the notebook API (S.temperature(1.2) is Temperature(1.2), and so on)
# --------------------------------------------------------------------------------------------

def temperature(temperature: float = 1.0) -> Temperature:
    """Divide the logits by T (0 = greedy). See :class:`Temperature`."""
    return Temperature(temperature)


def top_k(k: int) -> TopK:
    """Keep the k most likely tokens (ties kept; 0 = off). See :class:`TopK`."""
    return TopK(k)


def top_p(p: float) -> TopP:
    """Keep the smallest set of tokens with mass ≥ p. See :class:`TopP`."""
    return TopP(p)


def min_p(min_p: float) -> MinP:
    """Keep tokens with p ≥ min_p · p_max. See :class:`MinP`."""
    return MinP(min_p)


def typical_p(mass: float) -> TypicalP:
    """Keep the most typical tokens up to mass τ. See :class:`TypicalP`."""
    return TypicalP(mass)


def epsilon(epsilon: float) -> Epsilon:
    """Remove tokens with p < ε. See :class:`Epsilon`."""
    return Epsilon(epsilon)


def eta(epsilon: float) -> Eta:
    """Remove tokens with p < min(ε, √ε·e^(−H)). See :class:`Eta`."""
    return Eta(epsilon)


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
