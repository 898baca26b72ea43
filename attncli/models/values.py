"""Typed values of a ``config.json`` and the model's causality: the checks every reader shares.

A size is a positive JSON integer below :data:`attncli.choices.MAX_SIZE`, a switch a JSON boolean; anything else is
one ``--config`` :class:`~attncli.spec.SpecError` naming the field. :func:`causal` says whether
the model's self-attention is causal, and why (every layer of a model shares it). Which layer is
described, and its window, chunk and type, is the schedule's question
(:func:`attncli.models.schedule.first_layer`). Nothing here imports torch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from attncli.choices import MAX_SIZE
from attncli.models.guard import DECODERS, ENCODERS
from attncli.spec import SpecError


def size(cfg: Mapping[str, Any], key: str, where: str, flag: str = "--config") -> int:
    value = cfg[key]
    # NOTE: bool is an int subclass and 4096.0 is a float; neither is a size in a config.json.
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(flag, f"{where}{key} must be an integer, got {json.dumps(value)[:40]}")
    if value <= 0:
        raise SpecError(flag, f"{where}{key} must be positive, got {value}")
    if value > MAX_SIZE:
        raise SpecError(flag, f"{where}{key} is too large ({value} > {MAX_SIZE})")
    return value


def switch(cfg: Mapping[str, Any], key: str, where: str, flag: str = "--config") -> bool:
    value = cfg[key]
    if not isinstance(value, bool):
        raise SpecError(flag, f"{where}{key} must be true or false, got {json.dumps(value)[:40]}")
    return value


def causal(top: Mapping[str, Any], cfg: Mapping[str, Any], prefix: str, where: str) -> tuple[bool, str]:
    """Whether the model's self-attention is causal, and why. Every field that says so is read (and
    checked) in both the top-level config and a nested text config, then the first rule that applies wins:
    an encoder-decoder, ``is_decoder``, a causal-LM architecture, the family."""
    scopes = [("config.json:", "", top)] + ([(prefix, where, cfg)] if cfg is not top else [])
    enc_dec = is_decoder = False
    arch: str | None = None
    for said, at, scope in scopes:
        enc_dec = enc_dec or (scope.get("is_encoder_decoder") is not None and switch(scope, "is_encoder_decoder", at))
        archs = scope.get("architectures")
        if archs is not None:
            if not isinstance(archs, list) or not all(isinstance(a, str) for a in archs):
                raise SpecError("--config", f"{at}architectures must be a list of strings")
            arch = arch or next((f"{said}architectures ({a})" for a in archs if a.endswith(
                ("ForCausalLM", "LMHeadModel")) and not a.endswith("MaskedLMHeadModel")), None)
            if cfg is not top and scope is top and not enc_dec:
                # NOTE: a multimodal model generating text (Qwen2VLForConditionalGeneration,
                # Gemma3ForConditionalGeneration) runs its text_config as a causal decoder.
                arch = arch or next((f"{said}architectures ({a}: its text model generates)" for a in archs
                                     if a.endswith("ForConditionalGeneration")), None)
    is_decoder = cfg.get("is_decoder") is not None and switch(cfg, "is_decoder", where)
    family = cfg.get("model_type", top.get("model_type"))
    if top.get("is_encoder_decoder") is True:
        return False, "config.json:is_encoder_decoder (encoder self-attention)"
    if is_decoder:
        return True, prefix + "is_decoder"
    if family in IS_DECODER_FAMILIES:
        # NOTE: their layers build the attention with is_causal=config.is_decoder (modeling_bert.py BertLayer),
        # whatever class the checkpoint names: BertLMHeadModel without is_decoder is bidirectional.
        return False, f"architecture default: {family} is causal only with is_decoder (false or absent here)"
    if arch is not None:
        return True, arch
    if cfg.get("is_decoder") is False:
        return False, prefix + "is_decoder (false)"
    if family in DECODERS:
        return True, f"architecture default: {family} is a decoder"
    if family in ENCODERS:
        return False, f"architecture default: {family} is an encoder"
    return False, UNKNOWN_CAUSALITY


IS_DECODER_FAMILIES = frozenset({
    "bert", "bert-generation", "bridgetower_text_model", "camembert", "data2vec-text", "electra", "ernie", "longt5",
    "mt5", "pix2struct_text_model", "pop2piano", "roberta", "roberta-prelayernorm", "roc_bert", "switch_transformers",
    "t5", "udop", "umt5", "xlm-roberta", "xlm-roberta-xl", "xmod"})
"""Families whose layers take ``is_causal=config.is_decoder`` (transformers 5.25's modeling files): causal with
``is_decoder`` true, bidirectional otherwise, whatever the architecture."""

UNKNOWN_CAUSALITY = "default: not known to be a decoder"
"""The causal source of a config that says neither way (no ``is_decoder``, no causal-LM architecture, a family
attncli does not know): the commands refuse it unless ``--mask`` is typed (:func:`refuse_unknown_mask`)."""


def refuse_unknown_mask(source: str, family: str | None, typed: bool) -> None:
    """Refuse a config whose causality attncli guessed, unless the user typed ``--mask``: a causal and a
    bidirectional layer are different layers (the effective count, the permutation test)."""
    if source == UNKNOWN_CAUSALITY and not typed:
        what = f"model_type {family}" if family else "a config without model_type"
        raise SpecError("--config", f"{what}: attncli cannot tell whether its attention is causal (no is_decoder, "
                                    "no ...ForCausalLM architecture, a family it does not know); give --mask causal "
                                    "or --mask none")
