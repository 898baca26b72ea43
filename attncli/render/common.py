"""Shared rendering: the console, number formats, Markdown tables and :func:`emit`.

Tables honour ``NO_COLOR`` and plain pipes: rich writes no colour codes when stdout is not a
terminal. JSON goes to stdout and nothing else does; warnings go to stderr.
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attncli.choices import EFFECTIVE_FORM
from attncli.numbers import UNITS as UNITS  # NOTE: the number formats live in attncli.numbers
from attncli.numbers import _sig3 as _sig3
from attncli.numbers import commas as commas
from attncli.numbers import human as human
from attncli.numbers import human_bytes as human_bytes
from attncli.spec import AttnSpec, SpecError

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderableType
    from rich.segment import Segment

# NOTE: rich is imported where a table is drawn, not here: a --format json run never draws one,
# and rich's import is a tenth of the bare ``import torch`` (benchmarks/bench_flops.py).


def modern_terms(spec: AttnSpec) -> str:
    """The modern-attention settings of a layer title: `` G=8 d=128 window=4096 cache N=8191``
    (only those that differ from plain multi-head attention)."""
    return "".join(f" {p}" for p in modern_parts(spec))


def named(spec: AttnSpec) -> str:
    """``gemma-3-27b layer 5 (full), ``: the preset or config a title's layer comes from, and which of
    its layers (``--layer``); empty for a layer made from flags alone."""
    parts = [] if spec.model is None else [spec.model]
    if spec.ignored_fields:
        parts.append(f"(ignoring {', '.join(spec.ignored_fields)})")
    if spec.layer is not None:
        from attncli.models.schedule import SHORT

        parts.append(f"layer {spec.layer} ({SHORT.get(spec.layer_type or '', spec.layer_type)})")
    return " ".join(parts) + ", " if parts else ""


def modern_parts(spec: AttnSpec, head_dim: bool = True) -> list[str]:
    """The terms of :func:`modern_terms`, one string each; ``head_dim=False`` leaves out ``d=``
    for titles that always show it."""
    from attncli.registry import kind_of

    parts = kind_of(spec).title_parts(spec)
    grouped = kind_of(spec).head_counts(spec)[1] is not None  # NOTE: G and d are grouped-query heads' sizes
    if not grouped:
        head_dim = False
    if spec.n_kv_heads != spec.heads and grouped:
        parts.append(f"G={spec.n_kv_heads}")
    if head_dim and spec.d_head is not None and spec.inner != spec.dim:
        parts.append(f"d={spec.head_dim}")
    if spec.window is not None:
        parts.append(f"window={spec.window}")
    if spec.chunk is not None:
        parts.append(f"chunk={spec.chunk}")
    if spec.cache:
        parts.append(f"cache N={spec.cache} (S={spec.s})")
    return parts


def md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], align: str = "") -> str:
    """A GitHub Markdown table; ``align`` is one char per column, 'l' or 'r' (default 'l')."""
    align = align.ljust(len(headers), "l")
    sep = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(md_escape(h) for h in headers) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(md_escape(str(c)) for c in row) + " |" for row in rows]
    return "\n".join(lines)


MIN_COLUMNS = 20
"""A ``COLUMNS`` below this (or not a number) is ignored, as if unset: rich would print nothing."""


def console_environ(environ: Any = None) -> dict[str, str]:
    """The environment rich sees: ``COLUMNS``/``LINES`` dropped when not a usable number."""
    env = dict(os.environ if environ is None else environ)
    for name, least in (("COLUMNS", MIN_COLUMNS), ("LINES", 1)):
        value = env.get(name)
        if value is not None and not (value.strip().isdigit() and int(value) >= least):
            del env[name]
    return env


def no_color_requested(environ: Any = None) -> bool:
    """NO_COLOR with a non-empty value (no-color.org: an empty value does not count)."""
    return bool((os.environ if environ is None else environ).get("NO_COLOR"))


def _report_stream() -> Any:
    """Where the report goes (stdout; its own copy of it once a ``--module`` was imported)."""
    from attncli.io.streams import report_stream

    return report_stream()


def make_console(file: Any = None, width: int | None = None) -> Console:
    """A console for tables. Colour is rich's decision (a terminal, ``NO_COLOR`` when not empty,
    ``FORCE_COLOR``); a ``COLUMNS`` that is not a number of at least :data:`MIN_COLUMNS` is ignored."""
    # NOTE: no colour detection of attncli's own: it ignored FORCE_COLOR, which rich honours.
    from rich.console import Console

    target = file if file is not None else _report_stream()
    environ = console_environ()
    console = Console(file=target, width=width, highlight=False, soft_wrap=False, _environ=environ)
    if width is None and "COLUMNS" not in environ and not (hasattr(target, "isatty") and target.isatty()):
        # NOTE: in a pipe rich takes the width of whatever terminal it finds (notes ran to 270
        # characters on a wide one); piped text is at most as wide as --output files.
        console.width = min(console.width, PIPE_WIDTH)
    return console


PIPE_WIDTH = 100
"""The widest tables written to a pipe (``COLUMNS`` overrides it), as wide as ``--output`` files."""


def stderr_console() -> Console:
    return make_console(sys.stderr)


def render_table_text(renderable: RenderableType, width: int = 100) -> str:
    """The table as plain text (no colour, fixed width): for files and golden tests."""
    from rich.console import Console

    buf = io.StringIO()
    Console(file=buf, width=width, no_color=True, color_system=None, highlight=False,
            force_terminal=False).print(renderable, crop=False)
    return buf.getvalue()


def to_json_text(doc: dict[str, Any]) -> str:
    """Strict JSON: a NaN or an infinity is refused (SpecError), never written as ``NaN``."""
    try:
        return json.dumps(doc, indent=2, sort_keys=False, allow_nan=False) + "\n"
    except ValueError:
        raise SpecError("--format", "the report holds a non-finite number (NaN or infinity), "
                                    "which JSON cannot carry; check the input values") from None


def _is_control(c: str) -> bool:
    """A C0 or C1 control character (ESC, BEL, CSI ``\\x9b``, ...), DEL or a Unicode line
    separator; not a newline or a tab, which a table's own text uses."""
    return (c < " " and c not in "\n\t") or "\x7f" <= c <= "\x9f" or c in "\u2028\u2029"


