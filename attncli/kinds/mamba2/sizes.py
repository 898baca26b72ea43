"""The sizes of one Mamba2 layer, and how a hybrid model's config.json names them (no torch).

Letters: E hidden, H heads (``mamba_num_heads``), P head size (``mamba_head_dim``), N state size
(``ssm_state_size``), G groups of B and C (``n_groups``), K the conv kernel (``conv_kernel``), C the SSD
chunk (``chunk_size``); I = H*P the inner width (``NemotronHMamba2Mixer.intermediate_size``: heads x
head size, not ``expand`` x E) and I + 2*G*N the conv's channels (x, B and C).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from attncli.choices import MAX_SIZE
from attncli.spec import SpecError

if TYPE_CHECKING:
    from attncli.spec import AttnSpec

DEFAULTS: dict[str, Any] = {"mamba_head_dim": 64, "ssm_state_size": 128, "mamba_n_groups": 8, "mamba_conv_kernel": 4,
                            "mamba_chunk": 128, "mamba_proj_bias": False, "mamba_conv_bias": True}
"""transformers' ``NemotronHConfig`` defaults, used when a size is not given."""

SSM_DTYPES: dict[str, int] = {"float32": 4, "bfloat16": 2, "float16": 2}
"""``mamba_ssm_cache_dtype`` values and their bytes."""


@dataclass(frozen=True)
class Mamba2Sizes:
    """The resolved sizes of one Mamba2 layer."""

    dim: int
    heads: int
    head_dim: int
    state: int
    groups: int
    kernel: int
    chunk: int
    proj_bias: bool
    conv_bias: bool

    @property
    def inner(self) -> int:
        """I = H*P: the scanned width, the gate's and ``out_proj``'s input."""
        return self.heads * self.head_dim

    @property
    def conv_dim(self) -> int:
        """The conv's channels: x, B and C (I + 2*G*N)."""
        return self.inner + 2 * self.groups * self.state

    @property
    def in_proj(self) -> int:
        """``in_proj``'s output width: the gate z, x, B, C and dt (2*I + 2*G*N + H)."""
        return self.inner + self.conv_dim + self.heads

    def to_dict(self) -> dict[str, Any]:
        return {"mamba_num_heads": self.heads, "mamba_head_dim": self.head_dim, "ssm_state_size": self.state,
                "mamba_n_groups": self.groups, "mamba_conv_kernel": self.kernel, "mamba_chunk": self.chunk,
                "mamba_proj_bias": self.proj_bias, "mamba_conv_bias": self.conv_bias}


def mamba2_sizes(spec: AttnSpec) -> Mamba2Sizes:
    """The Mamba2 sizes of ``spec``, transformers' defaults filled in."""
    assert spec.mamba_num_heads is not None

    def get(name: str) -> Any:
        value = getattr(spec, name)
        return DEFAULTS[name] if value is None else value

    return Mamba2Sizes(dim=spec.dim, heads=spec.mamba_num_heads, head_dim=get("mamba_head_dim"),
                       state=get("ssm_state_size"), groups=get("mamba_n_groups"), kernel=get("mamba_conv_kernel"),
                       chunk=get("mamba_chunk"), proj_bias=bool(get("mamba_proj_bias")),
                       conv_bias=bool(get("mamba_conv_bias")))


# ---------------------------------------------------------------------------- config.json
FAMILY_KEYS: dict[str, dict[str, tuple[str, ...]]] = {
    # NOTE: NemotronHConfig (configuration_nemotron_h.py) and its __post_init__ aliases (mamba_n_groups,
    # mamba_d_conv, mamba_conv_bias, mamba_chunk_size); NemotronHMamba2Mixer builds in_proj and out_proj with
    # bias=config.use_bias (mamba_proj_bias is not read by the mixer)
    "nemotron_h": {"mamba_num_heads": ("mamba_num_heads",), "mamba_head_dim": ("mamba_head_dim",),
                   "ssm_state_size": ("ssm_state_size",), "mamba_n_groups": ("n_groups", "mamba_n_groups"),
                   "mamba_conv_kernel": ("conv_kernel", "mamba_d_conv"),
                   "mamba_chunk": ("chunk_size", "mamba_chunk_size"), "mamba_proj_bias": ("use_bias",),
                   "mamba_conv_bias": ("use_conv_bias", "mamba_conv_bias")},
}
"""Per family: each Mamba2 setting -> the config fields that may hold it (the first present wins, as the
config class's aliases: a second one present must say the same)."""

FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "nemotron_h": {"mamba_num_heads": 128, "mamba_head_dim": 64, "ssm_state_size": 128, "mamba_n_groups": 8,
                   "mamba_conv_kernel": 4, "mamba_chunk": 128, "mamba_proj_bias": False, "mamba_conv_bias": True},
}
"""transformers' config class defaults per family (NemotronHConfig)."""

SSM_CACHE_DEFAULT: dict[str, str] = {"nemotron_h": "float32"}
"""vLLM's ``NemotronHForCausalLMConfig.DEFAULT_MAMBA_SSM_CACHE_DTYPE``: the SSM state's dtype when the config
names no ``mamba_ssm_cache_dtype`` ("Only float32 is known to have no accuracy issues by default")."""


def read_fields(cfg: Mapping[str, Any], family: str, prefix: str, where: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The Mamba2 settings of ``cfg`` (``family``'s names) and where each came from; one ``--config`` line
    naming the field when one is not a positive integer (or true/false for a bias)."""
    out: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, keys in FAMILY_KEYS[family].items():
        present = [k for k in keys if cfg.get(k) is not None]
        if not present:
            out[name] = FAMILY_DEFAULTS[family][name]
            sources[name] = f"default: transformers' {family} config {keys[0]} ({out[name]})"
            continue
        key = present[0]
        value = cfg[key]
        flag = name.endswith("_bias")
        if flag and not isinstance(value, bool):
            raise SpecError("--config", f"{where}{key} must be true or false, got {value!r}"[:200])
        if not flag and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise SpecError("--config", f"{where}{key} must be a positive integer, got {value!r}"[:200])
        if not flag and value > MAX_SIZE:  # NOTE: 2**64 reached torch as a conv's size (a traceback)
            raise SpecError("--config", f"{where}{key} is too large ({value} > {MAX_SIZE})"[:200])
        for other in present[1:]:
            if cfg[other] != value or type(cfg[other]) is not type(value):
                raise SpecError("--config", f"{where}{other} {cfg[other]!r} disagrees with {where}{key} {value!r} "
                                            "(two names for one size)"[:200])
        out[name], sources[name] = value, prefix + key
    dtype = cfg.get("mamba_ssm_cache_dtype")
    if dtype is None:
        dtype = SSM_CACHE_DEFAULT.get(family)
        if dtype is not None:
            sources["mamba_ssm_dtype"] = f"default: vLLM's {family} mamba_ssm_cache_dtype ({dtype})"
    else:
        if dtype not in SSM_DTYPES:
            raise SpecError("--config", f"{where}mamba_ssm_cache_dtype must be one of {', '.join(SSM_DTYPES)}, "
                                        f"got {dtype!r}"[:200])
        sources["mamba_ssm_dtype"] = prefix + "mamba_ssm_cache_dtype"
    if dtype is not None:
        out["mamba_ssm_dtype"] = dtype
    return out, sources
