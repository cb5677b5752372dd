"""toolkit.lessons.plots: what a student sees, and that updates move the same artists in place."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import to_hex, to_rgb  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from toolkit import plots  # noqa: E402
from toolkit import sampling as S  # noqa: E402

VOCAB = ["G", "A", "B", "c", "d", "e", "|", "2", "</s>", "^F"]
LOGITS = torch.tensor([2.5, 1.8, 1.2, 0.9, 0.3, -0.2, 1.5, -1.0, -2.0, 0.0])
PROBS = torch.softmax(LOGITS, -1).numpy()
KEPT_HEX, CUT_HEX = plots.COLORS["kept"].lower(), plots.COLORS["cut"].lower()


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def readable_texts(fig) -> list[Text]:
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def rgba_now(fig) -> np.ndarray:
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba()).copy()


def rgba_saved(fig) -> np.ndarray:
    """A full render that ignores the static cache (savefig draws everything)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="rgba", dpi=fig.dpi)
    w, h = fig.canvas.get_width_height(physical=True)
    return np.frombuffer(buf.getvalue(), np.uint8).reshape(h, w, 4)


# --------------------------------------------------------------------------------------------
# the distribution bar plot


def test_bars_show_the_top_tokens_most_likely_first_with_their_names():
    p = plots.plot_distribution(PROBS, VOCAB, top=5)
    assert p.labels == ["G", "A", "|", "B", "c"]
    assert [t.get_text() for t in p.ax.get_xticklabels()] == p.labels
    np.testing.assert_allclose(p.heights, np.sort(PROBS)[::-1][:5])
    assert p.ax.get_ylabel() == "probability" and p.ax.get_xlabel()
    assert [t.get_text() for t in p.values][0] == f"{PROBS[0]:.0%}"


def test_text_is_projector_size_and_colours_are_colour_blind_safe():
    p = plots.plot_distribution(PROBS, VOCAB, kept=PROBS > 0.1, after=PROBS, title="t",
                                thresholds={"min_p": "min-p"}, cutoff_label="top-k")
    p.fig.canvas.draw()
    sizes = {t.get_text(): t.get_fontsize() for t in readable_texts(p.fig)}
    assert sizes and min(sizes.values()) >= 14, sizes
    # kept and cut differ in lightness too, so they survive any colour vision deficiency

    def lum(c):
        return float(np.dot(to_rgb(c), [0.2126, 0.7152, 0.0722]))

    assert lum(CUT_HEX) - lum(KEPT_HEX) > 0.3


def test_kept_tokens_are_blue_and_cut_ones_grey_but_still_visible():
    kept = PROBS >= PROBS[3]                                # G A | B c kept ... c is rank 5
    p = plots.plot_distribution(PROBS, VOCAB, top=7, kept=kept)
    shown_kept = kept[p.tokens]
    assert p.colors == [KEPT_HEX if k else CUT_HEX for k in shown_kept]
    cut_bars = [b for b, k in zip(p.bars, shown_kept, strict=True) if not k]
    assert cut_bars and all(b.get_height() > 0 and 0 < b.get_alpha() < 1 for b in cut_bars)


def test_update_moves_the_same_artists_in_place_and_makes_no_figure():
    p = plots.plot_distribution(PROBS, VOCAB, top=6)
    bars, figures = list(p.bars), plt.get_fignums()
    flat = torch.softmax(LOGITS / 3, -1).numpy()
    kept = np.zeros(len(VOCAB), bool)
    kept[:2] = True
    p.update(flat, kept, after=np.where(kept, flat / flat[kept].sum(), 0))
    assert list(p.bars) == bars and plt.get_fignums() == figures
    np.testing.assert_allclose(p.heights, flat[p.tokens])
    assert p.colors[:2] == [KEPT_HEX, KEPT_HEX] and p.colors[2] == CUT_HEX
    marks = p.after_line.get_ydata()
    assert np.isfinite(marks[:2]).all() and np.isnan(marks[2:]).all()   # cut: no marker


