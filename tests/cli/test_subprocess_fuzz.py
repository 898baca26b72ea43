"""Fuzz the real process: ``python -m attncli`` (the console script's entry point) in a subprocess.

``test_fuzz.py`` calls ``main(argv)`` in-process; this file runs the installed entry point the way
a user or CI does, so it also sees what only a process shows: the exit status, start-up, the
interpreter's shutdown, stdout that is a pipe, files on disk, a memory limit. The commands and
their options are discovered from ``attncli.cli.app`` at test time (typer's click command), so
options added later are fuzzed too. Each argv is one command with a few options drawn from
typed vocabularies (valid values, out-of-range and malformed ones), odd ``--baseline`` files
(strings, NaN, 1e400, null, lists, 5000-digit integers, non-UTF-8 bytes, 100,000-deep arrays,
another layer), odd budgets (``68,7G``, ``1,,,0``, ``2**53 + 1``), odd ``--output`` targets
(a directory, /dev/full, a path with a newline, a missing folder), repeated flags, unknown flags
and stray arguments, under odd ``COLUMNS``/``NO_COLOR``.

Invariants, for every run (GUIDE section 4 and the hardening issue):

- the exit code is 0, 1 or 2;
- "Traceback" appears in neither stdout nor stderr;
- exit 2 prints exactly one line on stderr, ``attncli: error: ...``, naming a flag (``--x`` or
  ``-x``; click's usage errors add ``(see 'attncli cmd --help')``);
- with ``--format json`` as the last format, no ``--output`` and exit 0 or 1, stdout is one strict
  JSON document (``json.loads`` with ``parse_constant`` refusing NaN/Infinity) and nothing else;
- each run ends within :data:`CALL_TIMEOUT` seconds under an address-space limit of
  :data:`MEMORY_LIMIT` (``RLIMIT_AS``): a hang, a kill or a MemoryError traceback is a bug.

Budget: :data:`DEFAULT_RUNS` random runs plus the fixed cases of :func:`fixed_cases` with a fixed
seed, two at a time (about a minute on 2 cores). ``ATTNCLI_FUZZ_RUNS=2000`` runs more;
``ATTNCLI_FUZZ_SEED`` changes the seed, ``ATTNCLI_FUZZ_JOBS`` the parallelism (default 2) and
``ATTNCLI_FUZZ_REPORT=path.json`` writes the figures (runs, exit codes, failures by kind, slowest
run, peak memory); ``ATTNCLI_FUZZ_LOG=path.jsonl`` appends one line per run as it finishes.
"""

from __future__ import annotations

import json
import os
import random
import re
import resource
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.cli.discovery import Opt, commands

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RUNS = 16
CALL_TIMEOUT = 120.0
"""Seconds per run; the slowest valid runs here (report, bench) take a few seconds."""
MEMORY_LIMIT = 4 << 30
"""Bytes of address space per run (torch itself maps about 1 GiB)."""


# ---------------------------------------------------------------------------- discovery
# NOTE: commands and options come from tests/cli/discovery.py, shared with the in-process fuzz.


def baselines(tmp: Path) -> list[str]:
    """Odd --baseline files (and a good one for the default flops layer)."""
    layer = {"dim": 512, "heads": 8, "batch": 32, "seq": 1024, "kv_seq": 1024, "kdim": 512, "vdim": 512,
             "bias": True, "add_bias_kv": False, "add_zero_attn": False, "unbatched": False, "mask": "none",
             "kv_heads": 8, "window": None, "cache": 0, "head_dim": 64}

    def doc(variant: dict[str, Any], **config: Any) -> str:
        return json.dumps({"schema": "attncli.flops/1", "config": {**layer, **config}, "variants": [variant]})

    good = {"heads": 8, "out_proj": True, "fvcore_flops": 68_719_476_736, "params": 1_050_624}
    texts: dict[str, bytes | str] = {
        "good": doc(good),
        "strings": doc({**good, "fvcore_flops": "68719476736"}),
        "infinity": doc(good).replace("68719476736", "Infinity"),
        "nan": doc(good).replace("68719476736", "NaN"),
        "1e400": doc(good).replace("68719476736", "1e400"),
        "null": doc({**good, "params": None}),
        "list": doc({**good, "params": [1]}),
        "digits": doc(good).replace("68719476736", "9" * 5000),
        "eight": doc({**good, "heads": "eight"}),
        "bool_heads": doc({**good, "heads": True}),
        "negative": doc({**good, "fvcore_flops": -5}),
        "false_string": doc({**good, "out_proj": "false"}),
        "other_layer": doc(good, dim=64),
        "no_config": json.dumps({"schema": "attncli.flops/1", "variants": [good]}),
        "not_attncli": json.dumps({"schema": "other/1"}),
        "empty": "",
        "latin1": b"\xff\xfe\x00{",
        "deep": "[" * 100_000 + "]" * 100_000,
        "report": json.dumps({"schema": "attncli.report/1", "config": layer, "flops": {"variants": "x"}}),
    }
    paths = []
    for name, text in texts.items():
        p = tmp / f"{name}.json"
        if isinstance(text, bytes):
            p.write_bytes(text)
        else:
            p.write_text(text)
        paths.append(str(p))
    fifo = tmp / "fifo.json"  # NOTE: issue 22: a FIFO blocked the read forever
    if not fifo.exists():
        os.mkfifo(fifo)
    return [*paths, str(tmp), str(tmp / "missing.json"), str(tmp / "new\nline.json"), str(fifo),
            "/dev/zero", str(tmp / ("b" * 300 + ".json"))]


