"""Running ``python -m attncli`` in a subprocess against the contract, for the subprocess fuzz
(tests/cli/test_subprocess_fuzz.py, a short fixed set in CI) and benchmarks/fuzz_long.py (N
seeded random runs).

The contract, for every run (README 'Hardening and exit codes'):

- the exit code is 0, 1, 2 or 130 (130 only after a Ctrl-C was sent);
- "Traceback" appears in neither stdout nor stderr;
- exit 2 and 130 print exactly one line on stderr; exit 2's is ``attncli: error: ...`` naming a
  flag (``--x``, ``-x``, or the environment variable at fault). Besides it may come the time
  model's ``attncli: note: this will take about N s`` printed before a long run started (an
  --output that fails at the end of it), and a --module's own prints;
- with ``--format json`` as the last format, no ``--output`` and exit 0 or 1, stdout is one strict
  JSON document (``json.loads`` refusing NaN/Infinity) with a ``schema``; exit 130 leaves stdout empty;
- ``--output NAME`` inside the run's folder: after exit 2 or 130 the folder holds what it held
  before (no partial file, no temporary left, a replaced file unchanged); after exit 0 or 1 with
  JSON the file is strict JSON;
- each run ends within :data:`CALL_TIMEOUT` seconds under :data:`MEMORY_LIMIT` of address space;
- a run that talks to the stand-in Hub (:mod:`tests.hostile.hubcases`) and is refused ends within
  :data:`HUB_BOUND` seconds (the look-up's stated bound, three times ``ATTNCLI_HUB_TIMEOUT``, plus the
  start-up), and leaves nothing in its ``HF_HOME`` a later run would trust that the server did not
  serve whole (:func:`tests.hostile.hubcases.cache_failures`).

No run reaches the real Hub: every run is offline against a closed loopback port, with an ``HF_HOME``
of its own, unless it is a Hub case.

A case may close the child's stdout (``>&-``) or send it SIGINT after a delay (a random Ctrl-C). A
Ctrl-C that lands in the interpreter's own start-up, before attncli's first line runs (a busy machine
can take a second to get there), is Python's and counted apart (:func:`before_attncli`).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.hostile import corpus, hubcases
from tests.hubstub import HubStub

ROOT = corpus.ROOT
CALL_TIMEOUT = 120.0
"""Seconds per run; the slowest valid runs here (report, bench) take a few seconds."""
MEMORY_LIMIT = 4 << 30
"""Bytes of address space per run (torch itself maps about 1 GiB)."""
OK_CODES = (0, 1, 2, 130)
HUB_BOUND = 3 * hubcases.TIMEOUT_S + 15.0
"""Seconds a refused Hub case may take: the look-up's bound and a start-up on a busy machine."""
HUB: list[HubStub] = []
"""The stand-in Hub while :func:`run_all` runs Hub cases."""
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_DISABLE_TELEMETRY": "1"}


@dataclass
class Case:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    close_stdout: bool = False
    sigint_after: float | None = None
    """Seconds after the start at which SIGINT is sent (None: never)."""

    def command_line(self) -> str:
        """The case as a shell line, to paste."""
        import shlex

        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        line = " ".join(shlex.quote(a) for a in ["attncli", *self.argv])
        extra = (" >&-" if self.close_stdout else "") + (
            f"  # Ctrl-C after {self.sigint_after:.2f} s" if self.sigint_after is not None else "")
        return (env + " " if env else "") + line + extra


@dataclass
class Run:
    case: Case
    code: int | None
    out: str
    err: str
    seconds: float
    max_rss_kib: int
    sigint_sent: bool = False
    folder_before: dict[str, str] = field(default_factory=dict)
    folder_after: dict[str, str] = field(default_factory=dict)
    cwd: Path = Path(".")
    failures: list[str] = field(default_factory=list)

    @property
    def argv(self) -> list[str]:
        return self.case.argv


def _limits(close_stdout: bool) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
        # NOTE: a run started in the background (``fuzz_long.py &``) inherits SIGINT ignored, and so would every
        # child: its Ctrl-Cs would test nothing. A terminal's Ctrl-C reaches a process that handles SIGINT.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if close_stdout:
            os.close(1)

    return apply


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative name -> sha1 of its bytes; 'dir' for folders)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames:
            found[os.path.relpath(os.path.join(dirpath, name), folder)] = "dir"
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                with open(path, "rb") as fh:
                    found[os.path.relpath(path, folder)] = hashlib.sha1(fh.read()).hexdigest()
            except OSError as exc:
                found[os.path.relpath(path, folder)] = f"unreadable {exc.errno}"
    return found


def prepare_folder(cwd: Path, good_baseline: str) -> None:
    """The run's own working folder: good.json (a copy of the good baseline, a target to replace)."""
    cwd.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(good_baseline, cwd / "good.json")


