"""Budgets and baselines: count parsing and regression detection (pure, no torch)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attncli.checks import budget, compare_baseline, load_baseline, parse_count
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


def test_baseline_regression_and_tolerance() -> None:
    old = _doc(1000, 50)
    assert all(r.passed for r in compare_baseline(_doc(1000, 50), old, 0.0))
    assert all(r.passed for r in compare_baseline(_doc(900, 50), old, 0.0))
    worse = compare_baseline(_doc(1040, 50), old, 0.0)
    assert [r.passed for r in worse] == [False, True] and "regressed from 1,000 by 40" in worse[0].message
    assert all(r.passed for r in compare_baseline(_doc(1040, 50), old, 0.05))
    report = {"schema": "attncli.report/1", "flops": _doc(1000, 60)}
    assert [r.passed for r in compare_baseline(report, old, 0.0)] == [True, False]
    assert not compare_baseline({"schema": "attncli.flops/1", "variants": []}, old, 0.0)[0].passed


def test_load_baseline_errors(tmp_path: Path) -> None:
    for content, needle in (("{", "not JSON"), (json.dumps({"schema": "other/1"}), "not an attncli")):
        p = tmp_path / "b.json"
        p.write_text(content)
        with pytest.raises(SpecError, match=needle) as info:
            load_baseline(p)
        assert info.value.flag == "--baseline"
    with pytest.raises(SpecError, match="cannot read"):
        load_baseline(tmp_path / "missing.json")
