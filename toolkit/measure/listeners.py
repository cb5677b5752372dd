"""Simulated listeners: scripted raters with hidden tastes, and the learning curve they give.

A :class:`Listener` knows, for a tune and the settings that wrote it, the probability that it
likes the tune (``p_like``); rating draws from that probability, so a listener is as noisy as a
person. :func:`learning_curve` runs one through :class:`toolkit.measure.rating.RatingSession` --
the studio's own logic -- and measures, after 0, 5, 10, 20 and 40 ratings, the share of tunes it
likes in a fresh batch: unsteered (the studio's exploration: settings as a student moving the
controls at random would pick), steered by the preference models learned so far, and steered by
models learned from the same log with its ratings shuffled (random steering).

``python benchmarks/preferences.py`` writes ``benchmarks/results/preferences.md`` from it.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.measure.interactions import Events
from toolkit.measure.metrics import distinct_n, tune_metrics
from toolkit.measure.preferences import Preferences
from toolkit.measure.rating import RatingSession
from toolkit.music.tokens import conditioning_of

__all__ = ["Listener", "LISTENERS", "HELD_OUT", "explore_settings", "exploring_batch",
           "learning_curve",
           "shuffled", "CHECKPOINTS"]

CHECKPOINTS = (0, 5, 10, 20, 40)


@dataclass(frozen=True)
class Listener:
    """A scripted rater: ``taste(tokens, settings, n_rated) -> P(like)``.

    ``expressible`` says whether the preference models' features can express the taste at all
    (the conditioning, the settings and the metrics); ``ceiling`` is the highest P(like) the
    taste gives (no steering can beat it); ``n_rated`` is how many tunes it rated before this
    one (a taste may change with it).
    """

    name: str
    description: str
    taste: Callable[[Sequence[str], Mapping[str, Any], int], float]
    expressible: bool = True
    ceiling: float = 0.9            # the highest P(like) its taste gives any tune

    def p_like(self, tune: Any, n_rated: int = 0) -> float:
        return float(self.taste(tune.tokens, tune.settings, n_rated))

    def likes(self, tune: Any, rng: np.random.Generator, n_rated: int = 0) -> bool:
        """One rating: True with probability ``p_like``."""
        return bool(rng.random() < self.p_like(tune, n_rated))

    def __repr__(self) -> str:
        return f"Listener({self.name!r})"


def _mode(tokens):
    return conditioning_of(tokens)["mode"]


def _meter(tokens):
    return conditioning_of(tokens)["meter"]


def _minor_jigs(tokens, settings, n):
    minor, jig = _mode(tokens) in ("min", "dor"), _meter(tokens) == "6/8"
    return 0.95 if minor and jig else 0.7 if minor else 0.3 if jig else 0.03


def _repeats(tokens, settings, n):
    m = tune_metrics(tokens)
    if m["repeats_a_section"] or m["repeated_bars"] >= 0.15:
        return 0.9
    return 0.5 if m["repeated_bars"] >= 0.05 else 0.05


def _calm(tokens, settings, n):
    t = float(settings.get("temperature", 1.0))
    return 0.9 if t <= 0.8 else 0.5 if t <= 1.3 else 0.02


def _changes_mind(tokens, settings, n):
    if n < 20:
        return 0.9 if _meter(tokens) == "3/4" else 0.05
    return 0.9 if _mode(tokens) in ("min", "dor") else 0.05


def _celtic_in_scale(tokens, settings, n):
    style = conditioning_of(tokens)["style"]
    ok = style in ("irish", "scottish") and tune_metrics(tokens)["scale_consistency"] >= 0.95
    return 0.9 if ok else 0.1


def _hash_taste(tokens, settings, n):
    body = " ".join(tokens[4:])
    return 0.9 if int(hashlib.sha1(body.encode()).hexdigest(), 16) % 5 == 0 else 0.05


#: The raters the models were developed with.
LISTENERS = [
    Listener("minor jigs", "likes minor and dorian tunes, jigs (6/8) in them best: P = 0.95 for "
             "a minor or dorian jig, 0.7 for other minor or dorian tunes, 0.3 for other jigs, "
             "0.03 otherwise", _minor_jigs, ceiling=0.95),
    Listener("repeated phrases", "likes tunes that repeat themselves: P = 0.9 when a section is "
             "played twice or 15 % of bars repeat an earlier bar, 0.5 from 5 %, else 0.05",
             _repeats),
    Listener("calm", "dislikes anything above T = 1.3 and likes the calmest best: P = 0.9 at "
             "T ≤ 0.8, 0.5 at T ≤ 1.3, 0.02 above", _calm),
    Listener("changes taste", "likes waltz-time tunes (3/4) for its first 20 ratings (P = 0.9, "
             "else 0.05), then minor and dorian tunes instead", _changes_mind),
    Listener("one in five", "likes about one tune in five, chosen by a hash of its notes: no "
             "feature can express it (the control)", _hash_taste, expressible=False),
]
#: A rater written after the models were settled, and never used to tune them.
HELD_OUT = Listener("celtic in scale", "likes Irish and Scottish tunes that stay in one scale "
                    "(scale consistency ≥ 0.95): P = 0.9, else 0.1", _celtic_in_scale)


def explore_settings(model: Any, rng: np.random.Generator) -> dict[str, Any]:
    """Settings as a student exploring the studio might pick: temperature uniform in
    [0.3, 2.5]; meter, mode and style each left to the model half of the time, else one of the
    values it knows, uniformly; a fresh seed."""
    def menu(slot: str) -> str | None:
        return None if rng.random() < 0.5 else str(rng.choice(model.choices(slot)))

    return {"temperature": round(float(rng.uniform(0.3, 2.5)), 2), "meter": menu("meter"),
            "mode": menu("mode"), "style": menu("style"), "seed": int(rng.integers(0, 1000))}


def shuffled(events: Sequence[dict], seed: int = 0) -> Events:
    """The same events with the ratings of the rate events permuted among them (what random
    steering learns from: the same tunes, the same number of likes, no taste)."""
    rng = np.random.default_rng(seed)
    rate = [i for i, e in enumerate(events) if e["type"] == "rate"]
    values = [(events[i]["rating"], events[i].get("scale")) for i in rate]  # with its scale
    out = [dict(e) for e in events]
    for i, j in zip(rate, rng.permutation(len(values)), strict=True):
        rating, scale = values[j]
        out[i]["rating"] = rating
        out[i].pop("scale", None)
        if scale is not None:
            out[i]["scale"] = scale
    return Events(out)


def exploring_batch(model: Any, n: int, seed: int = 0) -> list:
    """``n`` unsteered tunes: each written by a :class:`RatingSession` from
    :func:`explore_settings` (seeded), as a student moving the controls at random hears them."""
    rng = np.random.default_rng(seed)
    session = RatingSession(model, Path(tempfile.mkdtemp()) / "unsteered.jsonl")
    return [session.write(**explore_settings(model, rng)) for _ in range(n)]


def learning_curve(model: Any, listener: Listener, *, checkpoints: Sequence[int] = CHECKPOINTS,
                   batch: int = 32, N: int = 8, seed: int = 0, folder: str | Path | None = None,
                   progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The share of a batch the listener likes after each number of ratings in ``checkpoints``.

    The log is ``folder/<listener>_seed<seed>.jsonl`` (a temporary folder by default); a log of
    that name is replaced, so every call starts a fresh history.

    Rating phase: the listener hears tunes written from :func:`explore_settings` through a
    :class:`RatingSession` (every control it moves and every tune is logged) and rates each one
    (a draw from its taste). At each checkpoint the preference models are fitted on the log, and
    three batches of ``batch`` tunes are judged by the listener's expected liking (its
    ``p_like``, averaged): ``unsteered`` (exploration settings), ``steered``
    (:meth:`Preferences.generate`, best of ``N``) and ``random`` (models fitted on the log with
    its ratings shuffled). Also recorded: distinct 4-grams of each batch (diversity), the
    number of distinct (meter, mode, style) headers, and the seconds each fit took.
    """
    rng = np.random.default_rng(seed)
    folder = Path(folder or tempfile.mkdtemp())
    log = folder / f"{listener.name.replace(' ', '_')}_seed{seed}.jsonl"
    log.unlink(missing_ok=True)                 # a fresh history, never an earlier run's
    session = RatingSession(model, log, session=f"sim{seed}")
    eval_seed = 10_000 + seed
    unsteered = exploring_batch(model, batch, eval_seed)   # one batch, judged at each checkpoint
    rows, given, events = [], 0, []
    for k in sorted(checkpoints):
        while given < k:
            tune = session.write(**explore_settings(model, rng))
            session.play()
            session.rate(+1 if listener.likes(tune, rng, given) else -1)
            given += 1
        events = session.events()
        t0 = time.perf_counter()
        prefs = Preferences.fit(events, model, seed=seed)
        fit_seconds = time.perf_counter() - t0
        fake = Preferences.fit(shuffled(events, seed), model, seed=seed)
        batches = {
            "unsteered": unsteered,
            "steered": prefs.generate(model, batch, N=N, seed=eval_seed),
            "random": fake.generate(model, batch, N=N, seed=eval_seed),
        }
        row: dict[str, Any] = {"ratings": k, "liked_in_log": prefs.reward.n_liked,
                               "ready": prefs.ready, "events": len(events),
                               "fit_seconds": round(fit_seconds, 3)}
        for name, tunes in batches.items():
            row[name] = float(np.mean([listener.p_like(t, k) for t in tunes]))
            row[f"{name}_distinct4"] = distinct_n([t.tokens for t in tunes], 4)
            row[f"{name}_headers"] = len({tuple(t.tokens[1:4]) for t in tunes})
        rows.append(row)
        if progress is not None:
            progress(f"{listener.name}: {k} ratings, liked unsteered {row['unsteered']:.2f} "
                     f"steered {row['steered']:.2f} random {row['random']:.2f}")
    return {"listener": listener.name, "description": listener.description,
            "expressible": listener.expressible, "ceiling": listener.ceiling, "batch": batch,
            "N": N, "seed": seed,
            "log": str(session.log.path), "rows": rows, "events": len(events)}
