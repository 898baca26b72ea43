"""GLM-MoE-DSA (GLM-5, ``glm_moe_dsa``): which layers run their own lightning indexer.

transformers' ``GlmMoeDsaAttention`` is DeepSeek-V3.2's (:mod:`attncli.kinds.sparse_mla.kind`: MLA with the
lightning indexer; the indexer rotates its RoPE part interleaved where DeepSeek-V3.2 splits it in halves,
elementwise either way) with one addition: a layer whose ``config.indexer_types`` entry is ``"shared"``
builds no indexer and reuses the top-k of the last ``"full"`` layer before it. attncli's sparse MLA
layer always runs its own indexer, so a config with a shared layer is refused, naming the field that made it
shared. :func:`indexer_types` resolves the list as ``GlmMoeDsaConfig.__post_init__``
(configuration_glm_moe_dsa.py) does: ``indexer_types`` if set; else ``index_topk_pattern`` (a string of
``F``/``S`` or a list); else layer i is full when ``max(i - offset + 1, 0) % freq == 0`` with ``freq =
max(index_topk_freq, 1)`` (default 1: every layer full) and ``offset = index_skip_topk_offset`` (default 2).
Nothing here imports torch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from attncli.models.schedule import LAYER_COUNT_KEYS, _layer_count
from attncli.spec import SpecError

FIELDS: tuple[str, ...] = ("indexer_types", "index_topk_pattern", "index_topk_freq", "index_skip_topk_offset")
"""The fields GlmMoeDsaConfig derives each layer's indexer from."""
SHARED = ("a shared indexer: the layer reuses the top-k of the last layer with an indexer (GlmMoeDsaAttention "
          "skip_topk)")


def _shown(value: Any) -> str:
    return json.dumps(value)[:40]


def _refuse(what: str) -> SpecError:
    return SpecError("--config", f"{what} ({SHARED}) is not modelled; attncli would count a different layer")


def _int(cfg: Mapping[str, Any], key: str, where: str, default: int) -> int:
    value = cfg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError("--config", f"{where}{key} must be an integer, got {_shown(value)}")
    return value


def indexer_types(cfg: Mapping[str, Any], where: str) -> tuple[list[str], str]:
    """Each layer's indexer (``full`` or ``shared``) and the field it came from."""
    # NOTE: GlmMoeDsaConfig's num_hidden_layers is 78 when the file leaves it out (a layer's config may)
    n = _layer_count(cfg, where) if any(cfg.get(k) is not None for k in LAYER_COUNT_KEYS) else 78
    declared = cfg.get("indexer_types")
    if declared is not None:
        if not isinstance(declared, list) or not all(isinstance(t, str) for t in declared):
            raise SpecError("--config", f"{where}indexer_types must be a list of strings")
        if len(declared) != n:
            raise SpecError("--config", f"{where}indexer_types has {len(declared)} entries for {n} layers")
        return list(declared), "indexer_types"
    pattern = cfg.get("index_topk_pattern")
    if pattern is not None:
        letters = {"F": "full", "S": "shared"}
        if isinstance(pattern, str) and all(c in letters for c in pattern):
            types = [letters[c] for c in pattern]
        elif isinstance(pattern, list) and all(isinstance(t, str) for t in pattern):
            types = list(pattern)
        else:
            raise SpecError("--config", f"{where}index_topk_pattern must be a string of F and S or a list of "
                                        f"strings, got {_shown(pattern)}")
        if len(types) < n:
            raise SpecError("--config", f"{where}index_topk_pattern has {len(types)} entries for {n} layers")
        return types, "index_topk_pattern"
    freq = max(_int(cfg, "index_topk_freq", where, 1), 1)
    offset = _int(cfg, "index_skip_topk_offset", where, 2)
    return ["full" if max(i - offset + 1, 0) % freq == 0 else "shared" for i in range(n)], "index_topk_freq"


def check_indexers(cfg: Mapping[str, Any], where: str) -> None:
    """Refuse a GLM-MoE-DSA config in which a layer shares another layer's indexer (or names an indexer
    type transformers does not know), naming the field that says so."""
    types, field = indexer_types(cfg, where)
    bad = next((i for i, t in enumerate(types) if t != "full"), None)
    if bad is None:
        return
    if field == "index_topk_freq":
        freq, offset = cfg.get("index_topk_freq"), cfg.get("index_skip_topk_offset", 2)
        raise _refuse(f"{where}index_topk_freq {freq} (with index_skip_topk_offset {offset}: layer {bad} shared)")
    if types[bad] != "shared":
        raise SpecError("--config", f"{where}{field}[{bad}] {_shown(types[bad])} is not an indexer type "
                                    "transformers' GlmMoeDsaConfig knows (full, shared)")
    raise _refuse(f"{where}{field}[{bad}] \"shared\"")
