"""The transformer: its cache and recurrent state give what a full pass gives, attention is
causal, the phrase clock counts bars, and it saves, loads and trains like the LSTM."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.lm.model import ARCHS, SHIPPED, load_model, network_from, save_model
from toolkit.lm.transformer import PHRASE_MAX, FolkTransformer, PhraseClock, TransformerConfig
from toolkit.music.check import SECTION_ENDS, SECTION_STARTS
from toolkit.music.tokens import BARS, ENDINGS

pytestmark = pytest.mark.usefixtures("one_thread")

VOCAB = ["<pad>", "<s>", "</s>", "M:6/8", "M:?", "K:maj", "K:?", "S:irish", "S:?", "|", "|:",
         ":|", "::", "||", "[1", "[2", "C", "D", "E", "G", "2", "3", "/2", ">", "(3", "-", "z"]
BODY = list(range(9, len(VOCAB)))


def tiny(attention: str, **kw) -> FolkTransformer:
    torch.manual_seed(0)
    return FolkTransformer(TransformerConfig(VOCAB, dim=16, layers=2, heads=2,
                                             attention=attention, **kw)).eval()


MODELS = {kind: tiny(kind) for kind in ("softmax", "linear")}
tunes = st.lists(st.sampled_from(BODY), min_size=1, max_size=40).map(
    lambda body: [1, 3, 5, 7, *body])


@pytest.mark.parametrize("kind", ["softmax", "linear"])
@settings(max_examples=25, deadline=None)
@given(ids=tunes, cut=st.integers(1, 44))
def test_cache_and_steps_give_what_one_pass_gives(kind, ids, cut):
    """Generation feeds the header, then the primer, then one token at a time, reusing the
    key/value cache (softmax) or the running sums (linear); the logits must be the full pass's."""
    model = MODELS[kind]
    x = torch.tensor([ids])
    with torch.no_grad():
        full, _ = model(x)
        cut = min(cut, len(ids) - 1) or 1
        first, state = model(x[:, :cut])
        parts = [first]
        for i in range(cut, len(ids)):
            logits, state = model.step(x[:, i], state)
            parts.append(logits[:, None])
    assert torch.allclose(torch.cat(parts, 1), full, atol=1e-5)


@pytest.mark.parametrize("kind", ["softmax", "linear"])
def test_a_later_token_never_changes_an_earlier_prediction(kind):
    model = MODELS[kind]
    a = torch.tensor([[1, 3, 5, 7, 10, 16, 20, 17, 9, 18]])
    b = a.clone()
    b[0, 7:] = torch.tensor([26, 13, 22])
    with torch.no_grad():
        la, _ = model(a)
        lb, _ = model(b)
    assert torch.allclose(la[:, :7], lb[:, :7], atol=1e-6)
    assert not torch.allclose(la[:, 7:], lb[:, 7:], atol=1e-4)


def test_the_cache_grows_past_its_first_room_and_matches_the_full_pass():
    """The key/value cache starts as long as the header and doubles when full."""
    model = MODELS["softmax"]
    ids = torch.tensor([[1, 3, 5, 7] + [16, 20, 9] * 30])
    with torch.no_grad():
        full, _ = model(ids)
        logits, state = model(ids[:, :4])
        for i in range(4, ids.shape[1]):
            logits, state = model.step(ids[:, i], state)
    assert state[0][0][0].shape[2] >= ids.shape[1]            # room for every position
    assert torch.allclose(logits, full[:, -1], atol=1e-5)


def test_softmax_attention_rows_are_distributions_over_the_past():
    w = MODELS["softmax"].attention_along(["<s>", "M:6/8", "K:maj", "S:irish", "|:", "C", "2",
                                           "D", "|", "C", "2", "D"])
    assert w.shape == (2, 2, 12, 12)                           # layers, heads, T, T
    assert torch.allclose(w.sum(-1), torch.ones(2, 2, 12), atol=1e-5)
    assert float(w.triu(1).abs().max()) == 0.0                 # nothing from the future


def test_linear_attention_weights_are_causal_too():
    w = MODELS["linear"].attention_along(["M:6/8", "K:maj", "S:irish", "|:", "C", "2", "D"])
    assert w.shape[-1] == 7 and float(w.triu(1).abs().max()) == 0.0


