"""Determinism: the same flags and --seed give byte-identical JSON, in this process and in a
fresh one (so nothing depends on the order tests ran in or on the process); and --seed is
really used: other seeds give other numbers wherever the seed matters (compared without the
``config`` object, which echoes the seed and would make any two seeds look different)."""

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


def _without_config(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "config"}


PERMUTE = ["permute-test", "--dim", "8", "--heads", "2", "--seq", "5", "--permutation", "0,2,1,4,3",
           "--format", "json"]


def test_seed_changes_the_measured_numbers(cli: Any) -> None:
    """Seeds 1 and 2 give other weights and tokens, so every encoding moves outputs by another amount."""
    a, b = (cli(*PERMUTE, "--seed", seed).json() for seed in ("1", "2"))
    assert a["permutation"] == b["permutation"] == [0, 2, 1, 4, 3]  # fixed: only the seed differs
    diffs_a = [c["max_abs_diff"] for c in a["cases"][1:]]
    diffs_b = [c["max_abs_diff"] for c in b["cases"][1:]]
    assert diffs_a and all(x != y for x, y in zip(diffs_a, diffs_b, strict=True))
    assert _without_config(a) != _without_config(b)


def test_seed_changes_the_weights_alone(cli: Any) -> None:
    """The same given tokens under two seeds: only the layer's weights differ, and so do the outputs."""
    tokens = ";".join(",".join(str(i * 8 + j) for j in range(8)) for i in range(5))
    a, b = (cli(*PERMUTE, "--tokens", tokens, "--seed", seed).json() for seed in ("1", "2"))
    assert [c["max_abs_diff"] for c in a["cases"][1:]] != [c["max_abs_diff"] for c in b["cases"][1:]]


def test_seed_changes_the_default_permutation(cli: Any) -> None:
    """Without --permutation the order of more than three tokens is drawn from --seed."""
    a, b = (cli("permute-test", "--dim", "8", "--heads", "2", "--seq", "6", "--seed", seed,
                "--format", "json").json()["permutation"] for seed in ("1", "2"))
    assert a != b and sorted(a) == sorted(b) == list(range(6))
