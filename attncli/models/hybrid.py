"""The schedules of models that lay out their layers with fields of their own: the Mamba2 hybrids (which
layers are Mamba2, attention, or blocks with no token mixer), Kimi Linear (:func:`kimi_linear_schedule`) and
DeepSeek-V4 (:func:`dsv4_schedule`).

Nemotron-H / Nemotron-3 (``nemotron_h``, transformers 5.25 ``configuration_nemotron_h.py``):
``layers_block_type`` (``layer_types`` is its alias; legacy ``mamba``/``attention`` are remapped by
``remap_legacy_layer_types``), else ``hybrid_override_pattern`` ('M' Mamba2 -> ``linear_attention``, '*'
attention -> ``full_attention``, '-' MLP -> ``mlp``, 'E' MoE -> ``moe``: ``_pattern_to_list``), else the
class's default ``["linear_attention", "moe", "full_attention", "mlp"]``. ``NemotronHBlock`` builds each
layer's mixer from its type (``MIXER_TYPES``); ``NemotronHAttention`` has no RoPE and one causal mask
(``create_causal_mask``), so attention layers are full and NoPE. transformers takes the depth from the
list and only warns when ``num_hidden_layers`` disagrees; attncli refuses the disagreement, naming the
field, as it refuses a character or a type outside the alphabet. Nothing here imports torch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from attncli.models.schedule import (
    FULL,
    LAYER_COUNT_KEYS,
    LINEAR,
    MAX_LAYERS,
    MLP_BLOCK,
    MOE_BLOCK,
    LayerInfo,
    Schedule,
    _layer_count,
)
from attncli.spec import SpecError

PATTERN: dict[str, str] = {"M": LINEAR, "*": FULL, "-": MLP_BLOCK, "E": MOE_BLOCK}
"""``NemotronHConfig._pattern_to_list``."""
BLOCK_TYPES: dict[str, str] = {LINEAR: LINEAR, FULL: FULL, MLP_BLOCK: MLP_BLOCK, MOE_BLOCK: MOE_BLOCK,
                               "mamba": LINEAR, "attention": FULL}
"""``layers_block_type`` values NemotronHConfig accepts (``validate_layer_type``), legacy names remapped."""
DEFAULT_BLOCKS = [LINEAR, MOE_BLOCK, FULL, MLP_BLOCK]
"""``NemotronHConfig.__post_init__``'s default when the file gives neither list nor pattern."""


def _shown(value: Any) -> str:
    return json.dumps(value)[:40]


def nemotron_h_types(cfg: Mapping[str, Any], where: str) -> tuple[list[str], str]:
    """Each layer's type as transformers' NemotronHConfig reads it, and which field gave it."""
    for key in ("layers_block_type", "layer_types"):
        raw = cfg.get(key)
        if raw is None:
            continue
        if not isinstance(raw, list) or not raw or len(raw) > MAX_LAYERS:
            raise SpecError("--config", f"{where}{key} must be a non-empty list of layer types, got {_shown(raw)}")
        for i, t in enumerate(raw):
            if not isinstance(t, str) or t not in BLOCK_TYPES:
                raise SpecError("--config", f"{where}{key}[{i}] {_shown(t)} is not a Nemotron-H block type "
                                            f"({', '.join(BLOCK_TYPES)})")
        return [BLOCK_TYPES[t] for t in raw], f"config.json:{where}{key}"
    pattern = cfg.get("hybrid_override_pattern")
    if pattern is None:
        return list(DEFAULT_BLOCKS), "family default: nemotron_h (NemotronHConfig: M, E, *, -)"
    if not isinstance(pattern, str) or not pattern or len(pattern) > MAX_LAYERS:
        raise SpecError("--config", f"{where}hybrid_override_pattern must be a non-empty string of M, *, - and E, "
                                    f"got {_shown(pattern)}")
    for i, ch in enumerate(pattern):
        if ch not in PATTERN:
            raise SpecError("--config", f"{where}hybrid_override_pattern[{i}] {_shown(ch)} is not M (Mamba2), * "
                                        "(attention), - (MLP) or E (MoE)")
    return [PATTERN[ch] for ch in pattern], f"config.json:{where}hybrid_override_pattern"


