"""Wall time of counting real models against the bare imports they cannot avoid.

Targets (real models issue), as ratios measured in this one run:

- ``attncli flops --preset llama-3-8b --seq 8192 --batch 1 --format json`` (four variants,
  cross-checks included) against the bare ``import torch, fvcore.nn``: at most 1.5x;
- ``attncli flops --module transformers.models.llama.modeling_llama:LlamaAttention --preset
  llama-3-8b --seq 8192 --format json`` (a Hugging Face class, built from the preset on the
  meta device) against the bare ``import torch, fvcore.nn, transformers`` plus the Llama
  modeling module it names: at most 1.5x.

Target of issue 32, in the same run: a Hub name already cached adds under 0.1 s to the same model read
from a local folder, and makes no request: ``attncli model meta-llama/Llama-3.1-8B --revision COMMIT``
(a full commit hash is read from the cache) and with ``HF_HUB_OFFLINE=1``, against ``attncli model
FOLDER`` holding the same files, with a stand-in Hub on 127.0.0.1 (tests/hubstub.py) that counts the
requests; the cache is filled by one run before measuring.

Every command runs as a subprocess, interleaved, ``--reps`` times (default 5); medians are
printed, of wall and CPU time, each with its ratio to the bare import the run cannot avoid (see
``bench_flops.py``, whose ``Case`` and bytecode step this reuses). Run by hand:
``.venv/bin/python benchmarks/bench_models.py``. Not a test: tests never assert on time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_flops import PY, Case, compile_attncli

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.hubstub import HubStub  # noqa: E402

HUB_REPO = "meta-llama/Llama-3.1-8B"
HUB_CONFIG = ROOT / "tests" / "data" / "configs" / "llama-3.1-8b" / "config.json"
HUB_INDEX = b'{"metadata": {"total_size": 16060522496}, "weight_map": {}}'

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

    stub, home = HubStub(), Path(tempfile.mkdtemp(prefix="attncli-bench-hf-"))
    commit = stub.add(HUB_REPO, {"config.json": HUB_CONFIG.read_bytes(), "model.safetensors.index.json": HUB_INDEX})
    folder = home / "Llama-3.1-8B"
    folder.mkdir()
    for name, data in stub.repos[HUB_REPO].items():
        (folder / name).write_bytes(data)
    hub_env = {"HF_ENDPOINT": stub.endpoint, "HF_HOME": str(home), "HF_HUB_OFFLINE": "",
               "HF_HUB_DISABLE_TELEMETRY": "1"}
    subprocess.run([PY, "-m", "attncli", "model", HUB_REPO, "--format", "json"], env={**os.environ, **hub_env},
                   check=True, stdout=subprocess.DEVNULL)  # NOTE: fills the cache; not measured
    local = Case("attncli model FOLDER (Llama-3.1-8B)", [PY, "-m", "attncli", "model", str(folder), "-f", "json"])
    by_commit = Case("  same as Hub name at its commit, cached",
                     [PY, "-m", "attncli", "model", HUB_REPO, "--revision", commit, "-f", "json"], hub_env)
    offline = Case("  same as Hub name, HF_HUB_OFFLINE=1",
                   [PY, "-m", "attncli", "model", HUB_REPO, "-f", "json"], {**hub_env, "HF_HUB_OFFLINE": "1"})
    before = stub.count()

    bare = Case("bare `import torch, fvcore.nn`", [PY, "-c", "import torch, fvcore.nn"])
    bare_hf = Case("bare `import torch, fvcore.nn, transformers` + llama",
                   [PY, "-c", "import torch, fvcore.nn, transformers, transformers.models.llama.modeling_llama"])
    preset = Case("attncli flops --preset llama-3-8b", [PY, "-m", "attncli", *PRESET])
    hf = Case("attncli flops --module LlamaAttention", [PY, "-m", "attncli", *HF])
    cases = [bare, bare_hf, preset, hf, local, by_commit, offline]
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
    # NOTE: each run against the bare import it cannot avoid (the HF class run: with transformers)
    print(f"{'command':52s} {'median':>8s} {'ratio':>6s} {'CPU':>7s} {'ratio':>6s} {'peak RSS':>9s}")
    for case in cases:
        base = bare_hf if case is hf else bare
        print(f"{case.name:52s} {case.median:7.2f}s {case.median / base.median:5.2f}x {case.cpu_median:6.2f}s "
              f"{case.cpu_median / base.cpu_median:5.2f}x {case.peak_mb:7.0f} MB")
    requests = stub.count() - before
    stub.close()
    shutil.rmtree(home, ignore_errors=True)
    checks = [
        *[(f"{case.name.strip()}: {case.median - local.median:+.3f} s wall, "
           f"{case.cpu_median - local.cpu_median:+.3f} s CPU against the folder (< 0.1 s, judged on CPU: steadier)",
           case.cpu_median - local.cpu_median < 0.1) for case in (by_commit, offline)],
        (f"requests to the Hub while measuring the cached runs: {requests} (none)", requests == 0),
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
