"""Per-layer-type sizes and cross-layer KV sharing: the part of a schedule that says, per layer, that
kind's own sizes and which layer's cache it reads.

:func:`family_types` gives the ``layer_types`` of the families whose config class derives them its own way,
:func:`family_window` a window built from another field, and :func:`per_layer` lays each layer's own sizes
(:attr:`~attncli.models.schedule.LayerInfo.sizes`, ``AttnSpec`` keywords) and the layer whose KV cache it
reads (:attr:`~attncli.models.schedule.LayerInfo.kv_source`) over the schedule. Every layer of such a family
carries all of its family's per-layer sizes, so no layer inherits another's. The rules are transformers
5.25's, cited per family:

- **Gemma 4** (``gemma4_text``, ``configuration_gemma4.py``, ``modeling_gemma4.py`` ``Gemma4TextAttention``):
  full layers take ``global_head_dim`` (default 512) and, with ``attention_k_eq_v``,
  ``num_global_key_value_heads`` and keys that are the values (no ``v_proj``; the values are the key
  projection's output through ``v_norm``, the keys through ``k_norm`` and RoPE); sliding layers the model's
  ``head_dim`` and ``num_key_value_heads``. ``layer_types`` defaults to five sliding then one full, and the
  last layer is forced full. ``num_kv_shared_layers`` (default 0) as Gemma 3n.
- **Gemma 3n** (``gemma3n_text``, ``configuration_gemma3n.py`` ``kv_sharing_modes``): the last
  ``num_kv_shared_layers`` (default 15) layers reuse the keys and values of the last earlier layer of the
  same type; they have no ``k_proj``, ``v_proj``, ``k_norm`` or ``v_norm`` and their cache layer is a dummy
  (``cache_utils.get_layer_types_and_kwargs``). ``layer_types`` defaults to four sliding then one full.
- **MiMo-V2-Flash** (``mimo_v2_flash``, ``configuration_mimo_v2_flash.py``, ``MiMoV2FlashAttention``): keys
  of ``head_dim`` (192), values of ``v_head_dim`` (128); sliding layers have twice ``num_key_value_heads``
  and one sink logit per head; the window is ``sliding_window_size`` + 1 ("attends to sliding_window_size
  previous tokens plus the query"). transformers reads none of the ``swa_*`` fields, the sink switches or
  ``hybrid_layer_pattern``: each is read here and refused when it says other than what transformers builds.

Nothing here imports torch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from attncli.choices import MAX_SIZE
from attncli.spec import SpecError

if TYPE_CHECKING:
    from attncli.models.schedule import LayerInfo

FULL, SLIDING = "full_attention", "sliding_attention"
FAMILIES = frozenset({"gemma4_text", "gemma3n_text", "mimo_v2_flash"})
SHARING_DEFAULT: dict[str, int] = {"gemma4_text": 0, "gemma3n_text": 15}
"""``num_kv_shared_layers`` when the file leaves it out (Gemma4TextConfig, Gemma3nTextConfig)."""
READ: dict[str, frozenset[str]] = {
    "gemma4_text": frozenset({"global_head_dim", "num_global_key_value_heads", "attention_k_eq_v",
                              "num_kv_shared_layers"}),
    "gemma3n_text": frozenset({"num_kv_shared_layers"}),
    "mimo_v2_flash": frozenset({"v_head_dim", "sliding_window_size", "hybrid_layer_pattern", "swa_num_attention_heads",
                                "swa_num_key_value_heads", "swa_head_dim", "swa_v_head_dim",
                                "add_swa_attention_sink_bias", "add_full_attention_sink_bias"}),
}
"""The fields :func:`per_layer` reads, per family (:data:`attncli.models.families.FAMILY_READ`)."""
SHORT = {"heads": "H", "kv_heads": "G", "d_head": "d", "d_head_v": "d_v"}


def sizes_label(sizes: tuple[tuple[str, Any], ...], kv_source: int | None) -> str:
    """`` [G 4, d 512, K=V]`` and `` reads 18``: what a group's label adds for its own sizes."""
    shown = [f"{SHORT[k]} {v}" for k, v in sizes if k in SHORT]
    shown += [{"k_eq_v": "K=V", "sinks": "sinks"}[k] for k, v in sizes if k not in SHORT and v is True]
    text = f" [{', '.join(shown)}]" if shown else ""
    return text + (f" reads {kv_source}" if kv_source is not None else "")


def _int(cfg: Mapping[str, Any], key: str, where: str, default: int, minimum: int = 1) -> int:
    value = cfg.get(key, default)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError("--config", f"{where}{key} must be an integer of at least {minimum}, got "
                                    f"{json.dumps(value)[:40]}")
    if value > MAX_SIZE:  # NOTE: refused as the shared reader refuses it, naming the field (not --head-dim)
        raise SpecError("--config", f"{where}{key} is too large ({value} > {MAX_SIZE})"[:200])
    return value


