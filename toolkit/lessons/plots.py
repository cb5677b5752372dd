"""Pure plotting functions for the sampling lessons: data in, artists out.

Every function here takes plain data -- probabilities as a 1-D numpy array or torch tensor,
token names, boolean "kept" masks -- draws it once, and returns a small object that holds the
artists and can **update them in place**::

    >>> from toolkit import plots
    >>> p = plots.plot_distribution(probs, model.vocab, top=12)        # doctest: +SKIP
    >>> p.update(new_probs, kept=new_kept)   # set_height, set_color, draw_idle()  # doctest: +SKIP

An update never creates a figure or an axes: it moves bars, recolours them and calls
``fig.canvas.draw_idle()``. That is what keeps a slider live (see :mod:`toolkit.lessons.widgets`,
which only wires sliders to these objects). Nothing here knows about widgets or about the model.

Conventions, chosen for a projector and for colour-blind readers:

- fonts of 14 pt or more (:data:`FONT_SIZES`), axes always labelled, probabilities in percent;
- colours from the Okabe-Ito palette (:data:`COLORS`): kept notes blue, cut notes grey (and
  still visible), the drawn note vermillion, thresholds orange and reddish purple;
- the tokens on the x axis are the *top N* of a reference distribution, most likely first; they
  stay in place while the distribution changes, so a student can follow one note.

The public plot functions (all documented below): :func:`plot_distribution`,
:func:`plot_top_p_staircase`, :func:`plot_draw_histogram`, :func:`plot_chain_orders`,
:func:`plot_draw`, :func:`plot_entropy_curve`, :func:`plot_loss_curve`,
:func:`plot_model_comparison`; helpers :func:`new_figure`, :func:`figure_png`,
:func:`save_png`, :func:`top_tokens`.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, PercentFormatter

__all__ = [
    "COLORS", "FONT_SIZES", "PROJECTOR_RC", "ArrayLike",
    "new_figure", "freeze_layout", "StaticLayer", "cache_static", "figure_png", "figure_png_base64",
    "save_png", "as_array", "top_tokens",
    "DistributionPlot", "plot_distribution",
    "StaircasePlot", "plot_top_p_staircase",
    "HistogramPlot", "plot_draw_histogram",
    "ChainOrdersPlot", "plot_chain_orders",
    "DrawPlot", "plot_draw",
    "EntropyCurvePlot", "plot_entropy_curve",
    "LossCurvePlot", "plot_loss_curve",
    "MODEL_COLORS", "ModelComparisonPlot", "plot_model_comparison",
    "PredictionPlot", "plot_prediction", "plot_reward_weights", "plot_learning_curves",
]

ArrayLike = Any  # a 1-D numpy array, torch tensor or sequence of numbers

#: Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour
#: vision deficiency. Kept vs cut also differ in lightness, so they survive greyscale printing.
COLORS = {
    "kept": "#0072B2",       # blue
    "kept_light": "#56B4E9",  # sky blue (alternating segments)
    "cut": "#B0B0B0",        # grey
    "drawn": "#D55E00",      # vermillion
    "threshold": "#E69F00",  # orange
    "typical": "#CC79A7",    # reddish purple
    "reference": "#009E73",  # bluish green (uniform line, model probabilities in histograms)
    "samples": "#E69F00",    # orange (frequencies of draws)
    "ink": "#222222",
}
CUT_ALPHA = 0.6

#: Font sizes in points; everything a student must read is at least 14 pt.
FONT_SIZES = {"base": 16, "title": 18, "label": 16, "tick": 15, "value": 14, "note": 14}

#: rcParams applied while a figure is built (:func:`new_figure`).
PROJECTOR_RC = {
    "font.size": FONT_SIZES["base"],
    "axes.titlesize": FONT_SIZES["title"],
    "axes.labelsize": FONT_SIZES["label"],
    "xtick.labelsize": FONT_SIZES["tick"],
    "ytick.labelsize": FONT_SIZES["tick"],
    "legend.fontsize": FONT_SIZES["note"],
    "figure.titlesize": FONT_SIZES["title"],
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titleweight": "bold",
    "axes.titley": 1.0,   # a fixed title position: no title-placement pass on every draw
    "figure.dpi": 100,
    "savefig.dpi": 100,
}


# --------------------------------------------------------------------------------------------
# Figures and data
# --------------------------------------------------------------------------------------------

def new_figure(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] = (10, 5),
               show: bool = True, **kwargs: Any) -> tuple[Figure, Any]:
    """A figure with projector-size fonts and constrained layout: ``(fig, axes)``.

    It is made with pyplot, so under ``%matplotlib widget`` the canvas is an interactive ipympl
    widget. ``show=False`` builds it without pyplot's interactive mode, so Jupyter does not
    display it on its own (a widget app embeds the canvas itself). ``kwargs`` go to
    ``plt.subplots``.
    """
    with mpl.rc_context(PROJECTOR_RC), (nullcontext() if show else plt.ioff()):
        fig, axes = plt.subplots(nrows, ncols, figsize=figsize, layout="constrained", **kwargs)
    canvas = fig.canvas
    if hasattr(canvas, "header_visible"):        # ipympl: no "Figure 1" header over the plot
        canvas.header_visible = False
    return fig, axes


def freeze_layout(fig: Figure) -> None:
    """Run the constrained layout once, then keep the axes where they are.

    A live figure must not re-run its layout on every draw (it costs more than the draw
    itself); its labels do not change size, so one layout is enough.
    """
    engine = fig.get_layout_engine()
    if engine is not None:
        engine.execute(fig)
        fig.set_layout_engine("none")


class StaticLayer(Artist):
    """Draws the parts of a live figure that never change once, then pastes them back.

    A slider moves bars and lines; the axes, ticks, tick labels, axis labels and legends stay
    put, yet a plain redraw renders all of that text again, which is most of the cost. This
    artist, the first one the figure draws, renders the *static* artists of every axes into
    the canvas and keeps a copy of the pixels; later draws restore that copy (a memory copy)
    and the axes draw only the ``dynamic`` artists on top. The copy is made again when the
    canvas size, the dpi, an axes' limits or position, or a fixed tick label changes. Saving
    the figure (``savefig``) ignores the cache and draws everything as usual.

    Static artists are marked ``animated`` so that the axes skip them in a live draw; keep
    every artist that an update changes in ``dynamic``. Only artists below every dynamic one
    (lower zorder) are cached, so that a live draw paints exactly what a full draw paints;
    the others (e.g. the spines, zorder 2.5, over bars at 2) are drawn every time. A few copies
    are kept (:attr:`KEEP`), so a plot whose axis steps between a few limits renders each once.
    """

    KEEP = 6  # copies kept, one per signature (canvas size, limits, fixed tick labels)

    def __init__(self, fig: Figure, dynamic: Sequence[Artist]):
        super().__init__()
        self.fig = fig
        self.dynamic = set(dynamic)
        self.set_zorder(-1e9)
        self.set_in_layout(False)
        self.static: list[tuple[Axes, list[Artist]]] = []
        for ax in fig.axes:
            ax.patch.set_facecolor("none")   # the figure's white shows through
            children = [a for a in ax.get_children() if a is not ax.patch]
            # a static artist can only be cached if everything dynamic is drawn above it
            lowest = min((a.get_zorder() for a in children if a in self.dynamic),
                         default=np.inf)
            arts = [a for a in children if a not in self.dynamic and a.get_zorder() < lowest]
            self.dynamic.update(a for a in children if a not in arts)
            for a in arts:
                a.set_animated(True)
            self.static.append((ax, sorted(arts, key=lambda a: a.get_zorder())))
        self._cache: dict[tuple, Any] = {}    # signature -> pixels (a few: axes that switch
        self.rebuilds = 0                      # between a few limits keep each one's copy)
        self.enabled = True
        fig.add_artist(self)

    def disable(self) -> None:
        """Go back to plain full draws (for comparisons and debugging)."""
        for _, arts in self.static:
            for a in arts:
                a.set_animated(False)
        self.enabled = False
        self._cache.clear()

    def _signature(self, renderer: Any) -> tuple:
        parts: list[Any] = [renderer.width, renderer.height, self.fig.dpi]
        for ax, _ in self.static:
            parts.append(tuple(ax.viewLim.bounds) + tuple(ax.bbox.bounds))
            for axis in (ax.xaxis, ax.yaxis):
                seq = getattr(axis.get_major_formatter(), "seq", None)
                parts.append(tuple(seq) if seq is not None else None)
        return tuple(parts)

    def invalidate(self) -> None:
        """Forget the cached pixels: the next draw renders the static artists again."""
        self._cache.clear()

    def draw(self, renderer: Any) -> None:
        if not self.enabled:
            return
        if self.fig.canvas.is_saving() or not hasattr(renderer, "copy_from_bbox"):
            if not hasattr(renderer, "copy_from_bbox"):      # not Agg: draw it all
                for _, arts in self.static:
                    for a in arts:
                        a.draw(renderer)
            return
        key = self._signature(renderer)
        pixels = self._cache.get(key)
        if pixels is not None:
            renderer.restore_region(pixels)
            return
        for _, arts in self.static:
            for a in arts:
                a.draw(renderer)
        if len(self._cache) >= self.KEEP:
            self._cache.pop(next(iter(self._cache)))         # the oldest copy goes
        self._cache[key] = renderer.copy_from_bbox(self.fig.bbox)
        self.rebuilds += 1


def cache_static(fig: Figure, dynamic: Sequence[Artist]) -> StaticLayer:
    """Make later draws of ``fig`` fast: freeze its layout and cache everything not in
    ``dynamic`` (see :class:`StaticLayer`). Call it once, after the figure is complete."""
    freeze_layout(fig)
    return StaticLayer(fig, dynamic)


def figure_png(fig: Figure, dpi: float | None = None) -> bytes:
    """The figure as PNG bytes (what a static copy of a live plot shows)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi if dpi is not None else fig.dpi)
    return buf.getvalue()


