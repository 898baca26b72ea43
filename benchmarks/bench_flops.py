"""Wall time and peak memory of ``attncli flops`` against the bare ``import torch, fvcore.nn``.

Targets (issue 3), as ratios measured in this one run against the bare import:

- ``attncli flops --dim 512 --heads 8 --format json`` (four variants, cross-checks included):
  at most 1.5x;
- ``... --dim 8192 --heads 64 --seq 131072 --batch 8``: at most 2x, and peak RSS at most
  800 MB.

Targets of the modern flags and the roofline, in the same run:

- the Llama-3-8B layer (E 4096, H 32, G 8, d 128, no bias), causal prefill of 8192 tokens, and
  one decode step against a 131072-token KV cache: each at most 1.5x, peak RSS at most 800 MB;
- ``--gpu h100-sxm`` on the seed run: adds nothing measurable (its ratio beside the seed run's).

Targets of multi-head latent attention (issue 17), in the same run: DeepSeek-V3's layer
(``--preset deepseek-v3``, two forms traced and cross-checked each), naive prefill of 4096
tokens and an absorbed decode step against a 4095-token cache: each at most 1.5x.

Targets of whole models (issue 18), in the same run: ``attncli model`` on DeepSeek-V3 and on
Gemma-3-27B (two groups of layers, each traced and cross-checked) at 32k: each at most 1.5x.

Also measured, to show where the time goes: the same seed run with the torch._dynamo
shortcut turned off (``ATTNCLI_NO_IMPORT_SHORTCUT=1``), and the floor every meta-device
count pays, ``import torch, fvcore.nn, sympy, torch.fx.experimental.symbolic_shapes``
(torch's Python meta kernels import sympy on the first meta op; that cannot be skipped).
The command also pauses the cyclic GC while it runs (``attncli/cli/runtime.py``), which the
bare import does not: that is part of what is being measured, on purpose.

Every command runs as a subprocess, the variants interleaved, ``--reps`` times (default 5);
medians are printed. Peak RSS is the child's own ``ru_maxrss`` from ``os.wait4``. Run by hand:
``.venv/bin/python benchmarks/bench_flops.py``. Not a test: tests never assert on time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

PY = sys.executable
SEED = ["flops", "--dim", "512", "--heads", "8", "--format", "json"]
BIG = ["flops", "--dim", "8192", "--heads", "64", "--seq", "131072", "--batch", "8", "--format", "json"]
LLAMA = ["flops", "--dim", "4096", "--heads", "32", "--kv-heads", "8", "--head-dim", "128", "--no-bias",
         "--batch", "1", "--mask", "causal", "--impl", "sdpa", "--dtype", "bfloat16", "--format", "json"]
PREFILL = [*LLAMA, "--seq", "8192"]
DECODE = [*LLAMA, "--seq", "1", "--cache", "131072"]
MLA = ["flops", "--preset", "deepseek-v3", "--batch", "1", "--dtype", "bfloat16", "--format", "json"]
MLA_PREFILL = [*MLA, "--seq", "4096"]
MLA_DECODE = [*MLA, "--seq", "1", "--cache", "4095"]
MODEL_DSV3 = ["model", "--preset", "deepseek-v3", "--seq", "32768", "--format", "json"]
MODEL_GEMMA3 = ["model", "--preset", "gemma-3-27b", "--seq", "32768", "--format", "json"]


@dataclass
class Case:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    times: list[float] = field(default_factory=list)
    rss_kb: list[int] = field(default_factory=list)

    def run(self) -> None:
        env = {**os.environ, **self.env}
        start = time.perf_counter()
        proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read().decode() if proc.stderr else ""
        if proc.returncode != 0:
            raise SystemExit(f"{self.name} failed (exit {proc.returncode}):\n{err}")
        self.times.append(elapsed)
        self.rss_kb.append(usage.ru_maxrss)  # kilobytes on Linux

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def peak_mb(self) -> float:
        return max(self.rss_kb) / 1024


def heavy_imports(argv: list[str]) -> list[str]:
    """Which heavy packages a command imports (from ``python -X importtime``)."""
    out = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], capture_output=True, text=True)
    names = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    return sorted(names & {"torch", "fvcore", "sympy", "torch._dynamo", "rich"})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="runs of every command (median)")
    reps = parser.parse_args().reps

    bare = Case("bare `import torch, fvcore.nn`", [PY, "-c", "import torch, fvcore.nn"])
    floor = Case("  + sympy, symbolic_shapes (floor)",
                 [PY, "-c", "import torch, fvcore.nn, sympy, torch.fx.experimental.symbolic_shapes"])
    seed = Case("attncli flops (seed, json)", [PY, "-m", "attncli", *SEED])
    seed_slow = Case("  same, dynamo shortcut off", [PY, "-m", "attncli", *SEED],
                     {"ATTNCLI_NO_IMPORT_SHORTCUT": "1"})
    big = Case("attncli flops (E=8192 H=64 L=128k B=8)", [PY, "-m", "attncli", *BIG])
    seed_gpu = Case("  seed run with --gpu h100-sxm", [PY, "-m", "attncli", *SEED, "--gpu", "h100-sxm"])
    prefill = Case("Llama-3-8B layer, causal prefill 8192", [PY, "-m", "attncli", *PREFILL])
    decode = Case("Llama-3-8B layer, decode at cache 131072", [PY, "-m", "attncli", *DECODE])
    mla_prefill = Case("DeepSeek-V3 MLA, naive prefill 4096", [PY, "-m", "attncli", *MLA_PREFILL])
    mla_decode = Case("DeepSeek-V3 MLA, absorbed decode at 4095", [PY, "-m", "attncli", *MLA_DECODE])
    model_dsv3 = Case("attncli model deepseek-v3 at 32k", [PY, "-m", "attncli", *MODEL_DSV3])
    model_gemma3 = Case("attncli model gemma-3-27b at 32k", [PY, "-m", "attncli", *MODEL_GEMMA3])
    cases = [bare, floor, seed, seed_slow, seed_gpu, big, prefill, decode, mla_prefill, mla_decode, model_dsv3,
             model_gemma3]

    for case in cases:  # warm the file cache; not measured
        case.run()
        case.times.clear()
        case.rss_kb.clear()
    for _ in range(reps):
        for case in cases:  # interleaved, so load changes hit every case alike
            case.run()

    base = bare.median
    print(f"medians of {reps} interleaved runs ({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f})")
    print(f"{'command':42s} {'median':>8s} {'ratio':>6s} {'peak RSS':>9s}")
    for case in cases:
        print(f"{case.name:42s} {case.median:7.2f}s {case.median / base:5.2f}x {case.peak_mb:7.0f} MB")

    checks = [
        ("seed run <= 1.5x bare import", seed.median / base <= 1.5),
        ("big run <= 2x bare import", big.median / base <= 2.0),
        ("big run peak RSS <= 800 MB", big.peak_mb <= 800),
        ("Llama-3-8B prefill <= 1.5x bare import", prefill.median / base <= 1.5),
        ("Llama-3-8B decode step <= 1.5x bare import", decode.median / base <= 1.5),
        ("modern runs peak RSS <= 800 MB", max(prefill.peak_mb, decode.peak_mb) <= 800),
        ("DeepSeek-V3 MLA prefill <= 1.5x bare import", mla_prefill.median / base <= 1.5),
        ("DeepSeek-V3 MLA decode step <= 1.5x bare import", mla_decode.median / base <= 1.5),
        ("attncli model deepseek-v3 32k <= 1.5x bare import", model_dsv3.median / base <= 1.5),
        ("attncli model gemma-3-27b 32k <= 1.5x bare import", model_gemma3.median / base <= 1.5),
    ]
    print()
    for what, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {what}")
    print(f"\nshortcut saves {seed_slow.median - seed.median:.2f}s; the floor (sympy, which torch's meta "
          f"kernels import) is {floor.median / base:.2f}x by itself")
    print(f"--gpu adds {seed_gpu.median - seed.median:+.2f}s to the seed run "
          f"({seed_gpu.median / base:.2f}x against {seed.median / base:.2f}x)")
    print(f"heavy imports of the seed run: {', '.join(heavy_imports(seed.argv))}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
