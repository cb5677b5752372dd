"""The browser tests find Chromium wherever it is installed (not only /usr/bin/chromium)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "browser"))

from folk_browser import find_chromium  # noqa: E402


def test_a_chromium_on_path_is_found(tmp_path, monkeypatch):
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.delenv("FOLK_SAMPLER_CHROMIUM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_chromium() == str(fake)


def test_the_environment_variable_wins_and_a_wrong_one_is_not_found(tmp_path, monkeypatch):
    fake = tmp_path / "my-chrome"
    fake.write_text("")
    monkeypatch.setenv("FOLK_SAMPLER_CHROMIUM", str(fake))
    assert find_chromium() == str(fake)
    monkeypatch.setenv("FOLK_SAMPLER_CHROMIUM", str(tmp_path / "missing"))
    assert find_chromium() is None
