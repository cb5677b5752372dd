"""The steering studio: conditioning menus, a guidance slider, a primer and a constraint (the
meter, or the whole grammar) in, a tune out (notebook 06)."""

from __future__ import annotations

import math
import time
from typing import Any

from toolkit.measure.steering import StyleClassifier


class SteeringStudio:
    """Conditioning menus, a guidance slider, a primer box and the meter constraint in, a tune
    out — the controls of notebook 06 on one screen.

    Controls (ipywidgets, all attributes): ``meter``, ``mode``, ``style`` (menus with the values
    the model learned from the data; "model's choice" lets it draw one), ``guidance`` (0–5),
    ``temperature``, ``prime`` (the tune's opening as ABC in D), ``constraint`` (toggle: none,
    the meter constraint, or the grammar that keeps every tune valid), ``seed``.  Outputs:
    ``status`` (what was written, or the error in full —
    e.g. an unknown symbol in the primer with its position and the nearest known symbol),
    ``score`` (score and play button), ``widget``.  With a :class:`StyleClassifier` the status
    also says which style the melody sounds like to it.
    """

    def __init__(self, model: Any, classifier: StyleClassifier | None = None, *,
                 style: str | None = "irish", meter: str | None = "6/8",
                 mode: str | None = "maj", guidance: float = 1.0, temperature: float = 1.0,
                 prime: str = "", seed: int = 1, width: int = 800):
        import ipywidgets as widgets

        self.model = model
        self.classifier = classifier
        self.width = width
        self.tune = None
        self.seconds = math.nan
        label = {"style": {"description_width": "90px"}, "layout": widgets.Layout(width="400px")}

        def menu(name: str, value: str | None) -> Any:
            options = [("model's choice", None)] + [(c, c) for c in model.choices(name)]
            return widgets.Dropdown(options=options, value=value, description=name, **label)

        self.meter, self.mode, self.style = (menu("meter", meter), menu("mode", mode),
                                             menu("style", style))
        self.guidance = widgets.FloatSlider(value=guidance, min=0, max=5, step=0.25,
                                            description="guidance", continuous_update=False,
                                            **label)
        self.temperature = widgets.FloatSlider(value=temperature, min=0.1, max=3, step=0.05,
                                               description="temperature",
                                               continuous_update=False, **label)
        self.seed = widgets.IntSlider(value=seed, min=0, max=999, description="seed",
                                      continuous_update=False, **label)
        self.prime = widgets.Text(value=prime, description="opening",
                                  placeholder="ABC in D, e.g. |: d2e fed |",
                                  continuous_update=False, **label)
        self.constraint = widgets.ToggleButtons(
            options=[("free", None), ("meter", "meter"), ("grammar", "grammar")], value=None,
            description="constraint", tooltips=["no constraint", "bars as long as the meter",
                                                "every tune valid ABC (S.grammar())"],
            style={"description_width": "90px", "button_width": "80px"})
        self.status = widgets.HTML()
        self.score = widgets.HTML()
        self.widget = widgets.VBox([
            widgets.HBox([widgets.VBox([self.meter, self.mode, self.style, self.prime]),
                          widgets.VBox([self.guidance, self.temperature, self.seed,
                                        self.constraint])]),
            self.status, self.score])
        for w in (self.meter, self.mode, self.style, self.guidance, self.temperature, self.seed,
                  self.prime, self.constraint):
            w.observe(lambda _: self.update(), names="value")
        self.update()

    def chain(self) -> Any:
        """The sampler chain the controls describe (the constraint first)."""
        from toolkit.lm import sampling as S

        steps = {None: [], "meter": [S.meter_constraint()],
                 "grammar": [S.grammar()]}[self.constraint.value]
        return S.chain(*steps, S.temperature(float(self.temperature.value)))

    def update(self) -> None:
        """Write the tune the controls describe and show it (errors go to the status line)."""
        from toolkit.lessons.studio import tune_html
        from toolkit.lessons.views import status_html
        from toolkit.lm.generation import generate
        from toolkit.lm.threads import one_thread
        from toolkit.music.check import check_tokens

        t0 = time.perf_counter()
        scale = float(self.guidance.value)
        try:
            with one_thread():
                self.tune = generate(
                    self.model, n=1, seed=int(self.seed.value), meter=self.meter.value,
                    mode=self.mode.value, style=self.style.value,
                    prime=self.prime.value.strip() or None, sampler=self.chain(),
                    guidance=None if scale == 1 else scale)[0]
        except Exception as err:  # noqa: BLE001 -- whatever a student types, the kernel lives
            self.status.value = status_html("⚠️", f"No tune: {type(err).__name__}: {err}", "#b22")
            return
        self.score.value = tune_html(self.tune, width=self.width)
        self.seconds = time.perf_counter() - t0
        v = check_tokens(self.tune.tokens)
        meter, mode, style = (t[2:] for t in self.tune.tokens[1:4])
        heard = ""
        if self.classifier is not None:
            heard = f"; the style classifier hears <b>{self.classifier.predict(self.tune.tokens)}"\
                    "</b>"
        bars = "valid ABC" if v.ok else f"not valid: {v.reason}"
        constraint = self.constraint.value or "free"
        self.status.value = status_html("✅", f"{meter} · {mode} · {style} · guidance {scale:g} · "
                                        f"{constraint}: {bars}{heard} — {self.seconds:.2f} s",
                                        "#161")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)
