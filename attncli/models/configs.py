"""Real models' attention settings: Hugging Face ``config.json`` files and built-in presets.

:func:`read_hf_config` reads a model's ``config.json`` (no network, no ``transformers``) and
:func:`load_preset` one of the presets in ``attncli/data/presets.json``; both return a
:class:`LayerSettings` that says, per value, where it came from. :func:`merge` lays the flags
the user passed on top and returns the keyword arguments for :class:`attncli.spec.AttnSpec`
(``dim``, ``heads``, ``kv_heads``, ``head_dim``, ``window``, ``bias``, ``mask``, or for multi-head
latent attention the five MLA sizes instead of ``kv_heads`` and ``head_dim``) with their
provenance. Every problem is a one-line :class:`~attncli.spec.SpecError` naming ``--config``
or ``--preset``; a config whose layer attncli does not model is refused by
:mod:`attncli.models.guard`, which also names what attncli reads but does not count. Nothing here
imports torch.

Conventions: one layer is described, layer 0 (models that alternate local and global layers
say so in ``notes``); an encoder-decoder config describes its encoder self-attention; ``bias``
is True when the q/k/v (and usually o) projections carry biases, ``None`` when the config does
not say and the architecture is not known.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from attncli.models import guard
from attncli.models.families import (
    BIAS_KEYS,
    HEADS_KEYS,
    HIDDEN_KEYS,
    read_fields,
)
from attncli.models.geometry import base_fields, settings_fields
from attncli.models.guard import ARCH_BIAS
from attncli.models.heads import first_key, mla_sizes, standard_heads
from attncli.models.kindconfig import kind_fields
from attncli.models.parts import parts_fields
from attncli.models.schedule import SHORT, first_layer
from attncli.models.values import causal as _causal
from attncli.models.values import size as _int
from attncli.models.values import switch as _bool
from attncli.registry import MLA_FIELDS
from attncli.spec import AttnSpec, SpecError

LAYER_FIELDS: tuple[str, ...] = ("dim", "heads", "kv_heads", "head_dim", "window", "chunk", "bias", "mask",
                                 *MLA_FIELDS)
"""The :class:`~attncli.spec.AttnSpec` keywords a config or preset sets (``head_dim`` is ``d_head``
there); an MLA layer sets the :data:`~attncli.spec.MLA_FIELDS` and never ``kv_heads``/``head_dim``."""

MAX_CONFIG_BYTES = 4 * 1024 * 1024
"""A real ``config.json`` is a few KiB; refuse anything larger than this before parsing."""






@dataclass(frozen=True)
class LayerSettings:
    """One attention layer's settings from a model config or preset, with their provenance.

    ``sources`` maps each field name to where its value came from, e.g.
    ``"config.json:num_key_value_heads"``, ``"default: dim/heads"``, ``"preset llama-3-8b"``,
    ``"command line"``.

    An MLA layer (``kv_lora_rank`` set) has ``kv_heads`` and ``head_dim`` ``None``: its keys and
    values come from one latent, its head sizes are ``qk_nope_head_dim``, ``qk_rope_head_dim``
    and ``v_head_dim``; ``q_lora_rank`` ``None`` is a direct ``q_proj``.
    """

    name: str
    family: str | None
    dim: int
    heads: int
    kv_heads: int | None
    head_dim: int | None
    window: int | None
    bias: bool | None
    causal: bool
    sources: dict[str, str] = field(default_factory=dict)
    notes: str = ""
    """What the values do not say, one line per note joined by ``"; "`` (a config file's notes hold no other
    semicolon, so :attr:`note_lines` splits them)."""
    link: str | None = None
    kv_lora_rank: int | None = None
    q_lora_rank: int | None = None
    qk_nope_head_dim: int | None = None
    qk_rope_head_dim: int | None = None
    v_head_dim: int | None = None
    chunk: int | None = None
    """Layer 0's chunk C when it is a chunked layer (Llama 4), as :attr:`AttnSpec.chunk`."""
    attention_fields: dict[str, Any] = field(default_factory=dict)
    """Settings of the model's attention layers beyond these (Qwen3-Next's output gate, DeepSeek-V3.2's
    indexer): :mod:`attncli.models.kindconfig`."""
    linear_fields: dict[str, Any] = field(default_factory=dict)
    """The sizes of its linear-attention layers (Qwen3-Next's Gated DeltaNet), if any."""
    layer0_type: str = "full_attention"
    """Layer 0's type, as transformers names it: the layer ``flops --config`` describes."""
    ignored_fields: tuple[str, ...] = ()
    """The config's fields attncli neither reads nor knows to be harmless that ``--ignore-field`` let pass."""
    compress_rates: dict[str, int] = field(default_factory=dict)
    """DeepSeek-V4: each layer type's compression rate (0 for its sliding layers); empty elsewhere."""

    def fields_for(self, layer_type: str) -> dict[str, Any]:
        """The kind's settings of a layer of ``layer_type`` (linear layers get the Gated DeltaNet sizes; a
        DeepSeek-V4 layer its ``compress_ratio``, and the indexer's sizes on a compressed sparse one)."""
        if layer_type in self.compress_rates:
            out = dict(self.attention_fields, compress_ratio=self.compress_rates[layer_type])
            if layer_type != "compressed_sparse_attention":
                for key in ("index_topk", "index_n_heads", "index_head_dim"):
                    out.pop(key, None)
            return out
        return dict(self.linear_fields if layer_type == "linear_attention" else self.attention_fields)

    @property
    def mask(self) -> str:
        """The ``--mask`` a model of this kind runs with: ``causal`` for decoders, else ``none``."""
        return "causal" if self.causal else "none"

    @property
    def note_lines(self) -> list[str]:
        """:attr:`notes`, one item per note (a preset's notes are one paragraph)."""
        if not self.notes:
            return []
        return [self.notes] if self.link is not None else self.notes.split("; ")

    @property
    def kind(self) -> str:
        """The kind of the model's attention layers (:attr:`AttnSpec.kind`, from the settings that select one)."""
        return AttnSpec(**{"kv_lora_rank": self.kv_lora_rank, **self.attention_fields}).kind

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "family": self.family, "kind": self.kind, "dim": self.dim,
                "heads": self.heads, "kv_heads": self.kv_heads, "head_dim": self.head_dim,
                **{k: getattr(self, k) for k in MLA_FIELDS}, "window": self.window, "chunk": self.chunk,
                "bias": self.bias,
                "causal": self.causal, "mask": self.mask, "source": self.link, "notes": self.notes,
                "sources": dict(self.sources)}


