"""``attncli.cli.runtime``: the counting commands' process set-up is undone, and stays out of the library."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

import pytest

from attncli.cli.runtime import SWITCH, collector_paused, frozen_for_shutdown, shortcut_applies, single_threaded


def test_placeholder_leaves_no_trace() -> None:
    """Counting under ``counting()`` skips importing torch._dynamo, and leaves torch as it found it."""
    code = """
import sys, torch
from attncli.cli.runtime import counting
from attncli.analyses.flops import count_flops
from attncli.spec import AttnSpec
with counting():
    r = count_flops(AttnSpec(dim=16, heads=4, batch=2, seq=6, impl="torch"))
    assert r.agree
    assert "torch._dynamo" not in sys.modules or sys.modules["torch._dynamo"].__doc__.startswith("attncli")
assert "torch._dynamo" not in sys.modules and "_dynamo" not in torch.__dict__
import torch._dynamo
assert torch._dynamo.disable.__module__ == "torch._dynamo.decorators"
x = torch.empty(2, 3, device="meta")
(x * 2 + x).sum()  # the wrapped meta kernels re-mark themselves with the real dynamo
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_library_leaves_sys_modules_alone() -> None:
    """Without the CLI's context the library imports the real torch._dynamo: no placeholder."""
    code = """
import sys
from attncli.analyses.flops import count_variant
from attncli.spec import AttnSpec
count_variant(AttnSpec(dim=16, heads=4, batch=2, seq=6, impl="sdpa"))
d = sys.modules.get("torch._dynamo")
assert d is None or not (d.__doc__ or "").startswith("attncli"), d
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize(("version", "env", "applies"), [
    ("2.13.0", {}, True),
    ("2.13.1+cpu", {}, True),
    ("2.13.0", {SWITCH: "1"}, False),
    ("2.14.0", {}, False),   # not verified: the private mark may have changed
    ("2.1.3", {}, False),
])
def test_shortcut_only_on_verified_torch(version: str, env: dict[str, str], applies: bool) -> None:
    assert shortcut_applies(version, env) is applies


def test_collector_restored_even_on_error() -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        assert not gc.isenabled()
        raise RuntimeError("boom")
    assert gc.isenabled()


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_collector_moves_what_the_pause_kept_to_the_oldest_generation() -> None:
    """What a pause left alive joins the oldest generation (no young collection rescans it), nothing
    stays frozen, and a cycle made during the pause is still collected after it."""
    import weakref

    with collector_paused():
        kept = [[] for _ in range(1000)]
        cycle = _Node()
        gone = weakref.ref(cycle)
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert not any(o is kept for o in gc.get_objects(generation=0))
    assert any(o is kept for o in gc.get_objects(generation=2))
    del cycle
    gc.collect()
    assert gone() is None


def test_collector_leaves_frozen_objects_alone() -> None:
    """Objects someone else froze (``gc.freeze()``) stay frozen through a pause."""
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with collector_paused():
            pass
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


def test_frozen_for_shutdown_only_in_the_console_script(monkeypatch: pytest.MonkeyPatch) -> None:
    """The console script freezes what is left for the interpreter's shutdown; a program or a test
    calling ``main`` keeps its collector as it was."""
    from attncli.cli import main
    from attncli.io import interrupts

    assert gc.get_freeze_count() == 0
    assert main(["--version"]) == 0
    assert gc.get_freeze_count() == 0 and gc.isenabled()
    monkeypatch.setattr(interrupts, "installed", lambda: True)
    try:
        frozen_for_shutdown()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_console_run_ends_with_its_report(tmp_path: Path) -> None:
    """``python -m attncli`` with the shutdown frozen still delivers the whole report and its exit code,
    to stdout and to --output."""
    out = tmp_path / "r.json"
    args = ["model", "--preset", "llama-3.1-8b", "--seq", "1", "--cache", "4095", "--format", "json"]
    piped = subprocess.run([sys.executable, "-m", "attncli", *args], capture_output=True, text=True)
    written = subprocess.run([sys.executable, "-m", "attncli", *args, "-o", str(out)], capture_output=True,
                             text=True)
    assert piped.returncode == 0 and written.returncode == 0, piped.stderr + written.stderr
    assert json.loads(piped.stdout) == json.loads(out.read_text())


def test_single_threaded_restores_the_thread_count_even_on_error() -> None:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        with pytest.raises(RuntimeError), single_threaded():
            assert torch.get_num_threads() == 1
            raise RuntimeError("boom")
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
