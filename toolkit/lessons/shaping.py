"""Shaping a tune over time: the temperature behind every note, and schedules measured.

A schedule (:class:`toolkit.sampling.SectionTemperature`, ``BarTemperature``,
``DynamicTemperature``, any ``TemperatureSchedule``) sets a different temperature at different
points of a tune.  :func:`trace_temperature` generates tunes and records the temperature that was
really applied at every token; :func:`plot_temperature_trace` draws it note by note with the bar
lines; :func:`section_surprisal` measures, section by section, how far the drawn notes strayed
from the model's favourites; :class:`ScheduleExplorer` puts it on sliders.

>>> from toolkit import load_model, sampling as S                                  # doctest: +SKIP
>>> arc = S.temperature_by_section([(0, 4, 0.6), (4, 12, 1.4), (12, None, 0.6)])   # doctest: +SKIP
>>> trace = trace_temperature(load_model(), arc, n=8, seed=1, meter="6/8")          # doctest: +SKIP
>>> plot_temperature_trace(trace, 0)                                                # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from toolkit.lessons.views import FigureView, status_html
from toolkit.lm import sampling as S
from toolkit.music.tokens import BARS, is_pitch

__all__ = ["TemperatureTrace", "temperature_steps", "trace_temperature", "TracePlot",
           "plot_temperature_trace", "section_surprisal", "SCHEDULES", "schedule_chain",
           "ScheduleExplorer"]


def temperature_steps(sampler: Any) -> list[S.Step]:
    """The steps of a chain (nested chains included) that set a temperature."""
    out: list[S.Step] = []
    for step in getattr(sampler, "steps", [sampler]):
        if hasattr(step, "steps"):
            out += temperature_steps(step)
        elif isinstance(step, (S.Temperature, S.TemperatureSchedule)):
            out.append(step)
    return out


def _applied(steps: Sequence[S.Step], n: int) -> np.ndarray:
    """The (n,) temperature applied at this step: the product of every temperature step's."""
    t = np.ones(n)
    for step in steps:
        if isinstance(step, S.TemperatureSchedule):
            t = t * step.last_temperature.numpy()
        else:
            t = t * step.temperature
    return t


@dataclass
class TemperatureTrace:
    """Tunes and the temperature applied at each of their generated tokens.

    ``temperatures[i][j]`` is the temperature behind ``tunes[i]``'s ``j``-th generated token
    (the token after the conditioning and the primer).
    """

    tunes: list
    temperatures: list[list[float]]

    def __len__(self) -> int:
        return len(self.tunes)

    def notes(self, index: int = 0) -> dict[str, np.ndarray]:
        """Per note of tune ``index``: ``temperature``, ``bar`` (0-based) and ``surprisal``
        (bits, under the model before sampling)."""
        tune = self.tunes[index]
        start = len(tune.tokens) - len(self.temperatures[index])
        temps, bars, bits = [], [], []
        bar = sum(t in BARS for t in tune.tokens[:start])
        for j, tok in enumerate(tune.tokens[start:]):
            if tok in BARS:
                bar += 1
            elif is_pitch(tok):
                temps.append(self.temperatures[index][j])
                bars.append(bar)
                bits.append(-tune.logprobs[start + j] / math.log(2))
        return {"temperature": np.array(temps), "bar": np.array(bars, dtype=int),
                "surprisal": np.array(bits)}


def trace_temperature(model: Any, sampler: Any, n: int = 1, **generate_kwargs: Any
                      ) -> TemperatureTrace:
    """Generate ``n`` tunes with ``sampler`` and record the temperature applied at every token.

    ``generate_kwargs`` go to :func:`toolkit.generate` (seed, meter, mode, style, ...).  A chain
    without any temperature step runs at temperature 1 throughout.
    """
    from toolkit.lm.generation import generate

    if not hasattr(sampler, "sample"):
        sampler = S.chain(sampler)
    steps = temperature_steps(sampler)
    per_step: list[np.ndarray] = []

    def on_step(record: dict) -> None:
        per_step.append(_applied(steps, n))

    tunes = generate(model, n=n, sampler=sampler, on_step=on_step, **generate_kwargs)
    table = np.stack(per_step, axis=1) if per_step else np.ones((n, 0))   # (n, steps)
    temps = []
    for i, tune in enumerate(tunes):
        generated = sum(lp is not None for lp in tune.logprobs)
        temps.append(table[i, :generated].tolist())
    return TemperatureTrace(tunes, temps)


# ---------------------------------------------------------------------------------------------
# The plot (pure: data in, artists out)
# ---------------------------------------------------------------------------------------------