def escape_controls(text: str) -> str:
    """``text`` with every control character written as its escape (``\\x1b``), as error messages
    are (:func:`attncli.cli.common.one_line`), newlines and tabs kept: a config.json's
    ``model_type`` cannot colour the terminal, set its title or move the cursor."""
    if not any(_is_control(c) for c in text):
        return text
    return "".join(repr(c)[1:-1] if _is_control(c) else c for c in text)


class Escaped:
    """A renderable drawn as ``inner`` is, with every control character in its text escaped
    (:func:`escape_controls`); the console's own colour codes come from styles, not text, and stay."""

    def __init__(self, inner: RenderableType) -> None:
        self.inner = inner

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        from rich.segment import Segment

        for seg in console.render(self.inner, options):
            yield seg if seg.control else Segment(escape_controls(seg.text), seg.style)


class _EncodedBuffer(io.StringIO):
    """A string buffer that tells rich the encoding of the stream the text goes to: rich draws
    ASCII table rules for one that is not UTF (``PYTHONIOENCODING=ascii``, ``latin-1``)."""

    def __init__(self, encoding: str) -> None:
        super().__init__()
        self._encoding = encoding

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._encoding


def encodable(text: str, encoding: str) -> str:
    """``text`` with what ``encoding`` cannot carry escaped (``\\u2248``, a lone surrogate from a
    config.json as ``\\udcff``): a non-UTF-8 stdout, or a string no encoding takes, is never a
    ``UnicodeEncodeError`` after the run."""
    try:
        text.encode(encoding)
        return text
    except UnicodeEncodeError:
        return text.encode(encoding, "backslashreplace").decode(encoding)
    except LookupError:  # NOTE: an encoding Python does not know: ASCII is safe anywhere
        return text.encode("ascii", "backslashreplace").decode("ascii")


