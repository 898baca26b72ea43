"""Ctrl-C (SIGINT) in the console script, from the first import to the last byte: exit 130, one line.

One handler, installed by :func:`install_at_start` before typer, rich or torch load, and only in
the console script (``attncli`` or ``python -m attncli``, never a program that imports
``attncli.cli``). What it does depends on the phase of the run:

- ``start`` (until :func:`arm`): one line and ``os._exit(130)``; nothing is open yet.
- ``run`` (from :func:`arm`, called as the first statement inside the ``try`` that reports
  ``KeyboardInterrupt``, until :func:`disarm`): ``KeyboardInterrupt``, so that ``--output``'s
  temporary file is removed and the command can say what it was doing.
- ``deferred`` (inside :func:`deferred_interrupts`): noted; raised when the block ends.
- ``delivering`` (inside :func:`delivering_report`, while the report is written): noted; the
  phase is ``done`` once the report is written.
- ``done`` (after :func:`disarm`): noted only; the output is written and the exit code decided.

NOTE: Python runs a signal handler between bytecodes, so a phase that raises must start inside
the ``try`` that catches, and end before leaving it; a ``KeyboardInterrupt`` that escaped there
was a traceback and a death by SIGINT (seen once in 220 Ctrl-Cs here, before this design).
Changing the phase is one assignment: there is no moment with no handler or the wrong one.

Only the standard library is imported here: this module loads before anything heavy.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from types import FrameType

INTERRUPTED = 130
"""The exit code of Ctrl-C."""


class InterruptReported(Exception):
    """Ctrl-C that a command reported in its own one line (its user module was interrupted):
    :func:`attncli.cli.main` exits 130 without a second line."""


_EXIT = os._exit
"""The real ``os._exit``, kept: a ``--module`` fence replaces ``os._exit`` while user code runs,
and :func:`end_stuck_run` is called inside that fence."""

_STATE: dict[str, str] = {"phase": "start"}
"""The phase of the console run (see the module docstring)."""

_DELIVERED: list[int] = []
"""SIGINTs delivered to this console run (Ctrl-C, or ``--module-timeout``'s watchdog)."""


def _handler(signum: int, frame: FrameType | None) -> None:
    """The console script's SIGINT handler: what it does is the phase's (module docstring)."""
    phase = _STATE["phase"]
    if phase == "start":
        # NOTE: os.write and os._exit: nothing buffered by Python is half-printed, no traceback,
        # no cleanup left to interrupt (main has not opened anything yet).
        os.write(2, b"attncli: interrupted\n")
        _EXIT(130)
    _DELIVERED.append(signum)
    if phase == "run":
        raise KeyboardInterrupt


def is_console_script() -> bool:
    """The ``attncli`` script or ``python -m attncli`` (not a program importing attncli.cli)."""
    argv0 = sys.argv[0] if sys.argv else ""
    return os.path.basename(argv0) == "attncli" or argv0.endswith(os.path.join("attncli", "__main__.py"))


def install_at_start() -> None:
    """The handler, for a console script whose SIGINT handler is still Python's own (or the stand-in
    ``python -m attncli`` installs before this module loads, marked ``attncli_start``)."""
    current = signal.getsignal(signal.SIGINT)
    if is_console_script() and (current is signal.default_int_handler or getattr(current, "attncli_start", False)):
        signal.signal(signal.SIGINT, _handler)
        _STATE["console"] = "yes"


def installed() -> bool:
    """Whether this process is the console script, which installed the handler (not a test, not a
    library). NOTE: recorded, not read off the current handler: a --module may change that."""
    return _STATE.get("console") == "yes"


def arm() -> None:
    """Phase ``run``: Ctrl-C raises ``KeyboardInterrupt``. Call it inside the ``try`` that catches."""
    if installed():
        _STATE["phase"] = "run"


def disarm() -> None:
    """Phase ``done``: Ctrl-C is noted and changes nothing. Call it before leaving the ``try``."""
    _STATE["phase"] = "done"


def ignore_from_now() -> None:
    """``SIG_IGN`` for the interpreter's shutdown, in the console script.

    NOTE: Python resets a Python-level handler to the default at shutdown (a Ctrl-C there would
    be a silent death by SIGINT), but keeps SIG_IGN.
    """
    if installed():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """A Ctrl-C inside the block is raised as ``KeyboardInterrupt`` when the block ends.

    NOTE: for ``import torch``: a ``KeyboardInterrupt`` raised while torch's C++ start-up code
    (``torch._C._autograd_init``) calls back into Python escapes as a C++ exception and aborts
    the process (``terminate called after throwing ... KeyboardInterrupt``, returncode -6; seen
    once in 150 Ctrl-Cs here). The import takes about a second; Ctrl-C waits for it. In any
    phase but ``run`` this changes nothing.
    """
    if _STATE["phase"] != "run":
        yield
        return
    before = len(_DELIVERED)
    _STATE["phase"] = "deferred"
    try:
        yield
    finally:
        _STATE["phase"] = "run"
    if len(_DELIVERED) > before:
        raise KeyboardInterrupt


@contextlib.contextmanager
def delivering_report() -> Iterator[None]:
    """The report is being written (stdout or ``--output``): a Ctrl-C from the first byte on is
    noted and changes nothing, and once the block ends without error the run stays in phase
    ``done``: the report was delivered, so a late Ctrl-C is ignored and the exit code is the
    run's own (0, or 1 for a failed check), never 130 beside a whole report.

    NOTE: the phase changes before the first byte, not after the last: a Ctrl-C that landed
    between the write and a phase change after it was a KeyboardInterrupt (exit 130 with the
    whole JSON on stdout, 30 of 30 runs in issue 22). If the write fails, the phase is restored
    and the failure is reported as usual. In any phase but ``run`` this changes nothing.
    """
    if _STATE["phase"] != "run":
        yield
        return
    _STATE["phase"] = "delivering"
    delivered = False
    try:
        yield
        delivered = True
    finally:
        _STATE["phase"] = "done" if delivered else "run"


def exit_now_if_interrupted(code: int) -> None:
    """After a delivered SIGINT, end the console script with ``code`` now (stdout, stderr flushed).

    NOTE: CPython (3.11 here) notes a ``KeyboardInterrupt`` that leaves ``exec()`` or ``eval()``
    of a string as "unhandled", even when the caller catches it, and then ends the process by
    killing itself with SIGINT instead of exiting with its code. Imports run such code all the
    time (every dataclass and namedtuple is made by it), so a Ctrl-C landing there made about one
    run in 25 die by the signal (returncode -2) after printing "attncli: interrupted". Once a
    SIGINT was delivered, the run has said what it did and the exit code is final: ``os._exit``.
    """
    if not (_DELIVERED and installed()):
        return
    for stream in (s for s in (sys.stdout, sys.stderr) if s is not None):  # None: started with >&-
        with contextlib.suppress(OSError, ValueError):  # closed or full: what could be said was
            stream.flush()
    _EXIT(code)


def note_user_code() -> None:
    """The user's code (a ``--module``) is about to run in this console run: it may leave threads
    behind, so the run ends with :func:`exit_now_if_user_code_ran`."""
    if installed():
        _STATE["user_code"] = "yes"


def exit_now_if_user_code_ran(code: int) -> None:
    """After the user's code ran in the console script, end with ``code`` now, by ``os._exit``.

    NOTE: a module may start daemon threads that keep printing (to stderr: see
    :func:`attncli.io.streams.keep_report_apart`). The interpreter's shutdown with such threads
    alive hung (a thread blocked holding the lock of a stream the shutdown flushes) or died
    (SIGSEGV, SIGABRT "could not acquire lock ... at interpreter shutdown"). By now the report is
    written, flushed and its descriptor closed, and attncli's own stderr lines were flushed at
    their newline (stderr is line-buffered); nothing is flushed here, so a thread holding a
    stream's lock cannot keep the process from ending.
    """
    if _STATE.get("user_code") == "yes" and installed():
        _EXIT(code)


def end_stuck_run(message: str) -> None:
    """The console script's last resort for user code that ignored ``--module-timeout``'s
    interrupt: ``attncli: error: MESSAGE`` and exit 2, from the watchdog thread (nothing has been
    written to stdout or ``--output`` yet). Outside the console script: nothing."""
    if not installed():
        return
    os.write(2, f"attncli: error: {message}\n".encode("utf-8", "backslashreplace"))
    _EXIT(2)