class TracePlot:
    """The temperature applied at every note of one tune, with its bar lines.

    A step line (temperature per note, vermillion) over dots coloured by the note's surprisal
    (a colour bar), grey vertical lines where bars begin, every fourth one labelled.
    :meth:`update` shows another tune on the same artists.
    Attributes: ``fig``, ``ax``, ``line``, ``dots``.
    """

    def __init__(self, trace: TemperatureTrace, index: int = 0, *, ax: Any = None,
                 title: str | None = None, t_max: float = 2.5):
        import matplotlib as mpl

        from toolkit.lessons import plots

        with mpl.rc_context(plots.PROJECTOR_RC):
            if ax is None:
                fig, ax = plots.new_figure(figsize=(12, 3.6))
            self.fig, self.ax = ax.figure, ax
            (self.line,) = ax.plot([], [], drawstyle="steps-mid", lw=3,
                                   color=plots.COLORS["drawn"], label="temperature used")
            self.dots = ax.scatter(np.zeros(0), np.zeros(0), s=40, c=np.zeros(0),
                                   cmap="viridis_r", vmin=0, vmax=6, zorder=3)
            self.colorbar = self.fig.colorbar(self.dots, ax=ax, pad=0.01, aspect=12)
            self.colorbar.set_label("note's surprisal (bits)")
            ax.set_xlabel("note number")
            ax.set_ylabel("temperature")
            ax.set_ylim(0, t_max)
            ax.legend(loc="upper left", fontsize="small", frameon=False)
            self.bar_lines: list = []
            self.bar_labels: list = []
        self.title = title
        self.update(trace, index, draw=False)

    def update(self, trace: TemperatureTrace, index: int = 0, *, draw: bool = True) -> None:
        notes = trace.notes(index)
        x = np.arange(1, len(notes["temperature"]) + 1)
        self.line.set_data(x, notes["temperature"])
        self.dots.set_offsets(np.c_[x, notes["temperature"]] if len(x) else np.empty((0, 2)))
        self.dots.set_array(notes["surprisal"])
        for artist in self.bar_lines + self.bar_labels:
            artist.remove()
        self.bar_lines, self.bar_labels = [], []
        starts = np.flatnonzero(np.diff(notes["bar"], prepend=-1)) if len(x) else []
        top = self.ax.get_ylim()[1]
        for k in starts:
            bar = int(notes["bar"][k])
            self.bar_lines.append(self.ax.axvline(k + 0.5, color="0.85", lw=1, zorder=0))
            if bar % 4 == 0 and k < len(x) - 3:
                self.bar_labels.append(self.ax.text(k + 0.7, top * 0.97, f"bar {bar + 1}",
                                                    va="top", fontsize="small", color="0.4"))
        self.ax.set_xlim(0.5, max(len(x), 1) + 0.5)
        if self.title is not None:
            self.ax.set_title(self.title)
        if draw:
            self.fig.canvas.draw_idle()


def plot_temperature_trace(trace: TemperatureTrace, index: int = 0, *, ax: Any = None,
                           title: str | None = None, t_max: float = 2.5) -> TracePlot:
    """Plot the temperature behind every note of ``trace.tunes[index]`` (a :class:`TracePlot`)."""
    return TracePlot(trace, index, ax=ax, title=title, t_max=t_max)


# ---------------------------------------------------------------------------------------------
# Measuring a schedule
# ---------------------------------------------------------------------------------------------

def section_surprisal(trace_or_tunes: TemperatureTrace | Sequence[Any],
                      edges: Sequence[int] = (0, 4, 12)) -> list[dict[str, float]]:
    """Mean surprisal (bits, under the model) of the notes drawn in each section of bars.

    ``edges`` are the first bars (0-based) of the sections: ``(0, 4, 12)`` makes bars 1–4,
    5–12 and 13 to the end.  A hotter section draws notes the model liked less, so its mean
    surprisal rises; one row per section with ``bars``, ``notes`` and ``surprisal_bits``.
    """
    tunes = trace_or_tunes.tunes if isinstance(trace_or_tunes, TemperatureTrace) \
        else list(trace_or_tunes)
    edges = list(edges)
    sums, counts = [0.0] * len(edges), [0] * len(edges)
    for tune in tunes:
        bar = 0
        for tok, lp in zip(tune.tokens, tune.logprobs, strict=True):
            if tok in BARS:
                bar += 1
            elif lp is not None and is_pitch(tok):
                k = max(i for i, e in enumerate(edges) if bar >= e) if bar >= edges[0] else 0
                sums[k] += -lp / math.log(2)
                counts[k] += 1
    rows = []
    for i, start in enumerate(edges):
        end = f"{edges[i + 1]}" if i + 1 < len(edges) else "end"
        rows.append({"bars": f"{start + 1}–{end}", "notes": counts[i],
                     "surprisal_bits": sums[i] / counts[i] if counts[i] else float("nan")})
    return rows


