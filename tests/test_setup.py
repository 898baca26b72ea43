"""The set-up scripts (scripts/attncli, scripts/test, scripts/bootstrap.sh), run against a stand-in
for Python: no real install, each test in a few seconds.

The stand-in (:data:`STUB`) makes a venv whose ``bin/python`` is itself; its ``-m pip install`` logs
its arguments, writes pip's "Collecting ..." lines and puts stand-ins for ``attncli``, ``ruff`` and
``mypy`` in the venv; with ``STUB_PIP_SLEEP`` (``STUB_VENV_SLEEP`` for ``-m venv``) it sleeps in a
real Python (which Ctrl-C would end with a traceback) beside a child process, as pip's own build
processes are.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
RESUME = "attncli: set-up interrupted; run the same command again to resume"
DEV_TOOLS = {"pytest", "mypy", "ruff", "hypothesis", "cmarkgfm"}

pytestmark = pytest.mark.skipif(shutil.which("bash") is None or sys.platform == "win32",
                                reason="the set-up scripts are bash")

STUB = r"""#!/usr/bin/env bash
echo "$$ $*" >>"$STUB_DIR/calls"
SLEEPER="import os, time; open(os.environ['STUB_DIR'] + '/pids', 'a').write(f'{os.getpid()}\n'); time.sleep(300)"
if [ "$1 $2" = "-m venv" ]; then
  mkdir -p "$3/bin"; cp "$0" "$3/bin/python"
  if [ -n "${STUB_VENV_SLEEP:-}" ]; then
    exec "$REAL_PY" -c "$SLEEPER"
  fi
  exit 0
fi
if [ "$1 $2 $3" = "-m pip install" ]; then
  for i in $(seq 1 40); do echo "Collecting package-number-$i>=1.0"; done
  venv="$(dirname "$(dirname "$0")")"
  for tool in attncli ruff mypy; do
    printf '#!/usr/bin/env bash\necho "%s $*" >>"$STUB_DIR/calls"\n' "$tool" >"$venv/bin/$tool"
    chmod +x "$venv/bin/$tool"
  done
  if [ -n "${STUB_PIP_SLEEP:-}" ]; then
    sleep 300 &
    echo "$!" >>"$STUB_DIR/pids"
    exec "$REAL_PY" -c "$SLEEPER"
  fi
  echo "Installing collected packages: a, b"
  exit 0