def figure_png_base64(fig: Figure, dpi: float | None = None) -> str:
    """The figure as base64 PNG text, ready for a Jupyter ``image/png`` output."""
    return base64.b64encode(figure_png(fig, dpi)).decode("ascii")


def save_png(fig: Figure, path: str | Path, dpi: float | None = None) -> Path:
    """Save the figure as a PNG file, making its folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(figure_png(fig, dpi))
    return path


def as_array(x: ArrayLike, name: str = "probs", dtype: Any = np.float64) -> np.ndarray:
    """A 1-D numpy array from a numpy array, torch tensor or sequence; ValueError otherwise."""
    if hasattr(x, "detach"):                     # a torch tensor
        x = x.detach().cpu().double().numpy() if dtype is not bool else x.detach().cpu().numpy()
    a = np.asarray(x, dtype=dtype)
    if a.ndim == 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per token), got shape {a.shape}")
    return a


def top_tokens(probs: ArrayLike, top: int) -> np.ndarray:
    """Indices of the ``top`` most likely tokens, most likely first (ties: lower id first)."""
    p = as_array(probs)
    if top < 1:
        raise ValueError(f"top must be an integer >= 1, got {top!r}")
    return np.argsort(-p, kind="stable")[:top]


def _labels(labels: Sequence[str] | None, n: int) -> list[str]:
    if labels is None:
        return [f"#{i}" for i in range(n)]
    labels = list(labels)
    if len(labels) != n:
        raise ValueError(f"labels must name every token: got {len(labels)} labels for {n} "
                         "probabilities")
    return labels


def _mask(kept: ArrayLike | None, n: int) -> np.ndarray:
    if kept is None:
        return np.ones(n, dtype=bool)
    m = as_array(kept, "kept", dtype=bool)
    if m.shape != (n,):
        raise ValueError(f"kept must be a boolean mask of {n} tokens, got shape {m.shape}")
    return m


def _percent(p: float) -> str:
    if p < 0.0005:
        return ""
    if p < 0.01:
        return "<1%"
    return f"{p:.0%}"


#: Upper y limits an "auto" axis snaps to: a small change of the tallest bar keeps the axis
#: (and its cached tick labels) where it is.
Y_LADDER = (0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1)


def _auto_top(tallest: float) -> float:
    want = tallest * 1.2
    for y in Y_LADDER:
        if y >= want:
            return y
    return max(Y_LADDER[-1], want)


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    return ax if ax is not None else new_figure(figsize=figsize)[1]


def _style_prob_axis(ax: Axes, ylabel: str = "probability") -> None:
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_ylabel(ylabel, fontsize=FONT_SIZES["label"])
    ax.tick_params(labelsize=FONT_SIZES["tick"])


def _token_axis(ax: Axes, labels: list[str], xlabel: str) -> np.ndarray:
    x = np.arange(len(labels))
    ax.set_xticks(x, labels)
    ax.set_xlim(-0.6, len(x) - 0.4)
    ax.set_xlabel(xlabel, fontsize=FONT_SIZES["label"])
    ax.grid(axis="y", alpha=0.3, zorder=0)
    return x


def _paint(bar: Any, keep: bool) -> None:
    bar.set_color(COLORS["kept"] if keep else COLORS["cut"])
    bar.set_alpha(1.0 if keep else CUT_ALPHA)


# --------------------------------------------------------------------------------------------
# The next-token distribution: bars, kept/cut colours, thresholds
# --------------------------------------------------------------------------------------------

class DistributionPlot:
    """A bar plot of a next-token distribution that updates in place.

    Bars show ``probs`` for the tokens in :attr:`tokens` (fixed at construction: the top N of
    the first distribution, most likely first). Kept tokens are blue, cut ones grey but still
    visible; optional black markers (``after``) show the kept tokens' probabilities once the
    cut ones are gone (renormalised); optional horizontal lines mark thresholds (min-p, the
    typical level...) and a vertical line a rank cut-off (top-k); their names are in the
    legend.

    Attributes: ``fig``, ``ax``, ``bars`` (a BarContainer, one Rectangle per shown token),
    ``values`` (Text above each bar, or None), ``after_line`` (Line2D), ``mass_text`` (Text),
    ``thresholds`` (name -> Line2D), ``cutoff`` (Line2D), ``tokens`` (np.ndarray of the shown
    token ids), ``labels`` (their names), ``dynamic`` (the artists an update changes).
    """

    def __init__(self, ax: Axes, probs: ArrayLike, labels: Sequence[str] | None = None, *,
                 kept: ArrayLike | None = None, after: ArrayLike | None = None, top: int = 12,
                 tokens: Sequence[int] | None = None, ylim: tuple[float, float] | str = "auto",
                 title: str | None = None, ylabel: str = "probability",
                 xlabel: str = "next token (most likely first)",
                 value_labels: bool | int | None = None, legend: bool = True,
                 show_mass: bool = True,
                 uniform_line: bool = False, thresholds: dict[str, str] | None = None,
                 cutoff_label: str | None = None):
        p = as_array(probs)
        self.ax, self.fig = ax, ax.figure
        self.vocab = _labels(labels, len(p))
        self.tokens = (np.asarray(tokens, dtype=int) if tokens is not None
                       else top_tokens(p, min(top, len(p))))
        self.labels = [self.vocab[i] for i in self.tokens]
        self.ylim = ylim
        self.show_mass = show_mass
        self.x = x = _token_axis(ax, self.labels, xlabel)
        self.bars = ax.bar(x, p[self.tokens], width=0.8, color=COLORS["kept"], zorder=2)
        _style_prob_axis(ax, ylabel)
        ax.set_title(title or "", fontsize=FONT_SIZES["title"])
        if value_labels is None:
            value_labels = after is None
        n_values = len(x) if value_labels is True else int(value_labels)
        self.values = [ax.text(xi, 0, "", ha="center", va="bottom", fontsize=FONT_SIZES["value"],
                               color=COLORS["ink"], zorder=4) if i < n_values else None
                       for i, xi in enumerate(x)]
        self.after_line = Line2D(x, np.full(len(x), np.nan), ls="none", marker="_",
                                 markersize=30, markeredgewidth=4, color="black", zorder=3)
        ax.add_line(self.after_line)
        self.mass_text = ax.text(0.99, 0.98, "", transform=ax.transAxes, ha="right", va="top",
                                 fontsize=FONT_SIZES["note"], color=COLORS["ink"], zorder=5)
        self.handles: list[Any] = []
        if kept is not None:
            self.handles += [Patch(color=COLORS["kept"], label="kept"),
                             Patch(color=COLORS["cut"], alpha=CUT_ALPHA, label="cut")]
        if after is not None:
            self.handles.append(Line2D([], [], ls="none", marker="_", markersize=20,
                                       markeredgewidth=4, color="black",
                                       label="after the cut (renormalised)"))
        if uniform_line:
            ax.axhline(1.0 / len(p), color=COLORS["reference"], ls="--", lw=2.5, zorder=1)
            self.handles.append(Line2D([], [], color=COLORS["reference"], ls="--", lw=2.5,
                                       label=f"uniform: 1/{len(p)}"))
        self.thresholds: dict[str, Line2D] = {}
        for name, label in (thresholds or {}).items():
            self.add_threshold(name, label, _rebuild_legend=False)
        # the cut-off line stops below the legend (upper right), which it must not cross
        self.cutoff = ax.axvline(np.nan, ymax=0.45, color=COLORS["threshold"], ls=":", lw=3.5,
                                 zorder=3)
        self.cutoff.set_visible(False)
        if cutoff_label:
            self.handles.append(Line2D([], [], color=COLORS["threshold"], ls=":", lw=3.5,
                                       label=cutoff_label))
        self.legend_on = legend
        self.legend = None
        self._legend()
        self.update(p, kept=kept, after=after, draw=False)

    def _legend(self) -> None:
        if self.legend is not None:
            self.legend.remove()
            self.legend = None
        if self.legend_on and self.handles:
            self.legend = self.ax.legend(handles=self.handles, loc="upper right",
                                         bbox_to_anchor=(1.0, 0.92), frameon=False,
                                         fontsize=FONT_SIZES["note"])
            self.legend.set_zorder(1.9)      # below the bars: cached by cache_static

    def add_threshold(self, name: str, label: str, color: str | None = None,
                      linestyle: str = "--", _rebuild_legend: bool = True) -> Line2D:
        """Add a hidden horizontal threshold line ``name``, named ``label`` in the legend.

        Default colour: reddish purple for a name containing "typical", else orange."""
        if color is None:
            color = COLORS["typical"] if "typical" in name else COLORS["threshold"]
        line = self.ax.axhline(0, color=color, ls=linestyle, lw=3.5, zorder=3)
        line.set_visible(False)
        self.thresholds[name] = line
        self.handles.append(Line2D([], [], color=color, ls=linestyle, lw=3.5, label=label))
        if _rebuild_legend:
            self._legend()
        return line

    # -- updates ------------------------------------------------------------------------------

    def update(self, probs: ArrayLike, kept: ArrayLike | None = None,
               after: ArrayLike | None = None, *, draw: bool = True) -> None:
        """Show a new distribution: bar heights ``probs``, colours from ``kept`` (None: all
        kept), markers at ``after`` for kept tokens (None: no markers). Redraws unless
        ``draw=False``."""
        p = as_array(probs)
        if p.shape[0] != len(self.vocab):
            raise ValueError(f"probs must have {len(self.vocab)} entries, got {p.shape[0]}")
        k = _mask(kept, len(p))
        heights = p[self.tokens]
        kept_shown = k[self.tokens]
        for bar, h, keep in zip(self.bars, heights, kept_shown, strict=True):
            bar.set_height(h)
            _paint(bar, keep)
        for text, xi, h in zip(self.values, self.x, heights, strict=True):
            if text is not None:
                text.set_text(_percent(h))
                text.set_position((xi, h))
        tallest = float(heights.max())
        if after is None:
            self.after_line.set_data(self.x, np.full(len(self.x), np.nan))
        else:
            a = np.where(kept_shown, as_array(after, "after")[self.tokens], np.nan)
            self.after_line.set_data(self.x, a)
            if np.isfinite(a).any():
                tallest = max(tallest, float(np.nanmax(a)))
        if self.show_mass and len(self.tokens) < len(p):
            self.mass_text.set_text(f"top {len(self.tokens)} of {len(p)} tokens hold "
                                    f"{heights.sum():.0%}")
        if self.ylim == "auto":
            self.ax.set_ylim(0, _auto_top(tallest))
        else:
            self.ax.set_ylim(*self.ylim)
        self.probs, self.kept = p, k
        if draw:
            self.draw_idle()

    def set_threshold(self, name: str, y: float | None, label: str | None = None, *,
                      draw: bool = False) -> None:
        """Move the horizontal line ``name`` to probability ``y``; None hides it.

        Used for the min-p line (``min_p × p_max``) and the typical level (``2^-H``). A new
        name adds a line and a legend entry ``label`` (default: the name).
        """
        if name not in self.thresholds:
            self.add_threshold(name, label or name)
        line = self.thresholds[name]
        visible = y is not None and bool(np.isfinite(y))
        line.set_visible(visible)
        if visible:
            line.set_ydata([y, y])
            lo, hi = self.ax.get_ylim()
            if y > hi:
                self.ax.set_ylim(lo, _auto_top(y))
        if draw:
            self.draw_idle()

    def set_cutoff(self, rank: int | None, *, draw: bool = False) -> None:
        """A vertical dotted line after the ``rank``-th shown bar (top-k); None hides it."""
        visible = rank is not None and 0 < rank < len(self.x)
        self.cutoff.set_visible(visible)
        if visible:
            self.cutoff.set_xdata([rank - 0.5, rank - 0.5])
        if draw:
            self.draw_idle()

    def set_title(self, title: str) -> None:
        """Change the title text (no redraw)."""
        self.ax.title.set_text(title)

    def draw_idle(self) -> None:
        """Ask the canvas to redraw when it is next idle (ipympl: one message to the browser)."""
        self.fig.canvas.draw_idle()

    @property
    def dynamic(self) -> list[Artist]:
        """The artists an update may change (for :func:`cache_static`)."""
        return [*self.bars.patches, *[t for t in self.values if t is not None],
                self.after_line, self.mass_text, self.cutoff, self.ax.title,
                *self.thresholds.values()]

    @property
    def heights(self) -> np.ndarray:
        """The bar heights now shown (np.ndarray, one per shown token)."""
        return np.array([b.get_height() for b in self.bars])

    @property
    def colors(self) -> list[str]:
        """The bar colours now shown, as hex strings."""
        return [mpl.colors.to_hex(b.get_facecolor(), keep_alpha=False) for b in self.bars]


def plot_distribution(probs: ArrayLike, labels: Sequence[str] | None = None, *,
                      kept: ArrayLike | None = None, after: ArrayLike | None = None,
                      top: int = 12, ax: Axes | None = None, title: str | None = None,
                      ylim: tuple[float, float] | str = "auto",
                      figsize: tuple[float, float] = (10, 5), **kwargs: Any) -> DistributionPlot:
    """Bar plot of a next-token distribution: the ``top`` most likely tokens, named.

    Parameters
    ----------
    probs : (V,) probabilities (numpy or torch), e.g. ``model.next_logits(prefix).softmax(-1)``.
    labels : the V token names (``model.vocab``); None shows ``#id``.
    kept : (V,) bool, the tokens a sampler keeps: kept blue, cut grey. None: all kept.
    after : (V,) the probabilities after the cut (renormalised), drawn as black markers.
    top : how many tokens to show (most likely first, fixed for later updates).
    ax : draw into this axes; None makes a new projector-size figure.
    title : the axes title.
    ylim : ``"auto"`` (fit the tallest bar) or fixed limits such as ``(0, 1)``.
    kwargs : more :class:`DistributionPlot` options: ``tokens`` (which token ids to show),
        ``value_labels`` (True, False or how many bars get a percentage; default: all, none
        when ``after`` markers are shown), ``legend``, ``show_mass``, ``uniform_line``,
        ``thresholds`` (``{"min_p": "min-p × top"}``), ``cutoff_label``, ``xlabel``,
        ``ylabel``.

    Returns the :class:`DistributionPlot`; call ``.update(probs, kept, after)``,
    ``.set_threshold(name, y)`` or ``.set_cutoff(rank)`` to move it.
    """
    return DistributionPlot(_axes(ax, figsize), probs, labels, kept=kept, after=after, top=top,
                            title=title, ylim=ylim, **kwargs)


# --------------------------------------------------------------------------------------------
# top-p: the cumulative staircase
# --------------------------------------------------------------------------------------------

class StaircasePlot:
    """Top-p as a staircase: tokens sorted by probability, each step rising by its probability.

    The steps climb to 100 %; the dashed line is p. Top-p keeps the tokens up to and
    including the step that crosses the line (blue) and cuts the rest (grey). Tokens that an
    earlier step already removed (probability 0) are left out.

    Attributes: ``fig``, ``ax``, ``bars`` (one floating Rectangle per rank: bottom = the mass
    before it, height = its probability), ``p_line``, ``p_text``, ``edge`` (the cut, a vertical
    line), ``kept_text``, ``order`` (token ids shown, most likely first), ``labels``,
    ``n_kept``, ``kept_mass``, ``dynamic``.
    """

    def __init__(self, ax: Axes, probs: ArrayLike, labels: Sequence[str] | None = None, *,
                 p: float = 0.9, kept: ArrayLike | None = None, top: int = 15,
                 title: str | None = "top-p: add up the likeliest notes until the mass "
                                     "reaches p"):
        pr = as_array(probs)
        self.ax, self.fig = ax, ax.figure
        self.vocab = _labels(labels, len(pr))
        self.top = min(top, len(pr))
        self.labels: list[str] = [""] * self.top
        self.x = x = _token_axis(ax, self.labels, "notes, most likely first")
        self.bars = ax.bar(x, np.zeros(self.top), bottom=np.zeros(self.top), width=0.8,
                           color=COLORS["kept"], zorder=2)
        self.step_line = Line2D([], [], color=COLORS["ink"], lw=1.5, drawstyle="steps-post",
                                zorder=3)
        ax.add_line(self.step_line)
        self.p_line = ax.axhline(p, color=COLORS["threshold"], ls="--", lw=3.5, zorder=4)
        self.p_text = ax.text(-0.45, p, "", ha="left", va="bottom", color=COLORS["threshold"],
                              fontsize=FONT_SIZES["note"], fontweight="bold", zorder=5)
        self.edge = ax.axvline(np.nan, color=COLORS["ink"], ls=":", lw=2.5, zorder=3)
        self.kept_text = ax.text(0.98, 0.04, "", transform=ax.transAxes, ha="right",
                                 va="bottom", fontsize=FONT_SIZES["note"], zorder=5,
                                 bbox={"facecolor": "white", "edgecolor": "none", "pad": 2})
        ax.set_ylim(0, 1.08)
        _style_prob_axis(ax, "cumulative probability")
        ax.set_title(title or "", fontsize=FONT_SIZES["title"])
        self.update(pr, p, kept, draw=False)

    def update(self, probs: ArrayLike, p: float, kept: ArrayLike | None = None, *,
               draw: bool = True) -> None:
        """New distribution and threshold p; ``kept`` colours the steps (None: the top-p rule,
        keep the shortest run of most likely tokens whose mass reaches p)."""
        pr = as_array(probs)
        order = np.argsort(-pr, kind="stable")
        sorted_p = pr[order]
        before = np.cumsum(sorted_p) - sorted_p
        if kept is None:
            k_sorted = before < p
            k_sorted[0] = True
        else:
            k_sorted = _mask(kept, len(pr))[order]
        n = self.top
        self.order = order[:n]
        alive = sorted_p[:n] > 0
        labels = [self.vocab[i] if a else "" for i, a in zip(self.order, alive, strict=True)]
        if labels != self.labels:                     # only then: tick labels are costly
            self.labels = labels
            self.ax.set_xticks(self.x, labels)
        for bar, b, h, keep in zip(self.bars, before[:n], sorted_p[:n], k_sorted[:n],
                                   strict=True):
            bar.set_y(b)
            bar.set_height(h)
            bar.set_visible(h > 0)
            _paint(bar, keep)
        m = max(int(alive.sum()), 1)
        tops = (before + sorted_p)[:m]
        self.step_line.set_data(np.r_[self.x[:m] - 0.4, m - 0.6], np.r_[tops, tops[-1]])
        self.p_line.set_ydata([p, p])
        self.p_text.set_text(f"p = {p:.2f}")
        self.p_text.set_y(p + 0.01)                  # just above its line
        n_kept = int(k_sorted.sum())
        mass = float(sorted_p[k_sorted].sum())
        self.edge.set_xdata([n_kept - 0.5, n_kept - 0.5])
        self.edge.set_visible(n_kept < n)
        self.kept_text.set_text(f"keeps {n_kept} token{'s' * (n_kept != 1)}, "
                                f"{mass:.0%} of the mass")
        self.n_kept, self.kept_mass, self.p = n_kept, mass, p
        if draw:
            self.fig.canvas.draw_idle()

    @property
    def dynamic(self) -> list[Artist]:
        """The artists an update may change (for :func:`cache_static`)."""
        return [*self.bars.patches, self.step_line, self.p_line, self.p_text, self.edge,
                self.kept_text]


def plot_top_p_staircase(probs: ArrayLike, labels: Sequence[str] | None = None, *,
                         p: float = 0.9, kept: ArrayLike | None = None, top: int = 15,
                         ax: Axes | None = None, title: str | None = None,
                         figsize: tuple[float, float] = (10, 5)) -> StaircasePlot:
    """The top-p staircase: cumulative probability of the most likely tokens, with a line at p.

    ``probs`` is the distribution top-p sees; ``kept`` (optional) the mask the sampler kept
    (default: the top-p rule itself); ``top`` how many ranks to show. Returns a
    :class:`StaircasePlot` (``.update(probs, p, kept)``, ``.n_kept``, ``.kept_mass``).
    """
    kw = {} if title is None else {"title": title}
    return StaircasePlot(_axes(ax, figsize), probs, labels, p=p, kept=kept, top=top, **kw)


# --------------------------------------------------------------------------------------------
# Draws: a histogram of N draws over the distribution, and where one draw landed
# --------------------------------------------------------------------------------------------

class HistogramPlot:
    """Model probabilities (green) beside the share of each token among N draws (orange).

    Attributes: ``fig``, ``ax``, ``prob_bars``, ``freq_bars``, ``tokens``, ``labels``,
    ``freqs`` (the shares now shown, for every token), ``n`` (number of draws), ``dynamic``.
    """

    def __init__(self, ax: Axes, probs: ArrayLike, draws: ArrayLike,
                 labels: Sequence[str] | None = None, *, top: int = 12,
                 title: str | None = None, legend: bool = True):
        pr = as_array(probs)
        self.ax, self.fig = ax, ax.figure
        self.vocab = _labels(labels, len(pr))
        self.probs = pr
        self.tokens = top_tokens(pr, min(top, len(pr)))
        self.labels = [self.vocab[i] for i in self.tokens]
        self.title = title
        x = _token_axis(ax, self.labels, "next token (most likely first)")
        self.prob_bars = ax.bar(x - 0.2, pr[self.tokens], width=0.4, color=COLORS["reference"],
                                label="model probability", zorder=2)
        self.freq_bars = ax.bar(x + 0.2, np.zeros(len(x)), width=0.4, color=COLORS["samples"],
                                label="share of the draws", zorder=2)
        _style_prob_axis(ax, "probability / share")
        ax.set_title("", fontsize=FONT_SIZES["title"])
        if legend:
            ax.legend(loc="upper right", frameon=False, fontsize=FONT_SIZES["note"])
        self.update(draws, draw=False)

    def update(self, draws: ArrayLike, *, draw: bool = True) -> None:
        """Show the shares among ``draws`` (token ids, e.g. the first n of a seeded run)."""
        d = as_array(draws, "draws", dtype=np.int64)
        n = len(d)
        counts = np.bincount(d, minlength=len(self.vocab))
        self.n = n
        self.freqs = counts / max(n, 1)
        for bar, f in zip(self.freq_bars, self.freqs[self.tokens], strict=True):
            bar.set_height(f)
        self.ax.title.set_text(self.title if self.title is not None else f"{n:,} draws")
        top = max(float(self.probs[self.tokens].max()), float(self.freqs[self.tokens].max()))
        self.ax.set_ylim(0, _auto_top(top))
        if draw:
            self.fig.canvas.draw_idle()

    @property
    def max_gap(self) -> float:
        """The largest |share − probability| over all tokens: it shrinks as n grows."""
        return float(np.abs(self.freqs - self.probs).max())

    @property
    def dynamic(self) -> list[Artist]:
        """The artists an update may change (for :func:`cache_static`)."""
        return [*self.freq_bars.patches, self.ax.title]


def plot_draw_histogram(probs: ArrayLike, draws: ArrayLike, labels: Sequence[str] | None = None,
                        *, top: int = 12, ax: Axes | None = None, title: str | None = None,
                        legend: bool = True, figsize: tuple[float, float] = (10, 5)
                        ) -> HistogramPlot:
    """Histogram of seeded draws (token ids) overlaid on the distribution they came from.

    With more draws the orange bars (shares) close in on the green ones (probabilities).
    The title defaults to the number of draws. Returns a :class:`HistogramPlot`
    (``.update(draws)``, ``.max_gap``).
    """
    return HistogramPlot(_axes(ax, figsize), probs, draws, labels, top=top, title=title,
                         legend=legend)


class DrawPlot:
    """Where the draw landed: the interval [0, 1) cut into one segment per token.

    Sampling is ``token = the first i with cdf[i] > u`` for a uniform random u; each token owns
    a segment as wide as its probability (tokens in vocabulary order, as the sampler lays them
    out). The drawn token's segment is vermillion and u is marked.

    Attributes: ``fig``, ``ax``, ``segments`` (one Rectangle per token), ``u_line``,
    ``u_text``, ``drawn_text``, ``names`` (label Texts of the widest segments), ``token``,
    ``u``, ``interval``, ``dynamic``.
    """

    def __init__(self, ax: Axes, probs: ArrayLike, u: float, labels: Sequence[str] | None = None,
                 *, token: int | None = None, n_names: int = 8, min_width: float = 0.035,
                 title: str | None = "where the draw landed"):
        pr = as_array(probs)
        self.ax, self.fig = ax, ax.figure
        self.vocab = _labels(labels, len(pr))
        self.min_width = min_width
        V = len(pr)
        self.segments = ax.barh(np.zeros(V), np.zeros(V), left=np.zeros(V), height=0.6,
                                color=COLORS["kept"], edgecolor="white", linewidth=1)
        self.names = [ax.text(0, 0, "", ha="center", va="center", color="white",
                              fontsize=FONT_SIZES["value"], fontweight="bold", zorder=4)
                      for _ in range(n_names)]
        self.u_line = ax.axvline(0, ymin=0.05, ymax=0.95, color=COLORS["ink"], lw=3, zorder=5)
        self.u_text = ax.text(0, 0.42, "", ha="left", va="bottom", fontsize=FONT_SIZES["note"],
                              color=COLORS["ink"], fontweight="bold", zorder=5)
        self.drawn_text = ax.text(0, -0.42, "", ha="center", va="top",
                                  fontsize=FONT_SIZES["note"], color=COLORS["drawn"],
                                  fontweight="bold", zorder=5)
        ax.set_xlim(0, 1)
        ax.set_ylim(-0.85, 0.85)
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.tick_params(labelsize=FONT_SIZES["tick"])
        ax.set_xlabel("cumulative probability (tokens in vocabulary order)",
                      fontsize=FONT_SIZES["label"])
        ax.set_title(title or "", fontsize=FONT_SIZES["title"])
        self.update(pr, u, token, draw=False)

    def update(self, probs: ArrayLike, u: float, token: int | None = None, *,
               draw: bool = True) -> None:
        """New distribution and uniform number u; ``token`` defaults to the one u falls on."""
        pr = as_array(probs)
        pr = pr / pr.sum()
        cdf = np.cumsum(pr)
        cdf[-1] = 1.0
        lefts = cdf - pr
        if token is None:
            token = int(min(np.searchsorted(cdf, u, side="right"), len(pr) - 1))
        shade = [COLORS["kept"], COLORS["kept_light"]]
        alive = 0
        for i, (seg, left, w) in enumerate(zip(self.segments, lefts, pr, strict=True)):
            seg.set_x(left)
            seg.set_width(w)
            alive += w > 0
            seg.set_facecolor(COLORS["drawn"] if i == token else shade[alive % 2])
        widest = [int(i) for i in np.argsort(-pr, kind="stable")[: len(self.names)]
                  if pr[i] >= self.min_width]
        for j, text in enumerate(self.names):
            text.set_visible(j < len(widest))
            if j < len(widest):
                i = widest[j]
                text.set_text(self.vocab[i])
                text.set_position((lefts[i] + pr[i] / 2, 0))
        self.u_line.set_xdata([u, u])
        self.u_text.set_text(f" u = {u:.3f}")
        self.u_text.set_x(u if u < 0.8 else u - 0.16)
        lo, hi = lefts[token], cdf[token]
        self.drawn_text.set_text(f"drawn: {self.vocab[token]}, its interval "
                                 f"[{lo:.3f}, {hi:.3f})")
        self.drawn_text.set_x(min(max((lo + hi) / 2, 0.22), 0.78))
        self.token, self.u, self.interval = token, u, (float(lo), float(hi))
        if draw:
            self.fig.canvas.draw_idle()

    @property
    def dynamic(self) -> list[Artist]:
        """The artists an update may change (for :func:`cache_static`)."""
        return [*self.segments.patches, *self.names, self.u_line, self.u_text, self.drawn_text]


def plot_draw(probs: ArrayLike, u: float, labels: Sequence[str] | None = None, *,
              token: int | None = None, ax: Axes | None = None,
              title: str | None = "where the draw landed",
              figsize: tuple[float, float] = (12, 3.2)) -> DrawPlot:
    """Where one draw landed: [0, 1) split into token segments, u marked, the drawn one red.

    From an explanation: ``plot_draw(e.stages[-1].probs, e.draw.u, vocab, token=e.draw.token)``.
    Returns a :class:`DrawPlot` (``.update(probs, u, token)``).
    """
    return DrawPlot(_axes(ax, figsize), probs, u, labels, token=token, title=title)


# --------------------------------------------------------------------------------------------
# Two chain orders side by side
# --------------------------------------------------------------------------------------------

class ChainOrdersPlot:
    """Two :class:`DistributionPlot` panels, one per chain order, on the same tokens and scale.

    Each panel shows the same bars (the distribution after temperature alone), coloured by
    what *its* chain keeps, with black markers at its final probabilities. Attributes:
    ``fig``, ``left``, ``right`` (the two DistributionPlots), ``names`` (panel names),
    ``dynamic``.
    """

    def __init__(self, axes: Sequence[Axes], probs: ArrayLike, kept_left: ArrayLike,
                 kept_right: ArrayLike, labels: Sequence[str] | None = None, *,
                 after_left: ArrayLike | None = None, after_right: ArrayLike | None = None,
                 names: tuple[str, str] = ("temperature first", "temperature last"),
                 top: int = 12, ylim: tuple[float, float] | str = "auto"):
        if len(axes) != 2:
            raise ValueError(f"axes must hold two axes, got {len(axes)}")
        pr = as_array(probs)
        self.names = names
        self.fig = axes[0].figure
        marks = np.zeros(len(pr))
        self.left = DistributionPlot(axes[0], pr, labels, kept=kept_left, after=marks,
                                     top=top, show_mass=False, ylim=ylim)
        self.right = DistributionPlot(axes[1], pr, labels, kept=kept_right, after=marks,
                                      tokens=self.left.tokens, show_mass=False, legend=False,
                                      ylabel="", ylim=ylim)
        self.update(pr, kept_left, kept_right, after_left, after_right, draw=False)

    def update(self, probs: ArrayLike, kept_left: ArrayLike, kept_right: ArrayLike,
               after_left: ArrayLike | None = None, after_right: ArrayLike | None = None, *,
               draw: bool = True) -> None:
        """New distribution and kept masks (and final probabilities) for both panels."""
        self.left.update(probs, kept_left, after_left, draw=False)
        self.right.update(probs, kept_right, after_right, draw=False)
        top = max(self.left.ax.get_ylim()[1], self.right.ax.get_ylim()[1])
        for plot, name in ((self.left, self.names[0]), (self.right, self.names[1])):
            plot.ax.set_ylim(0, top)
            n = int(plot.kept.sum())
            plot.set_title(f"{name}: keeps {n} token{'s' * (n != 1)}")
        if draw:
            self.fig.canvas.draw_idle()

    @property
    def dynamic(self) -> list[Artist]:
        """The artists an update may change (for :func:`cache_static`)."""
        return self.left.dynamic + self.right.dynamic


def plot_chain_orders(probs: ArrayLike, kept_left: ArrayLike, kept_right: ArrayLike,
                      labels: Sequence[str] | None = None, *,
                      after_left: ArrayLike | None = None, after_right: ArrayLike | None = None,
                      names: tuple[str, str] = ("temperature first", "temperature last"),
                      top: int = 12, axes: Sequence[Axes] | None = None,
                      ylim: tuple[float, float] | str = "auto",
                      figsize: tuple[float, float] = (15, 5.5)) -> ChainOrdersPlot:
    """Two chain orders side by side: same bars, each coloured by what its order keeps.

    ``probs``: the distribution after temperature alone; ``kept_*``: (V,) masks of the two
    chains; ``after_*``: their final probabilities (markers). ``axes``: two axes to draw into
    (None: a new figure); ``ylim``: ``"auto"`` or fixed limits for both panels. Returns a
    :class:`ChainOrdersPlot`.
    """
    if axes is None:
        _, axes = new_figure(1, 2, figsize=figsize, sharey=True)
    return ChainOrdersPlot(list(axes), probs, kept_left, kept_right, labels,
                           after_left=after_left, after_right=after_right, names=names, top=top,
                           ylim=ylim)


# --------------------------------------------------------------------------------------------
# Entropy against temperature
# --------------------------------------------------------------------------------------------

class EntropyCurvePlot:
    """Entropy (bits) against temperature (log scale), with a dot at the current temperature.

    Guides: 0 bits (greedy, one choice) and, given ``max_bits``, log2 V (uniform over V
    tokens). Attributes: ``fig``, ``ax``, ``curve``, ``dot``, ``dot_text``, ``dynamic``.
    """

    def __init__(self, ax: Axes, temperatures: ArrayLike, entropy_bits: ArrayLike, *,
                 max_bits: float | None = None, current: tuple[float, float] | None = None,
                 title: str | None = "entropy vs temperature"):
        t = as_array(temperatures, "temperatures")
        h = as_array(entropy_bits, "entropy_bits")
        self.ax, self.fig = ax, ax.figure
        (self.curve,) = ax.plot(t, h, color=COLORS["kept"], lw=3.5, zorder=2)
        ax.set_xscale("log")
        ticks = [v for v in (0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100)
                 if t[0] <= v <= t[-1]]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_locator(mpl.ticker.NullLocator())
        ax.axhline(0, color=COLORS["ink"], lw=1)
        top = max_bits if max_bits is not None else float(h.max())
        if max_bits is not None:
            ax.axhline(max_bits, color=COLORS["reference"], ls="--", lw=2.5)
            ax.text(t[-1], max_bits, f"uniform: log₂ V = {max_bits:.2f} bits ", va="bottom",
                    ha="right", color=COLORS["reference"], fontsize=FONT_SIZES["note"])
        (self.dot,) = ax.plot([np.nan], [np.nan], "o", ms=15, color=COLORS["drawn"], zorder=4,
                              clip_on=False)
        self.dot_text = ax.text(0.03, 0.80, "", transform=ax.transAxes, ha="left", va="top",
                                fontsize=FONT_SIZES["note"], color=COLORS["drawn"],
                                fontweight="bold", zorder=5)
        ax.set_xlim(t[0], t[-1])
        ax.set_ylim(-0.2, top * 1.15 + 0.2)
        ax.set_xlabel("temperature T (log scale)", fontsize=FONT_SIZES["label"])
        ax.set_ylabel("entropy H (bits)", fontsize=FONT_SIZES["label"])
        ax.tick_params(labelsize=FONT_SIZES["tick"])
        ax.grid(alpha=0.3)
        ax.set_title(title or "", fontsize=FONT_SIZES["title"])
        if current is not None:
            self.update(*current, draw=False)

    def update(self, temperature: float, entropy_bits: float, *, draw: bool = True) -> None:
        """Move the dot to (T, H)."""
        self.dot.set_data([temperature], [entropy_bits])
        self.dot_text.set_text(f"T = {temperature:.2f}\nH = {entropy_bits:.2f} bits")
        if draw:
            self.fig.canvas.draw_idle()

    @property
    def dynamic(self) -> list[Artist]:
        """The artists an update may change (for :func:`cache_static`)."""
        return [self.dot, self.dot_text]


def plot_entropy_curve(temperatures: ArrayLike, entropy_bits: ArrayLike, *,
                       max_bits: float | None = None, current: tuple[float, float] | None = None,
                       ax: Axes | None = None, title: str | None = "entropy vs temperature",
                       figsize: tuple[float, float] = (8, 5)) -> EntropyCurvePlot:
    """Entropy (bits) as a function of temperature, optionally with the uniform ceiling
    ``max_bits`` (log2 V) and a dot at ``current = (T, H)``. Returns an
    :class:`EntropyCurvePlot` (``.update(T, H)``)."""
    return EntropyCurvePlot(_axes(ax, figsize), temperatures, entropy_bits, max_bits=max_bits,
                            current=current, title=title)


class EntropyCurvesPlot:
    """Several models' entropy (bits) against temperature (log scale), one curve and one dot (at
    the current temperature) per model, in the model colours of :data:`MODEL_COLORS`: where a
    curve is steeper, that model's distribution reacts more to the same temperature change.

    Attributes: ``fig``, ``ax``, ``names``, ``curves``, ``dots`` (name -> Line2D), ``dynamic``.
    """

    def __init__(self, ax: Axes, temperatures: ArrayLike, entropy_bits: dict[str, ArrayLike], *,
                 max_bits: float | None = None, title: str | None = "entropy vs temperature"):
        if not 1 <= len(entropy_bits) <= len(MODEL_COLORS):
            raise ValueError(f"entropy_bits must hold 1 to {len(MODEL_COLORS)} models' curves, "
                             f"got {len(entropy_bits)}")
        t = as_array(temperatures, "temperatures")
        self.ax, self.fig, self.names = ax, ax.figure, list(entropy_bits)
        self.curves, self.dots = {}, {}
        top = max_bits or 0.0
        for j, (name, bits) in enumerate(entropy_bits.items()):
            h = as_array(bits, f"entropy_bits[{name!r}]")
            if h.shape != t.shape:
                raise ValueError(f"entropy_bits[{name!r}] must have one value per temperature "
                                 f"({len(t)}), got {len(h)}")
            (self.curves[name],) = ax.plot(t, h, color=MODEL_COLORS[j], lw=3.5, label=name)
            (self.dots[name],) = ax.plot([np.nan], [np.nan], "o", ms=13, color=MODEL_COLORS[j],
                                         zorder=4, clip_on=False)
            top = max(top, float(h.max()))
        ax.set_xscale("log")
        ticks = [v for v in (0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10) if t[0] <= v <= t[-1]]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_locator(mpl.ticker.NullLocator())
        if max_bits is not None:
            ax.axhline(max_bits, color=COLORS["reference"], ls="--", lw=2)
        ax.set_xlim(t[0], t[-1])
        ax.set_ylim(0, top * 1.15 + 0.2)
        ax.set_xlabel("temperature T (log scale)", fontsize=FONT_SIZES["label"])
        ax.set_ylabel("entropy H (bits)", fontsize=FONT_SIZES["label"])
        ax.tick_params(labelsize=FONT_SIZES["tick"])
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", frameon=False, fontsize=FONT_SIZES["note"])
        ax.set_title(title or "", fontsize=FONT_SIZES["title"])

    def update(self, temperature: float, entropy_bits: dict[str, float], *,
               draw: bool = True) -> None:
        """Move each model's dot to (T, its H)."""
        for name in self.names:
            self.dots[name].set_data([temperature], [entropy_bits[name]])
        if draw:
            self.fig.canvas.draw_idle()

    @property
    def dynamic(self) -> list[Artist]:
        return list(self.dots.values())


