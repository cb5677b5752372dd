"""The command line: every failure a user can cause is one line and a non-zero exit code,
settings are checked before anything is created, and a batch logs each tune as it is written so
an interrupted run resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolkit.cli import main as cli

BAD_SETTINGS = [
    ["--n", "0"], ["--temperature", "-1"], ["--top-p", "1.5"], ["--top-k", "-3"],
    ["--style", "martian"], ["--meter", "7/9"], ["--formats", "abc,pdf"], ["--max-tokens", "0"],
    ["--key", "B#"], ["--guidance", "2"],               # guidance without a style
]


@pytest.mark.parametrize("bad", BAD_SETTINGS, ids=lambda b: " ".join(b))
def test_a_rejected_setting_creates_nothing(tmp_path, capsys, bad):
    out = tmp_path / "never"
    rc = cli(["generate", "--n", "2", "--max-tokens", "20", "--out", str(out), *bad])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert not out.exists()


def test_out_that_is_a_file_is_one_line(tmp_path, capsys):
    f = tmp_path / "taken.txt"
    f.write_text("mine")
    rc = cli(["generate", "--n", "1", "--max-tokens", "20", "--out", str(f)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "is a file" in err
    assert f.read_text() == "mine"


def test_an_impossible_path_is_one_line_not_a_traceback(capsys):
    rc = cli(["generate", "--n", "1", "--max-tokens", "20", "--out", "/proc/folk-sampler/out"])
    err = capsys.readouterr().err
    assert rc == 1 and err.startswith("error: ") and err.count("\n") == 1
    assert "Traceback" not in err


def test_each_tune_is_logged_as_written_and_a_rerun_resumes(tmp_path, capsys):
    out = tmp_path / "batch"
    args = ["generate", "--n", "3", "--seed", "4", "--max-tokens", "40", "--out", str(out)]
    assert cli(args) == 0
    rows = [json.loads(line) for line in (out / "tunes.jsonl").read_text().splitlines()]
    assert [r["tune"] for r in rows] == [1, 2, 3]
    assert json.loads((out / "run.json").read_text())["status"] == "done"
    first = (out / "tune_002.abc").read_text()
    # as if Ctrl-C struck while tune 3 was written: its log line is gone
    (out / "tunes.jsonl").write_text("\n".join(json.dumps(r) for r in rows[:2]) + "\n")
    capsys.readouterr()
    assert cli(args) == 0
    assert "resumed: 2 tune(s)" in capsys.readouterr().err
    rows = [json.loads(line) for line in (out / "tunes.jsonl").read_text().splitlines()]
    assert [r["tune"] for r in rows] == [1, 2, 3]
    assert (out / "tune_002.abc").read_text() == first          # same seed, same tune
    assert len(json.loads((out / "run.json").read_text())["runs"][0]["files"]) == 3


def test_the_seed_1_batch_is_engraved_whole(tmp_path, capsys):
    """The seed-1 batch's tune 145 (a bar 11 bars long, cut at max_tokens) once hung the run;
    later it was refused. Now every tune of the batch has its score as well as its ABC."""
    out = tmp_path / "seed1"
    rc = cli(["generate", "--n", "300", "--seed", "1", "--formats", "abc,svg", "--out", str(out)])
    assert rc == 0
    rows = {r["tune"]: r for r in map(json.loads, (out / "tunes.jsonl").read_text().splitlines())}
    assert len(rows) == 300
    assert not [r for r in rows.values() if r.get("errors")]
    assert all(sorted(Path(f).suffix for f in r["files"]) == [".abc", ".svg"]
               for r in rows.values())


def test_the_tune_that_once_hung_is_refused_at_once():
    """Tune 145 of that batch on the machine where it hung: one last "bar" 10.9 bars of 6/2 long.
    Its music21 score (MusicXML, MIDI) is refused in well under a second, naming the bar; its
    sound plays, and its SVG is drawn from our own reading (toolkit.music.mei)."""
    import time

    from toolkit.music.reader import ABCError
    from toolkit.music.tune import Tune

    tune = Tune.from_abc((Path(__file__).parent / "data" / "overfull_last_bar.abc").read_text())
    t0 = time.perf_counter()
    with pytest.raises(ABCError, match="bar 13 lasts 129.792 quarter notes"):
        tune.score  # noqa: B018
    assert tune.svg().count('class="note"') >= len(tune.parsed.notes)
    assert tune.wav()[:4] == b"RIFF"
    assert time.perf_counter() - t0 < 30           # minutes before; generous for slow machines


def test_train_on_an_empty_folder_names_it(tmp_path, capsys):
    rc = cli(["train", "--data", str(tmp_path), "--epochs", "1", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc == 2 and str(tmp_path) in err and err.count("\n") == 1


def test_usage_line_names_the_command(capsys):
    with pytest.raises(SystemExit):
        cli(["--help"])
    assert capsys.readouterr().out.startswith("usage: python -m toolkit")


# --- a rerun resumes only the batch it started ------------------------------------------------

BATCH = ["generate", "--n", "3", "--seed", "1", "--max-tokens", "40"]


@pytest.mark.parametrize("other, flag", [
    (["--seed", "2"], "--seed"), (["--temperature", "0.5"], "--temperature"),
    (["--n", "4"], "--n"), (["--model", "transformer"], "--model"),
    (["--meter", "6/8"], "--meter"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_a_rerun_with_other_settings_is_refused_and_changes_nothing(tmp_path, capsys, other,
                                                                      flag):
    out = tmp_path / "r1"
    assert cli([*BATCH, "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    rc = cli([*BATCH, *other, "--out", str(out)])              # the last --n given counts
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and flag + " " in err, err
    assert "--restart" in err and "another --out" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_restart_replaces_the_old_batch(tmp_path, capsys):
    out = tmp_path / "r"
    assert cli([*BATCH, "--n", "5", "--out", str(out)]) == 0
    assert cli([*BATCH, "--seed", "2", "--restart", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.glob("tune_*")) == [f"tune_00{i}.abc" for i in (1, 2, 3)]
    run = json.loads((out / "run.json").read_text())
    assert run["settings"]["seed"] == [2] and run["resumed"] == 0
    assert "resumed" not in capsys.readouterr().err


def test_restart_deletes_only_what_a_batch_writes(tmp_path, capsys):
    """A log row naming a folder outside --out, or a file that is not a tune's, is not the
    batch's: --restart leaves it, and a bad row is never a traceback."""
    out, victim = tmp_path / "r", tmp_path / "victim"
    assert cli([*BATCH, "--out", str(out)]) == 0
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    (out / "notes.txt").write_text("keep me too")
    with (out / "tunes.jsonl").open("a") as log:
        for row in ({"setting": "../victim", "tune": 1, "files": ["precious.txt"]},
                    {"setting": str(victim), "tune": 2, "files": ["precious.txt"]},
                    {"setting": "", "tune": 9, "files": ["notes.txt"]},
                    {"setting": "", "tune": 8}, {"setting": 3, "tune": 1, "files": []}):
            log.write(json.dumps(row) + "\n")
    assert cli([*BATCH, "--restart", "--out", str(out)]) == 0
    assert (victim / "precious.txt").exists() and (out / "notes.txt").exists()
    assert cli([*BATCH, "--out", str(out)]) == 0          # a plain rerun reads the log too
    assert "resumed: 3" in capsys.readouterr().err


