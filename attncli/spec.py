"""The validated settings of one attention layer and its input.

``AttnSpec`` holds every setting a command needs: the options of
``torch.nn.MultiheadAttention`` (``embed_dim``, ``num_heads``, ``bias``, ``add_bias_kv``,
``add_zero_attn``, ``kdim``, ``vdim``, ``dropout``, ``batch_first``), the forward options
(``need_weights``, ``average_attn_weights``, masks) and the input sizes. It is validated in
one place, :meth:`AttnSpec.validate`, which raises :class:`SpecError` naming the flag at
fault. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from attncli.choices import FORMATS, IMPLS, MASKS, SELF_ATTENTION_ONLY

__all__ = ["FORMATS", "IMPLS", "MASKS", "SELF_ATTENTION_ONLY", "AttnSpec", "SpecError"]


class SpecError(ValueError):
    """A setting that cannot be used; ``flag`` names the command-line flag at fault."""

    def __init__(self, flag: str, message: str) -> None:
        super().__init__(f"{flag}: {message}")
        self.flag = flag
        self.message = message


@dataclass(frozen=True)
class AttnSpec:
    """Every setting of one attention layer and the input it is run on.

    ``kv_seq``, ``kdim`` and ``vdim`` are ``None`` when they default (to ``seq`` and ``dim``);
    use the ``s``, ``k_dim`` and ``v_dim`` properties for the resolved values.
    """

    dim: int = 512
    heads: int = 8
    batch: int = 1
    seq: int = 10
    kv_seq: int | None = None
    kdim: int | None = None
    vdim: int | None = None
    bias: bool = True
    add_bias_kv: bool = False
    add_zero_attn: bool = False
    dropout: float = 0.0
    batch_first: bool = True
    unbatched: bool = False
    need_weights: bool = True
    average_weights: bool = True
    mask: str = "none"
    impl: str = "torch"
    out_proj: bool = True
    seed: int = 0

    # ------------------------------------------------------------------ resolved sizes
    @property
    def s(self) -> int:
        """Key/value sequence length S (defaults to the query length L)."""
        return self.seq if self.kv_seq is None else self.kv_seq

    @property
    def k_dim(self) -> int:
        """Key feature size (``kdim``; defaults to ``dim``)."""
        return self.dim if self.kdim is None else self.kdim

    @property
    def v_dim(self) -> int:
        """Value feature size (``vdim``; defaults to ``dim``)."""
        return self.dim if self.vdim is None else self.vdim

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads

    @property
    def s_total(self) -> int:
        """Keys each query attends to: S, +1 with add_bias_kv, +1 more with add_zero_attn."""
        return self.s + int(self.add_bias_kv) + int(self.add_zero_attn)

    @property
    def is_self_attention(self) -> bool:
        """True when query, key and value are one tensor (same length, same features)."""
        return self.s == self.seq and self.k_dim == self.dim and self.v_dim == self.dim

    def with_(self, **changes: Any) -> AttnSpec:
        """A copy with ``changes`` applied and validated."""
        return replace(self, **changes).validate()

    def to_dict(self) -> dict[str, Any]:
        """The resolved settings, as the ``config`` object of every JSON document."""
        d = asdict(self)
        d["kv_seq"], d["kdim"], d["vdim"] = self.s, self.k_dim, self.v_dim
        d["head_dim"] = self.head_dim
        return d

    # ------------------------------------------------------------------ validation
    def validate(self) -> AttnSpec:
        """Check every setting; return ``self`` or raise :class:`SpecError`."""
        for flag, value in (("--dim", self.dim), ("--heads", self.heads),
                            ("--batch", self.batch), ("--seq", self.seq),
                            ("--kv-seq", self.kv_seq), ("--kdim", self.kdim),
                            ("--vdim", self.vdim)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise SpecError(flag, f"must be an integer, got {value!r}")
            if value is not None and value < 1:
                raise SpecError(flag, f"must be at least 1, got {value}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not -(2**63) <= self.seed < 2**64:
            raise SpecError("--seed", f"must be an integer in [-2**63, 2**64), got {self.seed!r}")
        if self.dim % self.heads:
            raise SpecError("--heads", f"--dim {self.dim} is not divisible by --heads {self.heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise SpecError("--dropout", f"must be in [0, 1), got {self.dropout}")
        if self.impl not in IMPLS:
            raise SpecError("--impl", f"unknown implementation {self.impl!r}; choose from {', '.join(IMPLS)}")
        if self.mask not in MASKS:
            raise SpecError("--mask", f"unknown mask {self.mask!r}; choose from {', '.join(MASKS)}")
        if self.impl in SELF_ATTENTION_ONLY:
            for flag, value, default in (("--kdim", self.kdim, self.dim),
                                         ("--vdim", self.vdim, self.dim),
                                         ("--kv-seq", self.kv_seq, self.seq)):
                if value is not None and value != default:
                    raise SpecError(flag, f"--impl {self.impl} projects one input (self-attention only); "
                                          f"it cannot take {flag} {value}")
        if self.unbatched and self.batch != 1:
            raise SpecError("--unbatched", f"an unbatched input has no batch; drop --batch {self.batch}")
        if self.mask == "causal" and self.s != self.seq:
            raise SpecError("--mask", f"causal needs --kv-seq equal to --seq (got S={self.s}, L={self.seq})")
        if self.mask == "padding" and self.s < 2:
            raise SpecError("--mask", "padding needs at least 2 keys (--kv-seq/--seq >= 2): "
                                      "a single padded key would leave nothing to attend to")
        return self
