"""Two preference models learned from a listener's log, and generation steered by them.

* :class:`RewardModel` -- P(like | tune): a Bayesian logistic regression over named features
  the generator already has (the tune's conditioning, its sampler settings and its metrics:
  :func:`tune_features`). Its prior keeps it sensible from a handful of ratings, and its
  posterior says how sure it is about each tune. Recent ratings weigh more (a half-life in
  ratings), so a listener whose taste moves is followed.
* :class:`HistoryModel` -- a small LSTM over the whole event sequence (settings moved with
  their direction, tunes shown with their conditioning, plays, ratings, keeps, skips). From
  the history so far it predicts what the next tune the listener likes will be: a distribution
  over meter, mode and style, and its temperature.
* :class:`Preferences` -- both, fitted from a log in seconds on a CPU; :meth:`~Preferences.suggest`
  gives settings a studio can apply with one click, and :meth:`~Preferences.generate` writes
  steered tunes: each candidate's conditioning is drawn from the history model's mixture
  (through guidance), and the best of ``N`` candidates by the reward model is kept.

With too little data each model says so and steps aside: with fewer than ``MIN_RATINGS``
judged tunes (or only one kind of judgement) the reward model ranks nothing, and with fewer than
``MIN_LIKED`` liked tunes the history model gives no mixture -- generation is then the plain
model's.

>>> from toolkit import load_model                                      # doctest: +SKIP
>>> prefs = Preferences.fit(read_events("my_ratings.jsonl"), load_model())   # doctest: +SKIP
>>> prefs.suggest()                                                   # doctest: +SKIP
{'meter': '6/8', 'mode': 'min', 'style': 'irish', 'temperature': 0.85}
>>> tunes = prefs.generate(load_model(), n=4, seed=1)                # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from toolkit.lm.optim import Adam
from toolkit.measure.interactions import TYPES, judgements, liking, sessions
from toolkit.measure.metrics import tune_metrics
from toolkit.music.tokens import SLOTS, conditioning_of

__all__ = ["tune_features", "feature_names", "RewardModel", "HistoryModel", "Prediction",
           "Preferences", "MIN_RATINGS", "MIN_LIKED", "KNOB_DEFAULTS", "SLOTS"]

#: The reward model ranks nothing with fewer judged tunes than this (or only likes / dislikes).
MIN_RATINGS = 6
#: The history model gives no mixture with fewer liked tunes than this.
MIN_LIKED = 3
#: The history model's distributions are shrunk towards uniform by a prior worth this many likes.
PRIOR_LIKES = 2.0
#: Slider scales: a value divided by its scale lies in [0, 1] (the studio's ranges).
SCALES = {"temperature": 2.5, "top_k": 60.0, "top_p": 1.0, "min_p": 0.5}
#: What each knob is when a tune's settings do not say (the sampler's "off", and T = 1).
KNOB_DEFAULTS = {"temperature": 1.0, "top_k": 0, "top_p": 1.0, "min_p": 0.0}
#: The metrics the reward model reads, each divided by a scale that puts it near [0, 1].
METRICS = {"repeated_bars": 1.0, "repeats_a_section": 1.0, "valid": 1.0,
           "scale_consistency": 1.0, "pitch_range": 12.0, "n_notes": 100.0,
           "pitch_class_entropy": 3.585, "groove_consistency": 1.0, "empty_beat_rate": 1.0}


def feature_names(choices: Mapping[str, Sequence[str]]) -> list[str]:
    """The reward model's feature names, in order, for a model whose ``choices`` are given."""
    return ([f"{slot} {v}" for slot in SLOTS for v in choices[slot]]
            + list(SCALES) + list(METRICS))


def tune_features(tokens: Sequence[str], settings: Mapping[str, Any],
                  choices: Mapping[str, Sequence[str]]) -> np.ndarray:
    """The tune's features, in :func:`feature_names` order: one-hot conditioning (from its
    header), the sampler settings (scaled to [0, 1]) and its metrics (scaled near [0, 1])."""
    head = conditioning_of(tokens)
    onehot = [float(head[slot] == v) for slot in SLOTS for v in choices[slot]]
    values = {k: _number(settings.get(k)) for k in SCALES}
    knobs = [(KNOB_DEFAULTS[k] if values[k] is None else values[k]) / SCALES[k] for k in SCALES]
    m = tune_metrics(tokens)
    return np.array(onehot + knobs + [float(m[k]) / s for k, s in METRICS.items()])


