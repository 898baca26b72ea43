"""The README stays true and short: it names the set-up and test commands CI runs, the numbers its
examples quote are the tool's, the transformers range it states is the one pyproject pins, and the
CI job of docs/ci.md passes and fails as it says. (Its commands and quoted outputs run in
tests/test_docs.py, with those of docs/.)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.test_docs import README, ROOT, Quoted, quoted, run

CI_DOC = ROOT / "docs" / "ci.md"
NUMBER = re.compile(r"(?<![\w.,])\d{1,3}(?:,\d{3})+(?![\d,])")
"""A number written with thousands separators, as the README quotes counts and bytes."""


def test_readme_is_a_two_minute_read() -> None:
    assert len(README.read_text().splitlines()) <= 150


def test_readme_names_the_commands_ci_runs() -> None:
    text = README.read_text()
    assert "bash scripts/attncli flops --dim 512 --heads 8" in text
    assert re.search(r"^bash scripts/test(?![\w/.-])", text, re.M), "the test command, as CI runs it"
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert ci[-1] == "bash scripts/test", "CI runs the README's test command"


def test_readme_states_the_supported_transformers_range() -> None:
    # NOTE: read with a pattern, not tomllib: the project supports Python 3.10, which has none.
    pyproject = (ROOT / "pyproject.toml").read_text()
    hf = re.search(r'^hf = \["(transformers[^"]+)"\]$', pyproject, re.M)
    assert hf is not None, "the hf extra pins transformers alone"
    pin = hf.group(1)
    assert re.fullmatch(r"transformers>=[\d.]+,<[\d.]+", pin)
    assert pin in README.read_text()
    assert f'"{pin}"' in re.search(r"^dev = \[.*?\]$", pyproject, re.M | re.S).group(0), \
        "the tests run inside the range the README states"


def test_readme_says_flops_are_twice_macs() -> None:
    assert "FLOPs = 2 x MACs" in README.read_text()


def readme_runs() -> list[Quoted]:
    return quoted((README,))


def test_readme_numbers_are_the_tools(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every count the README writes out (68,719,476,736) is printed, so written, by one of its commands."""
    printed = "\n".join(r.out + r.err for r in (run(cli, q.argv, monkeypatch) for q in readme_runs()))
    numbers = set(NUMBER.findall(README.read_text()))
    assert "68,719,476,736" in numbers  # the pattern finds the README's counts
    missing = [n for n in sorted(numbers) if not re.search(rf"(?<![\d,]){n}(?![\d,])", printed)]
    assert not missing, f"README numbers no README command prints: {missing}"


def test_readme_examples_cover_the_four_tasks() -> None:
    argvs = [" ".join(q.argv) for q in readme_runs()]
    assert "flops --dim 512 --heads 8" in argvs
    assert any("--gpu" in a and "--cache" in a for a in argvs), "a decode step on a GPU"
    assert any(a.startswith("model ") and "131071" in a for a in argvs), "a model's KV cache at 128k"
    assert any("--baseline" in a and "--tolerance 5%" in a for a in argvs), "a baseline in CI"
    assert any(q.code == 1 for q in readme_runs()), "a failed check and its exit code"


# -- the GitHub Actions job of docs/ci.md -----------------------------------------------------------

def ci_yaml() -> str:
    yaml = re.search(r"```yaml\n(.*?)```", CI_DOC.read_text(), re.S)
    assert yaml is not None
    return yaml.group(1)


def ci_steps() -> list[str]:
    # NOTE: the install step is a block (`run: |`): torch from the CPU index, then attncli.
    return [ln.split("run:", 1)[1].strip() for ln in ci_yaml().splitlines()
            if ln.strip().startswith("run:") and "pip install" not in ln and ln.split("run:", 1)[1].strip() != "|"]


def test_ci_job_installs_the_cpu_build_of_torch() -> None:
    """From PyPI a hosted runner would get torch's CUDA build (several GB): the job names the CPU index
    before it installs attncli."""
    installs = [ln.strip() for ln in ci_yaml().splitlines() if ln.strip().startswith("pip install")]
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
