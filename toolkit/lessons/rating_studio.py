"""The rating studio: the tune studio with 👍 / 👎, keep and skip, a log, and steering learned
from them (notebook 10).

In a notebook::

    from toolkit import load_model
    from toolkit.lessons.rating_studio import RatingStudio
    studio = RatingStudio(load_model(), log="my_ratings.jsonl")
    studio                  # the tune studio, a rating bar, the prediction, the steering buttons

Every control moved, every tune shown, every ▶ play, rating, keep and skip is appended to the
log (:mod:`toolkit.measure.interactions` documents the schema). "🧠 learn" fits the two
preference models on it (:class:`toolkit.measure.preferences.Preferences`), the bars show what
the history model expects you to like next, "apply suggestion" moves the menus and the
temperature slider to it, and "🎯 one for me" writes a tune steered by both models (best of
``N``). The buttons are attributes (``studio.like.click()``), so a scripted listener or a test
can drive the studio the way a student's mouse does: :meth:`RatingStudio.rate_with`.

All the logic lives in :class:`toolkit.measure.rating.RatingSession` (``studio.session``);
this module only wires buttons to it. Nothing a student does kills the kernel: errors go to the
status line.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from toolkit.lessons import plots
from toolkit.lessons.studio import Settings, TuneStudio
from toolkit.lessons.views import FigureView, status_html
from toolkit.lm import heap
from toolkit.measure.interactions import judgements
from toolkit.measure.preferences import MIN_LIKED, MIN_RATINGS, SLOTS, Preferences
from toolkit.measure.rating import DEFAULTS, RatingSession

__all__ = ["RatingStudio"]


def _logged(settings: Settings) -> dict[str, Any]:
    """The studio settings a log records (the JSON-able ones)."""
    d = dataclasses.asdict(settings)
    return {k: d[k] for k in DEFAULTS}


class RatingStudio:
    """The tune studio with a rating bar, a log and steering learned from the ratings.

    Attributes: ``studio`` (the :class:`TuneStudio`: sliders, menus, score), ``session`` (the
    :class:`RatingSession`: log and models), buttons ``like``, ``dislike``, ``keep``, ``skip``,
    ``play``, ``learn``, ``apply``, ``steer``; ``info`` (what has been learned, and how sure it
    is), ``plot`` (the prediction's :class:`toolkit.lessons.plots.PredictionPlot`) and
    ``widget`` (the whole app).
    """

    def __init__(self, model: Any, log: str | os.PathLike = "my_ratings.jsonl", *,
                 settings: Settings | Mapping[str, Any] | None = None, N: int = 8,
                 session: str | None = None, width: int = 800):
        import ipywidgets as widgets

        if isinstance(N, bool) or not isinstance(N, int) or N < 1:
            raise ValueError(f"N (candidates per steered tune) must be an integer >= 1, "
                             f"got {N!r}")
        self.N = N
        self.session = RatingSession(model, log, session=session)
        button = {"layout": widgets.Layout(width="auto")}
        self.like = widgets.Button(description="👍 like", button_style="success", **button)
        self.dislike = widgets.Button(description="👎 not for me", button_style="danger",
                                      **button)
        self.keep = widgets.Button(description="keep", icon="bookmark", **button)
        self.skip = widgets.Button(description="skip", icon="forward", **button)
        self.play = widgets.Button(description="▶ play", **button)
        self.learn = widgets.Button(description="🧠 learn from my ratings",
                                    button_style="info", **button)
        self.apply = widgets.Button(description="apply suggestion", disabled=True, **button)
        self.steer = widgets.Button(description=f"🎯 one for me (best of {N})",
                                    button_style="warning", disabled=True, **button)
        self.player = widgets.HTML()
        self.info = widgets.HTML()
        self.status = widgets.HTML()
        self.view = FigureView((11, 3.6))
        axes = self.view.fig.subplots(1, len(SLOTS))
        choices = {s: model.choices(s) for s in SLOTS}
        self.plot = plots.PredictionPlot(axes, choices, {s: None for s in SLOTS},
                                         title="what you will like next: not learned yet")
        self.view.refresh()
        # the last judgement of each (session, tune); a log that already holds ratings counts
        self._judged = {(j.session, j.tune): j.liked for j in judgements(self.session.events())}

        # the tune studio; every tune it writes is logged with the controls that wrote it
        self.studio = TuneStudio(model, settings, width=width)
        self.studio.on_tune.append(self._tune_written)
        if self.studio.tune is not None:
            self._tune_written(self.studio.tune, self.studio.settings)

        for b, f in ((self.like, lambda: self._judge("rate", +1)),
                     (self.dislike, lambda: self._judge("rate", -1)),
                     (self.keep, lambda: self._judge("keep")),
                     (self.skip, lambda: self._judge("skip")),
                     (self.play, self._play), (self.learn, self.fit),
                     (self.apply, self.apply_suggestion), (self.steer, self.one_for_me)):
            b.on_click(lambda _, f=f: self._safely(f))
        bar = widgets.HBox([self.like, self.dislike, self.keep, self.skip, self.play])
        learn = widgets.HBox([self.learn, self.apply, self.steer])
        self.widget = widgets.VBox([self.studio.widget, bar, self.player, self.status,
                                    learn, self.info, self.view.widget])
        self._say_info()

    # -- wiring ------------------------------------------------------------------------
    def _safely(self, f) -> None:
        try:
            f()
        except Exception as err:  # noqa: BLE001 -- whatever a student clicks, the kernel lives
            self.status.value = status_html("⚠️", f"{type(err).__name__}: {err}", "#b22")
        finally:
            heap.release()  # a click is not a cell: give what it used back to the system

    def _tune_written(self, tune: Any, settings: Settings) -> None:
        self.session.change(**_logged(settings))
        self.session.show(tune)
        self.player.value = ""

    def _judge(self, kind: str, rating: int | None = None) -> None:
        if self.studio.tune is not self.session.tune:
            raise ValueError("the tune on screen was not logged (see the status line above); "
                             "write a new one (move the seed) before judging")
        if kind == "rate":
            self.session.rate(rating)
        else:
            getattr(self.session, kind)()
        liked = kind == "keep" or (kind == "rate" and rating > 0)
        key = (self.session.log.session, self.session.tune_id)
        self._judged.pop(key, None)                 # judged again: the last judgement counts
        self._judged[key] = liked
        word = {"rate": "liked" if liked else "not for you", "keep": "kept",
                "skip": "skipped"}[kind]
        self.status.value = status_html("📝", f"Tune {self.session.tune_id}: {word}. "
                                        f"{self.ratings} judged, {self.liked} liked — logged "
                                        f"to {self.session.log.path}", "#155")
        self._say_info()
        if self.advance:
            self.next_tune()

    @property
    def ratings(self) -> int:
        """Tunes judged, as the log says (a tune judged twice counts once)."""
        return len(self._judged)

    @property
    def liked(self) -> int:
        """Of those, the tunes whose last judgement was a like (or a keep)."""
        return sum(self._judged.values())

    def _play(self) -> None:
        tune = self.studio.tune
        if tune is None:
            raise ValueError("no tune to play yet")
        self.session.play()
        data = base64.b64encode(tune.wav(repeats=False)).decode("ascii")
        self.player.value = f'<audio autoplay controls src="data:audio/wav;base64,{data}"></audio>'

    def _say_info(self) -> None:
        prefs = self.session.prefs
        if prefs is None:
            need = max(0, MIN_RATINGS - self.ratings)
            text = (f"Nothing learned yet. {self.ratings} tunes judged, {self.liked} liked"
                    + (f": judge {need} more, then press 🧠 learn." if need else
                       ": press 🧠 learn."))
        else:
            r = prefs.ready
            p = prefs.prediction
            text = (f"Learned from {prefs.reward.n} judged tunes ({prefs.reward.n_liked} liked). "
                    f"Reward model: {'ready' if r['reward'] else 'not ready'} "
                    f"(needs {MIN_RATINGS} judged, likes and dislikes both). History model: "
                    + (f"sure enough ({p.n_liked} likes)" if r["history"] else
                       f"not sure yet ({p.n_liked} of {MIN_LIKED} likes)") + ".")
        self.info.value = status_html("🧠", text, "#333")

    # -- what the buttons do -----------------------------------------------------------
    #: after a judgement, write the next tune (the next seed) at once
    advance = True

    def next_tune(self) -> None:
        """The next tune to judge: the studio's settings with the next seed."""
        seed = self.studio.seed
        seed.value = (seed.value + 1) % (seed.max + 1)

    def fit(self) -> Preferences:
        """Fit both preference models on the log and show the prediction."""
        t0 = time.perf_counter()
        prefs = self.session.learn()
        seconds = time.perf_counter() - t0
        p = prefs.prediction
        title = (f"what you will like next (T ≈ {p.temperature:.2f}, from {p.n_liked} likes)"
                 if p.sure else f"not sure yet: {p.n_liked} of {MIN_LIKED} likes")
        self.plot.update({s: getattr(p, s) for s in SLOTS}, title=title, draw=False)
        self.view.refresh()
        self.apply.disabled = not p.sure
        self.steer.disabled = False
        self._say_info()
        self.status.value = status_html("🧠", f"Learned in {seconds:.1f} s: {prefs!r}", "#155")
        return prefs

    def apply_suggestion(self) -> dict[str, Any]:
        """Move the menus and the temperature slider to the history model's suggestion."""
        suggestion = self.session.suggest()
        if not suggestion:
            raise ValueError("no suggestion yet: learn from a few more likes first")
        self.studio.set(**suggestion)
        return suggestion

    def one_for_me(self) -> Any:
        """Write one tune steered by both models (best of ``N``) and show it."""
        if self.session.prefs is None:
            self.fit()
        seed = int(self.studio.seed.value)
        tune = self.session.steered(1, N=self.N, seed=seed)[0]
        info = tune.settings["prefs"]
        head = " ".join(tune.tokens[1:4])
        self.studio.show_tune(tune, f"Steered for you: {head}, T {tune.settings['temperature']:g}"
                              f", P(like) {info['p_like']:.0%} — best of {info['of']} "
                              f"(steered by: {', '.join(info['steered_by']) or 'nothing yet'})")
        self.player.value = ""
        return tune

    # -- a scripted listener ------------------------------------------------------------
    def rate_with(self, listener: Any, n: int, *, seed: int = 0,
                  explore: bool = False) -> list[bool]:
        """Let a simulated listener (:class:`toolkit.measure.listeners.Listener`) judge ``n``
        tunes by clicking the buttons: ▶ play, then 👍 or 👎 (a draw from its taste), which
        moves on to the next seed. With ``explore=True`` it first moves the controls as a
        student exploring would (:func:`toolkit.measure.listeners.explore_settings`: the
        temperature, the three menus and the seed), one tune per judgement. Either way the
        studio then shows a tune nobody has judged yet. Returns its judgements."""
        from toolkit.measure.listeners import explore_settings

        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be an integer >= 0, got {n!r}")
        rng = np.random.default_rng(seed)
        out = []
        self.advance = not explore
        try:
            for _ in range(n):
                if explore:
                    self.studio.set(**explore_settings(self.session.model, rng))
                tune = self.studio.tune
                if tune is None:
                    raise ValueError("the studio has no tune to judge (see its status line)")
                liked = listener.likes(tune, rng, self.ratings)
                self.play.click()
                (self.like if liked else self.dislike).click()
                out.append(liked)
        finally:
            self.advance = True
        if explore and n:
            self.next_tune()          # as after any judgement: a fresh tune waits to be judged
        return out

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        data = self.widget._repr_mimebundle_(**kwargs)
        data["text/html"] = ("<p style='color:#555'><i>The rating studio: run the notebook to "
                             f"rate tunes ({self.ratings} judged so far).</i></p>")
        return data
