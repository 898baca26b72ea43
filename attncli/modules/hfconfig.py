"""The config keywords a Hugging Face attention class is built from, and the check that what it built
is what was asked.

:func:`model_kwargs` lays the typed sizes over a model's own config.json (``--config``/``--preset``
with ``--module``); :func:`mla_kwargs` fills a multi-head latent attention config from the flags;
:func:`check_reached` exits 2, naming the flag, for a size or window the built class does not have
(its config does not use that flag). :mod:`attncli.modules.hf` builds the layer with them.
transformers is imported by the caller.
"""

from __future__ import annotations

from typing import Any

from attncli.modules.hfcall import HfSizes, transformers_logs
from attncli.registry import MLA_FIELDS
from attncli.spec import SpecError

FLAG = "--module"


def setting(settings: Any, name: str, default: Any = None) -> Any:
    """``settings.name``, or ``default`` when it is absent or ``None``."""
    value = getattr(settings, name, default)
    return default if value is None else value


def mla_kwargs(cls: type, config_cls: type, settings: Any) -> tuple[dict[str, Any], list[str]]:
    """The config keywords of a multi-head latent attention class (``DeepseekV3Attention``).

    With the MLA sizes in ``settings`` (``--kv-lora-rank``, a DeepSeek preset) every one of them
    goes to the config (``q_lora_rank`` 0 or ``None``: a direct ``q_proj``; the head sizes
    default to :data:`attncli.kinds.mla.kind.DEFAULTS`); without them the config class's defaults
    stay, and a note says so. The config's ``head_dim`` is its RoPE width (transformers sets it
    to ``qk_rope_head_dim``), so no ``head_dim`` is passed.
    """
    from attncli.kinds.mla.sizes import DEFAULTS

    name = cls.__name__
    heads = int(settings.heads)
    if int(setting(settings, "kv_heads", heads)) != heads:
        raise SpecError("--kv-heads", f"{name} is multi-head latent attention: its keys and values come from one "
                                      "shared latent (--kv-lora-rank), not from K/V heads")
    if setting(settings, "d_head") is not None:
        raise SpecError("--head-dim", f"{name} is multi-head latent attention: its head sizes are "
                                      "--qk-nope-head-dim, --qk-rope-head-dim and --v-head-dim")
    if setting(settings, "window") is not None:
        raise SpecError("--window", f"{name} has no sliding window")
    kw: dict[str, Any] = {"hidden_size": int(settings.dim), "num_attention_heads": heads,
                          "num_key_value_heads": heads, "num_hidden_layers": 1, "attention_dropout": 0.0}
    notes: list[str] = []
    if getattr(settings, "kv_lora_rank", None) is None:
        defaults = ", ".join(f"{f} {getattr(config_cls, f, None)}" for f in MLA_FIELDS)
        notes.append(f"{name} is multi-head latent attention, built with {config_cls.__name__}'s default sizes "
                     f"({defaults}): --kv-lora-rank, --q-lora-rank, --qk-nope-head-dim, --qk-rope-head-dim and "
                     "--v-head-dim choose them")
    else:
        kw["kv_lora_rank"] = int(settings.kv_lora_rank)
        kw["q_lora_rank"] = getattr(settings, "q_lora_rank", None) or None
        for f in ("qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"):
            kw[f] = int(setting(settings, f, DEFAULTS[f]))
    if getattr(settings, "mla_form", None) == "absorbed":
        raise SpecError("--mla-form", f"{name} runs the naive form (it expands every latent through kv_b_proj); "
                                      "drop --mla-form absorbed, or count attncli's own layer without --module")
    bias = setting(settings, "bias")
    if bias is not None:
        kw["attention_bias"] = bool(bias)
    return kw, notes


