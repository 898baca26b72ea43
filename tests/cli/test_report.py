"""``attncli report`` and the CI checks: budgets, baselines, Markdown that renders as tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

# Seed 002: 1 head without W_O 60,129,542,144 MACs; 8 heads with W_O 68,719,476,736.
SEED_NO_WO = 60_129_542_144
SEED_WITH_WO = 68_719_476_736
# 3 * 512 * 512 + 3 * 512 + 512 * 512 + 512 (nn.MultiheadAttention(512, 8) parameters)
PARAMS = 1_050_624


@pytest.fixture(scope="module")
def report_json(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from attncli.cli import main

    path = tmp_path_factory.mktemp("report") / "report.json"
    assert main(["report", "--format", "json", "--output", str(path)]) == 0
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def test_report_json_has_everything(report_json: dict[str, Any]) -> None:
    doc = report_json
    assert doc["schema"] == "attncli.report/2"
    variants = {(v["heads"], v["out_proj"]): v["fvcore_flops"] for v in doc["flops"]["variants"]}
    assert variants == {(1, False): SEED_NO_WO, (8, True): SEED_WITH_WO, (8, False): SEED_NO_WO,
                        (1, True): SEED_WITH_WO}
    assert doc["shapes"]["params"]["total"] == PARAMS
    assert doc["permute"]["holds"] is True and doc["permute_skipped"] is None
    assert doc["checks"] == []


def test_report_markdown_renders_tables(cli: Any) -> None:
    from markdown_it import MarkdownIt

    r = cli("report", "--seq", "64", "--batch", "2", "--format", "markdown")
    assert r.code == 0, r.err
    html = MarkdownIt("commonmark").enable("table").render(r.out)
    assert html.count("<table>") >= 5
    assert "<th>variant</th>" in html and "<th>stage</th>" in html


def test_report_markdown_seed_numbers(cli: Any) -> None:
    r = cli("report", "--format", "markdown")
    assert r.code == 0 and "60,129,542,144" in r.out and "68,719,476,736" in r.out


def test_budgets_pass_and_fail(cli: Any) -> None:
    ok = cli("flops", "--max-flops", "68.72G", "--max-params", "1050624", "--format", "json")
    assert ok.code == 0, ok.err
    assert all(c["passed"] for c in ok.json()["checks"])
    over = cli("flops", "--max-flops", "60G", "--format", "json")
    assert over.code == 1
    # 68,719,476,736 - 60,000,000,000 = 8,719,476,736 over
    assert "8,719,476,736" in over.err and "max-flops" in over.err
    assert over.json()["checks"][0]["passed"] is False
    params = cli("report", "--seq", "16", "--batch", "1", "--max-params", "1M", "--format", "json")
    assert params.code == 1 and "50,624" in params.err


def test_baseline_regression(cli: Any, tmp_path: Path) -> None:
    old = tmp_path / "old.json"
    assert cli("flops", "--seq", "128", "--format", "json", "--output", str(old)).code == 0
    same = cli("flops", "--seq", "128", "--baseline", str(old), "--format", "json")
    assert same.code == 0 and same.json()["checks"]
    # A longer sequence stands in for a regression: another layer, so --baseline-any-layer.
    refused = cli("flops", "--seq", "256", "--baseline", str(old))
    assert refused.code == 2 and "--baseline-any-layer" in refused.err and "seq 128 (now 256)" in refused.err
    worse = cli("flops", "--seq", "256", "--baseline", str(old), "--baseline-any-layer")
    assert worse.code == 1 and "regressed" in worse.err
    tolerated = cli("flops", "--seq", "129", "--baseline", str(old), "--tolerance", "0.05", "--baseline-any-layer")
    assert tolerated.code == 0, tolerated.err
    as_percent = cli("flops", "--seq", "129", "--baseline", str(old), "--tolerance", "5%", "--baseline-any-layer")
    assert as_percent.code == 0, as_percent.err
    via_report = cli("report", "--seq", "256", "--baseline", str(old), "--format", "json", "--baseline-any-layer")
    assert via_report.code == 1


@pytest.mark.parametrize(("args", "flag"), [
    (["--max-flops", "lots"], "--max-flops"),
    (["--max-params", "-3"], "--max-params"),
    (["--baseline", "/no/such/file.json"], "--baseline"),
    (["--tolerance", "-1"], "--tolerance"),
])
def test_bad_check_options(cli: Any, args: list[str], flag: str) -> None:
    for cmd in ("flops", "report"):
        r = cli(cmd, "--seq", "16", *args)
        assert r.code == 2 and flag in r.err and len(r.err.strip().splitlines()) == 1, (cmd, r.err)


def test_cross_attention_report_skips_permutation(cli: Any) -> None:
    doc = cli("report", "--seq", "8", "--kv-seq", "12", "--impl", "split", "--format", "json").json()
    assert doc["permute"] is None and "cross-attention" in doc["permute_skipped"]
