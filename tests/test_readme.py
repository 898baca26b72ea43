"""The README stays true: its usage blocks match the real options, every layer flag is in its
table, every command it shows runs, and its CI job passes and fails as it says.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main

from attncli.cli import app
from attncli.cli.common import SPEC_FIELDS

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
LAYER_SOURCES = ("config", "preset")
BLOCK = re.compile(r"(<!-- usage:(?P<cmd>[a-z-]+) -->\n)(?P<body>.*?)(<!-- /usage -->)", re.S)


def commands() -> dict[str, Any]:
    group = typer.main.get_command(app)
    return dict(group.commands)  # type: ignore[attr-defined]


def usage(name: str) -> str:
    """A command's own options (the layer flags are in the README's table), from the real command."""
    cmd = commands()[name]
    layer = " [LAYER FLAGS]" if any(p.name in SPEC_FIELDS for p in cmd.params) else ""
    rows = []
    for p in cmd.params:
        if p.name in SPEC_FIELDS or p.name in ("format", "output", "help"):
            continue
        if layer and p.name in LAYER_SOURCES:  # --config/--preset are layer flags (the README's table)
            continue
        flags = "/".join(p.opts + p.secondary_opts)
        rows.append(f"  {flags:<22} {' '.join((p.help or '').split())}")
    return "\n".join([f"```text\nattncli {name}{layer} [OPTIONS]", *rows, "```"]) + "\n"


def test_usage_blocks_match_the_commands(update_golden: bool) -> None:
    text = README.read_text()
    if update_golden:
        text = BLOCK.sub(lambda m: m.group(1) + usage(m.group("cmd")) + m.group(4), text)
        README.write_text(text)
    found = {m.group("cmd"): m.group("body") for m in BLOCK.finditer(text)}
    assert set(found) == set(commands()), "every command has a usage block in the README"
    for name, body in found.items():
        assert body == usage(name), f"README usage of {name} is stale: run with --update-golden"


def test_every_layer_flag_is_documented() -> None:
    text = README.read_text()
    shapes = commands()["shapes"]
    for p in shapes.params:
        if p.name in SPEC_FIELDS or p.name in ("format", "output", *LAYER_SOURCES):
            for flag in p.opts:
                assert f"`{flag}" in text or f"{flag}/" in text or f"/{flag}" in text, flag


def readme_commands() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), re.S)
    lines = [ln.split("#")[0].strip() for b in blocks for ln in b.splitlines()]
    return [ln for ln in lines if ln.startswith("attncli ")]


@pytest.mark.parametrize("line", readme_commands())
def test_readme_commands_run(line: str, cli: Any) -> None:
    r = cli(*shlex.split(line)[1:])
    assert r.code == 0, (line, r.err)
    assert "Traceback" not in r.err


def ci_steps() -> list[str]:
    yaml = re.search(r"```yaml\n(.*?)```", README.read_text(), re.S)
    assert yaml is not None
    # NOTE: the install step is a block (`run: |`): torch from the CPU index, then attncli.
    return [ln.split("run:", 1)[1].strip() for ln in yaml.group(1).splitlines()
            if ln.strip().startswith("run:") and "pip install" not in ln and ln.split("run:", 1)[1].strip() != "|"]


def test_ci_job_installs_the_cpu_build_of_torch() -> None:
    """From PyPI a hosted runner would get torch's CUDA build (several GB): the job names the CPU index
    before it installs attncli."""
    yaml = re.search(r"```yaml\n(.*?)```", README.read_text(), re.S)
    assert yaml is not None
    installs = [ln.strip() for ln in yaml.group(1).splitlines() if ln.strip().startswith("pip install")]
    assert installs[0].startswith("pip install torch==")
    assert "--index-url https://download.pytorch.org/whl/cpu" in installs[0]
    assert installs[-1] == "pip install ."


def _run(step: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    step = step.replace("--output flops.json", f"--output {tmp_path / 'flops.json'}")
    env = {**os.environ, "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(step, shell=True, cwd=ROOT, env=env, capture_output=True, text=True)


def test_ci_job_passes_as_written(tmp_path: Path) -> None:
    steps = ci_steps()
    assert len(steps) == 3
    for step in steps:
        done = _run(step, tmp_path)
        assert done.returncode == 0, (step, done.stderr)
    summary = (tmp_path / "summary.md").read_text()
    assert "60,129,542,144" in summary and "68,719,476,736" in summary and "| --- |" in summary


def test_ci_job_fails_on_a_small_budget_and_a_regression(tmp_path: Path) -> None:
    budget, regression = ci_steps()[1:]
    small = _run(budget.replace("--max-flops 68.72G", "--max-flops 60G"), tmp_path)
    assert small.returncode == 1 and "max-flops" in small.stderr
    # A longer sequence stands in for a regression; it is another layer, so the baseline's layer
    # check refuses it (exit 2) unless --baseline-any-layer says to compare anyway.
    other = _run(regression.replace("--heads 8", "--heads 8 --seq 1100"), tmp_path)
    assert other.returncode == 2 and "--baseline-any-layer" in other.stderr
    bigger = _run(regression.replace("--heads 8", "--heads 8 --seq 1100 --baseline-any-layer"), tmp_path)
    assert bigger.returncode == 1 and "regressed" in bigger.stderr
