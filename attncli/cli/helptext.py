"""How ``attncli --help`` looks and how the app is built for one run, without rich.

- Options sit in named panels (typer's ``rich_help_panel``), drawn here as plain sections in
  :data:`PANELS` order, one column width for all of them; ``-h`` is ``--help`` everywhere.
- A command's epilog is a section written as it is (``Examples:`` and its command lines); the
  root's is the table of exit codes.
- The root lists the commands in :data:`COMMAND_ORDER` with their whole one-line summaries
  (never cut with ``...``).
- :func:`lazy_group` is the click group of one run: the root's own options, and a command's
  options built only when that command is asked for (``attncli flops --help`` builds flops alone).
- ``--preset`` and ``--gpu`` complete their names in the shell (:func:`complete_layer_presets`,
  :func:`complete_model_presets`, :func:`complete_gpus`), read when asked, never importing torch.

Nothing here imports rich, torch or the core (rich would cost more than all of typer).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

import typer
import typer.core
import typer.main

if TYPE_CHECKING:
    from typer._click import Command, Context, HelpFormatter
    from typer.models import CommandInfo

HELP_NAMES = ["-h", "--help"]
"""The spellings of help on the root and every command."""
CONTEXT = {"help_option_names": HELP_NAMES}

PANELS: tuple[str, ...] = ("Layer", "MHA module", "MLA", "Model / config", "Module", "Permutation", "Run",
                           "Serving engine", "Checks (CI)", "Output", "Options")
"""The option panels, in the order a command's help shows them (``Options``: the help option)."""
COMMAND_ORDER: tuple[str, ...] = ("flops", "shapes", "model", "report", "sweep", "permute-test", "bench",
                                  "presets", "gpus")
"""The commands as the root help lists them: in the order people reach for them."""

EXIT_CODES = """Exit codes:
  0    done
  1    a check you asked for failed (--check, --max-*, --baseline)
  2    bad input or usage (one line on stderr naming the flag)
  130  interrupted (Ctrl-C)"""


def examples(*lines: str) -> str:
    """A command's epilog: an ``Examples:`` section of these command lines (each one runs)."""
    return "\n".join(["Examples:", *(f"  {line}" for line in lines)])


def example_lines(epilog: str | None) -> list[str]:
    """The command lines of an :func:`examples` epilog."""
    lines = (epilog or "").splitlines()
    return [ln.strip() for ln in lines[1:] if ln.strip()] if lines[:1] == ["Examples:"] else []


def _write_epilog(epilog: str | None, formatter: HelpFormatter) -> None:
    """A heading line (``Examples:``) and its lines as they are: command lines are never re-wrapped."""
    if not epilog:
        return
    heading, *lines = epilog.splitlines()
    formatter.write_paragraph()
    formatter.write_heading(heading.rstrip(":"))
    for line in lines:
        formatter.write(f"{'':>{formatter.current_indent}}{line}\n")


def _help_names(cmd: Command, ctx: Context) -> list[str]:
    """``-h``, ``--help`` in that order (click's own set has none), less any a command takes itself."""
    taken = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
    return [n for n in ctx.help_option_names if n not in taken]


def _help_option(option: Any) -> Any:
    """click's help option, off by default: ``False``, not ``None``.

    NOTE: typer coerces a flag's value through pydantic unless it is already a bool; the root's
    help flag, not given on ``attncli flops --help``, was ``None`` and loaded pydantic (a third
    of the run) to turn it into ``False``.
    """
    if option is not None and option.default is None:
        option.default = False
    return option


def _panel_rows(cmd: Command, ctx: Context) -> dict[str, list[tuple[str, str]]]:
    panels: dict[str, list[tuple[str, str]]] = {}
    for param in cmd.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is not None:
            panels.setdefault(getattr(param, "rich_help_panel", None) or "Options", []).append(record)
    return panels


def _write_panels(panels: dict[str, list[tuple[str, str]]], formatter: HelpFormatter) -> None:
    """Each panel a section, in :data:`PANELS` order, the option column one width for all."""
    rows = [r for rs in panels.values() for r in rs]
    # NOTE: a term over 30 characters (--average-weights / --per-head-weights) has a line of its own.
    width = max((len(term) for term, _ in rows if len(term) <= 30), default=0)
    order = {name: i for i, name in enumerate(PANELS)}
    for name in sorted(panels, key=lambda n: order.get(n, len(PANELS))):
        with formatter.section(name):
            formatter.write_dl([(term.ljust(width), text) for term, text in panels[name]], col_max=width)


class AttnCommand(typer.core.TyperCommand):
    """A command whose help shows its options by panel and its epilog (examples) as written."""

    def get_help_option_names(self, ctx: Context) -> list[str]:
        return _help_names(self, ctx)

    def get_help_option(self, ctx: Context) -> Any:
        return _help_option(super().get_help_option(ctx))

    def format_options(self, ctx: Context, formatter: HelpFormatter) -> None:
        _write_panels(_panel_rows(self, ctx), formatter)

    def format_epilog(self, ctx: Context, formatter: HelpFormatter) -> None:
        _write_epilog(self.epilog, formatter)


