"""Every command that takes a layer takes every kind through --config: Qwen3-Next's layer 0 (Gated
DeltaNet), DeepSeek-V3.2's (top-k sparse MLA) and Kimi Linear's (Kimi Delta Attention), from their published
config.json files."""

from __future__ import annotations

from typing import Any

import pytest

NEXT = "tests/data/configs/qwen3-next-80b-a3b"
V32 = "tests/data/configs/deepseek-v3.2"
KIMI = "tests/data/configs/kimi-linear-48b-a3b"


@pytest.mark.parametrize(("config", "kind"), [(NEXT, "gdn"), (V32, "sparse_mla"), (KIMI, "kda")])
@pytest.mark.parametrize("command", [
    ("flops", "--seq", "64", "--gpu", "h100-sxm"),
    ("shapes", "--seq", "8"),
    ("sweep", "--seq", "64,128"),
    ("report", "--seq", "32"),
])
def test_commands_take_the_kind(cli: Any, config: str, kind: str, command: tuple[str, ...]) -> None:
    r = cli(*command, "--config", config, "--batch", "1", "--format", "json")
    assert r.code == 0, r.err
    doc = r.json()
    cfg = doc["config"] if "config" in doc else doc["flops"]["config"]
    assert cfg["kind"] == kind


def test_sweep_of_a_linear_layer_grows_linearly_in_l(cli: Any) -> None:
    """Gated DeltaNet has no (query, key) pairs: every stage grows as L (chunked form, L a multiple of 64)."""
    r = cli("sweep", "--config", NEXT, "--batch", "1", "--seq", "1024,2048,4096", "--format", "json")
    assert r.code == 0, r.err
    exps = r.json()["exponents"]
    assert exps["in_proj_qkvz"] == exps["out_proj"] == 1.0
    assert 0.99 < exps["total"] < 1.01


def test_sweep_of_a_kda_layer_grows_linearly_in_l(cli: Any) -> None:
    """Kimi Delta Attention, chunked: every stage grows as L (L a multiple of 64); no pairs, effective = dense."""
    r = cli("sweep", "--config", KIMI, "--batch", "1", "--seq", "1024,2048,4096", "--format", "json")
    assert r.code == 0, r.err
    exps = r.json()["exponents"]
    assert exps["qkv_proj"] == exps["o_proj"] == exps["delta_inv"] == 1.0
    assert 0.99 < exps["total"] < 1.01
