"""Fixtures shared by several test modules."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors gain nothing from threads; on a busy machine OpenMP barriers stall them.
    A module opts in with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _load_script(name: str):
    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def load_script():
    """Imports one of the committed scripts in ``scripts/`` (not a package) as a module:
    ``load_script("clean_notebooks")``.  A fixture, not an importable helper, because
    ``tests/browser/conftest.py`` would shadow ``from conftest import ...``."""
    return _load_script