def emit(fmt: str, doc: dict[str, Any], table: Callable[[], RenderableType],
         markdown: Callable[[], str], output: Path | None = None) -> None:
    """Write the report in ``fmt`` to stdout, or to ``output`` when given (in the format its
    suffix names unless ``--format`` was typed: :func:`attncli.io.paths.output_format`).

    The whole text is produced first and written in one go: a failure while rendering
    leaves stdout empty. ``output`` is replaced atomically (:func:`attncli.io.streams.write_atomic`).
    """
    from attncli.io.interrupts import delivering_report
    from attncli.io.paths import output_format
    from attncli.io.streams import write_atomic, write_stdout

    fmt = output_format(fmt, output)
    if fmt == "json":
        text = to_json_text(doc)  # NOTE: ASCII: json.dumps escapes every control character itself
    elif fmt == "markdown":
        text = escape_controls(markdown().rstrip("\n") + "\n")
    elif output is None:
        # NOTE: rendered into a string with the terminal's width and colours, then written
        # in one go (rich's own capture still writes to the real file on some paths). Not
        # cropped: tables fit the width themselves; only an unbroken URL may run past it.
        from rich.console import Console

        real = make_console()
        buf = _EncodedBuffer(real.encoding)  # NOTE: ASCII rules when stdout's encoding is not UTF
        Console(file=buf, width=real.width, no_color=real.no_color, color_system=real.color_system,  # type: ignore[arg-type]
                force_terminal=real.is_terminal, highlight=False, soft_wrap=False,
                _environ=console_environ()).print(Escaped(table()), crop=False)
        text = buf.getvalue()
    else:
        text = render_table_text(Escaped(table()))
    with delivering_report():  # NOTE: a Ctrl-C from the first byte on no longer makes it exit 130
        if output is None:
            write_stdout(encodable(text, getattr(_report_stream(), "encoding", None) or "utf-8"))
        else:
            write_atomic(output, encodable(text, "utf-8"))
            print(f"attncli: wrote {fmt} to {str(output)!r}", file=sys.stderr)


def _stderr_is_terminal() -> bool:
    """File descriptor 2 is a terminal (whatever ``FORCE_COLOR`` says)."""
    try:
        return os.isatty(2)
    except OSError:
        return False


@contextmanager
def progress(description: str, total: int) -> Iterator[Callable[[Any], None]]:
    """A rich progress bar on stderr (only when stderr is a terminal); yields ``advance``."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    # NOTE: os.isatty(2), not rich's is_terminal: FORCE_COLOR makes rich treat a pipe as a terminal,
    # and a bar drawn into a pipe left cursor moves in the log and in front of the error line.
    console = Console(stderr=True)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=console, transient=True, disable=not _stderr_is_terminal())
    with bar:
        task = bar.add_task(description, total=total)
        yield lambda _value: bar.advance(task)


@contextmanager
def status(message: str, fmt: str = "table", delay: float = 0.5) -> Iterator[None]:
    """A transient status line on stderr while something slow runs.

    Shown only when stderr and stdout are terminals and the output is not JSON, only after ``delay``
    seconds (quick commands never flash it); rich clears it when the block ends.
    """
    import threading

    if fmt == "json" or not all(hasattr(f, "isatty") and f.isatty() for f in (sys.stderr, _report_stream())):
        yield
        return
    # NOTE: isatty, not rich's is_terminal: FORCE_COLOR makes rich treat a pipe as a terminal. stdout
    # too: behind `| less` a spinner on stderr would draw over the pager.
    from rich.console import Console

    spinner = Console(stderr=True).status(message)
    lock = threading.Lock()
    state = {"started": False, "done": False}

    def start() -> None:
        with lock:
            if not state["done"]:
                spinner.start()
                state["started"] = True

    timer = threading.Timer(delay, start)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        with lock:
            state["done"] = True
            if state["started"]:
                spinner.stop()


def conventions(dtype: str, bytes_per_element: int, closed_form: str, tail: str) -> list[str]:
    """The conventions lines under a flops table (built-in layer or --module): MACs and FLOPs,
    what counts zero, dense vs effective, then ``closed_form`` (the closed form's terms),
    the memory dtype and ``tail``."""
    n = bytes_per_element
    return ["fvcore flops are multiply-adds (MACs); FLOPs = 2 x MACs; fwd+bwd = 3 x forward "
            "(backward = 2 x forward, by convention).",
            "Softmax, scaling, masking and bias adds have no multiply-adds: 0 (listed above). "
            "Dense counts charge every score, masked or not (as fvcore and FlopCounterMode do); "
            f"effective counts QK^T and weights x V as {EFFECTIVE_FORM}, what FlashAttention-style "
            "kernels do when they skip masked blocks.",
            f"{closed_form}. Memory at {dtype} ({n} byte{'' if n == 1 else 's'}/element){tail}"]