def _choices(model: Any) -> dict[str, list[str]]:
    return {slot: list(model.choices(slot)) for slot in SLOTS}


# ---------------------------------------------------------------------------------------------
# The tune reward model
# ---------------------------------------------------------------------------------------------

class RewardModel:
    """P(like | tune) = σ(w·x + b), Bayesian logistic regression with a Gaussian prior.

    Fitted by Newton's method on the posterior (prior w ~ N(0, 1/``l2``), bias ~ N(0, 10)), each
    rating weighted by ``0.5 ** (age / half_life)`` (age in ratings, 0 for the newest). The
    Laplace approximation gives the posterior covariance Σ; a tune's predictive probability is
    σ(μ / √(1 + π s² / 8)) with μ = w·x + b and s² = xᵀΣx, pulled towards ½ where the model is
    unsure, and ``uncertainty(x)`` = s.

    With fewer than :data:`MIN_RATINGS` ratings, or only likes or only dislikes, ``ready`` is
    False and every tune gets ½: the model steps aside.
    """

    def __init__(self, names: Sequence[str], l2: float = 1.0, half_life: float = 8.0):
        if not l2 > 0:
            raise ValueError(f"l2 must be > 0, got {l2!r}")
        if not half_life > 0:
            raise ValueError(f"half_life must be > 0 (ratings), got {half_life!r}")
        self.names = list(names)
        self.l2, self.half_life = float(l2), float(half_life)
        self.w = np.zeros(len(self.names) + 1)            # last: the bias
        self.cov = np.eye(len(self.names) + 1)
        self.n, self.n_liked = 0, 0

    @property
    def ready(self) -> bool:
        """True when it has at least MIN_RATINGS ratings, of both kinds."""
        return self.n >= MIN_RATINGS and 0 < self.n_liked < self.n

    def fit(self, X: np.ndarray, liked: Sequence[bool]) -> RewardModel:
        """Fit to feature rows ``X`` (n, d), oldest first, and their judgements."""
        X = np.asarray(X, dtype=float)
        y = np.asarray(liked, dtype=float)
        if X.ndim != 2 or X.shape[1] != len(self.names) or len(X) != len(y):
            raise ValueError(f"X must be (n, {len(self.names)}) with one judgement per row, "
                             f"got {X.shape} and {len(y)}")
        self.n, self.n_liked = len(y), int(y.sum())
        if not self.ready:
            return self
        Xb = np.hstack([X, np.ones((len(X), 1))])
        c = 0.5 ** (np.arange(len(y))[::-1] / self.half_life)          # recency weights
        prior = np.full(Xb.shape[1], self.l2)
        prior[-1] = 0.1
        w = np.zeros(Xb.shape[1])
        for _ in range(50):
            p = 1 / (1 + np.exp(-(Xb @ w)))
            grad = Xb.T @ (c * (p - y)) + prior * w
            H = (Xb * (c * p * (1 - p))[:, None]).T @ Xb + np.diag(prior)
            delta = np.linalg.solve(H, grad)
            w -= delta
            if np.abs(delta).max() < 1e-8:
                break
        p = 1 / (1 + np.exp(-(Xb @ w)))
        H = (Xb * (c * p * (1 - p))[:, None]).T @ Xb + np.diag(prior)
        self.w, self.cov = w, np.linalg.inv(H)
        return self

    def _moments(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        Xb = np.hstack([np.atleast_2d(X), np.ones((len(np.atleast_2d(X)), 1))])
        return Xb @ self.w, np.einsum("nd,de,ne->n", Xb, self.cov, Xb)

    def p_like(self, X: np.ndarray) -> np.ndarray:
        """Predictive P(like) of each feature row (½ everywhere when not ``ready``)."""
        X = np.atleast_2d(np.asarray(X, dtype=float))
        if not self.ready:
            return np.full(len(X), 0.5)
        mu, var = self._moments(X)
        return 1 / (1 + np.exp(-mu / np.sqrt(1 + math.pi * var / 8)))

    def uncertainty(self, X: np.ndarray) -> np.ndarray:
        """The posterior standard deviation of each row's logit (large = unsure)."""
        return np.sqrt(self._moments(np.asarray(X, dtype=float))[1])

    def weights(self) -> dict[str, float]:
        """The learned weight of each feature, largest magnitude first (what the model likes)."""
        pairs = sorted(zip(self.names, self.w[:-1], strict=True), key=lambda kv: -abs(kv[1]))
        return {k: float(v) for k, v in pairs}

    def state(self) -> dict:
        return {"names": self.names, "l2": self.l2, "half_life": self.half_life,
                "w": self.w.tolist(), "cov": self.cov.tolist(), "n": self.n,
                "n_liked": self.n_liked}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> RewardModel:
        r = cls(state["names"], state["l2"], state["half_life"])
        r.w, r.cov = np.array(state["w"]), np.array(state["cov"])
        r.n, r.n_liked = int(state["n"]), int(state["n_liked"])
        return r


# ---------------------------------------------------------------------------------------------
# The history model
# ---------------------------------------------------------------------------------------------

_KINDS = list(TYPES)                                   # event types, in schema order
_KNOBS = list(SCALES)                                  # numeric settings, in order


@dataclass
class Prediction:
    """What the history model expects the listener to like next.

    ``meter``, ``mode``, ``style``: a distribution over the values the model knows (None when
    it is not ``sure``); ``temperature``: the expected temperature (None when not sure);
    ``n_liked``: liked tunes it learned from; ``entropy``: bits of each distribution (low = sure
    of one value).
    """

    meter: dict[str, float] | None = None
    mode: dict[str, float] | None = None
    style: dict[str, float] | None = None
    temperature: float | None = None
    n_liked: int = 0
    entropy: dict[str, float] = field(default_factory=dict)

    @property
    def sure(self) -> bool:
        return self.meter is not None

    def top(self, slot: str) -> str | None:
        """The most likely value of a slot (None when not sure)."""
        dist = getattr(self, slot)
        return max(dist, key=dist.get) if dist else None


class HistoryModel(nn.Module):
    """An LSTM over the event sequence that predicts the next liked tune's conditioning.

    Each event becomes one input vector (the concatenation of):

    * an embedding of its type (settings, tune, play, rate, keep, skip);
    * embeddings of the meter, mode and style involved -- the shown or judged tune's, or the
      new value of a moved menu (index 0: none);
    * the numeric settings (temperature, top-k, top-p, min-p) scaled to [0, 1], and for a moved
      slider the direction of the change (−1, 0, +1) for each;
    * the judgement: +1 liked, −1 disliked, 0 none.

    A one-layer LSTM (``hidden`` units) reads the sequence left to right; after each event
    three heads give logits over meter, mode and style, and a fourth the temperature (scaled),
    of the *next* tune the listener likes. Training targets come from the log itself (every
    event before a liked tune is taught that tune), so it needs no labels beyond the ratings.
    The published design this follows uses a bidirectional LSTM to embed a finished history;
    predicting what comes next needs a causal one.

    How sure it is: with ``n`` liked tunes in the history, each predicted distribution is
    ``(n·p + PRIOR_LIKES/K) / (n + PRIOR_LIKES)`` (a uniform prior worth ``PRIOR_LIKES`` likes
    over ``K`` values), so a short history predicts broadly; below ``MIN_LIKED`` likes it
    predicts nothing.
    """

    def __init__(self, choices: Mapping[str, Sequence[str]], hidden: int = 16, embed: int = 4,
                 dropout: float = 0.3):
        super().__init__()
        self.choices = {slot: list(choices[slot]) for slot in SLOTS}
        self.hidden, self.embed_dim, self.dropout_p = hidden, embed, dropout
        self.kind = nn.Embedding(len(_KINDS), embed)
        self.slots = nn.ModuleDict({s: nn.Embedding(len(v) + 1, embed)
                                    for s, v in self.choices.items()})
        width = embed * (1 + len(SLOTS)) + 2 * len(_KNOBS) + 1
        self.drop = nn.Dropout(dropout)
        self.lstm = nn.LSTM(width, hidden, batch_first=True)
        self.heads = nn.ModuleDict({s: nn.Linear(hidden, len(v)) for s, v in self.choices.items()})
        self.temperature = nn.Linear(hidden, 1)
        self.fitted = False         # True once trained on at least one liked tune it can read

    # -- events -> tensors ----------------------------------------------------------------
    def encode(self, events: Sequence[dict]) -> dict[str, torch.Tensor]:
        """One session's events as index and value tensors (batch of one, (1, T, ...))."""
        shown: dict[str, dict] = {}
        kinds, slot_ids, values = [], {s: [] for s in SLOTS}, []
        for e in events:
            if e["type"] == "tune":
                shown[e["tune"]] = e
            kinds.append(_KINDS.index(e["type"]))
            tune = shown.get(e.get("tune", ""))
            head = conditioning_of(tune["tokens"]) if tune else {s: None for s in SLOTS}
            knobs = dict(tune["settings"]) if tune else {}
            direction = [0.0] * len(_KNOBS)
            if e["type"] == "settings":
                name, new = e["name"], e["new"]
                if name in SLOTS:
                    head = {s: None for s in SLOTS} | {name: new}
                elif name in SCALES and _number(new) is not None:
                    knobs = {name: new}
                    old = _number(e["old"])
                    if old is not None:
                        direction[_KNOBS.index(name)] = float(np.sign(_number(new) - old))
            for s in SLOTS:
                v = head.get(s)
                slot_ids[s].append(self.choices[s].index(v) + 1 if v in self.choices[s] else 0)
            scaled = [(_number(knobs.get(k)) or 0.0) / SCALES[k] for k in _KNOBS]
            liked = liking(e)
            values.append(scaled + direction + [0.0 if liked is None else 1.0 if liked else -1.0])
        return {"kind": torch.tensor([kinds]), "values": torch.tensor([values]).float(),
                **{s: torch.tensor([ids]) for s, ids in slot_ids.items()}}

    def _targets(self, events: Sequence[dict]) -> dict[str, torch.Tensor]:
        """For each event, the next liked tune's slot indices (-1: none) and temperature."""
        shown: dict[str, dict] = {}
        final = {j.tune: j.liked for j in judgements(events)}   # the last judgement counts
        liked_at: list[tuple[int, dict]] = []
        for i, e in enumerate(events):
            if e["type"] == "tune":
                shown[e["tune"]] = e
            if liking(e) and final.get(e["tune"]) and e["tune"] in shown:
                liked_at.append((i, shown[e["tune"]]))
        T = len(events)
        out = {s: torch.full((T,), -1) for s in SLOTS}
        temp = torch.full((T,), float("nan"))
        j = 0
        for i in range(T):
            while j < len(liked_at) and liked_at[j][0] <= i:
                j += 1
            if j == len(liked_at):
                break
            tune = liked_at[j][1]
            head = conditioning_of(tune["tokens"])
            for s in SLOTS:
                if head[s] in self.choices[s]:
                    out[s][i] = self.choices[s].index(head[s])
            t = _number(tune["settings"].get("temperature"))
            temp[i] = (KNOB_DEFAULTS["temperature"] if t is None else t) / SCALES["temperature"]
        return {**out, "temperature": temp}

    def forward(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = torch.cat([self.kind(batch["kind"]), *(self.slots[s](batch[s]) for s in SLOTS),
                       batch["values"]], -1)                               # (1, T, width)
        h, _ = self.lstm(self.drop(x))                                     # (1, T, hidden)
        return {**{s: self.heads[s](h) for s in SLOTS},
                "temperature": torch.sigmoid(self.temperature(h))[..., 0]}

    def fit(self, histories: Sequence[Sequence[dict]], steps: int = 100, lr: float = 0.02,
            weight_decay: float = 1e-2, seed: int = 0) -> list[float]:
        """Train on each session's events (a few seconds on a CPU); return the losses."""
        data = [(self.encode(h), self._targets(h)) for h in histories if h]
        data = [(x, y) for x, y in data if any(bool((y[s] >= 0).any()) for s in SLOTS)]
        losses: list[float] = []
        self.fitted = bool(data)
        if not data:
            return losses
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            for p in self.parameters():   # the same start for the same seed
                if p.dim() > 1:
                    nn.init.xavier_uniform_(p)
                else:
                    nn.init.zeros_(p)
            opt = Adam(self.parameters(), lr=lr, weight_decay=weight_decay)
            self.train()
            for _ in range(steps):
                self.zero_grad()
                loss = torch.zeros(())
                for x, y in data:
                    out = self(x)
                    for s in SLOTS:
                        keep = y[s] >= 0
                        if keep.any():
                            loss = loss + nn.functional.cross_entropy(out[s][0][keep], y[s][keep])
                    keep = ~torch.isnan(y["temperature"])
                    if keep.any():
                        loss = loss + 10 * nn.functional.mse_loss(
                            out["temperature"][0][keep], y["temperature"][keep])
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()) / len(data))
            self.eval()
        return losses

    @torch.no_grad()
    def predict(self, events: Sequence[dict]) -> Prediction:
        """What the listener will want next, after ``events`` (one session's, in order)."""
        n_liked = sum(1 for j in judgements(events) if j.liked)
        if n_liked < MIN_LIKED or not events or not self.fitted:
            return Prediction(n_liked=n_liked)
        self.eval()
        out = self(self.encode(events))
        dists, entropy = {}, {}
        for s in SLOTS:  # shrunk towards uniform by a prior worth PRIOR_LIKES liked tunes
            p = torch.softmax(out[s][0, -1].double(), -1)
            p = (n_liked * p + PRIOR_LIKES / len(p)) / (n_liked + PRIOR_LIKES)
            dists[s] = {v: float(q) for v, q in zip(self.choices[s], p, strict=True)}
            entropy[s] = float(-(p * torch.log2(p.clamp_min(1e-12))).sum())
        temp = float(out["temperature"][0, -1]) * SCALES["temperature"]
        return Prediction(**dists, temperature=round(temp, 3), n_liked=n_liked, entropy=entropy)

    def config(self) -> dict:
        return {"choices": self.choices, "hidden": self.hidden, "embed": self.embed_dim,
                "dropout": self.dropout_p, "fitted": self.fitted}


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


