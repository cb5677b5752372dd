"""The tune studio: move a slider, hear a new tune, and see how every note was drawn.

In a notebook::

    from toolkit import load_model
    from toolkit.lessons.studio import TuneStudio
    studio = TuneStudio(load_model())      # sliders, status line, score and play button
    studio                                 # shows the app in Jupyter (or Voilà)
    studio.seed.value = 5                  # the same as moving the seed slider
    studio.compare({"temperature": 0.7}, {"temperature": 1.5})   # same seed, side by side

The module has three layers:

* **data** -- :class:`Settings`, :func:`new_tune`, :func:`record` (a generation recorded step
  by step), :class:`Recording`, :func:`observations`, :func:`summarize`,
  :func:`tune_html`. No widgets; usable from a script.
* **plots** -- the pure functions of :mod:`toolkit.lessons.plots` (``plot_distribution``,
  ``plot_draw``), updated in place.
* **widgets** -- :class:`TuneStudio`, :class:`StepThrough` and :class:`Comparison`, which only
  wire sliders to the two layers above. Every control is an attribute (``studio.temperature``,
  ``studio.seed``, ``studio.style``...), so a test or a teacher's cell can set it.

What a student picks never kills the kernel: a failed generation or render is reported in the
status line (or in place of the score, with the tune's ABC text), never raised.

Generation runs on one CPU thread (:func:`one_thread`): for one tune at a time the LSTM's
matrices are too small to share between threads, and two threads are several times *slower*
when another process (a training run, a second notebook) keeps the other core busy.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from toolkit.lessons.views import FigureView, status_html
from toolkit.lm import heap
from toolkit.lm import sampling as S
from toolkit.lm.generation import generate
from toolkit.lm.threads import one_thread
from toolkit.music.tokens import BARS, decode, is_pitch
from toolkit.music.tune import Tune

__all__ = [
    "Settings", "new_tune", "record", "Recording", "DrawStep",
    "tune_html", "observations", "observations_html", "summarize", "Summary", "summary_table",
    "StepPlot", "plot_step",
    "TuneStudio", "StepThrough", "Comparison", "compare",
]

#: The slider ranges of the studio (min, max, step).
RANGES = {
    "temperature": (0.0, 2.5, 0.05),
    "top_k": (0, 60, 1),
    "top_p": (0.05, 1.0, 0.01),
    "min_p": (0.0, 0.5, 0.01),
    "seed": (0, 999, 1),
}
#: Notes the model gave less than this probability count as "surprising" in observations.
SURPRISING = 0.05


# ---------------------------------------------------------------------------------------------
# Settings and generation
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Settings:
    """Everything that decides a studio tune: the sampler's knobs, the seed, the conditioning.

    ``top_k = 0``, ``top_p = 1`` and ``min_p = 0`` mean "off"; ``meter``, ``mode`` and
    ``style`` None let the model choose. The chain is :func:`toolkit.sampling.temperature_first`
    (temperature, then top-k, top-p, min-p), after ``extra_steps``: your own steps (functions
    ``f(logits)`` or ``f(logits, ctx)``, or sampler steps), which run first, on the model's own
    distribution, so that truncation then chooses among what they allow.  ``grammar=True`` puts
    :func:`toolkit.sampling.grammar` before all of them: every tune valid ABC.

    >>> Settings(temperature=0.7, top_p=0.9, seed=3).label()
    'T 0.7 · top-p 0.9 · seed 3'
    >>> def no_rests(logits): return logits
    >>> Settings(extra_steps=no_rests).label()
    'no_rests · T 1 · seed 1'
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.0
    seed: int = 1
    meter: str | None = None
    mode: str | None = None
    style: str | None = None
    max_tokens: int = 256
    key: str = "D"
    extra_steps: tuple = ()
    grammar: bool = False           # S.grammar() first: every tune valid ABC

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra_steps", S.as_steps(self.extra_steps))

    @classmethod
    def of(cls, value: Settings | Mapping[str, Any] | None = None,
           base: Settings | None = None) -> Settings:
        """Settings from a :class:`Settings`, a dict of some fields (the rest from ``base``, else
        the defaults) or None. An unknown field raises ValueError naming it."""
        base = base if base is not None else cls()
        if value is None:
            return base
        if isinstance(value, Settings):
            return value
        if not isinstance(value, Mapping):
            raise ValueError(f"settings must be a Settings or a dict such as "
                             f"{{'temperature': 0.7}}, got {value!r}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(value) - fields)
        if unknown:
            raise ValueError(f"unknown setting {unknown[0]!r}; known: {', '.join(sorted(fields))}")
        return dataclasses.replace(base, **value)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed: ``settings.replace(temperature=1.5)``."""
        return Settings.of(changes, base=self)

    def chain(self) -> S.Chain:
        """The sampler chain: ``extra_steps``, then temperature, top-k, top-p, min-p (raises
        ValueError naming a knob outside its range)."""
        knobs = S.temperature_first(temperature=self.temperature, top_k=self.top_k,
                                    top_p=self.top_p, min_p=self.min_p)
        first = ([S.grammar()] if self.grammar else []) + list(self.extra_steps)
        return S.chain(*first, knobs) if first else knobs

    def step_names(self) -> list[str]:
        """The names of ``extra_steps``: a function's name, or a step's repr."""
        return [_step_name(s) for s in self.extra_steps]

    def label(self) -> str:
        """A short description with only the knobs that are on: ``T 0.7 · top-p 0.9 · seed 3``
        (your own steps first, by name)."""
        parts = [*(["grammar"] if self.grammar else []), *self.step_names(),
                 f"T {self.temperature:g}"]
        if self.top_k:
            parts.append(f"top-k {self.top_k}")
        if self.top_p < 1:
            parts.append(f"top-p {self.top_p:g}")
        if self.min_p > 0:
            parts.append(f"min-p {self.min_p:g}")
        parts.append(f"seed {self.seed}")
        parts += [v for v in (self.meter, self.mode, self.style) if v is not None]
        return " · ".join(parts)


def _step_name(step: Any) -> str:
    if isinstance(step, S.Custom):
        return step.name
    fn = getattr(step, "func", step)                             # functools.partial
    return getattr(fn, "__name__", None) or repr(step)


def new_tune(model: Any, settings: Settings | Mapping[str, Any] | None = None,
             on_step: Callable[[dict], None] | None = None, sampler: Any = None) -> Tune:
    """Generate the one tune that ``settings`` describe (the same seed gives the same tune).

    The same as ``generate(model, n=1, seed=..., sampler=settings.chain(), ...)[0]``, run on one
    thread (:func:`one_thread`). ``sampler`` replaces the settings' chain (it must draw the
    same way, as :func:`record`'s does).
    """
    s = Settings.of(settings)
    with one_thread():
        return generate(model, n=1, seed=s.seed, meter=s.meter, mode=s.mode, style=s.style,
                        max_tokens=s.max_tokens, sampler=sampler or s.chain(), key=s.key,
                        on_step=on_step)[0]


# ---------------------------------------------------------------------------------------------
# Token names in the key of the score
# ---------------------------------------------------------------------------------------------

# ---------------------------------------------------------------------------------------------
# A generation recorded step by step
# ---------------------------------------------------------------------------------------------

@dataclass
class DrawStep:
    """One step of a recorded generation: the distribution and where the draw landed.

    ``model_probs`` is the model's next-token distribution (V,) (after the generator's own bans,
    before the sampler); ``probs`` what the sampler chain left of it. The draw: a uniform ``u``
    fell in ``interval`` of the cumulative ``probs`` (tokens in vocabulary order), which belongs
    to ``token`` (its id ``token_id``, ``rank`` 1 = the most likely, probability ``prob`` after
    the chain, ``model_prob`` before it).
    """

    index: int
    token: str
    token_id: int
    model_probs: np.ndarray
    probs: np.ndarray
    u: float
    interval: tuple[float, float]
    rank: int
    prob: float
    model_prob: float
    entropy_bits: float

    @property
    def kept(self) -> np.ndarray:
        """(V,) bool: the tokens the sampler chain kept."""
        return self.probs > 0

    @property
    def n_kept(self) -> int:
        """How many tokens the chain kept."""
        return int(self.kept.sum())

    @property
    def removed_mass(self) -> float:
        """The share of the model's probability the chain cut away (0 when nothing was cut)."""
        return float(max(0.0, 1.0 - self.model_probs[self.kept].sum()))