fi
if [ "$1 $2" = "-m pytest" ]; then exit 0; fi
echo "stub python: unexpected $*" >&2
exit 3
"""


@pytest.fixture
def stub(tmp_path: Path) -> dict[str, str]:
    """The environment that points the scripts at the stand-in and at a venv in ``tmp_path``."""
    script = tmp_path / "python3"
    script.write_text(STUB)
    script.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STUB_", "ATTNCLI_"))}
    env.update(STUB_DIR=str(tmp_path), REAL_PY=sys.executable, PYTHON=str(script),
               ATTNCLI_VENV=str(tmp_path / "venv"))
    return env


def _run(script: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(ROOT / "scripts" / script), *args], capture_output=True, text=True,
                          env=env, timeout=60, check=False)


def _calls(env: dict[str, str]) -> list[str]:
    """What the stand-ins were asked to do, without the process ids."""
    path = Path(env["STUB_DIR"]) / "calls"
    lines = path.read_text().splitlines() if path.exists() else []
    return [re.sub(r"^\d+ ", "", line) for line in lines]


def _pip_extras(env: dict[str, str]) -> list[str]:
    return [m.group(1) for c in _calls(env) if (m := re.search(r"-m pip install .*\[(.*)\]$", c))]


def _start(env: dict[str, str], **extra: str) -> subprocess.Popen[str]:
    """scripts/attncli in its own process group, as a shell runs a command in the foreground."""
    return subprocess.Popen(["bash", str(ROOT / "scripts" / "attncli"), "flops"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**env, **extra}, start_new_session=True)


def _wait_for_pids(env: dict[str, str], count: int) -> list[int]:
    """The ids the sleeping stand-ins wrote, once ``count`` are there."""
    path = Path(env["STUB_DIR"]) / "pids"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pids = [int(p) for p in path.read_text().split()] if path.exists() else []
        if len(pids) >= count:
            return pids
        time.sleep(0.05)
    raise AssertionError("the stand-in never started")


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, ended and waiting for its parent, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _ctrl_c(p: subprocess.Popen[str]) -> tuple[str, str]:
    """Ctrl-C as a terminal sends it: SIGINT to every process of the foreground group."""
    os.killpg(p.pid, signal.SIGINT)
    return p.communicate(timeout=30)


def _extras(script: str) -> set[str]:
    text = (ROOT / "scripts" / script).read_text()
    found = re.search(r'^ATTNCLI_EXTRAS="?(?:\$\{ATTNCLI_EXTRAS:-)?([\w,]+)\}?"?$', text, re.M)
    assert found, f"scripts/{script} names no ATTNCLI_EXTRAS"
    return set(found.group(1).split(","))


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0].lower() for r in requirements}


def test_the_main_command_installs_the_runtime_extras_and_no_test_tools() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    main = _extras("attncli")
    assert main == {"hf", "plot"}
    assert main <= set(extras)
    installed = _names(project["dependencies"]) | set().union(*(_names(extras[e]) for e in main))
    assert not installed & DEV_TOOLS, installed & DEV_TOOLS
    assert {"transformers", "matplotlib"} <= installed
    assert _extras("test") >= {"hf", "plot", "dev"}
    assert _names(extras["dev"]) >= DEV_TOOLS


def test_attncli_then_test_install_each_set_of_extras_once(stub: dict[str, str]) -> None:
    r = _run("attncli", stub, "flops", "--dim", "8")
    assert r.returncode == 0, r.stderr
    assert _pip_extras(stub) == ["hf,plot"]
    assert _calls(stub)[-1] == "attncli flops --dim 8"  # the arguments passed on to attncli
    assert (Path(stub["ATTNCLI_VENV"]) / ".attncli-installed").read_text().strip() == "hf,plot"
    assert "Collecting" not in r.stderr  # pip's lines stay in the log
    r = _run("test", stub)
    assert r.returncode == 0, r.stderr
    assert _pip_extras(stub) == ["hf,plot", "dev,hf,plot"]  # dev added on top, once
    assert {"ruff check attncli tests benchmarks", "mypy --strict attncli"} <= set(_calls(stub))
    for script in ("test", "attncli"):
        assert _run(script, stub).returncode == 0
    assert _pip_extras(stub) == ["hf,plot", "dev,hf,plot"]  # nothing installed again


def test_ctrl_c_during_pip_stops_it_and_says_how_to_resume(stub: dict[str, str]) -> None:
    p = _start(stub, STUB_PIP_SLEEP="1")
    pids = _wait_for_pids(stub, 2)  # pip's stand-in and the child it started
    _out, err = _ctrl_c(p)
    assert p.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.splitlines()[-1] == RESUME
    assert [line for line in err.splitlines() if "interrupted" in line] == [RESUME]
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in pids if _alive(pid)], "pip (or a process it started) outlived Ctrl-C"
    r = _run("attncli", stub, "flops")  # the same command again resumes
    assert r.returncode == 0, r.stderr
    assert _pip_extras(stub) == ["hf,plot", "hf,plot"]


def test_ctrl_c_while_the_venv_is_made_is_one_line_and_the_next_run_makes_it(stub: dict[str, str]) -> None:
    p = _start(stub, STUB_VENV_SLEEP="1")
    pids = _wait_for_pids(stub, 1)
    _out, err = _ctrl_c(p)
    assert p.returncode == 130, err
    assert err.splitlines() == [f"attncli: creating {stub['ATTNCLI_VENV']}", RESUME]
    time.sleep(0.2)
    assert not _alive(pids[0])
    r = _run("attncli", stub, "flops")
    assert r.returncode == 0, r.stderr
    assert [c.split(" ", 2)[:2] for c in _calls(stub)].count(["-m", "venv"]) == 2  # made again
    assert _pip_extras(stub) == ["hf,plot"]


def test_a_second_set_up_of_the_same_venv_is_refused_in_one_line(stub: dict[str, str]) -> None:
    first = _start(stub, STUB_PIP_SLEEP="1")
    try:
        _wait_for_pids(stub, 2)
        started = time.monotonic()
        second = _run("attncli", stub, "flops")
        assert time.monotonic() - started < 10
        assert second.returncode == 1
        assert second.stderr == (f"attncli: another set-up of {stub['ATTNCLI_VENV']} is running; "
                                 "run the same command again when it has finished\n")
        assert first.poll() is None  # the first set-up goes on
    finally:
        _ctrl_c(first)
    assert first.returncode == 130


def test_the_heartbeat_in_a_pipe_fits_80_columns(stub: dict[str, str]) -> None:
    """A slow pip in a pipe (CI): a line every 10 s, each shorter than 80 characters."""
    p = _start(stub, STUB_PIP_SLEEP="1")
    _wait_for_pids(stub, 2)
    time.sleep(11.5)
    _out, err = _ctrl_c(p)
    beats = [line for line in err.splitlines() if line.startswith("attncli: still")]
    assert len(beats) == 1, err
    assert re.fullmatch(r"attncli: still installing: 40 packages collected \(1\d s\)", beats[0]), beats
    assert all(len(line) < 80 for line in beats)