def run_one(case: Case, cwd: Path, log: Callable[[Run], None] | None = None) -> Run:
    """One subprocess in ``cwd``, timed, with its own peak RSS (``wait4``); killed after CALL_TIMEOUT."""
    stub = HUB[0] if HUB else None
    full_env = {**os.environ, **OFFLINE, "HF_HOME": str(hubcases.home_of(cwd)), "PYTHONPATH": str(ROOT),
                **hubcases.fill(case.env, stub, cwd)}
    full_env.pop("HF_TOKEN", None)
    if "COLUMNS" not in case.env:
        full_env.pop("COLUMNS", None)  # the caller's terminal width is not the case under test
    before = snapshot(cwd)
    start = time.monotonic()
    p = subprocess.Popen([sys.executable, "-m", "attncli", *case.argv], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=full_env, cwd=cwd,
                         preexec_fn=_limits(case.close_stdout))
    chunks: dict[str, bytes] = {}

    def read(name: str, stream: Any) -> None:
        chunks[name] = stream.read()

    threads = [threading.Thread(target=read, args=(n, s)) for n, s in (("out", p.stdout), ("err", p.stderr))]
    for t in threads:
        t.start()
    status, usage, timed_out, sent = 0, None, False, False
    while True:
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        elapsed = time.monotonic() - start
        if case.sigint_after is not None and not sent and elapsed >= case.sigint_after:
            os.kill(p.pid, signal.SIGINT)
            sent = True
        if elapsed > CALL_TIMEOUT:
            p.kill()
            _, status, usage = os.wait4(p.pid, 0)
            timed_out = True
            break
        time.sleep(0.01)
    p.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - start
    for t in threads:
        t.join()
    encoding = stream_encoding(case.env)
    run = Run(case, None if timed_out else p.returncode, chunks.get("out", b"").decode(encoding, "replace"),
              chunks.get("err", b"").decode(encoding, "replace"), seconds, usage.ru_maxrss if usage else 0,
              sent, before, snapshot(cwd), cwd)
    run.failures = check(run)
    if hubcases.is_hub(case.env) and stub is not None:
        run.failures += hubcases.cache_failures(hubcases.home_of(cwd), stub)
        if run.code == 2 and seconds > HUB_BOUND:
            run.failures.append(f"refused Hub case past {HUB_BOUND:g} s")
    if log is not None:
        log(run)
    return run


def stream_encoding(env: dict[str, str]) -> str:
    """The encoding the child writes stdout and stderr in: PYTHONIOENCODING's, else UTF-8."""
    import codecs

    name = env.get("PYTHONIOENCODING", "").split(":")[0].strip()
    try:
        return codecs.lookup(name).name if name else "utf-8"
    except LookupError:
        return "utf-8"


FLAG = re.compile(r"(^|[\s'\"(])-{1,2}[A-Za-z]|ATTNCLI_[A-Z_]+|PYTHONIOENCODING|COLUMNS|^attncli: error: MODEL: ")


