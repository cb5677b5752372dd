"""Both shipped networks, and a network of your own, through the one interface
(``toolkit.lm.network``): generation, guidance, the grammar, explain, metrics, the studio, the
CLI and training take any of them unchanged.  Then the lessons built on the transformer: the
attention map and view, and the two-model explorer."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from toolkit import generate, load_model, metrics
from toolkit import sampling as S
from toolkit import studio as st
from toolkit.cli import main as cli
from toolkit.lessons import plots
from toolkit.lessons import widgets as W
from toolkit.lessons.attention import (
    CURRENT_COLOR,
    LATER_COLOR,
    AttentionMap,
    AttentionView,
    attention_colors,
    note_of_tokens,
)
from toolkit.lm import data as D
from toolkit.lm.network import Network
from toolkit.lm.train import evaluate, train_model
from toolkit.music.check import check_tokens
from toolkit.music.tokens import decode
from toolkit.music.tune import Tune

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module", params=["lstm", "transformer"])
def shipped(request):
    return load_model(request.param)


@pytest.fixture(scope="module")
def transformer():
    return load_model("transformer")


def test_the_shipped_transformer_is_a_transformer_and_loads_fast(transformer):
    assert transformer.arch == "transformer" and transformer.config.attention == "softmax"
    assert transformer.vocab == load_model("lstm").vocab        # the same tokens
    assert transformer.info["load_seconds"] < 1.0 + 4            # generous: CI machines vary


def test_the_linear_transformer_ships_too_and_generates():
    linear = load_model("transformer-linear")
    assert linear.config.attention == "linear"
    tunes = generate(linear, n=2, seed=0, max_tokens=60, constrain="grammar")
    assert all(check_tokens(t.tokens).ok for t in tunes)


def test_guidance_by_argument_and_by_step_give_the_same_tunes(shipped):
    a = generate(shipped, n=3, seed=5, style="irish", guidance=2.0, max_tokens=60)
    b = generate(shipped, n=3, seed=5, style="irish", max_tokens=60,
                 sampler=S.chain(S.guidance(2.0)))
    assert [t.tokens for t in a] == [t.tokens for t in b]


def test_grammar_makes_every_tune_valid_at_a_high_temperature(shipped):
    tunes = generate(shipped, n=6, seed=2, temperature=2.5, constrain="grammar", max_tokens=160)
    assert all(check_tokens(t.tokens).ok for t in tunes)


def test_explain_and_metrics_read_the_network_the_same_way(shipped):
    tokens = D.load("valid")[0]["tokens"][:40]
    e = S.explain(shipped.next_logits(tokens[:20]), S.chain(S.top_p(0.9)), seed=0,
                  vocab=shipped.vocab)
    assert e.stages[-1].n_kept >= 1
    bits = metrics.score_tokens(shipped, tokens)
    along = torch.log_softmax(shipped.logits_along(tokens[:-1]), -1)
    ids = shipped.token_ids(tokens[1:])
    logp = along[torch.arange(len(ids)), ids].numpy()
    assert np.allclose(bits, -logp / np.log(2), atol=1e-4)


def test_the_studio_writes_what_generate_writes(shipped):
    s = st.Settings(temperature=0.9, top_p=0.95, seed=11, meter="6/8", max_tokens=48)
    ours = st.new_tune(shipped, s)
    theirs = generate(shipped, n=1, seed=11, meter="6/8", max_tokens=48,
                      sampler=S.temperature_first(temperature=0.9, top_p=0.95))[0]
    assert ours.tokens == theirs.tokens


def test_cli_generates_with_the_transformer(tmp_path):
    out = tmp_path / "tf"
    assert cli(["generate", "--model", "transformer", "--n", "2", "--seed", "1",
                "--max-tokens", "60", "--out", str(out)]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["model"] == "folk_transformer" and len(run["runs"][0]["files"]) == 2


# a network of your own: it follows the interface, nothing else --------------------------------

@dataclass
class GRUConfig:
    vocab: list[str]
    hidden: int = 24


class MyGRU(Network):
    arch = "my-gru"

    def __init__(self, config: GRUConfig):
        super().__init__(config.vocab, config)
        self.embed = nn.Embedding(len(self.vocab), 16)
        self.gru = nn.GRU(16, config.hidden, batch_first=True)
        self.head = nn.Linear(config.hidden, len(self.vocab))

    def forward(self, x, state=None):
        h, state = self.gru(self.embed(x), state)
        return self.head(h), state

    def step(self, tokens, state=None):
        logits, state = self(tokens[:, None], state)
        return logits[:, 0], state


def test_your_own_network_trains_generates_and_is_explained():
    recs = D.load_toy()
    vocab = load_model().vocab
    torch.manual_seed(0)
    mine = MyGRU(GRUConfig(vocab))
    before = evaluate(mine, recs[:4])
    mine, history = train_model(recs[4:], recs[:4], model=mine, epochs=2, lr=1e-2,
                                progress=False)
    assert history[-1]["valid_loss"] < before
    tunes = generate(mine, n=2, seed=0, max_tokens=40, constrain="grammar")
    assert all(check_tokens(t.tokens).ok for t in tunes)
    assert st.new_tune(mine, st.Settings(seed=3, max_tokens=30)).tokens[0] == "<s>"


# the attention map and view ------------------------------------------------------------------

def test_note_of_tokens_gives_each_length_to_its_note():
    tokens = "<s> M:6/8 K:maj S:? |: G 2 > A - A | (3 B c d z 3 :|".split()
    notes = note_of_tokens(tokens)
    assert notes == [None] * 5 + [0, 0, 0, 1, 1, 2, None, None, 3, 4, 5, 6, 6, None]


@pytest.fixture(scope="module")
def repeating(transformer):
    """The first validation tune of form AABB with a bar written out twice (notebook 9's)."""
    for r in D.load("valid"):
        if metrics.form(r["tokens"]) == "AABB":
            amap = AttentionMap(transformer, r["tokens"])
            if amap.repeats:
                return r, amap
    raise LookupError("no repeating tune in the validation split")


def test_attention_map_finds_the_repeated_bars(repeating):
    _, amap = repeating
    for note, earlier in amap.repeats.items():
        assert earlier < note
        assert amap._note_key(note) == amap._note_key(earlier)      # the same written note
    row = amap.looking_at(amap.first_repeat())
    assert 0.0 < row.sum() <= 1.0 + 1e-5                              # the rest is on bar lines
    assert (row[amap.first_repeat():] == 0).all()                    # nothing from the future


def test_some_head_of_the_shipped_transformer_copies_the_repeated_bar(repeating):
    """What notebook 9 shows: one head puts much of its weight on the matching earlier note."""
    _, amap = repeating
    scores = amap.copy_scores()
    assert scores.shape == (amap.layers, amap.heads)
    assert np.nanmax(scores) > 0.3


def test_attention_view_paints_one_red_note_and_moves_with_the_slider(repeating, transformer):
    record, _ = repeating
    tune = Tune(decode(record["tokens"]), tokens=record["tokens"])
    view = AttentionView(transformer, tune)
    assert view.score.value.count(f'fill="{CURRENT_COLOR}"') == 1
    first = view.score.value
    view.note.value = 5
    assert view.score.value != first and "writing note 5" in view.caption.value
    view.layer.value, view.head.value = 0, 1
    assert view.weights[4:].sum() == 0
    with pytest.raises(TypeError, match="no attention to show"):
        AttentionView(load_model("lstm"), tune)


def test_attention_colors_mark_the_current_and_later_notes():
    colors = attention_colors(np.array([0.2, 0.0, 0.5, 0.0, 0.0]), 3)
    assert colors[3] == CURRENT_COLOR and colors[4] == LATER_COLOR
    assert len(set(colors[:3])) == 3                                  # three weights, three shades


def test_paint_notes_needs_one_colour_per_note(repeating):
    from toolkit.music.render import paint_notes

    record, _ = repeating
    tune = Tune(decode(record["tokens"]), tokens=record["tokens"])
    with pytest.raises(ValueError, match="but 2 colours were given"):
        paint_notes(tune.svg(), tune, ["#000000", None])


# the two-model explorer ----------------------------------------------------------------------

def test_models_explorer_applies_one_sampler_to_both(transformer):
    lstm = load_model("lstm")
    app = W.ModelsExplorer({"LSTM": lstm, "transformer": transformer},
                           "M:6/8 K:maj S:irish |: G A")
    for name in ("LSTM", "transformer"):
        assert abs(app.probs[name].sum() - 1) < 1e-6
    wide = dict(app.kept)
    app.temperature.value, app.top_p.value = 2.0, 0.5
    assert all(app.kept[n] <= max(wide[n], 1) for n in wide)
    assert all((app.probs[n] > 0).sum() == app.kept[n] for n in wide)
    with pytest.raises(ValueError, match="2 to 4 models"):
        W.ModelsExplorer({"LSTM": lstm}, "M:6/8 K:maj S:irish")


def test_entropy_curves_and_head_scores_refuse_bad_shapes():
    with pytest.raises(ValueError, match="one value per temperature"):
        plots.plot_entropy_curves([0.5, 1, 2], {"a": [1, 2]})
    with pytest.raises(ValueError, match="a \\(layers, heads\\) grid"):
        plots.plot_head_scores([0.1, 0.2])
    fig = plots.plot_head_scores(np.array([[0.1, 0.8], [0.2, np.nan]]))
    assert fig.axes[0].patches                                         # the best cell outlined


def test_the_other_lessons_take_the_transformer(transformer):
    """The steering studio, the schedule explorer and the slider apps build on it unchanged."""
    from toolkit.lessons.shaping import ScheduleExplorer
    from toolkit.lessons.steering_studio import SteeringStudio

    assert SteeringStudio(transformer).model is transformer
    explorer = ScheduleExplorer(transformer)
    assert explorer.trace.tunes[0].tokens[0] == "<s>"