# ---------------------------------------------------------------------------------------------
# Both, fitted from a log, and the steering
# ---------------------------------------------------------------------------------------------

class Preferences:
    """The reward model and the history model of one listener (or one class), fitted from a
    log; the history model's ``prediction`` is for the session whose last event is the most
    recent."""

    def __init__(self, reward: RewardModel, history: HistoryModel, prediction: Prediction,
                 n_events: int = 0):
        self.reward, self.history, self.prediction = reward, history, prediction
        self.n_events = n_events

    @classmethod
    def fit(cls, events: Sequence[dict], model: Any, *, seed: int = 0, steps: int = 100,
            half_life: float = 8.0) -> Preferences:
        """Fit both models to ``events`` (from :func:`read_events`) for ``model``'s vocabulary."""
        choices = _choices(model)
        judged = judgements(events)
        reward = RewardModel(feature_names(choices), half_life=half_life)
        if judged:
            reward.fit(np.stack([tune_features(j.tokens, j.settings, choices) for j in judged]),
                       [j.liked for j in judged])
        history = HistoryModel(choices)
        by_session = sessions(events)
        history.fit(list(by_session.values()), steps=steps, seed=seed)
        latest = max(by_session.values(), key=lambda evs: str(evs[-1]["time"]), default=[])
        return cls(reward, history, history.predict(latest), len(events))

    # -- what it says ---------------------------------------------------------------------
    @property
    def ready(self) -> dict[str, bool]:
        """Which model has enough data to steer: ``{"reward": .., "history": ..}``."""
        return {"reward": self.reward.ready, "history": self.prediction.sure}

    def suggest(self) -> dict[str, Any]:
        """Settings to apply with one click: the most likely meter, mode and style and the
        expected temperature ({} when the history model is not sure yet)."""
        p = self.prediction
        if not p.sure:
            return {}
        return {**{s: p.top(s) for s in SLOTS}, "temperature": round(p.temperature or 1.0, 2)}

    def p_like(self, tunes: Sequence[Any]) -> np.ndarray:
        """The reward model's P(like) of each tune (½ each when it is not ready)."""
        if not tunes:
            return np.zeros(0)
        X = np.stack([tune_features(t.tokens, t.settings, self.history.choices)
                      for t in tunes])
        return self.reward.p_like(X)

    def mixture(self, explore: float = 0.1) -> dict[str, dict[str, float] | None]:
        """The conditioning mixtures steered generation draws from: the history model's
        distributions mixed with the uniform one (weight ``explore``: room to find new likes).
        When the history model is not sure: the uniform mixture if the reward model is ready
        (a wide net of candidates for it to choose from), else None (the plain model's choice)."""
        if not 0 <= explore <= 1:
            raise ValueError(f"explore must be in [0, 1], got {explore!r}")
        p = self.prediction
        if not p.sure:  # no prediction: the plain model's choice, or a wide net for the reward
            return {s: ({v: 1.0 for v in self.history.choices[s]} if self.reward.ready else None)
                    for s in SLOTS}
        out = {}
        for s in SLOTS:
            dist = getattr(p, s)
            u = 1 / len(dist)
            out[s] = {v: (1 - explore) * q + explore * u for v, q in dist.items()}
        return out

    def generate(self, model: Any, n: int = 1, *, N: int = 8, seed: int | None = None,
                 guidance: float = 1.5, explore: float = 0.1, max_tokens: int = 256,
                 temperature: float | None = None, top_p: float = 1.0, key: str = "D") -> list:
        """``n`` tunes steered by both models: ``N`` candidates each, whose meter, mode and style
        are drawn from :meth:`mixture` (with classifier-free ``guidance`` towards the style) at the
        expected temperature, and the candidate the reward model likes best is kept.

        A model that is not ready steps aside: no mixture (the model chooses), temperature 1 (or
        ``temperature``), and one candidate per tune instead of the best of ``N``. Each tune's
        ``settings["prefs"]`` records its P(like), its rank among the candidates and what
        steered it.
        """
        from toolkit.lm import sampling as S
        from toolkit.lm.generation import generate

        for name, value in (("n", n), ("N", N)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not self.reward.ready:
            N = 1                   # nothing to rank by: one candidate per tune is enough
        if n * N > 4096:
            raise ValueError(f"n × N must be at most 4096 tunes per batch, got {n} × {N}")
        mix = self.mixture(explore)
        t = temperature if temperature is not None else (self.prediction.temperature or 1.0)
        style = mix["style"]
        candidates = generate(model, n=n * N, seed=seed, meter=mix["meter"], mode=mix["mode"],
                              style=style, guidance=guidance if style else None,
                              max_tokens=max_tokens, key=key,
                              sampler=S.temperature_first(temperature=t, top_p=top_p))
        for c in candidates:
            c.settings.update(temperature=t, top_p=top_p, top_k=0, min_p=0.0)
        scores = self.p_like(candidates) if self.reward.ready else np.full(len(candidates), .5)
        steered_by = [k for k, v in self.ready.items() if v]
        out = []
        for i in range(n):  # N = 1 when the reward model is not ready: nothing to choose
            best = max(range(i * N, (i + 1) * N), key=lambda j: scores[j])
            tune = candidates[best]
            tune.settings["prefs"] = {"p_like": round(float(scores[best]), 4), "rank": 1,
                                      "of": N, "steered_by": steered_by}
            out.append(tune)
        return out

    # -- files --------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write both models to one JSON file (no pickle)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        p = self.prediction
        state = {"format": "folk-sampler-preferences", "version": 1,
                 "reward": self.reward.state(),
                 "history": {"config": self.history.config(),
                             "weights": {k: v.tolist()
                                         for k, v in self.history.state_dict().items()}},
                 "prediction": {"meter": p.meter, "mode": p.mode, "style": p.style,
                                "temperature": p.temperature, "n_liked": p.n_liked,
                                "entropy": p.entropy},
                 "n_events": self.n_events}
        path.write_text(json.dumps(state))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Preferences:
        """Read a file written by :meth:`save` (a clear ValueError for anything else)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no preferences file at {str(path)!r} (make one with "
                                    f"`python -m toolkit prefs train LOGDIR`)")
        try:
            state = json.loads(path.read_text())
            if not isinstance(state, dict) or state.get("format") != "folk-sampler-preferences":
                raise ValueError("not a preferences file")
            cfg = state["history"]["config"]
            history = HistoryModel(cfg["choices"], cfg["hidden"], cfg["embed"], cfg["dropout"])
            history.load_state_dict({k: torch.tensor(v)
                                     for k, v in state["history"]["weights"].items()})
            history.fitted = bool(cfg.get("fitted", True))
            history.eval()
            reward = RewardModel.from_state(state["reward"])
            prediction = Prediction(**state["prediction"])
        except (ValueError, KeyError, TypeError, AttributeError, RuntimeError) as err:
            raise ValueError(f"{str(path)!r} is not a preferences file written by "
                             f"Preferences.save ({type(err).__name__}: {err})") from None
        return cls(reward, history, prediction, int(state.get("n_events", 0)))

    def check_model(self, model: Any) -> None:
        """A ValueError when ``model`` knows other meters, modes or styles than these models."""
        mine = _choices(model)
        for slot in SLOTS:
            if mine[slot] != self.history.choices[slot]:
                raise ValueError(f"these preferences were learned for a model whose {slot} "
                                 f"values are {self.history.choices[slot]}; this model knows "
                                 f"{mine[slot]}: fit them again for this model")

    def __repr__(self) -> str:
        r = self.ready
        return (f"Preferences({self.reward.n} judged tunes, {self.prediction.n_liked} liked; "
                f"reward {'ready' if r['reward'] else 'not ready'}, "
                f"history {'sure' if r['history'] else 'not sure'})")
