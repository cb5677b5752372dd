"""The shipped model and the generation loop, as a user meets them."""

from __future__ import annotations

import json
import math

import pytest
import torch

from toolkit import generate, load_model
from toolkit import sampling as S
from toolkit.cli import main as cli
from toolkit.music.tokens import EOS, ABCSyntaxError, UnknownTokenError, decode, encode_fragment
from toolkit.music.tune import Tune


@pytest.fixture(scope="module")
def model():
    return load_model()


def test_shipped_model_loads_offline_with_its_card(model):
    assert 1_000_000 <= model.num_parameters <= 3_000_000
    assert model.info["history"], "the weights carry their training history"
    assert set(model.choices("style")) >= {"irish", "german", "chinese", "scottish"}
    assert "6/8" in model.choices("meter") and "maj" in model.choices("mode")


def test_same_seed_same_tunes_and_different_seed_differs(model):
    a = generate(model, n=3, seed=11, meter="6/8", style="irish", max_tokens=120)
    b = generate(model, n=3, seed=11, meter="6/8", style="irish", max_tokens=120)
    c = generate(model, n=3, seed=12, meter="6/8", style="irish", max_tokens=120)
    assert [t.abc for t in a] == [t.abc for t in b]
    assert [t.tokens for t in a] == [t.tokens for t in b]
    assert [t.tokens for t in a] != [t.tokens for t in c]


def test_generated_text_is_written_on_first_reading_and_is_the_decoded_tokens(model):
    tunes = generate(model, n=4, seed=5, max_tokens=80, key="G")
    assert all(t._abc is None for t in tunes), "a batch that is only scored writes no text"
    for i, t in enumerate(tunes):
        assert t.abc == decode(t.tokens, key="G", number=i + 1,
                               title=f"Folk Sampler tune {i + 1} (seed 5)")
        assert t._abc is t.abc  # written once
    edited = tunes[0]
    edited.abc = edited.abc.replace("K:G", "K:A")
    assert "K:A" in edited.abc and edited != tunes[1]
    with pytest.raises(TypeError, match="abc"):
        Tune(tokens=["C"])


def test_generation_always_stops_and_records_what_it_did(model):
    tunes = generate(model, n=8, seed=3, max_tokens=40, sampler=S.chain(S.temperature(3.0)))
    for t in tunes:
        body = len(t.tokens) - 4
        assert body <= 40
        assert t.tokens[-1] == EOS or body == 40
        assert len(t.logprobs) == len(t.tokens)
        assert t.logprobs[:4] == [None] * 4
        assert all(lp <= 0 and math.isfinite(lp) for lp in t.logprobs[4:])
        assert t.settings["seed"] == 3 and "Temperature(3" in t.settings["sampler"]
        assert t.abc.startswith("X:") and "\nK:" in t.abc


def test_conditioning_and_prime_lead_the_tune(model):
    tunes = generate(model, n=2, seed=5, meter="3/4", mode="min", style="scottish",
                     prime="|: A2 B c |", key="A", max_tokens=30)
    prime = encode_fragment("|: A2 B c |", key="A", mode="min")
    for t in tunes:
        assert t.tokens[:4] == ["<s>", "M:3/4", "K:min", "S:scottish"]
        assert t.tokens[4:4 + len(prime)] == prime
        assert "K:Amin" in t.abc


def test_no_body_contains_header_or_padding_tokens(model):
    tunes = generate(model, n=16, seed=9, max_tokens=64, sampler=S.chain(S.temperature(5.0)))
    for t in tunes:
        assert not any(tok[:2] in ("M:", "K:", "S:") or tok in ("<pad>", "<s>")
                       for tok in t.tokens[4:])


