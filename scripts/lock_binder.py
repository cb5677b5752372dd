#!/usr/bin/env python3
"""Write binder/requirements.txt: every package Binder installs, pinned, CPU torch included.

    make binder-lock
    python scripts/lock_binder.py --torch-index https://download.pytorch.org/whl/cpu

Binder (repo2docker) runs ``pip install -r binder/requirements.txt`` and then ``binder/postBuild``.
This script asks pip which packages a fresh environment would get (``pip install --dry-run
--ignore-installed --report``), for the package's runtime dependencies (pyproject.toml) plus
voila, and pins every one of them, the transitive ones too, so that a Binder build months from
now gets the environment the notebooks were tested with.

torch is resolved on its own, as ``make setup`` installs it: ``torch==<pin> --no-deps`` with the
PyTorch CPU wheel index beside the usual ones, which gives ``<pin>+cpu`` (the default index has the
CUDA build, several GB); the rest is then resolved with torch's own dependencies in place of torch.
So the CPU index is asked about one package only: when it cannot be reached, pip gives up on it
after a short timeout and takes a ``+cpu`` wheel from the other indexes or ``--find-links`` if
one is there; when none is, this script stops rather than lock the CUDA build.

Binder builds on Linux x86-64 with the Python of binder/runtime.txt, and pip evaluates environment
markers (``sys_platform``, ``python_version``) for the interpreter that runs it, so run this
script on Linux x86-64 with that Python (the project's .venv, or a container).

``resolve()`` is shared with tests/test_install.py, which checks that the Makefile's install
brings no CUDA packages.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"
DEFAULT_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
# only torch is looked up on the CPU index: a short timeout and few retries when it is unreachable
TORCH_PIP_OPTIONS = ["--no-deps", "--timeout", "10", "--retries", "2"]
EXTRAS_FOR_BINDER = ["voila"]  # taken with their version bounds from the dev extra
CUDA_PACKAGE = re.compile(r"^(nvidia-.*|triton|pytorch-triton.*)$")


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def torch_pin() -> str:
    """The torch requirement of pyproject.toml, e.g. ``torch==2.13.0``."""
    for dep in project()["dependencies"]:
        if canonicalize_name(Requirement(dep).name) == "torch":
            return dep
    raise SystemExit("pyproject.toml has no torch dependency")


def binder_requirements() -> list[str]:
    """The package's runtime dependencies and the dev tools Binder serves (voila)."""
    proj = project()
    extra = {
        canonicalize_name(Requirement(d).name): d for d in proj["optional-dependencies"]["dev"]
    }
    return list(proj["dependencies"]) + [extra[canonicalize_name(n)] for n in EXTRAS_FOR_BINDER]


def pip_report(args: list[str]) -> list[dict]:
    """``pip install --dry-run --ignore-installed --report`` of ``args``: what pip would install."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed"]
        cmd += ["--quiet", "--disable-pip-version-check", "--report", str(report), *args]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}\nfailed:\n{done.stderr[-4000:]}")
        return json.loads(report.read_text(encoding="utf-8"))["install"]


def _applies(requirement: Requirement) -> bool:
    return requirement.marker is None or requirement.marker.evaluate(
        {**default_environment(), "extra": ""}
    )


def resolve(torch_args: list[str], requirements: list[str]) -> tuple[dict, list[dict]]:
    """Resolve as ``make setup`` installs: first torch alone with ``torch_args`` (its pin, index
    flags and ``--no-deps``), then ``requirements`` (torch left out) with the dependencies that
    torch build declares, from the usual indexes.  Returns (torch's report item, the others)."""
    torch_items = pip_report(torch_args)
    torch = next(i for i in torch_items if canonicalize_name(i["metadata"]["name"]) == "torch")
    torch_deps = [
        str(r) for r in map(Requirement, torch["metadata"].get("requires_dist", [])) if _applies(r)
    ]
    others = [r for r in requirements if canonicalize_name(Requirement(r).name) != "torch"]
    items = pip_report(others + [re.sub(r";.*", "", d) for d in torch_deps])
    return torch, items


def cuda_packages(items: list[dict]) -> list[str]:
    names = [canonicalize_name(i["metadata"]["name"]) for i in items]
    return sorted(n for n in names if CUDA_PACKAGE.match(n))


def _runtime_python() -> str:
    text = (BINDER / "runtime.txt").read_text(encoding="utf-8").strip()
    return text.removeprefix("python-")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--torch-index", default=DEFAULT_TORCH_INDEX, help="PyTorch CPU index")
    parser.add_argument(
        "--output", type=Path, default=BINDER / "requirements.txt", help="file to write"
    )
    args = parser.parse_args(argv)

    want = _runtime_python()
    have = ".".join(map(str, sys.version_info[:2]))
    machine = platform.machine().lower()
    if sys.platform != "linux" or machine not in ("x86_64", "amd64") or have != want:
        print(
            f"Binder builds on Linux x86-64 with Python {want} (binder/runtime.txt); this is "
            f"{sys.platform} {machine} with Python {have}, whose environment markers would "
            "give another lock.  Run it there (the project's .venv on Linux, or a container)."
        )
        return 2

    pin = torch_pin()
    torch_args = [*TORCH_PIP_OPTIONS, "--extra-index-url", args.torch_index, pin]
    torch, items = resolve(torch_args, binder_requirements())
    version = torch["metadata"]["version"]
    if not version.endswith("+cpu"):
        print(
            f"pip chose torch {version}, not a +cpu build: {args.torch_index} could not be "
            "reached and no CPU wheel of that version is on the other indexes or find-links."
        )
        return 1
    cuda = cuda_packages(items)
    if cuda:
        print(f"the lock would install CUDA packages: {', '.join(cuda)}")
        return 1

    pins = {canonicalize_name(i["metadata"]["name"]): i["metadata"]["version"] for i in items}
    pins["torch"] = version
    pins.pop("folk-sampler", None)
    lines = [
        "# Binder environment for Folk Sampler (mybinder.org: 1-2 GB of memory, CPU only).",
        "# Generated by `make binder-lock` (scripts/lock_binder.py): every package pinned, the",
        "# transitive ones too, for Linux x86-64 and Python " + want + "; do not edit by hand.",
        "# CPU-only torch from the PyTorch CPU wheel index: the default build pulls several GB",
        "# of CUDA.",
        f"--extra-index-url {args.torch_index}",
        *(f"{name}=={pins[name]}" for name in sorted(pins)),
    ]
    args.output.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{args.output.relative_to(ROOT)}: {len(pins)} packages, torch=={version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