class Recording:
    """A tune generated once with every step kept: scrub through it without generating again.

    Made by :func:`record`. ``len(recording)`` is the number of drawn tokens; ``recording[i]``
    (:meth:`step`) explains step i -- worked out on first use with
    :func:`toolkit.sampling.explain`, from the logits the chain received and the random
    generator's state just before that draw, so ``u`` is the very number that drew the token.
    :meth:`partial` is the tune written so far.
    """

    def __init__(self, model: Any, settings: Settings, tune: Tune, logits: list[torch.Tensor],
                 states: list[torch.Tensor]):
        if len(logits) != len(states):
            raise RuntimeError(f"the recording is out of step: {len(logits)} steps reported, "
                               f"{len(states)} draws seen")
        self.settings = settings
        self.tune = tune
        self.vocab = list(model.vocab)
        self.labels = tune.token_labels(self.vocab)
        self.prefix = sum(lp is None for lp in tune.logprobs or [])
        self._ids = model.token_ids(list(tune.tokens))           # (T,) the whole tune
        self._logits = logits
        self._states = states
        self._chain = settings.chain()
        self._steps: dict[int, DrawStep] = {}
        self._partials: dict[int, Tune] = {}

    def __len__(self) -> int:
        return len(self._logits)

    def __getitem__(self, i: int) -> DrawStep:
        return self.step(i)

    def step(self, i: int) -> DrawStep:
        """Step ``i`` (0-based; negative counts from the end), explained."""
        i = self.step_index(i)
        if i not in self._steps:
            self._steps[i] = self._explain(i)
        return self._steps[i]

    def context(self, i: int) -> S.Context:
        """The :class:`~toolkit.sampling.Context` the generator passed the chain at step ``i``:
        the tokens before it, the bar, the step (what a step function reads)."""
        i = self.step_index(i)
        end = self.prefix + i
        history = self._ids[None, :end]                          # (1, T) the tune so far
        bars = sum(t in BARS for t in self.tune.tokens[:end])
        return S.Context(history=history, step=i, bar=torch.tensor([bars]), vocab=self.vocab)

    def chain_input(self, i: int) -> tuple[torch.Tensor, S.Context]:
        """What the sampler chain received at step ``i``: the ``(1, V)`` logits (after the
        generator's spelling rules) and the :class:`~toolkit.sampling.Context`. Try your own
        step on a real point of a tune: ``my_step(*recording.chain_input(5))``."""
        i = self.step_index(i)
        return self._logits[i][None].clone(), self.context(i)

    def step_index(self, i: int) -> int:
        """``i`` as a step index in [0, len), or a ValueError naming the range."""
        n = len(self)
        if isinstance(i, bool) or not isinstance(i, int | np.integer) or not -n <= i < n:
            raise ValueError(f"step must be an integer in [0, {n - 1}], got {i!r}")
        return int(i) % n

    def _explain(self, i: int) -> DrawStep:
        generator = torch.Generator()
        generator.set_state(self._states[i])  # as it was just before step i's draw
        e = S.explain(self._logits[i], self._chain, generator=generator, vocab=self.vocab,
                      ctx=self.context(i))
        token = self.tune.tokens[self.prefix + i]
        d = e.draw
        if self.vocab[d.token] != token:  # only a step that keeps state between draws does this
            raise RuntimeError(f"step {i}: replaying the draw gave {self.vocab[d.token]!r}, but "
                               f"the tune has {token!r}: a step of {self._chain!r} keeps state "
                               "between draws (or draws its own random numbers), so a recorded "
                               "step cannot be replayed alone")
        model = e.stages[0]
        return DrawStep(index=i, token=token, token_id=d.token, model_probs=model.probs,
                        probs=e.stages[-1].probs, u=d.u, interval=d.interval, rank=d.rank,
                        prob=d.prob, model_prob=float(model.probs[d.token]),
                        entropy_bits=model.entropy_bits)

    def describe(self, i: int) -> str:
        """Step ``i`` in one plain sentence: what was cut, where u fell, what was drawn."""
        d = self.step(i)
        cut = (f"the sampler kept {d.n_kept} of {len(d.probs)} tokens "
               f"(cutting {d.removed_mass:.1%} of the probability)" if d.removed_mass > 0 else
               f"the sampler kept all {d.n_kept} tokens")
        return (f"Step {d.index + 1} of {len(self)}: {cut}; u = {d.u:.4f} fell in "
                f"[{d.interval[0]:.4f}, {d.interval[1]:.4f}) → {self.labels[d.token_id]!r}, "
                f"rank {d.rank}, p = {d.prob:.1%} (the model alone: {d.model_prob:.1%}).")

    def summary(self) -> dict[str, float]:
        """The whole recording in a few numbers (every step is explained for it):

        ``steps``; ``favourite_share``: the share of draws that took the model's most likely
        token (rank 1); ``mean_rank`` and ``max_rank`` of the drawn tokens; ``mean_kept``:
        tokens the sampler kept per step; ``mean_removed_mass``: the share of the model's
        probability it cut, per step; ``mean_entropy_bits`` of the model's distributions.
        """
        steps = [self.step(i) for i in range(len(self))]
        ranks = np.array([d.rank for d in steps])
        return {
            "steps": len(steps),
            "favourite_share": float(np.mean(ranks == 1)),
            "mean_rank": float(ranks.mean()),
            "max_rank": int(ranks.max()),
            "mean_kept": float(np.mean([d.n_kept for d in steps])),
            "mean_removed_mass": float(np.mean([d.removed_mass for d in steps])),
            "mean_entropy_bits": float(np.mean([d.entropy_bits for d in steps])),
        }

    def partial(self, i: int) -> Tune:
        """The tune as far as step ``i`` (its tokens, log-probabilities and ABC so far)."""
        i = self.step(i).index
        if i not in self._partials:
            end = self.prefix + i + 1
            tokens = self.tune.tokens[:end]
            last = self.labels[self.vocab.index(tokens[-1])]
            abc = decode(tokens, key=self.settings.key,
                         title=f"Step {i + 1} of {len(self)}: {last}")
            self._partials[i] = Tune(abc=abc, tokens=tokens, logprobs=self.tune.logprobs[:end],
                                     settings=dict(self.tune.settings))
        return self._partials[i]