class LazyCommands(MutableMapping[str, Any]):
    """The root's commands, each built (typer reads its options) the first time it is looked up."""

    def __init__(self, infos: dict[str, CommandInfo], pretty_exceptions_short: bool) -> None:
        self.infos = infos
        self.built: dict[str, Any] = {}
        self.short = pretty_exceptions_short

    def __getitem__(self, name: str) -> Any:
        if name not in self.built:
            info = self.infos[name]  # NOTE: KeyError for an unknown name, as a dict
            command = typer.main.get_command_from_info(info, pretty_exceptions_short=self.short,
                                                       rich_markup_mode=None)
            from attncli.cli.coercion import install

            install(command)  # NOTE: plain option values without pydantic (about 0.2 s a run)
            self.built[name] = command
        return self.built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self.built[name] = command

    def __delitem__(self, name: str) -> None:
        self.infos.pop(name, None)
        self.built.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter({**dict.fromkeys(self.infos), **dict.fromkeys(self.built)})

    def __len__(self) -> int:
        return len(set(self.infos) | set(self.built))

    def summary(self, name: str) -> str:
        """The command's one-line summary, without building it."""
        info = self.infos.get(name)
        if info is not None and name not in self.built:
            import inspect

            return info.short_help or (info.help or inspect.getdoc(info.callback) or "").split("\n\n")[0]
        cmd = self[name]
        return str(cmd.short_help or cmd.get_short_help_str(200))


class AttnGroup(typer.core.TyperGroup):
    """The root: commands in :data:`COMMAND_ORDER` with whole summaries, and the exit codes."""

    def get_help_option_names(self, ctx: Context) -> list[str]:
        return _help_names(self, ctx)

    def get_help_option(self, ctx: Context) -> Any:
        return _help_option(super().get_help_option(ctx))

    def list_commands(self, ctx: Context) -> list[str]:
        names = list(self.commands)
        order = {name: i for i, name in enumerate(COMMAND_ORDER)}
        return sorted(names, key=lambda n: (order.get(n, len(order)), names.index(n)))

    def format_options(self, ctx: Context, formatter: HelpFormatter) -> None:
        _write_panels(_panel_rows(self, ctx), formatter)
        self.format_commands(ctx, formatter)

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        commands = self.commands
        rows = []
        for name in self.list_commands(ctx):
            if isinstance(commands, LazyCommands):
                rows.append((name, commands.summary(name)))
            else:
                cmd = commands[name]
                if not cmd.hidden:
                    rows.append((name, str(cmd.short_help or cmd.get_short_help_str(200))))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def format_epilog(self, ctx: Context, formatter: HelpFormatter) -> None:
        _write_epilog(self.epilog, formatter)


def command_name(info: CommandInfo) -> str:
    return info.name or typer.main.get_command_name(info.callback.__name__)  # type: ignore[union-attr]


def lazy_group(app: typer.Typer) -> AttnGroup:
    """The click group of ``app`` for one run: the root's options now, each command when asked for.

    NOTE: typer's own ``get_command(app)`` reads every command's options (typing and
    introspection, about a third of a command's ``--help``); a run needs one command.
    """
    from typer._completion_classes import completion_init

    completion_init()  # NOTE: the shells `_ATTNCLI_COMPLETE=complete_bash` and friends answer
    root = copy.copy(app)
    root.registered_commands = []
    group = typer.main.get_command(root)
    assert isinstance(group, AttnGroup)
    group.commands = LazyCommands({command_name(c): c for c in app.registered_commands}, app.pretty_exceptions_short)
    return group


def complete_layer_presets(incomplete: str) -> list[str]:
    """The presets ``--preset`` of flops, shapes, ... takes (one-layer presets, then whole models, whose
    layer 0 or ``--layer N`` it counts) starting with ``incomplete``."""
    from attncli.models.configs import preset_names
    from attncli.models.modelconfig import model_preset_names

    names = preset_names() + [n for n in model_preset_names() if n not in preset_names()]
    return [n for n in names if n.startswith(incomplete)]


def complete_model_presets(incomplete: str) -> list[str]:
    """The whole-model presets (``attncli model --preset``) starting with ``incomplete``."""
    from attncli.models.modelconfig import model_preset_names

    return [n for n in model_preset_names() if n.startswith(incomplete)]


def complete_gpus(incomplete: str) -> list[str]:
    """The accelerators of the roofline table (``--gpu``) starting with ``incomplete``."""
    from attncli.analyses.gpus import gpus

    return [g.name for g in gpus() if g.name.startswith(incomplete)]
