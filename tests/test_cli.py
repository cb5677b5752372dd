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
