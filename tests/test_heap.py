"""toolkit.lm.heap: a kernel hands freed memory back after every cell, and oneDNN's cache is
capped (benchmarks/bench_memory.py --part parts measures what each saves)."""

import subprocess
import sys

from toolkit.lm import heap


def _run(code, **env):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", **env})
    return out.stdout.split()


def test_release_hands_freed_pages_back_where_the_c_library_can():
    code = """
import sys
from toolkit.lm import heap
def rss():
    return int([x for x in open('/proc/self/status') if x.startswith('VmRSS')][0].split()[1])
blocks = [bytearray(100_000) for _ in range(600)]   # 60 MB inside the heap (below mmap's size)
del blocks[:-1]                                    # freed, but the last one pins the heap's top
before = rss()
print(heap.release(), (before - rss()) // 1024)
"""
    if not sys.platform.startswith("linux"):
        assert heap.release() is False
        return
    released, mb = _run(code)
    assert released == "True" and int(mb) >= 40, (released, mb)


def test_in_an_ipython_kernel_every_cell_ends_with_a_collection_and_the_cache_is_capped():
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
    assert _run(code) == ["1", "8"]
    assert _run(code, ONEDNN_PRIMITIVE_CACHE_CAPACITY="64") == ["1", "64"]  # the user's choice
    outside = "import os, toolkit.lm; print(os.environ.get('ONEDNN_PRIMITIVE_CACHE_CAPACITY'))"
    assert _run(outside) == ["None"]              # a training run keeps oneDNN's own default


def test_after_a_cell_cycles_are_freed_and_what_was_frozen_is_thawed_in_time():
    code = """
import gc, weakref
import torch
from toolkit.lm import heap
class Node:
    pass
def cycle():
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a
kept = cycle()                       # alive when the kernel freezes, garbage later
heap.after_cell()
frozen = gc.get_freeze_count()
late = weakref.ref(kept); del kept
fresh = cycle(); young = weakref.ref(fresh); del fresh
heap.after_cell()                    # a cycle made after the freeze: freed at once
freed_young = young() is None
for _ in range(heap.REFREEZE):
    heap.after_cell()
print(frozen > 10000, freed_young, late() is None, gc.get_freeze_count() > 10000)
"""
    assert _run(code) == ["True"] * 4


def test_the_readmes_advice_to_teachers_follows_the_memory_benchmark():
    """The Binder advice quotes benchmarks/results/memory.json and memory_class.json; re-running
    the benchmark after a change must bring the README along (one home for each figure)."""
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
    session = json.loads((root / "benchmarks/results/memory_class.json").read_text())
    opened = session["kernels"][-1]
    words = {4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}
    together = re.search(r"with the (\w+) heaviest notebooks running, their\s+kernels and the "
                         r"Jupyter server take ([\d.]+) GB together", readme)
    assert together and together.group(1) == words[opened["open"]]
    total = opened["pss_total_mb"] + session["server_pss_mb"]
    assert float(together.group(2)) == round(total / 1000, 1)
    assert f"**at most {words[opened['open']]} notebooks running**" in readme
    assert f"the server\nmeasured idle, {round(session['server_pss_mb'])} MB" in readme
    cell_peak = max(r["peak_mb"] - r["rss_end_mb"] for r in rows)
    assert total + cell_peak < 2000  # Binder stops a session at 2 GB
