"""A Gated DeltaNet layer's own sizes (:class:`GdnSizes`), resolved from its settings with Qwen3-Next's
defaults (:data:`DEFAULTS`). Nothing here imports torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from attncli.spec import AttnSpec

DEFAULTS: dict[str, int] = {"linear_num_key_heads": 16, "linear_key_head_dim": 128, "linear_value_head_dim": 128,
                            "linear_conv_kernel_dim": 4}
"""transformers' ``Qwen3NextConfig`` defaults (Qwen3-Next-80B's sizes), used when a size is not given."""


@dataclass(frozen=True)
class GdnSizes:
    """The resolved sizes of one Gated DeltaNet layer."""

    dim: int
    hk: int
    hv: int
    dk: int
    dv: int
    kernel: int
    chunk: int

    @property
    def key_dim(self) -> int:
        return self.hk * self.dk

    @property
    def value_dim(self) -> int:
        return self.hv * self.dv

    @property
    def conv_dim(self) -> int:
        """The conv's channels: q, k and v (2*HK*DK + HV*DV)."""
        return 2 * self.key_dim + self.value_dim

    @property
    def qkvz(self) -> int:
        """``in_proj_qkvz``'s output width: 2*HK*DK + 2*HV*DV."""
        return 2 * self.key_dim + 2 * self.value_dim

    def to_dict(self) -> dict[str, Any]:
        return {"linear_num_key_heads": self.hk, "linear_num_value_heads": self.hv, "linear_key_head_dim": self.dk,
                "linear_value_head_dim": self.dv, "linear_conv_kernel_dim": self.kernel}


def gdn_sizes(spec: AttnSpec) -> GdnSizes:
    """The Gated DeltaNet sizes of ``spec``, with transformers' defaults filled in."""
    assert spec.linear_num_value_heads is not None

    def size(name: str) -> int:
        value = getattr(spec, name)
        return DEFAULTS[name] if value is None else int(value)

    return GdnSizes(dim=spec.dim, hk=size("linear_num_key_heads"), hv=spec.linear_num_value_heads,
                    dk=size("linear_key_head_dim"), dv=size("linear_value_head_dim"),
                    kernel=size("linear_conv_kernel_dim"), chunk=spec.gdn_chunk)
