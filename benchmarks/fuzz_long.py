"""The long subprocess fuzz: N seeded random runs of ``python -m attncli`` against the contract.

    python benchmarks/fuzz_long.py                 # 2000 runs, seed 1, two at a time
    python benchmarks/fuzz_long.py -n 150 -j 2 --seed 7 --report fuzz.json --log fuzz.jsonl

The cases (tests/hostile/cases.py) go through every (command, option) pair the app declares first,
then draw freely, over the hostile corpus of tests/hostile/corpus.py (config.json files, baselines,
--module factories, --output targets, environments), hostile config fields per family
(tests/hostile/families.py), the engine's flags (model --engine vllm), and Hub names against a stand-in
Hub on 127.0.0.1 whose repositories answer slowly, with 500, cut short, with a lying Content-Length,
redirect loops, 100 MiB, invalid or non-UTF-8 config.json (tests/hostile/hubcases.py), with closed
stdouts and random Ctrl-Cs; the fixed CI set is added with --fixed. The contract is
tests/hostile/harness.py's: exit 0/1/2/130, no traceback, one stderr line for exit 2 and 130, strict
JSON, no partial --output file, no hang.

Prints the totals by exit code and by failure kind, the slowest runs and every failing command
line; exits 1 when any run broke the contract. Run it from the repository root (or with the
repository on PYTHONPATH); each run gets its own folder under a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hostile import harness  # noqa: E402
from tests.hostile.cases import fixed_cases, pair_cases, reported_cases, vocabulary  # noqa: E402
from tests.hostile.harness import Run, run_all, summary  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--runs", type=int, default=2000, help="random runs (default 2000)")
    ap.add_argument("-j", "--jobs", type=int, default=2, help="runs at a time (default 2)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--fixed", action="store_true", help="also run CI's fixed set and the cases earlier runs reported")
    ap.add_argument("--report", type=Path, help="write the figures as JSON here")
    ap.add_argument("--log", type=Path, help="append one JSON line per finished run here")
    ap.add_argument("--slowest", type=int, default=5, help="list this many slowest runs")
    ap.add_argument("--call-timeout", type=float, default=harness.CALL_TIMEOUT,
                    help=f"seconds a run may take before it counts as a hang (default {harness.CALL_TIMEOUT:g}; "
                         "raise it on a machine other work keeps busy)")
    args = ap.parse_args(argv)
    harness.CALL_TIMEOUT = args.call_timeout
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))

    lock = threading.Lock()
    done = [0]
    start = time.monotonic()

    def log(r: Run) -> None:
        with lock:
            done[0] += 1
            if args.log is not None:
                with open(args.log, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"command": r.case.command_line(), "code": r.code,
                                         "seconds": round(r.seconds, 3), "failures": r.failures,
                                         "stderr": r.err[-600:] if r.failures else ""}) + "\n")
            if r.failures:
                print(f"FAIL [{', '.join(r.failures)}] {r.case.command_line()}", file=sys.stderr, flush=True)
            elif done[0] % 50 == 0:
                print(f"{done[0]} runs, {time.monotonic() - start:.0f} s", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="attncli-fuzz-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            vocab = vocabulary(tmp)
            cases = fixed_cases(vocab) + reported_cases(vocab) if args.fixed else []
            cases += pair_cases(random.Random(args.seed), vocab, args.runs)
            results = run_all(cases, tmp, args.jobs, vocab.baselines[0], log)
        finally:
            os.chmod(tmp / "readonly", 0o700)
    figures = summary(results, args.seed, args.jobs)
    figures["wall_s"] = round(time.monotonic() - start, 1)
    if args.report is not None:
        args.report.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"{figures['runs']} runs in {figures['wall_s']} s (seed {args.seed}, {args.jobs} at a time); "
          f"Ctrl-C sent {figures['ctrl_c_sent']} ({figures['ctrl_c_ended']} ended the run with 130, "
          f"{figures['ctrl_c_before_attncli']} in Python's start-up, before attncli's first line), stdout closed "
          f"{figures['stdout_closed']}")
    print("by exit code: " + ", ".join(f"{k}: {v}" for k, v in figures["exit_codes"].items()))
    print("by command:   " + ", ".join(f"{k}: {v}" for k, v in figures["by_command"].items()))
    print("by failure:   " + (", ".join(f"{k}: {v}" for k, v in figures["failures_by_kind"].items()) or "none"))
    for r in sorted(results, key=lambda r: -r.seconds)[:args.slowest]:
        print(f"slow {r.seconds:6.1f} s  {r.case.command_line()}")
    for ex in figures["examples"]:
        print(f"\nFAILED ({', '.join(ex['failures'])}; exit {ex['code']}): {ex['command']}")
        for line in ex["stderr"].splitlines()[-4:]:
            print(f"    {line}")
    return 1 if figures["failed_runs"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
