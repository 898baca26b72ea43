"""The fence around a user's ``--module`` code: what it may not do to attncli's process.

:func:`fenced` runs the import, build and forward of the user's code so that its output cannot
corrupt attncli's report, its exits and exceptions become one error line, and a watchdog ends it
after ``--module-timeout`` seconds. :mod:`attncli.modules.usermodule` decides what to build and count;
this module only keeps the user's code in bounds. Only the standard library is imported.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator

from attncli.spec import SpecError

FLAG = "--module"
TIMEOUT_FLAG = "--module-timeout"
DEFAULT_TIMEOUT = 60.0
"""Seconds the user's code may take to import, build and run (``--module-timeout``)."""


class Interrupted(SpecError):
    """The user pressed Ctrl-C while their code ran: exit 130, not 2."""

    exit_code = 130


def one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception's text on one line, at most ``limit`` characters."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


# ---------------------------------------------------------------------------- the fence
STUCK_GRACE_S = 3.0
"""Seconds the user's code has to stop after the timeout interrupted it, before ``last_resort``."""


@contextlib.contextmanager
def fenced(ref: str, timeout: float | None = DEFAULT_TIMEOUT,
           last_resort: Callable[[str], None] | None = None) -> Iterator[None]:
    """Run the user's code (import, build, forward, tracing) inside.

    - stdout goes to stderr, both Python's ``sys.stdout`` and the process's file descriptor 1
      (``os.write(1, ...)``, ``sys.__stdout__``, C code), so the user's output cannot corrupt a
      JSON report; ``os._exit`` raises instead of ending attncli with no report; the working
      directory is restored after;
    - ``SystemExit``, ``KeyboardInterrupt`` and every exception become one ``SpecError`` line
      (``Interrupted``, exit 130, for Ctrl-C); attncli's own ``SpecError`` passes unchanged;
    - a watchdog thread (``threading.Timer``) sends SIGINT to the main thread after ``timeout``
      seconds (which also wakes a ``time.sleep`` or a blocking call), reported as a
      ``--module-timeout`` error. Code that ignores or swallows the interrupt, or one C call that
      never returns, is still running :data:`STUCK_GRACE_S` later: then ``last_resort`` is called
      with the error message (the console script prints it and ends the process with exit 2;
      a library caller, passing None, keeps waiting).

    NOTE: a watchdog thread rather than ``signal.alarm``: it does not take over SIGALRM.
    """
    if timeout is not None and not 0 < timeout < threading.TIMEOUT_MAX:
        # NOTE: inf, 1e10 or NaN: the timer's wait would die by OverflowError (or ValueError) in its
        # own thread and leave the run unguarded; more than threading.TIMEOUT_MAX (292 years) is none.
        timeout = None
    lock = threading.Lock()
    state = {"done": False, "fired": False}
    finished = threading.Event()
    message = (f"{ref} did not finish importing, building and running within {timeout:g} s; "
               "nothing was counted") if timeout else ""

    def fire() -> None:
        with lock:  # NOTE: interrupt while holding the lock, so a finished run is never interrupted
            if state["done"]:
                return
            state["fired"] = True
            _interrupt_main_thread()
        if not finished.wait(STUCK_GRACE_S) and last_resort is not None:
            last_resort(f"{TIMEOUT_FLAG}: {message} (it ignored the interrupt: attncli ended it)")

    timer = threading.Timer(timeout, fire) if timeout else None
    cwd = os.getcwd()
    sigint = signal.getsignal(signal.SIGINT)
    added = "" not in sys.path and cwd not in sys.path
    if added:
        sys.path.append(cwd)  # NOTE: appended: the user's files never shadow installed packages
    try:
        with contextlib.redirect_stdout(sys.stderr), _fd1_to_stderr(), _no_os_exit():
            if timer is not None:
                timer.daemon = True
                timer.start()
            try:
                yield
            finally:
                with lock:
                    state["done"] = True
                finished.set()
                if timer is not None:
                    timer.cancel()
    except SpecError:
        raise
    except KeyboardInterrupt:
        if state["fired"]:
            raise SpecError(TIMEOUT_FLAG, message) from None
        raise Interrupted(FLAG, f"{ref}: interrupted") from None
    except SystemExit as exc:
        raise SpecError(FLAG, f"{ref} called sys.exit({exc.code!r}); attncli stopped it") from None
    except _OsExit as exc:
        raise SpecError(FLAG, f"{ref} called os._exit({exc.code!r}); attncli stopped it") from None
    except RecursionError:
        raise SpecError(FLAG, f"{ref}: RecursionError: maximum recursion depth exceeded") from None
    except Exception as exc:  # NOTE: user code can raise anything
        raise SpecError(FLAG, f"{ref}: {type(exc).__name__}: {one_line(exc)}") from exc
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)
        with contextlib.suppress(OSError):
            os.chdir(cwd)  # NOTE: a relative --output is the user's directory, not the module's
        if signal.getsignal(signal.SIGINT) is not sigint and sigint is not None:
            signal.signal(signal.SIGINT, sigint)  # NOTE: a module's SIG_IGN must not outlive it


def _interrupt_main_thread() -> None:
    """SIGINT to the main thread when a Python handler will turn it into KeyboardInterrupt (a real
    signal ends a ``time.sleep`` early, where ``_thread.interrupt_main`` waits for it); else
    ``interrupt_main``, which does nothing when the user's code ignores SIGINT."""
    if callable(signal.getsignal(signal.SIGINT)) and hasattr(signal, "pthread_kill"):
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
    else:
        _thread.interrupt_main()


@contextlib.contextmanager
def _fd1_to_stderr() -> Iterator[None]:
    """File descriptor 1 pointed at stderr while inside (what ``os.write(1, ...)`` and C code use)."""
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no stdout at all: nothing to protect
        yield
        return
    try:
        os.dup2(2, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


class _OsExit(BaseException):
    """``os._exit`` called by the user's code inside :func:`fenced` (a BaseException, as
    SystemExit is, so the user's and attncli's ``except Exception`` let it through)."""

    def __init__(self, code: object) -> None:
        super().__init__(code)
        self.code = code


@contextlib.contextmanager
def _no_os_exit() -> Iterator[None]:
    """``os._exit`` raises :class:`_OsExit` while inside: a module cannot end attncli with exit 0
    and no report."""
    real = os._exit

    def refuse(code: int) -> None:
        raise _OsExit(code)

    os._exit = refuse  # type: ignore[assignment]
    try:
        yield
    finally:
        os._exit = real
