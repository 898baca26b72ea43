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