def plot_entropy_curves(temperatures: ArrayLike, entropy_bits: dict[str, ArrayLike], *,
                        max_bits: float | None = None, ax: Axes | None = None,
                        title: str | None = "entropy vs temperature",
                        figsize: tuple[float, float] = (8, 5)) -> EntropyCurvesPlot:
    """Entropy against temperature for several models (name -> bits at each temperature);
    returns an :class:`EntropyCurvesPlot` (``.update(T, {name: H})``)."""
    return EntropyCurvesPlot(_axes(ax, figsize), temperatures, entropy_bits, max_bits=max_bits,
                             title=title)


def plot_head_scores(scores: ArrayLike, *, ax: Axes | None = None,
                     title: str | None = "which heads copy a repeated bar?",
                     figsize: tuple[float, float] = (7, 3.6)) -> Figure:
    """A (layers × heads) grid of scores in 0..1 (e.g. the weight each attention head puts on
    the matching note of the bar being repeated), each cell labelled with its value in percent;
    the best cell is outlined. Returns the figure."""
    a = np.asarray(scores.detach().cpu() if hasattr(scores, "detach") else scores, dtype=float)
    if a.ndim != 2:
        raise ValueError(f"scores must be a (layers, heads) grid, got shape {a.shape}")
    ax = _axes(ax, figsize)
    image = ax.imshow(a, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for (i, j), v in np.ndenumerate(a):
        ax.text(j, i, "–" if np.isnan(v) else f"{v:.0%}", ha="center", va="center",
                fontsize=FONT_SIZES["note"], color="white" if v > 0.55 else COLORS["ink"])
    if np.isfinite(a).any():
        i, j = np.unravel_index(np.nanargmax(a), a.shape)
        ax.add_patch(mpl.patches.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False,
                                           ec=COLORS["drawn"], lw=3))
    ax.set_xticks(range(a.shape[1]), [str(h + 1) for h in range(a.shape[1])])
    ax.set_yticks(range(a.shape[0]), [str(layer + 1) for layer in range(a.shape[0])])
    ax.set_xlabel("head", fontsize=FONT_SIZES["label"])
    ax.set_ylabel("layer", fontsize=FONT_SIZES["label"])
    ax.tick_params(labelsize=FONT_SIZES["tick"])
    ax.set_title(title or "", fontsize=FONT_SIZES["title"])
    ax.figure.colorbar(image, ax=ax, format=mpl.ticker.PercentFormatter(1.0))
    return ax.figure


