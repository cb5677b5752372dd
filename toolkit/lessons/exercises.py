"""Self-checking exercises: a check prints what went right, or a hint — it never raises.

Notebook pattern::

    # Exercise 1 — write top-k yourself
    def my_top_k(logits, k):
        ...                                  # your code here

    check_function(my_top_k, reference=lambda l, k: S.top_k(k)(l), cases=[...])

A check returns True or False so a cell can build on it, and it never raises: an unfinished
exercise (still ``...`` or ``None``) just says "not done yet", so the notebook runs top to bottom.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

__all__ = ["check", "check_close", "check_function", "not_done", "within"]

OK, TODO, NO = "✅", "✏️", "❌"


def not_done(value) -> bool:
    """True while an answer is still the placeholder ``...`` or ``None``."""
    return value is Ellipsis or value is None


def within(name: str, value, lo: float, hi: float, fmt: str = ".3g") -> str:
    """A figure that comes from sampling, stated as the band it must lie in.

    Sampled figures move a little from machine to machine (one rounding difference flips a draw),
    so a checked notebook output states the band, not the figure: ``"name: in [lo, hi] ✓"``, or
    ``"name: value outside [lo, hi] ✗"`` when a broken model or sampler pushes it out.
    """
    v = float(value)
    band = f"[{lo:{fmt}}, {hi:{fmt}}]"
    return f"{name}: in {band} ✓" if lo <= v <= hi else f"{name}: {v:{fmt}} outside {band} ✗"


def check(condition: bool, success: str, hint: str) -> bool:
    """Print ``success`` when ``condition`` holds, else ``hint``."""
    print(f"{OK} {success}" if condition else f"{NO} {hint}")
    return bool(condition)


def check_close(name: str, value, expected: float, tol: float, hint: str = "") -> bool:
    """Check a number: within ``tol`` of ``expected``."""
    if not_done(value):
        print(f"{TODO} {name}: not done yet — replace the ... with your answer.")
        return False
    try:
        v = float(value)
    except (TypeError, ValueError):
        print(f"{NO} {name} should be a number, got {type(value).__name__}: {value!r}")
        return False
    return check(abs(v - expected) <= tol, f"{name} = {v:.4g}: right!",
                 f"{name} = {v:.4g} is not it yet. {hint}".strip())


def check_function(fn: Callable, reference: Callable, cases: Iterable[tuple],
                   name: str | None = None, same: Callable | None = None) -> bool:
    """Compare a student's function with a reference on some argument tuples.

    ``same(a, b)`` decides equality (default ``==``; tensors compared with ``torch.equal``).
    """
    import torch

    name = name or getattr(fn, "__name__", "your function")
    cases = list(cases)
    if same is None:
        def same(a, b):
            if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
                return a.shape == b.shape and bool(torch.equal(a.isfinite(), b.isfinite())) \
                    and bool(torch.allclose(a[a.isfinite()], b[b.isfinite()], atol=1e-5))
            return a == b
    for args in cases:
        try:
            got = fn(*args)
        except NotImplementedError:
            print(f"{TODO} {name}: not done yet.")
            return False
        except Exception as err:  # noqa: BLE001  (a student's bug is reported, never raised)
            print(f"{NO} {name} raised {type(err).__name__}: {err}")
            return False
        if not_done(got):
            print(f"{TODO} {name}: not done yet — it returns {got!r}.")
            return False
        want = reference(*args)
        try:
            agrees = bool(same(got, want))
        except Exception as err:  # noqa: BLE001  (e.g. a numpy array where a tensor was meant)
            print(f"{NO} {name} returned something that cannot be compared with the answer "
                  f"({type(got).__name__}): {err}")
            return False
        if not agrees:
            print(f"{NO} {name} gives a different answer for one case.\n   got:  {got}\n"
                  f"   want: {want}")
            return False
    print(f"{OK} {name} agrees with the reference on all {len(cases)} cases.")
    return True
