"""attncli.io.interrupts in-process: the deferred interrupt and the handlers it swaps.

The real process (Ctrl-C at random moments, and inside ``exec()``) is tested in
tests/cli/test_exit_codes.py and tests/cli/test_module_hostile.py.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from attncli.io import interrupts


@pytest.fixture
def run_handler() -> Iterator[None]:
    """The console script's handler in its ``run`` phase; pytest's own restored after the test."""
    before = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, interrupts._handler)
    delivered, state = list(interrupts._DELIVERED), dict(interrupts._STATE)
    interrupts._STATE["console"] = "yes"  # as install_at_start records it
    interrupts.arm()
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)
        interrupts._DELIVERED[:] = delivered
        interrupts._STATE.clear()
        interrupts._STATE.update(state)


def test_a_deferred_interrupt_is_raised_when_the_block_ends(run_handler: None) -> None:
    reached_the_end_of_the_block = False
    with pytest.raises(KeyboardInterrupt), interrupts.deferred_interrupts():
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):  # the eval loop runs the Python-level handler here
            pass
        reached_the_end_of_the_block = True
    assert reached_the_end_of_the_block
    assert interrupts._STATE["phase"] == "run"
    assert interrupts._DELIVERED[-1] == signal.SIGINT


def test_no_interrupt_no_exception(run_handler: None) -> None:
    with interrupts.deferred_interrupts():
        pass
    assert interrupts._STATE["phase"] == "run"


def test_run_raises_and_done_only_notes(run_handler: None) -> None:
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):
            pass
    interrupts.disarm()
    os.kill(os.getpid(), signal.SIGINT)
    for _ in range(1000):
        pass
    assert interrupts._DELIVERED[-2:] == [signal.SIGINT, signal.SIGINT]


def test_outside_the_console_script_nothing_changes() -> None:
    """pytest's handler, as in any program that imports attncli.cli: no phase, no exit."""
    assert not interrupts.installed()
    interrupts.arm()
    assert interrupts._STATE["phase"] != "run"
    interrupts.exit_now_if_interrupted(0)  # returns: only the console script exits early


EARLY = '''
import os, runpy, signal, sys
class Hook:
    def find_spec(self, name, path=None, target=None):
        if name == "attncli.cli":
            os.kill(os.getpid(), signal.SIGINT)  # a Ctrl-C while attncli.cli loads
        return None
sys.meta_path.insert(0, Hook())
sys.argv = [os.path.join(os.path.dirname(__import__("attncli").__file__), "__main__.py"), "gpus"]
runpy.run_module("attncli", run_name="__main__", alter_sys=True)
'''


def test_ctrl_c_while_python_m_attncli_loads_its_cli_is_one_line() -> None:
    """``python -m attncli`` on a busy machine: a Ctrl-C while attncli.cli is imported (before its handler
    was installed) was a KeyboardInterrupt traceback and a death by SIGINT (the long fuzz, issue 32)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    r = subprocess.run([sys.executable, "-c", EARLY], capture_output=True, text=True, timeout=120, cwd=root,
                       env={**os.environ, "PYTHONPATH": str(root)})
    assert (r.returncode, r.stderr, r.stdout) == (130, "attncli: interrupted\n", "")
