"""The layer schedule of a whole model: every layer's attention type, as transformers reads a config.json.

:func:`read_schedule` takes the text model's ``config.json`` dict (the caller descends into
``text_config`` of a multimodal config and passes ``where="text_config."``) and returns a
:class:`Schedule`: one :class:`LayerInfo` per layer (``full_attention``, ``sliding_attention`` with
its window W, ``chunked_attention`` with its chunk C, ``linear_attention``; whether it rotates
queries and keys) and ``source``, which says which rule gave it: the file's ``layer_types``, a
legacy field, or a family default that transformers' config class fills in when the file leaves
the schedule out. Every problem is one ``--config`` :class:`~attncli.spec.SpecError` naming the field.

The rules are transformers 5.24's: each family's ``models/<family>/configuration_<family>.py``
(``__post_init__``: the ``layer_types`` default) and ``modeling_<family>.py`` (which mask and window
each layer gets). A window W keeps key k for query q when q - W < k <= q
(``masking_utils.sliding_window_overlay``); a chunk C when k // C == q // C
(``masking_utils.chunked_overlay``). What attncli does not model (Gemma 3's bidirectional flag,
Qwen3-Next's gated layers) is refused by the truth guard (``guard.check``) before this runs. Nothing here
imports torch or transformers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from attncli.spec import SpecError

FULL, SLIDING, CHUNKED, LINEAR = "full_attention", "sliding_attention", "chunked_attention", "linear_attention"
LAYER_TYPES: tuple[str, ...] = (FULL, SLIDING, CHUNKED, LINEAR)
"""The ``layer_types`` values the schedule reads (transformers' ``configuration_utils.ALLOWED_ATTN_LAYER_TYPES``
has more: they are refused here, naming value and index)."""
CSA, HCA = "compressed_sparse_attention", "heavily_compressed_attention"
MLP_BLOCK, MOE_BLOCK = "mlp", "moe"
NO_MIXER: tuple[str, ...] = (MLP_BLOCK, MOE_BLOCK)
"""Layer types with no token mixer (Nemotron-H's MLP and MoE blocks): in the schedule, so indices are the model's,
but neither counted nor cached (``attncli model`` skips them, ``--layer N`` refuses them)."""
SHORT: dict[str, str] = {FULL: "full", SLIDING: "sliding", CHUNKED: "chunked", LINEAR: "linear", CSA: "CSA",
                         HCA: "HCA", MLP_BLOCK: "MLP", MOE_BLOCK: "MoE"}

LAYER_COUNT_KEYS: tuple[str, ...] = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")
"""Where the depth is (Llama-like, GPT-2-like, T5-like: T5's ``num_layers`` is its encoder; DBRX's ``n_layers``)."""
MAX_LAYERS = 100_000
"""Real models have a few hundred layers at most; refuse a count that would build millions of entries."""

ALIASES: dict[str, str] = {"gemma3": "gemma3_text", "llama4": "llama4_text", "gemma4": "gemma4_text",
                           "gemma3n": "gemma3n_text", "qwen3_5": "qwen3_5_text", "qwen3_5_moe": "qwen3_5_moe_text"}
"""Multimodal families whose text model is the other one (``Gemma3Config.text_config`` etc.)."""
CONFIG_CLASS: dict[str, str] = {
    "gemma2": "Gemma2Config", "gemma3_text": "Gemma3TextConfig", "cohere2": "Cohere2Config",
    "gpt_oss": "GptOssConfig", "mistral": "MistralConfig", "ministral": "MinistralConfig",
    "qwen2": "Qwen2Config", "qwen3": "Qwen3Config", "qwen2_moe": "Qwen2MoeConfig", "qwen3_moe": "Qwen3MoeConfig",
    "llama4_text": "Llama4TextConfig", "smollm3": "SmolLM3Config", "qwen3_next": "Qwen3NextConfig",
    "afmoe": "AfmoeConfig", "gemma4_text": "Gemma4TextConfig", "gemma3n_text": "Gemma3nTextConfig",
    "mimo_v2_flash": "MiMoV2FlashConfig",
    "qwen3_5_text": "Qwen3_5TextConfig", "qwen3_5_moe_text": "Qwen3_5MoeTextConfig",
    "glm_moe_dsa": "GlmMoeDsaConfig",
}
WINDOW_DEFAULTS: dict[str, int] = {
    "gemma2": 4096, "gemma3_text": 4096, "cohere2": 4096, "gpt_oss": 128, "mistral": 4096, "ministral": 4096,
    "qwen2": 4096, "qwen3": 4096, "qwen2_moe": 4096, "qwen3_moe": 4096, "afmoe": 1024, "gemma4_text": 512,
    "gemma3n_text": 512,
}
"""``sliding_window`` when config.json omits the field (the config classes' dataclass defaults; mixtral, phi3,
starcoder2 and smollm3 default to null). An explicit null stays null."""
GATED_WINDOW = frozenset({"qwen2", "qwen3", "qwen2_moe", "qwen3_moe", "smollm3"})
"""Families whose config class drops ``sliding_window`` unless ``use_sliding_window`` is true (default false):
``self.sliding_window = self.sliding_window if self.use_sliding_window else None`` (0 for qwen2_moe)."""
PATTERN_DEFAULTS: dict[str, int] = {"gemma3_text": 6, "cohere2": 4}
"""Legacy ``sliding_window_pattern`` P (layer i full when (i+1) % P == 0): Gemma3TextConfig
``kwargs.get("sliding_window_pattern", 6)``, Cohere2Config ``kwargs.pop("sliding_window_pattern", 4)``."""
EVERY_LAYER_WINDOW = frozenset({"mistral", "mixtral", "phi3", "qwen3_moe", "starcoder2"})
"""Families whose model applies ``config.sliding_window`` to every layer and reads no ``layer_types``
(modeling_mistral.py: ``create_causal_mask if self.config.sliding_window is None else
create_sliding_window_causal_mask``; the same in modeling_mixtral, phi3, qwen3_moe, starcoder2)."""
ALL_FULL: dict[str, str] = {
    "deepseek_v2": "multi-head latent attention, one causal mask in modeling_deepseek_v2.py",
    "deepseek_v3": "multi-head latent attention, one causal mask in modeling_deepseek_v3.py",
    "kimi_k2": "multi-head latent attention on the DeepSeek-V3 architecture",
    "llama": "modeling_llama.py reads no window",
    "deepseek_v32": "multi-head latent attention with the lightning indexer on every layer, one causal mask in "
                    "modeling_deepseek_v32.py",
    "glm_moe_dsa": "multi-head latent attention with the lightning indexer on every layer (indexer_types all "
                   "full), one causal mask in modeling_glm_moe_dsa.py",
}
"""Families whose every layer is full whatever the file says, and why."""
FAMILY_LAYER_TYPE: dict[str, str] = {"deepseek_v32": "indexed_attention", "glm_moe_dsa": "indexed_attention"}
"""A family's own name for its every layer in ``layer_types`` (DeepseekV32Config and GlmMoeDsaConfig write
``indexed_attention`` for each layer; their modeling files give it the causal mask, and the indexer is the
layer's kind)."""
QWEN35_TEXT = frozenset({"qwen3_5_text", "qwen3_5_moe_text"})
"""Qwen3.5's text models (dense and MoE): Gated DeltaNet layers between every ``full_attention_interval``-th
gated full-attention layer, as Qwen3-Next (configuration_qwen3_5.py, configuration_qwen3_5_moe.py)."""


@dataclass(frozen=True)
class LayerKey:
    """What makes two layers equal for counting: type, window, chunk and RoPE."""

    layer_type: str
    window: int | None
    chunk: int | None
    rope: bool
    compress: int | None = None
    """A DeepSeek-V4 layer's compression rate m (0: its sliding layers); None for every other model."""
    sizes: tuple[tuple[str, Any], ...] = ()
    """The layer type's own sizes, (``AttnSpec`` keyword, value) pairs laid over the model's layer (Gemma 4's
    full layers: ``kv_heads``, ``d_head``, ``k_eq_v``): :mod:`attncli.models.geometry`."""
    kv_source: int | None = None
    """The layer whose KV cache this one reads (Gemma 3n's last layers): no k/v projections, no cache."""

    def label(self) -> str:
        """``sliding (W 128)``, ``chunked (C 8192)``, ``full (NoPE)``, ``linear``, ``CSA (m 4)`` (a
        DeepSeek-V4 compressed layer: its rate; its window is its sliding layers'); then the layer's own
        sizes, ``[G 4, d 512, K=V]``, and ``reads 18`` for a layer reading layer 18's cache."""
        from attncli.models.geometry import sizes_label

        return self._label() + sizes_label(self.sizes, self.kv_source)

    def _label(self) -> str:
        text = SHORT[self.layer_type]
        if self.compress:
            text += f" (m {self.compress})"
        elif self.window is not None:
            text += f" (W {self.window})"
        if self.chunk is not None:
            text += f" (C {self.chunk})"
        if not self.rope and self.layer_type not in (LINEAR, *NO_MIXER):
            text += " (NoPE)"
        return text


@dataclass(frozen=True)
class LayerInfo:
    """One layer: its ``layer_type`` as transformers names it, the sliding window W of a sliding layer
    (a query at p sees keys p-W+1 .. p), the chunk C of a chunked layer (keys floor(p/C)*C .. p), and
    whether it rotates queries and keys (``rope`` False: Llama 4's and Cohere 2's NoPE layers, and
    linear-attention layers, which have no positions)."""

    index: int
    layer_type: str
    window: int | None
    chunk: int | None
    rope: bool = True
    compress: int | None = None
    """DeepSeek-V4: the layer's ``compress_ratios`` entry (0 sliding, m compressed); None elsewhere."""
    sizes: tuple[tuple[str, Any], ...] = ()
    """The layer's own sizes (:attr:`LayerKey.sizes`)."""
    kv_source: int | None = None
    """The layer whose KV cache this one reads, or None."""

    @property
    def key(self) -> LayerKey:
        return LayerKey(self.layer_type, self.window, self.chunk, self.rope, self.compress, self.sizes,
                        self.kv_source)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"index": self.index, "layer_type": self.layer_type, "window": self.window,
                               "chunk": self.chunk, "rope": self.rope}
        if self.compress is not None:
            doc["compress_ratio"] = self.compress
        if self.sizes:
            doc["sizes"] = dict(self.sizes)
        if self.kv_source is not None:
            doc["kv_source"] = self.kv_source
        return doc