BUDGETS = ("68.7G", "68.72G", "68,7G", "1,1M", "1,,,0", "1e9", "9007199254740993", "1e400", "-5", "1.5", "nan",
           "", "1_000", "0", "68,719,476,736", "1e30", "1e31", "12M", "1K", "x")
TOLERANCES = ("0.05", "5%", "1e300", "-1", "nan", "inf", "abc", "100%", "0", "1e-9", "")
TOKENS = ("1e200,1;2,3;3,4", "1,2;2,3;3,4", "1,2;2,3;2,3", "nan,1;2,3;3,4", "auto", "seed", "random", "x",
          "1e150,1;2,3;3,4", ";", "1,2")
INTS = ("1", "2", "3", "4", "8", "16", "64", "0", "-1", "abc", "", "1e3", "65536", str(10**9), str(2**63), "5632")
FLOATS = ("0", "0.1", "0.5", "-1", "nan", "inf", "1e300", "abc", "1e-12")
RANGES = ("8:64:x2", "2,4", "1:8:x2", "8:1:x2", "1:1000:+1", "::", "4", "1:1000000000:x2")
WORDS = ("none", "rope", "sinusoidal", "learned", "float32", "float64", "float16", "0,2,1", "0,0,1", "2,1,0",
         "json", "x", "", "no_such_module_xyz:make", "json:loads", "vit-b16", "gpt2", "A100", "h100-sxm",
         "fused", "0", "-1")


def outputs(tmp: Path) -> list[str]:
    ro = tmp / "readonly"
    ro.mkdir(exist_ok=True)
    os.chmod(ro, 0o500)
    return [str(tmp / "out.json"), str(tmp), "/dev/full", str(tmp / "a\nb.json"), str(ro / "x.json"),
            str(tmp / "missing" / "x.json"), "/dev/null", str(tmp / "out.txt"),
            str(tmp / ("o" * 300 + ".json")), str(tmp / "good.json")]  # issue 22: too long; over the baseline


@dataclass
class Vocab:
    baselines: list[str]
    outputs: list[str]
    plots: list[str]


def value_for(opt: Opt, rng: random.Random, vocab: Vocab, command: str) -> str:
    name = opt.names[0]
    if name == "--baseline":
        return rng.choice(vocab.baselines)
    if name in ("--output", "-o"):
        return rng.choice(vocab.outputs)
    if name == "--plot":
        return rng.choice(vocab.plots)
    if name in ("--max-flops", "--max-params"):
        return rng.choice(BUDGETS)
    if name == "--tolerance":
        return rng.choice(TOLERANCES)
    if name == "--tokens":
        return rng.choice(TOKENS)
    if opt.kind == "int":
        return rng.choice(INTS)
    if opt.kind == "float":
        return rng.choice(FLOATS)
    if opt.kind == "choice":
        return rng.choice([*opt.choices, *opt.choices, "bogus"])
    if opt.kind == "path":
        return rng.choice(vocab.outputs)
    if command == "sweep" and name in ("--dim", "--heads", "--batch", "--seq"):
        return rng.choice(RANGES + INTS[:6])
    return rng.choice(WORDS + INTS[:4])


