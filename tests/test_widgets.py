"""toolkit.lessons.widgets: drive the slider apps from code, without a browser (Agg backend)."""

from __future__ import annotations

import base64
import io
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import ipywidgets as ipw  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from toolkit import load_model, plots  # noqa: E402
from toolkit import sampling as S  # noqa: E402
from toolkit import widgets as W  # noqa: E402
from toolkit.music.tokens import encode, split_tunes  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KEPT, CUT = plots.COLORS["kept"].lower(), plots.COLORS["cut"].lower()
TOY_VOCAB = ["G", "A", "B", "c", "d", "e"]
TOY_LOGITS = torch.log(torch.tensor([0.40, 0.25, 0.15, 0.10, 0.06, 0.04]))


@pytest.fixture(scope="module")
def model():
    return load_model()


@pytest.fixture(scope="module")
def jig():
    """The first two bars of "The Willow Step" (toy tune 2, a jig): 20 tokens."""
    text = (ROOT / "toolkit" / "data" / "toy.abc").read_text(encoding="utf-8")
    return encode(split_tunes(text)[1])


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def same_pixels(fig) -> bool:
    """A live (cached) draw paints exactly what a full render paints."""
    fig.canvas.draw()
    live = np.asarray(fig.canvas.buffer_rgba()).copy()
    buf = io.BytesIO()
    fig.savefig(buf, format="rgba", dpi=fig.dpi)
    w, h = fig.canvas.get_width_height(physical=True)
    return np.array_equal(live, np.frombuffer(buf.getvalue(), np.uint8).reshape(h, w, 4))


def numbers(html: str) -> list[float]:
    text = re.sub(r"<[^>]*>", " ", html)                     # the words, not the styles
    return [float(x) for x in re.findall(r"\d+\.\d+", text)]


# --------------------------------------------------------------------------------------------
# TemperatureExplorer


def test_temperature_slider_moves_bars_readouts_and_curve(model, jig):
    app = W.TemperatureExplorer(model, jig[:20])
    bars, figures = list(app.plot.bars), plt.get_fignums()
    h1, e1, c1 = app.plot.heights, app.entropy_readout.value, app.choices_readout.value
    app.temperature.value = 2.0
    assert list(app.plot.bars) == bars and plt.get_fignums() == figures   # updated in place
    h2 = app.plot.heights
    assert h2[0] < h1[0] and h2[-1] > h1[-1]                  # flatter: top down, tail up
    want = S.explain(model.next_logits(jig[:20]), S.chain(S.temperature(2.0)), seed=0)
    np.testing.assert_allclose(h2, want.stages[-1].probs[app.plot.tokens])
    assert app.entropy_bits == pytest.approx(want.stages[-1].entropy_bits)
    assert app.entropy_readout.value != e1 and app.choices_readout.value != c1
    assert numbers(app.entropy_readout.value)[0] == pytest.approx(app.entropy_bits, abs=0.006)
    assert numbers(app.choices_readout.value)[0] == pytest.approx(2 ** app.entropy_bits,
                                                                  abs=0.06)
    assert app.curve.dot.get_xdata()[0] == 2.0
    assert "T = 2.00" in app.plot.ax.get_title()
    assert same_pixels(app.fig)


def test_low_temperature_is_greedy_and_high_temperature_nearly_uniform(model, jig):
    # a point of the tune where the model clearly prefers one token (a logit gap of 1 nat)
    k = next(k for k in range(20, len(jig))
             if float(model.next_logits(jig[:k]).topk(2).values.diff().abs()) > 1.0)
    app = W.TemperatureExplorer(model, jig[:k])
    app.temperature.value = 0.05                              # the slider's lowest value
    assert app.plot.heights[0] > 0.99 and app.effective_choices < 1.1
    assert "greedy" in app.plot.ax.get_title()
    app.temperature.value = 1.0
    top_at_one = app.plot.heights.max()
    app.temperature.value = 5.0
    V = len(model.vocab)
    assert app.entropy_bits > 0.85 * math.log2(V)
    assert app.plot.heights.max() < min(top_at_one / 3, 10 / V)  # the bars flatten towards 1/V
    assert app.plot.colors == [KEPT] * len(app.plot.bars)


def test_entropy_grows_with_temperature(model, jig):
    app = W.TemperatureExplorer(model, jig[:20], curve=False)
    seen = []
    for t in (0.1, 0.3, 0.7, 1.0, 1.6, 3.0, 5.0):
        app.temperature.value = t
        seen.append(app.entropy_bits)
    assert seen == sorted(seen) and app.curve is None


def test_explorers_take_toy_logits_too():
    app = W.TemperatureExplorer(logits=TOY_LOGITS, vocab=TOY_VOCAB, top=6)
    assert app.plot.labels == TOY_VOCAB
    np.testing.assert_allclose(app.plot.heights, torch.softmax(TOY_LOGITS, -1).numpy())


