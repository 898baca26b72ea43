"""Budgets and baselines: count parsing and regression detection on typed counts (pure, no torch)."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from attncli.analyses.checks import (
    Counted,
    baseline_variants,
    budget,
    check_same_layer,
    compare_baseline,
    keyed,
    load_baseline,
    parse_count,
    parse_tolerance,
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


def test_a_small_excess_is_not_plus_zero_percent() -> None:
    """The seed layer's 68,719,476,736 MACs against --max-flops 68.7G: 19,476,736 over, which is
    19,476,736 / 68,700,000,000 = 0.02835% (not the "+0.0%" one decimal gives)."""
    bad = budget("flops", 68_719_476_736, 68_700_000_000, "H heads with W_O")
    assert "by 19,476,736 (+0.028%)" in bad.message, bad.message


def _doc(flops: int, params: int) -> dict[str, object]:
    return {"schema": "attncli.flops/1",
            "variants": [{"heads": 8, "out_proj": True, "fvcore_flops": flops, "params": params}]}


def _new(flops: int, params: int) -> dict[tuple[int, bool], Counted]:
    return {(8, True, None): Counted(8, True, flops, params)}


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
    assert baseline_variants(report) == {(8, True, None): Counted(8, True, 1000, 60)}
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
    assert list(keyed(variants)) == [(1, False, None), (8, True, None), (8, False, None)]


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


# ---------------------------------------------------------------- exact budgets (hardening)
@pytest.mark.parametrize(("text", "value"), [
    ("9007199254740993", 2**53 + 1),  # a float would round this to 2**53
    ("68.72G", 68_720_000_000), ("1,000", 1_000), ("1.000,5", None), ("68.719476736G", 68_719_476_736),
    ("1e30", 10**30),
])
def test_parse_count_is_exact(text: str, value: int | None) -> None:
    if value is None:
        with pytest.raises(SpecError):
            parse_count(text, "--max-flops")
    else:
        assert parse_count(text, "--max-flops") == value


@pytest.mark.parametrize("text", ["68,7G", "1,1M", "1,,,0", ",100", "1,0000", "1.5", "0.0001K", "1e31", "1e999"])
def test_parse_count_refuses_misread_commas_fractions_and_huge(text: str) -> None:
    # Before: "68,7G" read as 687G and "1,,,0" as 10 (commas dropped), "1.5" rounded.
    with pytest.raises(SpecError) as info:
        parse_count(text, "--max-flops")
    assert info.value.flag == "--max-flops" and "\n" not in str(info.value)


@pytest.mark.parametrize(("text", "value"), [
    ("0.05", Fraction(1, 20)), ("5%", Fraction(1, 20)), ("0", Fraction(0)), ("1e-3", Fraction(1, 1000)),
    (0.25, Fraction(1, 4)), ("12.5 %", Fraction(1, 8)),
])
def test_parse_tolerance(text: str | float, value: Fraction) -> None:
    assert parse_tolerance(text) == value


@pytest.mark.parametrize("text", ["-1", "1e300", "nan", "inf", "five", "5%%", float("nan"), float("inf")])
def test_parse_tolerance_refuses(text: str | float) -> None:
    with pytest.raises(SpecError) as info:
        parse_tolerance(text)
    assert info.value.flag == "--tolerance"


def test_tolerance_is_exact_on_big_counts() -> None:
    # 10**20 * (1 + 0.05) = 105 * 10**18 exactly; a float product would be off by thousands.
    new = {(1, True, None): Counted(1, True, 105 * 10**18, None)}
    old = {(1, True, None): Counted(1, True, 10**20, None)}
    (result,) = compare_baseline(new, old, "5%")
    assert result.passed and result.limit == 105 * 10**18


# ---------------------------------------------------------------- baseline schema (hardening)
def _schema_doc(variant: dict[str, Any], **config: Any) -> dict[str, Any]:
    return {"schema": "attncli.flops/1", "config": {"dim": 512, "heads": 8, "batch": 32, "seq": 1024, **config},
            "variants": [variant]}


GOOD = {"heads": 8, "out_proj": True, "fvcore_flops": 100, "params": 10}


@pytest.mark.parametrize("bad", [
    {"fvcore_flops": "100"}, {"fvcore_flops": None}, {"fvcore_flops": [100]}, {"fvcore_flops": 1.5},
    {"fvcore_flops": -5}, {"params": True}, {"fvcore_flops": 10**31}, {"heads": "eight"}, {"heads": True},
    {"heads": 0}, {"out_proj": "false"}, {"out_proj": 1},
])
def test_baseline_schema_refuses(bad: dict[str, Any]) -> None:
    with pytest.raises(SpecError) as info:
        baseline_variants(_schema_doc({**GOOD, **bad}))
    assert info.value.flag == "--baseline"


def test_baseline_schema_accepts_a_good_variant() -> None:
    assert baseline_variants(_schema_doc(GOOD)) == {(8, True, None): Counted(8, True, 100, 10)}


@pytest.mark.parametrize(("raw", "needle"), [
    (b'{"schema": "attncli.flops/1", "variants": [{"heads": 8, "out_proj": true, "params": NaN}]}', "strict JSON"),
    (b'{"schema": "attncli.flops/1", "x": Infinity}', "strict JSON"),
    (b'{"schema": "attncli.flops/1", "x": ' + b"9" * 5000 + b"}", "strict JSON"),
    (b"\xff\xfe{}", "UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, "nested"),
])
def test_load_baseline_refuses_odd_files(tmp_path: Path, raw: bytes, needle: str) -> None:
    path = tmp_path / "b.json"
    path.write_bytes(raw)
    with pytest.raises(SpecError, match=needle) as info:
        load_baseline(path)
    assert info.value.flag == "--baseline"


def test_baseline_for_another_layer_is_refused() -> None:
    doc = _schema_doc(GOOD, dim=512)
    with pytest.raises(SpecError, match=r"dim 512 \(now 64\).*--baseline-any-layer") as info:
        check_same_layer(doc, {"dim": 64, "heads": 8, "impl": "fused"})
    assert info.value.flag == "--baseline"
    check_same_layer(doc, {"dim": 512, "heads": 8, "impl": "split"})  # another impl is what a baseline compares
    with pytest.raises(SpecError, match="heads true"):
        check_same_layer(_schema_doc(GOOD, heads=True), {"dim": 512, "heads": 1})  # true is not 1
    with pytest.raises(SpecError, match="no config"):
        check_same_layer({"schema": "attncli.flops/1"}, {"dim": 512})
    with pytest.raises(SpecError, match="records no dim, heads, batch, seq in its config"):
        check_same_layer({"schema": "attncli.flops/1", "config": {}}, {"dim": 64, "heads": 8})


def test_baseline_variants_empty_or_repeated_are_refused() -> None:
    """Malformed, not a regression: exit 2 (SpecError), never a failed check (exit 1)."""
    with pytest.raises(SpecError, match="is empty"):
        baseline_variants({**_schema_doc(GOOD), "variants": []})
    with pytest.raises(SpecError, match=r"variants\[1\] repeats heads 8, out_proj true of variants\[0\]"):
        baseline_variants({**_schema_doc(GOOD), "variants": [{**GOOD, "fvcore_flops": 1}, GOOD]})


def test_a_future_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text('{"schema": "attncli.flops/999", "variants": []}')
    with pytest.raises(SpecError, match=r"attncli\.flops/999") as info:
        load_baseline(path)
    assert info.value.flag == "--baseline"
