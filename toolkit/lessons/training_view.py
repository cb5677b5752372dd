"""Watching a model learn, and comparing it with another: the views of notebook 8.

:class:`TrainingMonitor` is the ``on_epoch`` callback of :func:`toolkit.train.train_model`. After
each epoch it moves the learning curve one point on (:class:`toolkit.plots.LossCurvePlot`,
updated in place), writes the epoch's numbers, and lets the model as it is now write a tune,
always with the same seed and settings, so the class hears what the epoch changed::

    >>> model = new_model(train + valid, emb=48, hidden=128, layers=1)     # doctest: +SKIP
    >>> before = evaluate(model, valid)                                    # doctest: +SKIP
    >>> monitor = TrainingMonitor(model, 6, valid_before=before)           # doctest: +SKIP
    >>> train_model(train, valid, model=model, epochs=6, on_epoch=monitor)  # doctest: +SKIP

Two models trained on different tunes have different vocabularies, so "the same token" is the
same *name*, not the same index. :func:`align_probs` puts a model's probabilities on a list of
token names (0 for a name it does not have); :func:`compare_next` asks several models for their
next-token distribution at one point of a tune and aligns them on every token any of them knows.
"""

from __future__ import annotations

import html
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from toolkit.lessons import plots
from toolkit.lm.network import Network
from toolkit.music.tokens import BARS, BOS, UNKNOWN_METER, UNKNOWN_MODE, UNKNOWN_STYLE, is_pitch

__all__ = ["TrainingMonitor", "most_common_header", "prefix_after_bars", "align_probs",
           "NextTokenComparison", "compare_next", "readable_by"]

_UNKNOWN = {"M:": UNKNOWN_METER, "K:": UNKNOWN_MODE, "S:": UNKNOWN_STYLE}


def most_common_header(records: list[dict]) -> dict:
    """The most common meter, mode and style of some tunes, as ``generate`` takes them.

    >>> most_common_header([{"tokens": ["<s>", "M:6/8", "K:maj", "S:irish", "C"]}])
    {'meter': '6/8', 'mode': 'maj', 'style': 'irish'}

    A slot whose most common value is unknown (``S:?``) is left out (the model chooses).
    """
    if not records:
        raise ValueError("records is empty: no tunes to read a header from")
    out = {}
    for name, pos in (("meter", 1), ("mode", 2), ("style", 3)):
        value = Counter(r["tokens"][pos] for r in records).most_common(1)[0][0]
        if not value.endswith("?"):
            out[name] = value[2:]
    return out


def prefix_after_bars(tokens: Sequence[str], bars: int = 2) -> list[str]:
    """A tune's tokens up to and including the bar line that ends its ``bars``-th bar.

    A bar is counted when a bar line closes notes (a pickup is a bar here; a repeat sign at the
    very start closes nothing).

    >>> prefix_after_bars(["<s>", "M:2/4", "K:maj", "S:?", "|:", "C", "D", "|", "E", "F", "|",
    ...                    "G"], 2)
    ['<s>', 'M:2/4', 'K:maj', 'S:?', '|:', 'C', 'D', '|', 'E', 'F', '|']
    """
    if isinstance(bars, bool) or not isinstance(bars, int) or bars < 1:
        raise ValueError(f"bars must be an integer >= 1, got {bars!r}")
    seen, notes = 0, False
    for i, tok in enumerate(tokens):
        if is_pitch(tok) or tok == "z":
            notes = True
        elif tok in BARS and notes:
            seen, notes = seen + 1, False
            if seen == bars:
                return list(tokens[:i + 1])
    raise ValueError(f"bars={bars}: the tune has only {seen} complete bar(s)")


# --------------------------------------------------------------------------------------------
# the live view of a training run

