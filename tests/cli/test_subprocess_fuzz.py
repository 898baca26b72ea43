"""Fuzz the real process: ``python -m attncli`` (the console script's entry point) in a subprocess.

``test_fuzz.py`` calls ``main(argv)`` in-process; this file runs the entry point the way a user
or CI does, so it also sees what only a process shows: the exit status, start-up, the
interpreter's shutdown, a closed stdout, a Ctrl-C, files on disk, a memory limit. The commands
and their options are discovered from ``attncli.cli.app`` at test time
(:mod:`tests.cli.discovery`), so options added later are fuzzed too. The cases
(:mod:`tests.hostile.cases`) draw from typed vocabularies and a generated hostile corpus
(:mod:`tests.hostile.corpus`): config.json files that are no JSON, have wrong types, huge and
negative sizes, a text_config of the wrong type, control characters, unknown attention fields and
layer types, 100,000 levels of nesting, 70 MiB; a FIFO, a symlink to /dev/zero and a symlink loop;
odd --baseline files and hostile --module factories; odd --output targets; environments such as
PYTHONIOENCODING=ascii, LC_ALL=C, FORCE_COLOR=1, COLUMNS=20.

The contract each run is checked against is :mod:`tests.hostile.harness`'s: exit 0, 1, 2 or 130,
no traceback, one stderr line for 2 and 130, strict JSON, no partial --output, no hang.

CI runs the fixed set of :func:`tests.hostile.cases.fixed_cases` (one of each hostile input, most
refused before torch loads) and :data:`DEFAULT_RUNS` random cases with a fixed seed, two at a time
(under a minute on 2 busy cores). ``benchmarks/fuzz_long.py`` runs thousands, and with ``--fixed``
the cases earlier runs reported. Here ``ATTNCLI_FUZZ_RUNS`` changes the number of random runs, ``ATTNCLI_FUZZ_SEED``
the seed, ``ATTNCLI_FUZZ_JOBS`` the parallelism and ``ATTNCLI_FUZZ_REPORT=path.json`` writes the
figures (runs, exit codes, failures by kind, slowest run, peak memory).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from tests.cli.discovery import commands
from tests.hostile.cases import Vocab, fixed_cases, pair_cases, value_for, vocabulary
from tests.hostile.harness import Case, Run, check, run_all, summary

DEFAULT_RUNS = 4


def test_subprocess_fuzz(tmp_path: Path) -> None:
    runs = int(os.environ.get("ATTNCLI_FUZZ_RUNS", DEFAULT_RUNS))
    seed = int(os.environ.get("ATTNCLI_FUZZ_SEED", 20261122))
    jobs = int(os.environ.get("ATTNCLI_FUZZ_JOBS", 2))
    try:
        vocab = vocabulary(tmp_path)
        cases = fixed_cases(vocab) + pair_cases(random.Random(seed), vocab, runs)
        results = run_all(cases, tmp_path, jobs, vocab.baselines[0])
    finally:
        os.chmod(tmp_path / "readonly", 0o700)
    figures = summary(results, seed, jobs)
    report = os.environ.get("ATTNCLI_FUZZ_REPORT")
    if report:
        Path(report).write_text(json.dumps(figures, indent=2) + "\n")
    assert not figures["failed_runs"], json.dumps(figures["examples"][:5], indent=1)
    assert figures["ctrl_c_sent"] >= 1 and figures["stdout_closed"] >= 2  # the fixed set's


def test_fuzz_covers_every_command_and_option() -> None:
    """The vocabulary reaches every option of every command (new options included)."""
    cmds = commands()
    assert {"flops", "shapes", "permute-test", "report", "sweep", "presets", "gpus", "bench", "model"} <= set(cmds)
    rng = random.Random(0)
    vocab = Vocab(["b.json"], ["o.json"], ["p.png"], ["c.json"], ["m:f"])
    for name, opts in cmds.items():
        for opt in opts:
            assert opt.kind == "flag" or value_for(opt, rng, vocab, name) is not None
    pairs = sum(len(opts) for opts in cmds.values())
    firsts = {(c.argv[0], c.argv[1]) for c in pair_cases(random.Random(1), vocab, pairs)}
    assert len(firsts) >= pairs * 0.9  # every pair leads a case (a few options share a first spelling)


def _run(argv: list[str], code: int, out: str = "", err: str = "", **kw: object) -> Run:
    return Run(Case(argv), code, out, err, 0.1, 0, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("fails", [["exit 2 with not one line on stderr"], []])
def test_checker_catches_a_multi_line_error(fails: list[str]) -> None:
    """The contract checker itself can fail: two lines on exit 2 are reported."""
    err = "attncli: error: --dim: bad\n" + ("more\n" if fails else "")
    assert check(_run(["flops"], 2, err=err)) == fails


def test_checker_catches_partial_output_and_a_stray_130() -> None:
    before = {"good.json": "aaa"}
    partial = _run(["flops", "-o", "out.json"], 2, err="attncli: error: --output: x\n",
                   folder_before=before, folder_after={**before, "out.json": "bbb"})
    assert check(partial) == ["exit 2 changed the folder (out.json)"]
    stray = _run(["flops"], 130, err="attncli: interrupted\n")
    assert check(stray) == ["exit 130 without a Ctrl-C"]
    stray.sigint_sent = True
    assert check(stray) == []
    nan = _run(["flops", "-f", "json"], 0, out='{"schema": "x", "v": NaN}')
    assert check(nan) == ["stdout not strict JSON"]


def test_checker_sets_a_ctrl_c_in_the_interpreters_start_up_apart() -> None:
    """Before attncli's first line runs, Ctrl-C is Python's (a traceback of runpy frames); in attncli's code
    it is a failure."""
    python = 'Traceback (most recent call last):\n  File "<frozen runpy>", line 198\nKeyboardInterrupt\n'
    early = _run(["flops"], -2, err=python, sigint_sent=True)
    assert check(early) == []
    ours = _run(["flops"], -2, err=python.replace("<frozen runpy>", "/x/attncli/cli/__init__.py"), sigint_sent=True)
    assert "traceback" in check(ours)


def test_checker_leaves_module_prints_and_the_time_note_aside() -> None:
    """A module's own prints (tests/hostile/prints.py: 'hostile: ...') and the time model's note before a
    long run are not attncli's error line, which is still one."""
    err = "hostile: imported\nattncli: error: --kv-heads: x\n"
    assert check(_run(["shapes", "--module", "tests.hostile.prints:Printer"], 2, err=err)) == []
    assert check(_run(["shapes"], 2, err=err)) == ["exit 2 with not one line on stderr"]
    late = "attncli: note: this will take about 11 s by the time model (...)\nattncli: error: --output: full\n"
    assert check(_run(["bench", "-o", "/dev/full"], 2, err=late)) == []
