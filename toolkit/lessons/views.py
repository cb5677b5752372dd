"""Plumbing shared by the widget apps: a figure that redraws in place, and a status line."""

from __future__ import annotations

import html
import io


def live_backend() -> bool:
    """True under ``%matplotlib widget`` (ipympl): figures are then live canvas widgets."""
    import matplotlib

    backend = matplotlib.get_backend().lower()
    return "ipympl" in backend or backend == "widget"



class FigureView:
    """A figure a widget app can show and redraw: the ipympl canvas itself under
    ``%matplotlib widget``, else a PNG in an ``ipywidgets.Image`` (JupyterLab, Voilà, tests).
    Either way the figure is made once and its artists move in place."""

    def __init__(self, figsize: tuple[float, float]):
        import ipywidgets as widgets
        import matplotlib as mpl
        from matplotlib.figure import Figure

        from toolkit.lessons import plots

        self.live = live_backend()
        if self.live:
            import matplotlib.pyplot as plt

            with mpl.rc_context(plots.PROJECTOR_RC), plt.ioff():
                self.fig = plt.figure(figsize=figsize, layout="constrained")
            self.fig.canvas.header_visible = False
            self.fig.canvas.toolbar_visible = False
            self.widget = self.fig.canvas
        else:
            from matplotlib.backends.backend_agg import FigureCanvasAgg

            # no pyplot: the figure is never shown a second time by the inline backend
            self.fig = Figure(figsize=figsize, dpi=80, layout="constrained")
            FigureCanvasAgg(self.fig)
            self.widget = widgets.Image(format="png",
                                        layout=widgets.Layout(width="100%", max_width="960px"))

    def refresh(self) -> None:
        """Show the artists as they are now."""
        if self.live:
            self.fig.canvas.draw_idle()
            return
        from PIL import Image

        canvas = self.fig.canvas
        canvas.draw()
        buf = io.BytesIO()  # fast PNG compression: a third quicker than savefig's, a bit larger
        Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba()).save(
            buf, format="png", compress_level=1)
        self.widget.value = buf.getvalue()


def status_html(icon: str, text: str, color: str) -> str:
    return (f'<div style="font-size:115%;color:{color};padding:2px 0">{icon} '
            f"{html.escape(text)}</div>")


