"""The Makefile's install brings CPU torch and no CUDA packages, on this machine's platform.

`make setup` installs torch first, alone (``make torch-pip`` prints its arguments: the pin from
pyproject.toml and, on Linux, the PyTorch CPU wheel index), then ``-e ".[dev]"``.  This test asks
pip to resolve the same two steps from scratch (``pip install --dry-run --ignore-installed
--report``; nothing is installed) and fails if the result holds an ``nvidia-*`` or ``triton``
package.  It needs the package indexes that `make setup` needs (about 10 s); it does not need the
CPU index itself when a ``+cpu`` wheel of the pin is available otherwise (pip's find-links).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.install, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def torch_args() -> list[str]:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    # a make that runs this test passes its own flags down; the sub-make needs none of them
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    out = subprocess.run(
        [make, "-s", "--no-print-directory", "torch-pip"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return shlex.split(out)


def test_makefile_pins_the_torch_of_pyproject(torch_args):
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [d for d in deps if d.replace(" ", "").startswith("torch==")]
    assert len(pins) == 1, deps
    assert torch_args[-1] == pins[0].replace(" ", "")
    assert "--no-deps" in torch_args
    index = "https://download.pytorch.org/whl/cpu"
    if sys.platform == "linux":
        assert torch_args[torch_args.index("--extra-index-url") + 1] == index
    else:
        assert index not in torch_args


def test_install_resolves_without_cuda(torch_args, load_script):
    lock = load_script("lock_binder")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"]) + list(project["optional-dependencies"]["dev"])
    torch, items = lock.resolve(torch_args, requirements)
    torch_deps = [r.split(";")[0] for r in torch["metadata"].get("requires_dist", [])]
    print(f"torch {torch['metadata']['version']} from {torch['download_info']['url']}")
    assert lock.cuda_packages([torch, *items]) == []
    names = {lock.canonicalize_name(i["metadata"]["name"]) for i in items}
    assert "torch" not in names, "another package requires torch; check which build it gets"
    assert {"numpy", "music21", "jupyterlab", "pytest"} <= names
    if sys.platform == "linux":
        # the CUDA build declares its nvidia-* packages; the CPU build none
        assert torch["metadata"]["version"].endswith("+cpu"), torch_deps