def test_more_formats_on_a_rerun_are_written_for_the_resumed_tunes(tmp_path, capsys):
    out = tmp_path / "r"
    assert cli([*BATCH, "--out", str(out)]) == 0
    abc = (out / "tune_002.abc").read_text()
    assert cli([*BATCH, "--formats", "abc,svg", "--out", str(out)]) == 0
    assert "resumed: 3 tune(s)" in capsys.readouterr().err
    assert (out / "tune_002.abc").read_text() == abc
    files = json.loads((out / "run.json").read_text())["runs"][0]["files"]
    assert sorted(Path(f).name for f in files) == sorted(
        f"tune_00{i}.{x}" for i in (1, 2, 3) for x in ("abc", "svg"))
    assert all(Path(f).exists() for f in files)


# --- every argparse error is one line ---------------------------------------------------------

@pytest.mark.parametrize("args, says", [
    (["generate", "--temperature", "abc"],
     "--temperature expects numbers separated by commas, got 'abc'"),
    (["generate", "--top-k", "1.5"], "--top-k expects whole numbers separated by commas"),
    (["generate", "--n", "x"], "--n expects a whole number, got 'x'"),
    (["generate", "--seed", "1,1"], "--seed lists 1 twice"),
    (["generate", "--temperature", "1,1.0"], "--temperature lists 1.0 twice"),
    (["generate", "--out", "", "--n", "1"], "--out expects a path, got ''"),
    (["train", "--lr", "nan"], "--lr expects a number, got 'nan'"),
    (["train", "--layers", "two"], "--layers expects a whole number"),
    (["generate", "--constrain", "always"], "--constrain"),
    (["prefs"], "ACTION"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_a_parse_error_is_one_line_naming_the_flag(tmp_path, monkeypatch, capsys, args, says):
    monkeypatch.chdir(tmp_path)                  # --out "" once wrote into the current folder
    with pytest.raises(SystemExit) as stop:
        cli(args)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert says in err and "usage:" not in err and "_floats" not in err
    assert list(tmp_path.iterdir()) == []


def test_no_command_is_an_error_that_shows_the_help(capsys):
    assert cli([]) == 2
    assert capsys.readouterr().err.startswith("usage: python -m toolkit")


def test_a_model_that_is_not_weights_says_what_model_takes(tmp_path, capsys):
    (tmp_path / "afile").write_text("not weights")
    rc = cli(["generate", "--model", str(tmp_path / "afile"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "afile.json" not in err
    assert "--model" in err and "is not a network's weights" in err and "run folder" in err
    assert not (tmp_path / "o").exists()


# --- train checks every setting before any work -----------------------------------------------

TRAIN_BAD = [
    (["--layers", "0"], "--layers", ">= 1"), (["--lr", "0"], "--lr", "> 0"),
    (["--lr", "-1"], "--lr", "> 0"), (["--threads", "0"], "--threads", ">= 1"),
    (["--threads", "-2"], "--threads", ">= 1"), (["--dropout", "2"], "--dropout", "[0, 1)"),
    (["--max-minutes", "-1"], "--max-minutes", "> 0"),
    (["--stop-after", "0"], "--stop-after", "[1, 20]"),
    (["--checkpoint-every", "0"], "--checkpoint-every", ">= 1"),
    (["--epochs", "0"], "--epochs", ">= 1"), (["--cond-drop", "1"], "--cond-drop", "[0, 1)"),
    (["--device", "tpu"], "--device", "cpu or cuda"),
    (["--arch", "transformer", "--dim", "7"], "--dim 7", "--heads 5"),
]


@pytest.mark.parametrize("bad, flag, allowed", TRAIN_BAD, ids=lambda v: " ".join(v)
                         if isinstance(v, list) else None)
def test_a_bad_train_setting_is_one_line_before_anything(tmp_path, capsys, bad, flag, allowed):
    out = tmp_path / "never"
    rc = cli(["train", "--data", "toy", "--out", str(out), *bad])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert flag in err and allowed in err and bad[-1] in err
    assert not out.exists()


def test_cuda_on_a_machine_without_it_is_one_line(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    rc = cli(["train", "--data", "toy", "--device", "cuda", "--out", str(tmp_path / "never")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "--device 'cuda'" in err and "cpu" in err


def test_destinations_are_checked_before_the_long_work(tmp_path, monkeypatch, capsys):
    import toolkit.lm.model as M
    import toolkit.lm.train as T

    def never(*args, **kwargs):
        raise AssertionError("trained or fitted before the destination was checked")

    monkeypatch.setattr(T, "train_model", never)
    monkeypatch.setattr(M, "WEIGHTS_DIR", Path("/proc/folk-sampler-weights"))
    rc = cli(["train", "--data", "toy", "--export", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "--export" in err
    assert not (tmp_path / "run").exists()
    rc = cli(["prefs", "train", str(tmp_path), "--out", "/proc/prefs.json"])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "'/proc/prefs.json' cannot be written" in err
