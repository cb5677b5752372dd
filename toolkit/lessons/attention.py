"""Where the transformer looks: its attention over the notes of a tune, on the engraved score.

When the network writes a note it has read every token before it; each attention head spreads
one unit of weight over those tokens.  :class:`AttentionMap` sums that weight note by note (a
note's pitch with its length, broken rhythm and tie), so it can be painted on the score:
:class:`AttentionView` shows the note being written in red and the notes the network looks at in
blue, darker for more weight, with a slider to walk through the tune.

Folk tunes repeat bars, and a transformer can copy them: when a bar is a repeat of an earlier
one, a *copying* head looks at the note that comes next in that earlier bar (an "induction
head", Olsson et al. 2022, "In-context learning and induction heads").
:meth:`AttentionMap.copy_scores` measures it for every head.

>>> from toolkit import load_model                                          # doctest: +SKIP
>>> amap = AttentionMap(load_model("transformer"), tokens)                   # doctest: +SKIP
>>> amap.copy_scores().max()                                                 # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from toolkit.music.tokens import BOS, BROKEN, is_bar, is_duration, is_pitch

__all__ = ["AttentionMap", "AttentionView", "note_of_tokens", "attention_colors",
           "CURRENT_COLOR", "LATER_COLOR"]

CURRENT_COLOR = "#d62728"   # the note being written
LATER_COLOR = "#c8c8c8"     # notes not written yet


def note_of_tokens(tokens: Sequence[str]) -> list[int | None]:
    """For each token, the number of the note or rest it belongs to (0, 1, ...), or None.

    A pitch or ``z`` starts a note; a length, broken rhythm (``>`` ``<``) or tie after it
    belongs to it; the header, bar lines, endings and triplet marks belong to none.

    >>> note_of_tokens(["<s>", "M:6/8", "K:maj", "S:?", "|:", "G", "2", ">", "A", "-", "|"])
    [None, None, None, None, None, 0, 0, 0, 1, 1, None]
    """
    out: list[int | None] = []
    note = -1
    for t in tokens:
        if is_pitch(t) or t == "z":
            note += 1
            out.append(note)
        elif note >= 0 and (is_duration(t) or t in BROKEN or t == "-") and out[-1] is not None:
            out.append(note)
        else:
            out.append(None)
    return out


def _bars_of_notes(tokens: Sequence[str], notes: list[int | None]) -> list[list[int]]:
    """The notes of each bar, in order (a bar with no note is left out)."""
    bars: list[list[int]] = [[]]
    for t, n in zip(tokens, notes, strict=True):
        if is_bar(t):
            bars.append([])
        elif n is not None and (not bars[-1] or bars[-1][-1] != n):
            bars[-1].append(n)
    return [b for b in bars if b]


class AttentionMap:
    """A transformer's attention over one tune, note by note.

    ``weights`` is ``(layers, heads, T, T)`` from ``model.attention_along(tokens)``; ``tokens``
    start with ``<s>`` (added when missing).  Attributes: ``tokens``, ``weights``, ``notes``
    (note number of each token), ``note_starts`` (the token position of each note's pitch),
    ``bar_of_note``, ``repeats`` (for each note of a bar that repeats an earlier bar exactly,
    the matching note of that earlier bar).
    """

    def __init__(self, model: Any, tokens: Sequence[str]):
        if not hasattr(model, "attention_along"):
            raise TypeError(f"{type(model).__name__} has no attention to show: give a "
                            "transformer (load_model('transformer'))")
        toks = list(tokens)
        self.tokens = toks if toks and toks[0] == BOS else [BOS, *toks]
        self.weights = model.attention_along(self.tokens).float().numpy()
        self.layers, self.heads = self.weights.shape[:2]
        self.notes = note_of_tokens(self.tokens)
        self.note_starts = [i for i, t in enumerate(self.tokens)
                            if is_pitch(t) or t == "z"]
        if not self.note_starts:
            raise ValueError("the tune has no notes to look at")
        bars = _bars_of_notes(self.tokens, self.notes)
        self.bar_of_note = {n: b for b, notes in enumerate(bars) for n in notes}
        self.repeats: dict[int, int] = {}
        key = {n: self._note_key(n) for n in range(len(self.note_starts))}
        seen: dict[tuple, list[int]] = {}
        for notes in bars:
            shape = tuple(key[n] for n in notes)
            if shape in seen:
                self.repeats.update(zip(notes, seen[shape], strict=True))
            else:
                seen[shape] = notes

    def _note_key(self, n: int) -> tuple[str, ...]:
        return tuple(t for t, m in zip(self.tokens, self.notes, strict=True) if m == n)

    @property
    def n_notes(self) -> int:
        return len(self.note_starts)

    def looking_at(self, note: int, layer: int | None = None, head: int | None = None
                   ) -> np.ndarray:
        """The weight on each earlier note (an array over all notes, 0 from ``note`` on) while
        the network writes note ``note``: from the position just before its pitch.  ``layer``
        and ``head`` pick one head; None averages over them."""
        if not 0 <= note < self.n_notes:
            raise ValueError(f"note must be in 0..{self.n_notes - 1}, got {note!r}")
        for name, value, count in (("layer", layer, self.layers), ("head", head, self.heads)):
            if value is not None and not 0 <= value < count:
                raise ValueError(f"{name} must be None (all) or in 0..{count - 1}, got {value!r}")
        w = self.weights[slice(None) if layer is None else [layer]]
        w = w[:, slice(None) if head is None else [head]]
        row = w[:, :, self.note_starts[note] - 1].mean((0, 1))             # over token positions
        out = np.zeros(self.n_notes)
        for pos, n in enumerate(self.notes[:self.note_starts[note]]):
            if n is not None:
                out[n] += row[pos]
        return out

    def copy_scores(self) -> np.ndarray:
        """``(layers, heads)``: for the notes of bars that repeat an earlier bar, the mean weight
        each head puts on the matching note of that earlier bar.  NaN when nothing repeats."""
        if not self.repeats:
            return np.full((self.layers, self.heads), np.nan)
        scores = np.zeros((self.layers, self.heads))
        for note, earlier in self.repeats.items():
            for layer in range(self.layers):
                for head in range(self.heads):
                    scores[layer, head] += self.looking_at(note, layer, head)[earlier]
        return scores / len(self.repeats)

    def first_repeat(self) -> int | None:
        """The first note of the first bar that repeats an earlier bar (None if none does)."""
        return min(self.repeats, default=None)


def attention_colors(weights: np.ndarray, current: int) -> list[str]:
    """One colour per note: ``current`` red, later notes grey, earlier notes blue by weight
    (darker = more; scaled to the largest weight, so the note looked at most is darkest).

    >>> attention_colors(np.array([0.1, 0.9, 0.0, 0.0]), 2)[1:]
    ['#08306b', '#d62728', '#c8c8c8']
    """
    from matplotlib import colormaps

    cmap = colormaps["Blues"]
    top = float(weights[:current].max()) if current > 0 else 0.0
    out = []
    for n, w in enumerate(weights):
        if n == current:
            out.append(CURRENT_COLOR)
        elif n > current:
            out.append(LATER_COLOR)
        else:
            r, g, b, _ = cmap(0.25 + 0.75 * (float(w) / top if top > 0 else 0.0))
            out.append(f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}")
    return out


class AttentionView:
    """The attention, painted on the engraved score, with a slider over the notes and a choice
    of layer and head (or their mean).  It opens at the first note of the first repeated bar,
    on the head that copies most in this tune (:meth:`AttentionMap.copy_scores`; the mean of
    all heads when nothing repeats): the moment the tune starts repeating a bar, and where that
    head looks then.

    Attributes: ``amap`` (:class:`AttentionMap`), ``tune``, ``note`` (IntSlider, counting
    from 1 as the caption does), ``layer``, ``head`` (Dropdowns), ``score`` (HTML),
    ``caption`` (HTML), ``widget``.
    """

    def __init__(self, model: Any, tune: Any, *, note: int | None = None, width: int = 800):
        import ipywidgets as ipw

        from toolkit.music.render import paint_notes

        if getattr(tune, "tokens", None) is None:
            raise ValueError("the tune has no tokens: give a tune the model wrote (generate) or "
                             "one read with its tokens")
        self.tune, self._paint = tune, paint_notes
        self.amap = AttentionMap(model, tune.tokens)
        self._score = tune.svg(width=width)
        start = note if note is not None else (self.amap.first_repeat() or 1) + 1
        self.note = ipw.IntSlider(value=min(max(start, 2), self.amap.n_notes), min=2,
                                  max=self.amap.n_notes, description="note",
                                  continuous_update=False, layout=ipw.Layout(width="520px"))
        options = [("mean of all", None)]
        scores = self.amap.copy_scores()
        layer = head = None
        if np.isfinite(scores).any():  # the copying head, when the tune repeats a bar
            layer, head = (int(i) for i in np.unravel_index(np.nanargmax(scores), scores.shape))
        self.layer = ipw.Dropdown(options=options + [(str(i + 1), i)
                                                      for i in range(self.amap.layers)],
                                  value=layer, description="layer",
                                  layout=ipw.Layout(width="200px"))
        self.head = ipw.Dropdown(options=options + [(str(i + 1), i)
                                                     for i in range(self.amap.heads)],
                                 value=head, description="head",
                                 layout=ipw.Layout(width="200px"))
        self.caption, self.score = ipw.HTML(), ipw.HTML()
        for w in (self.note, self.layer, self.head):
            w.observe(lambda _: self._update(), names="value")
        self._update()
        self.widget = ipw.VBox([ipw.HBox([self.note, self.layer, self.head]), self.caption,
                                self.score])

    def _update(self) -> None:
        n = int(self.note.value) - 1
        w = self.amap.looking_at(n, self.layer.value, self.head.value)
        self.weights = w
        self.score.value = self._paint(self._score, self.tune, attention_colors(w, n))
        top = int(np.argmax(w[:n])) if n > 0 else 0
        copy = self.amap.repeats.get(n)
        bar = self.amap.bar_of_note
        text = (f"writing note {n + 1} (bar {bar.get(n, 0) + 1}, red); the most weight "
                f"({w[top]:.0%}) is on note {top + 1} (bar {bar.get(top, 0) + 1})")
        if copy is not None:
            text += (f"; this bar repeats bar {bar[copy] + 1}, whose matching note {copy + 1} "
                     f"gets {w[copy]:.0%}")
        self.caption.value = f"<span style='font-size:1.2em'>{text}</span>"

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        data = self.widget._repr_mimebundle_(**kwargs)
        data["text/html"] = self.caption.value + self.score.value   # the static copy
        return data
