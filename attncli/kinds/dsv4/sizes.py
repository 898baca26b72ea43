"""The sizes of DeepSeek-V4's attention and its layer schedule, as transformers reads config.json.

``DeepseekV4Config.__post_init__`` (transformers 5.25 ``configuration_deepseek_v4.py``): an explicit
``layer_types`` wins, else the legacy per-layer ``compress_ratios`` (0 ``sliding_attention``, 4
``compressed_sparse_attention``, 128 ``heavily_compressed_attention``), else the V4-Pro default (two
HCA layers, then CSA/HCA alternating); the list is cut to ``num_hidden_layers`` (the published Flash
file lists 44 ratios for 43 layers: the last is the multi-token-prediction layer, not built). The
compression rates per type come from ``compress_rates`` (default 4 and 128, or the legacy
``compress_rate_csa``/``compress_rate_hca``); ``qk_rope_head_dim`` only sets the partial rotary
factor (RoPE moves no multiply-adds). Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from attncli.choices import MAX_SIZE
from attncli.spec import SpecError

SLIDING, CSA, HCA = "sliding_attention", "compressed_sparse_attention", "heavily_compressed_attention"
LAYER_TYPES: tuple[str, ...] = (SLIDING, CSA, HCA)
RATIO_TO_TYPE: dict[int, str] = {0: SLIDING, 4: CSA, 128: HCA}
"""``_COMPRESS_RATIO_TO_LAYER_TYPE`` of configuration_deepseek_v4.py: any other ratio is a KeyError there."""

DEFAULTS: dict[str, int] = {
    "hidden_size": 4096, "num_attention_heads": 64, "head_dim": 512, "q_lora_rank": 1024, "o_groups": 8,
    "o_lora_rank": 1024, "sliding_window": 128, "index_n_heads": 64, "index_head_dim": 128, "index_topk": 512,
    "num_hidden_layers": 43,
}
"""``DeepseekV4Config``'s dataclass defaults for a field the file leaves out."""


@dataclass(frozen=True)
class Dsv4Sizes:
    """One DeepSeek-V4 attention layer's sizes (every layer of a model shares them).

    E ``hidden_size``, H ``num_attention_heads``, D ``head_dim`` (the one K=V head; queries too),
    RQ ``q_lora_rank``, G ``o_groups``, OR ``o_lora_rank``, W ``sliding_window``, IH/ID/K the
    indexer's ``index_n_heads``/``index_head_dim``/``index_topk``, ``ratios`` the compression rate of
    each compressed layer type."""

    hidden: int
    heads: int
    head_dim: int
    q_lora_rank: int
    o_groups: int
    o_lora_rank: int
    window: int
    index_heads: int
    index_head_dim: int
    index_topk: int
    csa_ratio: int = 4
    hca_ratio: int = 128

    def ratio(self, layer_type: str) -> int:
        """The compression rate m of ``layer_type`` (0: sliding, nothing compressed)."""
        return {SLIDING: 0, CSA: self.csa_ratio, HCA: self.hca_ratio}[layer_type]


def _int(cfg: Mapping[str, Any], key: str, where: str) -> int:
    value = cfg.get(key, DEFAULTS.get(key))
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError("--config", f"{where}{key} must be a positive integer, got {value!r}"[:200])
    if value > MAX_SIZE:  # NOTE: 2**64 reached torch as a shape and overflowed (a traceback)
        raise SpecError("--config", f"{where}{key} is too large ({value} > {MAX_SIZE})"[:200])
    return value


def read_sizes(cfg: Mapping[str, Any], where: str = "") -> Dsv4Sizes:
    """The sizes of a ``deepseek_v4`` config.json (defaults as ``DeepseekV4Config``)."""
    rates = cfg.get("compress_rates") or {}
    if not isinstance(rates, Mapping):
        raise SpecError("--config", f"{where}compress_rates must be an object of layer type -> rate")
    csa = rates.get(CSA, cfg.get("compress_rate_csa", 4))
    hca = rates.get(HCA, cfg.get("compress_rate_hca", 128))
    for name, value in (("compress_rates." + CSA, csa), ("compress_rates." + HCA, hca)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1 or value > MAX_SIZE:
            raise SpecError("--config", f"{where}{name} must be a positive integer up to {MAX_SIZE}, "
                                        f"got {value!r}"[:200])
    sizes = Dsv4Sizes(
        hidden=_int(cfg, "hidden_size", where), heads=_int(cfg, "num_attention_heads", where),
        head_dim=_int(cfg, "head_dim", where), q_lora_rank=_int(cfg, "q_lora_rank", where),
        o_groups=_int(cfg, "o_groups", where), o_lora_rank=_int(cfg, "o_lora_rank", where),
        window=_int(cfg, "sliding_window", where), index_heads=_int(cfg, "index_n_heads", where),
        index_head_dim=_int(cfg, "index_head_dim", where), index_topk=_int(cfg, "index_topk", where),
        csa_ratio=csa, hca_ratio=hca)
    if (sizes.heads * sizes.head_dim) % sizes.o_groups:
        raise SpecError("--config", f"{where}o_groups {sizes.o_groups} does not divide num_attention_heads x "
                                    f"head_dim = {sizes.heads * sizes.head_dim} (the grouped output projection)")
    return sizes


def read_layer_types(cfg: Mapping[str, Any], where: str = "") -> list[str]:
    """Every layer's type, as ``DeepseekV4Config.__post_init__`` sets ``layer_types``."""
    n = _int(cfg, "num_hidden_layers", where)
    types = cfg.get("layer_types")
    if types is None and cfg.get("compress_ratios") is not None:
        ratios = cfg["compress_ratios"]
        if not isinstance(ratios, list) or len(ratios) < n:
            raise SpecError("--config", f"{where}compress_ratios must list a ratio for each of the {n} layers")
        bad = [i for i, r in enumerate(ratios[:n]) if r not in RATIO_TO_TYPE or isinstance(r, bool)]
        if bad:
            raise SpecError("--config", f"{where}compress_ratios[{bad[0]}] {ratios[bad[0]]!r} is not 0, 4 or 128 "
                                        "(the ratios transformers maps to a layer type)")
        types = [RATIO_TO_TYPE[r] for r in ratios[:n]]
    if types is None:  # the V4-Pro default: two HCA layers, then CSA and HCA alternating
        types = [HCA] * min(n, 2) + [CSA if i % 2 else HCA for i in range(max(n - 2, 0))]
    if not isinstance(types, list) or len(types) < n or any(t not in LAYER_TYPES for t in types[:n]):
        raise SpecError("--config", f"{where}layer_types must list one of {', '.join(LAYER_TYPES)} for each of "
                                    f"the {n} layers")
    return list(types[:n])