def _switch(cfg: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    value = cfg.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise SpecError("--config", f"{where}{key} must be true or false, got {json.dumps(value)[:40]}")
    return value


def _declared(cfg: Mapping[str, Any], n: int, where: str) -> list[str] | None:
    types = cfg.get("layer_types")
    if types is None:
        return None
    if not isinstance(types, list) or len(types) != n or any(t not in (FULL, SLIDING) for t in types):
        raise SpecError("--config", f"{where}layer_types must list full_attention or sliding_attention for each "
                                    f"of the {n} layers")
    return list(types)


def family_types(cfg: Mapping[str, Any], fam: str, n: int, where: str) -> tuple[list[str], str] | None:
    """(each layer's type, the rule) for the families of this module, None for any other."""
    if fam not in FAMILIES:
        return None
    declared = _declared(cfg, n, where)
    if fam == "gemma4_text":
        # NOTE: Gemma4TextConfig.__post_init__: sliding if bool((i + 1) % 6), and the last layer forced full
        types = declared or [SLIDING if (i + 1) % 6 else FULL for i in range(n)]
        src = f"config.json:{where}layer_types" if declared else "family default: gemma4_text (every 6th layer full)"
        if types[-1] != FULL:
            types[-1] = FULL
            src += " (Gemma4TextConfig forces the last layer full)"
        return types, src
    if fam == "gemma3n_text":
        # NOTE: Gemma3nTextConfig.__post_init__: full if (i + 1) % 5 == 0
        if declared:
            return declared, f"config.json:{where}layer_types"
        return [FULL if (i + 1) % 5 == 0 else SLIDING for i in range(n)], \
            "family default: gemma3n_text (every 5th layer full)"
    # NOTE: MiMoV2FlashConfig.__post_init__: full if i == 0 or (i + 1) % 6 == 0
    types = declared or [FULL if i == 0 or (i + 1) % 6 == 0 else SLIDING for i in range(n)]
    src = f"config.json:{where}layer_types" if declared else "family default: mimo_v2_flash (layer 0 and every " \
                                                             "6th layer full)"
    pattern = cfg.get("hybrid_layer_pattern")
    if pattern is not None:
        if not isinstance(pattern, list) or len(pattern) != n or any(type(p) is not int or p not in (0, 1)
                                                                    for p in pattern):
            raise SpecError("--config", f"{where}hybrid_layer_pattern must list 0 (full) or 1 (sliding) for each "
                                        f"of the {n} layers")
        bad = next((i for i, (p, t) in enumerate(zip(pattern, types, strict=True)) if (t == SLIDING) != (p == 1)),
                   None)
        if bad is not None:
            raise SpecError("--config", f"{where}hybrid_layer_pattern[{bad}] {pattern[bad]} disagrees with the "
                                        f"{types[bad]} transformers builds ({src}); attncli would count a "
                                        "different layer")
        src += f" (config.json:{where}hybrid_layer_pattern agrees)"
    return types, src


def family_window(cfg: Mapping[str, Any], fam: str, where: str, window: int | None,
                  said: str) -> tuple[int | None, str]:
    """MiMo-V2-Flash's window: ``sliding_window_size`` + 1 (MiMoV2FlashConfig), else ``sliding_window``
    (its class default 129); every other family's as read."""
    if fam != "mimo_v2_flash":
        return window, said
    if cfg.get("sliding_window_size") is not None:
        size = _int(cfg, "sliding_window_size", where, 1)
        return size + 1, f"config.json:{where}sliding_window_size {size} + 1 (MiMoV2FlashConfig: the query too)"
    if window is None:
        return 129, "family default: mimo_v2_flash, transformers MiMoV2FlashConfig sliding_window 129"
    return window, said


def _sharing(cfg: Mapping[str, Any], fam: str, types: list[str], where: str) -> list[int | None]:
    """The layer each layer reads the KV cache of (``kv_sharing_modes`` of Gemma3nTextConfig/Gemma4TextConfig:
    the last ``num_kv_shared_layers`` reuse the last earlier layer of their type), None for the others."""
    n = len(types)
    k = _int(cfg, "num_kv_shared_layers", where, SHARING_DEFAULT[fam], minimum=0)
    if k == 0:
        return [None] * n
    if k >= n:
        raise SpecError("--config", f"{where}num_kv_shared_layers {k} leaves no layer of the {n} to hold a cache")
    first = n - k
    out: list[int | None] = [None] * n
    for i in range(first, n):
        src = next((j for j in range(first - 1, -1, -1) if types[j] == types[i]), None)
        if src is None:
            raise SpecError("--config", f"{where}num_kv_shared_layers {k}: layer {i} ({types[i]}) has no earlier "
                                        "layer of its type to read the cache of")
        out[i] = src
    return out


def _mimo_sizes(cfg: Mapping[str, Any], where: str) -> dict[str, tuple[tuple[str, Any], ...]]:
    heads = _int(cfg, "num_attention_heads", where, 64)
    g = _int(cfg, "num_key_value_heads", where, 4)
    d = _int(cfg, "head_dim", where, 192)
    dv = _int(cfg, "v_head_dim", where, 128)  # NOTE: every layer's value head: base_fields
    # NOTE: MiMoV2FlashAttention: SWA layers double the K/V heads and hold sinks; it reads no swa_* field
    built = {"swa_num_attention_heads": heads, "swa_num_key_value_heads": 2 * g, "swa_head_dim": d,
             "swa_v_head_dim": dv, "add_swa_attention_sink_bias": True, "add_full_attention_sink_bias": False}
    for key, value in built.items():
        said = cfg.get(key)
        if said is not None and (said != value or type(said) is not type(value)):
            raise SpecError("--config", f"{where}{key} {json.dumps(said)[:40]} is not what transformers' "
                                        f"MiMoV2FlashAttention builds ({json.dumps(value)}); attncli would count a "
                                        "different layer")
    if cfg.get("head_dim") is None:  # NOTE: the class default (192) where the reader would take E/H
        raise SpecError("--config", f"{where}head_dim is missing: MiMoV2FlashConfig's default 192 is not read here")
    return {FULL: (("kv_heads", g), ("sinks", False)), SLIDING: (("kv_heads", 2 * g), ("sinks", True))}


def base_fields(cfg: Mapping[str, Any], family: str | None, where: str) -> dict[str, Any]:
    """What every layer of the family holds beyond the reader's sizes: MiMo-V2-Flash's value head."""
    if family != "mimo_v2_flash":
        return {}
    return {"d_head_v": _int(cfg, "v_head_dim", where, 128)}


def _gemma4_sizes(cfg: Mapping[str, Any], where: str) -> dict[str, tuple[tuple[str, Any], ...]]:
    heads = _int(cfg, "num_attention_heads", where, 8)
    g = _int(cfg, "num_key_value_heads", where, 4)
    d = _int(cfg, "head_dim", where, 256)
    k_eq_v = _switch(cfg, "attention_k_eq_v", where, False)
    # NOTE: Gemma4TextConfig.__post_init__: full layers' head_dim = global_head_dim (512), and their K/V heads
    # num_global_key_value_heads only when attention_k_eq_v (else num_key_value_heads)
    global_d = _int(cfg, "global_head_dim", where, 512)
    global_g = g
    if k_eq_v and cfg.get("num_global_key_value_heads") is not None:
        global_g = _int(cfg, "num_global_key_value_heads", where, g)
    for kv in (g, global_g):
        if heads % kv:
            raise SpecError("--config", f"{where}num_attention_heads {heads} is not a multiple of {kv} K/V heads")
    return {SLIDING: (("kv_heads", g), ("d_head", d), ("k_eq_v", False)),
            FULL: (("kv_heads", global_g), ("d_head", global_d), ("k_eq_v", k_eq_v))}


def per_layer(cfg: Mapping[str, Any], fam: str, layers: tuple[LayerInfo, ...], where: str,
              notes: list[str]) -> tuple[LayerInfo, ...]:
    """``layers`` with each one's own sizes and the layer whose cache it reads (see the module docstring)."""
    if fam not in FAMILIES:
        return layers
    types = [layer.layer_type for layer in layers]
    sizes = _mimo_sizes(cfg, where) if fam == "mimo_v2_flash" else _gemma4_sizes(cfg, where) \
        if fam == "gemma4_text" else {}
    sources = _sharing(cfg, fam, types, where) if fam in SHARING_DEFAULT else [None] * len(layers)
    if any(s is not None for s in sources):
        first = next(i for i, s in enumerate(sources) if s is not None)
        notes.append(f"{where}num_kv_shared_layers {len(layers) - first}: layers {first}-{len(layers) - 1} read the "
                     "KV cache of the last earlier layer of their type (no k/v projections, no cache of their own)")
    return tuple(replace(layer, sizes=sizes.get(layer.layer_type, ()), kv_source=src)
                 for layer, src in zip(layers, sources, strict=True))


def settings_fields(sizes: tuple[tuple[str, Any], ...], kv_source: int | None) -> tuple[dict[str, Any],
                                                                                         dict[str, Any]]:
    """(the :class:`~attncli.models.configs.LayerSettings` fields, its ``attention_fields``) one layer's own
    sizes set: ``heads``, ``kv_heads`` and ``head_dim`` (``d_head``) there, the rest beside."""
    own = dict(sizes)
    fields = {name: own.pop(key) for key, name in (("heads", "heads"), ("kv_heads", "kv_heads"),
                                                   ("d_head", "head_dim")) if key in own}
    if kv_source is not None:
        own["kv_shared"] = True
    return fields, own
