"""Determinism: the same flags and --seed give byte-identical JSON, in this process and in a
fresh one (so nothing depends on the order tests ran in or on the process)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

RUNS: list[list[str]] = [
    ["shapes", "--seed", "3"],
    ["flops", "--seq", "128", "--impl", "torch", "--mask", "causal"],
    ["permute-test", "--seed", "7", "--dim", "8", "--heads", "2", "--seq", "5"],
    ["report", "--seq", "32", "--batch", "2"],
    ["sweep", "--seq", "16:64:x2"],
]


@pytest.mark.parametrize("args", RUNS, ids=lambda a: a[0])
def test_same_flags_same_bytes(cli: Any, args: list[str]) -> None:
    first = cli(*args, "--format", "json")
    second = cli(*args, "--format", "json")
    assert first.code == second.code and first.out == second.out
    fresh = subprocess.run([sys.executable, "-m", "attncli", *args, "--format", "json"],
                           capture_output=True, text=True)
    assert fresh.stdout == first.out


def test_seed_changes_permute_tokens(cli: Any) -> None:
    a = cli("permute-test", "--seed", "1", "--dim", "8", "--heads", "2", "--seq", "5", "--format", "json")
    b = cli("permute-test", "--seed", "2", "--dim", "8", "--heads", "2", "--seq", "5", "--format", "json")
    assert a.out != b.out
