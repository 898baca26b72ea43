"""The time model: estimates by hand from the closed forms and the stated rates, the limit and
its refusal, and the two reproductions of issue 22 #3 refused in a moment by the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from attncli.analyses import timemodel as tm
from attncli.spec import PER_HEAD_SECONDS, AttnSpec, SpecError

# The float16 row that ran 314 s: B=2, L=S=8704, E=256, H=4.
SLOW = AttnSpec(dim=256, heads=4, batch=2, seq=8704, mask="causal", average_weights=False).validate()
# Dense MACs by hand: 4 projections B L E^2, QK^T and weights x V B L S E each.
SLOW_FLOPS = 2 * (4 * 2 * 8704 * 256**2 + 2 * 2 * 8704 * 8704 * 256)


def test_bench_estimate_is_flops_over_the_stated_rate() -> None:
    assert SLOW_FLOPS == 164_282_499_072
    est = tm.bench_estimate([SLOW], "cpu", "float16", backward=False, min_run_time=0.2, native_half=False)
    # 3 calls per row at 0.5 GFLOP/s (float16 without a native path), plus min_run_time.
    assert est.flops == 3 * SLOW_FLOPS
    assert est.seconds == pytest.approx(3 * SLOW_FLOPS / 0.5e9 + 0.2)
    assert est.culprit == "--seq"  # the L x S stages dominate
    back = tm.bench_estimate([SLOW], "cpu", "float32", backward=True, min_run_time=0.2)
    assert back.seconds == pytest.approx(3 * 3 * SLOW_FLOPS / 4e9 + 0.2)  # backward = 2 x forward
    native = tm.bench_estimate([SLOW], "cpu", "bfloat16", backward=False, min_run_time=0.2, native_half=True)
    assert native.seconds == pytest.approx(3 * SLOW_FLOPS / 2e9 + 0.2)
    cuda = tm.bench_estimate([SLOW], "cuda", "float16", backward=False, min_run_time=0.2)
    assert cuda.seconds == pytest.approx(3 * SLOW_FLOPS / 1e12 + 0.2)


def test_per_head_builds_the_wide_layer_and_long_timing_name_their_flags() -> None:
    wide = AttnSpec(dim=4096, heads=8, batch=1, seq=16).validate()
    assert tm.bench_estimate([wide], "cpu", "float32", False, 0.2).culprit == "--dim"
    small = AttnSpec(dim=64, heads=4, batch=2, seq=16).validate()
    timed = tm.bench_estimate([small] * 5, "cpu", "float32", False, 60.0)  # five rows of 60 s each
    assert timed.culprit == "--min-run-time" and timed.seconds == pytest.approx(
        300 + 5 * 3 * 2 * (4 * 2 * 16 * 64**2 + 2 * 2 * 16 * 16 * 64) / 4e9)
    per_head = AttnSpec(dim=1024, heads=1024, batch=1, seq=8, impl="per-head").validate()
    est = tm.bench_estimate([per_head], "cpu", "float32", False, 0.2)
    assert est.builds == 1024 and est.culprit == "--heads"
    assert est.seconds == pytest.approx(1024 * PER_HEAD_SECONDS + 3 * 2 * (4 * 8 * 1024**2 + 2 * 64 * 1024) / 4e9
                                        + 0.2)


def test_sweep_estimate_multiplies_the_builds_by_the_points() -> None:
    specs = [AttnSpec(dim=d, heads=1024, seq=8, impl="per-head").validate() for d in range(1024, 65537, 1024)]
    est = tm.sweep_estimate(specs, "--dim")
    assert len(specs) == 64 and est.builds == 64 * 1024
    assert est.seconds == pytest.approx(64 * 1024 * 0.02) and est.culprit == "--heads"
    assert tm.sweep_estimate([s.with_(impl="fused") for s in specs], "--dim").seconds == 0


def test_permute_estimate_counts_two_calls_per_encoding() -> None:
    spec = AttnSpec(dim=1024, heads=8, batch=1, seq=1024).validate()
    per_call = 2 * (4 * 1024 * 1024**2 + 2 * 1024**2 * 1024)
    # none, sinusoidal, learned, rope: 2 calls each, 2 more for RoPE's stand-in layer.
    est = tm.permute_estimate(spec, "float64", ["none", "sinusoidal", "learned", "rope"])
    assert est.seconds == pytest.approx(10 * per_call / 2e9)
    masked = tm.permute_estimate(spec.with_(mask="causal"), "float32", ["none"])
    assert masked.seconds == pytest.approx(4 * per_call / 4e9)  # x, P x and the moved mask's pair


def test_limit_refuses_in_one_line_and_the_environment_moves_it() -> None:
    est = tm.bench_estimate([SLOW], "cpu", "float16", False, 0.2, native_half=False)
    with pytest.raises(SpecError) as err:
        tm.check(est, environ={})
    assert err.value.flag == "--seq" and "\n" not in str(err.value)
    assert "986 s" in err.value.message and "--dtype float32" in err.value.message
    assert tm.check(est, environ={tm.LIMIT_ENV: "1000"}) is est
    assert tm.check(est, environ={tm.LIMIT_ENV: "0"}) is est  # 0: no limit
    for bad in ("x", "-1", "inf", "nan"):
        with pytest.raises(SpecError) as err:
            tm.check(est, environ={tm.LIMIT_ENV: bad})
        assert err.value.flag == tm.LIMIT_ENV
    assert tm.notice(est) is not None and tm.notice(tm.check(tm.bench_estimate(
        [AttnSpec(dim=64, heads=4, seq=16).validate()], "cpu", "float32", False, 0.2))) is None


REPRODUCTIONS = [
    (["bench", "--dtype", "float16", "--mask", "causal", "--per-head-weights", "--seq", "8704", "--dim", "256",
      "--heads", "4", "--batch", "2", "--only", "--impl", "torch"], "--seq"),
    (["sweep", "--impl", "per-head", "--heads", "1024", "--dim", "1024:65536:+1024", "--seq", "8"], "--heads"),
]


@pytest.mark.parametrize(("args", "flag"), REPRODUCTIONS, ids=["bench-float16", "sweep-per-head"])
def test_reproductions_exit_2_in_a_moment_naming_a_flag(args: list[str], flag: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != tm.LIMIT_ENV}
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "attncli", *args], capture_output=True, text=True, env=env,
                          timeout=60)
    assert time.monotonic() - start < 30  # the runs took 314 s and ~15 min before the time model
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"attncli: error: {flag}: would take about"), done.stderr


def test_small_bench_still_runs_and_the_environment_lowers_the_limit() -> None:
    done = subprocess.run([sys.executable, "-m", "attncli", "bench", "--only", "--min-run-time", "0.01",
                           "--format", "json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == "" and '"attncli.bench/2"' in done.stdout
    # --seq 2048: 3 x 2 x (4 x 2 x 2048 x 256^2 + 2 x 2 x 2048^2 x 256) / 4e9 + 0.2 = 2.6 s > 0.5 s
    env = {**os.environ, tm.LIMIT_ENV: "0.5"}
    refused = subprocess.run([sys.executable, "-m", "attncli", "bench", "--only", "--seq", "2048"],
                             capture_output=True, text=True, env=env, timeout=120)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "0.5 s" in refused.stderr
