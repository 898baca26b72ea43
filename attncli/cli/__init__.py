"""The ``attncli`` command line: a Typer app with thin commands over the pure core.

Commands live in their own modules (``cli/shapes.py``, ``cli/flops.py``, ...) and register
themselves on :data:`app`. Heavy imports (torch, fvcore, rich) happen inside the commands, so
``attncli --help`` stays fast. :func:`main` is the console script: it turns usage errors into
one line on stderr with exit code 2, never a traceback.
"""

from __future__ import annotations

from attncli.io import interrupts

# NOTE: before any heavy import, so Ctrl-C during start-up is never a traceback.
interrupts.install_at_start()

import sys  # noqa: E402
from typing import Annotated  # noqa: E402

import typer  # noqa: E402
from typer.completion import install_callback, show_callback  # noqa: E402

from attncli import __version__  # noqa: E402
from attncli.cli.helptext import CONTEXT, EXIT_CODES, AttnGroup, lazy_group  # noqa: E402
from attncli.cli.runtime import frozen_for_shutdown  # noqa: E402
from attncli.io import streams  # noqa: E402

app = typer.Typer(
    name="attncli",
    cls=AttnGroup,
    help="Build attention layers from flags and tell the truth about their shapes, "
         "parameters, FLOPs and permutation behaviour.",
    epilog=EXIT_CODES,
    context_settings=CONTEXT,
    no_args_is_help=True,
    # NOTE: --install-completion/--show-completion are declared on _root as plain flags: typer's
    # own pair (default None, not a bool) loads pydantic on every run, a third of a --help.
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        print(f"attncli {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    install_completion: Annotated[bool, typer.Option(
        "--install-completion", callback=install_callback, expose_value=False,
        help="Install completion for the current shell.")] = False,
    show_completion: Annotated[bool, typer.Option(
        "--show-completion", callback=show_callback, expose_value=False,
        help="Show completion for the current shell, to copy it or customize the installation.")] = False,
) -> None:
    """Build attention layers from flags and tell the truth about them (exit codes: the epilog).

    A closed pipe on stdout keeps the run's own code.
    """


# NOTE: each module registers its command; the root help lists them in helptext.COMMAND_ORDER.
from attncli.cli import bench as _bench  # noqa: E402,F401
from attncli.cli import flops as _flops  # noqa: E402,F401
from attncli.cli import gpus as _gpus  # noqa: E402,F401
from attncli.cli import model as _model  # noqa: E402,F401
from attncli.cli import permute as _permute  # noqa: E402,F401
from attncli.cli import presets as _presets  # noqa: E402,F401
from attncli.cli import report as _report  # noqa: E402,F401
from attncli.cli import shapes as _shapes  # noqa: E402,F401
from attncli.cli import sweep as _sweep  # noqa: E402,F401


def main(argv: list[str] | None = None) -> int:
    """Run the app; usage errors become ``attncli: error: ...`` (one line) and exit 2.

    Also: Ctrl-C is ``attncli: interrupted`` and exit 130; a reader that closed stdout ends
    the run quietly (the exit code is what the run would have returned); any other error
    writing stdout, and running out of memory, are one line and exit 2. In the console script, the
    objects left are frozen for the interpreter's shutdown (:func:`attncli.cli.runtime.frozen_for_shutdown`).
    """
    code = _main(argv)
    interrupts.exit_now_if_interrupted(code)
    interrupts.exit_now_if_user_code_ran(code)
    interrupts.ignore_from_now()
    frozen_for_shutdown()
    return code


def _main(argv: list[str] | None) -> int:
    """:func:`main` up to its exit code: Ctrl-C raises ``KeyboardInterrupt`` only in here."""
    try:
        interrupts.arm()  # NOTE: inside the try that catches (see attncli.io.interrupts)
        code = _reported(argv)
        interrupts.disarm()
        return code
    except KeyboardInterrupt:
        interrupts.disarm()
        streams.discard_stdout()
        print("attncli: interrupted", file=sys.stderr)
        return interrupts.INTERRUPTED


def _reported(argv: list[str] | None) -> int:
    """The run, with stdout errors and running out of memory as one line and exit 2."""
    try:
        with streams.guarded_stdout():
            code = _run(argv)
            streams.flush_stdout()
        return code
    except streams.StdoutError as exc:
        print(f"attncli: error: {exc}", file=sys.stderr)
        return 2
    except MemoryError:
        streams.discard_stdout()
        print("attncli: error: --dim/--seq/--batch: out of memory (the layer is too large for this "
              "machine; use smaller sizes)", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        if not streams.is_out_of_memory(exc):
            raise
        streams.discard_stdout()
        print("attncli: error: --dim/--seq/--batch: out of memory (torch could not allocate; use "
              "smaller sizes)", file=sys.stderr)
        return 2


def _run(argv: list[str] | None) -> int:
    """The app itself, with typer's usage errors as one line and exit 2."""
    try:
        # NOTE: the lazy group builds the invoked command alone (typer's app() builds them all).
        result = lazy_group(app)(args=argv, prog_name="attncli", standalone_mode=False)
    except typer.Exit as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):  # typer turns Ctrl-C into Exit(130)
            raise KeyboardInterrupt from None
        return exc.exit_code
    except typer.Abort:
        raise KeyboardInterrupt from None
    except interrupts.InterruptReported:
        return interrupts.INTERRUPTED
    except (KeyboardInterrupt, MemoryError, streams.StdoutError):
        raise
    except Exception as exc:
        # NOTE: typer's (vendored click) usage errors carry exit_code and format_message();
        # anything else is a bug and keeps its traceback.
        code, fmt_message = getattr(exc, "exit_code", None), getattr(exc, "format_message", None)
        if not isinstance(code, int) or fmt_message is None:
            raise
        if type(exc).__name__ == "NoArgsIsHelpError":
            # NOTE: `attncli` alone asks what attncli does: the root help, on stdout, exit 0 (as
            # `attncli --help`); 21 lines on stderr with exit 2 broke "exit 2 is one line".
            print(fmt_message())
            return 0
        ctx = getattr(exc, "ctx", None)
        where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        from attncli.cli.common import one_line
        from attncli.cli.errors import usage_message

        message = usage_message(exc, " ".join(str(fmt_message()).split()))
        print(f"attncli: error: {one_line(message)}{where}", file=sys.stderr)
        return code
    if result == interrupts.INTERRUPTED:
        # NOTE: typer turns Ctrl-C into Exit(130), which click returns without standalone mode.
        raise KeyboardInterrupt
    return result if isinstance(result, int) else 0
