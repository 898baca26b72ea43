"""attncli.cli.coercion answers plain option values as typer's own pydantic conversion does, on every
option of every command, and leaves everything else (errors included) to typer."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from typer._coercion import build_runtime_param

from attncli.cli import app, coercion
from attncli.cli.helptext import lazy_group
from tests.cli.discovery import commands
from tests.hostile.cases import BY_FLAG, CACHES, FLOATS, INTS, RANGES, WORDS

VALUES = sorted({*INTS, *FLOATS, *RANGES, *WORDS, *CACHES, *(v for vs in BY_FLAG.values() for v in vs),
                 "json", "table", "markdown", "vllm", "auto", "fp8", "bfloat16", "-0", "007", " 8", "8 ", "+8",
                 "1.", ".5", "1e3", "0.0", "-0.5", "9" * 30, "out.json", "-", "~/x.json", "a b"})


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def _params() -> list[tuple[str, Any]]:
    group = lazy_group(app)
    return [(name, p) for name in commands() for p in group.commands[name].params
            if getattr(p, "type_descriptor", None) is not None]


@pytest.mark.parametrize(("command", "param"), _params(), ids=lambda x: getattr(x, "name", x))
def test_plain_values_convert_as_typers_own(command: str, param: Any) -> None:
    d = param.type_descriptor
    typers = build_runtime_param(d)
    values: list[Any] = [*VALUES, param.default] if param.default is not None else list(VALUES)
    if coercion.plain(d.annotation, d.parameter_info, [VALUES[0]]) is not coercion._NO:
        values += [[v] for v in VALUES[:40]] + [tuple(VALUES[40:45])]
    for value in values:
        ours = coercion.plain(d.annotation, d.parameter_info, value, param)
        if ours is coercion._NO:
            continue
        theirs = typers._coerce_value(value, param=param, ctx=None)  # NOTE: raises if typer refuses it
        assert _same(ours, theirs) or (isinstance(ours, list) and all(map(_same, ours, theirs))), (value, ours, theirs)


def test_most_options_are_answered_without_pydantic() -> None:
    """The point of it: a run builds no adapter for the options it answers (a path with checks, a flag
    and a --dtype with its own parser go to typer)."""
    params = _params()
    answered = [p for _, p in params if p.type_descriptor.annotation is bool  # NOTE: typer passes a flag's bool
                or any(coercion.plain(p.type_descriptor.annotation, p.type_descriptor.parameter_info, v, p)
                       is not coercion._NO for v in [*VALUES, p.default, [VALUES[0]]])]
    assert len(answered) >= 0.8 * len(params), [p.name for _, p in params if p not in answered]


def test_the_run_of_a_command_loads_no_pydantic(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONPROFILEIMPORTTIME": "1"}
    argv = [sys.executable, "-m", "attncli", "presets", "-f", "json", "-o", str(tmp_path / "p.json")]
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0 and "pydantic" not in r.stderr
    off = subprocess.run(argv, capture_output=True, text=True, env={**env, "ATTNCLI_NO_IMPORT_SHORTCUT": "1"},
                         timeout=120)
    assert off.returncode == 0 and "pydantic" in off.stderr  # NOTE: typer's own conversion, as before