# --------------------------------------------------------------------------------------------
# Training: the loss curve, and two models' next-token distributions side by side
# --------------------------------------------------------------------------------------------

HEADROOM = 1.5  # the loss axis reaches 1.5 x the highest loss: the legend sits above the curves


class LossCurvePlot:
    """Training and validation loss (nats per token) against epoch, one more point per epoch.

    The x axis is fixed from epoch 0 to ``epochs``, so the curve grows into a frame that does
    not move. Epoch 0 is the untrained model: given ``before`` (its validation loss), the
    validation curve starts there. ``uniform`` (ln V) draws the loss of a uniform guess over
    the V tokens as a dashed line, the level an untrained network starts near. The y axis
    starts at 0 and only grows (when a loss rises above it).

    Attributes: ``fig``, ``ax``, ``train_line``, ``valid_line`` (Line2D), ``text`` (the latest
    numbers), ``epochs``, ``before``, ``n_points`` (epochs drawn so far), ``dynamic``.
    """

    def __init__(self, ax: Axes, epochs: int, train: ArrayLike = (), valid: ArrayLike = (), *,
                 before: float | None = None, uniform: float | None = None,
                 title: str | None = "learning curve"):
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
        self.ax, self.fig = ax, ax.figure
        self.epochs, self.before, self.uniform = epochs, before, uniform
        (self.train_line,) = ax.plot([], [], "o-", color=COLORS["kept"], lw=3, ms=8, zorder=3,
                                     label="training tunes (mean over the epoch)")
        (self.valid_line,) = ax.plot([], [], "s-", color=COLORS["drawn"], lw=3, ms=8, zorder=4,
                                     label="validation tunes (never trained on)")
        if uniform is not None:
            ax.axhline(uniform, color=COLORS["reference"], ls="--", lw=2.5, zorder=1,
                       label=f"uniform guess: ln V = {uniform:.2f}")
        self.text = ax.text(0.98, 0.56, "", transform=ax.transAxes, ha="right", va="top",
                            fontsize=FONT_SIZES["note"], color=COLORS["ink"], zorder=5)
        ax.set_xlim(-0.3, epochs + 0.3)
        ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
        ax.set_xlabel("epoch (0 = untrained)" if before is not None else "epoch",
                      fontsize=FONT_SIZES["label"])
        ax.set_ylabel("loss (nats per token)", fontsize=FONT_SIZES["label"])
        ax.tick_params(labelsize=FONT_SIZES["tick"])
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", frameon=False, fontsize=FONT_SIZES["note"])
        ax.set_title(title or "", fontsize=FONT_SIZES["title"])
        known = [v for v in (before, uniform) if v is not None]
        ax.set_ylim(0, HEADROOM * max(known) if known else 5.0)
        self.update(train, valid, draw=False)

    def update(self, train: ArrayLike, valid: ArrayLike, *, draw: bool = True) -> None:
        """Show the losses of epochs 1..n (``train`` and ``valid``: one value per epoch)."""
        tr = as_array(train, "train") if len(train) else np.zeros(0)
        va = as_array(valid, "valid") if len(valid) else np.zeros(0)
        if len(tr) != len(va):
            raise ValueError(f"train and valid need one loss per epoch each, got {len(tr)} "
                             f"and {len(va)}")
        if len(tr) > self.epochs:
            self.epochs = len(tr)  # a run may be longer than announced: widen, never clip
            self.ax.set_xlim(-0.3, self.epochs + 0.3)
        epochs = np.arange(1, len(tr) + 1)
        self.train_line.set_data(epochs, tr)
        if self.before is not None:
            self.valid_line.set_data(np.r_[0, epochs], np.r_[self.before, va])
        else:
            self.valid_line.set_data(epochs, va)
        finite = np.r_[tr, va][np.isfinite(np.r_[tr, va])]
        if finite.size and finite.max() * HEADROOM > self.ax.get_ylim()[1]:
            self.ax.set_ylim(0, float(finite.max()) * HEADROOM)
        if len(tr):
            self.text.set_text(f"epoch {len(tr)}: training {tr[-1]:.3f}, "
                               f"validation {va[-1]:.3f}")
        else:
            self.text.set_text("untrained" + (f": validation {self.before:.3f}"
                                              if self.before is not None else ""))
        self.n_points = len(tr)
        if draw:
            self.fig.canvas.draw_idle()

    @property
    def dynamic(self) -> list[Artist]:
        """The artists an update may change (for :func:`cache_static`)."""
        return [self.train_line, self.valid_line, self.text]


