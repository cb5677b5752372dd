"""The written-out Adam and AdamW: the same steps as torch.optim's, the same checkpoints, and
training without TorchDynamo (what they are written out to avoid)."""

import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.lm.optim import Adam, AdamW


def _twins(seed):
    torch.manual_seed(seed)
    a, b = torch.nn.Linear(6, 4), torch.nn.Linear(6, 4)
    b.load_state_dict(a.state_dict())
    return a, b


def _fit(pairs, x, y, steps, lrs=None):
    for k in range(steps):
        for net, opt in pairs:
            if lrs:
                opt.param_groups[0]["lr"] = lrs[k % len(lrs)]
            opt.zero_grad(set_to_none=True)
            ((net(x) - y) ** 2).mean().backward()
            opt.step()


@settings(max_examples=25, deadline=None)
@given(decoupled=st.booleans(), lr=st.floats(1e-4, 5e-2), wd=st.sampled_from([0.0, 1e-2, 0.1]),
       seed=st.integers(0, 10**6))
def test_every_step_is_torch_optims_step(decoupled, lr, wd, seed):
    a, b = _twins(seed)
    x, y = torch.randn(16, 6), torch.randn(16, 4)
    mine = (AdamW if decoupled else Adam)(a.parameters(), lr=lr, weight_decay=wd)
    theirs = (torch.optim.AdamW if decoupled else torch.optim.Adam)(b.parameters(), lr=lr,
                                                                     weight_decay=wd)
    _fit([(a, mine), (b, theirs)], x, y, 30, lrs=[lr, lr / 2, lr * 1.5])  # a schedule too
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_a_checkpoint_from_either_resumes_with_the_other():
    a, b = _twins(1)
    x, y = torch.randn(16, 6), torch.randn(16, 4)
    theirs = torch.optim.AdamW(b.parameters(), lr=0.01, weight_decay=0.01)
    mine = AdamW(a.parameters(), lr=0.01, weight_decay=0.01)
    _fit([(a, mine), (b, theirs)], x, y, 10)
    # a checkpoint written by torch.optim (the format of runs trained before) resumes here ...
    resumed = AdamW(a.parameters(), lr=0.5)
    resumed.load_state_dict(theirs.state_dict())
    assert resumed.param_groups[0]["lr"] == 0.01
    # ... and ours resumes in torch.optim
    back = torch.optim.AdamW(b.parameters())
    back.load_state_dict(mine.state_dict())
    _fit([(a, resumed), (b, back)], x, y, 10)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_bad_settings_and_a_foreign_state_are_named():
    p = [torch.nn.Parameter(torch.zeros(3))]
    with pytest.raises(ValueError, match="lr out of range: -1"):
        Adam(p, lr=-1)
    with pytest.raises(ValueError, match="betas"):
        Adam(p, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="params is empty"):
        AdamW([])
    other = Adam([torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))])
    with pytest.raises(ValueError, match="2 here"):
        other.load_state_dict(Adam(p).state_dict())


def test_training_imports_neither_dynamo_nor_sympy():
    """Creating a torch.optim optimizer imports both (+70 MB in a kernel); train_model must not."""
    code = """
import sys
from toolkit.lm import data
from toolkit.lm.train import train_model
recs = data.load_toy()
train_model(recs[4:8], recs[:2], epochs=1, emb=8, hidden=8, layers=1, progress=False)
heavy = sorted(m for m in ("torch._dynamo", "sympy", "mpmath") if m in sys.modules)
print(heavy)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