def test_bad_arguments_get_clear_errors(model):
    with pytest.raises(ValueError, match="model and prefix"):
        W.TemperatureExplorer()
    with pytest.raises(ValueError, match="vocab"):
        W.TemperatureExplorer(logits=TOY_LOGITS, vocab=["G"])
    with pytest.raises(ValueError, match="temperature must be in"):
        W.TemperatureExplorer(logits=TOY_LOGITS, temperature=9.0)
    with pytest.raises(ValueError, match="order must be one of"):
        W.TruncationExplorer(logits=TOY_LOGITS, order="sideways")
    with pytest.raises(ValueError, match="unknown token 'H'"):
        W.TemperatureExplorer(model, "M:6/8 K:maj S:? H")


# --------------------------------------------------------------------------------------------
# TruncationExplorer


def test_top_k_keeps_k_blue_bars_and_greys_the_rest(model, jig):
    app = W.TruncationExplorer(model, jig[:20])
    assert app.plot.colors == [KEPT] * len(app.plot.bars)       # everything off: all kept
    app.top_k.value = 3
    assert app.plot.colors == [KEPT] * 3 + [CUT] * (len(app.plot.bars) - 3)
    assert all(h > 0 for h in app.plot.heights[3:])             # cut, but still visible
    assert app.plot.cutoff.get_visible() and app.plot.cutoff.get_xdata()[0] == 2.5
    assert app.kept.sum() == 3 and "keeps <b>3</b>" in app.summary.value
    assert "TopK(3)" in app.chain_readout.value
    marks = app.plot.after_line.get_ydata()
    assert np.isfinite(marks[:3]).all() and np.isnan(marks[3:]).all()
    assert np.nansum(marks) == pytest.approx(1.0)              # the 3 survivors, renormalised


def test_top_p_moves_the_staircase_line_and_matches_the_library(model, jig):
    app = W.TruncationExplorer(model, jig[:20], temperature=1.3)
    app.top_p.value = 0.7
    assert app.staircase.p_line.get_ydata()[0] == pytest.approx(0.7)
    logits = model.next_logits(jig[:20])
    want = S.explain(logits, S.temperature_first(temperature=1.3, top_p=0.7), seed=0)
    np.testing.assert_array_equal(app.kept, want.stages[-1].kept)
    assert app.staircase.n_kept == want.stages[-1].n_kept
    assert same_pixels(app.fig)


def test_min_p_line_sits_at_min_p_times_the_top_note(model, jig):
    app = W.TruncationExplorer(model, jig[:20])
    line = app.plot.thresholds["min_p"]
    assert not line.get_visible()
    app.min_p.value = 0.2
    top = app.plot.heights.max()
    assert line.get_visible() and line.get_ydata()[0] == pytest.approx(0.2 * top)
    kept_heights = app.plot.heights[app.kept[app.plot.tokens]]
    assert (kept_heights >= 0.2 * top - 1e-12).all()
    assert (app.plot.heights[~app.kept[app.plot.tokens]] < 0.2 * top).all()


def test_typical_level_line_appears(model, jig):
    app = W.TruncationExplorer(model, jig[:20])
    app.typical_p.value = 0.5
    line = app.plot.thresholds["typical"]
    assert line.get_visible()
    # typical is the only active step: it sees the model's distribution, entropy H bits
    H = app.explanation.stages[0].entropy_bits
    assert line.get_ydata()[0] == pytest.approx(2.0 ** -H)
    assert app.kept.sum() < len(model.vocab)


def test_order_toggle_changes_what_truncation_sees_and_keeps():
    app = W.TruncationExplorer(logits=TOY_LOGITS, vocab=TOY_VOCAB, temperature=3.0, top_p=0.6,
                               top=6)
    first = app.kept.copy()
    assert "after temperature" in app.plot.ax.get_title()
    app.order.value = "temperature last"
    assert "before temperature" in app.plot.ax.get_title()
    assert app.kept.sum() < first.sum()
    np.testing.assert_allclose(app.plot.heights, torch.softmax(TOY_LOGITS, -1).numpy())
    assert "name='temperature_last'" in app.chain_readout.value
    assert same_pixels(app.fig)


# --------------------------------------------------------------------------------------------
# ChainOrderExplorer and the helpers


def test_chain_order_explorer_names_the_notes_only_one_order_keeps():
    app = W.ChainOrderExplorer(logits=TOY_LOGITS, vocab=TOY_VOCAB, temperature=3.0, top_p=0.6,
                               top=6)
    c = app.comparison
    assert c.differ and c.only_first and not c.only_last
    assert ", ".join(c.only_first) in app.summary.value
    assert app.plot.left.colors != app.plot.right.colors
    app.temperature.value = 1.0                         # T = 1: the order cannot matter
    assert not app.comparison.differ and "the same notes" in app.summary.value
    assert app.plot.left.colors == app.plot.right.colors
    assert same_pixels(app.fig)


