"""Ctrl-C on a real command: one line saying what was kept and how to go on, exit code 130,
no traceback (from the command or from a worker process)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(),
                                reason="POSIX signals, and Linux's /proc to find the workers")


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux's /proc)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return kids


def _interrupt(args: list[str], ready, tmp_path: Path, workers_first: bool = False
               ) -> tuple[int, str]:
    """Run ``python -m toolkit args`` in its own process group, wait until ``ready()``, then
    send SIGINT to the whole group, as Ctrl-C in a terminal does.  ``workers_first``: to the
    command's child processes alone first (a worker that dies of it prints its traceback;
    when the whole group is hit the parent may stop the workers before they print it)."""
    err_path = tmp_path / "stderr.txt"
    with open(err_path, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "toolkit", *args], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        try:
            deadline = time.monotonic() + 120
            while not ready() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            assert proc.poll() is None, err_path.read_text()[-2000:]
            if workers_first:
                kids = _children(proc.pid)
                assert kids, "no worker processes"
                for kid in kids:
                    os.kill(kid, signal.SIGINT)
                time.sleep(1)
            os.killpg(proc.pid, signal.SIGINT)
            rc = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    return rc, err_path.read_text()


def test_ctrl_c_on_train_says_to_add_resume(tmp_path):
    out = tmp_path / "run"
    rc, err = _interrupt(["train", "--data", "toy", "--hidden", "8", "--emb", "8", "--layers",
                          "1", "--epochs", "100000", "--threads", "1", "--out", str(out)],
                         lambda: (out / "checkpoint.pt").exists(), tmp_path)
    last = err.strip().splitlines()[-1]
    assert rc == 130 and "Traceback" not in err, err[-2000:]
    assert last.startswith("interrupted: ") and "with --resume" in last
    assert "run the same command to resume" not in err


def test_ctrl_c_on_build_data_is_one_line_without_worker_tracebacks(tmp_path):
    out = tmp_path / "cache"
    err_file = tmp_path / "stderr.txt"
    rc, err = _interrupt(["build-data", "--out", str(out)],
                         lambda: err_file.exists() and "encoding tunes" in err_file.read_text(),
                         tmp_path, workers_first=True)
    assert rc == 130, err[-2000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
    assert err.strip().splitlines()[-1] == ("interrupted: the dataset was not built; run the "
                                            "command again to build it")
    assert not (out / "tunes.jsonl").exists()
