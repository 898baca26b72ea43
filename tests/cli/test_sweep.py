"""``attncli sweep``: growth exponents from real counts, checked against the closed form."""

from __future__ import annotations

import itertools
import math
import sys
from pathlib import Path
from typing import Any

import pytest

from attncli.analyses.flops import closed_form
from attncli.spec import AttnSpec


def test_seq_sweep_exponents(cli: Any) -> None:
    r = cli("sweep", "--seq", "128:8192:x2", "--format", "json")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["schema"] == "attncli.sweep/2" and doc["setting"] == "seq"
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


def _window_pairs(n: int, w: int) -> int:
    """Causal sliding window w, self-attention, n queries: query i sees min(i + 1, w) keys, so
    sum_i min(i + 1, w) = n(n + 1)/2 for n <= w, else w(w + 1)/2 + (n - w) w visible pairs."""
    return n * (n + 1) // 2 if n <= w else w * (w + 1) // 2 + (n - w) * w


def test_windowed_seq_sweep_local_exponents_tend_to_one(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """--window 128 over L = 64..1024, B = 1, E = H*d = 64: the effective QK^T is E * pairs MACs,
    and its local exponent log(pairs(b) / pairs(a)) / log(b / a) falls from ~2 (L <= W) towards 1;
    the dense QK^T's stays 2 (B*H*L*L*d)."""
    seqs = [64, 128, 256, 512, 1024]
    r = cli("sweep", "--seq", "64:1024:x2", "--window", "128", "--dim", "64", "--heads", "2", "--impl", "sdpa",
            "--format", "json")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["masked"] is True
    assert [p["effective"]["by_stage"]["qk"] for p in doc["points"]] == [64 * _window_pairs(n, 128) for n in seqs]
    steps = doc["local_exponents"]
    assert [(s["from"], s["to"]) for s in steps] == list(itertools.pairwise(seqs))
    want = [math.log2(_window_pairs(b, 128) / _window_pairs(a, 128)) for a, b in itertools.pairwise(seqs)]
    assert [s["effective_qk"] for s in steps] == pytest.approx(want, abs=1e-4)  # 1.99, 1.58, 1.22, 1.10
    assert all(s["qk"] == pytest.approx(2.0) for s in steps)
    monkeypatch.setenv("COLUMNS", "80")
    table = cli("sweep", "--seq", "64:1024:x2", "--window", "128", "--dim", "64", "--heads", "2", "--impl", "sdpa",
                "--verbose")
    assert table.code == 0 and "effective MACs" in table.out and "1.58" in table.out
    assert max(len(line) for line in table.out.splitlines()) <= 80


def test_head_dim_sweep_is_named_by_its_flag(cli: Any) -> None:
    doc = cli("sweep", "--head-dim", "32,64", "--impl", "split", "--seq", "16", "--format", "json").json()
    assert doc["setting"] == "head_dim" and doc["config"]["swept"] == "head_dim"
    r = cli("sweep", "--head-dim", "32,64", "--impl", "split", "--seq", "16")
    assert r.out.startswith("attncli sweep --head-dim:") and "d_head" not in r.out