def model_kwargs(cls: type, config_cls: type, family: str, model_config: dict[str, Any], settings: Any,
                  mla: bool) -> dict[str, Any]:
    """The config keywords of the model's own config.json, with the sizes the settings changed.

    The settings are the config's values with the typed flags laid over them, so a size that differs
    from what the config class reads out of the file was typed: only those are passed again (under
    the class's own key, ``attribute_map``), and ``attention_dropout`` is 0.
    """
    from attncli.models.schedule import ALIASES

    model_type = model_config.get("model_type")
    prefix = cls.__name__.removesuffix("Attention")
    architectures = model_config.get("architectures")
    # NOTE: Kimi K2 is model_type kimi_k2 and architecture DeepseekV3ForCausalLM: the architecture decides.
    same = isinstance(architectures, list) and any(isinstance(a, str) and a.startswith(prefix) for a in architectures)
    if isinstance(model_type, str) and family and ALIASES.get(model_type, model_type) != family and not same:
        raise SpecError(FLAG, f"{cls.__name__} is a {family} layer and the config describes a {model_type} model: "
                              "give the attention class of that model")
    kw = {k: v for k, v in model_config.items() if k not in ("transformers_version",)}
    try:
        with transformers_logs():
            plain = config_cls(**kw)
    except Exception as exc:  # NOTE: third-party config classes raise anything
        raise SpecError("--config", f"{config_cls.__name__} cannot read the config: {type(exc).__name__}: "
                                    f"{' '.join(str(exc).split())}") from None
    wanted: dict[str, Any] = {"hidden_size": int(settings.dim), "num_attention_heads": int(settings.heads)}
    if mla:
        wanted.update({f: getattr(settings, f) for f in MLA_FIELDS if getattr(settings, f, None) is not None})
    else:
        wanted["num_key_value_heads"] = int(setting(settings, "kv_heads", settings.heads))
        if setting(settings, "head_dim") is not None:
            wanted["head_dim"] = int(settings.head_dim)
    if setting(settings, "window") is not None:
        wanted["sliding_window"] = int(settings.window)
    if setting(settings, "bias") is not None:
        wanted["attention_bias"] = bool(settings.bias)
    mapping = getattr(config_cls, "attribute_map", {}) or {}
    for name, value in wanted.items():
        if getattr(plain, name, None) != value:
            kw[mapping.get(name, name)] = value
    kw["attention_dropout"] = 0.0
    return kw


def check_reached(cls: type, module: Any, sizes: HfSizes, settings: Any, layer: str) -> None:
    """Exit 2, naming the flag, for a size the built class does not have: a flag its config does not use.

    The class's projections say what it built: ``k_proj`` is G*d wide, ``q_proj`` H*d (2*H*d with an
    output gate); a window must be the one the model's mask for this layer applies.
    """
    name = cls.__name__
    window = setting(settings, "window")
    if window is not None and sizes.window != int(window):
        why = (f"it is {sizes.layer_type}" if sizes.mla is None else "it is multi-head latent attention")
        raise SpecError("--window", f"{name} applies no sliding window of {window} on {layer} ({why}: its model "
                                    "builds no such mask there)")
    if sizes.mla is not None:
        return
    k_proj = getattr(module, "k_proj", None)
    q_proj = getattr(module, "q_proj", None)
    kv_heads = setting(settings, "kv_heads")
    if kv_heads is not None and int(kv_heads) != int(settings.heads):
        width = getattr(k_proj, "out_features", None)
        if width is not None and width != int(kv_heads) * sizes.head_dim:
            raise SpecError("--kv-heads", f"{name} does not build {kv_heads} key/value heads from its config "
                                          f"(k_proj is {width} wide)")
    head_dim = setting(settings, "head_dim")
    if head_dim is not None:
        width = getattr(q_proj, "out_features", None)
        if width is not None and width not in (sizes.heads * int(head_dim), 2 * sizes.heads * int(head_dim)):
            raise SpecError("--head-dim", f"{name} does not build heads of size {head_dim} from its config "
                                          f"(q_proj is {width} wide)")