class _DrawLog:
    """A sampler chain that notes the random generator's state before each draw.

    ``on_step`` gives the logits of every step but not the uniform number u the draw used;
    with the generator's state, :func:`toolkit.sampling.explain` draws the same u again.
    """

    def __init__(self, chain: S.Chain):
        self.chain = chain
        self.states: list[torch.Tensor] = []

    def reset(self) -> None:
        self.chain.reset()

    def sample(self, logits: torch.Tensor, generator: torch.Generator | None = None,
               ctx: Any = None) -> torch.Tensor:
        if generator is None:
            raise RuntimeError("the generator drew without a torch.Generator: cannot record")
        self.states.append(generator.get_state())
        return self.chain.sample(logits, generator=generator, ctx=ctx)

    def __repr__(self) -> str:
        return repr(self.chain)


def record(model: Any, settings: Settings | Mapping[str, Any] | None = None) -> Recording:
    """Generate the tune of ``settings`` and keep what every step needs to be explained.

    Costs one generation: per step, the logits the chain received (``on_step``, V numbers) and
    the generator's state (a few kB). The explanations are worked out when a step is first
    looked at.
    """
    s = Settings.of(settings)
    logits: list[torch.Tensor] = []

    def keep(rec: dict) -> None:
        logits.append(rec["logits"][0].detach().clone())  # (V,): the logits the chain received

    log = _DrawLog(s.chain())
    tune = new_tune(model, s, on_step=keep, sampler=log)
    return Recording(model, s, tune, logits, log.states)


# ---------------------------------------------------------------------------------------------
# What a student sees: the score and the play button, as HTML
# ---------------------------------------------------------------------------------------------

def _problem(title: str, err: BaseException) -> str:
    return (f'<div style="border-left:4px solid #b22;padding:4px 8px;background:#fff4f4">'
            f"<b>{html.escape(title)}</b>: {html.escape(type(err).__name__)}: "
            f"{html.escape(str(err))}</div>")


def tune_html(tune: Tune, *, color_by_surprisal: bool = False, width: int = 800,
              audio: bool = True, abc: bool = True, repeats: bool = True) -> str:
    """The tune's engraved score, a play button and (folded) its ABC text, as one HTML string.

    Never raises: a score that cannot be engraved or played says why, and the ABC text stays
    readable. ``color_by_surprisal`` colours each note by the probability the model gave it;
    ``repeats=False`` plays it once through (a shorter sound, a smaller notebook).
    """
    parts = ['<div class="folk-sampler-studio-tune">']
    try:
        svg = tune.svg(width=width, color_by_surprisal=color_by_surprisal)
        parts.append(f'<div class="score" style="overflow-x:auto">{svg}</div>')
    except Exception as err:  # noqa: BLE001 -- the display must not raise; it shows the problem
        parts.append(_problem("The score could not be engraved", err))
        abc = True
    if audio:
        try:
            data = base64.b64encode(tune.wav(repeats=repeats)).decode("ascii")
            parts.append('<audio controls preload="metadata" '
                         f'src="data:audio/wav;base64,{data}"></audio>')
        except Exception as err:  # noqa: BLE001
            parts.append(_problem("The tune could not be played", err))
    if abc:
        parts.append('<details><summary>ABC text</summary><pre style="font-size:90%">'
                     f"{html.escape(tune.abc)}</pre></details>")
    parts.append("</div>")
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------
# Observations: numbers to compare settings by
# ---------------------------------------------------------------------------------------------

