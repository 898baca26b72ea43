"""Hostile config.json files per model family and field, for the subprocess fuzz.

:data:`FAMILIES` is the table: a family's name -> its well-formed config (a published one under
tests/data/configs) and the fields to attack, each with an attack generator (:data:`SIZE`, :data:`RATIOS`,
:data:`LAYER_TYPES`...). Each (family, field, attack value) becomes one config.json. A new family
is one line here, e.g. ``"gemma4": Family("gemma-4-31b-it", {"global_head_dim": SIZE, ...})``;
a field its reader does not read yet is a placeholder: the guard must refuse it (exit 2, one line).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "configs"

Attack = Callable[[dict[str, Any], str], Iterator[tuple[str, Any]]]
"""(the config's text part, the field) -> (a short name, the hostile value) pairs."""

NAN, INF = float("nan"), float("inf")


def SIZE(cfg: dict[str, Any], field: str) -> Iterator[tuple[str, Any]]:
    """A size read as an int: 0, negative, overflowing, NaN/Infinity (json writes them bare), wrong types."""
    yield from [("zero", 0), ("neg", -1), ("huge", 2**64), ("e30", 10**30), ("nan", NAN), ("inf", INF),
                ("neginf", -INF), ("float", 1.5), ("str", "64"), ("null", None), ("list", [64]), ("bool", True),
                ("digits", int("9" * 400))]


def RATIOS(cfg: dict[str, Any], field: str) -> Iterator[tuple[str, Any]]:
    """A per-layer list of ratios (DeepSeek-V4's compress_ratios): 0, negative, huge, wrong length, wrong types."""
    good = list(cfg.get(field) or [4] * int(cfg.get("num_hidden_layers", 4)))
    n = len(good)
    yield from [("all_zero", [0] * n), ("neg", [-4] * n), ("huge", [2**40] * n), ("one_huge", [*good[:-1], 2**63]),
                ("short", good[:-1]), ("long", [*good, 4]), ("empty", []), ("nan", [NAN] * n), ("inf", [INF] * n),
                ("float", [4.5] * n), ("str", ["4"] * n), ("scalar", 4), ("null_items", [None] * n),
                ("million", [4] * 1_000_000)]


def LAYER_TYPES(cfg: dict[str, Any], field: str) -> Iterator[tuple[str, Any]]:
    """A per-layer list of names (layer_types): wrong length, wrong alphabet, wrong types."""
    good = list(cfg.get(field) or ["full_attention"] * int(cfg.get("num_hidden_layers", 4)))
    n = len(good)
    yield from [("short", good[:-1]), ("long", [*good, good[0]]), ("empty", []), ("alphabet", ["warp"] * n),
                ("case", [t.upper() for t in good]), ("one_bad", [*good[:-1], "linear_attention_v9"]),
                ("ints", list(range(n))), ("null_items", [None] * n), ("string", "full_attention"),
                ("dict", {"0": "full_attention"}), ("million", ["full_attention"] * 1_000_000)]


def INDEX_LIST(cfg: dict[str, Any], field: str) -> Iterator[tuple[str, Any]]:
    """A list of layer indices (0- or 1-based): out of range, negative, repeated, wrong types."""
    n = int(cfg.get("num_hidden_layers", 4))
    yield from [("past_end", [n]), ("far", [10**12]), ("neg", [-1]), ("repeat", [0, 0, 0]), ("all", list(range(n + 5))),
                ("floats", [0.5]), ("str", ["1"]), ("scalar", 3), ("nan", [NAN])]


def FLAGS(cfg: dict[str, Any], field: str) -> Iterator[tuple[str, Any]]:
    """A per-layer list of 0/1 switches (no_rope_layers): wrong length, values other than 0 and 1, wrong types."""
    good = list(cfg.get(field) or [1] * int(cfg.get("num_hidden_layers", 4)))
    n = len(good)
    yield from [("short", good[:-1]), ("long", [*good, 1]), ("twos", [2] * n), ("neg", [-1] * n), ("nan", [NAN] * n),
                ("str", ["1"] * n), ("scalar", 1)]


def SHARED_FROM(cfg: dict[str, Any], field: str) -> Iterator[tuple[str, Any]]:
    """Cross-layer sharing (a layer reads another layer's KV cache, e.g. Gemma 3n's num_kv_shared_layers or a
    per-layer source list): pointing at itself, forward, before layer 0, past the end, more than every layer."""
    n = int(cfg.get("num_hidden_layers", 4))
    yield from [("self", list(range(n))), ("forward", [min(i + 1, n - 1) for i in range(n)]), ("neg", [-1] * n),
                ("past_end", [n] * n), ("all", n), ("more", n + 1), ("huge", 2**63), ("nan", NAN), ("str", "2")]


def WINDOW(cfg: dict[str, Any], field: str) -> Iterator[tuple[str, Any]]:
    """A window or interval: 0, negative, past the context, NaN, wrong types."""
    yield from [("zero", 0), ("neg", -128), ("one", 1), ("huge", 2**62), ("nan", NAN), ("inf", INF), ("str", "4096"),
                ("list", [4096])]


def FRACTION(cfg: dict[str, Any], field: str) -> Iterator[tuple[str, Any]]:
    """A fraction (partial_rotary_factor): 0, negative, over 1, NaN."""
    yield from [("zero", 0.0), ("neg", -0.5), ("over", 1.5), ("nan", NAN), ("inf", INF), ("str", "0.5")]


@dataclass(frozen=True)
class Family:
    base: str
    """The folder under tests/data/configs holding the published config.json."""
    fields: dict[str, Attack]
    """Field -> attack; read from ``text_config`` when the config has one."""


FAMILIES: dict[str, Family] = {
    "llama": Family("llama-3.1-8b", {"hidden_size": SIZE, "num_attention_heads": SIZE, "num_key_value_heads": SIZE,
                                     "head_dim": SIZE, "num_hidden_layers": SIZE, "max_position_embeddings": SIZE}),
    "mistral": Family("mistral-7b-v0.1", {"sliding_window": WINDOW}),
    "gemma3": Family("gemma-3-27b", {"sliding_window": WINDOW, "layer_types": LAYER_TYPES, "head_dim": SIZE,
                                     "query_pre_attn_scalar": SIZE,
                                     # NOTE: placeholders for Gemma 4 / 3n: not read by gemma3, so refused
                                     "global_head_dim": SIZE, "num_kv_shared_layers": SHARED_FROM}),
    "gpt_oss": Family("gpt-oss-20b", {"layer_types": LAYER_TYPES, "sliding_window": WINDOW}),
    "deepseek_v3": Family("deepseek-v3", {"kv_lora_rank": SIZE, "qk_rope_head_dim": SIZE, "qk_nope_head_dim": SIZE,
                                          "v_head_dim": SIZE, "q_lora_rank": SIZE}),
    "deepseek_v32": Family("deepseek-v3.2", {"index_topk": SIZE, "index_n_heads": SIZE, "index_head_dim": SIZE}),
    "deepseek_v4": Family("deepseek-v4-flash", {"compress_ratios": RATIOS, "sliding_window": WINDOW,
                                                "head_dim": SIZE, "o_groups": SIZE, "index_topk": SIZE,
                                                "layer_types": LAYER_TYPES}),
    "qwen3_next": Family("qwen3-next-80b-a3b", {"full_attention_interval": WINDOW, "linear_num_key_heads": SIZE,
                                                "linear_key_head_dim": SIZE, "linear_num_value_heads": SIZE,
                                                "linear_conv_kernel_dim": SIZE, "partial_rotary_factor": FRACTION,
                                                "layer_types": LAYER_TYPES, "mlp_only_layers": INDEX_LIST}),
    "llama4": Family("llama-4-scout", {"no_rope_layers": FLAGS, "attention_chunk_size": WINDOW}),
    # NOTE: the 2026 families, one line each (their layout, per-layer-type sizes and sharing fields)
    "gemma4": Family("gemma-4-31b-it", {"global_head_dim": SIZE, "num_global_key_value_heads": SIZE,
                                        "layer_types": LAYER_TYPES, "sliding_window": WINDOW,
                                        "num_kv_shared_layers": SHARED_FROM}),
    "gemma3n": Family("gemma-3n-e4b", {"num_kv_shared_layers": SHARED_FROM, "layer_types": LAYER_TYPES,
                                       "sliding_window": WINDOW}),
    "mimo_v2_flash": Family("mimo-v2-flash", {"hybrid_layer_pattern": FLAGS, "swa_num_key_value_heads": SIZE,
                                              "swa_head_dim": SIZE, "sliding_window_size": WINDOW}),
    "qwen3_5": Family("qwen3.5-27b", {"linear_num_key_heads": SIZE, "full_attention_interval": WINDOW,
                                      "layer_types": LAYER_TYPES}),
    "glm_moe_dsa": Family("glm-5", {"index_topk": SIZE, "index_n_heads": SIZE, "indexer_types": LAYER_TYPES,
                                    "index_topk_freq": WINDOW}),
    "nemotron_h": Family("nemotron-3-nano-30b-a3b", {"mamba_num_heads": SIZE, "ssm_state_size": SIZE,
                                                     "n_groups": SIZE, "conv_kernel": SIZE}),
    "kimi_linear": Family("kimi-linear-48b-a3b", {"kv_lora_rank": SIZE, "num_hidden_layers": SIZE}),
}


def _text(cfg: dict[str, Any]) -> dict[str, Any]:
    inner = cfg.get("text_config")
    return inner if isinstance(inner, dict) else cfg


def family_configs() -> Iterator[tuple[str, bytes]]:
    """(name, config.json bytes) for every (family, field, attack) of :data:`FAMILIES`."""
    for family, spec in FAMILIES.items():
        base = json.loads((DATA / spec.base / "config.json").read_text())
        for field, attack in spec.fields.items():
            for label, value in attack(_text(base), field):
                cfg = json.loads(json.dumps(base))
                _text(cfg)[field] = value
                yield f"{family}.{field}.{label}", json.dumps(cfg).encode()


def write(folder: Path) -> list[str]:
    """Write every family config under ``folder`` (one folder each, holding config.json); their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in family_configs():
        p = folder / f"{name}.json"
        p.write_bytes(data)
        paths.append(str(p))
    return paths
