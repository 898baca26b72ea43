"""The bench core: counts, memory model, plan and the arithmetic of a measured row (never a speed)."""

from __future__ import annotations

import pytest
import torch

from attncli.analyses.bench import BACKENDS, check_fits, plan, predicted_memory, run_bench
from attncli.analyses.roofline import for_spec as roofline_for
from attncli.spec import IMPLS, AttnSpec, SpecError

TINY = AttnSpec(dim=64, heads=4, batch=2, seq=16).validate()


def test_predicted_memory_by_hand() -> None:
    # float32: q, k, v, context, output 5 x (2*16*64) x 4 = 40,960; scores and weights
    # 2 x (2*4*16*16) x 4 = 16,384; parameters 4*64*64 + 4*64 = 16,640 x 4 = 66,560; input 2*16*64 x 4 = 8,192.
    assert predicted_memory(TINY, "float32") == 40960 + 16384 + 66560 + 8192


def test_check_fits_refuses_and_names_a_flag() -> None:
    check_fits(TINY, "float32", "cpu", 10**9, "test")  # fits: no error
    with pytest.raises(SpecError) as err:
        check_fits(TINY, "float32", "cpu", 1000, "test")
    assert err.value.flag == "--dim" and "nothing was run" in err.value.message  # the weights dominate
    long = AttnSpec(dim=64, heads=4, batch=2, seq=100_000).validate()
    with pytest.raises(SpecError) as err:
        check_fits(long, "float32", "cpu", 10**9, "test")
    assert err.value.flag == "--seq"  # the (B, H, L, L) matrices dominate
    decode = AttnSpec(dim=64, heads=4, batch=2, seq=1, cache=100_000_000, impl="sdpa").validate()
    with pytest.raises(SpecError) as err:
        check_fits(decode, "float32", "cpu", 10**9, "test")
    assert err.value.flag == "--cache"  # K and V of the 10^8 cached tokens dominate, not the batch


def test_plan_skips_fused_for_cross_attention_and_lists_backends_on_cuda() -> None:
    cross = AttnSpec(dim=64, heads=4, batch=2, seq=16, kv_seq=8).validate()
    p = plan(cross, "cpu")
    assert [s.impl for s, _ in p.specs] == [i for i in IMPLS if i != "fused"]
    assert [s.impl for s in p.skipped] == ["fused"] and "self-attention" in p.skipped[0].reason
    cuda = plan(TINY, "cuda")
    assert [b for s, b in cuda.specs if s.impl == "sdpa"] == [None, *BACKENDS]
    assert [s.impl for s, _ in plan(TINY, "cpu", only=True).specs] == ["torch"]


def test_rows_arithmetic_forward_and_backward() -> None:
    r = run_bench(TINY, min_run_time=0.01, gpu="a100-sxm-40gb")
    flops = 2 * (4 * 131072 + 2 * 32768)
    assert [row.impl for row in r.rows] == list(IMPLS) and r.skipped == ()
    roof = roofline_for(TINY, "a100-sxm-40gb", "float32")
    for row in r.rows:
        assert row.flops == flops and row.dense_flops == flops and row.backend is None
        assert row.median_s > 0 and row.runs >= row.blocks >= 1
        assert (row.iqr_s is None) == (row.blocks < 4) and (row.iqr_s is None or row.iqr_s >= 0)
        assert row.achieved_flops_per_s == row.flops / row.median_s
        assert row.roofline_fraction == roof.fused.time_s / row.median_s
        assert row.peak_memory_bytes is None  # the CPU reports no peak
    back = run_bench(TINY, min_run_time=0.01, backward=True, only=True)
    assert back.rows[0].flops == 3 * flops and back.rows[0].roofline_fraction is None


def test_bad_min_run_time_and_dtype() -> None:
    with pytest.raises(SpecError) as err:
        run_bench(TINY, min_run_time=0)
    assert err.value.flag == "--min-run-time"
    with pytest.raises(SpecError) as err:
        run_bench(TINY, dtype="float64")
    assert err.value.flag == "--dtype"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_rows_have_backends_and_peak_memory() -> None:
    r = run_bench(TINY, device="cuda", dtype="float16", min_run_time=0.01)
    assert all(row.peak_memory_bytes is not None for row in r.rows)
    timed = {row.backend for row in r.rows if row.impl == "sdpa"} | {s.backend for s in r.skipped}
    assert timed == {None, *BACKENDS}


def test_an_address_space_limit_counts_as_available_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    import attncli.analyses.bench as bench

    monkeypatch.setattr(bench, "_address_space_left", lambda: 12345)
    assert bench.available_memory("cpu") == (12345, "the address-space limit, ulimit -v")


def test_min_run_time_has_an_upper_bound() -> None:
    # --min-run-time 1e300 timed for ever (the subprocess fuzz's only timeout).
    from attncli.analyses.bench import run_bench

    with pytest.raises(SpecError) as info:
        run_bench(AttnSpec(dim=8, heads=2, seq=4), min_run_time=1e300)
    assert info.value.flag == "--min-run-time"
