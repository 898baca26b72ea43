"""Option values converted without pydantic when the conversion is plain (about 0.2 s a run).

typer 0.29 converts every option of the invoked command through a pydantic ``TypeAdapter`` built
when the command runs: importing pydantic, scanning its plugins' entry points and building some thirty
adapters cost about 0.2 s of CPU before a command's first line, a tenth of ``import torch``. The
values attncli's options take are mostly plain: a string, a decimal integer or number within the
option's bounds, an Enum's value, a list of strings, a path, a value the option's own parser reads.
:func:`install` gives each option of a built command a :class:`Plain` runtime conversion that answers
those itself, with the value typer's own would give (``tests/cli/test_coercion.py`` compares the
two on every option), and hands everything else, errors included, to typer's own: every message
stays typer's (and :mod:`attncli.cli.errors`'s wording of it).

It relies on typer's private ``_TyperParameter._runtime_param`` and ``RuntimeParam``, so it is
installed only on the typer it was verified on (:data:`VERIFIED_TYPER`), and
``ATTNCLI_NO_IMPORT_SHORTCUT=1`` turns it off, as it turns off the torch shortcut
(:mod:`attncli.cli.runtime`).
"""

from __future__ import annotations

import enum
import functools
import os
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VERIFIED_TYPER = "0.29."
"""The typer releases whose runtime conversion this was checked against (the ``0.29.x`` line)."""

_NO = object()
"""Not a plain conversion: typer's own decides (and words any error)."""
_INT = re.compile(r"-?(?:0|[1-9][0-9]{0,17})")
_FLOAT = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]{1,15})?")


def plain(annotation: Any, info: Any, value: Any, param: Any = None, ctx: Any = None) -> Any:
    """``value`` converted to ``annotation`` as typer's pydantic adapter (typer/_adapters.py
    ``build_adapter``) converts it, or :data:`_NO` when the case is not a plain one or the value is
    refused (typer's own then says why). In typer's order: a list item by item, then the option's own
    ``parser``, a choice, a number, a string, a path (the last two through typer's own helpers)."""
    from typer._param_types import coerce_cli_choice, coerce_cli_path, routes_to_path

    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation) or (_NO,)
        if not isinstance(value, list | tuple):
            return _NO
        items = [plain(item, info, v, param, ctx) for v in value]
        return _NO if any(i is _NO for i in items) else items
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        return _NO
    parser = getattr(info, "parser", None)
    if parser is not None:
        return _attempt(lambda: parser(value))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return _attempt(lambda: coerce_cli_choice(value, choices=list(annotation),
                                                  case_sensitive=info.case_sensitive, ctx=ctx))
    if annotation is int:
        if type(value) is int:
            return _bounded(value, info)
        return _bounded(int(value) if isinstance(value, str) and _INT.fullmatch(value) else _NO, info)
    if annotation is float:
        if type(value) is float or type(value) is int:
            return _bounded(float(value), info)
        return _bounded(float(value) if isinstance(value, str) and _FLOAT.fullmatch(value) else _NO, info)
    if annotation is str:
        return value if isinstance(value, str) else _NO
    if annotation is not bool and routes_to_path(annotation, info) and isinstance(value, str) and value.strip() \
            and "\0" not in value:
        path_type = info.path_type or (annotation if isinstance(annotation, type) and issubclass(annotation, Path)
                                       else None)
        # NOTE: as a Path already: typer's helper turns a string into one through pydantic (Path(value))
        given = path_type(value) if path_type is not None else value
        return _attempt(lambda: coerce_cli_path(given, info, path_type=path_type, param=param, ctx=ctx))
    return _NO


def _attempt(convert: Any) -> Any:
    """``convert()``, or :data:`_NO` when it raises (typer's own runs it again and words the error)."""
    try:
        return convert()
    except Exception:
        return _NO


def _bounded(number: Any, info: Any) -> Any:
    """``number`` within the option's ``min``/``max``; else :data:`_NO` (typer's own says what is wrong)."""
    if number is _NO or getattr(info, "clamp", False):
        return _NO
    low, high = getattr(info, "min", None), getattr(info, "max", None)
    if (low is not None and number < low) or (high is not None and number > high):
        return _NO
    return number


def enabled() -> bool:
    import typer

    return str(getattr(typer, "__version__", "")).startswith(VERIFIED_TYPER) and not os.environ.get(
        "ATTNCLI_NO_IMPORT_SHORTCUT")


def install(command: Any) -> None:
    """Give each option of ``command`` (a built typer command) the :class:`Plain` conversion."""
    if not enabled():
        return
    plain_param = _plain_class()
    for param in getattr(command, "params", ()):
        descriptor = getattr(param, "type_descriptor", None)
        if descriptor is not None and getattr(param, "_runtime_param", "absent") is None:
            param._runtime_param = plain_param(descriptor.parameter_info, descriptor.annotation, descriptor)


@functools.cache
def _plain_class() -> Any:
    from typer._coercion import RuntimeParam, build_runtime_param

    @dataclass(frozen=True)
    class Plain(RuntimeParam):
        """typer's runtime conversion, answered here when it is plain (:func:`plain`)."""

        descriptor: Any = None

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            done = plain(self.annotation, self.parameter_info, value, param, ctx)
            if done is not _NO:
                return done
            return build_runtime_param(self.descriptor)._coerce_value(value, param=param, ctx=ctx)

    return Plain
