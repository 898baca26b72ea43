"""Where a report goes: stdout (with a closed reader and a full disk handled) or a file, atomically.

- :func:`write_stdout` writes and flushes; a reader that went away (``| head -1``, ``| true``:
  ``BrokenPipeError``) ends the output quietly (stdout is pointed at ``/dev/null`` so the
  interpreter's own flush at exit cannot fail again) and the run keeps its exit code; any
  other write error (``> /dev/full``) is a :class:`StdoutError`, which ``main`` prints as one
  line with exit 2.
- :func:`write_atomic` writes ``--output`` to a temporary file in the same directory, fsyncs
  it and renames it over the target: a run that fails half-way (a full disk, Ctrl-C) leaves
  the previous file as it was and no temporary file behind, and two runs writing the same
  file leave one whole report, never an interleaving.

Nothing here imports torch or rich.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from attncli.spec import SpecError


class StdoutError(Exception):
    """stdout cannot be written (other than a closed pipe); the message names ``--output``."""


def _os_reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def discard_stdout() -> None:
    """Point file descriptor 1 at ``/dev/null`` (the Python docs' recipe for SIGPIPE), so
    whatever is still buffered goes nowhere instead of failing at exit."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (tests capture stdout): nothing to protect
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def _stdout_error(exc: OSError) -> StdoutError:
    return StdoutError(f"--output: cannot write to stdout: {_os_reason(exc)} "
                       "(pass --output FILE to write a file instead)")


class GuardedStdout:
    """A stand-in for ``sys.stdout`` while ``main`` runs: a closed reader (``BrokenPipeError``)
    turns every later write into nothing, any other write error into :class:`StdoutError`.
    Everything else is the real stream's (``isatty``, ``encoding``, ``fileno``, ...)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.reader_gone = False

    def write(self, text: str) -> int:
        if self.reader_gone or (isinstance(text, str) and not text):
            # NOTE: click probes a stream with write("") (and write(b"")); answering the probe
            # without touching the real stream keeps a full disk from looking like a binary stream.
            return 0 if not text else len(text)
        try:
            return int(self._inner.write(text))
        except BrokenPipeError:
            self._gone()
            return len(text)
        except OSError as exc:
            discard_stdout()
            raise _stdout_error(exc) from None

    def flush(self) -> None:
        if self.reader_gone:
            return
        try:
            self._inner.flush()
        except BrokenPipeError:
            self._gone()
        except OSError as exc:
            discard_stdout()
            raise _stdout_error(exc) from None

    def _gone(self) -> None:
        self.reader_gone = True
        discard_stdout()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class ClosedStdout:
    """What stands for stdout when the process started with file descriptor 1 closed
    (``attncli gpus >&-``: Python sets ``sys.stdout`` to None): writing fails like a closed
    descriptor, which :class:`GuardedStdout` reports as one line and exit 2; a run that writes
    nothing to stdout (``--output FILE``) is not disturbed."""

    encoding = "utf-8"
    errors = "strict"
    closed = False

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, "stdout is closed")

    def flush(self) -> None:
        return None

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        raise OSError(errno.EBADF, "stdout is closed")


@contextlib.contextmanager
def guarded_stdout() -> Iterator[GuardedStdout]:
    """``sys.stdout`` replaced by a :class:`GuardedStdout` of itself (of a :class:`ClosedStdout`
    when there is none), restored after."""
    inner = sys.stdout
    guard = GuardedStdout(inner if inner is not None else ClosedStdout())
    sys.stdout = guard
    try:
        yield guard
    finally:
        if sys.stdout is guard:
            sys.stdout = inner


def flush_stdout() -> None:
    """Flush stdout: a closed reader is quiet, any other error a :class:`StdoutError`."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        discard_stdout()
    except OSError as exc:
        discard_stdout()
        raise _stdout_error(exc) from None


def write_stdout(text: str) -> None:
    """Write ``text`` to stdout and flush (see :func:`flush_stdout` for errors)."""
    try:
        sys.stdout.write(text)
    except BrokenPipeError:
        discard_stdout()
        return
    except OSError as exc:
        discard_stdout()
        raise _stdout_error(exc) from None
    flush_stdout()


def write_atomic(path: Path, text: str, flag: str = "--output") -> None:
    """Replace ``path`` with ``text`` atomically; SpecError(flag) on any failure, which
    leaves the previous file untouched and no temporary file behind."""
    from attncli.cli.inputs import check_name

    target = Path(path)
    shown = repr(str(target))
    check_name(target, flag)  # NOTE: a name too long for the OS: one line, not is_dir()'s OSError
    if target.is_dir():
        raise SpecError(flag, f"cannot write {shown}: it is a directory")
    special = str(target.absolute()).startswith(("/dev/", "/proc/"))
    if not special and target.is_symlink():
        # NOTE: a link is written through, never replaced: the file it points to gets the new
        # text atomically and the link stays a link (os.replace on the link's own path would put
        # a regular file in its place).
        target = Path(os.path.realpath(target))
    directory = target.parent if str(target.parent) else Path(".")
    if special or (target.exists() and not target.is_file()):
        # NOTE: a device or a pipe (/dev/stdout, /dev/fd/1, /dev/null, a FIFO) is written in
        # place: a rename would replace the device node (or, through /proc/self/fd, the file the
        # shell redirected stdout to) with a regular file, and /dev/fd has no room for a temporary.
        try:
            with open(target, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            raise SpecError(flag, f"cannot write {shown}: {_os_reason(exc)}") from None
        return
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(OSError):
            # NOTE: mkstemp creates the file 0600; a report is as readable as any file the
            # user creates (the umask decides), like the plain write it replaces.
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise SpecError(flag, f"cannot write {shown}: {_os_reason(exc)}") from None
    except ValueError as exc:  # a path with a NUL byte
        raise SpecError(flag, f"cannot write {shown}: {exc}") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is torch (or the C++ runtime) failing to allocate."""
    text = str(exc)
    return any(s in text for s in ("can't allocate memory", "bad_alloc", "out of memory",
                                   "DefaultCPUAllocator", "Cannot allocate memory"))