def random_case(rng: random.Random, cmds: dict[str, tuple[Opt, ...]], vocab: Vocab) -> tuple[list[str], dict[str, str]]:
    command = rng.choice(sorted(cmds))
    argv = [command]
    opts = cmds[command]
    for _ in range(rng.choice((0, 1, 2, 2, 3, 3, 4, 5))):
        opt = rng.choice(opts)
        spelled = rng.choice(opt.names)
        argv.append(spelled)
        if opt.kind != "flag":
            argv.append(value_for(opt, rng, vocab, command))
        if rng.random() < 0.05:  # repeated option
            argv += argv[-2:] if opt.kind != "flag" else argv[-1:]
    if rng.random() < 0.5:
        argv += ["--format", "json"]
    roll = rng.random()
    if roll < 0.03:
        argv.append("--no-such-flag")
    elif roll < 0.05:
        argv.append("stray")
    elif roll < 0.06:
        argv.append("--help")
    elif roll < 0.07:
        argv.append(argv[-1] if argv[-1].startswith("-") else "--format")  # dangling option
    env: dict[str, str] = {}
    if rng.random() < 0.1:
        env["COLUMNS"] = rng.choice(("0", "5", "abc", "", "300"))
    if rng.random() < 0.05:
        env["NO_COLOR"] = rng.choice(("", "1"))
    return argv, env


def fixed_cases(vocab: Vocab) -> list[list[str]]:
    """The cases the adversarial run reported, always run."""
    base = vocab.baselines
    return [
        ["flops", "--baseline", base[1]], ["flops", "--baseline", base[2]], ["flops", "--baseline", base[7]],
        ["flops", "--baseline", base[16]], ["flops", "--baseline", base[17]],
        ["flops", "--dim", "64", "--baseline", base[0]], ["flops", "--baseline", base[0], "--tolerance", "1e300"],
        ["flops", "--max-flops", "68,7G"], ["flops", "--max-flops", "68.72G", "-f", "json"],
        ["flops", "--tolerance", "5%", "--baseline", base[0], "-f", "json"],
        ["permute-test", "--tokens", "1e200,1;2,3;3,4", "-f", "json"],
        ["permute-test", "--tokens", "1e200,1;2,3;3,4", "-f", "markdown"],
        ["permute-test", "--dim", "5632", "--heads", "8", "--seq", "3"],
        ["flops", "--impl", "per-head", "--heads", "4096", "--dim", "4096"],
        ["flops", "--dim", "64", "-o", vocab.outputs[3]],
        ["flops", "--dim", "64", "--max-flops", "1", "-o", vocab.outputs[1]],
        ["shapes", "-f", "json", "-o", "/dev/full"],
    ]