def _strict(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def last_format(argv: Sequence[str]) -> str:
    fmt = "table"
    for i, a in enumerate(argv[:-1]):
        if a in ("--format", "-f"):
            fmt = argv[i + 1]
        elif a.startswith("--format="):
            fmt = a.split("=", 1)[1]
    return fmt


def output_target(argv: Sequence[str]) -> str | None:
    """The last --output/-o value, if any."""
    target = None
    for i, a in enumerate(argv[:-1]):
        if a in ("--output", "-o"):
            target = argv[i + 1]
    return target


def _strict_json(text: str) -> str | None:
    """None when ``text`` is one strict JSON object with a schema, else what is wrong."""
    try:
        doc = json.loads(text, parse_constant=_strict)
    except ValueError:
        return "not strict JSON"
    return None if isinstance(doc, dict) and "schema" in doc else "JSON without schema"


def before_attncli(r: Run) -> bool:
    """A Ctrl-C that reached the interpreter's own start-up, before any of attncli's code ran (its
    traceback holds no attncli frame): Python's behaviour, which attncli cannot change; counted apart."""
    return r.sigint_sent and r.code in (-2, 130) and "KeyboardInterrupt" in r.err and "attncli" not in (
        r.err.replace("attncli: interrupted", ""))


def check(r: Run) -> list[str]:
    """The contract (module docstring); a list of failure kinds (empty: the run is fine)."""
    if r.code is None:
        return ["timeout"]
    if before_attncli(r):
        return []
    fails = []
    if r.code not in OK_CODES:
        fails.append(f"exit {r.code}")
    if r.code == 130 and not r.sigint_sent and "CtrlC" not in " ".join(r.argv):
        fails.append("exit 130 without a Ctrl-C")
    if "Traceback" in r.out or "Traceback" in r.err:
        fails.append("traceback")
    if r.code in (2, 130):
        # NOTE: a --module's own prints go to stderr by design (tests/hostile/prints.py's say 'hostile: ...'),
        # and so does the time model's 'attncli: note: this will take about N s' before a long run.
        lines = [line for line in r.err.splitlines() if not line.startswith("attncli: note: ")
                 and ("--module" not in r.argv or not line.startswith("hostile: "))]
        if len(lines) != 1 or not r.err.endswith("\n"):
            fails.append(f"exit {r.code} with not one line on stderr")
        elif r.code == 2 and (not lines[0].startswith("attncli: error:") or not FLAG.search(lines[0])):
            fails.append("exit 2 line names no flag")
    if r.code == 130 and r.out:
        fails.append("exit 130 with output on stdout")
    target = output_target(r.argv)
    asks_help = "--help" in r.argv
    fmt = last_format(r.argv)
    if r.code in (0, 1) and target is None and not asks_help and not r.case.close_stdout and fmt == "json":
        if not r.out and r.code == 0:
            fails.append("exit 0 with json and empty stdout")
        elif r.out and (problem := _strict_json(r.out)) is not None:
            fails.append(f"stdout {problem}")
    if target is not None and not os.path.isabs(target) and not asks_help:
        fails += _output_failures(r, target, fmt)
    return fails


def _output_failures(r: Run, target: str, fmt: str) -> list[str]:
    """No partial --output file: exit 2/130 leave the folder as it was; 0/1 write a whole file."""
    if r.code in (2, 130):
        if r.folder_after != r.folder_before:
            changed = sorted(set(r.folder_after.items()) ^ set(r.folder_before.items()))
            return [f"exit {r.code} changed the folder ({', '.join(k for k, _ in changed[:3])})"]
        return []
    name = os.path.normpath(target)
    extra = set(r.folder_after) - set(r.folder_before) - {name, os.path.dirname(name)}
    fails = [f"--output left {sorted(extra)[:3]}"] if extra else []
    if r.code == 0 and name not in r.folder_after:
        fails.append("exit 0 without the --output file")
    elif fmt == "json" and name in r.folder_after and r.folder_after[name] != r.folder_before.get(name):
        with open(r.cwd / name, encoding="utf-8", errors="replace") as fh:
            problem = _strict_json(fh.read())
        if problem is not None:
            fails.append(f"--output file {problem}")
    return fails


# ---------------------------------------------------------------------------- many runs
def summary(results: Sequence[Run], seed: int | None = None, jobs: int | None = None) -> dict[str, Any]:
    kinds = Counter(k for r in results for k in r.failures)
    slowest = max(results, key=lambda r: r.seconds)
    heaviest = max(results, key=lambda r: r.max_rss_kib)
    return {
        "runs": len(results), "seed": seed, "jobs": jobs,
        "exit_codes": dict(sorted(Counter(str(r.code) for r in results).items())),
        "by_command": dict(sorted(Counter(r.argv[0] if r.argv else "" for r in results).items())),
        "ctrl_c_sent": sum(r.sigint_sent for r in results),
        "ctrl_c_before_attncli": sum(before_attncli(r) for r in results),
        "ctrl_c_ended": sum(r.sigint_sent and r.code == 130 for r in results),
        "stdout_closed": sum(r.case.close_stdout for r in results),
        "failures_by_kind": dict(kinds.most_common()),
        "failed_runs": sum(1 for r in results if r.failures),
        "slowest": {"seconds": round(slowest.seconds, 2), "argv": slowest.argv},
        "peak_rss_mib": {"mib": round(heaviest.max_rss_kib / 1024, 1), "argv": heaviest.argv},
        "examples": [{"command": r.case.command_line(), "code": r.code, "failures": r.failures,
                      "stderr": r.err[-600:]} for r in results if r.failures],
    }


def run_all(cases: Sequence[Case], tmp: Path, jobs: int, good_baseline: str,
            log: Callable[[Run], None] | None = None) -> list[Run]:
    """Every case in its own working folder under ``tmp``, ``jobs`` at a time."""
    work = []
    for i, case in enumerate(cases):
        cwd = tmp / f"run{i}"
        prepare_folder(cwd, good_baseline)
        work.append((case, cwd))

    if any(hubcases.is_hub(c.env) for c in cases) and not HUB:
        HUB.append(hubcases.start())
    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            return list(pool.map(lambda w: run_one(w[0], w[1], log), work))
    finally:
        while HUB:
            HUB.pop().close()


def random_sigint(rng: random.Random) -> float:
    """A Ctrl-C time: from when the handler is surely installed (0.3 s) to well into a count."""
    return round(rng.uniform(0.3, 4.0), 2)
