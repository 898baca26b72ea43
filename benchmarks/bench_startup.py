"""Start-up time of ``attncli --help`` against the bare ``python -c "import typer"``.

Target (issue "reports"): every ``--help`` within 3x of the bare typer import, and none of
them imports torch, fvcore, sympy or rich (``bench_flops.heavy_imports``). Run by hand:
``.venv/bin/python benchmarks/bench_startup.py``.
Prints medians over several runs measured in this one run, and the ratios.
"""

from __future__ import annotations

import sys

from bench_flops import Case, heavy_imports

RUNS = 7
COMMANDS = ["", "shapes", "flops", "permute-test", "report", "sweep", "presets", "gpus", "bench"]
TARGET = 3.0


def median(args: list[str]) -> float:
    case = Case(" ".join(args), args)
    case.run()  # warm the file cache
    case.times.clear()
    for _ in range(RUNS):
        case.run()
    return case.median


def main() -> int:
    py = sys.executable
    base = median([py, "-c", "import typer"])
    print(f"bare `python -c 'import typer'`: {base * 1000:.0f} ms (median of {RUNS})")
    worst = 0.0
    ok = True
    for cmd in COMMANDS:
        args = ["-m", "attncli", *([cmd] if cmd else []), "--help"]
        t = median([py, *args])
        heavy = heavy_imports([py, *args])
        ratio = t / base
        worst = max(worst, ratio)
        ok &= ratio <= TARGET and not heavy
        label = f"attncli {cmd} --help".replace("  ", " ")
        print(f"{label:32s} {t * 1000:6.0f} ms  ratio {ratio:4.2f}x  heavy imports: {heavy or 'none'}")
    print(f"worst ratio {worst:.2f}x (target <= {TARGET}x): {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
