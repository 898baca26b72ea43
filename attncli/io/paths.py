"""The files a run reads and writes, checked before anything is read, counted or written.

- :func:`check_name`: a path with a name over :data:`MAX_NAME_BYTES` bytes (or longer than
  :data:`MAX_PATH_BYTES` in all) is one exit-2 line naming its flag, not a traceback from the
  first ``stat`` (``OSError: File name too long``) after the whole computation.
- :func:`check_regular`: an input (``--config``, a config folder's ``config.json``, ``--baseline``)
  must be a regular file: a FIFO would block the read forever, a device never end.
- :func:`check_not_overwritten`: ``--output`` (and ``--plot``) must not be one of the run's own
  inputs (``--config``, ``--baseline``, ``--plot``, the file of a ``--module``): the report would
  replace what it was computed from (a regressed baseline would replace the baseline, and the
  next run pass).
- :func:`output_format`: ``-o FILE`` takes its format from the suffix (``.json``, ``.md``) unless
  ``--format`` is given; a ``--format`` that contradicts the suffix is refused naming ``--output``.

Below every package that reads a file (``models``) or writes one (``render``): it imports only
:mod:`attncli.spec`. Nothing here imports torch or rich.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterable
from pathlib import Path

from attncli.spec import SpecError

MAX_NAME_BYTES = 255
"""The longest file name (one path component) Linux and macOS file systems take, in bytes."""
MAX_PATH_BYTES = 4095
"""The longest path ``open`` takes (PATH_MAX less the NUL), in bytes."""


def shown(path: Path | str, limit: int = 60) -> str:
    """``path`` quoted for a message, its middle elided when longer than ``limit`` characters."""
    text = str(path)
    if len(text) > limit:
        text = text[: limit // 2] + "..." + text[-(limit // 2):]
    return repr(text)


def check_name(path: Path | str | None, flag: str) -> None:
    """Refuse (SpecError naming ``flag``) a path the operating system cannot take for its length."""
    if path is None:
        return
    raw = os.fsencode(str(path))
    longest = max((len(part) for part in raw.split(b"/")), default=0)
    if longest > MAX_NAME_BYTES:
        raise SpecError(flag, f"{shown(path)}: a file name of {longest} bytes is too long "
                              f"(at most {MAX_NAME_BYTES} bytes)")
    if len(raw) > MAX_PATH_BYTES:
        raise SpecError(flag, f"{shown(path)}: a path of {len(raw)} bytes is too long (at most {MAX_PATH_BYTES})")


def _stat(path: Path | str) -> os.stat_result | None:
    """``os.stat`` (through links), or None when it fails: the reader then says why."""
    try:
        return os.stat(path)
    except (OSError, ValueError):
        return None


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def check_regular(path: Path | str | None, flag: str, folder_file: str | None = None) -> None:
    """Refuse (SpecError naming ``flag``) an input that is not a regular file: a FIFO would block
    the read forever, a device never end. With ``folder_file`` a folder is read as the file of that
    name inside it (``--config DIR`` reads ``DIR/config.json``). A missing file is left to the reader."""
    if path is None:
        return
    check_name(path, flag)
    st = _stat(path)
    if st is not None and folder_file is not None and stat.S_ISDIR(st.st_mode):
        path = Path(path) / folder_file
        st = _stat(path)
    if st is None or stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
        return
    raise SpecError(flag, f"{shown(path)} is {_kind(st.st_mode)}, not a regular file: "
                          "give a file (a pipe or a device could block the read or never end)")


def read_path(path: Path | str, folder_file: str | None = None) -> Path:
    """The file read for ``path``: ``path/folder_file`` for a folder."""
    p = Path(path)
    if folder_file is not None and p.is_dir():
        return p / folder_file
    return p


def same_file(a: Path | str, b: Path | str) -> bool:
    """Whether ``a`` and ``b`` are the same file (the same inode, or the same resolved path
    when either does not exist yet)."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        pass
    try:
        return os.path.realpath(a) == os.path.realpath(b)
    except (OSError, ValueError):
        return False


