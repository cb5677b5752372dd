"""Slider apps for the distribution lessons: sliders wired to the plots of
:mod:`toolkit.lessons.plots`.

Each app shows the model's real next-token distribution at one point of a tune::

    %matplotlib widget
    from toolkit.lm.model import load_model
    from toolkit.lessons import widgets as W
    model = load_model()
    W.TemperatureExplorer(model, "M:6/8 K:maj S:? G |: c 2 e g e c |")
    W.TruncationExplorer(model, "M:6/8 K:maj S:? G |: c 2 e g e c |")
    W.ChainOrderExplorer(model, "M:6/8 K:maj S:? G |: c 2 e g e c |")
    W.ModelsExplorer({"LSTM": model, "transformer": load_model("transformer")}, prefix)

The heavy work happens once (the model runs once, the figure is built once); a slider move
runs the sampler chain on one row of logits (:func:`toolkit.sampling.explain`), updates the
artists in place and asks the canvas to redraw. The sliders and readouts are attributes, so a
test (or a curious student) can drive an app from code::

    app = W.TemperatureExplorer(model, prefix)
    app.temperature.value = 2.0
    app.plot.heights, app.entropy_readout.value

With ``%matplotlib widget`` (ipympl) the figure is a live canvas inside the app. With any
other backend (inline, Agg) the app shows a PNG of the figure that it refreshes after each
move, once the app has been displayed. Displaying an app also stores a static PNG of its
figure beside the live view, so a saved notebook shows the plot where widgets cannot run
(GitHub, nbconvert).

The numbers come from the layers below, by name: ``S.temperature_entropy`` (entropy against
temperature), ``model.logits_along`` (the next-token logits at every point of a tune),
``S.ORDERS`` (the two chain orders) and ``Explanation.seen_by`` (what a step looked at).
:func:`compare_orders` / :func:`find_order_difference` put the two orders side by side.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as ipw
import numpy as np
import torch

from toolkit.lessons import plots
from toolkit.lm import sampling as S
from toolkit.lm.sampling.base import one_row

__all__ = [
    "ORDERS", "TemperatureExplorer", "TruncationExplorer", "ChainOrderExplorer",
    "build_chain", "OrderComparison", "compare_orders",
    "find_order_difference", "ModelsExplorer",
]

#: The two chain orders (see :func:`toolkit.sampling.temperature_first` and ``_last``).
ORDERS = tuple(S.ORDERS)  # the two orders, as the menus name them

_BIG = "font-size: 1.35em; line-height: 1.5; margin-right: 1.5em"

#: Dots per inch of the live figures: 13 inches make 1040 pixels, which fit a notebook on a
#: projector; fonts are in points, so text keeps its size relative to the figure. Fewer pixels
#: also make each frame cheaper (the draw, and the PNG that ipympl sends to the browser).
LIVE_DPI = 80


# --------------------------------------------------------------------------------------------
# Helpers the lessons share
# --------------------------------------------------------------------------------------------

def build_chain(order: str = ORDERS[0], temperature: float = 1.0, top_k: int = 0,
                top_p: float = 1.0, min_p: float = 0.0, typical_p: float = 1.0) -> S.Chain:
    """The five slider steps in one of the two orders of ``S.ORDERS``, switched-off steps
    included, so ``explain`` always has a stage for each. For the chain a student would write,
    use ``S.temperature_first(...)`` / ``S.temperature_last(...)``, which leave off-steps out.
    """
    return S.ordered_chain(order, keep_off=True, temperature=temperature, top_k=top_k,
                           top_p=top_p, min_p=min_p, typical_p=typical_p)


def _extra_chain(extra_steps: Any) -> S.Chain:
    """Your own steps as one chain (empty for None); a clear error for what cannot join one."""
    return S.chain(*S.as_steps(extra_steps))


@dataclass
class OrderComparison:
    """The same settings run through both chain orders, on one row of logits.

    ``probs``: the distribution after temperature alone (no truncation); ``first`` and
    ``last``: the :class:`~toolkit.sampling.Explanation` of each order; ``kept_first`` /
    ``kept_last``: (V,) masks of the tokens each keeps; ``vocab``: token names.
    """

    settings: dict[str, float]
    probs: np.ndarray
    first: S.Explanation
    last: S.Explanation
    vocab: list[str] | None = None

    @property
    def kept_first(self) -> np.ndarray:
        return self.first.stages[-1].kept

    @property
    def kept_last(self) -> np.ndarray:
        return self.last.stages[-1].kept

    @property
    def differ(self) -> bool:
        """True when the two orders keep different tokens."""
        return bool((self.kept_first != self.kept_last).any())

    def _names(self, mask: np.ndarray) -> list[str]:
        ids = np.flatnonzero(mask)
        ids = ids[np.argsort(-self.probs[ids], kind="stable")]
        return [self.vocab[i] if self.vocab else f"#{i}" for i in ids]

    @property
    def only_first(self) -> list[str]:
        """Tokens only the temperature-first chain keeps, most likely first."""
        return self._names(self.kept_first & ~self.kept_last)

    @property
    def only_last(self) -> list[str]:
        """Tokens only the temperature-last chain keeps, most likely first."""
        return self._names(self.kept_last & ~self.kept_first)

    @property
    def both(self) -> list[str]:
        """Tokens both chains keep, most likely first."""
        return self._names(self.kept_first & self.kept_last)

    def __repr__(self) -> str:
        s = ", ".join(f"{k}={v:g}" for k, v in self.settings.items())
        return (f"OrderComparison({s}): both keep {self.both}; only temperature first: "
                f"{self.only_first}; only temperature last: {self.only_last}")


def compare_orders(logits: Any, *, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                   min_p: float = 0.0, typical_p: float = 1.0,
                   vocab: Sequence[str] | None = None) -> OrderComparison:
    """Run the same settings in both orders on one row of logits ((V,) or (1, V)).

    >>> c = compare_orders(torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05])), temperature=3.0,
    ...                    top_p=0.8, vocab=["G", "A", "B", "c"])
    >>> c.only_first, c.only_last
    (['B'], [])
    """
    x = one_row(logits)
    settings = {"temperature": temperature, "top_k": top_k, "top_p": top_p, "min_p": min_p,
                "typical_p": typical_p}
    names = list(vocab) if vocab is not None else None
    first = S.explain(x, build_chain(ORDERS[0], **settings), seed=0, vocab=names)
    last = S.explain(x, build_chain(ORDERS[1], **settings), seed=0, vocab=names)
    return OrderComparison(settings, first.seen_by("top_k").probs, first, last, names)


def find_order_difference(model: Any, tokens: Sequence[str], *, start: int = 4,
                          **settings: float) -> tuple[int, OrderComparison]:
    """Walk along a tune and stop at the first point where the two orders keep different notes.

    ``tokens`` is a tokenised tune (``toolkit.abc.encode``); position n means "the next token
    after ``tokens[:n]``". ``settings`` as in :func:`compare_orders`. Returns ``(n, comparison)``;
    raises ValueError if the orders agree everywhere (try settings further from the defaults).
    """
    tokens = list(tokens)
    along = model.logits_along(tokens)                           # (T, V)
    for n in range(max(start, 1), len(tokens)):
        c = compare_orders(along[n - 1], vocab=model.vocab, **settings)
        if c.differ:
            return n, c
    raise ValueError(f"the two orders keep the same tokens at every point of this tune with "
                     f"{settings}; try a temperature further from 1 or a tighter truncation")


# --------------------------------------------------------------------------------------------
# The apps
# --------------------------------------------------------------------------------------------

def _logits_and_vocab(model: Any, prefix: Any, logits: Any, vocab: Sequence[str] | None
                      ) -> tuple[torch.Tensor, list[str]]:
    if logits is None:
        if model is None or prefix is None:
            raise ValueError("give model and prefix (the tune so far), or logits=... "
                             "(one row) with vocab=...")
        logits = model.next_logits(prefix)
        vocab = model.vocab if vocab is None else vocab
    x = one_row(logits)
    names = list(vocab) if vocab is not None else [f"#{i}" for i in range(len(x))]
    if len(names) != len(x):
        raise ValueError(f"vocab must name all {len(x)} tokens, got {len(names)} names")
    return x, names


def _label(html: str) -> ipw.HTML:
    return ipw.HTML(f"<span style='{_BIG}'>{html}</span>")


def _temperature_slider(value: float, t_min: float, t_max: float) -> ipw.FloatLogSlider:
    if not 0 < t_min < t_max:
        raise ValueError(f"need 0 < t_min < t_max, got t_min={t_min!r}, t_max={t_max!r}")
    if not t_min <= value <= t_max:
        raise ValueError(f"temperature must be in [{t_min}, {t_max}], got {value!r}")
    return ipw.FloatLogSlider(value=value, base=10, min=math.log10(t_min),
                              max=math.log10(t_max), step=0.01, readout_format=".2f",
                              continuous_update=True, layout=ipw.Layout(width="420px"))


class _App:
    """What every app shares: the figure, the widget tree, display and redraw."""

    fig: Any
    widget: ipw.VBox

    def _build(self, controls: list[ipw.Widget], dynamic: list[Any]) -> None:
        self.static_layer = plots.cache_static(self.fig, dynamic)
        canvas = self.fig.canvas
        self._image: ipw.Image | None = None
        if isinstance(canvas, ipw.DOMWidget):            # ipympl: the canvas is a widget
            canvas.toolbar_visible = False
            view: ipw.Widget = canvas
        else:                                           # inline / Agg: show a PNG instead
            self._image = ipw.Image(format="png")
            view = self._image
        self._shown = False
        self.widget = ipw.VBox([*controls, view])

    def _redraw(self) -> None:
        self.fig.canvas.draw_idle()
        if self._image is not None and self._shown:
            self._image.value = plots.figure_png(self.fig)

    def png(self) -> bytes:
        """The figure now shown, as PNG bytes."""
        return plots.figure_png(self.fig)

    def save_png(self, path: str) -> None:
        """Save the figure now shown as a PNG file."""
        plots.save_png(self.fig, path)

    def close(self) -> None:
        """Close the figure and the widgets (free their memory)."""
        import matplotlib.pyplot as plt

        plt.close(self.fig)
        self.widget.close()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        self._shown = True
        if self._image is not None:
            self._image.value = plots.figure_png(self.fig)
        data = self.widget._repr_mimebundle_(**kwargs)
        data["image/png"] = plots.figure_png_base64(self.fig)   # the static copy
        return data


class TemperatureExplorer(_App):
    """A temperature slider that moves the model's next-token distribution.

    Left: the ``top`` most likely tokens (fixed order), their probabilities at temperature T,
    and the uniform level 1/V. Right: the entropy H(T) over the slider's range with a dot at T.
    Readouts: entropy in bits and the effective number of choices 2^H. Near T = 0.05 one note
    takes nearly all the mass (greedy); at T = 5 the bars sink towards 1/V (uniform).

    Attributes: ``temperature`` (FloatLogSlider), ``entropy_readout``, ``choices_readout``
    (HTML), ``plot`` (:class:`~toolkit.plots.DistributionPlot`), ``curve``
    (:class:`~toolkit.plots.EntropyCurvePlot` or None), ``fig``, ``widget``, ``logits``,
    ``vocab``; live values ``probs``, ``entropy_bits``, ``effective_choices``.

    Give ``model`` and ``prefix`` (tokens or space-separated text, see
    ``Network.next_logits``), or ``logits=`` one row with ``vocab=``.
    """

    def __init__(self, model: Any = None, prefix: str | Sequence[str] | None = None, *,
                 logits: Any = None, vocab: Sequence[str] | None = None,
                 temperature: float = 1.0, t_min: float = 0.05, t_max: float = 5.0,
                 top: int = 12, curve: bool = True, value_labels: int = 6,
                 figsize: tuple[float, float] | None = None):
        self.logits, self.vocab = _logits_and_vocab(model, prefix, logits, vocab)
        V = len(self.vocab)
        self.max_bits = math.log2(V)
        self.temperature = _temperature_slider(temperature, t_min, t_max)
        self.temperature.description = "T"
        self.entropy_readout = ipw.HTML()
        self.choices_readout = ipw.HTML()
        fig_size = figsize or ((11.5, 5.0) if curve else (9, 5.0))
        kw = {"width_ratios": [1.7, 1]} if curve else {}
        self.fig, axes = plots.new_figure(1, 2 if curve else 1, figsize=fig_size, show=False,
                                          dpi=LIVE_DPI,
                                          **kw)
        ax = axes[0] if curve else axes
        p0 = torch.softmax(self.logits, -1).numpy()
        self.plot = plots.plot_distribution(p0, self.vocab, top=min(top, V), ax=ax,
                                            ylim=(0, 1.1), uniform_line=True, show_mass=True,
                                            value_labels=value_labels)
        self.curve = None
        if curve:
            ts = np.geomspace(t_min, t_max, 160)
            self.curve = plots.plot_entropy_curve(ts, S.temperature_entropy(self.logits, ts),
                                                  max_bits=self.max_bits, ax=axes[1])
        self.temperature.observe(self._on_change, names="value")
        self._update(draw=False)
        dynamic = self.plot.dynamic + (self.curve.dynamic if self.curve else [])
        self._build([ipw.HBox([_label("temperature"), self.temperature]),
                     ipw.HBox([self.entropy_readout, self.choices_readout])], dynamic)

    def _on_change(self, change: dict[str, Any]) -> None:
        self._update()

    def _update(self, draw: bool = True) -> None:
        t = float(self.temperature.value)
        stage = S.explain(self.logits, S.chain(S.temperature(t)), seed=0).stages[-1]
        self.probs = stage.probs
        self.entropy_bits = stage.entropy_bits
        self.effective_choices = stage.effective_choices
        self.plot.update(stage.probs, draw=False)
        note = ""
        if self.effective_choices < 1.1:
            note = " · nearly greedy"
        elif self.entropy_bits > 0.9 * self.max_bits:
            note = " · nearly uniform"
        self.plot.set_title(f"T = {t:.2f}: {self.effective_choices:.1f} effective "
                            f"choices{note}")
        if self.curve is not None:
            self.curve.update(t, self.entropy_bits, draw=False)
        self.entropy_readout.value = (f"<span style='{_BIG}'>entropy "
                                      f"<b>H = {self.entropy_bits:.2f} bits</b> "
                                      f"(uniform: {self.max_bits:.2f})</span>")
        self.choices_readout.value = (f"<span style='{_BIG}'>effective choices "
                                      f"<b>2<sup>H</sup> = {self.effective_choices:.1f}</b> "
                                      f"of {len(self.vocab)} tokens</span>")
        if draw:
            self._redraw()


class _ChainApp(_App):
    """Sliders for temperature, top-k, top-p, min-p and typical, shared by two apps."""

    def _sliders(self, V: int, temperature: float, top_k: int, top_p: float, min_p: float,
                 typical_p: float, t_min: float, t_max: float) -> list[ipw.Widget]:
        wide = ipw.Layout(width="420px")
        style = {"description_width": "150px"}
        self.temperature = _temperature_slider(temperature, t_min, t_max)
        self.temperature.description = "temperature"
        self.top_k = ipw.IntSlider(value=top_k, min=0, max=min(V, 40), description="top-k",
                                   tooltip="0 = off", layout=wide)
        self.top_p = ipw.FloatSlider(value=top_p, min=0.05, max=1.0, step=0.01,
                                     description="top-p", tooltip="1 = off", layout=wide)
        self.min_p = ipw.FloatSlider(value=min_p, min=0.0, max=1.0, step=0.01,
                                     description="min-p", tooltip="0 = off", layout=wide)
        self.typical_p = ipw.FloatSlider(value=typical_p, min=0.05, max=1.0, step=0.01,
                                         description="typical", tooltip="1 = off", layout=wide)
        sliders = [self.temperature, self.top_k, self.top_p, self.min_p, self.typical_p]
        for s in sliders:
            s.style = style
            s.continuous_update = True
        offs = ["", "(0 = off)", "(1 = off)", "(0 = off)", "(1 = off)"]
        return [ipw.HBox([s, ipw.HTML(f"<span style='{_BIG}'>{o}</span>")])
                for s, o in zip(sliders, offs, strict=True)]

    def _observe(self, widgets: list[ipw.Widget]) -> None:
        for w in widgets:
            w.observe(self._on_change, names="value")

    def _on_change(self, change: dict[str, Any]) -> None:
        self._update()

    def _update(self, draw: bool = True) -> None:
        raise NotImplementedError

    @property
    def settings(self) -> dict[str, float]:
        """The slider values as keyword arguments of ``S.temperature_first`` / ``_last``."""
        return {"temperature": float(self.temperature.value), "top_k": int(self.top_k.value),
                "top_p": float(self.top_p.value), "min_p": float(self.min_p.value),
                "typical_p": float(self.typical_p.value)}


class TruncationExplorer(_ChainApp):
    """Truncation sliders on the model's next-token distribution: what is kept, what is cut.

    Left: the distribution the truncation steps see (after temperature in the "temperature
    first" order, the model's own in "temperature last"), kept tokens blue, cut grey, black
    markers at the final probabilities (renormalised, after the temperature), the min-p line
    at ``min_p × p_max``, the typical level ``2^-H`` and a dotted line after the k-th token.
    Right: the top-p staircase of the distribution top-p sees, with the line at p.

    Your own steps join with ``extra_steps`` (functions ``f(logits)`` or ``f(logits, ctx)``, or
    sampler steps): they run first, as in the tune studio, and the knobs act on what they leave.
    The bars then show the distribution *before* your steps (after temperature in the
    "temperature first" order), so a token your steps removed stays visible as a grey bar;
    the black markers are the final probabilities. (The min-p line, the typical level and the
    top-k cut are hidden then: they belong to a distribution your steps have changed; the
    staircase shows what top-p sees.) ``ctx`` is what your steps read; by default the context
    of ``prefix`` (:meth:`toolkit.sampling.Context.of`). A mistake in your step never raises
    from a slider: the readout says what went wrong, and ``error`` holds the exception.

    Attributes: sliders ``temperature``, ``top_k``, ``top_p``, ``min_p``, ``typical_p``; the
    toggle ``order`` (one of :data:`ORDERS`); readouts ``summary`` and ``chain_readout``
    (HTML); ``plot`` (DistributionPlot), ``staircase`` (StaircasePlot), ``fig``, ``widget``;
    after each move ``explanation`` (the :class:`~toolkit.sampling.Explanation`), ``kept``
    ((V,) bool), ``chain`` (the equivalent chain: your steps, then the preset) and ``error``
    (None, or what your step raised).
    """

    def __init__(self, model: Any = None, prefix: str | Sequence[str] | None = None, *,
                 logits: Any = None, vocab: Sequence[str] | None = None,
                 temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                 min_p: float = 0.0, typical_p: float = 1.0, order: str = ORDERS[0],
                 t_min: float = 0.05, t_max: float = 5.0, top: int = 10, staircase_top: int = 10,
                 figsize: tuple[float, float] = (11.5, 5.2), extra_steps: Any = None,
                 ctx: S.Context | None = None):
        self.logits, self.vocab = _logits_and_vocab(model, prefix, logits, vocab)
        V = len(self.vocab)
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
        self.extra = _extra_chain(extra_steps)
        if ctx is None and logits is None and prefix is not None:
            ctx = S.Context.of(prefix, model.vocab)
        self.ctx = ctx
        self.error: Exception | None = None
        self.explanation: S.Explanation | None = None
        self.kept: np.ndarray | None = None
        rows = self._sliders(V, temperature, top_k, top_p, min_p, typical_p, t_min, t_max)
        self.order = ipw.ToggleButtons(options=list(ORDERS), value=order,
                                       style={"button_width": "180px"})
        self.summary = ipw.HTML()
        self.chain_readout = ipw.HTML()
        self.fig, (ax, ax2) = plots.new_figure(1, 2, figsize=figsize, show=False, dpi=LIVE_DPI,
                                               width_ratios=[1.15, 1])
        p0 = torch.softmax(self.logits, -1).numpy()
        self.plot = plots.plot_distribution(
            p0, self.vocab, kept=np.ones(V, bool), after=p0, top=min(top, V), ax=ax,
            ylim=(0, 1.05), show_mass=False, cutoff_label="top-k cut",
            thresholds={"min_p": "min-p × top note", "typical": "typical: 2^-H"})
        self.staircase = plots.plot_top_p_staircase(p0, self.vocab, p=top_p, ax=ax2,
                                                    top=staircase_top, title="top-p staircase")
        self._observe([self.temperature, self.top_k, self.top_p, self.min_p, self.typical_p,
                       self.order])
        self._update(draw=False)
        self._build([ipw.HBox([ipw.VBox(rows), ipw.VBox([self.order, self.summary,
                                                         self.chain_readout])])],
                    self.plot.dynamic + self.staircase.dynamic)

    def _update(self, draw: bool = True) -> None:
        order, st = self.order.value, self.settings
        knobs = build_chain(order, **st)
        mine = len(self.extra)                                   # your steps come first
        preset = S.ordered_chain(order, **st)
        self.chain = S.chain(self.extra, preset) if mine else preset
        readout = html.escape(repr(self.chain), quote=False)
        self.chain_readout.value = f"<code style='{_BIG}'>{readout}</code>"
        try:
            e = S.explain(self.logits, S.chain(self.extra, knobs) if mine else knobs, seed=0,
                          vocab=self.vocab, ctx=self.ctx)
        except Exception as err:  # noqa: BLE001 -- a slider never raises; the readout says why
            self.error = err
            self.summary.value = (f"<div style='{_BIG}; color: #b22'>⚠️ {type(err).__name__}: "
                                  f"{html.escape(str(err))}</div>")
            return
        self.error = None
        # the bars: the distribution before your steps, so what they removed stays visible
        before = S.explain(self.logits, knobs, seed=0) if mine else e
        view = before.seen_by("top_k").probs                      # what truncation sees
        final = e.stages[-1]
        self.explanation, self.kept = e, final.kept
        self.plot.update(view, final.kept, final.probs, draw=False)
        # min-p compares with the top token: the ratio is the same on any renormalisation
        m = st["min_p"]
        self.plot.set_threshold("min_p", m * view.max() if m > 0 and not mine else None)
        # typical keeps surprise near the entropy H of what it sees: probability near 2^-H
        tau = st["typical_p"]
        level = None
        if tau < 1 and not mine:
            seen = e.seen_by("typical_p")
            level = 2.0 ** -seen.entropy_bits * float(view[seen.kept].sum())
        self.plot.set_threshold("typical", level)
        k = st["top_k"]
        self.plot.set_cutoff(k if 0 < k < len(self.plot.tokens) and not mine else None)
        where = "after temperature" if order == ORDERS[0] else "before temperature"
        self.plot.set_title(f"before your steps ({where}): grey = cut" if mine
                            else f"what truncation sees ({where})")
        self.staircase.update(e.seen_by("top_p").probs, st["top_p"], e.after("top_p").kept,
                              draw=False)
        n = final.n_kept
        yours = ""
        if mine:
            alive = e.stages[mine].kept
            cut = int((~alive).sum()) - int((~e.stages[0].kept).sum())
            mass = 1.0 - float(e.stages[0].probs[alive].sum())
            yours = (f"your steps cut <b>{cut}</b> token{'s' if cut != 1 else ''} "
                     f"({mass:.1%} of the probability) · ")
        self.summary.value = (f"<span style='{_BIG}'>{yours}keeps <b>{n}</b> of "
                              f"{len(self.vocab)} tokens · after: H = {final.entropy_bits:.2f} "
                              f"bits, 2<sup>H</sup> = {final.effective_choices:.1f}</span>")
        if draw:
            self._redraw()


class ChainOrderExplorer(_ChainApp):
    """The same settings in both chain orders, side by side: which notes does each keep?

    Both panels show the distribution after temperature alone; blue bars are the tokens that
    order keeps, grey the ones it cuts; black markers its final probabilities. The readout
    names the notes only one order keeps.

    Attributes: sliders ``temperature``, ``top_k``, ``top_p``, ``min_p``, ``typical_p``;
    readouts ``summary`` (HTML); ``plot`` (:class:`~toolkit.plots.ChainOrdersPlot`),
    ``fig``, ``widget``; after each move ``comparison`` (:class:`OrderComparison`).
    """

    def __init__(self, model: Any = None, prefix: str | Sequence[str] | None = None, *,
                 logits: Any = None, vocab: Sequence[str] | None = None,
                 temperature: float = 2.0, top_k: int = 0, top_p: float = 0.8,
                 min_p: float = 0.0, typical_p: float = 1.0, t_min: float = 0.05,
                 t_max: float = 5.0, top: int = 10, figsize: tuple[float, float] = (11.5, 5.2)):
        self.logits, self.vocab = _logits_and_vocab(model, prefix, logits, vocab)
        V = len(self.vocab)
        rows = self._sliders(V, temperature, top_k, top_p, min_p, typical_p, t_min, t_max)
        self.summary = ipw.HTML()
        self.fig, axes = plots.new_figure(1, 2, figsize=figsize, show=False, sharey=True,
                                          dpi=LIVE_DPI)
        c = compare_orders(self.logits, vocab=self.vocab, **self.settings)
        self.plot = plots.plot_chain_orders(c.probs, c.kept_first, c.kept_last, self.vocab,
                                            top=min(top, V), axes=axes, ylim=(0, 1.05))
        self._observe([self.temperature, self.top_k, self.top_p, self.min_p, self.typical_p])
        self._update(draw=False)
        self._build([ipw.HBox([ipw.VBox(rows), self.summary])], self.plot.dynamic)

    def _update(self, draw: bool = True) -> None:
        c = compare_orders(self.logits, vocab=self.vocab, **self.settings)
        self.comparison = c
        self.plot.update(c.probs, c.kept_first, c.kept_last, c.first.stages[-1].probs,
                         c.last.stages[-1].probs, draw=False)

        def names(xs: list[str]) -> str:
            return ", ".join(xs) if xs else "none"

        verdict = ("<b>they keep different notes</b>" if c.differ else "they keep the same notes")
        self.summary.value = (f"<div style='{_BIG}'>{verdict}<br>only temperature first keeps: "
                              f"<b>{names(c.only_first)}</b><br>only temperature last keeps: "
                              f"<b>{names(c.only_last)}</b></div>")
        if draw:
            self._redraw()


class ModelsExplorer(_App):
    """Two (to four) models after the same prefix, under the same temperature and top-p.

    Left: each model's next-token distribution after the sampler (temperature, then top-p),
    as grouped bars on the tokens either finds most likely (fixed order). Right: each model's
    entropy against temperature, with a dot at the slider's T; a steeper curve is a model that
    reacts more to temperature. The readout gives each model's entropy and how many tokens
    top-p keeps.

    Attributes: ``temperature``, ``top_p`` (sliders), ``readout`` (HTML), ``plot``
    (:class:`~toolkit.lessons.plots.ModelComparisonPlot`), ``curves``
    (:class:`~toolkit.lessons.plots.EntropyCurvesPlot`), ``models``, ``logits`` (name -> one
    row), ``tokens`` (the token names of all the models); live ``probs``, ``entropy_bits``,
    ``kept`` (name -> value).
    """

    def __init__(self, models: dict[str, Any], prefix: str | Sequence[str], *,
                 temperature: float = 1.0, top_p: float = 1.0, t_min: float = 0.1,
                 t_max: float = 5.0, top: int = 12, figsize: tuple[float, float] = (13.5, 5.0)):
        if not 2 <= len(models) <= len(plots.MODEL_COLORS):
            raise ValueError(f"models must hold 2 to {len(plots.MODEL_COLORS)} models "
                             f"(name -> model), got {len(models)}")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")
        self.models = dict(models)
        self.logits = {n: one_row(m.next_logits(prefix)) for n, m in self.models.items()}
        self.tokens = sorted({t for m in self.models.values() for t in m.vocab})
        self._index = {n: np.array([m.stoi.get(t, -1) for t in self.tokens])
                       for n, m in self.models.items()}
        self.known = {n: i >= 0 for n, i in self._index.items()}
        self.temperature = _temperature_slider(temperature, t_min, t_max)
        self.temperature.description = "T"
        self.top_p = ipw.FloatSlider(value=top_p, min=0.05, max=1.0, step=0.01,
                                     description="top-p", continuous_update=True,
                                     layout=ipw.Layout(width="420px"))
        self.readout = ipw.HTML()
        self.fig, (left, right) = plots.new_figure(1, 2, figsize=figsize, show=False,
                                                   dpi=LIVE_DPI, width_ratios=[1.7, 1])
        self._update_probs()
        self.plot = plots.plot_model_comparison(self.tokens, self.probs, self.known, top=top,
                                                ax=left)
        ts = np.geomspace(t_min, t_max, 120)
        self.curves = plots.plot_entropy_curves(
            ts, {n: S.temperature_entropy(x, ts) for n, x in self.logits.items()},
            max_bits=math.log2(max(len(m.vocab) for m in self.models.values())), ax=right)
        for w in (self.temperature, self.top_p):
            w.observe(lambda _: self._update(), names="value")
        self._update(draw=False)
        self._build([ipw.HBox([_label("temperature"), self.temperature]),
                     ipw.HBox([_label("top-p (1 = off)"), self.top_p]), self.readout],
                    self.plot.dynamic + self.curves.dynamic)

    def _update_probs(self) -> None:
        chain = S.chain(S.temperature(float(self.temperature.value)),
                        S.top_p(float(self.top_p.value)))
        self.probs, self.entropy_bits, self.kept = {}, {}, {}
        for name, x in self.logits.items():
            stage = S.explain(x, chain, seed=0).stages[-1]
            idx = self._index[name]
            self.probs[name] = np.where(idx >= 0, stage.probs[np.maximum(idx, 0)], 0.0)
            self.entropy_bits[name] = stage.entropy_bits
            self.kept[name] = stage.n_kept

    def _update(self, draw: bool = True) -> None:
        self._update_probs()
        t = float(self.temperature.value)
        self.plot.update(self.probs, self.known, draw=False)
        self.plot.ax.set_title(f"T = {t:.2f}, top-p = {float(self.top_p.value):.2f}",
                               fontsize=plots.FONT_SIZES["title"])
        self.curves.update(t, {n: float(S.temperature_entropy(x, [t])[0])
                               for n, x in self.logits.items()}, draw=False)
        self.readout.value = "".join(
            f"<span style='{_BIG}'><b>{html.escape(n)}</b>: after top-p H = "
            f"{self.entropy_bits[n]:.2f} bits,"
            f" {self.kept[n]} tokens kept</span>" for n in self.models)
        if draw:
            self._redraw()
