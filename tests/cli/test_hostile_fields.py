"""Hostile config.json fields the subprocess fuzz found answered instead of refused (issue 32): each is
one line naming the field, exit 2. The values come from tests/hostile/families.py's attacks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).resolve().parents[1] / "data" / "configs"


def _config(tmp_path: Path, model: str, **change: Any) -> str:
    cfg = json.loads((DATA / model / "config.json").read_text())
    (cfg["text_config"] if isinstance(cfg.get("text_config"), dict) else cfg).update(change)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))  # NOTE: json writes NaN and Infinity bare, as a hostile file may
    return str(path)


@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf"), "131072", True, 1.5, [131072], {"n": 1}])
def test_max_position_embeddings_that_is_no_positive_integer_is_refused(cli: Any, tmp_path: Path, value: Any) -> None:
    """``model`` reads it (the engine's default max_model_len, the warning past it); a NaN or "131072" was
    taken as absent, and the engine sized its cache for the context S instead, saying the config had none."""
    r = cli("model", _config(tmp_path, "llama-3.1-8b", max_position_embeddings=value), "-f", "json")
    assert r.code == 2, r.out[:200]
    assert r.err.count("\n") == 1 and r.err.startswith("attncli: error: MODEL: "), r.err
    assert "max_position_embeddings must be a positive integer" in r.err


@pytest.mark.parametrize(("model", "field"), [
    ("deepseek-v3.2", "index_topk"), ("deepseek-v3.2", "index_head_dim"), ("deepseek-v4-flash", "index_topk"),
    ("deepseek-v4-flash", "o_groups"), ("qwen3-next-80b-a3b", "linear_conv_kernel_dim"),
    # NOTE: the 2026 families' own readers (a Mamba2 conv of 2**64 was a traceback; a Gemma 4 global head of
    # 2**64 was refused naming --head-dim, a flag nobody typed)
    ("nemotron-3-nano-30b-a3b", "conv_kernel"), ("nemotron-3-nano-30b-a3b", "mamba_num_heads"),
    ("nemotron-3-nano-30b-a3b", "ssm_state_size"), ("gemma-4-31b-it", "global_head_dim"),
])
@pytest.mark.parametrize("command", ["model", "flops"])
def test_a_size_past_the_largest_accepted_is_refused(cli: Any, tmp_path: Path, model: str, field: str,
                                                     command: str) -> None:
    """2**64 reached torch as a shape or a top-k and overflowed: a traceback (OverflowError, 'Overflow when
    unpacking long long'). Every size read from a file is at most 2**31 - 1 (attncli.choices.MAX_SIZE)."""
    path = _config(tmp_path, model, **{field: 2**64})
    r = cli(command, path, "-f", "json") if command == "model" else cli(command, "--config", path, "-f", "json")
    assert r.code == 2, r.out[:200]
    assert r.err.count("\n") == 1 and f"{field}" in r.err and "too large" in r.err, r.err