@pytest.mark.parametrize("kwargs, words", [
    ({"n": 0}, ["n", "0"]),
    ({"max_tokens": -1}, ["max_tokens", "-1"]),
    ({"seed": -5}, ["seed", "-5"]),
    ({"meter": "7/9"}, ["meter", "7/9", "6/8"]),
    ({"style": "klingon"}, ["style", "klingon", "irish"]),
    ({"mode": "happy"}, ["mode", "happy", "maj"]),
    ({"guidance": 2.0}, ["guidance", "style"]),
    ({"guidance": -1, "style": "irish"}, ["guidance", "-1"]),
    ({"temperature": 1.0, "sampler": S.chain(S.top_p(0.9))}, ["sampler", "temperature"]),
    ({"key": "H"}, ["key", "'H'", "Bb"]),  # checked before the tunes are written (lazily)
    ({"key": "B#"}, ["key", "'B#'", "cannot spell"]),  # ^d would need a triple sharp
])
def test_bad_arguments_raise_clear_errors(model, kwargs, words):
    with pytest.raises(ValueError) as err:
        generate(model, **kwargs)
    for w in words:
        assert w in str(err.value)


@pytest.mark.parametrize("not_a_model", ["lstm", None, 3])
def test_generate_without_a_network_says_how_to_load_one(not_a_model):
    with pytest.raises(ValueError, match=r"^model must be a network from load_model\(\), got"):
        generate(not_a_model, n=1)


def test_load_model_names_what_it_takes(tmp_path):
    from toolkit import load_model

    stray = tmp_path / "notes.txt"
    stray.write_text("not weights")
    broken = tmp_path / "mine.safetensors"
    broken.write_bytes(b"hello")
    (tmp_path / "mine.json").write_text('{"config": {}}')
    for path, words in [(3, "path must be a shipped network's name"),
                        (stray, "is not a network's weights"),
                        (broken, "cannot load the network at")]:
        with pytest.raises(ValueError, match=words):
            load_model(path)
    for device in ("tpu", "meta", "cpu:1"):
        with pytest.raises(ValueError, match=rf"device must be 'cpu' or 'cuda'.* got '{device}'"):
            load_model(device=device)
    assert load_model(device="cpu:0").info["id"] == load_model().info["id"]
    with pytest.raises(ValueError, match="path must be"):
        load_model("")
    with pytest.raises(FileNotFoundError, match="no model weights at"):
        load_model(tmp_path / "missing")


def test_bad_primer_names_the_symbol_and_where(model):
    with pytest.raises(ABCSyntaxError) as err:
        generate(model, prime="|: d2e f#d |")
    assert "'#'" in str(err.value) and err.value.column == 9
    with pytest.raises(UnknownTokenError) as err:  # good ABC, but far above anything in the data
        generate(model, prime="d c'''' |")
    assert err.value.token == "c''''"                 # as the student wrote it, in D
    assert (err.value.line, err.value.column) == (1, 3)
    assert err.value.suggestion is not None and "did you mean" in str(err.value)
    assert "line 1, column 3" in str(err.value)
    with pytest.raises(UnknownTokenError) as err:  # a double sharp: spelled in the display key
        generate(model, prime="|: d2e f^^gd |", key="D")
    assert err.value.token == "^^g" and err.value.column == 9
    assert err.value.suggestion == "a"                # the same pitch, spelled as the model knows


def test_guidance_changes_the_distribution(model):
    plain = generate(model, n=4, seed=2, style="chinese", max_tokens=60)
    guided = generate(model, n=4, seed=2, style="chinese", guidance=3.0, max_tokens=60)
    assert [t.tokens for t in plain] != [t.tokens for t in guided]
    assert guided[0].settings["guidance"] == 3.0


def test_both_guidance_routes_give_the_same_tokens(model):
    """generate(guidance=s) is S.guidance(s) first in the chain: one formula, one home."""
    chain = S.chain(S.temperature(1.1), S.top_p(0.95))
    by_argument = generate(model, n=4, seed=5, style="irish", meter="6/8", guidance=2.5,
                           sampler=chain, max_tokens=80)
    by_step = generate(model, n=4, seed=5, style="irish", meter="6/8",
                       sampler=S.chain(S.guidance(2.5), chain), max_tokens=80)
    assert [t.tokens for t in by_argument] == [t.tokens for t in by_step]
    unguided = generate(model, n=4, seed=5, style="irish", meter="6/8", sampler=chain,
                        max_tokens=80)
    assert [t.tokens for t in unguided] != [t.tokens for t in by_step]