def test_compare_orders_and_find_a_real_case_in_a_tune(model, jig):
    c = W.compare_orders(TOY_LOGITS, temperature=3.0, top_p=0.6, vocab=TOY_VOCAB)
    # at T = 3 the mass climbs 24, 44, 61 %: three notes reach 60 %; the model's own
    # distribution (40, 65 %) gets there with two
    assert c.both == ["G", "A"] and c.only_first == ["B"] and c.only_last == []
    n, found = W.find_order_difference(model, jig, temperature=2.0, top_p=0.8)
    assert found.differ and 1 <= n < len(jig)
    again = W.compare_orders(model.next_logits(jig[:n]), vocab=model.vocab, temperature=2.0,
                             top_p=0.8)
    assert again.only_first == found.only_first
    with pytest.raises(ValueError, match="keep the same tokens"):
        W.find_order_difference(model, jig[:12], temperature=1.0, top_p=0.8)


def test_logits_along_a_tune_match_next_logits(model, jig):
    along = model.logits_along(jig[:30])
    assert along.shape == (30, len(model.vocab))
    for n in (1, 5, 20, 30):
        torch.testing.assert_close(along[n - 1], model.next_logits(jig[:n]), atol=1e-4,
                                   rtol=1e-4)
    without_bos = model.logits_along(jig[1:20])               # <s> is added, as next_logits
    torch.testing.assert_close(without_bos[-1], model.next_logits(jig[1:20]), atol=1e-4,
                               rtol=1e-4)


def test_temperature_entropy():
    ts = [0.1, 0.5, 1.0, 2.0, 10.0]
    h = S.temperature_entropy(TOY_LOGITS, ts)
    assert list(h) == sorted(h) and 0 <= h[0] and h[-1] < math.log2(6)
    one = S.explain(TOY_LOGITS, S.chain(S.temperature(2.0)), seed=0).stages[-1].entropy_bits
    assert h[3] == pytest.approx(one)
    with pytest.raises(ValueError, match="> 0"):
        S.temperature_entropy(TOY_LOGITS, [0.0, 1.0])


# --------------------------------------------------------------------------------------------
# display: a live view plus a static PNG


def test_display_bundle_has_the_widget_and_a_static_png():
    app = W.TemperatureExplorer(logits=TOY_LOGITS, vocab=TOY_VOCAB)
    bundle = app._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert base64.b64decode(bundle["image/png"]).startswith(b"\x89PNG")
    # with a non-interactive backend the view is a PNG the app refreshes after each move
    assert isinstance(app.widget.children[-1], ipw.Image)
    before = app.widget.children[-1].value
    app.temperature.value = 3.0
    assert app.widget.children[-1].value != before


def test_with_ipympl_the_canvas_itself_is_in_the_app():
    code = (
        "import matplotlib; matplotlib.use('module://ipympl.backend_nbagg')\n"
        "import numpy as np, ipywidgets as ipw\n"
        "from toolkit import widgets as W\n"
        "a = W.TruncationExplorer(logits=np.log([.5, .3, .15, .05]), vocab=list('GABc'))\n"
        "assert isinstance(a.fig.canvas, ipw.DOMWidget) and a.widget.children[-1] is a.fig.canvas\n"
        "a.top_k.value = 2\n"
        "assert sorted(a._repr_mimebundle_()) == ['application/vnd.jupyter.widget-view+json',"
        " 'image/png', 'text/plain']\n"
        "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120, env={**os.environ, "MPLBACKEND": ""})
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


# --------------------------------------------------------------------------------------------
# the notebooks' hidden solutions pass their own checks


def _with_solutions(path: Path) -> dict:
    """The notebook with every exercise cell replaced by the code of its hidden solution."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = nb["cells"]
    exercises = [i for i, c in enumerate(cells) if "exercise" in c["metadata"].get("tags", [])]
    solutions = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
                 and "<summary>Solution</summary>" in "".join(c["source"])]
    assert exercises and len(exercises) == len(solutions), (exercises, solutions)
    for e, s in zip(exercises, solutions, strict=True):
        assert e < s
        code = re.search(r"```python\n(.*?)```", "".join(cells[s]["source"]), re.S)
        cells[e]["source"] = code.group(1)
    return nb


@pytest.mark.slow
@pytest.mark.parametrize("name", ["01_softmax_and_temperature", "02_truncation"])
def test_notebook_solutions_pass_their_checks(name):
    import nbformat
    from nbclient import NotebookClient

    path = ROOT / "notebooks" / f"{name}.ipynb"
    nb = nbformat.reads(json.dumps(_with_solutions(path)), as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    checks = [c for c in nb.cells if c.cell_type == "code" and "check" in c.metadata.get(
        "tags", [])]
    assert checks
    for cell in checks:
        text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        assert "✅" in text and "❌" not in text and "✏️" not in text, text
