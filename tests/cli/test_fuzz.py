"""Fuzz the command line: random flag combinations through every registered command.

The commands and their options are discovered at test time from ``attncli.cli.app`` (its
``registered_commands`` and the click command typer builds from them), so a command that
lands later is fuzzed too. Hypothesis builds each argv from the options' own types: valid
values, out-of-range and malformed ones (zero, negative, NaN, garbage strings, unknown
choices), repeated flags, ``--flag=value`` spellings, dangling options, unknown flags,
stray arguments and the known conflicts (``--unbatched --batch 4``, ``--impl fused --kdim
3``, ...). The contract checked for every argv (GUIDE section 4):

- the exit code is 0, 1 or 2, and no exception escapes :func:`attncli.cli.main`;
- "Traceback" appears in neither stdout nor stderr;
- exit 2 prints exactly one line on stderr, starting ``attncli: error:`` and naming the flag
  at fault (a ``--flag`` token, or the short option the user typed); the only exception is a
  stray positional argument, which no flag owns;
- with ``--format json`` (and no ``--output``) a run that exits 0 or 1 prints one JSON
  document with ``schema`` and ``config`` on stdout.

Two tests:

- ``test_fuzz_in_process``: moderate sizes (at most 64), in-process with ``capsys``, in a
  scratch working directory (``--output`` values are relative paths).
- ``test_fuzz_huge_sizes``: sizes such as ``--seq 10**9 --dim 65536`` and 2**63. A command
  that wrongly runs real tensors at such sizes would eat the machine, so these run in a
  worker subprocess capped at 4 GiB of address space (``RLIMIT_AS``) with a per-call timeout:
  a MemoryError, a failed allocation, a killed worker or a hang is a found bug. The worker
  calls the same ``main(argv)``.

Examples per command (hypothesis, ``derandomize=True``): in-process shapes 80, permute-test 80,
flops 30, report 20, sweep 20, any later command 30 (:data:`IN_PROCESS_EXAMPLES`); huge sizes 40
per command, plus the 8 fixed cases of :data:`HUGE_CASES` per command. Bugs found here and not yet fixed are listed in
:data:`KNOWN_BUGS`; each has a strict-xfail reproduction below, which starts to fail (XPASS)
the day the bug is fixed, so the entry and its tolerance get removed.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import select
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer.main
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attncli.cli import app, main
from tests.cli.discovery import POSITIONAL_VALUES, Opt, command_arguments, command_options

IN_PROCESS_EXAMPLES: dict[str, int] = {"shapes": 80, "permute-test": 80, "flops": 30, "report": 20, "sweep": 20,
                                       "bench": 8}
"""Examples per command; a command that lands later gets DEFAULT_EXAMPLES. report and sweep
count several variants or a whole range per run (0.3 to 2 s each), so they get fewer; bench
times five implementations for --min-run-time (up to 2 s here) each, so it gets fewest."""
DEFAULT_EXAMPLES = 30
HUGE_EXAMPLES = 40
MEMORY_LIMIT = 4 << 30  # bytes of address space for the worker (torch itself maps ~1 GiB)
CALL_TIMEOUT = 60.0  # seconds per huge-size call; meta-device counting takes milliseconds


# ---------------------------------------------------------------------------- discovery
# NOTE: Opt, option_kind and command_options live in tests/cli/discovery.py (shared with the
# subprocess fuzz).


def command_names() -> list[str]:
    """The registered commands, named as typer names them (``permute_test`` -> permute-test)."""
    names = []
    for info in app.registered_commands:
        assert info.callback is not None
        names.append(info.name or typer.main.get_command_name(info.callback.__name__))
    return sorted(names)


# ---------------------------------------------------------------------------- values
GARBAGE_INTS = ("", "abc", "1.5", "0x10", "1e3", " 7", "-", "nan", "inf", "++1", "1_000", "٣")
GARBAGE_FLOATS = ("", "abc", "nan", "inf", "-inf", "1e308", "1e-320", "0x1p-3", "-0", "1,5")
WORDS = ("none", "sinusoidal", "learned", "rope", "seed", "random", "auto", "float32", "float64",
         "float16", "0,2,1", "0,1,2", "2,1,0", "1,2,3", "0,0,1", "1,2;2,3;3,4", "1,2;2,3;2,3",
         "nan,1;2,3;3,4", "0", "-1", ",", ";", "  ", "torch", "fused", "json", "1G", "2.5M", "-1K", "1e9",
         "nonexistent_mod:build", "json:loads", ":build", "json")
# NOTE: --module imports MODULE:FACTORY and calls FACTORY(dim, heads); the generated text below
# has no ':' so it cannot name a real module's function, and the vocabulary only names harmless
# ones (json.loads fails on (dim, heads) with a TypeError, which must become exit 2).
RANGES = ("1:8:x2", "2:16:+2", "4,8", "2,4,8", "8:1:x2", "1:8:x1", "1:8:+0", "0:4:+1", "1:2:x2",
          "1:1000:+1", "1:8:x-2", "::", "4:4:x2")
"""Values for options that take a range (``sweep --seq 128:8192:x2``), well-formed or not."""
HUGE_WORDS = (str(10**9), "65536", str(2**63), "1:1000000000:x2", "65536,131072", "1:1000000000:+1",
              "1073741824:2147483648:x2")
HUGE_INTS = (10**9, 65536, 2**31, 2**40, 2**62 + 1, 2**63, 2**64, 10**30)
PATHS = ("out.txt", "out.json", "missing/dir/out.txt", ".", "")


def _text() -> st.SearchStrategy[str]:
    return st.text(st.characters(exclude_categories=["Cs"], exclude_characters=":"), max_size=10)


def _int_values(huge: bool) -> st.SearchStrategy[str]:
    small = st.integers(-2, 12) | st.sampled_from((0, -1, 16, 64))
    numbers = (st.sampled_from(HUGE_INTS) | small) if huge else small
    return numbers.map(str) | st.sampled_from(GARBAGE_INTS)


def _values(opt: Opt, huge: bool, valid: bool) -> st.SearchStrategy[str]:
    """Values for ``opt``; ``valid`` keeps to well-formed ones (which may still conflict)."""
    if opt.kind == "int":
        if valid:
            return st.sampled_from((1, 2, 3, 4, 6, 8, 12, 16)).map(str)
        return _int_values(huge)
    if opt.kind == "float":
        if valid:
            return st.sampled_from(("0", "0.1", "0.5", "1e-3"))
        return (st.sampled_from(("0", "0.0", "0.1", "0.5", "0.99", "1", "-0.1", "2", "1e-12"))
                | st.floats(-2, 2).map(repr) | st.sampled_from(GARBAGE_FLOATS))
    if opt.kind == "choice":
        if valid:
            return st.sampled_from(opt.choices)
        return (st.sampled_from(opt.choices) | st.sampled_from(opt.choices).map(str.upper)
                | st.sampled_from(WORDS) | _text())
    if opt.kind == "path":
        return st.sampled_from(PATHS[:2] if valid else PATHS)
    if valid:
        return st.sampled_from(WORDS + RANGES[:5])
    words = st.sampled_from(WORDS + RANGES + (HUGE_WORDS if huge else ()))
    return words | st.text("0123456789,;x+. -eabcfinorstuz", max_size=12) | _text()


def _item(opt: Opt, huge: bool, valid: bool = False) -> st.SearchStrategy[list[str]]:
    name = st.sampled_from(opt.names)
    if opt.kind == "flag":
        return name.map(lambda n: [n])
    value = _values(opt, huge, valid)
    separate = st.tuples(name, value).map(lambda t: [t[0], t[1]])
    longs = [n for n in opt.names if n.startswith("--")]
    if not longs:
        return separate
    joined = st.tuples(st.sampled_from(longs), value).map(lambda t: [f"{t[0]}={t[1]}"])
    return separate | joined


STRUCTURAL: tuple[tuple[str, ...], ...] = (
    ("--bogus",), ("--dim",), ("-z",), ("extra",), ("--",), ("-",), ("--help",), ("--no-bias=1",),
    ("--Dim", "8"), ("--dim=8",), ("--format=",), ("--unbatched", "--batch", "4"),
    ("--impl", "fused", "--kdim", "3"), ("--mask", "causal", "--kv-seq", "5"),
    ("--mask", "padding", "--seq", "1"), ("--dim", "10", "--heads", "3"), ("--seq", "0"),
    ("--heads", "-1"), ("--dropout", "1"), ("--batch", "0", "--unbatched"),
)


@functools.cache
def argvs(name: str, huge: bool) -> st.SearchStrategy[list[str]]:
    """``[command, *options]``: well-formed options only, or anything (with garbage) mixed in.

    Half the argvs keep to well-formed values so runs get past parsing and validation and
    exercise the commands themselves; the other half throw anything at the parser.
    """
    options = command_options(name)
    if not options:
        return st.just([name])
    valid = st.one_of(*(_item(o, huge, valid=True) for o in options))
    item = st.one_of(*(_item(o, huge) for o in options))
    garbage = st.sampled_from(STRUCTURAL).map(list) | _text().map(lambda s: [s])
    items = st.lists(valid, max_size=8) | st.lists(item | garbage, max_size=8)
    sizes = [o for o in options if o.kind == "int"]
    if huge and sizes:
        forced = st.one_of(*(st.tuples(st.sampled_from(o.names), st.sampled_from(HUGE_INTS).map(str))
                             .map(list) for o in sizes))
        items = st.tuples(st.lists(forced, min_size=1, max_size=3),
                          st.lists(valid, max_size=5) | st.lists(item, max_size=5)).map(lambda t: t[0] + t[1])
    if command_arguments(name):  # NOTE: attncli model MODEL: a preset, a file, a Hub id (offline in tests)
        first = st.lists(st.sampled_from(POSITIONAL_VALUES) | _text(), max_size=1)
        return st.tuples(first, items).map(lambda t: [name, *t[0]] + [tok for part in t[1] for tok in part])
    return items.map(lambda parts: [name] + [tok for part in parts for tok in part])


# ---------------------------------------------------------------------------- the contract
@dataclass(frozen=True)
class Outcome:
    code: int | None
    out: str
    err: str
    exc: str | None = None
    """``Type: message`` of an exception that escaped main, a killed worker or a timeout."""


@dataclass(frozen=True)
class KnownBug:
    key: str
    commands: tuple[str, ...]
    """The commands it affects; ``*`` for all."""
    signature: str
    """A regular expression matched against :attr:`Outcome.exc`."""
    repro: tuple[str, ...]
    """An argv that shows it (run in the memory-capped worker only)."""
    where: str


# NOTE: bugs this fuzzer found in attncli/ (not ours to fix; see the report of issue 6). The
# fuzz tests tolerate exactly these signatures on exactly these commands, so they stay green
# while any *other* failure still fails them; test_known_bug_is_still_there turns each into
# an xfail and fails loudly once the bug is fixed, so the entry gets removed.
KNOWN_BUGS: tuple[KnownBug, ...] = ()


def _known(argv: list[str], outcome: Outcome) -> KnownBug | None:
    if outcome.exc is None:
        return None
    for bug in KNOWN_BUGS:
        if (argv[0] in bug.commands or "*" in bug.commands) and re.search(bug.signature, outcome.exc):
            return bug
    return None


FLAG = re.compile(r"(?<![\w-])--[A-Za-z][\w-]*")
ARGUMENT = re.compile(r"^attncli: error: [A-Z][A-Z_]*: ")
"""A positional argument is named by its metavar, as a flag is by its name: ``attncli: error: MODEL: ...``."""
SEE_HELP = re.compile(r"\s*\(see '[^']*--help'\)\s*$")
STRAY = re.compile(r"unexpected (extra )?argument")


def check(argv: list[str], outcome: Outcome, tolerate: bool = True) -> None:
    """The CLI contract of the module docstring (``tolerate``: let :data:`KNOWN_BUGS` pass)."""
    if tolerate and _known(argv, outcome) is not None:
        return
    where = f"argv={argv!r}"
    assert outcome.exc is None, f"{where}: {outcome.exc}\nstderr: {outcome.err[-2000:]}"
    assert outcome.code in (0, 1, 2), f"{where}: exit {outcome.code}, stderr {outcome.err!r}"
    assert "Traceback" not in outcome.out and "Traceback" not in outcome.err, where
    if outcome.code == 2:
        lines = outcome.err.splitlines()
        assert len(lines) == 1, f"{where}: exit 2 must print one line, got {outcome.err!r}"
        assert lines[0].startswith("attncli: error:"), f"{where}: {lines[0]!r}"
        message = SEE_HELP.sub("", lines[0])  # the "(see '... --help')" hint names no culprit
        shorts = {tok.split("=")[0] for tok in argv if re.fullmatch(r"-[A-Za-z].*", tok)}
        names_flag = FLAG.search(message) or ARGUMENT.search(message) or any(s in message for s in shorts)
        assert names_flag or STRAY.search(message), f"{where}: names no flag: {lines[0]!r}"


def _effective_json(argv: list[str]) -> bool:
    """Whether the run should print one JSON document on stdout (last --format wins)."""
    fmt, output = "table", False
    for i, tok in enumerate(argv):
        if tok in ("--format", "-f") and i + 1 < len(argv):
            fmt = argv[i + 1]
        elif tok.startswith("--format="):
            fmt = tok.split("=", 1)[1]
        elif tok in ("--output", "-o") or tok.startswith("--output="):
            output = True
        elif tok in ("--help", "--"):
            return False
    return fmt == "json" and not output


def check_json(argv: list[str], outcome: Outcome) -> None:
    if outcome.code in (0, 1) and outcome.exc is None and _effective_json(argv):
        doc = json.loads(outcome.out)
        assert isinstance(doc, dict) and "schema" in doc and "config" in doc, argv


@contextlib.contextmanager
def _chdir(path: Path) -> Iterator[None]:
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


# ---------------------------------------------------------------------------- in-process
@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def test_commands_are_discovered() -> None:
    names = command_names()
    assert {"shapes", "permute-test"} <= set(names)
    shapes = {n: o.kind for o in command_options("shapes") for n in o.names}
    # the kinds come from typer's annotations: a change there must not blind the fuzzer
    assert shapes["--dim"] == shapes["--seq"] == "int" and shapes["--dropout"] == "float"
    assert shapes["--no-bias"] == shapes["--unbatched"] == "flag"
    assert shapes["--impl"] == "choice" and shapes["--output"] == "path"


def _settings(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("name", command_names())
def test_fuzz_in_process(name: str, capsys: pytest.CaptureFixture[str], scratch: Path) -> None:
    @_settings(IN_PROCESS_EXAMPLES.get(name, DEFAULT_EXAMPLES))
    @given(argv=argvs(name, huge=False))
    def fuzz(argv: list[str]) -> None:
        exc = None
        code: int | None = None
        with _chdir(scratch):
            try:
                code = main(list(argv))
            except BaseException as e:  # anything escaping main is a finding
                exc = f"{type(e).__name__}: {e}"
        captured = capsys.readouterr()
        outcome = Outcome(code, captured.out, captured.err, exc)
        check(argv, outcome)
        check_json(argv, outcome)

    fuzz()


# ---------------------------------------------------------------------------- huge sizes
WORKER = r"""
import contextlib, io, json, os, resource, sys
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
proto = os.fdopen(os.dup(1), "w")  # replies; fd 1 itself goes to /dev/null
os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
from attncli.cli import main
proto.write("ready\n"); proto.flush()
for line in sys.stdin:
    argv = json.loads(line)
    out, err = io.StringIO(), io.StringIO()
    code, exc = None, None
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    except BaseException as e:
        exc = (type(e).__name__ + ": " + str(e))[:2000]
    proto.write(json.dumps({"code": code, "out": out.getvalue()[-20000:],
                            "err": err.getvalue()[-20000:], "exc": exc}) + "\n")
    proto.flush()