def plot_loss_curve(train: ArrayLike = (), valid: ArrayLike = (), *, epochs: int,
                    before: float | None = None, uniform: float | None = None,
                    ax: Axes | None = None, title: str | None = "learning curve",
                    figsize: tuple[float, float] = (10, 4.8)) -> LossCurvePlot:
    """A learning curve: training and validation loss (nats/token) for epochs 1..n on an axis
    fixed to ``epochs``; ``before`` (the untrained model's validation loss) is epoch 0,
    ``uniform`` (ln V) a dashed guide. Returns a :class:`LossCurvePlot`; call
    ``.update(train, valid)`` after each epoch (the artists move, the figure stays)."""
    return LossCurvePlot(_axes(ax, figsize), epochs, train, valid, before=before,
                         uniform=uniform, title=title)


#: bar colours of the models compared in :func:`plot_model_comparison`, in order
MODEL_COLORS = (COLORS["drawn"], COLORS["kept"], COLORS["reference"], COLORS["typical"])


class ModelComparisonPlot:
    """Several models' next-token distributions side by side, on tokens named in common.

    ``tokens`` are token *names* and ``probs[name]`` each model's probabilities over them (its
    own vocabulary aligned by name, e.g. :func:`toolkit.training_view.align_probs`). A token a
    model does not have in its vocabulary gets probability 0 *and* an × at the bottom in that
    model's colour, with a legend entry saying so: a missing bar then means "cannot say this
    token", not "finds it unlikely". The shown tokens (the ``top`` with the highest probability
    under any model, most likely first) stay fixed for later updates. A note under the legend
    says how many of all the tokens each model lacks, and how many of those are shown.

    Attributes: ``fig``, ``ax``, ``names``, ``bars`` (name -> BarContainer), ``missing``
    (name -> Line2D of × marks), ``note`` (Text), ``shown`` (indices into ``tokens``),
    ``labels``, ``dynamic``.
    """

    def __init__(self, ax: Axes, tokens: Sequence[str], probs: dict[str, ArrayLike],
                 known: dict[str, ArrayLike] | None = None, *, top: int = 12,
                 title: str | None = None, shown: Sequence[int] | None = None):
        if not probs:
            raise ValueError("probs must hold at least one model's probabilities")
        if len(probs) > len(MODEL_COLORS):
            raise ValueError(f"at most {len(MODEL_COLORS)} models fit side by side, "
                             f"got {len(probs)}")
        self.ax, self.fig = ax, ax.figure
        self.tokens = list(tokens)
        self.names = list(probs)
        arrays = {n: self._check(n, p) for n, p in probs.items()}
        if shown is None:
            best = np.max(np.stack(list(arrays.values())), axis=0)
            shown = top_tokens(best, min(top, len(self.tokens)))
        self.shown = np.asarray(shown, dtype=int)
        self.labels = [self.tokens[i] for i in self.shown]
        x = _token_axis(ax, self.labels, "next token (most likely under either model first)")
        k = len(self.names)
        width = 0.8 / k
        self.bars, self.missing = {}, {}
        for j, name in enumerate(self.names):
            offset = (j - (k - 1) / 2) * width
            color = MODEL_COLORS[j]
            self.bars[name] = ax.bar(x + offset, np.zeros(len(x)), width=width * 0.95,
                                     color=color, zorder=2, label=name)
            (self.missing[name],) = ax.plot(x + offset, np.full(len(x), np.nan), "x",
                                            color=color, ms=14, mew=3.5, zorder=4,
                                            clip_on=False)
        self.missing_handle = Line2D([], [], ls="none", marker="x", ms=12, mew=3,
                                     color=COLORS["ink"],
                                     label="× not in that model's vocabulary (probability 0)")
        self.note = ax.text(0.99, 0.55, "", transform=ax.transAxes, ha="right", va="top",
                            fontsize=FONT_SIZES["note"], color=COLORS["ink"], zorder=5)
        _style_prob_axis(ax)
        ax.set_title(title or "", fontsize=FONT_SIZES["title"])
        self.legend = None
        self.update(arrays, known, draw=False)

    def _check(self, name: str, p: ArrayLike) -> np.ndarray:
        a = as_array(p, f"probs[{name!r}]")
        if a.shape[0] != len(self.tokens):
            raise ValueError(f"probs[{name!r}] must have one value per token "
                             f"({len(self.tokens)}), got {a.shape[0]}")
        return a

    def update(self, probs: dict[str, ArrayLike], known: dict[str, ArrayLike] | None = None,
               *, draw: bool = True) -> None:
        """New probabilities (and vocabulary masks; None: every token known) for every model."""
        if set(probs) != set(self.names):
            raise ValueError(f"probs must name the models {self.names}, got {list(probs)}")
        tallest, any_missing, notes = 0.0, False, []
        for name in self.names:
            p = self._check(name, probs[name])[self.shown]
            has_all = (np.ones(len(self.tokens), dtype=bool) if known is None or name not in known
                       else as_array(known[name], f"known[{name!r}]", dtype=bool))
            has = has_all[self.shown]
            if not has_all.all():
                shown_missing = int((~has).sum())
                notes.append(f"{name} lacks {int((~has_all).sum())} of the {len(has_all)} "
                             "tokens: probability 0 "
                             + (f"({shown_missing} shown here, marked ×)" if shown_missing
                                else "(none of them shown here)"))
            for bar, h in zip(self.bars[name], p, strict=True):
                bar.set_height(h)
            marks = np.where(has, np.nan, 0.0)
            self.missing[name].set_ydata(marks)
            any_missing |= bool((~has).any())
            tallest = max(tallest, float(p.max()) if len(p) else 0.0)
        self.ax.set_ylim(0, _auto_top(max(tallest, 0.01)))
        self.note.set_text("\n".join(notes))
        handles = [self.bars[n] for n in self.names] + ([self.missing_handle] if any_missing
                                                        else [])
        if self.legend is not None:
            self.legend.remove()
        self.legend = self.ax.legend(handles=handles, loc="upper right", frameon=False,
                                     fontsize=FONT_SIZES["note"])
        self.any_missing = any_missing
        if draw:
            self.fig.canvas.draw_idle()

    def heights(self, name: str) -> np.ndarray:
        """The bar heights now shown for one model (one per shown token)."""
        return np.array([b.get_height() for b in self.bars[name]])

    @property
    def dynamic(self) -> list[Artist]:
        """The artists an update may change (for :func:`cache_static`)."""
        return [*(b for n in self.names for b in self.bars[n].patches),
                *self.missing.values(), self.note, self.ax.title]