def test_thresholds_and_cutoff_lines_move_and_hide():
    p = plots.plot_distribution(PROBS, VOCAB, top=6, thresholds={"min_p": "min-p × top"})
    line = p.thresholds["min_p"]
    assert not line.get_visible()
    p.set_threshold("min_p", 0.1 * PROBS.max())
    assert line.get_visible() and line.get_ydata()[0] == pytest.approx(0.1 * PROBS.max())
    p.set_threshold("min_p", None)
    assert not line.get_visible()
    p.set_cutoff(3)
    assert p.cutoff.get_visible() and p.cutoff.get_xdata()[0] == 2.5
    p.set_cutoff(None)
    assert not p.cutoff.get_visible()
    p.set_threshold("new", 0.05)                            # a new name adds a line
    assert "new" in p.thresholds and "new" in [t.get_text() for t in p.legend.get_texts()]


def test_bad_data_gets_a_clear_error():
    with pytest.raises(ValueError, match="labels"):
        plots.plot_distribution(PROBS, VOCAB[:3])
    with pytest.raises(ValueError, match="top"):
        plots.top_tokens(PROBS, 0)
    p = plots.plot_distribution(PROBS, VOCAB)
    with pytest.raises(ValueError, match="probs must have"):
        p.update(PROBS[:4])
    with pytest.raises(ValueError, match="kept"):
        p.update(PROBS, kept=np.ones(3, bool))
    with pytest.raises(ValueError, match="1-D"):
        plots.as_array(np.ones((2, 3)))


def test_torch_tensors_and_a_batch_of_one_are_accepted():
    p = plots.plot_distribution(torch.softmax(LOGITS, -1)[None], VOCAB, kept=torch.ones(10) > 0)
    np.testing.assert_allclose(p.heights, np.sort(PROBS)[::-1][:10], rtol=1e-6)


# --------------------------------------------------------------------------------------------
# top-p staircase, histogram, draw, chain orders, entropy curve


@pytest.mark.parametrize("p", [0.3, 0.6, 0.8, 0.95, 1.0])
def test_staircase_keeps_what_top_p_keeps(p):
    s = plots.plot_top_p_staircase(PROBS, VOCAB, p=p, top=10)
    library = S.explain(LOGITS, S.chain(S.top_p(p)), seed=0).stages[-1]
    assert s.n_kept == library.n_kept
    assert s.kept_mass == pytest.approx(PROBS[library.kept].sum())
    assert s.p_line.get_ydata()[0] == p
    bottoms = [b.get_y() for b in s.bars]
    np.testing.assert_allclose(bottoms, np.cumsum(np.sort(PROBS)[::-1]) - np.sort(PROBS)[::-1])
    assert f"keeps {library.n_kept} token" in s.kept_text.get_text()


def test_staircase_leaves_out_tokens_already_removed():
    after_top_k = S.explain(LOGITS, S.chain(S.top_k(3)), seed=0).stages[-1].probs
    s = plots.plot_top_p_staircase(after_top_k, VOCAB, p=0.9, top=8)
    assert [b.get_visible() for b in s.bars] == [True] * 3 + [False] * 5
    assert s.labels[3:] == [""] * 5


def test_histogram_of_seeded_draws_converges_on_the_distribution():
    draws = S.draw(LOGITS.expand(4000, -1).contiguous(), torch.Generator().manual_seed(0))
    h = plots.plot_draw_histogram(PROBS, draws[:20], VOCAB, top=6)
    gap_20 = h.max_gap
    bars = list(h.freq_bars)
    h.update(draws)
    assert list(h.freq_bars) == bars and h.n == 4000
    assert h.freqs.sum() == pytest.approx(1.0)
    assert h.max_gap < gap_20 and h.max_gap < 0.03
    assert h.ax.get_title() == "4,000 draws"


