"""The chain and the draw: steps run in order, then one token is drawn; the two chain orders in
wide use; :func:`explain`, which shows what every stage did."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from toolkit.lm.sampling.base import LN2, NEG_INF, Context, Step, _check_logits
from toolkit.lm.sampling.steps import (
    Epsilon,
    Eta,
    MinP,
    Temperature,
    TopK,
    TopP,
    TypicalP,
    _entropy,
)
from toolkit.lm.sampling.user_steps import Custom

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

    >>> draw(torch.tensor([[0.0, 5.0, float("-inf")]]), torch.Generator().manual_seed(1))
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


#: The two chain orders in wide use, as the names of their steps in the order they run. The one
#: home of this table: :func:`temperature_first`, :func:`temperature_last` and the slider apps
#: all read it.
ORDERS: dict[str, tuple[str, ...]] = {
    # Hugging Face transformers' LogitsProcessorList order
    "temperature first": ("temperature", "top_k", "top_p", "min_p", "typical_p", "epsilon",
                          "eta"),
    # llama.cpp's default sampler order
    "temperature last": ("top_k", "typical_p", "top_p", "min_p", "temperature"),
}

#: step name (the factory's and the keyword's) -> class, for the steps the orders arrange
STEP_CLASSES: dict[str, type[Step]] = {"temperature": Temperature, "top_k": TopK, "top_p": TopP,
                                       "min_p": MinP, "typical_p": TypicalP,
                                       "epsilon": Epsilon, "eta": Eta}


def ordered_chain(order: str, *, keep_off: bool = False, **settings: float) -> Chain:
    """The steps of ``ORDERS[order]`` with ``settings`` (``temperature=0.8, top_p=0.9``...);
    steps not given are at their "off" value. Off steps are left out unless ``keep_off``, which
    keeps every stage of :func:`explain` in place for a slider app.

    >>> ordered_chain("temperature last", temperature=0.8, top_p=0.9)
    Chain(TopP(0.9) → Temperature(0.8), name='temperature_last')
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {list(ORDERS)}, got {order!r}")
    names = ORDERS[order]
    unknown = sorted(set(settings) - set(names))
    if unknown:
        raise ValueError(f"the {order!r} order has no step {unknown[0]!r}; its steps are "
                         f"{', '.join(names)}")
    steps = [STEP_CLASSES[n](settings[n]) if n in settings else STEP_CLASSES[n]()
             for n in names]
    return Chain(*[s for s in steps if keep_off or s.active], name=order.replace(" ", "_"))


def temperature_first(temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                      min_p: float = 0.0, typical_p: float = 1.0, epsilon: float = 0.0,
                      eta: float = 0.0) -> Chain:
    """The Hugging Face order: temperature → top-k → top-p → min-p → typical → epsilon → eta.

    Temperature reshapes first, so every truncation sees the flattened (or sharpened)
    distribution. Steps left at their "off" value are omitted; the repr shows what is active.

    >>> temperature_first(temperature=0.8, top_p=0.9)
    Chain(Temperature(0.8) → TopP(0.9), name='temperature_first')
    """
    return ordered_chain("temperature first", temperature=temperature, top_k=top_k,
                         top_p=top_p, min_p=min_p, typical_p=typical_p, epsilon=epsilon, eta=eta)


def temperature_last(top_k: int = 0, typical_p: float = 1.0, top_p: float = 1.0,
                     min_p: float = 0.0, temperature: float = 1.0) -> Chain:
    """The llama.cpp order: top-k → typical → top-p → min-p → temperature.

    Truncation sees the model's own distribution; temperature only reshapes the survivors.
    Off steps are omitted.

    >>> temperature_last(top_p=0.9, temperature=0.8)
    Chain(TopP(0.9) → Temperature(0.8), name='temperature_last')
    """
    return ordered_chain("temperature last", top_k=top_k, typical_p=typical_p, top_p=top_p,
                         min_p=min_p, temperature=temperature)


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

    def _step_index(self, step: str | type[Step]) -> int:
        cls = STEP_CLASSES[step] if isinstance(step, str) else step
        found = [i for i, s in enumerate(self.chain.steps) if isinstance(s, cls)]
        if not found:
            raise KeyError(f"the chain {self.chain!r} has no {getattr(cls, '__name__', cls)} step")
        return found[-1]                    # the last one: a student's own steps come first

    def seen_by(self, step: str | type[Step]) -> Stage:
        """The stage a step received (``e.seen_by("top_p")``): what that step looked at.

        >>> e = explain(torch.tensor([2.0, 1.0, 0.0]), Chain(TopK(2), TopP(0.5)), seed=0)
        >>> e.seen_by("top_p").n_kept, e.after("top_p").n_kept
        (2, 1)
        """
        return self.stages[self._step_index(step)]

    def after(self, step: str | type[Step]) -> Stage:
        """The stage a step handed on (the last step of that kind in the chain)."""
        return self.stages[self._step_index(step) + 1]

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
    changes the chain: stateful steps (Mirostat's μ, say) run as copies, and ``observe`` is not
    called, so a live chain reads the same before and after.

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
        if type(s).observe is not Step.observe or type(s).reset is not Step.reset:
            s = copy.deepcopy(s)                                 # stateful: look, don't touch
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