@dataclass(frozen=True)
class Schedule:
    """Every layer of a model, where the schedule came from (``source``) and what else to know (``notes``)."""

    layers: tuple[LayerInfo, ...]
    source: str
    notes: tuple[str, ...] = ()

    def groups(self) -> list[tuple[LayerKey, list[int]]]:
        """Equal layers (same :class:`LayerKey`) with their indices, in order of first appearance."""
        out: dict[LayerKey, list[int]] = {}
        for layer in self.layers:
            out.setdefault(layer.key, []).append(layer.index)
        return list(out.items())

    def summary(self) -> str:
        """One line: ``24 layers: 12 sliding (W 128) + 12 full``."""
        parts = " + ".join(f"{len(idx)} {key.label()}" for key, idx in self.groups())
        return f"{len(self.layers)} layers: {parts}"

    def to_json(self) -> dict[str, Any]:
        return {"summary": self.summary(), "source": self.source, "notes": list(self.notes),
                "layers": [layer.to_json() for layer in self.layers]}


# ------------------------------------------------------------------------------ values
def _shown(value: Any) -> str:
    return json.dumps(value)[:40]


def _int(cfg: Mapping[str, Any], key: str, where: str, minimum: int = 1) -> int:
    value = cfg[key]
    # NOTE: bool is an int subclass and 4096.0 a float; neither is a size in a config.json.
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError("--config", f"{where}{key} must be an integer, got {_shown(value)}")
    if value < minimum:
        raise SpecError("--config", f"{where}{key} must be at least {minimum}, got {value}")
    return value