@pytest.mark.parametrize("route", ["argument", "step"])
def test_guided_logits_are_uncond_plus_scale_times_the_difference(model, route):
    """The first note's logits, as the chain sees them after guidance, against the formula
    computed by hand from the model's two predictions (style given, style hidden)."""
    seen = []

    def spy(logits):
        if not seen:
            seen.append(logits.clone())
        return logits

    s = 3.0
    kwargs = {"guidance": s, "sampler": S.chain(spy)} if route == "argument" else \
        {"sampler": S.chain(S.guidance(s), spy)}
    generate(model, n=1, seed=0, meter="6/8", mode="maj", style="irish", max_tokens=2, **kwargs)
    cond = model.next_logits("M:6/8 K:maj S:irish").double()
    uncond = model.next_logits("M:6/8 K:maj S:?").double()
    expected = uncond + s * (cond - uncond)
    alive = torch.isfinite(seen[0][0])
    assert int(alive.sum()) > 5                          # header tokens etc. are masked
    assert torch.allclose(seen[0][0][alive].double(), expected[alive], atol=1e-3)
    wrong = cond + s * (cond - uncond)                   # the mutation this test must catch
    assert not torch.allclose(seen[0][0][alive].double(), wrong[alive], atol=1e-3)


def test_next_logits_is_the_models_distribution(model):
    logits = model.next_logits("M:6/8 K:maj S:irish |: G A")
    assert logits.shape == (model.vocab_size,)
    p = torch.softmax(logits, -1)
    assert abs(float(p.sum()) - 1) < 1e-5
    top = model.vocab[int(p.argmax())]
    assert top not in ("<pad>", "<s>")


def test_cli_generate_writes_tunes_and_run_json(tmp_path, capsys):
    out = tmp_path / "gen"
    rc = cli(["generate", "--n", "3", "--temperature", "1.1", "--top-p", "0.9", "--seed", "1",
              "--max-tokens", "80", "--out", str(out)])
    assert rc == 0
    log = json.loads((out / "run.json").read_text())
    run = log["runs"][0]
    assert run["temperature"] == 1.1 and run["top_p"] == 0.9 and run["seed"] == 1
    assert len(run["files"]) == 3 and all(f.endswith(".abc") for f in run["files"])
    assert len(run["validity"]) == 3 and "seconds" in run
    assert (out / "tune_001.abc").read_text().startswith("X:")


def test_cli_grid_with_a_bad_setting_is_refused_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "grid"
    rc = cli(["generate", "--n", "2", "--temperature", "0.8,1.6", "--top-p", "0.9,1.5",
              "--seed", "1", "--max-tokens", "40", "--out", str(out)])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "top_p" in err and "1.5" in err
    assert not out.exists()


def test_cli_rejects_a_bad_argument_with_one_line(capsys):
    rc = cli(["generate", "--n", "1", "--meter", "7/9", "--out", "/tmp/never"])
    assert rc == 2
    assert "meter must be one of" in capsys.readouterr().err


def test_a_model_that_knows_no_style_still_generates():
    """A tiny model trained on unlabelled tunes has no style values: the slot stays unknown."""
    from toolkit.lm.model import FolkLSTM, ModelConfig

    vocab = ["<pad>", "<s>", "</s>", "M:?", "K:?", "S:?", "M:6/8", "K:maj", "|", "C", "D", "2"]
    tiny = FolkLSTM(ModelConfig(vocab, emb=8, hidden=8, layers=1, bar_clock=True)).eval()
    tunes = generate(tiny, n=3, seed=0, max_tokens=12)
    assert all(t.tokens[3] == "S:?" and t.tokens[1] == "M:6/8" for t in tunes)