"""


class Worker:
    """A subprocess running ``main(argv)`` under an address-space limit, one argv per line."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.proc: subprocess.Popen[str] | None = None
        self.log = cwd / "worker-stderr.log"

    def _start(self) -> subprocess.Popen[str]:
        with open(self.log, "w") as log:  # the child keeps its own copy of the handle
            proc = subprocess.Popen([sys.executable, "-c", WORKER, str(MEMORY_LIMIT)], cwd=self.cwd,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True)
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        assert ready == "ready\n", f"worker did not start: {self._tail()}"
        self.proc = proc
        return proc

    def _tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""

    def _stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()  # our own child, by its handle
            self.proc.wait()
            self.proc = None

    def run(self, argv: list[str]) -> Outcome:
        proc = self.proc if self.proc is not None and self.proc.poll() is None else self._start()
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(argv) + "\n")
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], CALL_TIMEOUT)
        if not ready:
            self._stop()
            return Outcome(None, "", "", f"Timeout: no answer in {CALL_TIMEOUT:.0f} s")
        line = proc.stdout.readline()
        if not line:
            code = proc.wait()
            self.proc = None
            return Outcome(None, "", "", f"WorkerDied: exit {code}; {self._tail()}")
        reply = json.loads(line)
        return Outcome(reply["code"], reply["out"], reply["err"], reply["exc"])

    def close(self) -> None:
        self._stop()