def plot_model_comparison(tokens: Sequence[str], probs: dict[str, ArrayLike],
                          known: dict[str, ArrayLike] | None = None, *, top: int = 12,
                          ax: Axes | None = None, title: str | None = None,
                          figsize: tuple[float, float] = (13, 5)) -> ModelComparisonPlot:
    """Grouped bars: each model's probability for the ``top`` tokens (by name) that any of them
    finds most likely. ``probs``: model name -> probabilities over ``tokens``; ``known``: model
    name -> bool mask, False where the token is not in that model's vocabulary (drawn as ×,
    probability 0). Returns a :class:`ModelComparisonPlot` (``.update(probs, known)``)."""
    return ModelComparisonPlot(_axes(ax, figsize), tokens, probs, known, top=top, title=title)


# --------------------------------------------------------------------------------------------
# Preferences: what the history model predicts, what the reward model weighs, learning curves
# --------------------------------------------------------------------------------------------

class PredictionPlot:
    """What a listener will like next: one panel per slot (meter, mode, style), a horizontal
    bar per value with its probability; bars are updated in place (``update``).

    ``prediction``: ``{"meter": {value: p}, "mode": {...}, "style": {...}}``; a slot whose
    distribution is None ("not sure yet") is drawn as grey bars at the uniform share.
    """

    def __init__(self, axes: Sequence[Axes], choices: dict[str, Sequence[str]],
                 prediction: dict[str, dict[str, float] | None], *, title: str = ""):
        self.axes, self.choices = list(axes), {k: list(v) for k, v in choices.items()}
        self.figure = self.axes[0].figure
        self.bars, self.labels = {}, {}
        for ax, (slot, values) in zip(self.axes, self.choices.items(), strict=True):
            y = np.arange(len(values))
            self.bars[slot] = ax.barh(y, np.zeros(len(values)), color=COLORS["kept"])
            ax.set_yticks(y, values, fontsize=FONT_SIZES["tick"])
            ax.invert_yaxis()
            ax.set_xlim(0, 1)
            ax.xaxis.set_major_formatter(mpl.ticker.PercentFormatter(1.0, decimals=0))
            ax.set_title(slot, fontsize=FONT_SIZES["label"])
            self.labels[slot] = [ax.text(0, i, "", va="center", fontsize=FONT_SIZES["value"])
                                 for i in y]
        self.suptitle = self.figure.suptitle(title, fontsize=FONT_SIZES["title"])
        self.update(prediction, title=title, draw=False)

    def update(self, prediction: dict[str, dict[str, float] | None], *, title: str | None = None,
               draw: bool = True) -> None:
        for slot, values in self.choices.items():
            dist = prediction.get(slot)
            sure = dist is not None
            for i, (bar, label) in enumerate(zip(self.bars[slot], self.labels[slot],
                                                 strict=True)):
                p = float(dist.get(values[i], 0.0)) if sure else 1 / len(values)
                bar.set_width(p)
                bar.set_color(COLORS["kept"] if sure else COLORS["cut"])
                label.set_x(min(p, 0.8) + 0.01)
                label.set_text(_percent(p) if sure else "")
        if title is not None:
            self.suptitle.set_text(title)
        if draw:
            self.figure.canvas.draw_idle()


