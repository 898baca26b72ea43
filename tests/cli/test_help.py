"""``--help`` as typer users expect it: -h, option panels, one metavar style, examples that parse,
the root's command list and exit codes, and shell completion of --preset and --gpu."""

from __future__ import annotations

import enum
import os
import re
import shlex
import subprocess
import sys
import typing
from typing import Any

import pytest
import typer.main

from attncli.cli import app
from attncli.cli.helptext import PANELS, example_lines, lazy_group

DOCUMENTED_ORDER = ["flops", "shapes", "model", "report", "sweep", "permute-test", "bench", "presets", "gpus"]
"""The root help's command list, in the order the README and issue 21 document."""
METAVAR = re.compile(r"^[A-Z][A-Z0-9]*([.:][A-Z][A-Z0-9]*)*$")
"""One style: upper-case words (N, FILE, NAME, SECONDS, PKG.MOD:FACTORY)."""


def group() -> Any:
    return typer.main.get_command(app)


def commands() -> dict[str, Any]:
    return dict(group().commands)


def options(cmd: Any) -> list[Any]:
    return [p for p in cmd.params if getattr(p, "param_type_name", "") == "option"]


def sections(text: str) -> dict[str, list[str]]:
    """A help text's sections (``Layer:``, ``Examples:``...) and their lines."""
    out: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            current = line[:-1]
            out[current] = []
        elif current is not None and line.strip():
            out[current].append(line)
    return out


def test_dash_h_is_help_on_the_root_and_every_command(cli: Any) -> None:
    assert set(commands()) == set(DOCUMENTED_ORDER)
    for name in ["", *DOCUMENTED_ORDER]:
        args = [name] if name else []
        short, long = cli(*args, "-h"), cli(*args, "--help")
        assert short.code == 0 and short.err == "", name
        assert short.out == long.out and short.out.startswith(f"Usage: attncli {name}".rstrip()), name
        assert "-h, --help" in short.out, name


def test_every_option_sits_in_a_named_panel(cli: Any) -> None:
    for name, cmd in commands().items():
        for p in options(cmd):
            assert getattr(p, "rich_help_panel", None) in PANELS[:-1], (name, p.opts)
        shown = [s for s in sections(cli(name, "--help").out) if s in PANELS]
        assert shown == sorted(shown, key=PANELS.index), (name, shown)
        assert shown[-1] == "Options"  # the help option alone, last


def test_layer_panel_starts_with_the_sizes(cli: Any) -> None:
    with_layer = 0
    for name in DOCUMENTED_ORDER:
        layer = sections(cli(name, "--help").out).get("Layer")
        if layer is None:
            continue
        with_layer += 1
        firsts = [ln.split()[0] for ln in layer if ln.startswith("  --")][:4]
        assert firsts == ["--dim", "--heads", "--seq", "--batch"], name
    assert with_layer == 6  # flops, shapes, report, sweep, permute-test, bench


def test_one_metavar_style() -> None:
    for name, cmd in commands().items():
        for p in options(cmd):
            if p.is_flag:
                assert p.metavar is None, (name, p.opts)
            else:
                assert p.metavar is not None and METAVAR.match(p.metavar), (name, p.opts, p.metavar)


def test_help_shows_no_type_placeholders(cli: Any) -> None:
    for name in DOCUMENTED_ORDER:
        for line in cli(name, "--help").out.splitlines():
            assert not re.match(r"^\s+-.*<\w", line), (name, line)


def test_choices_hidden_by_a_metavar_are_in_the_help() -> None:
    for name, cmd in commands().items():
        for p in options(cmd):
            ann = p.type_descriptor.annotation
            args = [a for a in typing.get_args(ann) if a is not type(None)] or [ann]
            if isinstance(args[0], type) and issubclass(args[0], enum.Enum):
                for member in args[0]:
                    assert member.value in (p.help or ""), (name, p.opts, member.value)


def test_every_command_has_examples_that_parse(cli: Any) -> None:
    root = group()
    for name, cmd in commands().items():
        lines = example_lines(cmd.epilog)
        assert 2 <= len(lines) <= 4, name
        assert sections(cli(name, "--help").out)["Examples"] == [f"  {ln}" for ln in lines]
        for line in lines:
            argv = shlex.split(line)
            assert argv[:2] == ["attncli", name] and len(line) <= 76, line
            # NOTE: every option converted and checked as a run would, without running the command.
            ctx = root.make_context("attncli", argv[1:])
            sub, sub_cmd, rest = root.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
            with sub_cmd.make_context(sub, rest, parent=ctx) as sub_ctx:
                assert sub_ctx.params, line