def observations(tune: Tune) -> dict[str, Any]:
    """A few numbers about one generated tune, to compare settings by.

    * ``tokens``: tokens the model drew (the conditioning not counted);
    * ``notes``: notes and rests drawn; ``pitches``: distinct pitches used;
    * ``mean_note_prob``: the mean probability the model gave the notes it drew (before the
      sampler reshaped it);
    * ``surprising_notes``: the share of notes the model gave less than 5 %;
    * ``bits_per_token``: mean surprisal -log2 p of the drawn tokens;
    * ``bad_bars``: bars longer or shorter than the meter; ``valid``: all checks of
      :func:`toolkit.metrics.check_tokens` pass (ends, bars, repeats);
    * ``reads``: the ABC text can be read (:attr:`toolkit.tune.Tune.parsed`).
    """
    from toolkit.music.check import check_tokens

    tokens = tune.tokens or []
    logprobs = tune.logprobs or [None] * len(tokens)
    drawn = [(t, lp) for t, lp in zip(tokens, logprobs, strict=True) if lp is not None]
    note_probs = [p for p in tune.note_probabilities() if p is not None] if drawn else []
    validity = check_tokens(tokens)
    try:
        reads = tune.parsed is not None
    except Exception:  # noqa: BLE001 -- an unreadable tune is an observation, not an error
        reads = False
    pitches = {t for t, _ in drawn if is_pitch(t)}
    return {
        "tokens": len(drawn),
        "notes": len(note_probs),
        "pitches": len(pitches),
        "mean_note_prob": float(np.mean(note_probs)) if note_probs else math.nan,
        "surprising_notes": (float(np.mean([p < SURPRISING for p in note_probs]))
                             if note_probs else math.nan),
        "bits_per_token": (float(np.mean([-lp / math.log(2) for _, lp in drawn]))
                           if drawn else math.nan),
        "bad_bars": len(validity.bad_bars),
        "valid": validity.ok,
        "reads": reads,
    }


_OBS_NAMES = {
    "tokens": "tokens drawn", "notes": "notes and rests", "pitches": "different pitches",
    "mean_note_prob": "mean probability of a note", "surprising_notes": "notes below 5 %",
    "bits_per_token": "surprisal (bits a token)", "bad_bars": "bars off the meter",
    "valid": "valid tune", "reads": "ABC can be read",
}


