"""Wall time of counting real models against the bare imports they cannot avoid.

Targets (real models issue), as ratios measured in this one run:

- ``attncli flops --preset llama-3-8b --seq 8192 --batch 1 --format json`` (four variants,
  cross-checks included) against the bare ``import torch, fvcore.nn``: at most 1.5x;
- ``attncli flops --module transformers.models.llama.modeling_llama:LlamaAttention --preset
  llama-3-8b --seq 8192 --format json`` (a Hugging Face class, built from the preset on the
  meta device) against the bare ``import torch, fvcore.nn, transformers`` plus the Llama
  modeling module it names: at most 1.5x.

Every command runs as a subprocess, interleaved, ``--reps`` times (default 5); medians are
printed, of wall and CPU time (see ``bench_flops.py``, whose ``Case`` and bytecode step this
reuses). Run by hand:
``.venv/bin/python benchmarks/bench_models.py``. Not a test: tests never assert on time.
"""

from __future__ import annotations

import argparse
import os

from bench_flops import PY, Case, compile_attncli

PRESET = ["flops", "--preset", "llama-3-8b", "--seq", "8192", "--batch", "1", "--format", "json"]
HF = ["flops", "--module", "transformers.models.llama.modeling_llama:LlamaAttention", "--preset", "llama-3-8b",
      "--seq", "8192", "--batch", "1", "--format", "json"]


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="runs of every command (median)")
    parser.add_argument("--no-compile", action="store_true",
                        help="do not compile attncli's bytecode first (measure the source-only case)")
    args = parser.parse_args()
    reps = args.reps
    where = "not compiled (--no-compile)" if args.no_compile else f"compiled in {compile_attncli()}"

    bare = Case("bare `import torch, fvcore.nn`", [PY, "-c", "import torch, fvcore.nn"])
    bare_hf = Case("bare `import torch, fvcore.nn, transformers` + llama",
                   [PY, "-c", "import torch, fvcore.nn, transformers, transformers.models.llama.modeling_llama"])
    preset = Case("attncli flops --preset llama-3-8b", [PY, "-m", "attncli", *PRESET])
    hf = Case("attncli flops --module LlamaAttention", [PY, "-m", "attncli", *HF])
    cases = [bare, bare_hf, preset, hf]
    for case in cases:  # warm the file cache; not measured
        case.run()
        case.times.clear()
        case.cpu.clear()
        case.rss_kb.clear()
    for _ in range(reps):
        for case in cases:
            case.run()

    print(f"medians of {reps} interleaved runs ({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}); "
          f"attncli bytecode {where}")
    print(f"{'command':52s} {'median':>8s} {'CPU':>7s} {'peak RSS':>9s}")
    for case in cases:
        print(f"{case.name:52s} {case.median:7.2f}s {case.cpu_median:6.2f}s {case.peak_mb:7.0f} MB")
    checks = [
        (f"preset run / bare import = {preset.median / bare.median:.2f}x wall, "
         f"{preset.cpu_median / bare.cpu_median:.2f}x CPU <= 1.5x", preset.median / bare.median <= 1.5),
        (f"HF class run / bare import with transformers = {hf.median / bare_hf.median:.2f}x wall, "
         f"{hf.cpu_median / bare_hf.cpu_median:.2f}x CPU <= 1.5x", hf.median / bare_hf.median <= 1.5),
    ]
    print()
    for what, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {what}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