def plot_prediction(choices: dict[str, Sequence[str]],
                    prediction: dict[str, dict[str, float] | None], *, title: str = "",
                    figsize: tuple[float, float] = (12, 4.2), show: bool = True
                    ) -> PredictionPlot:
    """The history model's prediction as three bar panels (meter, mode, style); returns a
    :class:`PredictionPlot` (``.update(prediction, title=...)``)."""
    fig, axes = new_figure(1, len(choices), figsize=figsize, show=show)
    return PredictionPlot(np.atleast_1d(axes), choices, prediction, title=title)


def plot_reward_weights(weights: dict[str, float], *, top: int = 10, ax: Axes | None = None,
                        title: str | None = "what the reward model learned",
                        figsize: tuple[float, float] = (8, 4.5)) -> Figure:
    """The ``top`` largest weights (name -> weight, as from ``RewardModel.weights()``) as
    horizontal bars: blue pushes towards "like", vermillion towards "dislike"."""
    items = sorted(weights.items(), key=lambda kv: -abs(kv[1]))[:top]
    if not items or not any(v for _, v in items):
        raise ValueError("weights is empty or all 0: the reward model has learned nothing yet "
                         "(it needs likes and dislikes among at least 6 judged tunes)")
    ax = _axes(ax, figsize)
    names, values = zip(*items, strict=True)
    y = np.arange(len(items))
    ax.barh(y, values, color=[COLORS["kept"] if v > 0 else COLORS["drawn"] for v in values])
    ax.set_yticks(y, [n.replace("_", " ") for n in names], fontsize=FONT_SIZES["tick"])
    ax.invert_yaxis()
    ax.axvline(0, color=COLORS["ink"], lw=1)
    ax.set_xlabel("weight (log-odds of 'like')", fontsize=FONT_SIZES["label"])
    ax.set_title(title or "", fontsize=FONT_SIZES["title"])
    return ax.figure


