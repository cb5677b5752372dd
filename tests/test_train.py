"""Training: seeded, resumable, learns something, loads back safely."""

from __future__ import annotations

import json

import torch

from toolkit import data, load_model
from toolkit.cli import main as cli
from toolkit.lm.ngram import NGram
from toolkit.lm.train import evaluate, train_model


def test_training_on_the_toy_set_lowers_validation_loss_and_resumes(tmp_path):
    recs = data.load_toy()
    train, valid = recs[4:], recs[:4]
    small = dict(emb=16, hidden=48, layers=1, batch_size=8, lr=1e-2, progress=False, seed=1)
    m0, h0 = train_model(train, valid, epochs=1, out_dir=tmp_path / "a", **small)
    m1, h1 = train_model(train, valid, epochs=6, out_dir=tmp_path / "a", resume=True, **small)
    assert [h["epoch"] for h in h1] == [1, 2, 3, 4, 5, 6]  # resumed, not restarted
    assert h1[0] == h0[0]
    assert min(h["valid_loss"] for h in h1) < h0[0]["valid_loss"]
    again, h2 = train_model(train, valid, epochs=1, out_dir=tmp_path / "b", **small)
    assert h2[0]["train_loss"] == h0[0]["train_loss"]  # same seed, same schedule: same run
    loaded = load_model(tmp_path / "a")
    calibration = loaded.info["calibration"]  # the clock head's last stage, dropout off
    assert [c["epoch"] for c in calibration] == [1, 2]
    best = min(h["valid_loss"] for h in h1 + calibration)
    assert abs(evaluate(loaded, valid) - best) < 1e-3
    assert abs(evaluate(m1, valid) - best) < 1e-3


def test_calibration_moves_only_the_clock_head_and_never_worsens_validation(tmp_path):
    recs = data.load_toy()
    train, valid = recs[4:], recs[:4]
    small = dict(emb=16, hidden=48, layers=1, batch_size=8, lr=1e-2, progress=False, seed=1)
    plain, hist = train_model(train, valid, epochs=3, calibrate_epochs=0, **small)
    tuned, _ = train_model(train, valid, epochs=3, calibrate_epochs=3, **small)
    assert "calibration" not in plain.info and len(tuned.info["calibration"]) == 3
    for (name, a), (_, b) in zip(plain.state_dict().items(), tuned.state_dict().items(),
                                 strict=True):
        assert torch.equal(a, b) == (name != "clock_bias.weight"), name
    assert evaluate(tuned, valid) <= evaluate(plain, valid) + 1e-6
    assert all(p.requires_grad for p in tuned.parameters())  # unfrozen again for more training


def test_train_cli_on_abc_files_reports_bad_files(tmp_path, capsys):
    good = data.TOY_PATH.read_text()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "good.abc").write_text(good)
    (tmp_path / "mine" / "broken.abc").write_text("X:1\nM:6/8\nK:D\nd2e f#d|\n")
    rc = cli(["train", "--data", str(tmp_path / "mine"), "--epochs", "1", "--hidden", "16",
              "--emb", "8", "--layers", "1", "--out", str(tmp_path / "run")])
    assert rc == 0
    err = capsys.readouterr().err
    assert "broken.abc" in err and "'#'" in err
    meta = json.loads((tmp_path / "run" / "folk_lstm.json").read_text())
    assert meta["info"]["history"][0]["epoch"] == 1


def test_ngram_baseline_prefers_seen_continuations():
    m = NGram(3).fit([["<s>", "a", "b", "c", "</s>"]] * 5 + [["<s>", "a", "c", "</s>"]])
    assert m.prob(("<s>", "a"), "b") > m.prob(("<s>", "a"), "c") > m.prob(("<s>", "a"), "a")
    total = sum(m.prob(("a",), t) for t in m.vocab)
    assert 0.95 < total <= 1.0 + 1e-9


def test_resume_continues_the_runs_own_network_and_never_undoes_calibration(tmp_path):
    recs = data.load_toy()
    train, valid = recs[4:], recs[:4]
    small = dict(emb=16, hidden=48, layers=1, batch_size=8, lr=1e-2, progress=False, seed=1)
    # a run made before the clock head existed resumes as it was, whatever today's defaults
    old, _ = train_model(train, valid, epochs=1, out_dir=tmp_path / "old", clock_head=False,
                         **small)
    more, hist = train_model(train, valid, epochs=2, out_dir=tmp_path / "old", resume=True,
                             **small)
    assert more.clock_bias is None and [h["epoch"] for h in hist] == [1, 2]
    # resuming a finished, calibrated run calibrates from where it stands, never worse
    done, _ = train_model(train, valid, epochs=2, out_dir=tmp_path / "new", **small)
    before = evaluate(load_model(tmp_path / "new"), valid)
    again, _ = train_model(train, valid, epochs=2, out_dir=tmp_path / "new", resume=True,
                           **small)
    assert evaluate(again, valid) <= before + 1e-6


def test_a_batch_run_in_parts_takes_the_whole_batchs_step_and_scores_the_same():
    """parts() bounds training memory; the gradient and the validation loss must not change."""
    from toolkit.lm.train import (
        UNKNOWNS,
        _ids,
        _loss,
        _scored,
        batches,
        new_model,
        new_transformer,
        parts,
    )

    recs = data.load("valid")[:40]
    for net in (new_model(recs, emb=16, hidden=32, layers=1, dropout=0.0, seed=0),
                new_transformer(recs, dim=16, layers=1, heads=2, dropout=0.0, seed=0)):
        ignore = torch.tensor([0] + [net.stoi[u] for u in UNKNOWNS])
        x = max(batches(_ids(recs, net.stoi), 16), key=lambda b: b.shape[1])
        split = parts(x, max_tokens=3 * x.shape[1])             # 3 rows a part, padding cut
        assert len(split) == -(-x.shape[0] // 3) > 1
        assert all(p.shape[1] <= x.shape[1] for p in split)
        assert sum(p.shape[0] for p in split) == x.shape[0]
        assert sum(_scored(p, ignore) for p in split) == _scored(x, ignore)
        grads = []
        for pieces in ([x], split):
            net.zero_grad()
            for p in pieces:
                loss, _ = _loss(net, p, ignore)
                (loss / _scored(x, ignore)).backward()
            grads.append(torch.cat([q.grad.flatten() for q in net.parameters()
                                    if q.grad is not None]))
        torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-6)
        import toolkit.lm.train as T

        old = T.PART_TOKENS
        try:
            T.PART_TOKENS = 10**9                                  # every batch whole
            whole = evaluate(net, recs)
            T.PART_TOKENS = 64                                     # in many small parts
            assert abs(evaluate(net, recs) - whole) < 1e-5
        finally:
            T.PART_TOKENS = old