def _bool(cfg: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    value = cfg.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise SpecError("--config", f"{where}{key} must be true or false, got {_shown(value)}")
    return value


def _opt_int(cfg: Mapping[str, Any], key: str, where: str, default: int | None) -> tuple[int | None, bool]:
    """``cfg[key]`` (null: None) or ``default`` when absent, and whether the default was used."""
    if key not in cfg:
        return default, default is not None
    return (None if cfg[key] is None else _int(cfg, key, where)), False


def _layer_count(cfg: Mapping[str, Any], where: str) -> int:
    key = next((k for k in LAYER_COUNT_KEYS if cfg.get(k) is not None), None)
    if key is None:
        raise SpecError("--config", f"{where}num_hidden_layers is missing (looked for {', '.join(LAYER_COUNT_KEYS)})")
    n = _int(cfg, key, where)
    if n > MAX_LAYERS:
        raise SpecError("--config", f"{where}{key} is too large ({n} > {MAX_LAYERS} layers)")
    return n


def _window(cfg: Mapping[str, Any], fam: str, where: str, notes: list[str]) -> tuple[int | None, str]:
    """The sliding window W every sliding layer gets and where it came from, or None and why there is none."""
    if fam in GATED_WINDOW and not _bool(cfg, "use_sliding_window", where, False):
        # NOTE: the config class drops the window (Qwen2MoeConfig writes 0 for it), so 0 is no window here.
        raw = cfg.get("sliding_window")
        window = None if raw is None or (type(raw) is int and raw == 0) else _int(cfg, "sliding_window", where)
        if window is not None:
            notes.append(f"{where}sliding_window {window} is not used: transformers drops it when "
                         "use_sliding_window is false")
        if "use_sliding_window" in cfg:
            return None, f"config.json:{where}use_sliding_window false"
        return None, f"family default: {fam}, transformers {CONFIG_CLASS[fam]} use_sliding_window false"
    window, defaulted = _opt_int(cfg, "sliding_window", where, WINDOW_DEFAULTS.get(fam))
    if defaulted:
        return window, f"family default: {fam}, transformers {CONFIG_CLASS[fam]} sliding_window {window}"
    if window is None:
        return None, f"config.json:{where}sliding_window null" if "sliding_window" in cfg else "no sliding_window"
    return window, f"config.json:{where}sliding_window {window}"


def _rope_list(cfg: Mapping[str, Any], fam: str, n: int, where: str) -> tuple[list[bool], str | None]:
    """``no_rope_layers`` (1: the layer uses RoPE) of Llama 4 and SmolLM3, else every layer True; and, when
    transformers' default filled it in, what that default is."""
    if fam not in ("llama4_text", "smollm3"):
        return [True] * n, None
    raw = cfg.get("no_rope_layers")
    # NOTE: Llama4TextConfig takes the default for any falsy list (`if self.no_rope_layers`), SmolLM3Config
    # only for None (`if self.no_rope_layers is None`): an empty list there is one of the wrong length.
    if raw is None or (raw == [] and fam == "llama4_text"):
        interval = _int(cfg, "no_rope_layer_interval", where) if "no_rope_layer_interval" in cfg else 4
        said = (f"config.json:{where}no_rope_layer_interval {interval}" if "no_rope_layer_interval" in cfg
                else "no_rope_layer_interval 4")
        return [(i + 1) % interval != 0 for i in range(n)], f"{said}: layer i NoPE when (i+1) % {interval} == 0"
    if not isinstance(raw, list) or len(raw) != n:
        got = f"{len(raw)} entries" if isinstance(raw, list) else _shown(raw)
        raise SpecError("--config", f"{where}no_rope_layers must list 0 or 1 for each of the {n} layers, got {got}")
    for i, v in enumerate(raw):
        if isinstance(v, bool) or v not in (0, 1):
            raise SpecError("--config", f"{where}no_rope_layers[{i}] must be 0 or 1, got {_shown(v)}")
    return [v == 1 for v in raw], None


# ------------------------------------------------------------------------------ the rules
def _every_kth_full(cfg: Mapping[str, Any], key: str, other: str, n: int, fam: str, cls: str,
                    where: str) -> tuple[list[str], str]:
    """Layer i is full when (i + 1) % k == 0, else ``other``; k is ``key`` (default 4, the families' own)."""
    if key in cfg:
        k = _int(cfg, key, where)
        src = f"config.json:{where}{key} ({k})"
    else:
        k, src = 4, f"family default: {fam} ({cls}: every 4th layer full)"
    return [other if (i + 1) % k else FULL for i in range(n)], src


def _types(cfg: Mapping[str, Any], fam: str, n: int, where: str, window: int | None, wsrc: str,
           rope: list[bool], rope_default: str | None, notes: list[str]) -> tuple[list[str], str]:
    """Each layer's type and the rule that gave it."""
    cls = f"transformers {CONFIG_CLASS.get(fam, fam)}"
    declared = cfg.get("layer_types")
    if fam in ALL_FULL or fam in EVERY_LAYER_WINDOW:
        every = SLIDING if fam in EVERY_LAYER_WINDOW and window is not None else FULL
        own = FAMILY_LAYER_TYPE.get(fam)
        if own is not None and declared is not None:
            bad = next((i for i, t in enumerate(declared) if t != own), None) if isinstance(declared, list) else 0
            if bad is not None or len(declared) != n:
                raise SpecError("--config", f"{where}layer_types must be {own!r} for each of the {n} layers "
                                            f"(transformers' {fam} model)")
        elif declared is not None and declared != [every] * n:
            notes.append(f"{where}layer_types is not read: transformers' {fam} model gives every layer the same mask")
        if fam in ALL_FULL:
            return [FULL] * n, f"family rule: {fam}, every layer full ({ALL_FULL[fam]})"
        if every == FULL:
            return [FULL] * n, f"every layer full ({wsrc})"
        return [SLIDING] * n, f"{wsrc}: every layer sliding ({fam} applies the window to every layer)"
    if fam == "afmoe" and declared is not None and "global_attn_every_n_layers" in cfg:
        k = _int(cfg, "global_attn_every_n_layers", where)
        if declared != [SLIDING if (i + 1) % k else FULL for i in range(n)]:
            notes.append(f"{where}global_attn_every_n_layers {k} is not read: AfmoeConfig derives layer_types from it "
                         "only when they are absent")
    if fam in QWEN35_TEXT and declared is not None and "full_attention_interval" in cfg:
        k = _int(cfg, "full_attention_interval", where)
        if declared != [LINEAR if (i + 1) % k else FULL for i in range(n)]:
            notes.append(f"{where}full_attention_interval {k} is not read: {CONFIG_CLASS[fam]} derives layer_types "
                         "from it only when they are absent")
    if fam in ("qwen2", "qwen3", "qwen2_moe") and declared is not None and "max_window_layers" in cfg:
        # NOTE: the config class derives layer_types from max_window_layers only when they are absent.
        _int(cfg, "max_window_layers", where, 0)
    if declared is not None:
        if not isinstance(declared, list) or not all(isinstance(t, str) for t in declared):
            raise SpecError("--config", f"{where}layer_types must be a list of strings")
        if len(declared) != n:
            raise SpecError("--config", f"{where}layer_types has {len(declared)} entries for {n} layers")
        for i, kind in enumerate(declared):
            if kind not in LAYER_TYPES:
                raise SpecError("--config", f"{where}layer_types[{i}] {_shown(kind)} is not a layer type the "
                                            f"schedule reads ({', '.join(LAYER_TYPES)})")
        return list(declared), f"config.json:{where}layer_types"
    if fam in PATTERN_DEFAULTS:
        # NOTE: configuration_gemma3.py / configuration_cohere2.py: sliding if bool((i + 1) % pattern).
        if "sliding_window_pattern" in cfg:
            p = _int(cfg, "sliding_window_pattern", where)
            src = f"config.json:{where}sliding_window_pattern ({p})"
        else:
            p = PATTERN_DEFAULTS[fam]
            src = f"family default: {fam} ({cls}: every {p}th layer full)"
        return [SLIDING if (i + 1) % p else FULL for i in range(n)], src
    if fam == "afmoe":
        # NOTE: configuration_afmoe.py: sliding if bool((i + 1) % global_attn_every_n_layers), default 4.
        return _every_kth_full(cfg, "global_attn_every_n_layers", SLIDING, n, fam, cls, where)
    if fam in ("gemma2", "gpt_oss"):
        # NOTE: configuration_gemma2.py / configuration_gpt_oss.py: sliding if bool((i + 1) % 2).
        return ([SLIDING if (i + 1) % 2 else FULL for i in range(n)],
                f"family default: {fam} ({cls}: even layers sliding, odd layers full)")
    if fam in ("qwen2", "qwen3", "qwen2_moe"):
        mwl = _int(cfg, "max_window_layers", where, 0) if "max_window_layers" in cfg else 28
        if window is None:
            return [FULL] * n, f"every layer full ({wsrc})"
        said = f"{cls} default max_window_layers 28"
        if "max_window_layers" in cfg:
            said = f"{where}max_window_layers {mwl}"
        src = f"config.json:{where}use_sliding_window true and {said}"
        if fam == "qwen2_moe":
            # NOTE: configuration_qwen2_moe.py: sliding if bool((i + 1) % 2) and i < max_window_layers.
            return ([SLIDING if (i + 1) % 2 and i < mwl else FULL for i in range(n)],
                    f"{src}: even layers below {mwl} sliding ({cls})")
        # NOTE: configuration_qwen2.py / configuration_qwen3.py: sliding if i >= max_window_layers.
        return [SLIDING if i >= mwl else FULL for i in range(n)], f"{src}: layers {mwl} and up sliding ({cls})"
    if fam == "llama4_text":
        # NOTE: configuration_llama4.py: "chunked_attention" if no_rope and attention_chunk_size is not None.
        chunk = cfg.get("attention_chunk_size", 8192)
        types = [CHUNKED if r and chunk is not None else FULL for r in rope]
        if rope_default is not None:
            return types, f"family default: llama4_text ({cls} without no_rope_layers, {rope_default} and full, " \
                          "the others chunked)"
        return types, f"config.json:{where}no_rope_layers: layers using RoPE chunked, NoPE layers full"
    if fam == "smollm3":
        # NOTE: configuration_smollm3.py: sliding if use_sliding_window and sliding_window and not has_rope.
        types = [SLIDING if window is not None and not r else FULL for r in rope]
        return types, f"family rule: smollm3 ({cls}: NoPE layers sliding with use_sliding_window; {wsrc})"
    if fam == "qwen3_next" or fam in QWEN35_TEXT:
        # NOTE: configuration_qwen3_next.py / configuration_qwen3_5.py (and _moe):
        # linear if bool((i + 1) % full_attention_interval), default 4 (Qwen3.5 pops it from its kwargs).
        return _every_kth_full(cfg, "full_attention_interval", LINEAR, n, fam, cls, where)
    if window is None:
        return [FULL] * n, f"every layer full ({wsrc})"
    if fam == "ministral":
        # NOTE: configuration_ministral.py: every layer sliding when sliding_window is not None.
        return [SLIDING] * n, f"{wsrc}: every layer sliding ({cls} layer_types default)"
    if "sliding_window_pattern" in cfg:
        notes.append(f"{where}sliding_window_pattern is not read: only Gemma 3 and Cohere 2 configs use it")
    return [SLIDING] * n, f"{wsrc}: every layer sliding (no per-layer rule known for {fam or 'this config'})"


def read_schedule(cfg: Mapping[str, Any], family: str | None, where: str = "") -> Schedule:
    """The schedule of the text model ``cfg`` (``family`` its ``model_type``; ``where`` prefixes field names
    in messages, e.g. ``"text_config."``), as transformers 5.24 builds its layers.

    Order of the rules: families with one mask for every layer (Mistral, Mixtral, Phi-3, Qwen3-MoE,
    Starcoder2: all sliding when ``sliding_window`` is set; DeepSeek-V2/V3, Kimi K2, Llama: all full),
    then ``layer_types``, then the family's default (Gemma 3 / Cohere 2 ``sliding_window_pattern``,
    Gemma 2 and gpt-oss alternation, Qwen2/3 ``use_sliding_window`` with ``max_window_layers``,
    Llama 4 ``no_rope_layers`` with ``attention_chunk_size``, Qwen3-Next ``full_attention_interval``),
    then any other config: every layer sliding with a ``sliding_window``, else full.
    """
    if family is None and isinstance(cfg.get("model_type"), str):
        family = cfg["model_type"]
    fam = ALIASES.get(family or "", family or "")
    if fam == "deepseek_v4":
        from attncli.models.hybrid import dsv4_schedule

        return dsv4_schedule(cfg, where)
    if fam == "nemotron_h":
        from attncli.models.hybrid import nemotron_h_schedule

        return nemotron_h_schedule(cfg, where)
    if fam == "kimi_linear":
        from attncli.models.hybrid import kimi_linear_schedule

        return kimi_linear_schedule(cfg, where)
    n = _layer_count(cfg, where)
    notes: list[str] = []
    window, wsrc = _window(cfg, fam, where, notes)
    rope, rope_default = _rope_list(cfg, fam, n, where)
    from attncli.models import geometry

    own = geometry.family_types(cfg, fam, n, where)
    types, source = own if own is not None else _types(cfg, fam, n, where, window, wsrc, rope, rope_default, notes)
    window, wsrc = geometry.family_window(cfg, fam, where, window, wsrc)

    chunk: int | None = None
    if CHUNKED in types:
        chunk, defaulted = _opt_int(cfg, "attention_chunk_size", where, 8192 if fam == "llama4_text" else None)
        if defaulted:
            notes.append(f"{where}attention_chunk_size absent: transformers Llama4TextConfig default 8192")
    if SLIDING in types and window is not None and wsrc.startswith("family default") and wsrc not in source:
        notes.append(f"{where}sliding_window absent: {wsrc}")
    if fam == "cohere2":
        # NOTE: modeling_cohere2.py: `if self.sliding_window is not None: apply_rotary_pos_emb(...)`.
        rope = [t == SLIDING for t in types]
    if isinstance(cfg.get("num_nextn_predict_layers"), int) and cfg["num_nextn_predict_layers"] > 0:
        notes.append(f"{where}num_nextn_predict_layers {cfg['num_nextn_predict_layers']}: the multi-token "
                     "prediction layers are not part of transformers' model and not in the schedule")

    layers: list[LayerInfo] = []
    for i, kind in enumerate(types):
        if kind == SLIDING and window is None:
            raise SpecError("--config", f"layer {i} is sliding_attention ({source}) but has no window: {wsrc}")
        if kind == CHUNKED and chunk is None:
            raise SpecError("--config", f"layer {i} is chunked_attention ({source}) but {where}attention_chunk_size "
                                        "is null or absent")
        layers.append(LayerInfo(index=i, layer_type=kind, window=window if kind == SLIDING else None,
                                chunk=chunk if kind == CHUNKED else None, rope=rope[i] and kind != LINEAR))
    return Schedule(layers=geometry.per_layer(cfg, fam, tuple(layers), where, notes), source=source,
                    notes=tuple(notes))


def first_layer(cfg: Mapping[str, Any], family: str | None, where: str = "") -> tuple[LayerInfo, Schedule]:
    """Layer 0 of ``cfg`` and the schedule it is the first layer of: the one rule book for the layer
    ``flops --config`` describes (``--layer 0`` and ``attncli model`` read the same schedule). Layer 0's
    type does not depend on the depth, so a layer's config that leaves the depth out is read as
    ``len(layer_types)`` layers (4 without them)."""
    probe = cfg
    fam = family if family is not None else cfg.get("model_type")
    # NOTE: Kimi Linear's depth has a default its layer lists count to; Nemotron-H's pattern is its depth
    if fam not in ("kimi_linear", "nemotron_h") and not any(cfg.get(k) is not None for k in LAYER_COUNT_KEYS):
        types = cfg.get("layer_types")
        probe = {**cfg, "num_hidden_layers": len(types) if isinstance(types, list) and types else 4}
    schedule = read_schedule(probe, "kimi_linear" if fam == "kimi_linear" else family, where)
    first = schedule.layers[0]
    if first.layer_type in NO_MIXER:
        mixers = [layer.index for layer in schedule.layers if layer.layer_type not in NO_MIXER]
        said = f"layers {', '.join(map(str, mixers[:6]))}{', ...' if len(mixers) > 6 else ''} have one" if mixers \
            else "no layer has one"
        raise SpecError("--config", f"layer 0 is {SHORT[first.layer_type]}: no token mixer to describe; pass --layer "
                                    f"N ({said})")
    return first, schedule