def test_root_lists_commands_in_order_with_whole_summaries(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    listed = sections(cli("--help").out)["Commands"]
    assert [ln.split()[0] for ln in listed] == DOCUMENTED_ORDER  # one line each, none wrapped
    for line in listed:
        assert len(line) <= 80 and line.endswith(".") and "..." not in line, line


def test_root_help_shows_the_exit_codes(cli: Any) -> None:
    rows = sections(cli("--help").out)["Exit codes"]
    assert [ln.split()[0] for ln in rows] == ["0", "1", "2", "130"]
    assert "check" in rows[1] and "interrupted" in rows[3]


def test_sweep_ranges_in_each_flags_help_are_sweeps_of_that_flag() -> None:
    # Each ranged flag's help gives its own list and range; every value of them is a valid layer
    # on sweep's defaults (E 512, H 8): --heads once showed --seq's 128:8192:x2.
    from attncli.analyses.sweep import parse_values
    from attncli.choices import SETTING_FLAGS
    from attncli.cli.common import SPEC_FIELDS, spec_from, split_sweep

    sweep = commands()["sweep"]
    by_flag = {p.opts[0]: p for p in options(sweep)}
    seen = set()
    for name, flag in SETTING_FLAGS.items():
        found = re.findall(r"\(([\d,:x+ ]+)\)", by_flag[flag].help)
        texts = [t.strip() for part in found for t in ([part] if "," in part and ":" not in part else part.split(", "))]
        assert len(texts) >= 2, (flag, by_flag[flag].help)
        seen.add(tuple(texts))
        for text in texts:
            for value in parse_values(text, flag, minimum=0 if name == "cache" else 1):
                ctx = sweep.make_context("sweep", [flag, str(value)])
                values = {k: ctx.params[k] for k in SPEC_FIELDS}
                split_sweep(values, {"dim": 512, "heads": 8, "batch": 1, "seq": 1024, "impl": "fused"})
                spec_from(values, default_batch=1, default_impl="fused")  # SpecError if not a valid layer
    assert len(seen) == len(SETTING_FLAGS)  # no two flags share their examples


def test_the_run_builds_only_the_command_asked_for() -> None:
    lazy, full = lazy_group(app), group()
    assert list(lazy.commands) == list(full.commands)
    shapes = lazy.commands["shapes"]
    assert lazy.commands.built.keys() == {"shapes"}  # type: ignore[attr-defined]
    assert [p.name for p in shapes.params] == [p.name for p in full.commands["shapes"].params]


def complete(words: str) -> tuple[list[str], str]:
    """What bash completion offers for the last word of ``words``, and the import trace."""
    env = {**os.environ, "_ATTNCLI_COMPLETE": "complete_bash", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split()) - 1)}
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "attncli"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout.split(), r.stderr


@pytest.mark.parametrize(("words", "expected"), [
    ("attncli flops --preset llama-3-", {"llama-3-8b", "llama-3-70b"}),
    ("attncli shapes --preset gpt", {"gpt2", "gpt-oss-20b"}),
    ("attncli flops --preset gemma-3", {"gemma-3-27b"}),
    ("attncli model --preset deepseek-v", {"deepseek-v3"}),
    ("attncli flops --gpu h100", {"h100-sxm", "h100-pcie"}),
    ("attncli model --gpu a100", {"a100-sxm-40gb", "a100-sxm-80gb"}),
    ("attncli bench --gpu h1", {"h100-sxm"}),
])
def test_preset_and_gpu_complete_their_names_without_torch(words: str, expected: set[str]) -> None:
    offered, trace = complete(words)
    prefix = words.split()[-1]
    assert expected <= set(offered) and all(o.startswith(prefix) for o in offered), offered
    imported = {ln.rsplit("|", 1)[-1].strip() for ln in trace.splitlines() if "|" in ln}
    assert not imported & {"torch", "fvcore", "sympy", "rich"}


def test_model_presets_are_not_layer_presets() -> None:
    # `attncli model --preset` takes whole models (llama-3.1-8b), the layer commands layers (llama-3-8b).
    offered, _ = complete("attncli model --preset llama-3")
    assert "llama-3.1-8b" in offered and "llama-3-8b" not in offered


def test_help_loads_neither_pydantic_nor_the_heavy_packages() -> None:
    # NOTE: pydantic (typer's coercion) was a third of a command's --help; none of these is needed to print it.
    for args in (["--help"], ["flops", "--help"], ["model", "-h"]):
        r = subprocess.run([sys.executable, "-X", "importtime", "-m", "attncli", *args], capture_output=True,
                           text=True, timeout=60)
        imported = {ln.rsplit("|", 1)[-1].strip() for ln in r.stderr.splitlines() if "|" in ln}
        assert r.returncode == 0 and not imported & {"pydantic", "torch", "fvcore", "sympy", "rich"}, args
