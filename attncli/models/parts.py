"""The parameters a family's attention class holds beyond its q/k/v/o weights and shared biases.

A config.json does not say these; the model's class builds them (transformers 5.25's
``modeling_<family>.py``, cited per row). :func:`parts_fields` turns a family into the
:class:`attncli.spec.AttnSpec` settings that count them (``out_bias``, ``sinks``, ``qk_norm``),
with where each came from, so ``flops``, ``shapes``, ``model`` and ``--module`` hold the number of
parameters the real module holds. None of them is a multiply-add.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from attncli.models.values import switch


@dataclass(frozen=True)
class Parts:
    """What one family's attention class holds: ``qk_norm`` ``head`` (an RMSNorm of size d on each
    query and key head) or ``all`` (over all H*d query and G*d key features), ``sinks`` (one logit
    per head), ``out_bias`` (``o_proj``'s bias when it differs from q/k/v's, or the config key that
    switches it, false when absent), ``qk_norm_key`` (a config switch that turns the norms on, false when
    absent; no key: always built)."""

    source: str
    qk_norm: str | None = None
    qk_norm_key: str | None = None
    sinks: bool = False
    out_bias: bool | str | None = None


_HEAD = "head"
_ALL = "all"

FAMILY_PARTS: dict[str, Parts] = {
    "gpt_oss": Parts("GptOssAttention: self.sinks = nn.Parameter(torch.empty(num_attention_heads))", sinks=True),
    "qwen3": Parts("Qwen3Attention: q_norm, k_norm = Qwen3RMSNorm(head_dim)", qk_norm=_HEAD),
    "qwen3_moe": Parts("Qwen3MoeAttention: q_norm, k_norm = Qwen3MoeRMSNorm(head_dim)", qk_norm=_HEAD),
    "gemma3_text": Parts("Gemma3Attention: q_norm, k_norm = Gemma3RMSNorm(head_dim)", qk_norm=_HEAD),
    "gemma3": Parts("Gemma3Attention: q_norm, k_norm = Gemma3RMSNorm(head_dim)", qk_norm=_HEAD),
    "exaone4": Parts("Exaone4Attention: q_norm, k_norm = Exaone4RMSNorm(head_dim)", qk_norm=_HEAD),
    "olmo2": Parts("Olmo2Attention: q_norm = RMSNorm(H*d), k_norm = RMSNorm(G*d)", qk_norm=_ALL),
    "olmo3": Parts("Olmo3Attention: q_norm = RMSNorm(H*d), k_norm = RMSNorm(G*d)", qk_norm=_ALL),
    "minimax_m2": Parts("MiniMaxM2Attention: q_norm = RMSNorm(H*d), k_norm = RMSNorm(G*d)", qk_norm=_ALL),
    "gemma4_text": Parts("Gemma4TextAttention: q_norm, k_norm = Gemma4RMSNorm(head_dim); v_norm without weight",
                         qk_norm=_HEAD),
    "gemma3n_text": Parts("Gemma3nTextAttention: q_norm, k_norm = Gemma3nRMSNorm(head_dim); v_norm without weight",
                          qk_norm=_HEAD),
    "mimo_v2_flash": Parts("MiMoV2FlashAttention: o_proj bias=False", out_bias=False),
    "qwen2": Parts("Qwen2Attention: q/k/v bias=True, o_proj bias=False", out_bias=False),
    "qwen2_moe": Parts("Qwen2MoeAttention: q/k/v bias=config.qkv_bias, o_proj bias=False", out_bias=False),
    "glm4": Parts("Glm4Attention: q/k/v bias=config.attention_bias, o_proj bias=False", out_bias=False),
    "glm4_moe": Parts("Glm4MoeAttention: o_proj bias=False; q_norm, k_norm = RMSNorm(head_dim) with use_qk_norm",
                      out_bias=False, qk_norm=_HEAD, qk_norm_key="use_qk_norm"),
    "seed_oss": Parts("SeedOssAttention: o_proj bias=config.attention_out_bias (SeedOssConfig default False)",
                      out_bias="attention_out_bias"),
}
"""Per family, what its attention class holds that the config does not state (transformers 5.25)."""


def parts_fields(cfg: Mapping[str, Any], family: str | None, prefix: str,
                 where: str) -> tuple[dict[str, Any], dict[str, str]]:
    """(``AttnSpec`` settings, their sources) for ``family``'s extra parameters; empty for others."""
    parts = FAMILY_PARTS.get(family or "")
    if parts is None:
        return {}, {}
    fields: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if parts.sinks:
        fields["sinks"], sources["sinks"] = True, f"architecture: {parts.source}"
    if parts.qk_norm is not None:
        key = parts.qk_norm_key
        if key is None or (key in cfg and switch(cfg, key, where)):
            fields["qk_norm"], sources["qk_norm"] = parts.qk_norm, f"architecture: {parts.source}"
    if isinstance(parts.out_bias, bool):
        fields["out_bias"], sources["out_bias"] = parts.out_bias, f"architecture: {parts.source}"
    elif isinstance(parts.out_bias, str):
        fields["out_bias"] = parts.out_bias in cfg and switch(cfg, parts.out_bias, where)
        sources["out_bias"] = prefix + parts.out_bias if parts.out_bias in cfg else f"architecture: {parts.source}"
    return fields, sources