#: The three lines of a preference learning curve and their colours.
CURVE_STYLES = {"unsteered": (COLORS["cut"], "o"), "steered": (COLORS["kept"], "s"),
                "random": (COLORS["threshold"], "^")}


def plot_learning_curves(summaries: Sequence[dict], *, ncols: int = 3,
                         figsize: tuple[float, float] | None = None, show: bool = True) -> Figure:
    """One panel per listener: the liked share of unsteered, steered and randomly steered
    batches against the number of ratings given. ``summaries``: dicts with ``listener`` and
    ``rows`` (each with ``ratings``, ``unsteered``, ``steered``, ``random``), as written by
    ``benchmarks/preferences.py``."""
    if not summaries:
        raise ValueError("summaries is empty: give at least one listener's curve")
    if isinstance(ncols, bool) or not isinstance(ncols, int) or ncols < 1:
        raise ValueError(f"ncols must be an integer >= 1, got {ncols!r}")
    nrows = -(-len(summaries) // ncols)
    ncols = min(ncols, len(summaries))
    fig, axes = new_figure(nrows, ncols, figsize=figsize or (4.6 * ncols, 3.9 * nrows),
                           show=show, squeeze=False, sharey=True)
    for ax in axes.flat[len(summaries):]:
        ax.set_visible(False)
    for ax, s in zip(axes.flat, summaries, strict=False):
        x = [r["ratings"] for r in s["rows"]]
        for name, (color, marker) in CURVE_STYLES.items():
            ax.plot(x, [r[name] for r in s["rows"]], marker=marker, color=color, lw=2.5,
                    label=name)
        ax.set_title(s["listener"], fontsize=FONT_SIZES["label"])
        ax.set_ylim(0, 1)
        ax.set_xticks(x)
        ax.yaxis.set_major_formatter(mpl.ticker.PercentFormatter(1.0, decimals=0))
        ax.set_xlabel("ratings given", fontsize=FONT_SIZES["note"])
    axes.flat[0].set_ylabel("liked share", fontsize=FONT_SIZES["label"])
    axes.flat[0].legend(loc="upper left", fontsize=FONT_SIZES["note"] - 2)
    return fig
