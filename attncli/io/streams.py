"""Where a report goes: stdout (with a closed reader and a full disk handled) or a file, atomically.

- :func:`write_stdout` writes and flushes; a reader that went away (``| head -1``, ``| true``:
  ``BrokenPipeError``) ends the output quietly (stdout is pointed at ``/dev/null`` so the
  interpreter's own flush at exit cannot fail again) and the run keeps its exit code; any
  other write error (``> /dev/full``) is a :class:`StdoutError`, which ``main`` prints as one
  line with exit 2.
- :func:`keep_report_apart`, called before a ``--module`` is imported, gives the report its own
  copy of stdout and points everything else (``sys.stdout``, file descriptor 1) at stderr for
  the rest of the run: a thread the module started cannot print into the report, even after
  the count.
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

from attncli.io import interrupts
from attncli.spec import SpecError


class StdoutError(Exception):
    """stdout cannot be written (other than a closed pipe); the message names ``--output``."""


def _os_reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def discard_stdout(stream: Any = None) -> None:
    """Point the report's file descriptor (1, or its copy after :func:`keep_report_apart`) at
    ``/dev/null`` (the Python docs' recipe for SIGPIPE), so whatever is still buffered goes
    nowhere instead of failing at exit."""
    if stream is None and _STATE["diverted"] and not _GUARDS:
        return  # NOTE: the report's copy is closed; descriptor 1 is stderr's now
    try:
        fd = (report_stream() if stream is None else stream).fileno()
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
        self.inner = inner
        self.reader_gone = False
        self.diverted = False
        """:func:`keep_report_apart` sent ``sys.stdout`` elsewhere; this guard still writes the report."""
        self.own_copy: Any = None
        """The report's own duplicate of stdout (opened by :func:`keep_report_apart`), closed at the end."""

    def write(self, text: str) -> int:
        if self.reader_gone or (isinstance(text, str) and not text):
            # NOTE: click probes a stream with write("") (and write(b"")); answering the probe
            # without touching the real stream keeps a full disk from looking like a binary stream.
            return 0 if not text else len(text)
        try:
            return int(self.inner.write(text))
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
            self.inner.flush()
        except BrokenPipeError:
            self._gone()
        except OSError as exc:
            discard_stdout()
            raise _stdout_error(exc) from None

    def _gone(self) -> None:
        self.reader_gone = True
        discard_stdout(self.inner)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


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


def stdout_closed() -> bool:
    """True when the report would go to a stdout the process started without (``>&-``): a run that also
    writes a file (``--plot``) refuses before writing it, rather than write it and then fail."""
    stream = report_stream()
    return isinstance(getattr(stream, "inner", stream), ClosedStdout)


_GUARDS: list[GuardedStdout] = []
"""The guard of the running ``main`` (innermost last): where the report goes."""

_STATE = {"diverted": False}
"""Whether :func:`keep_report_apart` moved the report off ``sys.stdout`` in this process."""


def report_stream() -> Any:
    """Where the report goes: the running ``main``'s guard (which stays on the real stdout when
    :func:`keep_report_apart` sent ``sys.stdout`` to stderr), else ``sys.stdout``."""
    return _GUARDS[-1] if _GUARDS else sys.stdout


@contextlib.contextmanager
def guarded_stdout() -> Iterator[GuardedStdout]:
    """``sys.stdout`` replaced by a :class:`GuardedStdout` of itself (of a :class:`ClosedStdout`
    when there is none), restored after."""
    inner = sys.stdout
    guard = GuardedStdout(inner if inner is not None else ClosedStdout())
    sys.stdout = guard
    _GUARDS.append(guard)
    try:
        yield guard
    finally:
        _GUARDS.remove(guard)
        if sys.stdout is guard or guard.diverted:
            # NOTE: after keep_report_apart in the console script, ``inner`` writes to descriptor 1,
            # which is stderr's now: a thread the module left running still prints to stderr.
            sys.stdout = inner
        if guard.own_copy is not None:
            with contextlib.suppress(OSError, ValueError):  # a reader that went away: nothing to say
                guard.own_copy.close()


def keep_report_apart() -> None:
    """From now on only the report reaches stdout: call it before a user's ``--module`` is
    imported. The user's code, and every thread it starts, writes to stderr, during the count
    and after it.

    - ``sys.stdout`` is ``sys.stderr`` until ``main`` ends (not restored after the module ran:
      a daemon thread it started keeps printing, and its lines must not land in the report);
    - in the console script, the report gets its own duplicate of file descriptor 1 and
      descriptor 1 becomes a copy of stderr (``os.write(1, ...)``, ``sys.__stdout__`` and C code
      write there), and the process ends with ``os._exit`` once the exit code is known
      (:func:`attncli.io.interrupts.exit_now_if_user_code_ran`): the interpreter's shutdown
      with the module's threads still writing could hang or crash.

    Once per run; outside ``main`` (no guard) it does nothing.
    """
    if not _GUARDS or _GUARDS[-1].diverted:
        return
    guard = _GUARDS[-1]
    guard.diverted = True
    _STATE["diverted"] = True
    sys.stdout = sys.stderr
    if not interrupts.installed():
        return  # NOTE: a test or a library run: descriptor 1 is not attncli's to move
    interrupts.note_user_code()
    inner = guard.inner
    try:
        fd = inner.fileno()
    except (AttributeError, OSError, ValueError):
        return  # stdout closed at start (ClosedStdout) or not a file: nothing to keep apart
    with contextlib.suppress(OSError, ValueError):
        inner.flush()
    try:
        copy = os.dup(fd)
        own = open(copy, "w", encoding=getattr(inner, "encoding", None) or "utf-8",  # noqa: SIM115
                   errors=getattr(inner, "errors", None) or "strict", closefd=True)
        os.dup2(2, fd)
    except OSError:
        return  # NOTE: out of descriptors: sys.stdout is diverted, descriptor 1 stays (the fence covers it)
    guard.own_copy = own
    guard.inner = own


def flush_stdout() -> None:
    """Flush the report's stream: a closed reader is quiet, any other error a :class:`StdoutError`."""
    try:
        report_stream().flush()
    except BrokenPipeError:
        discard_stdout()
    except OSError as exc:
        discard_stdout()
        raise _stdout_error(exc) from None


def write_stdout(text: str) -> None:
    """Write ``text`` to the report's stream and flush (see :func:`flush_stdout` for errors)."""
    try:
        report_stream().write(text)
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
    from attncli.io.paths import check_name

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
