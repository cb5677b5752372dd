"""The rating studio's logic, without widgets: show a tune, log what the listener does, learn,
steer.  The studio of notebook 10 (:class:`toolkit.lessons.rating_studio.RatingStudio`) is
buttons over exactly this, and so are the simulated listeners that measure it
(:mod:`toolkit.measure.listeners`).

>>> import tempfile, pathlib
>>> from toolkit import load_model
>>> session = RatingSession(load_model(), pathlib.Path(tempfile.mkdtemp()) / "me.jsonl")
>>> tune = session.write(temperature=0.8, mode="min", seed=3)   # 3 settings moved, 1 tune
>>> _ = session.rate(+1)
>>> [e["type"] for e in session.events()]
['settings', 'settings', 'settings', 'tune', 'rate']
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from toolkit.measure.interactions import EventLog, Events, read_events
from toolkit.measure.preferences import KNOB_DEFAULTS, Preferences

__all__ = ["RatingSession", "DEFAULTS"]

#: The settings a session starts from (the studio's defaults) and logs changes of.
DEFAULTS: dict[str, Any] = {**KNOB_DEFAULTS, "seed": 1, "meter": None, "mode": None,
                            "style": None, "grammar": False}


def _check_known(settings: Mapping[str, Any]) -> None:
    unknown = sorted(set(settings) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown setting {unknown[0]!r}; known: {', '.join(DEFAULTS)}")


class RatingSession:
    """One listener's session: the current settings and tune, the log, the preference models.

    ``log`` is a JSONL file (appended to; :class:`EventLog` makes it and its folder).
    Every method that changes something writes one event first.
    """

    def __init__(self, model: Any, log: str | os.PathLike | EventLog, *,
                 session: str | None = None, settings: Mapping[str, Any] | None = None):
        self.model = model
        self.log = log if isinstance(log, EventLog) else EventLog(log, session=session)
        self.settings: dict[str, Any] = {**DEFAULTS, **(settings or {})}
        self.tune: Any = None
        self.tune_id: str | None = None
        self.prefs: Preferences | None = None

    # -- what the listener does ----------------------------------------------------------
    def change(self, **settings: Any) -> None:
        """Move controls: each value that differs is logged with its old and new value."""
        _check_known(settings)
        for name, new in settings.items():
            old = self.settings.get(name)
            if new != old:
                self.log.settings(name, old, new)
                self.settings[name] = new

    def write(self, **settings: Any) -> Any:
        """Move the controls given, write the tune the settings describe and show it (a bad
        value raises ValueError naming it, and nothing is logged)."""
        from toolkit.lm import sampling as S
        from toolkit.lm.generation import generate
        from toolkit.lm.threads import one_thread

        _check_known(settings)
        s = {**self.settings, **settings}
        chain = S.temperature_first(temperature=s["temperature"], top_k=s["top_k"],
                                    top_p=s["top_p"], min_p=s["min_p"])
        with one_thread():  # written before anything is logged: a bad value is never logged
            tune = generate(self.model, n=1, seed=s["seed"], meter=s["meter"], mode=s["mode"],
                            style=s["style"], sampler=chain,
                            constrain="grammar" if s["grammar"] else None)[0]
        self.change(**settings)
        self.show(tune)
        return tune

    def show(self, tune: Any, settings: Mapping[str, Any] | None = None, *,
             steered: bool = False) -> str:
        """Log a tune that is now shown (written elsewhere: the studio, or steering). A tune
        written with the controls gets their sampler knobs in its own ``settings`` too."""
        s = {**self.settings, **(settings or {})}
        if steered:  # what steering used, not the controls: its chain, conditioning and pick
            s.update({k: tune.settings[k] for k in ("temperature", "top_k", "top_p", "min_p",
                                                    "seed", "meter", "mode", "style", "prefs")
                      if k in tune.settings})
        else:
            tune.settings.update({k: s[k] for k in KNOB_DEFAULTS})
        self.tune, self.tune_id = tune, self.log.tune(tune.tokens, s, steered=steered)
        return self.tune_id

    def _current(self) -> str:
        if self.tune_id is None:
            raise ValueError("no tune yet: write one first (session.write(...))")
        return self.tune_id

    def play(self) -> dict:
        return self.log.play(self._current())

    def rate(self, rating: int, *, stars: bool = False) -> dict:
        """Rate the current tune: +1 / -1, or 1-5 with ``stars=True``."""
        return self.log.rate(self._current(), rating, stars=stars)

    def keep(self) -> dict:
        return self.log.keep(self._current())

    def skip(self) -> dict:
        return self.log.skip(self._current())

    # -- learning and steering -----------------------------------------------------------
    def events(self) -> Events:
        """Everything this session's log file holds."""
        return read_events(self.log.path) if self.log.path.exists() else Events()

    def learn(self, source: str | os.PathLike | None = None, **fit: Any) -> Preferences:
        """Fit the preference models on this log, or on ``source`` (a file, or a class's
        folder of logs), and use them from now on."""
        events = read_events(source) if source is not None else self.events()
        self.prefs = Preferences.fit(events, self.model, **fit)
        return self.prefs

    def steered(self, n: int = 1, **options: Any) -> list:
        """``n`` tunes steered by the learned models (:meth:`Preferences.generate`); the first
        is shown and logged. Before :meth:`learn`, a ValueError says so."""
        if self.prefs is None:
            raise ValueError("nothing learned yet: call session.learn() after a few ratings")
        options.setdefault("seed", self.settings["seed"])
        tunes = self.prefs.generate(self.model, n, **options)
        self.show(tunes[0], steered=True)
        return tunes

    def suggest(self) -> dict[str, Any]:
        """Settings the history model suggests ({} before learning, or when it is not sure)."""
        return self.prefs.suggest() if self.prefs is not None else {}

    def __repr__(self) -> str:
        return f"RatingSession({str(Path(self.log.path))!r}, {self.prefs!r})"