@dataclass(frozen=True)
class Merged:
    """The result of :func:`merge`: ``AttnSpec`` keywords and where each one came from."""

    values: dict[str, Any]
    sources: dict[str, str]


# ------------------------------------------------------------------------------ checks
def _load_json(path: Path) -> Any:
    """Read and parse ``path``; every failure is one ``--config`` line."""
    from attncli.io.paths import check_regular, read_path

    check_regular(path, "--config", "config.json")  # NOTE: a name too long, a FIFO, a device
    path = read_path(path, "config.json")
    try:
        st = path.stat()
        stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
    except OSError:
        stamp = None
    return _parse(path, stamp)


@functools.lru_cache(maxsize=8)
def _parse(path: Path, stamp: tuple[int, int] | None) -> Any:
    """The parsed ``path``, read once per run: the layer (``flops --config``), the whole model (its schedule,
    dtype, the config a ``--module`` class is built from) all read one file; ``stamp`` (mtime, size) reads a
    changed file again. Readers never change what it returns."""
    try:
        # NOTE: read at most the limit (+1): a device such as /dev/zero or /dev/full reports
        # size 0 and never ends (the fuzzer's run grew to 3.7 GiB).
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise SpecError("--config", f"{path}: more than {MAX_CONFIG_BYTES} bytes is too large for a "
                                        "config.json")
    except FileNotFoundError:
        raise SpecError("--config", f"{path}: no such file") from None
    except OSError as exc:
        raise SpecError("--config", f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError("--config", f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        # NOTE: Infinity, -Infinity and NaN parse as Python's json (and so transformers) reads them
        # (Nemotron-H's "time_step_limit": [0.0, Infinity]); a field attncli reads must still be a sane
        # number, which its reader checks.
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError("--config", f"{path}: not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError as exc:
        raise SpecError("--config", f"{path}: not JSON: {exc}") from None
    except RecursionError:
        raise SpecError("--config", f"{path}: JSON nested too deeply") from None


# ------------------------------------------------------------------------------ config.json
def read_hf_config(path: str | Path, ignore: tuple[str, ...] = ()) -> LayerSettings:
    """Read a Hugging Face ``config.json`` (or a directory holding one) into :class:`LayerSettings`.

    Multimodal configs whose language model sits under ``text_config`` are read from there. Any
    config with ``kv_lora_rank`` is multi-head latent attention (DeepSeek-V2/V3, Kimi K2): its
    ``num_key_value_heads`` and ``head_dim`` do not apply (transformers sets ``head_dim`` to
    ``qk_rope_head_dim``). :func:`attncli.models.guard.check` refuses a layer attncli does not model, and
    :func:`attncli.models.guard.refuse_unread` a field attncli neither reads nor knows to be harmless, unless
    ``ignore`` (``--ignore-field``) names it.
    """
    path = Path(path)
    return settings_from_config(_load_json(path), str(path), ignore)


def settings_from_config(top: Any, path: str, ignore: tuple[str, ...] = ()) -> LayerSettings:
    """:func:`read_hf_config` of a parsed config.json; ``path`` names it in messages."""
    if not isinstance(top, dict):
        raise SpecError("--config", f"{path}: a config.json holds a JSON object, got {type(top).__name__}")
    cfg: dict[str, Any] = top
    prefix = "config.json:"
    if first_key(cfg, HIDDEN_KEYS) is None and isinstance(cfg.get("text_config"), dict):
        cfg, prefix = cfg["text_config"], "config.json:text_config."
    where = prefix.removeprefix("config.json:")
    sources: dict[str, str] = {}
    notes: list[str] = []

    model_type = cfg.get("model_type", top.get("model_type"))
    if model_type is not None and not isinstance(model_type, str):
        raise SpecError("--config", f"model_type must be a string, got {json.dumps(model_type)[:40]}")
    family = model_type
    guard.check(cfg, family, where)
    read = read_fields(cfg, family)
    ignored = guard.refuse_unread(cfg, family, where, read, ignore)
    if cfg is not top:
        ignored += guard.refuse_unread(top, top.get("model_type"), "", {"text_config", "model_type", "architectures",
                                                                       "is_encoder_decoder"}, ignore)
    if family == "dbrx" and isinstance(cfg.get("attn_config"), dict):
        ignored += guard.refuse_unread(cfg["attn_config"], family, f"{where}attn_config.",
                                       {"kv_n_heads", "model_type", "is_encoder_decoder"}, ignore)

    hidden_key = first_key(cfg, HIDDEN_KEYS)
    heads_key = first_key(cfg, HEADS_KEYS)
    if hidden_key is None:
        raise SpecError("--config", f"{path}: no hidden size (looked for {', '.join(HIDDEN_KEYS)})")
    if heads_key is None:
        raise SpecError("--config", f"{path}: no head count (looked for {', '.join(HEADS_KEYS)})")
    dim = _int(cfg, hidden_key, where)
    heads = _int(cfg, heads_key, where)
    sources["dim"], sources["heads"] = prefix + hidden_key, prefix + heads_key

    mla: dict[str, int | None] = {}
    kv_heads: int | None
    head_dim: int | None
    if cfg.get("kv_lora_rank") is not None:
        mla = mla_sizes(cfg, prefix, where, sources)
        kv_heads = head_dim = None
        unused = [k for k in ("num_key_value_heads", "head_dim") if cfg.get(k) is not None]
        if unused:
            notes.append(f"MLA: {' and '.join(unused)} {'do' if len(unused) > 1 else 'does'} not apply (every "
                         f"head reads one shared latent of {mla['kv_lora_rank']} + {mla['qk_rope_head_dim']} "
                         "values per token)")
    else:
        kv_heads, head_dim = standard_heads(cfg, prefix, where, dim, heads, hidden_key, heads_key, sources, family)

    # NOTE: layer 0 is the schedule's first layer (schedule.py, transformers' rules): the same rule book as
    # --layer N and attncli model, so flops --config X and flops --config X --layer 0 describe one layer.
    first, schedule = first_layer(cfg, family, where)
    window, chunk, layer0 = first.window, first.chunk, first.layer_type
    said = f"layer 0 is {SHORT[layer0]}: {schedule.source}"
    sources["window"] = (prefix + "sliding_window" if window is not None and "sliding_window" in cfg
                         else said)
    sources["chunk"] = (prefix + "attention_chunk_size (layer 0 is chunked)" if chunk is not None and
                        "attention_chunk_size" in cfg else said if chunk is not None else
                        "default: layer 0 is not chunked")
    if family == "kimi_linear":
        notes.append(f"kimi_linear: {schedule.summary()} (linear: Kimi Delta Attention, full: MLA without RoPE), "
                     f"and layer 0 ({SHORT[layer0]}) is described")
    attention_fields, linear_fields, kind_sources = kind_fields(cfg, family, prefix, where)
    sources.update(kind_sources)
    # NOTE: layer 0's own sizes (Gemma 4, MiMo-V2-Flash: attncli/models/geometry.py) over the model's
    attention_fields.update(base_fields(cfg, family, where))
    own, own_fields = settings_fields(first.sizes, first.kv_source)
    heads, kv_heads, head_dim = own.get("heads", heads), own.get("kv_heads", kv_heads), own.get("head_dim", head_dim)
    attention_fields.update(own_fields)
    sources.update(dict.fromkeys((*own, *own_fields), f"layer 0 ({first.key.label()}): {schedule.source}"))
    rates: dict[str, int] = {}
    if family == "deepseek_v4":
        from attncli.kinds.dsv4.sizes import LAYER_TYPES, read_layer_types, read_sizes

        z = read_sizes(cfg, where)
        rates = {t: z.ratio(t) for t in LAYER_TYPES}
        layer0 = read_layer_types(cfg, where)[0]
        window, sources["window"] = z.window, f"{prefix}sliding_window (every DeepSeek-V4 layer)"
        sources["compress_ratio"] = f"{prefix}compress_ratios (layer 0: {layer0})"

    bias: bool | None
    bias_key = first_key(cfg, BIAS_KEYS)
    if bias_key is not None:
        bias, sources["bias"] = _bool(cfg, bias_key, where), prefix + bias_key
    elif family in ARCH_BIAS:
        bias, sources["bias"] = ARCH_BIAS[family], f"architecture default: {family}"
    else:
        bias, sources["bias"] = None, "unknown: not in config.json"

    causal, sources["causal"] = _causal(top, cfg, prefix, where)
    encoder = not causal and not sources["causal"].startswith("default:")
    guard.check_bidirectional_window(window, causal, encoder, cfg.get("layer_types"), where)
    if top.get("is_encoder_decoder") is True:
        notes.append("encoder-decoder: the encoder's self-attention (not causal) is described")
    sources["mask"] = sources["causal"]
    notes += guard.schedule_notes(cfg, family, window)
    notes += guard.notes(cfg, family, heads, head_dim if head_dim is not None else mla.get("qk_nope_head_dim"),
                         read)
    return LayerSettings(name=path, family=family, dim=dim, heads=heads, kv_heads=kv_heads,
                         head_dim=head_dim, window=window, bias=bias, causal=causal, sources=sources,
                         notes="; ".join(notes), kv_lora_rank=mla.get("kv_lora_rank"),
                         q_lora_rank=mla.get("q_lora_rank"), qk_nope_head_dim=mla.get("qk_nope_head_dim"),
                         qk_rope_head_dim=mla.get("qk_rope_head_dim"), v_head_dim=mla.get("v_head_dim"),
                         chunk=chunk, attention_fields=attention_fields, linear_fields=linear_fields,
                         layer0_type=layer0, ignored_fields=tuple(ignored), compress_rates=rates)


def _presets() -> dict[str, dict[str, Any]]:
    text = resources.files("attncli").joinpath("data/presets.json").read_text(encoding="utf-8")
    doc = json.loads(text)
    presets: dict[str, dict[str, Any]] = doc["presets"]
    return presets


def list_presets() -> list[LayerSettings]:
    """Every built-in preset, in file order."""
    return [load_preset(name) for name in _presets()]


def preset_names() -> list[str]:
    return list(_presets())


def preset_dtype(name: str) -> tuple[str, str] | None:
    """(dtype, source) of a one-layer preset whose published config names its ``torch_dtype``."""
    from attncli.names import find_name

    presets = _presets()
    name = find_name(name, presets, "--preset", "preset", "attncli presets")
    dtype = presets[name].get("dtype")
    return None if dtype is None else (str(dtype), f"preset {name} (its config.json's torch_dtype)")


def load_preset(name: str) -> LayerSettings:
    """The preset ``name`` (case-insensitive); an unknown name is a ``--preset`` error with the
    close matches (:func:`attncli.names.find_name`)."""
    from attncli.names import find_name

    presets = _presets()
    name = find_name(name, presets, "--preset", "preset", "attncli presets")
    p = presets[name]
    mla = {k: p.get(k) for k in MLA_FIELDS}
    layer = ("kv_heads", "head_dim") if mla["kv_lora_rank"] is None else MLA_FIELDS
    origin = f"preset {name}"
    sources = {k: origin for k in ("dim", "heads", *layer, "window", "bias", "causal", "mask")}
    # NOTE: what the family's class holds beyond q/k/v/o (Qwen2.5's o_proj has no bias), as from a config
    parts, parts_sources = parts_fields({}, p["family"], origin + ":", origin + ": ")
    sources.update(parts_sources)
    return LayerSettings(name=name, family=p["family"], dim=p["dim"], heads=p["heads"], kv_heads=p["kv_heads"],
                         head_dim=p["head_dim"], window=p["window"], bias=p["bias"], causal=p["causal"],
                         attention_fields=parts,
                         sources=sources, notes=p["notes"], link=p["source"], kv_lora_rank=mla["kv_lora_rank"],
                         q_lora_rank=mla["q_lora_rank"], qk_nope_head_dim=mla["qk_nope_head_dim"],
                         qk_rope_head_dim=mla["qk_rope_head_dim"], v_head_dim=mla["v_head_dim"])


# ------------------------------------------------------------------------------ merge
def merge(settings: LayerSettings | None, explicit: Mapping[str, Any]) -> Merged:
    """Lay the flags the user passed (``explicit``, AttnSpec keyword -> value) over ``settings``.

    Returns the ``AttnSpec`` keywords to use for ``LAYER_FIELDS`` plus every explicit flag, and
    their provenance. A value the config only derived (``default: dim/heads``, ``default:
    heads``) is dropped when the user overrides ``dim`` or ``heads``, so AttnSpec derives it
    again from the new sizes. An MLA layer (the config's ``kv_lora_rank``, or one typed) gets
    the MLA sizes that are set and never the config's ``kv_heads`` or ``head_dim``. Without
    settings, only the explicit flags are returned.
    """
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if settings is not None:
        resized = "dim" in explicit or "heads" in explicit
        mla = explicit.get("kv_lora_rank", settings.kv_lora_rank) is not None
        for name in LAYER_FIELDS:
            src = settings.sources.get(name, settings.sources.get("causal", settings.name))
            if resized and name in ("kv_heads", "head_dim") and src.startswith("default:"):
                continue
            if mla and name in ("kv_heads", "head_dim"):
                continue
            value = settings.mask if name == "mask" else getattr(settings, name)
            if value is None and (name == "bias" or name in MLA_FIELDS):
                continue
            values[name], sources[name] = value, src
        for name, value in settings.fields_for(settings.layer0_type).items():
            if name not in explicit:
                values[name], sources[name] = value, settings.sources.get(name, settings.name)
    for name, value in explicit.items():
        values[name], sources[name] = value, "command line"
    return Merged(values=values, sources=sources)