#: The schedules of :class:`ScheduleExplorer`: name -> how the two temperatures are used.
SCHEDULES = {
    "constant (bold)": "T = bold everywhere",
    "arc: calm · bold · calm": "bars 1–4 calm, 5–12 bold, 13 on calm",
    "dynamic (entropy)": "calm where the model is sure, bold where it is unsure",
    "warming up, bar by bar": "from calm in bar 1 to bold in bar 16, in equal steps",
}


def schedule_chain(name: str, calm: float, bold: float) -> S.Chain:
    """The chain for one of :data:`SCHEDULES` with a calm and a bold temperature."""
    if name not in SCHEDULES:
        raise ValueError(f"schedule must be one of {list(SCHEDULES)}, got {name!r}")
    if name == "constant (bold)":
        step = S.temperature(bold)
    elif name.startswith("arc"):
        step = S.temperature_by_section([(0, 4, calm), (4, 12, bold), (12, None, calm)])
    elif name.startswith("dynamic"):
        step = S.dynamic_temperature(min(calm, bold), max(calm, bold))
    else:
        step = S.temperature_by_bar([calm + (bold - calm) * b / 15 for b in range(16)])
    return S.chain(step)


class ScheduleExplorer:
    """Sliders for a calm and a bold temperature, a menu of schedules, and the tune they write
    with the temperature behind every note.

    Controls: ``schedule`` (Dropdown of :data:`SCHEDULES`), ``calm``, ``bold``, ``seed``.
    Outputs: ``plot`` (a :class:`TracePlot`), ``status`` (HTML), ``score`` (HTML: score and
    play button), ``widget``.  ``trace`` holds the last :class:`TemperatureTrace`.
    """

    def __init__(self, model: Any, *, schedule: str = "arc: calm · bold · calm",
                 calm: float = 0.6, bold: float = 1.5, seed: int = 1,
                 conditioning: Mapping[str, str] | None = None, width: int = 800):
        import ipywidgets as widgets


        self.model = model
        self.width = width
        self.conditioning = dict(conditioning or {})
        self.seconds = math.nan
        wide = {"style": {"description_width": "90px"}, "layout": widgets.Layout(width="400px")}
        self.schedule = widgets.Dropdown(options=list(SCHEDULES), value=schedule,
                                         description="schedule", **wide)
        self.calm = widgets.FloatSlider(value=calm, min=0.1, max=2.5, step=0.05,
                                        description="calm T", continuous_update=False, **wide)
        self.bold = widgets.FloatSlider(value=bold, min=0.1, max=2.5, step=0.05,
                                        description="bold T", continuous_update=False, **wide)
        self.seed = widgets.IntSlider(value=seed, min=0, max=999, description="seed",
                                      continuous_update=False, **wide)
        self.view = FigureView((12, 3.6))
        self.trace = self._trace()
        self.plot = TracePlot(self.trace, ax=self.view.fig.add_subplot())
        self.status = widgets.HTML()
        self.score = widgets.HTML()
        self.widget = widgets.VBox([
            widgets.HBox([widgets.VBox([self.schedule, self.seed]),
                          widgets.VBox([self.calm, self.bold])]),
            self.status, self.view.widget, self.score])
        for w in (self.schedule, self.calm, self.bold, self.seed):
            w.observe(lambda _: self.update(), names="value")
        self.update(trace=self.trace)

    def _trace(self) -> TemperatureTrace:
        from toolkit.lm.threads import one_thread

        chain = schedule_chain(self.schedule.value, self.calm.value, self.bold.value)
        with one_thread():
            return trace_temperature(self.model, chain, n=1, seed=int(self.seed.value),
                                     **self.conditioning)

    def update(self, trace: TemperatureTrace | None = None) -> None:
        """Write the tune the controls describe and show it (errors go to the status line)."""
        from toolkit.lessons.studio import tune_html
        from toolkit.music.check import check_tokens

        t0 = time.perf_counter()
        try:
            self.trace = trace or self._trace()
            self.plot.title = f"{self.schedule.value}: {SCHEDULES[self.schedule.value]}"
            self.plot.update(self.trace, draw=False)
            self.view.refresh()
            tune = self.trace.tunes[0]
            self.score.value = tune_html(tune, width=self.width)
            self.seconds = time.perf_counter() - t0
            temps = self.trace.notes(0)["temperature"]
            v = check_tokens(tune.tokens)
            span = f"{temps.min():.2f}–{temps.max():.2f}" if len(temps) else "–"
            self.status.value = status_html(
                "✅", f"{len(temps)} notes, temperature {span}, "
                f"{'every bar complete' if v.bars_ok else f'{len(v.bad_bars)} bar(s) off'}"
                f" — {self.seconds:.2f} s", "#161")
        except Exception as err:  # noqa: BLE001 -- whatever a student picks, the kernel lives
            self.status.value = status_html("⚠️", f"{type(err).__name__}: {err}", "#b22")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

