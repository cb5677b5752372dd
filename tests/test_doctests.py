"""Every example in the package's docstrings runs and prints what it says (``>>>`` lines are
documentation a student copies: one that no longer works is a defect)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import toolkit

MODULES = sorted(m.name for m in pkgutil.walk_packages(toolkit.__path__, "toolkit.")
                 if not m.name.endswith("__main__"))


def test_every_module_is_walked():
    assert len(MODULES) >= 30 and "toolkit.music.grammar" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False, report=False)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"
