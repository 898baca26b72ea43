"""Budgets and baselines: count parsing and regression detection on typed counts (pure, no torch)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attncli.checks import (
    Counted,
    baseline_variants,
    budget,
    compare_baseline,
    keyed,
    load_baseline,
    parse_count,
    run_checks,
)
from attncli.spec import SpecError


@pytest.mark.parametrize(("text", "value"), [
    ("1e9", 1_000_000_000), ("68.7G", 68_700_000_000), ("68,719,476,736", 68_719_476_736),
    ("12M", 12_000_000), ("1_050_624", 1_050_624), ("2k", 2_000), ("0", 0), ("1.5T", 1_500_000_000_000),
])
def test_parse_count(text: str, value: int) -> None:
    assert parse_count(text, "--max-flops") == value


@pytest.mark.parametrize("text", ["", "abc", "-5", "1e9x", "G", "1..2"])
def test_parse_count_rejects(text: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_count(text, "--max-params")
    assert info.value.flag == "--max-params"


def test_budget_names_the_excess() -> None:
    ok = budget("flops", 100, 100, "x")
    assert ok.passed
    bad = budget("flops", 68_719_476_736, 60_000_000_000, "H heads with W_O")
    assert not bad.passed and "8,719,476,736" in bad.message and "+14.5%" in bad.message


def _doc(flops: int, params: int) -> dict[str, object]:
    return {"schema": "attncli.flops/1",
            "variants": [{"heads": 8, "out_proj": True, "fvcore_flops": flops, "params": params}]}


def _new(flops: int, params: int) -> dict[tuple[int, bool], Counted]:
    return {(8, True): Counted(8, True, flops, params)}


def test_baseline_regression_and_tolerance() -> None:
    old = baseline_variants(_doc(1000, 50))
    assert all(r.passed for r in compare_baseline(_new(1000, 50), old, 0.0))
    assert all(r.passed for r in compare_baseline(_new(900, 50), old, 0.0))
    worse = compare_baseline(_new(1040, 50), old, 0.0)
    assert [r.passed for r in worse] == [False, True] and "regressed from 1,000 by 40" in worse[0].message
    assert all(r.passed for r in compare_baseline(_new(1040, 50), old, 0.05))
    assert not compare_baseline({}, old, 0.0)[0].passed


def test_baseline_read_from_a_report_document() -> None:
    report = {"schema": "attncli.report/1", "flops": _doc(1000, 60)}
    assert baseline_variants(report) == {(8, True): Counted(8, True, 1000, 60)}
    assert [r.passed for r in compare_baseline(_new(1000, 70), baseline_variants(report), 0.0)] == [True, False]


def test_budgets_read_h_heads_with_w_o(tmp_path: Path) -> None:
    """--max-flops and --max-params judge the configured layer, not another variant."""
    variants = [Counted(1, False, 10, 1), Counted(8, True, 1000, 50), Counted(8, False, 900, 40)]
    results = run_checks(variants, 8, max_flops="999", max_params="50", baseline=None, tolerance=0.0)
    assert [(r.name, r.value, r.passed) for r in results] == [("max-flops", 1000, False), ("max-params", 50, True)]
    with pytest.raises(SpecError) as info:
        run_checks(variants, 4, max_flops="1", max_params=None, baseline=None, tolerance=0.0)
    assert info.value.flag == "--max-flops"
    base = tmp_path / "b.json"
    base.write_text(json.dumps(_doc(990, 50)))
    got = run_checks(variants, 8, max_flops=None, max_params=None, baseline=base, tolerance=0.0)
    assert [r.passed for r in got] == [False, True]
    assert list(keyed(variants)) == [(1, False), (8, True), (8, False)]


def test_load_baseline_errors(tmp_path: Path) -> None:
    for content, needle in (("{", "not JSON"), (json.dumps({"schema": "other/1"}), "not an attncli")):
        p = tmp_path / "b.json"
        p.write_text(content)
        with pytest.raises(SpecError, match=needle) as info:
            load_baseline(p)
        assert info.value.flag == "--baseline"
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(SpecError) as bad:
        load_baseline(tmp_path / "bad.json")
    assert isinstance(bad.value.__cause__, json.JSONDecodeError)  # the cause is kept, not thrown away
    with pytest.raises(SpecError, match="cannot read"):
        load_baseline(tmp_path / "missing.json")