def _phrase_reference(tokens: list[str]) -> list[int]:
    marks = set(SECTION_ENDS) | set(SECTION_STARTS) | set(ENDINGS)
    out, bars, at_mark = [], 0, 0
    for t in tokens:
        bars += t in BARS
        if t in marks:
            at_mark = bars
        out.append(min(bars - at_mark, PHRASE_MAX))
    return out


@settings(max_examples=60, deadline=None)
@given(ids=st.lists(st.sampled_from(BODY), min_size=1, max_size=60), cut=st.integers(0, 60))
def test_phrase_clock_counts_bars_since_the_last_section_mark(ids, cut):
    """In one call or two (carrying the state), it equals a plain count."""
    clock = PhraseClock(VOCAB)
    x = torch.tensor([ids])
    whole, _ = clock.run(x)
    assert whole[0].tolist() == _phrase_reference([VOCAB[i] for i in ids])
    cut = min(cut, len(ids) - 1)
    if cut:
        a, state = clock.run(x[:, :cut])
        b, _ = clock.run(x[:, cut:], state)
        assert torch.cat((a, b), 1).tolist() == whole.tolist()


@pytest.mark.parametrize("kw, words", [
    ({"attention": "flash"}, "attention must be one of"),
    ({"dim": 18, "heads": 4}, "must split into 4 heads"),
    ({"layers": 0}, "layers must be an integer >= 1"),
    ({"bar_clock": False, "clock_head": True}, "clock_head=True needs bar_clock=True"),
])
def test_bad_config_is_refused_with_a_reason(kw, words):
    with pytest.raises(ValueError, match=words):
        TransformerConfig(VOCAB, **kw)


@pytest.mark.parametrize("kind", ["softmax", "linear"])
def test_save_and_load_give_the_same_network(kind, tmp_path):
    model = MODELS[kind]
    path = save_model(model, tmp_path)
    assert path.name == {"softmax": "folk_transformer.safetensors",
                         "linear": "folk_transformer_linear.safetensors"}[kind]
    back = load_model(tmp_path)
    assert type(back) is FolkTransformer and back.config.attention == kind
    x = torch.tensor([[1, 3, 5, 7, 10, 16, 20]])
    with torch.no_grad():
        assert torch.equal(back(x)[0], model(x)[0])


def test_unknown_names_and_kinds_are_refused_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="name one of"):
        load_model("gpt")
    with pytest.raises(ValueError, match="unknown network kind 'gru'"):
        network_from({"arch": "gru", "config": {}})
    assert set(ARCHS) == {"lstm", "transformer"}
    assert set(SHIPPED) == {"lstm", "transformer", "transformer-linear"}


def test_training_a_tiny_transformer_lowers_its_loss_and_resumes(tmp_path):
    from toolkit.lm import data as D
    from toolkit.lm.train import evaluate, new_transformer, train_model

    recs = D.load_toy()
    model = new_transformer(recs, dim=16, layers=1, heads=2)
    before = evaluate(model, recs[:4])
    trained, history = train_model(recs[4:], recs[:4], model=model, epochs=3, stop_after=2,
                                   out_dir=tmp_path, progress=False, lr=1e-2)
    assert len(history) == 2 and history[-1]["valid_loss"] < before
    resumed, history = train_model(recs[4:], recs[:4], epochs=3, out_dir=tmp_path,
                                   resume=True, progress=False, lr=1e-2)
    assert type(resumed) is FolkTransformer and len(history) == 3


def test_generation_sizes_the_cache_once_and_writes_the_same_tunes(monkeypatch):
    """sized_for only changes where the keys and values live, never a tune."""
    from toolkit import generate
    from toolkit.lm.network import Network

    model = load_model("transformer")
    with model.sized_for(50):
        _, state = model(model.token_ids(["<s>", "M:6/8"])[None])
        assert state[0][0][0].shape[2] == 50                 # the first layer's keys: 50 places
        _, state = model.step(model.token_ids(["K:maj"]), state)
        assert state[0][0][0].shape[2] == 50 and state[0][0][2] == 3
    assert all(block.attn.room is None for block in model.blocks)  # back to growing
    sized = generate(model, n=6, seed=11, max_tokens=80)
    monkeypatch.setattr(type(model), "sized_for", Network.sized_for)
    grown = generate(model, n=6, seed=11, max_tokens=80)
    assert [t.tokens for t in sized] == [t.tokens for t in grown]
    assert [t.logprobs for t in sized] == [t.logprobs for t in grown]
