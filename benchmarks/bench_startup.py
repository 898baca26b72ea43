"""Start-up time of every ``attncli ... --help`` against the bare ``python -c "import typer"``.

Target (issue 21): every ``--help`` (the root's and each command's) within 2.5x of the bare typer
import, and none of them imports torch, fvcore, sympy or rich (``bench_flops.heavy_imports``).
Run by hand, on a machine with nothing else heavy running:
``.venv/bin/python benchmarks/bench_startup.py [--reps 7]``.

Every round runs the bare import and each ``--help`` once, interleaved, so a load that comes and
goes weighs on all of them alike; the medians over the rounds are compared. Beside the wall
time (the target) each row shows the child's CPU time (user + system, from ``os.wait4``) and its
ratio, which a busy machine disturbs much less: when the two disagree, the machine was busy.
Prints one line per command with PASS or FAIL, then the verdict; exit 1 on any FAIL.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from bench_flops import heavy_imports

COMMANDS = ["", "flops", "shapes", "model", "report", "sweep", "permute-test", "bench", "presets", "gpus"]
TARGET = 2.5


def run_once(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of ``argv``; exits on a failed run."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{' '.join(argv)} failed:\n{err}")
    if proc.stderr:
        proc.stderr.close()
    return wall, usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=7, help="rounds (medians over them)")
    reps = parser.parse_args().reps
    py = sys.executable
    cases = {"base": [py, "-c", "import typer"]}
    cases |= {cmd: [py, "-m", "attncli", *([cmd] if cmd else []), "--help"] for cmd in COMMANDS}
    for argv in cases.values():  # warm the file cache
        run_once(argv)
    walls: dict[str, list[float]] = {k: [] for k in cases}
    cpus: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(reps):
        for key, argv in cases.items():
            wall, cpu = run_once(argv)
            walls[key].append(wall)
            cpus[key].append(cpu)
    base_wall, base_cpu = statistics.median(walls["base"]), statistics.median(cpus["base"])
    print(f"bare `python -c 'import typer'`: {base_wall * 1000:.0f} ms wall, {base_cpu * 1000:.0f} ms CPU "
          f"(medians of {reps} interleaved rounds)")
    ok = True
    worst = 0.0
    for cmd in COMMANDS:
        wall, cpu = statistics.median(walls[cmd]), statistics.median(cpus[cmd])
        ratio = wall / base_wall
        heavy = heavy_imports(cases[cmd])
        passed = ratio <= TARGET and not heavy
        ok &= passed
        worst = max(worst, ratio)
        label = f"attncli {cmd} --help".replace("  ", " ")
        print(f"{label:30s} {wall * 1000:5.0f} ms  ratio {ratio:4.2f}x   CPU {cpu * 1000:4.0f} ms "
              f"({cpu / base_cpu:4.2f}x)  heavy imports: {', '.join(heavy) or 'none'}  "
              f"{'PASS' if passed else 'FAIL'}")
    print(f"worst ratio {worst:.2f}x (target <= {TARGET}x, no heavy imports): {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