# ---------------------------------------------------------------------------- running
@dataclass
class Run:
    argv: list[str]
    env: dict[str, str]
    code: int | None
    out: str
    err: str
    seconds: float
    max_rss_kib: int
    failures: list[str] = field(default_factory=list)


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_one(argv: list[str], env: dict[str, str], cwd: Path) -> Run:
    """One subprocess, timed, with its own peak RSS (``wait4``); killed after CALL_TIMEOUT."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    if "COLUMNS" not in env:
        full_env.pop("COLUMNS", None)  # pytest's own terminal width is not the case under test
    start = time.monotonic()
    p = subprocess.Popen([sys.executable, "-m", "attncli", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, env=full_env, cwd=cwd, preexec_fn=_limits)
    chunks: dict[str, bytes] = {}

    def read(name: str, stream: Any) -> None:
        chunks[name] = stream.read()

    threads = [threading.Thread(target=read, args=(n, s)) for n, s in (("out", p.stdout), ("err", p.stderr))]
    for t in threads:
        t.start()
    status, usage, timed_out = 0, None, False
    while True:
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() - start > CALL_TIMEOUT:
            p.kill()
            _, status, usage = os.wait4(p.pid, 0)
            timed_out = True
            break
        time.sleep(0.02)
    p.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - start
    for t in threads:
        t.join()
    run = Run(argv, env, None if timed_out else p.returncode, chunks.get("out", b"").decode("utf-8", "replace"),
              chunks.get("err", b"").decode("utf-8", "replace"), seconds, usage.ru_maxrss if usage else 0)
    run.failures = check(run)
    log_run(run)
    return run


FLAG = re.compile(r"(^|[\s'\"(])-{1,2}[A-Za-z]")


def _strict(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def last_format(argv: list[str]) -> str:
    fmt = "table"
    for i, a in enumerate(argv[:-1]):
        if a in ("--format", "-f"):
            fmt = argv[i + 1]
    return fmt


def check(r: Run) -> list[str]:
    """The invariants; a list of failure kinds (empty: the run is fine)."""
    fails = []
    if r.code is None:
        return ["timeout"]
    if r.code not in (0, 1, 2):
        fails.append(f"exit {r.code}")
    if "Traceback" in r.out or "Traceback" in r.err:
        fails.append("traceback")
    if r.code == 2:
        lines = r.err.splitlines()
        if len(lines) != 1 or not r.err.endswith("\n"):
            fails.append("exit 2 with not one line on stderr")
        elif not lines[0].startswith("attncli: error:") or not FLAG.search(lines[0]):
            fails.append("exit 2 line names no flag")
    writes_stdout = not any(a in ("--output", "-o") for a in r.argv) and "--help" not in r.argv
    if r.code in (0, 1) and writes_stdout and last_format(r.argv) == "json" and r.out:
        try:
            doc = json.loads(r.out, parse_constant=_strict)
            if not isinstance(doc, dict) or "schema" not in doc:
                fails.append("json without schema")
        except ValueError:
            fails.append("stdout is not strict JSON")
    if r.code == 0 and writes_stdout and last_format(r.argv) == "json" and not r.out:
        fails.append("exit 0 with json and empty stdout")
    return fails


LOG_LOCK = threading.Lock()


def log_run(r: Run) -> None:
    """With ``ATTNCLI_FUZZ_LOG=path``, one JSON line per finished run (long runs report as they go)."""
    path = os.environ.get("ATTNCLI_FUZZ_LOG")
    if not path:
        return
    line = json.dumps({"argv": r.argv, "env": r.env, "code": r.code, "seconds": round(r.seconds, 3),
                       "max_rss_kib": r.max_rss_kib, "failures": r.failures,
                       "stderr": r.err[-600:] if r.failures else ""})
    with LOG_LOCK, open(path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def fuzz(runs: int, seed: int, jobs: int, tmp: Path) -> tuple[list[Run], dict[str, Any]]:
    cmds = commands()
    vocab = Vocab(baselines(tmp), outputs(tmp), [str(tmp / "p.png"), str(tmp / "p.txt"), str(tmp / "no" / "p.png")])
    rng = random.Random(seed)
    cases: list[tuple[list[str], dict[str, str]]] = [(argv, {}) for argv in fixed_cases(vocab)]
    cases += [random_case(rng, cmds, vocab) for _ in range(runs)]
    # NOTE: each run in its own working directory (relative paths, and concurrent runs).
    work = [(argv, env, tmp / f"run{i}") for i, (argv, env) in enumerate(cases)]
    for _, _, cwd in work:
        cwd.mkdir()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(lambda w: run_one(*w), work))
    kinds = Counter(k for r in results for k in r.failures)
    slowest = max(results, key=lambda r: r.seconds)
    heaviest = max(results, key=lambda r: r.max_rss_kib)
    figures = {
        "runs": len(results), "seed": seed, "jobs": jobs,
        "exit_codes": dict(Counter(str(r.code) for r in results)),
        "by_command": dict(Counter(r.argv[0] for r in results)),
        "failures_by_kind": dict(kinds),
        "failed_runs": sum(1 for r in results if r.failures),
        "slowest": {"seconds": round(slowest.seconds, 2), "argv": slowest.argv},
        "peak_rss_mib": {"mib": round(heaviest.max_rss_kib / 1024, 1), "argv": heaviest.argv},
        "examples": [{"argv": r.argv, "env": r.env, "code": r.code, "failures": r.failures,
                      "stderr": r.err[-600:]} for r in results if r.failures][:30],
    }
    return results, figures


def test_subprocess_fuzz(tmp_path: Path) -> None:
    runs = int(os.environ.get("ATTNCLI_FUZZ_RUNS", DEFAULT_RUNS))
    seed = int(os.environ.get("ATTNCLI_FUZZ_SEED", 20261122))
    jobs = int(os.environ.get("ATTNCLI_FUZZ_JOBS", 2))
    try:
        results, figures = fuzz(runs, seed, jobs, tmp_path)
    finally:
        os.chmod(tmp_path / "readonly", 0o700)
    report = os.environ.get("ATTNCLI_FUZZ_REPORT")
    if report:
        Path(report).write_text(json.dumps(figures, indent=2) + "\n")
    bad = [r for r in results if r.failures]
    assert not bad, json.dumps(figures["examples"][:5], indent=1)


def test_fuzz_covers_every_command_and_option() -> None:
    """The vocabulary reaches every option of every command (new options included)."""
    cmds = commands()
    assert {"flops", "shapes", "permute-test", "report", "sweep", "presets", "gpus", "bench"} <= set(cmds)
    rng = random.Random(0)
    vocab = Vocab(["b.json"], ["o.json"], ["p.png"])
    for name, opts in cmds.items():
        for opt in opts:
            assert value_for(opt, rng, vocab, name) is not None or opt.kind == "flag"


@pytest.mark.parametrize("fails", [["exit 2 with not one line on stderr"], []])
def test_checker_catches_a_multi_line_error(fails: list[str]) -> None:
    """The invariant checker itself can fail: two lines on exit 2 are reported."""
    err = "attncli: error: --dim: bad\n" + ("more\n" if fails else "")
    assert check(Run(["flops"], {}, 2, "", err, 0.1, 0)) == fails
