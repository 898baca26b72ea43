"""Sweep ranges and growth exponents (pure parts; the CLI test counts for real)."""

from __future__ import annotations

import math

import pytest

from attncli.analyses.sweep import Counter, Point, fit_exponent, parse_values, run_sweep, setting_name
from attncli.spec import AttnSpec, SpecError


@pytest.mark.parametrize(("text", "values"), [
    ("128", [128]),
    ("256,128,256", [128, 256]),
    ("128:8192:x2", [128, 256, 512, 1024, 2048, 4096, 8192]),
    ("128:1000:x2", [128, 256, 512]),
    ("128:512:+128", [128, 256, 384, 512]),
    ("2:8", [2, 4, 8]),
])
def test_parse_values(text: str, values: list[int]) -> None:
    assert parse_values(text, "--seq") == values


@pytest.mark.parametrize("text", ["", "a,b", "8:2:x2", "1:10:x1", "0:8:x2", "1:100000:+1", "x"])
def test_parse_values_rejects(text: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_values(text, "--seq")
    assert info.value.flag == "--seq"


def test_fit_exponent_on_power_laws() -> None:
    xs = [128, 256, 512, 1024]
    assert fit_exponent(xs, [3 * x * x for x in xs]) == pytest.approx(2.0)
    assert fit_exponent(xs, [7 * x for x in xs]) == pytest.approx(1.0)
    assert fit_exponent(xs, [5 for _ in xs]) == pytest.approx(0.0)
    assert fit_exponent([128], [1]) is None
    assert fit_exponent(xs, [0, 1, 2, 3]) is None


def _window_pairs(n: int, w: int) -> int:
    """Visible (query, key) pairs of causal sliding-window self-attention, L = n queries, window w:
    query i sees min(i + 1, w) keys, so sum_i min(i + 1, w) = n(n + 1)/2 for n <= w, else
    w(w + 1)/2 + (n - w) w."""
    return n * (n + 1) // 2 if n <= w else w * (w + 1) // 2 + (n - w) * w


def _window_counter(w: int) -> Counter:
    """A counter without torch: dense QK^T n*n, effective QK^T the visible pairs (B = H = d = 1)."""
    def count(spec: AttnSpec, dtype: str) -> Point:
        n = spec.seq
        dense = {"q_proj": n, "qk": n * n}
        return Point(0, dense, sum(dense.values()), 0, 4 * n * n,
                     effective_by_stage={"q_proj": n, "qk": _window_pairs(n, w)})
    return count


def test_local_exponents_of_a_window_fall_towards_one() -> None:
    """W = 4 over L = 2, 4, 8, 16, 32: pairs 3, 10, 26, 58, 122 (closed form above), so the local
    exponent of the effective QK^T is log2(10/3), log2(26/10), log2(58/26), log2(122/58): 1.74,
    1.38, 1.16, 1.07; the dense QK^T's is 2 at every step."""
    r = run_sweep(AttnSpec(dim=8, heads=1, seq=2), "seq", [2, 4, 8, 16, 32], "float32", count=_window_counter(4))
    assert r.masked
    assert [(s.start, s.end) for s in r.steps] == [(2, 4), (4, 8), (8, 16), (16, 32)]
    assert [s.effective_qk for s in r.steps] == pytest.approx(
        [math.log2(10 / 3), math.log2(26 / 10), math.log2(58 / 26), math.log2(122 / 58)])
    assert [s.qk for s in r.steps] == pytest.approx([2.0] * 4)
    # totals: dense n + n^2, effective n + pairs
    assert r.steps[-1].total == pytest.approx(math.log2((32 + 32 * 32) / (16 + 16 * 16)))
    assert r.steps[-1].effective_total == pytest.approx(math.log2((32 + 122) / (16 + 58)))
    doc = r.to_json()
    assert doc["masked"] is True
    assert doc["local_exponents"][0] == {"from": 2, "to": 4, "qk": 2.0, "effective_qk": round(math.log2(10 / 3), 4),
                                         "total": round(math.log2((4 + 16) / (2 + 4)), 4),
                                         "effective_total": round(math.log2((4 + 10) / (2 + 3)), 4)}


def test_local_exponent_of_a_zero_value_is_none() -> None:
    """--cache 0:...: log 0 does not exist, so the first step has no exponent (as fit_exponent)."""
    def count(spec: AttnSpec, dtype: str) -> Point:
        by_stage = {"qk": spec.cache + 1}
        return Point(0, by_stage, spec.cache + 1, 0, 0, effective_by_stage=dict(by_stage))

    r = run_sweep(AttnSpec(dim=8, heads=1, seq=1, impl="sdpa"), "cache", [0, 2, 6], "float32", count=count)
    assert not r.masked and r.to_json()["masked"] is False
    assert r.steps[0].qk is None and r.steps[1].qk == pytest.approx(math.log(7 / 3) / math.log(3))


def test_the_swept_setting_is_named_by_its_flag() -> None:
    """The spec field d_head is --head-dim on the command line and head_dim in the JSON config."""
    from attncli.choices import SETTING_FLAGS, SWEEPABLE

    assert setting_name("d_head") == "head_dim" and setting_name("kv_heads") == "kv_heads"
    for s in SWEEPABLE:
        assert "--" + setting_name(s).replace("_", "-") == SETTING_FLAGS[s]

    def count(spec: AttnSpec, dtype: str) -> Point:
        return Point(0, {"qk": spec.d_head or 0}, spec.d_head or 0, 0, 0, ("boom",), {"qk": spec.d_head or 0})

    r = run_sweep(AttnSpec(dim=64, heads=2, impl="split"), "d_head", [16, 32], "float32", count=count)
    doc = r.to_json()
    assert doc["setting"] == "head_dim" and doc["config"]["swept"] == "head_dim" and "head_dim" in doc["config"]
    assert r.problems == ("head_dim=16: boom", "head_dim=32: boom")


def test_per_head_sweep_is_timed_over_all_its_points_before_counting() -> None:
    """--impl per-head builds H modules at every point: 2 points x 512 heads x 0.02 s = 20.48 s is
    announced, 64 points x 1024 heads (1,310.72 s) refused, and neither counts anything first."""
    counted: list[int] = []

    def count(spec: AttnSpec, dtype: str) -> Point:
        counted.append(spec.dim)
        return Point(0, {"qk": spec.dim}, spec.dim, 1, 1)

    seen: list[float] = []
    spec = AttnSpec(dim=512, heads=512, seq=8, impl="per-head")
    run_sweep(spec, "dim", [512, 1024], "float32", count=count, on_estimate=lambda e: seen.append(e.seconds))
    assert seen == [pytest.approx(2 * 512 * 0.02)] and counted == [512, 1024]
    counted.clear()
    with pytest.raises(SpecError) as err:
        run_sweep(spec.with_(dim=1024, heads=1024), "dim", list(range(1024, 65537, 1024)), "float32", count=count)
    assert err.value.flag == "--heads" and "1,311 s" in err.value.message and "64 values of --dim" in err.value.message
    assert counted == []
