"""Sweeps over the modern settings: exponents from the closed forms, the window's effective
exponent, and where a layer crosses from memory-bound to compute-bound on a datasheet GPU."""

from __future__ import annotations

import pytest

from attncli.analyses.sweep import parse_values, run_sweep
from attncli.spec import AttnSpec, SpecError

BASE = AttnSpec(dim=256, heads=8, batch=1, seq=256, impl="sdpa").validate()


def test_kv_heads_grow_only_k_and_v() -> None:
    r = run_sweep(BASE, "kv_heads", [1, 2, 4, 8], "float32")
    # k and v project to G*d features: exponent 1 in G; nothing else depends on G.
    assert r.exponents["k_proj"] == pytest.approx(1.0) and r.exponents["v_proj"] == pytest.approx(1.0)
    for st in ("q_proj", "qk", "av", "out_proj"):
        assert r.exponents[st] == pytest.approx(0.0, abs=1e-12)


def test_a_window_makes_effective_attention_grow_linearly_in_seq() -> None:
    # W = 64 over L = 4096..65536: visible pairs W (W + 1) / 2 + (L - W) W, nearly W L: exponent -> 1,
    # while the dense QK^T keeps exponent 2.
    spec = BASE.with_(window=64)
    r = run_sweep(spec, "seq", [4096, 16384, 65536], "float32")
    assert r.exponents["qk"] == pytest.approx(2.0)
    assert r.exponents["effective_qk"] == pytest.approx(1.0, abs=0.01)
    last = r.points[-1]
    assert last.effective_by_stage["qk"] == 8 * 32 * (64 * 65 // 2 + (65536 - 64) * 64)


def test_cache_sweep_starts_at_zero_and_grows_attention_only() -> None:
    r = run_sweep(BASE.with_(seq=1), "cache", parse_values("0:3072:+1024", "--cache", minimum=0), "float32")
    assert [p.value for p in r.points] == [0, 1024, 2048, 3072]
    assert [p.by_stage["qk"] for p in r.points] == [256 * (n + 1) for n in (0, 1024, 2048, 3072)]
    assert len({p.by_stage["k_proj"] for p in r.points}) == 1  # one new token projected each time


def test_prefill_over_seq_crosses_from_memory_to_compute_bound() -> None:
    spec = AttnSpec(dim=4096, heads=32, kv_heads=8, d_head=128, bias=False, batch=1, seq=1, impl="sdpa").validate()
    r = run_sweep(spec, "seq", [1, 16, 256, 4096], "bfloat16", gpu="h100-sxm")
    bounds = [p.roofline.fused.bound for p in r.points if p.roofline is not None]
    assert bounds[0] == "memory" and bounds[-1] == "compute"
    assert r.crossings and r.crossings[0][2] == "compute"
    assert r.to_json()["crossings"]


def test_unknown_gpu_fails_before_counting() -> None:
    def boom(spec: AttnSpec, dtype: str) -> object:
        raise AssertionError("counted before checking --gpu")

    with pytest.raises(SpecError) as info:
        run_sweep(BASE, "seq", [1, 2], "float32", count=boom, gpu="h900")  # type: ignore[arg-type]
    assert info.value.flag == "--gpu"