def _fmt_obs(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and math.isnan(value):
        return "–"
    if name in ("mean_note_prob", "surprising_notes", "valid_share"):
        return f"{value:.0%}"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def observations_html(obs: Mapping[str, Any]) -> str:
    """Observations as a small two-column HTML table."""
    rows = "".join(f"<tr><td>{html.escape(_OBS_NAMES.get(k, k))}</td>"
                   f'<td style="text-align:right"><b>{_fmt_obs(k, v)}</b></td></tr>'
                   for k, v in obs.items())
    return f'<table style="font-size:110%">{rows}</table>'


class Summary(dict):
    """What :func:`summarize` returns: a dict ``name -> mean over the tunes`` (``"tunes"`` is
    their number), plus ``written`` (the tunes themselves, to look at and listen to) and
    ``shares`` (the names whose values are shares of tunes, which :func:`summary_table` shows
    as percentages)."""

    def __init__(self, values: Mapping[str, float], tunes: list[Tune], shares: Sequence[str]):
        super().__init__(values)
        self.written = tunes
        self.shares = frozenset(shares)


def summarize(model: Any, settings: Settings | Mapping[str, Any] | None = None,
              n: int = 16, measures: Mapping[str, Callable[[Tune], Any]] | None = None
              ) -> Summary:
    """Observations averaged over ``n`` tunes written at once from the settings' seed.

    One tune is an anecdote; sixteen show a trend. Returns the means of :func:`observations`
    (``valid_share`` for the share of valid tunes, ``reads_share`` for readable ABC) as a
    :class:`Summary`. ``measures`` adds your own: ``{"name": f}`` with ``f(tune)`` a number
    (its mean is reported) or True/False (the share of tunes where it is True).
    """
    s = Settings.of(settings)
    with one_thread():
        tunes = generate(model, n=n, seed=s.seed, meter=s.meter, mode=s.mode, style=s.style,
                         max_tokens=s.max_tokens, sampler=s.chain(), key=s.key)
    rows = [observations(t) for t in tunes]
    out: dict[str, float] = {"tunes": float(n)}
    for k in rows[0]:
        values = [float(r[k]) for r in rows if not (isinstance(r[k], float) and math.isnan(r[k]))]
        name = {"valid": "valid_share", "reads": "reads_share"}.get(k, k)
        out[name] = float(np.mean(values)) if values else math.nan
    shares = ["valid_share", "reads_share"]
    for name, fn in (measures or {}).items():
        if not callable(fn):
            raise ValueError(f"measures[{name!r}] must be a function of a tune, got {fn!r}")
        try:
            values = [fn(t) for t in tunes]
        except Exception as err:
            raise ValueError(f"the measure {name!r} raised {type(err).__name__}: {err}") from err
        if all(isinstance(v, bool | np.bool_) for v in values):
            shares.append(name)
        out[name] = float(np.mean([float(v) for v in values]))
    return Summary(out, tunes, shares)


_SUMMARY_NAMES = {
    "tokens": "tokens drawn", "notes": "notes and rests", "pitches": "different pitches",
    "mean_note_prob": "mean note probability", "surprising_notes": "notes below 5 %",
    "bits_per_token": "bits per token", "bad_bars": "bars off the meter",
    "valid_share": "valid tunes", "reads_share": "readable ABC",
}
_SHARES = ("mean_note_prob", "surprising_notes", "valid_share", "reads_share")


def summary_table(summaries: Mapping[str, Mapping[str, float]]) -> str:
    """Summaries (:func:`summarize`) side by side as a plain-text table, one column each.

    Your own measures (``summarize(..., measures=...)``) come last, under their own names.

    >>> print(summary_table({"T 0.7": {"pitches": 9.5}, "T 1.5": {"pitches": 14.25}}))
                            T 0.7     T 1.5
    different pitches        9.50     14.25
    """
    names = list(summaries)
    columns = list(summaries.values())
    keys = [k for k in _SUMMARY_NAMES if all(k in s for s in columns)]
    own = [k for k in (columns[0] if columns else {})
           if k not in _SUMMARY_NAMES and k != "tunes" and all(k in s for s in columns)]
    shares = set(_SHARES).union(*(getattr(s, "shares", ()) for s in columns))
    titles = {**_SUMMARY_NAMES, **{k: k for k in own}}
    first = max([len(titles[k]) for k in keys + own] + [0]) + 2
    width = max([len(n) + 2 for n in names] + [10])
    lines = [" " * first + "".join(f"{n:>{width}}" for n in names)]
    for k in keys + own:
        cells = [f"{summaries[n][k]:.0%}" if k in shares else f"{summaries[n][k]:.2f}"
                 for n in names]
        lines.append(f"{titles[k]:<{first}}" + "".join(f"{c:>{width}}" for c in cells))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Widgets
# ---------------------------------------------------------------------------------------------

# ---------------------------------------------------------------------------------------------
# The step plot (pure: data in, artists out)
# ---------------------------------------------------------------------------------------------

class StepPlot:
    """One step of a generation in two panels, updated in place.

    Top: the model's next-token distribution over the ``top`` most likely tokens of *this*
    step (:class:`toolkit.plots.DistributionPlot`): blue bars are kept by the sampler, grey
    ones cut, black marks show the kept tokens after the cut (renormalised) and the drawn
    token has a vermillion outline. Bottom: where the draw landed (:class:`toolkit.plots.
    DrawPlot`): [0, 1) cut into one slice per token, u marked.

    Attributes: ``fig``, ``bars``, ``draw``, ``step`` (the :class:`DrawStep` shown).
    """

    #: the top panel's upper limits: few, so that each one's axis is drawn once and cached
    Y_TOPS = (0.25, 0.5, 1.1)

    def __init__(self, step: DrawStep, labels: Sequence[str], *, total: int | None = None,
                 fig: Any = None, top: int = 12, figsize: tuple[float, float] = (12, 6.2)):
        import matplotlib as mpl

        from toolkit.lessons import plots

        self.top = top
        self.total = total
        self.labels = list(labels)
        grid = {"gridspec_kw": {"height_ratios": [3, 1.35]}}
        with mpl.rc_context(plots.PROJECTOR_RC):
            if fig is None:
                fig, axes = plots.new_figure(2, 1, figsize=figsize, **grid)
            else:
                axes = fig.subplots(2, 1, **grid)
            self.fig = fig
            self.bars = plots.plot_distribution(
                step.model_probs, self.labels, kept=step.kept, after=step.probs,
                tokens=self._shown(step), ax=axes[0], xlabel="next token (most likely first)",
                ylim=(0, self.Y_TOPS[-1]))
            self.draw = plots.plot_draw(step.probs, step.u, self.labels, token=step.token_id,
                                        ax=axes[1], title=None)
        self.names: list[Any] = []
        self.update(step, draw=False)
        self.bars.ax.set_ylim(0, self.Y_TOPS[-1])  # the widest tick labels ("100%")
        plots.freeze_layout(fig)  # lay out once, with this step's tick labels in place
        # The token names change every step: as tick labels they would make the axis redraw
        # whole each time. Drawn as texts where the tick labels were, they join the dynamic
        # artists, and everything else (axes, ticks, legend, grid) is drawn once and cached.
        ax = self.bars.ax
        ticks = ax.xaxis.get_ticklabels()
        size = ticks[0].get_fontsize() if ticks else plots.FONT_SIZES["tick"]
        pad = ax.xaxis.get_major_ticks()[0].get_pad() if ticks else 3.5
        length = ax.xaxis.get_major_ticks()[0].get_tick_padding() if ticks else 3.5
        ax.tick_params(axis="x", labelcolor="none")  # kept (and cached) for the layout only
        self.names = [ax.annotate("", xy=(x, 0), xycoords=("data", "axes fraction"),
                                  xytext=(0, -(pad + length)), textcoords="offset points",
                                  ha="center", va="top", fontsize=size, annotation_clip=False)
                      for x in self.bars.x]
        self.update(step, draw=False)
        self.static = plots.cache_static(fig, [*self.bars.dynamic, *self.draw.dynamic,
                                               *self.names])

    def _name_tokens(self) -> None:
        for text, label in zip(self.names, self.bars.labels, strict=True):
            text.set_text(label)

    def _shown(self, step: DrawStep) -> np.ndarray:
        order = np.argsort(-step.model_probs, kind="stable")[: self.top]
        if step.token_id not in order:  # the drawn token is always on the chart
            order = np.r_[order[:-1], step.token_id]
        return order

    def update(self, step: DrawStep, *, draw: bool = True) -> None:
        """Show another step: the same bars and slices, moved and relabelled."""
        from toolkit.lessons import plots

        bars = self.bars
        bars.tokens = self._shown(step)  # DistributionPlot keeps its tokens; a step has its own
        bars.labels = [bars.vocab[i] for i in bars.tokens]
        if self.names:
            self._name_tokens()
        else:                            # before the layout is frozen: real tick labels
            bars.ax.set_xticks(bars.x, bars.labels)
        bars.update(step.model_probs, kept=step.kept, after=step.probs, draw=False)
        tallest = float(max(step.model_probs.max(), step.probs.max()))
        bars.ax.set_ylim(0, next(y for y in self.Y_TOPS if y >= tallest * 1.1 or
                                 y == self.Y_TOPS[-1]))
        self.draw.update(step.probs, step.u, step.token_id, draw=False)
        for segment in self.draw.segments:  # cut tokens have no slice: skip drawing them
            segment.set_visible(segment.get_width() > 0)
        drawn_at = int(np.flatnonzero(bars.tokens == step.token_id)[0])
        for i, bar in enumerate(bars.bars):
            bar.set_edgecolor(plots.COLORS["drawn"] if i == drawn_at else "none")
            bar.set_linewidth(4 if i == drawn_at else 0)
        of = f" of {self.total}" if self.total else ""
        bars.set_title(f"step {step.index + 1}{of}: the model's next-token distribution")
        self.step = step
        if draw:
            self.fig.canvas.draw_idle()


def plot_step(step: DrawStep, labels: Sequence[str], *, total: int | None = None,
              fig: Any = None, top: int = 12) -> StepPlot:
    """Plot one step of a recording: the distribution, what the sampler kept, where u landed.

    ``plot_step(rec[0], rec.labels, total=len(rec))``; returns a :class:`StepPlot`
    (``.update(rec[5])`` moves it in place).
    """
    return StepPlot(step, labels, total=total, fig=fig, top=top)


# ---------------------------------------------------------------------------------------------
# Widgets
# ---------------------------------------------------------------------------------------------

class StepThrough:
    """Step through one recorded tune: the distribution at every note, the draw, the score.

    Attributes: ``step`` (IntSlider, 1 to the number of steps), ``previous`` / ``next``
    (Buttons), ``info`` (HTML: the draw in words), ``plot`` (the :class:`StepPlot`, made on
    the first step shown), ``score`` (HTML: the tune as far as this step), ``widget`` (the
    whole view). :meth:`show` loads another :class:`Recording`; moving the slider only
    indexes it.
    """

    def __init__(self, recording: Recording | None = None, *, top: int = 12,
                 color_by_surprisal: bool = True, width: int = 800):
        import ipywidgets as widgets

        self.top = top
        self.width = width
        self.color_by_surprisal = color_by_surprisal
        self.recording: Recording | None = None
        self.plot: StepPlot | None = None
        self.step = widgets.IntSlider(value=1, min=1, max=1, description="step",
                                      continuous_update=True,
                                      layout=widgets.Layout(width="55%"))
        self.previous = widgets.Button(description="◀ Previous", layout={"width": "120px"})
        self.next = widgets.Button(description="Next ▶", layout={"width": "120px"})
        self.info = widgets.HTML()
        self.score = widgets.HTML()
        self.view = FigureView((12, 6.2))
        self.widget = widgets.VBox([widgets.HBox([self.previous, self.step, self.next]),
                                    self.info, self.view.widget, self.score])
        self.previous.on_click(lambda _: self._move(-1))
        self.next.on_click(lambda _: self._move(+1))
        self.step.observe(lambda _: self.refresh(), names="value")
        if recording is not None:
            self.show(recording)

    @classmethod
    def of(cls, model: Any, settings: Settings | Mapping[str, Any] | None = None,
           **kwargs: Any) -> StepThrough:
        """Record the tune of ``settings`` and step through it."""
        return cls(record(model, settings), **kwargs)

    def _move(self, delta: int) -> None:
        self.step.value = min(max(self.step.value + delta, self.step.min), self.step.max)

    def show(self, recording: Recording) -> None:
        """Load a recording and go to its first step."""
        self.recording = recording
        with self.step.hold_trait_notifications():
            self.step.max = max(len(recording), 1)
            self.step.value = 1
        self.refresh()

    def refresh(self) -> None:
        """Show the current step (never raises: a problem goes into ``info``)."""
        rec = self.recording
        if rec is None or len(rec) == 0:
            self.info.value = "<i>Nothing recorded yet.</i>"
            return
        try:
            d = rec.step(self.step.value - 1)  # the slider counts from 1, as the title does
            if self.plot is None or self.plot.labels != rec.labels:
                self.view.fig.clear()
                self.plot = StepPlot(d, rec.labels, total=len(rec), fig=self.view.fig,
                                     top=self.top)
            else:
                self.plot.total = len(rec)
                self.plot.update(d, draw=False)
            self.view.refresh()
            self.info.value = _step_html(d, rec)
            self.score.value = tune_html(rec.partial(d.index), audio=False, abc=False,
                                         color_by_surprisal=self.color_by_surprisal,
                                         width=self.width)
        except Exception as err:  # noqa: BLE001 -- the view must not raise
            self.info.value = _problem(f"Step {self.step.value} cannot be shown", err)

    def png(self) -> bytes:
        """The plot now shown, as PNG bytes."""
        if not self.view.live and self.view.widget.value:
            return bytes(self.view.widget.value)
        from toolkit.lessons import plots

        return plots.figure_png(self.view.fig)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        data = self.widget._repr_mimebundle_(**kwargs)
        if self.recording is not None:  # a static copy for a saved notebook (GitHub, nbviewer)
            data["image/png"] = base64.b64encode(self.png()).decode("ascii")
        return data


def _step_html(d: DrawStep, rec: Recording) -> str:
    name = html.escape(rec.labels[d.token_id])
    cut = (f"The sampler kept {d.n_kept} of {len(d.probs)} tokens and cut "
           f"{d.removed_mass:.1%} of the model's probability. " if d.removed_mass > 0 else
           f"The sampler kept all {d.n_kept} tokens the model allows. ")
    return (f'<div style="font-size:120%">Step <b>{d.index + 1}</b> of {len(rec)}. '
            f"The model's distribution has {d.entropy_bits:.2f} bits of entropy. {cut}"
            f"The draw: u = <b>{d.u:.4f}</b> fell in [{d.interval[0]:.4f}, {d.interval[1]:.4f})"
            f" → <b>{name}</b> (rank {d.rank}, {d.prob:.1%} after the sampler, "
            f"{d.model_prob:.1%} from the model).</div>")


class TuneStudio:
    """The tune studio: sampler sliders and conditioning menus in, a new tune out.

    Controls (ipywidgets, all attributes): ``temperature``, ``top_k``, ``top_p``, ``min_p``,
    ``seed`` (sliders that act on release), ``meter``, ``mode``, ``style`` (dropdowns with the
    values the model knows; "model's choice" lets it draw one), ``color_by_surprisal``
    (checkbox) and ``use_extra_steps`` (checkbox, shown when the settings have ``extra_steps``:
    your own steps on or off, everything else the same). Outputs: ``status`` (HTML: working,
    done, or what went wrong -- a mistake in your own step included), ``score`` (HTML: the
    score, a play button, the ABC text), ``steps`` (a :class:`StepThrough` of the same tune, in
    the second tab), ``widget`` (the whole app). The current ``tune``, its
    ``recording`` and ``settings`` are attributes too; :meth:`update` writes a new tune.
    """

    def __init__(self, model: Any, settings: Settings | Mapping[str, Any] | None = None, *,
                 width: int = 800):
        import ipywidgets as widgets

        self.model = model
        self.width = width
        s = Settings.of(settings)
        self._base = s
        self.tune: Tune | None = None
        self.recording: Recording | None = None
        self.seconds = math.nan
        #: called as ``f(tune, settings)`` after each new tune is shown (the rating studio logs it)
        self.on_tune: list[Callable[[Tune, Settings], None]] = []

        def slider(kind: Any, name: str, description: str, value: float, fmt: str) -> Any:
            lo, hi, step = RANGES[name]
            return kind(value=value, min=lo, max=max(hi, value), step=step,
                        description=description, continuous_update=False, readout_format=fmt,
                        style={"description_width": "110px"},
                        layout=widgets.Layout(width="420px"))

        self.temperature = slider(widgets.FloatSlider, "temperature", "temperature",
                                  s.temperature, ".2f")
        self.top_k = slider(widgets.IntSlider, "top_k", "top-k (0 off)", s.top_k, "d")
        self.top_p = slider(widgets.FloatSlider, "top_p", "top-p (1 off)", s.top_p, ".2f")
        self.min_p = slider(widgets.FloatSlider, "min_p", "min-p (0 off)", s.min_p, ".2f")
        self.seed = slider(widgets.IntSlider, "seed", "seed", s.seed, "d")

        def menu(name: str, value: str | None) -> Any:
            options = [("model's choice", None)] + [(c, c) for c in model.choices(name)]
            return widgets.Dropdown(options=options, value=value, description=name,
                                    style={"description_width": "60px"},
                                    layout=widgets.Layout(width="220px"))

        self.meter = menu("meter", s.meter)
        self.mode = menu("mode", s.mode)
        self.style = menu("style", s.style)
        self.color_by_surprisal = widgets.Checkbox(value=False,
                                                   description="colour notes by surprisal")
        self.grammar = widgets.Checkbox(value=s.grammar, description="grammar: every tune valid")
        self.use_extra_steps = widgets.Checkbox(value=True, indent=False)
        self._label_extra_steps()
        self.status = widgets.HTML()
        self.score = widgets.HTML()
        self.steps = StepThrough(width=width)
        self.tabs = widgets.Tab(children=[self.score, self.steps.widget])
        self.tabs.set_title(0, "Tune")
        self.tabs.set_title(1, "Step through")
        controls = widgets.HBox([
            widgets.VBox([self.temperature, self.top_k, self.top_p, self.min_p, self.seed]),
            widgets.VBox([self.meter, self.mode, self.style, self.grammar,
                          self.color_by_surprisal, self.use_extra_steps]),
        ])
        self.widget = widgets.VBox([controls, self.status, self.tabs])

        for w in (self.temperature, self.top_k, self.top_p, self.min_p, self.seed, self.meter,
                  self.mode, self.style, self.grammar, self.use_extra_steps):
            w.observe(lambda _: self.update(), names="value")
        self.color_by_surprisal.observe(lambda _: self._show_score(), names="value")
        self.tabs.observe(lambda _: self._sync_steps(), names="selected_index")
        self.update()

    @property
    def settings(self) -> Settings:
        """The settings the controls show now."""
        return self._base.replace(
            temperature=float(self.temperature.value), top_k=int(self.top_k.value),
            top_p=float(self.top_p.value), min_p=float(self.min_p.value),
            seed=int(self.seed.value), meter=self.meter.value, mode=self.mode.value,
            style=self.style.value, grammar=bool(self.grammar.value),
            extra_steps=self._base.extra_steps if self.use_extra_steps.value else ())

    _quiet = False
    _CONTROLS = ("temperature", "top_k", "top_p", "min_p", "seed", "meter", "mode", "style",
                 "grammar", "use_extra_steps")

    def set(self, **changes: Any) -> None:
        """Set several controls and write one tune: ``studio.set(temperature=0.7, seed=3)``.

        ``extra_steps=[my_step]`` replaces your own steps (after you fixed one, say) and
        switches them on; ``use_extra_steps=False`` switches them off.
        """
        unknown = sorted(set(changes) - {*self._CONTROLS, "extra_steps"})
        if unknown:
            raise ValueError(f"unknown control {unknown[0]!r}; the studio has "
                             f"{', '.join(self._CONTROLS[:-1])}, use_extra_steps and extra_steps")
        if "extra_steps" in changes:
            self._base = self._base.replace(extra_steps=changes.pop("extra_steps"))
            changes.setdefault("use_extra_steps", True)
            self._label_extra_steps()
        self._quiet = True
        try:
            for name, value in changes.items():
                getattr(self, name).value = value
        finally:
            self._quiet = False
        self.update()

    def _label_extra_steps(self) -> None:
        names = self._base.step_names()
        self.use_extra_steps.description = f"your steps: {', '.join(names)}"
        self.use_extra_steps.layout.display = None if names else "none"

    def update(self) -> None:
        """Write the tune the controls describe and show it (errors go to the status line)."""
        if self._quiet:
            return
        settings = None
        t0 = time.perf_counter()
        try:
            settings = self.settings
            self.status.value = status_html("⏳", f"Writing a tune ({settings.label()})…", "#555")
            recording = record(self.model, settings)
        except Exception as err:  # noqa: BLE001 -- whatever a student picks, the kernel lives
            what = settings.label() if settings is not None else "these settings"
            self.status.value = status_html("⚠️", f"No new tune for {what}: "
                                        f"{type(err).__name__}: {err}", "#b22")
            return
        self.recording, self.tune = recording, recording.tune
        try:  # showing it can fail too: say so on the status line, never leave a stale "done"
            self._show_score()
            self.seconds = time.perf_counter() - t0
            obs = observations(self.tune)
            bad = f", {obs['bad_bars']} bar(s) off the meter" if obs["bad_bars"] else ""
            self.status.value = status_html("✅", f"{settings.label()}: {obs['tokens']} tokens, "
                                        f"{obs['notes']} notes{bad} — written and engraved in "
                                        f"{self.seconds:.2f} s", "#161")
            self._sync_steps()
            for f in self.on_tune:
                f(self.tune, settings)
        except Exception as err:  # noqa: BLE001 -- the kernel lives; the student reads why
            self.status.value = status_html("⚠️", f"The tune for {settings.label()} was written but "
                                        f"could not be shown: {type(err).__name__}: {err}",
                                        "#b22")

    def show_tune(self, tune: Tune, label: str) -> None:
        """Show a tune written elsewhere (a steered one, say) as the current tune, with
        ``label`` on the status line; the step-through keeps the last tune the studio wrote."""
        self.tune, self.recording = tune, None
        try:
            self._show_score()
            self.status.value = status_html("✅", label, "#161")
        except Exception as err:  # noqa: BLE001 -- the kernel lives; the student reads why
            self.status.value = status_html("⚠️", f"{label}, but it could not be "
                                        f"shown: {type(err).__name__}: {err}", "#b22")

    def _show_score(self) -> None:
        if self.tune is not None:
            self.score.value = tune_html(self.tune, width=self.width,
                                         color_by_surprisal=self.color_by_surprisal.value)
            self.steps.color_by_surprisal = self.color_by_surprisal.value
            heap.release()  # a moved slider is not a cell: give the score's and sound's memory back

    def _sync_steps(self) -> None:
        """Load the current tune into the step-through when its tab is open."""
        if self.tabs.selected_index == 1 and self.recording is not None and \
                self.steps.recording is not self.recording:
            self.steps.show(self.recording)

    def step_through(self) -> StepThrough:
        """The step-through of the current tune (the studio's second tab), loaded."""
        if self.recording is not None and self.steps.recording is not self.recording:
            self.steps.show(self.recording)
        return self.steps

    def compare(self, a: Settings | Mapping[str, Any] | None = None,
                b: Settings | Mapping[str, Any] | None = None) -> Comparison:
        """Two settings side by side; fields not given come from the studio's current settings
        (so both use its seed): ``studio.compare({"temperature": 0.7}, {"temperature": 1.5})``."""
        base = self.settings
        return Comparison(self.model, Settings.of(a, base), Settings.of(b, base),
                          color_by_surprisal=self.color_by_surprisal.value)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        data = self.widget._repr_mimebundle_(**kwargs)
        if self.tune is not None:  # a static copy for a saved notebook: the score, no sound
            data["text/html"] = (
                tune_html(self.tune, width=self.width, audio=False, abc=False)
                + '<p style="color:#555"><i>A static copy of the tune studio '
                f"({html.escape(self.settings.label())}): run the notebook to move the "
                "sliders and hear the tunes.</i></p>")
        return data


class Comparison:
    """Two settings side by side: each column a label, the score and play button, and its
    :func:`observations`.

    It shows itself as plain HTML, so a saved notebook keeps it (``widget`` wraps the same HTML
    for a widget app). Attributes: ``settings``, ``tunes`` and ``observations`` (pairs; None
    where a setting failed), ``columns`` (the HTML of each column), ``html``, ``widget``.
    """

    def __init__(self, model: Any, a: Settings | Mapping[str, Any] | None,
                 b: Settings | Mapping[str, Any] | None, *, color_by_surprisal: bool = False,
                 width: int = 560):
        first = Settings.of(a)
        self.settings = (first, Settings.of(b, first))
        self.tunes: list[Tune | None] = []
        self.observations: list[dict[str, Any] | None] = []
        self.columns: list[str] = []
        for s in self.settings:
            head = f'<div style="font-size:125%;font-weight:bold">{html.escape(s.label())}</div>'
            try:
                tune = new_tune(model, s)
                obs = observations(tune)
                body = tune_html(tune, width=width, color_by_surprisal=color_by_surprisal)
                table = observations_html(obs)
            except Exception as err:  # noqa: BLE001 -- a bad setting shows in its column
                tune, obs, body, table = None, None, _problem("No tune", err), ""
            self.tunes.append(tune)
            self.observations.append(obs)
            self.columns.append(f'<div style="flex:1 1 0;min-width:0;padding:0 8px">{head}'
                                f"{body}{table}</div>")
        self.html = ('<div class="folk-sampler-comparison" style="display:flex;gap:12px">'
                     + "".join(self.columns) + "</div>")

    @property
    def widget(self) -> Any:
        """The comparison as an ``ipywidgets.HTML``."""
        import ipywidgets as widgets

        return widgets.HTML(self.html)

    def _repr_html_(self) -> str:
        return self.html


def compare(model: Any, a: Settings | Mapping[str, Any] | None,
            b: Settings | Mapping[str, Any] | None, **kwargs: Any) -> Comparison:
    """Two settings side by side (fields of ``b`` not given come from ``a``): see
    :class:`Comparison`."""
    return Comparison(model, a, b, **kwargs)