class TrainingMonitor:
    """``on_epoch`` for :func:`toolkit.train.train_model`: a live learning curve and a tune per
    epoch.

    ``model`` is the network being trained (the one passed to ``train_model(model=...)``), so
    the monitor can let it write. ``valid_before`` (its validation loss untrained) is epoch 0 of
    the curve; the dashed line is ln V, a uniform guess over its V tokens. ``sample`` are the
    settings of the tune written after each epoch (``generate``'s keywords: ``meter``, ``mode``,
    ``style``, ``seed``, ``sampler``...), the same every epoch; ``sample_tokens`` caps its
    length (a tune cut off there stops at its last bar line). One tune is written from the
    untrained model when the monitor is made, so ``tunes[e]`` is the tune after epoch ``e``
    (``tunes[0]``: untrained).

    With ``show`` (a notebook), the curve is displayed once and replaced in place after each
    epoch, and each epoch adds a line of numbers and its tune (score and sound, played once
    through without repeats). Without it nothing is displayed; ``history``, ``tunes`` and
    ``curve`` still follow the run.

    Attributes: ``history`` (the entries ``train_model`` passed), ``tunes``, ``curve`` (the
    :class:`~toolkit.plots.LossCurvePlot`), ``fig``, ``sample_seconds`` (writing and showing
    each tune), ``seconds_per_epoch``.
    """

    def __init__(self, model: Network, epochs: int, *, valid_before: float | None = None,
                 sample: dict | None = None, sample_tokens: int = 64, show: bool = True,
                 title: str = "learning curve"):
        import matplotlib as mpl
        from matplotlib.figure import Figure

        if not isinstance(model, Network):
            raise TypeError("model must be a Network (an LSTM, a transformer or your own), "
                            f"got {type(model).__name__}")
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
        self.model, self.epochs, self.show = model, epochs, show
        self.sample = {"seed": 0, **(sample or {})}
        self.sample_tokens = sample_tokens
        self.history: list[dict] = []
        self.tunes: list = []
        self.sample_seconds: list[float] = []
        # a figure of its own, outside pyplot: the notebook shows it only through the monitor
        with mpl.rc_context(plots.PROJECTOR_RC):
            self.fig = Figure(figsize=(10, 4.8), layout="constrained")
            ax = self.fig.add_subplot()
            self.curve = plots.plot_loss_curve(epochs=epochs, before=valid_before,
                                               uniform=math.log(model.vocab_size), ax=ax,
                                               title=title)
        self._handle = None
        if show:
            from IPython.display import display

            self._handle = display(self._image(), display_id=True)
        self._write(0, "untrained" + (f" · validation loss {valid_before:.3f} nats/token"
                                      if valid_before is not None else ""))

    def _image(self):
        from IPython.display import Image

        return Image(data=plots.figure_png(self.fig), format="png")

    def _write(self, epoch: int, text: str) -> None:
        from toolkit.lm.generation import generate

        t0 = time.perf_counter()
        tune = generate(self.model, n=1, max_tokens=self.sample_tokens, **self.sample)[0]
        title = "untrained" if epoch == 0 else f"after epoch {epoch}"
        tune = _retitled(tune, f"{title} (seed {tune.settings['seed']})")
        self.tunes.append(tune)
        if self.show:
            from IPython.display import HTML, display

            from toolkit.lessons.studio import tune_html

            display(HTML(f"<h4 style='margin:1em 0 0'>{html.escape(text)}</h4>"
                         + tune_html(tune, abc=False, repeats=False)))
        self.sample_seconds.append(time.perf_counter() - t0)

    def __call__(self, entry: dict) -> None:
        """Called by ``train_model`` after each epoch with ``epoch``, ``train_loss``,
        ``valid_loss`` and ``seconds``."""
        self.history.append(dict(entry))
        self.curve.update([h["train_loss"] for h in self.history],
                          [h["valid_loss"] for h in self.history], draw=False)
        if self._handle is not None:
            self._handle.update(self._image())
        self._write(len(self.history),
                    f"epoch {entry['epoch']}/{self.epochs} · training loss "
                    f"{entry['train_loss']:.3f} · validation loss {entry['valid_loss']:.3f} "
                    f"nats/token · {entry['seconds']:.1f} s")

    @property
    def seconds_per_epoch(self) -> float:
        """Mean wall time of one epoch: training, validation, and writing and showing its tune."""
        if not self.history:
            return float("nan")
        train = sum(h["seconds"] for h in self.history)
        return (train + sum(self.sample_seconds[1:])) / len(self.history)


