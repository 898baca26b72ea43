"""An MLA layer's own sizes (:class:`MlaSizes`), resolved from its settings with transformers' DeepSeek
defaults (:data:`DEFAULTS`). Nothing here imports torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from attncli.spec import AttnSpec

DEFAULTS: dict[str, int] = {"qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128}
"""transformers' ``DeepseekV3Config`` defaults, used when the flag is not given."""


@dataclass(frozen=True)
class MlaSizes:
    """The resolved sizes of one MLA layer."""

    dim: int
    heads: int
    kv_lora_rank: int
    q_lora_rank: int | None
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int
    bias: bool

    @property
    def qk_head_dim(self) -> int:
        """DN + DR: one head's query and key width."""
        return self.qk_nope_head_dim + self.qk_rope_head_dim

    @property
    def latent(self) -> int:
        """R + DR: what the cache holds per token and layer (values, not bytes)."""
        return self.kv_lora_rank + self.qk_rope_head_dim

    def to_dict(self) -> dict[str, Any]:
        return {"kv_lora_rank": self.kv_lora_rank, "q_lora_rank": self.q_lora_rank,
                "qk_nope_head_dim": self.qk_nope_head_dim, "qk_rope_head_dim": self.qk_rope_head_dim,
                "v_head_dim": self.v_head_dim}


def mla_sizes(spec: AttnSpec) -> MlaSizes:
    """The MLA sizes of ``spec`` with the defaults filled in (``q_lora_rank`` 0 is ``None``)."""
    assert spec.kv_lora_rank is not None
    return MlaSizes(
        dim=spec.dim, heads=spec.heads, kv_lora_rank=spec.kv_lora_rank,
        q_lora_rank=spec.q_lora_rank or None,
        qk_nope_head_dim=DEFAULTS["qk_nope_head_dim"] if spec.qk_nope_head_dim is None else spec.qk_nope_head_dim,
        qk_rope_head_dim=DEFAULTS["qk_rope_head_dim"] if spec.qk_rope_head_dim is None else spec.qk_rope_head_dim,
        v_head_dim=DEFAULTS["v_head_dim"] if spec.v_head_dim is None else spec.v_head_dim,
        bias=spec.bias)
