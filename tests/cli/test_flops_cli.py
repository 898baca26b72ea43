"""``attncli flops`` through ``attncli.cli.main``: formats, exit codes, loud disagreements.

The seed numbers are seed ``002_*``'s fvcore experiment (see tests/analyses/test_flops.py); small
configs elsewhere keep the suite fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

SMALL = ("--dim", "16", "--heads", "4", "--batch", "2", "--seq", "6")


def test_seed_defaults_print_the_seed_table(cli: Any) -> None:
    r = cli("flops", "--dim", "512", "--heads", "8")
    assert r.code == 0, r.err
    for n in ("60,129,542,144", "68,719,476,736", "137 G", "1.05 M"):  # 137 G FLOPs = 2 x 68.7 G MACs
        assert n in r.out
    # 8 score matrices of B*L*S = 32*1024*1024 float32 = 1 GiB against one of 128 MiB
    assert ("Splitting into 8 heads costs no FLOPs, but the heads hold 8x the attention-matrix memory "
            "(1.00 GiB against 128 MiB for one head); W_O adds 8.59 G (+14.3%).") in " ".join(r.out.split())
    assert r.err == ""


def test_json_schema_and_exact_integers(cli: Any) -> None:
    r = cli("flops", *SMALL, "--format", "json", "--dtype", "float16")
    assert r.code == 0 and r.err == ""
    doc = r.json()
    assert doc["schema"] == "attncli.flops/2"
    assert doc["config"]["dtype"] == "float16" and doc["config"]["batch"] == 2
    # NOTE: the table's order: the layer as configured, without W_O, one head, one head without W_O
    assert [(v["heads"], v["out_proj"]) for v in doc["variants"]] == [(4, True), (4, False), (1, True), (1, False)]
    v = doc["variants"][0]
    # Closed form, B=2 L=S=6 E=16: 4 projections of 2*6*16*16 plus QK^T and AV of 2*6*6*16.
    assert v["fvcore_flops"] == 4 * 2 * 6 * 16 * 16 + 2 * 2 * 6 * 6 * 16
    assert set(v["by_stage"]) == {"q_proj", "k_proj", "v_proj", "qk", "av", "out_proj"}
    assert v["memory"]["attention_matrix_bytes"] == 2 * 4 * 6 * 6 * 2
    assert doc["cross_checks"]["agree"] is True


def test_markdown(cli: Any) -> None:
    r = cli("flops", *SMALL, "--format", "markdown", "--impl", "torch", "--no-need-weights")
    assert r.code == 0
    assert r.out.startswith("### attncli flops: impl torch")
    assert "| variant | fvcore flops (MACs) |" in r.out
    assert "aten::scaled_dot_product_attention" in r.out  # where QK^T and AV were counted


def test_output_file(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "flops.json"
    r = cli("flops", *SMALL, "--format", "json", "--output", str(out))
    assert r.code == 0 and r.out == ""
    assert '"attncli.flops/2"' in out.read_text()


def test_check_passes_when_everything_agrees(cli: Any) -> None:
    r = cli("flops", *SMALL, "--impl", "per-head", "--mask", "padding", "--add-bias-kv", "--check",
            "--format", "json")
    assert r.code == 0 and r.err == "attncli: --check passed: fvcore, the closed form and FlopCounterMode agree\n"


def test_budgets_say_when_they_pass_and_fail_first(cli: Any) -> None:
    """A passed gate says so in one stderr line; a failed one is a CHECK FAILED line and the first
    rows of the table (the seed's 68,719,476,736 MACs of 8 heads with W_O against 1G)."""
    ok = cli("flops", "--max-flops", "100G", "--max-params", "2M")
    assert ok.code == 0 and ok.err == "attncli: checks passed: max-flops, max-params\n"
    bad = cli("flops", "--max-params", "2M", "--max-flops", "1G")
    assert bad.code == 1 and bad.err.startswith("attncli: CHECK FAILED: max-flops: 68,719,476,736 exceeds")
    lines = bad.out.splitlines()
    assert lines[0] == "checks: 1 of 2 FAILED" and lines[3].startswith("max-flops    FAIL")


def test_disagreement_is_loud_and_check_exits_1(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import attncli.layer.formulas as core

    real = core.closed_form
    monkeypatch.setattr(core, "closed_form", lambda spec: {**real(spec), "av": 0})
    r = cli("flops", *SMALL, "--format", "json")
    assert r.code == 0  # without --check: reported, not fatal
    assert "CROSS-CHECK DISAGREES" in r.err and "av: fvcore" in r.err
    assert r.json()["cross_checks"]["agree"] is False  # stdout is still pure JSON
    r = cli("flops", *SMALL, "--format", "json", "--check")
    assert r.code == 1


@pytest.mark.parametrize(("args", "flag"), [
    (("--dim", "512", "--heads", "7"), "--heads"),
    (("--impl", "fused", "--kdim", "8"), "--kdim"),
    (("--dtype", "float64"), "--dtype"),
    (("--seq", "0"), "--seq"),
])
def test_bad_input_exits_2_with_one_line(cli: Any, args: tuple[str, ...], flag: str) -> None:
    r = cli("flops", *args)
    assert r.code == 2
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and flag in lines[0], r.err
    assert r.out == ""


def test_help_documents_the_flags(cli: Any) -> None:
    r = cli("flops", "--help")
    assert r.code == 0
    for flag in ("--dtype", "--check", "--impl", "--format"):
        assert flag in r.out


def test_garbage_collector_is_restored(cli: Any) -> None:
    """The command pauses the cyclic GC while it counts (speed), never beyond its run."""
    import gc

    assert gc.isenabled()
    assert cli("flops", *SMALL, "--format", "json").code == 0
    assert gc.isenabled()
    assert cli("flops", *SMALL, "--dtype", "float64").code == 2  # fails in parsing
    assert cli("flops", "--seq", str(10**9)).code == 2           # fails inside the count
    assert gc.isenabled()


def test_bad_baseline_is_refused_before_counting(cli: Any, tmp_path: Path, monkeypatch: Any) -> None:
    """A malformed baseline or budget exits 2 at once, without the seconds a count takes."""
    import attncli.analyses.flops

    def no_count(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("counted before checking the inputs")

    monkeypatch.setattr(attncli.analyses.flops, "count_flops", no_count)
    bad = tmp_path / "b.json"
    bad.write_text('{"schema": "attncli.flops/1", "config": {}, "variants": [{"heads": "eight", "out_proj": true}]}')
    r = cli("flops", "--baseline", str(bad))
    assert r.code == 2 and r.err.startswith("attncli: error: --baseline:") and r.err.count("\n") == 1
    r = cli("flops", "--max-flops", "68,7G")
    assert r.code == 2 and r.err.startswith("attncli: error: --max-flops:")


@pytest.mark.parametrize(("args", "flag"), [
    (("--tolerance", "0.05"), "--tolerance"),        # no --baseline: nothing to compare
    (("--baseline-any-layer",), "--baseline-any-layer"),
])
def test_baseline_options_without_a_baseline_exit_2(cli: Any, args: tuple[str, ...], flag: str) -> None:
    r = cli("flops", *SMALL, *args)
    assert r.code == 2 and r.err.startswith(f"attncli: error: {flag}: applies to a --baseline comparison")


def test_a_tolerance_of_5_is_not_read_as_500_percent(cli: Any, tmp_path: Any) -> None:
    base = tmp_path / "b.json"
    base.write_text(cli("flops", *SMALL, "--format", "json").out)
    r = cli("flops", *SMALL, "--baseline", str(base), "--tolerance", "5")
    assert r.code == 2 and "--tolerance: 5 as a fraction is 500%" in r.err
    assert cli("flops", *SMALL, "--baseline", str(base), "--tolerance", "5%").code == 0