def _retitled(tune, title: str):
    """The tune under a new title; one cut off before its end stops at its last bar line (a
    cut can fall inside a note's spelling, which no score can show)."""
    from toolkit.music.tokens import EOS, decode
    from toolkit.music.tune import Tune

    tokens, logprobs = list(tune.tokens), list(tune.logprobs)
    if tokens[-1] != EOS:
        last = max((i for i, t in enumerate(tokens) if t in BARS and i > 3), default=None)
        if last is not None:
            tokens, logprobs = tokens[:last + 1], logprobs[:last + 1]
    abc = decode(tokens, key=tune.settings.get("key", "D"), title=title)
    return Tune(abc=abc, tokens=tokens, logprobs=logprobs, settings=dict(tune.settings))


# --------------------------------------------------------------------------------------------
# two models, one point of a tune

def align_probs(probs, vocab: Sequence[str], tokens: Sequence[str]) -> np.ndarray:
    """A model's probabilities, given over its own ``vocab``, put on the token names ``tokens``.

    A name the vocabulary lacks gets probability 0 (the model cannot write that token).

    >>> align_probs([0.5, 0.3, 0.2], ["G", "A", "B"], ["B", "c", "G"]).tolist()
    [0.2, 0.0, 0.5]
    """
    p = plots.as_array(probs)
    if len(p) != len(vocab):
        raise ValueError(f"probs must have one value per token of vocab ({len(vocab)}), "
                         f"got {len(p)}")
    index = {t: i for i, t in enumerate(vocab)}
    return np.array([p[index[t]] if t in index else 0.0 for t in tokens], dtype=np.float64)


@dataclass
class NextTokenComparison:
    """Several models' next-token distributions at one point of a tune, aligned by token name.

    ``tokens``: every token name any of the models knows, sorted; ``probs[name]``: that
    model's probabilities over ``tokens`` (0 where it lacks the token; they add up to 1);
    ``known[name]``: True where the token is in its vocabulary; ``prefixes[name]``: the tokens
    the model actually read (a conditioning token it does not know is read as unknown, e.g.
    ``S:?``); ``notes``: what was substituted, in words.
    """

    prefix: list[str]
    tokens: list[str]
    probs: dict[str, np.ndarray]
    known: dict[str, np.ndarray]
    prefixes: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return list(self.probs)

    def top(self, n: int = 10) -> list[int]:
        """Indices of the ``n`` tokens with the highest probability under any model."""
        best = np.max(np.stack(list(self.probs.values())), axis=0)
        return plots.top_tokens(best, min(n, len(self.tokens))).tolist()

    def favourite(self, name: str) -> str:
        """The token model ``name`` finds most likely."""
        return self.tokens[int(np.argmax(self.probs[name]))]

    def overlap(self, a: str | None = None, b: str | None = None) -> float:
        """Σ min(p, q) over all tokens: the probability mass two models share (1 = the same
        distribution, 0 = nothing in common); ``1 - overlap`` is their total variation
        distance. Default: the first two models."""
        a = a or self.names[0]
        b = b or self.names[1]
        return float(np.minimum(self.probs[a], self.probs[b]).sum())

    def missing(self, name: str) -> list[str]:
        """The tokens other models know that model ``name`` lacks."""
        return [t for t, k in zip(self.tokens, self.known[name], strict=True) if not k]

    def table(self, n: int = 10) -> str:
        """The top ``n`` tokens with every model's probability, as text."""
        width = max(10, *(len(m) for m in self.names))
        lines = [f"{'token':<7}" + "".join(f"{m:>{width + 2}}" for m in self.names)]
        for i in self.top(n):
            cells = "".join(f"{self.probs[m][i]:>{width + 2}.1%}" if self.known[m][i]
                            else f"{'(lacks it)':>{width + 2}}" for m in self.names)
            lines.append(f"{self.tokens[i]:<7}{cells}")
        return "\n".join(lines)

    def plot(self, top: int = 12, ax=None, title: str | None = None,
             figsize: tuple[float, float] = (13, 5)) -> plots.ModelComparisonPlot:
        """Grouped bars of the ``top`` tokens (:func:`toolkit.plots.plot_model_comparison`)."""
        return plots.plot_model_comparison(self.tokens, self.probs, self.known, top=top, ax=ax,
                                           title=title, figsize=figsize)


