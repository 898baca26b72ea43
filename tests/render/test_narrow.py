"""Numbers are never ellipsized: below 80 columns a table keeps its numbers whole (labels wrap,
heads wrap at spaces) instead of cutting ``1.65 T`` to ``1.6…``."""

from __future__ import annotations

import re
from typing import Any

import pytest

COMMANDS: dict[str, list[str]] = {
    "flops": ["flops", "--dim", "512", "--heads", "8"],
    "flops_gpu": ["flops", "--preset", "llama-3-8b", "--gpu", "h100-sxm", "--mask", "causal"],
    "sweep": ["sweep", "--seq", "128:1024:x2"],
    "model": ["model", "--preset", "gemma-2-9b"],
    "report": ["report"],
    "shapes": ["shapes"],
    "gpus": ["gpus"],
    "permute": ["permute-test"],
}
CELL = re.compile(r"\S+(?: \S+)*")
"""A cell of a plain table: words joined by single spaces (columns are two or more apart)."""


def cut_numbers(text: str) -> list[str]:
    """Every cell holding a digit that ends with an ellipsis (``…`` or ``...``)."""
    return [cell for line in text.splitlines() for cell in CELL.findall(line)
            if any(c.isdigit() for c in cell) and (cell.endswith("…") or cell.endswith("..."))]


@pytest.mark.parametrize("width", [50, 60, 70])
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_no_number_is_ellipsized(name: str, width: int, cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    r = cli(*COMMANDS[name])
    assert r.code == 0, r.err
    assert cut_numbers(r.out) == []
    # NOTE: a datasheet URL stays whole on its own line, past the width (a folded URL is two wrong ones)
    assert max(len(line) for line in r.out.splitlines() if "://" not in line) <= width


@pytest.mark.parametrize("width", [60, 70])
def test_flops_numbers_stay_whole(width: int, cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """B=32, L=S=1024, E=512, H=8 with W_O: 4*B*L*E*E + 2*B*L*S*E = 68,719,476,736 MACs ('68.7 G'),
    FLOPs twice that ('137 G'), forward + backward 3 x FLOPs ('412 G')."""
    monkeypatch.setenv("COLUMNS", str(width))
    b, n, e = 32, 1024, 512
    assert 4 * b * n * e * e + 2 * b * n * n * e == 68_719_476_736
    row = next(line for line in cli(*COMMANDS["flops"]).out.splitlines() if line.startswith("8 heads + W_O"))
    assert re.search(r"\s(68,719,476,736|68\.7 G)\s+137 G\s+412 G\s", row), row


def test_the_detector_sees_an_ellipsis() -> None:
    assert cut_numbers("8 heads + W_O *   68.7 G   137 G   1.05…") == ["1.05…"]
    assert cut_numbers("rope   0.158   0.6...   no") == ["0.6..."]
    assert cut_numbers("--verbose: stages, uncounted ops...") == []


@pytest.mark.parametrize("width", [50, 60])
def test_a_narrow_terminal_drops_optional_columns_before_folding_numbers(width: int) -> None:
    """At 50-60 columns sweep leaves out per-stage columns and gpus its tf32/float8/memory columns,
    says which, and every number that stays is whole on its line (no digit folded onto the next)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "COLUMNS": str(width)}
    for args, dropped in ((["sweep", "--seq", "128:8192:x2"], "W_O"), (["gpus"], "float8")):
        out = subprocess.run([sys.executable, "-m", "attncli", *args], capture_output=True, text=True, env=env,
                             timeout=120).stdout
        assert "narrow terminal:" in " ".join(out.split()) and dropped in out
        for line in out.splitlines():  # a folded number leaves a line of lone units ("   M    M")
            assert not line.strip() or not re.fullmatch(r"[\sMGTK]+", line), line
