"""Golden outputs for the human tables (fixed width 100, no colour), and the invariants that
keep them honest.

A change to what people see is a reviewed change: regenerate with
``bash scripts/test tests/test_golden.py --update-golden`` and read the diff. Updating writes
the files and skips the comparison (a file compared with itself proves nothing); the
invariants below still run on what was written, so a regenerated file cannot bless a wrong
number: every count a golden table shows is checked against the closed form, computed here
from B, L, S, E (fvcore MACs: projections B*L*E*E, QK^T and weights x V B*L*S'*E each,
seed ``002_*``'s 60,129,542,144 / 68,719,476,736 at B=32, L=1024, E=512), and the per-stage
rows must add up to the total.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

GOLDEN = Path(__file__).parent / "golden"

CASES: dict[str, list[str]] = {
    # NOTE: the default flops table is the answer on one screen (flops_brief); --verbose has every stage.
    "flops_brief": ["flops", "--dim", "512", "--heads", "8"],
    "flops_default": ["flops", "--dim", "512", "--heads", "8", "--verbose"],
    "flops_torch_sdpa_path": ["flops", "--impl", "torch", "--no-need-weights", "--seq", "256", "--verbose"],
    "permute_default": ["permute-test", "--verbose"],
    "permute_brief": ["permute-test"],
    # NOTE: Llama-3-8B's attention (published config.json: hidden 4096, 32 heads, 8 K/V heads, head_dim 128)
    # at an 8K causal prefill, with the roofline of an H100 SXM: the modern flags, effective counts, --gpu.
    "flops_modern_gpu": ["flops", "--dim", "4096", "--heads", "32", "--kv-heads", "8", "--head-dim", "128",
                         "--no-bias", "--seq", "8192", "--batch", "1", "--mask", "causal", "--impl", "sdpa",
                         "--gpu", "h100-sxm", "--verbose"],
    "sweep_heads": ["sweep", "--heads", "1,2,4,8,16", "--verbose"],
    "gpus": ["gpus"],
    "presets": ["presets"],
    "sweep_seq": ["sweep", "--seq", "128:1024:x2", "--verbose"],
    "sweep_brief": ["sweep", "--seq", "128:1024:x2"],
    "shapes_brief": ["shapes"],
    "shapes_default": ["shapes", "--verbose"],
    "shapes_cross_seq_first": ["shapes", "--dim", "64", "--heads", "4", "--batch", "2", "--seq", "6",
                               "--kv-seq", "9", "--kdim", "32", "--vdim", "48", "--no-batch-first",
                               "--add-bias-kv", "--per-head-weights", "--impl", "split", "--verbose"],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_table(name: str, cli: Any, tmp_path: Path, update_golden: bool) -> None:
    target = tmp_path / "out.txt"
    r = cli(*CASES[name], "--output", str(target))
    assert r.code == 0, r.err
    text = target.read_text()
    assert "\x1b[" not in text
    golden = GOLDEN / f"{name}.txt"
    if update_golden:
        golden.write_text(text)
        pytest.skip(f"--update-golden: rewrote {golden.name}; review the diff (not compared with itself)")
    assert golden.exists(), f"missing {golden}: run with --update-golden"
    assert text == golden.read_text()


# ---------------------------------------------------------------------------- invariants
def stages(b: int, n: int, s: int, e: int, out_proj: bool) -> dict[str, int]:
    """MACs per stage of standard attention (self-attention, no bias_kv / zero_attn: S' = S)."""
    return {"q proj (W_q)": b * n * e * e, "k proj (W_k)": b * s * e * e, "v proj (W_v)": b * s * e * e,
            "QK^T": b * n * s * e, "weights x V": b * n * s * e, "W_O": b * n * e * e if out_proj else 0}


FLOPS_SIZES = {"flops_default": (32, 1024, 1024, 512, 8), "flops_torch_sdpa_path": (32, 256, 256, 512, 8)}
"""(B, L, S, E, H) of each flops case: the command's defaults (B=32, E=512, H=8) and its flags."""

_VARIANT = re.compile(r"^(\d+) heads?( \+ W_O)?(?: \*)?\s+([\d,]{5,})\s", re.M)
"""A row of the variants table: ``8 heads + W_O *   68,719,476,736 ...`` (``*``: as configured)."""
_STAGE = re.compile(r"^\s*(q proj \(W_q\)|k proj \(W_k\)|v proj \(W_v\)|QK\^T|weights x V|W_O|total)\s+"
                    r"(?:[A-Za-z*'|]+\s+)?([\d,]+)\s", re.M)


def _int(text: str) -> int:
    return int(text.replace(",", ""))


@pytest.mark.parametrize("name", sorted(FLOPS_SIZES))
def test_golden_flops_numbers_are_the_closed_form(name: str) -> None:
    b, n, s, e, h = FLOPS_SIZES[name]
    text = (GOLDEN / f"{name}.txt").read_text()
    variants = [(int(heads), bool(w), _int(macs)) for heads, w, macs in _VARIANT.findall(text)]
    # the layer as configured first, then without W_O, one head, neither
    assert [(hh, o) for hh, o, _ in variants] == [(h, True), (h, False), (1, True), (1, False)]
    for _, out_proj, macs in variants:
        assert macs == sum(stages(b, n, s, e, out_proj).values())  # heads change nothing
    rows = dict(_STAGE.findall(text))
    want = stages(b, n, s, e, True)
    assert {k: _int(v) for k, v in rows.items() if k != "total"} == want
    assert _int(rows["total"]) == sum(want.values())  # the per-stage rows add up to the total


def test_golden_flops_default_is_the_seed() -> None:
    """Seed 002's fvcore numbers, independent of the closed form above."""
    text = (GOLDEN / "flops_default.txt").read_text()
    macs = {(int(hh), bool(w)): _int(m) for hh, w, m in _VARIANT.findall(text)}
    assert macs[(1, False)] == macs[(8, False)] == 60_129_542_144
    assert macs[(8, True)] == 68_719_476_736


_SUFFIX = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def test_golden_sweep_rows_are_the_closed_form() -> None:
    """sweep --seq 128:1024:x2 at B=1, E=512 (defaults): each row's stages and total, to 3 digits."""
    text = (GOLDEN / "sweep_seq.txt").read_text()
    rows = re.findall(r"^\s*(128|256|512|1024)\s+((?:[\d.]+(?: [KMGT])?\s+){7})", text, re.M)
    assert [int(v) for v, _ in rows] == [128, 256, 512, 1024]
    for value, cells in rows:
        shown = [float(n) * _SUFFIX[u] for n, u in re.findall(r"([\d.]+)(?: ([KMGT]))?", cells)]
        want = list(stages(1, int(value), int(value), 512, True).values())
        want.append(sum(want))
        for got, exact in zip(shown, want, strict=True):
            assert got == pytest.approx(exact, rel=5e-3), (value, shown, want)


def test_golden_sweep_exponents_are_the_closed_form() -> None:
    """d log / d log L: projections and W_O grow as L (1), QK^T and weights x V as L^2 (2), params not (0),
    the attention matrix (B*H*L*L scores) as L^2 (2)."""
    text = (GOLDEN / "sweep_seq.txt").read_text()
    assert re.search(r"^\s*1\.00\s+1\.00\s+1\.00\s+2\.00\s+2\.00\s+1\.00\s+[\d.]+\s+0\.00\s+2\.00\s*$", text,
                     re.M)


def test_golden_modern_flops_is_the_closed_form() -> None:
    """Llama-3-8B at B=1, L=S=8192, causal: q and W_O B*L*E*H*d = 8192*4096*4096, k and v
    B*L*E*G*d = 8192*4096*1024, QK^T dense B*H*L*S*d = 32*8192*8192*128; effective over the
    L*(L+1)/2 = 33,558,528 visible pairs per head: 32*128*33,558,528."""
    text = (GOLDEN / "flops_modern_gpu.txt").read_text()
    want = {"q proj (W_q)": (8192 * 4096 * 4096,) * 2, "k proj (W_k)": (8192 * 4096 * 1024,) * 2,
            "QK^T": (32 * 8192 * 8192 * 128, 32 * 128 * (8192 * 8193 // 2)), "W_O": (8192 * 4096 * 4096,) * 2}
    for stage, (dense, effective) in want.items():
        row = re.search(rf"^{re.escape(stage)}\s+\S+\s+([\d,]+)\s+([\d,]+)\s", text, re.M)
        assert row is not None, stage
        assert (_int(row.group(1)), _int(row.group(2))) == (dense, effective), stage
    assert re.search(r"^32 heads \+ W_O \*", text, re.M)  # the layer as configured, first and marked


def _bench_structure(text: str) -> str:
    """What a bench table looks like without its measured numbers: the header and each row's impl."""
    lines = text.splitlines()
    rule = next(i for i, line in enumerate(lines) if line.startswith("─"))
    rows = []
    for line in lines[rule + 1:]:
        if not re.match(r"^[\w-]+\*?\s{2,}\S*\d", line):
            break
        rows.append(line.split()[0])
    return "\n".join([lines[0].split(":")[0], " ".join(lines[rule - 1].split()), *rows]) + "\n"


def test_golden_bench_structure(cli: Any, tmp_path: Path, update_golden: bool) -> None:
    """bench is measured: only its structure is golden (title, columns, one row per implementation)."""
    target = tmp_path / "bench.txt"
    r = cli("bench", "--dim", "32", "--heads", "2", "--seq", "8", "--batch", "1", "--min-run-time", "0.01",
            "--threads", "1", "--output", str(target))
    assert r.code == 0, r.err
    text = _bench_structure(target.read_text())
    golden = GOLDEN / "bench_structure.txt"
    if update_golden:
        golden.write_text(text)
        pytest.skip("--update-golden: rewrote bench_structure.txt")
    assert text == golden.read_text()
