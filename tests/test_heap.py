"""toolkit.lm.heap: a kernel hands freed memory back after every cell, and oneDNN's cache is
capped (benchmarks/bench_memory.py --part parts measures what each saves)."""

import subprocess
import sys

from toolkit.lm import heap


def test_release_hands_freed_pages_back_where_the_c_library_can():
    blocks = [bytearray(200_000 + i) for i in range(300)]   # past the heap's top, then freed
    del blocks[::2]
    released = heap.release()
    assert isinstance(released, bool)
    if sys.platform.startswith("linux"):
        assert released
    assert heap.release("ignored", "arguments") in (True, False)  # an IPython event callback


def test_in_an_ipython_kernel_every_cell_ends_with_a_release_and_the_cache_is_capped():
    code = """
import os
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
import toolkit.lm
from toolkit.lm import heap
heap.configure()                                      # a second call changes nothing
hooks = shell.events.callbacks["post_run_cell"]
print(hooks.count(heap.after_cell), os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"})
    expected = "1 8" if sys.platform.startswith("linux") else "0 8"
    assert out.stdout.split() == expected.split(), out.stderr


def test_a_cache_size_the_user_chose_is_kept():
    code = "import os, toolkit.lm; print(os.environ['ONEDNN_PRIMITIVE_CACHE_CAPACITY'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "ONEDNN_PRIMITIVE_CACHE_CAPACITY": "64"})
    assert out.stdout.strip() == "64"


def test_the_readmes_advice_to_teachers_follows_the_memory_benchmark():
    """The Binder advice quotes benchmarks/results/memory.json; re-running the benchmark after
    a change must bring the README along (one home for each figure)."""
    import json
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    rows = [r for r in json.loads((root / "benchmarks/results/memory.json").read_text())
            if r["cells"] == "all"]
    readme = (root / "README.md").read_text()
    m = re.search(r"holds (\d+)–(\d+) MB once it has run top to bottom, and at most (\d+) MB",
                  readme)
    assert m, "the README's memory sentence is gone"
    ends = [r["rss_end_mb"] for r in rows]
    assert [int(g) for g in m.groups()] == [round(min(ends)), round(max(ends)),
                                            round(max(r["peak_mb"] for r in rows))]
    four = re.search(r"four kernels at (\d+) MB hold ([\d.]+) GB", readme)
    assert four and int(four.group(1)) == round(max(ends))
    assert float(four.group(2)) == round(4 * max(ends) / 1000, 1)
    assert 4 * max(ends) + max(r["peak_mb"] for r in rows) - max(ends) < 2000  # Binder's limit
