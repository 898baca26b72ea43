"""``attncli sweep``: growth exponents from real counts, checked against the closed form."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from attncli.flops import closed_form
from attncli.spec import AttnSpec


def test_seq_sweep_exponents(cli: Any) -> None:
    r = cli("sweep", "--seq", "128:8192:x2", "--format", "json")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["schema"] == "attncli.sweep/1" and doc["setting"] == "seq"
    assert [p["value"] for p in doc["points"]] == [128, 256, 512, 1024, 2048, 4096, 8192]
    ex = doc["exponents"]
    # Closed form: QK^T and AV are B*L*S*E with S = L -> L^2; projections B*L*E*E -> L.
    assert ex["qk"] == pytest.approx(2.0) and ex["av"] == pytest.approx(2.0)
    for st in ("q_proj", "k_proj", "v_proj", "out_proj"):
        assert ex[st] == pytest.approx(1.0)
    assert ex["params"] == pytest.approx(0.0)
    for p in doc["points"]:
        want = closed_form(AttnSpec(dim=512, heads=8, batch=1, seq=p["value"]).validate())
        assert p["by_stage"] == want and p["fvcore_flops"] == sum(want.values())
        # (B, H, L, L) float32
        assert p["attn_matrix_bytes"] == 8 * p["value"] ** 2 * 4
    assert doc["cross_checks"]["agree"] is True


def test_heads_change_nothing(cli: Any) -> None:
    doc = cli("sweep", "--heads", "1,2,4,8", "--seq", "64", "--format", "json").json()
    assert all(v == pytest.approx(0.0) for k, v in doc["exponents"].items())
    assert len({p["fvcore_flops"] for p in doc["points"]}) == 1


def test_dim_sweep_markdown(cli: Any) -> None:
    r = cli("sweep", "--dim", "64:512:x2", "--heads", "4", "--seq", "32", "--format", "markdown")
    assert r.code == 0 and "#### Growth exponent" in r.out and "| 2.00 |" in r.out


def test_table_and_plot(cli: Any, tmp_path: Path) -> None:
    png = tmp_path / "sweep.png"
    r = cli("sweep", "--batch", "1:4", "--seq", "16", "--plot", str(png))
    assert r.code == 0, r.err
    assert "growth exponent" in r.out and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_says_how(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    r = cli("sweep", "--seq", "16,32", "--plot", str(tmp_path / "x.png"))
    assert r.code == 2 and "attncli[plot]" in r.err and "--plot" in r.err


@pytest.mark.parametrize(("args", "flag"), [
    (["--seq", "16"], "--seq"),
    (["--seq", "1:8", "--heads", "1:8"], "--seq"),
    (["--seq", "8:2"], "--seq"),
    (["--heads", "3,8"], "--heads"),
    (["--seq", "16,32", "--dtype", "int8"], "--dtype"),
])
def test_bad_sweeps(cli: Any, args: list[str], flag: str) -> None:
    r = cli("sweep", *args)
    assert r.code == 2 and flag in r.err and len(r.err.strip().splitlines()) == 1, r.err


def test_plot_path_is_checked_before_counting(cli: Any, tmp_path: Path) -> None:
    bad_suffix = cli("sweep", "--seq", "2,4", "--dim", "8", "--plot", str(tmp_path / "out.txt"))
    assert bad_suffix.code == 2 and "--plot" in bad_suffix.err and bad_suffix.out == ""
    no_dir = cli("sweep", "--seq", "2,4", "--dim", "8", "--plot", str(tmp_path / "missing" / "x.png"))
    assert no_dir.code == 2 and "does not exist" in no_dir.err


def test_default_sweep_and_other_settings(cli: Any) -> None:
    doc = cli("sweep", "--format", "json").json()
    assert doc["setting"] == "seq" and doc["points"][0]["value"] == 128
    doc = cli("sweep", "--dim", "64:256:x2", "--heads", "4", "--format", "json").json()
    assert doc["setting"] == "dim" and doc["config"]["seq"] == 1024
    # Closed form: projections B*L*E*E grow as E^2, QK^T B*L*L*E as E.
    assert doc["exponents"]["q_proj"] == pytest.approx(2.0) and doc["exponents"]["qk"] == pytest.approx(1.0)