def module_file(ref: str | None) -> Path | None:
    """The source file a ``--module PKG.MOD:FACTORY`` would import, found without importing
    anything (the current directory first, then ``sys.path``), or the file of a
    ``--module PATH/TO/FILE.py:FACTORY``; None when not found."""
    if not ref:
        return None
    name = ref.partition(":")[0]
    if name.endswith(".py") or "/" in name or os.sep in name:  # PATH/TO/FILE.py:FACTORY
        try:
            return Path(name) if Path(name).is_file() else None
        except (OSError, ValueError):
            return None
    if not name or any(not part.isidentifier() for part in name.split(".")):
        return None
    parts = name.split(".")
    for root in [os.getcwd(), *sys.path]:
        base = Path(root or os.getcwd()).joinpath(*parts)
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            try:
                if candidate.is_file():
                    return candidate
            except (OSError, ValueError):
                continue
    return None


def check_not_overwritten(flag: str, target: Path | str | None,
                          inputs: Iterable[tuple[str, Path | str | None]]) -> None:
    """Refuse (SpecError naming ``flag``) writing ``target`` when it is one of ``inputs``
    (``(flag, path)`` pairs; None paths are skipped): the run would overwrite what it reads."""
    if target is None:
        return
    check_name(target, flag)
    for other_flag, other in inputs:
        if other is None or other_flag == flag:
            continue
        if same_file(target, other):
            raise SpecError(flag, f"{shown(target)} is also the run's {other_flag} file: the report would "
                                  f"overwrite it; write {flag} somewhere else")


SUFFIX_FORMATS: dict[str, str] = {".json": "json", ".md": "markdown", ".markdown": "markdown"}
"""The ``--output`` suffixes that say the format; any other suffix writes the table."""

_FORMAT_PARAMS = ("format", "fmt")
"""The names commands give their ``--format`` parameter."""


def _typed_format() -> tuple[bool, str | None]:
    """(whether a click context is running, the ``--format`` the user typed or None)."""
    from typer._click.core import ParameterSource
    from typer._click.globals import get_current_context

    ctx = get_current_context(silent=True)
    if ctx is None:
        return False, None
    for name in _FORMAT_PARAMS:
        if name in ctx.params:
            if ctx.get_parameter_source(name) not in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
                return True, None
            value = ctx.params[name]
            return True, str(getattr(value, "value", value))
    return True, None


def output_format(fmt: str, output: Path | str | None) -> str:
    """The format a report is written in: ``--format`` when typed, else the one ``--output``'s
    suffix names (``.json``: json, ``.md``: markdown, anything else: table), else ``fmt``.

    A typed ``--format`` that contradicts the suffix (``-o x.json --format markdown``) is refused
    (SpecError naming ``--output``). Outside a command (no click context) ``fmt`` is kept.
    """
    running, typed = _typed_format()
    if not running or output is None:
        return fmt
    implied = SUFFIX_FORMATS.get(Path(output).suffix.lower())
    if typed is None:
        return implied or "table"
    if implied is not None and implied != typed:
        raise SpecError("--output", f"{shown(output)} names a {implied} file but --format is {typed}: "
                                    f"drop --format, or give --output a name that fits {typed}")
    return typed


def check_run_files(output: Path | None, *, config: Path | None = None, baseline: Path | None = None,
                    plot: Path | None = None, module: str | None = None) -> None:
    """Every check above for one run, before anything is read: names, regular inputs, and no
    output (``--output``, ``--plot``) over an input or over each other."""
    check_name(output, "--output")
    output_format("table", output)  # NOTE: a contradicting --format is refused before any work
    check_name(plot, "--plot")
    check_regular(config, "--config", "config.json")
    check_regular(baseline, "--baseline")
    inputs: list[tuple[str, Path | str | None]] = [
        ("--config", None if config is None else read_path(config, "config.json")),
        ("--baseline", baseline), ("--module", module_file(module))]
    check_not_overwritten("--output", output, [*inputs, ("--plot", plot)])
    check_not_overwritten("--plot", plot, inputs)
