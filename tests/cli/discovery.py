"""Every command and option of the app, discovered from typer itself: what the two fuzz tests
(in-process and subprocess) draw from, so a new flag is fuzzed without being listed anywhere."""

from __future__ import annotations

import enum
import functools
import os
import types
import typing
from dataclasses import dataclass
from typing import Any

import typer.main

from attncli.cli import app


@dataclass(frozen=True)
class Opt:
    """One option of a command, as the fuzzers need it."""

    names: tuple[str, ...]
    """Every spelling: ``--dim``, ``-f``, and the off switch of a boolean (``--no-bias``)."""
    kind: str
    """flag, int, float, choice, path or str."""
    choices: tuple[str, ...] = ()


def option_kind(param: Any) -> tuple[str, tuple[str, ...]]:
    """(kind, choices) of a click parameter, read from its typer annotation."""
    if getattr(param, "is_flag", False):
        return "flag", ()
    ann = getattr(getattr(param, "type_descriptor", None), "annotation", str)
    if isinstance(ann, types.UnionType) or typing.get_origin(ann) is typing.Union:
        ann = next((a for a in typing.get_args(ann) if a is not type(None)), str)
    if typing.get_origin(ann) is list:
        ann = typing.get_args(ann)[0]
    if isinstance(ann, type) and issubclass(ann, enum.Enum):
        return "choice", tuple(str(m.value) for m in ann)
    if ann is bool:
        return "flag", ()
    if ann is int:
        return "int", ()
    if ann is float:
        return "float", ()
    if isinstance(ann, type) and issubclass(ann, os.PathLike):
        return "path", ()
    return "str", ()


def command_options(name: str) -> tuple[Opt, ...]:
    """The options of one command (``--help`` aside)."""
    command = typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]
    opts = []
    for param in command.params:
        if getattr(param, "param_type_name", "option") != "option" or param.name == "help":
            continue
        kind, choices = option_kind(param)
        opts.append(Opt(tuple(param.opts) + tuple(param.secondary_opts), kind, choices))
    return tuple(opts)


def commands() -> dict[str, tuple[Opt, ...]]:
    """Every registered command and its options (``--help`` aside)."""
    group = typer.main.get_command(app)
    return {name: command_options(name) for name in sorted(group.commands)}  # type: ignore[attr-defined]


POSITIONAL_VALUES: tuple[str, ...] = (
    "llama-3.1-8b", "Qwen3-8B", "lama-3.1-8b", "tests/data/configs/qwen3-8b",
    "tests/data/configs/gemma-3-27b/config.json", "Qwen/Qwen3-8B", "org/name@v1", "no/such.json", ".", "/dev/null",
    "a" * 300, "x\ny", "",
)
"""What a command's positional argument (``attncli model MODEL``) is fuzzed with: presets, files, folders and
Hub ids. The suite is offline against a closed loopback port (tests/conftest.py), so a Hub id is one line."""


@functools.cache
def command_arguments(name: str) -> tuple[str, ...]:
    """The positional arguments of one command, by their metavar (``MODEL``)."""
    command = typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]
    return tuple(str(p.name) for p in command.params if getattr(p, "param_type_name", "") == "argument")