def _read_conditioning(model: Network, tokens: Sequence[str]) -> tuple[list[str], list[str]]:
    """``tokens`` with each conditioning token (positions 1–3) that ``model`` does not know
    replaced by its "unknown" form, and the replacements made, as ``(old, new)`` texts."""
    out, replaced = list(tokens), []
    for pos in (1, 2, 3):
        tok = out[pos] if pos < len(out) else ""
        if tok not in model.stoi and _UNKNOWN.get(tok[:2]) in model.stoi:
            out[pos] = _UNKNOWN[tok[:2]]
            replaced.append((tok, out[pos]))
    return out, replaced


def _readable_prefix(model: Network, name: str, tokens: list[str],
                     notes: list[str]) -> list[str]:
    out, replaced = _read_conditioning(model, tokens)
    notes += [f"{name} does not know {old}: it reads {new} there" for old, new in replaced]
    for pos, tok in enumerate(out):
        if tok not in model.stoi:
            raise ValueError(f"{name} does not know the token {tok!r} at position {pos} of the "
                             "prefix; compare at an earlier point of the tune, or at a tune "
                             "made of tokens both models know")
    return out


def readable_by(model: Network, records: list[dict]) -> list[dict]:
    """The tunes among ``records`` that ``model`` can score, as it can read them.

    A conditioning token it does not know (``S:mine`` for the shipped model) is read as its
    "unknown" token (``S:?``), as in :func:`compare_next`; a tune with any other token it lacks
    is left out. ``evaluate(model, readable_by(model, valid))`` then compares models trained
    on different tunes on the same validation tunes.
    """
    out = []
    for r in records:
        tokens, _ = _read_conditioning(model, r["tokens"])
        if all(t in model.stoi for t in tokens):
            out.append({**r, "tokens": tokens})
    return out


@torch.no_grad()
def compare_next(models: dict[str, Network], prefix: str | Sequence[str]) -> NextTokenComparison:
    """Ask every model for its next-token distribution after ``prefix`` and align them by name.

    ``models``: display name -> model (two to four). ``prefix``: tokens (or space-separated
    text), with or without the leading ``<s>``. A conditioning token (meter, mode, style) that
    a model does not know is read as its "unknown" token and noted; any other unknown token
    raises ValueError naming the model, the token and its position.
    """
    if not 1 <= len(models) <= len(plots.MODEL_COLORS):
        raise ValueError(f"models must hold 1 to {len(plots.MODEL_COLORS)} models, "
                         f"got {len(models)}")
    tokens = prefix.split() if isinstance(prefix, str) else list(prefix)
    if not tokens or tokens[0] != BOS:
        tokens = [BOS, *tokens]
    names = sorted({t for m in models.values() for t in m.vocab})
    probs, known, prefixes, notes = {}, {}, {}, []
    for name, model in models.items():
        read = _readable_prefix(model, name, tokens, notes)
        p = torch.softmax(model.next_logits(read).double(), dim=-1)
        probs[name] = align_probs(p, model.vocab, names)
        known[name] = np.array([t in model.stoi for t in names])
        prefixes[name] = read
    return NextTokenComparison(tokens, names, probs, known, prefixes, notes)