@pytest.fixture(scope="module")
def worker(scratch: Path) -> Iterator[Worker]:
    w = Worker(scratch)
    yield w
    w.close()


HUGE_CASES: tuple[tuple[str, ...], ...] = (
    ("--seq", str(10**9), "--dim", "65536"),
    ("--seq", str(10**9)),
    ("--dim", "65536", "--heads", "1"),
    ("--dim", str(2**40), "--heads", "1"),
    ("--batch", str(2**31), "--seq", "65536"),
    ("--dim", "1", "--heads", "1", "--kv-seq", str(10**6), "--kdim", "1000", "--impl", "torch"),
    ("--seq", str(2**63)),
    ("--seed", str(2**64)),
)


@pytest.mark.parametrize("name", command_names())
@pytest.mark.parametrize("case", HUGE_CASES, ids=" ".join)
def test_huge_cases(name: str, case: tuple[str, ...], worker: Worker) -> None:
    argv = [name, *case]
    check(argv, worker.run(argv))


@pytest.mark.parametrize("name", command_names())
def test_fuzz_huge_sizes(name: str, worker: Worker) -> None:
    @_settings(HUGE_EXAMPLES)
    @given(argv=argvs(name, huge=True))
    def fuzz(argv: list[str]) -> None:
        outcome = worker.run(argv)
        check(argv, outcome)
        check_json(argv, outcome)

    fuzz()


@pytest.mark.parametrize("bug", KNOWN_BUGS, ids=lambda b: b.key)
def test_known_bug_is_still_there(bug: KnownBug, worker: Worker) -> None:
    argv = list(bug.repro)
    outcome = worker.run(argv)
    if _known(argv, outcome) is bug:
        pytest.xfail(f"known bug {bug.key}: {' '.join(argv)} -> {outcome.exc} ({bug.where})")
    check(argv, outcome, tolerate=False)  # fails here if it now breaks in a new way
    pytest.fail(f"{bug.key} is fixed: remove it from KNOWN_BUGS in {__file__}")