def nemotron_h_schedule(cfg: Mapping[str, Any], where: str) -> Schedule:
    """The schedule of a ``nemotron_h`` config (module docstring)."""
    types, source = nemotron_h_types(cfg, where)
    depth = cfg.get("num_hidden_layers")
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth != len(types)):
        field = source.rsplit(":", 1)[-1] if source.startswith("config.json") else "the default layer types"
        raise SpecError("--config", f"{where}num_hidden_layers {_shown(depth)} disagrees with {field} "
                                    f"({len(types)} layers)")
    if cfg.get("sliding_window") is not None:
        raise SpecError("--config", f"{where}sliding_window {_shown(cfg['sliding_window'])}: NemotronHAttention "
                                    "applies no window (one causal mask); attncli would count a different layer")
    notes = []
    if isinstance(cfg.get("num_nextn_predict_layers"), int) and cfg["num_nextn_predict_layers"] > 0:
        notes.append(f"{where}num_nextn_predict_layers {cfg['num_nextn_predict_layers']}: the multi-token "
                     "prediction layers are not part of transformers' model and not in the schedule")
    if MLP_BLOCK in types or MOE_BLOCK in types:
        notes.append("MLP and MoE blocks have no token mixer: in the schedule, neither counted nor cached")
    layers = tuple(LayerInfo(index=i, layer_type=t, window=None, chunk=None, rope=False) for i, t in enumerate(types))
    return Schedule(layers=layers, source=source, notes=tuple(notes))


def first_mixer(types: list[str]) -> int | None:
    """The first layer with a token mixer, or None."""
    return next((i for i, t in enumerate(types) if t not in (MLP_BLOCK, MOE_BLOCK)), None)


def dsv4_schedule(cfg: Mapping[str, Any], where: str) -> Schedule:
    """DeepSeek-V4 (``DeepseekV4Config.__post_init__``: ``layer_types``, else ``compress_ratios``, else the
    V4-Pro default): every layer attends over the sliding window W, the compressed ones also over their
    entries (:mod:`attncli.kinds.dsv4`); each layer's rate m is in ``compress``."""
    from attncli.kinds.dsv4.sizes import read_layer_types, read_sizes

    sizes, types = read_sizes(cfg, where), read_layer_types(cfg, where)
    source = (f"{where}layer_types" if cfg.get("layer_types") is not None else f"{where}compress_ratios"
              if cfg.get("compress_ratios") is not None else "default: DeepseekV4Config (2 HCA, then CSA/HCA)")
    notes: list[str] = []
    if isinstance(cfg.get("num_nextn_predict_layers"), int) and cfg["num_nextn_predict_layers"] > 0:
        notes.append(f"{where}num_nextn_predict_layers {cfg['num_nextn_predict_layers']}: the multi-token "
                     "prediction layers are not part of transformers' model and not in the schedule")
    layers = tuple(LayerInfo(index=i, layer_type=t, window=sizes.window, chunk=None, rope=True,
                             compress=sizes.ratio(t)) for i, t in enumerate(types))
    return Schedule(layers=layers, source=source, notes=tuple(notes))


def kimi_linear_schedule(cfg: Mapping[str, Any], where: str) -> Schedule:
    """Kimi Linear (``KimiLinearConfig.__post_init__``: ``layer_types``, else ``linear_attn_config``'s 1-based
    ``kda_layers`` and ``full_attn_layers``, else every 4th layer full from layer 4): Kimi Delta Attention
    layers (:mod:`attncli.kinds.kda`) and MLA layers without RoPE (``KimiLinearAttention`` rotates nothing)."""
    from attncli.kinds.kda.sizes import read_layer_types

    # NOTE: KimiLinearConfig's num_hidden_layers defaults to 27 when the file leaves it out
    n = _layer_count(cfg, where) if any(cfg.get(k) is not None for k in LAYER_COUNT_KEYS) else 27
    types, source, notes = read_layer_types(cfg, n, where)
    if isinstance(cfg.get("num_nextn_predict_layers"), int) and cfg["num_nextn_predict_layers"] > 0:
        notes.append(f"{where}num_nextn_predict_layers {cfg['num_nextn_predict_layers']}: the multi-token "
                     "prediction layers are not part of transformers' model and not in the schedule")
    layers = tuple(LayerInfo(index=i, layer_type=t, window=None, chunk=None, rope=False) for i, t in enumerate(types))
    return Schedule(layers=layers, source=source, notes=tuple(notes))
