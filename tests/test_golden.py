"""Golden outputs for the human tables (fixed width 100, no colour).

A change to what people see is a reviewed change: regenerate with
``bash scripts/test tests/test_golden.py --update-golden`` and read the diff.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

GOLDEN = Path(__file__).parent / "golden"

CASES: dict[str, list[str]] = {
    "flops_default": ["flops", "--dim", "512", "--heads", "8"],
    "flops_torch_sdpa_path": ["flops", "--impl", "torch", "--no-need-weights", "--seq", "256"],
    "permute_default": ["permute-test"],
    "sweep_seq": ["sweep", "--seq", "128:1024:x2"],
    "shapes_default": ["shapes"],
    "shapes_cross_seq_first": ["shapes", "--dim", "64", "--heads", "4", "--batch", "2", "--seq", "6",
                               "--kv-seq", "9", "--kdim", "32", "--vdim", "48", "--no-batch-first",
                               "--add-bias-kv", "--per-head-weights", "--impl", "split"],
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
    assert golden.exists(), f"missing {golden}: run with --update-golden"
    assert text == golden.read_text()