def test_draw_plot_marks_the_token_the_sampler_drew():
    e = S.explain(LOGITS, S.chain(S.top_k(4)), seed=3, vocab=VOCAB)
    d = plots.plot_draw(e.stages[-1].probs, e.draw.u, VOCAB)   # token found from u alone
    assert d.token == e.draw.token
    assert d.interval == pytest.approx(e.draw.interval)
    assert to_hex(d.segments[d.token].get_facecolor()) == plots.COLORS["drawn"].lower()
    assert d.u_line.get_xdata()[0] == e.draw.u
    assert e.draw.name in d.drawn_text.get_text()
    cut = np.flatnonzero(~e.stages[-1].kept)
    assert all(d.segments[i].get_width() == 0 for i in cut)


def test_chain_orders_side_by_side_on_the_same_tokens():
    probs = torch.softmax(LOGITS / 2, -1).numpy()
    first = S.explain(LOGITS, S.temperature_first(temperature=2, top_p=0.7), seed=0).stages[-1]
    last = S.explain(LOGITS, S.temperature_last(temperature=2, top_p=0.7), seed=0).stages[-1]
    c = plots.plot_chain_orders(probs, first.kept, last.kept, VOCAB, after_left=first.probs,
                                after_right=last.probs, top=8)
    assert list(c.left.tokens) == list(c.right.tokens)
    assert c.left.ax.get_title() == f"temperature first: keeps {first.n_kept} tokens"
    assert c.right.ax.get_title() == f"temperature last: keeps {last.n_kept} tokens"
    assert first.n_kept > last.n_kept             # flattening first lets more notes reach p
    assert c.left.ax.get_ylim() == c.right.ax.get_ylim()


def test_entropy_curve_and_its_dot():
    ts = np.geomspace(0.05, 5, 50)
    hs = np.linspace(0, 3, 50)
    c = plots.plot_entropy_curve(ts, hs, max_bits=np.log2(10), current=(1.0, 1.5))
    assert c.dot.get_xdata()[0] == 1.0 and "H = 1.50 bits" in c.dot_text.get_text()
    assert c.ax.get_xscale() == "log"


# --------------------------------------------------------------------------------------------
# the static layer: fast redraws that look exactly like full ones


def test_cached_static_layer_draws_the_same_pixels_as_a_full_render():
    fig, (ax1, ax2) = plots.new_figure(1, 2, figsize=(10, 4), show=False)
    d = plots.plot_distribution(PROBS, VOCAB, kept=PROBS > 0.05, after=PROBS, ax=ax1,
                                thresholds={"min_p": "min-p"}, ylim=(0, 1))
    s = plots.plot_top_p_staircase(PROBS, VOCAB, p=0.8, ax=ax2)
    layer = plots.cache_static(fig, d.dynamic + s.dynamic)
    assert np.array_equal(rgba_now(fig), rgba_saved(fig))
    assert layer.rebuilds == 1
    flat = torch.softmax(LOGITS / 2.5, -1).numpy()
    d.update(flat, flat > 0.08, flat, draw=False)
    d.set_threshold("min_p", 0.2 * flat.max())
    s.update(flat, 0.6)
    assert np.array_equal(rgba_now(fig), rgba_saved(fig))
    assert layer.rebuilds == 1                               # the static part was reused
    ax1.set_ylim(0, 0.5)                                     # new ticks: rebuilt once
    assert np.array_equal(rgba_now(fig), rgba_saved(fig))
    assert layer.rebuilds == 2
    layer.disable()                                          # back to plain full draws
    assert np.array_equal(rgba_now(fig), rgba_saved(fig))
    assert layer.rebuilds == 2


def test_figure_png_is_a_png():
    p = plots.plot_distribution(PROBS, VOCAB)
    assert plots.figure_png(p.fig).startswith(b"\x89PNG")
