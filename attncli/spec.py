"""The validated settings of one attention layer and its input.

``AttnSpec`` holds every setting a command needs: the options of
``torch.nn.MultiheadAttention`` (``embed_dim``, ``num_heads``, ``bias``, ``add_bias_kv``,
``add_zero_attn``, ``kdim``, ``vdim``, ``dropout``, ``batch_first``), the forward options
(``need_weights``, ``average_attn_weights``, masks) and the input sizes. It is validated in
one place, :meth:`AttnSpec.validate`, which raises :class:`SpecError` naming the flag at
fault. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from attncli.choices import FORMATS, IMPLS, MASKS, MODERN_IMPLS, SELF_ATTENTION_ONLY
from attncli.registry import KIND_FIELDS, entry, kind_of, select, title

__all__ = ["FORMATS", "IMPLS", "MASKS", "MODERN_IMPLS", "SELF_ATTENTION_ONLY", "AttnSpec", "SpecError"]

PER_HEAD_MAX_HEADS = 1024
"""``--impl per-head`` builds one module per head (even on the meta device): measured here
about 13 ms and 0.3 MiB per head and growing (4,096 heads: 83 s, 1.2 GiB), so more is refused."""
PER_HEAD_SECONDS = 0.02
"""The time model of the refusal message: seconds per head for one per-head layer."""


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
    kv_heads: int | None = None
    """Key/value heads G (``None``: as many as query heads); G = 1 is multi-query attention."""
    d_head: int | None = None
    """The size d of one head (``None``: dim / heads); ``--head-dim``."""
    window: int | None = None
    """Causal sliding window W: a query at position p sees keys p-W+1 .. p (``None``: no window)."""
    cache: int = 0
    """N past tokens already in the KV cache; the L query tokens are new and S = N + L."""
    chunk: int | None = None
    """Chunked attention C (Llama 4's ``attention_chunk_size``): a query at position p sees keys
    floor(p/C)*C .. p, those of its own chunk up to itself (``None``: no chunks)."""
    kv_lora_rank: int | None = None
    """R, the width of MLA's compressed key/value latent (``--kv-lora-rank``): set, the layer is
    multi-head latent attention (:mod:`attncli.kinds.mla.kind`); ``None``: standard attention."""
    q_lora_rank: int | None = None
    """RQ, MLA's query LoRA rank (``None`` or 0: a direct ``q_proj``, as DeepSeek-V2-Lite)."""
    qk_nope_head_dim: int | None = None
    """DN, the part of an MLA query/key head without RoPE (default 128, transformers' default)."""
    qk_rope_head_dim: int | None = None
    """DR, the RoPE part of an MLA query/key head, shared by all heads in the key (default 64)."""
    v_head_dim: int | None = None
    """DV, an MLA value head (default 128)."""
    mla_form: str = "auto"
    """``--mla-form``: naive (K and V expanded from the latent), absorbed (attention over the
    latent) or auto (absorbed for a decode step, L = 1 with a cache; naive otherwise)."""
    index_topk: int | None = None
    """K, the keys each query attends to in top-k sparse MLA (DeepSeek-V3.2's ``index_topk``)."""
    index_n_heads: int | None = None
    """The lightning indexer's heads (``index_n_heads``)."""
    index_head_dim: int | None = None
    """The lightning indexer's head size (``index_head_dim``)."""
    linear_num_key_heads: int | None = None
    """Gated DeltaNet key (and query) heads; set with the other ``linear_*`` sizes, the layer is
    Gated DeltaNet linear attention (Qwen3-Next's ``linear_attention`` layers)."""
    linear_num_value_heads: int | None = None
    linear_key_head_dim: int | None = None
    linear_value_head_dim: int | None = None
    linear_conv_kernel_dim: int | None = None
    """The depthwise causal convolution's kernel over q, k and v (Qwen3-Next: 4)."""
    linear_num_heads: int | None = None
    """Kimi Delta Attention heads H (``KimiLinearConfig.linear_num_heads``); set, the layer is KDA (kinds/kda)."""
    linear_head_dim: int | None = None
    gdn_form: str = "auto"
    """Gated DeltaNet's (and KDA's) form: recurrent (one token at a time), chunked (chunks of ``gdn_chunk``
    tokens, as transformers' ``torch_chunk_gated_delta_rule``), or auto (recurrent for a decode step)."""
    gdn_chunk: int = 64
    """The chunk size of the chunked form (transformers' and the fla kernels' 64)."""
    mamba_num_heads: int | None = None
    """H, a Mamba2 layer's heads; set, the layer is Mamba2 (:mod:`attncli.kinds.mamba2`). With the sizes below (P, N,
    G, K, the scan's chunk C, the in/out and conv biases, the SSM state's serving dtype), set from a config."""
    mamba_head_dim: int | None = None
    ssm_state_size: int | None = None
    mamba_n_groups: int | None = None
    mamba_conv_kernel: int | None = None
    mamba_chunk: int | None = None
    mamba_proj_bias: bool | None = None
    mamba_conv_bias: bool | None = None
    mamba_ssm_dtype: str | None = None
    mamba_form: str = "auto"
    """Mamba2: recurrent, chunked (transformers' ``mamba2_chunk_scan``) or auto (recurrent for a decode step)."""
    attn_output_gate: bool = False
    """Qwen3-Next's gated full attention: ``q_proj`` twice as wide, a sigmoid gate on the context."""
    out_bias: bool | None = None
    """The output projection's bias when the model's class builds it unlike the q/k/v biases (Qwen2:
    q/k/v biases, none on ``o_proj``); ``None``: as ``bias``. Set from a config, never a flag."""
    sinks: bool = False
    """One learned logit per head joined to each softmax (gpt-oss's ``sinks``): H parameters, no
    multiply-adds. Set from a config."""
    qk_norm: str | None = None
    """The RMSNorm weights on queries and keys the model's class holds: ``head`` (one of size d for
    q and one for k: Qwen3, Gemma 3) or ``all`` (over all H*d query and G*d key features: OLMo 2,
    MiniMax-M2). Parameters, no multiply-adds. Set from a config."""
    d_head_v: int | None = None
    """A value head's size d_v (MiMo-V2-Flash: 128 beside keys of 192); ``None``: d. From a config."""
    k_eq_v: bool = False
    """Keys are the values (Gemma 4's ``attention_k_eq_v``): no ``v_proj``. From a config."""
    kv_shared: bool = False
    """Reads another layer's KV cache (``num_kv_shared_layers``): no k/v projections, no cache of its own."""
    compress_ratio: int | None = None
    """A DeepSeek-V4 layer's compression rate m (its ``compress_ratios`` entry): 0 a sliding layer, m > 0 a
    compressed one (CSA with ``index_topk``: the indexer's top-k; HCA without). Set from a config."""
    o_groups: int | None = None
    """G, DeepSeek-V4's output groups (``o_groups``): ``o_a_proj`` is G blocks of H*D/G x ``o_lora_rank``."""
    o_lora_rank: int | None = None
    """OR, DeepSeek-V4's per-group output rank (``o_lora_rank``); set, the layer is DeepSeek-V4's
    (:mod:`attncli.kinds.dsv4`)."""
    model: str | None = None
    """The preset or config the layer comes from (``--preset`` name, or the config's folder or file
    name), named in every title; ``None`` for a layer made from flags alone."""
    layer: int | None = None
    """The model layer described (``--layer N`` with ``--config``/``--preset``); ``None``: layer 0 of a
    config read as today, or no model at all."""
    layer_type: str | None = None
    """That layer's type as transformers names it (``sliding_attention``, ``chunked_attention``,
    ``full_attention``, ``linear_attention``), with ``layer``."""
    model_config: Any = field(default=None, compare=False, repr=False)
    """The model's (text) config.json as a dict, when the layer comes from a whole model's config or
    preset: what a Hugging Face class given with ``--module`` is built from (never in ``to_dict``)."""
    notes: tuple[str, ...] = field(default=(), compare=False)
    """What the layer's ``--config`` holds that attncli reads but does not count (sinks,
    softcapping, qk-norm), and which layer of a schedule is described; shown with every count."""
    sources: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    """Where each setting came from (``--config``/``--preset``): (name in ``to_dict``, origin) pairs,
    e.g. ``("kv_heads", "config.json:num_key_value_heads")``; empty without a config or preset."""
    ignored_fields: tuple[str, ...] = field(default=(), compare=False)
    """The config's fields ``--ignore-field`` let pass (neither read nor known not to change the layer): every
    title and JSON document names them, since the count then rests on the user's judgement."""

    # ------------------------------------------------------------------ the kind of layer
    @property
    def kind(self) -> str:
        """The kind of attention layer (:mod:`attncli.kinds`), as the settings that select one say
        (:func:`attncli.registry.select`: ``--kv-lora-rank`` selects MLA); the standard kind (multi-head,
        grouped-query or multi-query) when none does."""
        return select(self)

    @property
    def form(self) -> str | None:
        """The form as run: MLA's ``naive`` or ``absorbed``, Gated DeltaNet's ``recurrent`` or ``chunked``
        (the kind's form setting, ``auto`` resolved: the decode-step form for L = 1 with a cache); ``None``
        for a kind of one form."""
        forms = entry(self.kind).form
        if forms is None:
            return None
        setting, decode, otherwise = forms
        chosen = getattr(self, setting)
        if chosen != "auto":
            return str(chosen)
        return decode if self.seq == 1 and self.cache > 0 else otherwise

    @property
    def runs_on_impls(self) -> bool:
        """True for the layer of ``nn.MultiheadAttention``'s family, run by every ``--impl`` of
        :data:`IMPLS`; False for a kind that runs its own layer (``--impl`` then names the kind)."""
        return entry(self.kind).impl is None

    # ------------------------------------------------------------------ resolved sizes
    @property
    def s(self) -> int:
        """Key/value sequence length S: the KV cache plus the new tokens, or ``--kv-seq``
        (defaults to the query length L)."""
        if self.cache:
            return self.cache + self.seq
        return self.seq if self.kv_seq is None else self.kv_seq

    @property
    def kv_tokens(self) -> int:
        """Tokens projected into keys and values per batch item: S without a cache, L with one
        (the cached N tokens were projected by earlier steps)."""
        return self.s - self.cache

    @property
    def n_kv_heads(self) -> int:
        """Key/value heads G (``--kv-heads``; defaults to ``--heads``)."""
        return self.heads if self.kv_heads is None else self.kv_heads

    @property
    def inner(self) -> int:
        """H * d: the width of the queries, the merged context and W_O's input."""
        return self.heads * self.head_dim

    @property
    def kv_inner(self) -> int:
        """G * d: the width of the projected keys."""
        return self.n_kv_heads * self.head_dim

    @property
    def v_head(self) -> int:
        """d_v, one value head (:attr:`d_head_v`, else d); H*d_v and G*d_v: :attr:`v_inner`, :attr:`kv_v_inner`."""
        return self.head_dim if self.d_head_v is None else self.d_head_v

    @property
    def v_inner(self) -> int:
        return self.heads * self.v_head

    @property
    def kv_v_inner(self) -> int:
        return self.n_kv_heads * self.v_head

    @property
    def own_geometry(self) -> bool:
        """A value head of its own size, K = V or a shared KV cache (the split and sdpa layers run them)."""
        return self.d_head_v is not None or self.k_eq_v or self.kv_shared

    @property
    def is_modern(self) -> bool:
        """True when the layer needs more than ``nn.MultiheadAttention`` can express."""
        return (self.kv_heads not in (None, self.heads) or self.d_head not in (None, self.dim // self.heads)
                or self.own_geometry or self.window is not None or self.chunk is not None or self.cache > 0)

    @property
    def causal(self) -> bool:
        """True when queries see no later keys (``--mask causal``, a ``--window`` or a ``--chunk``)."""
        return self.mask == "causal" or self.window is not None or self.chunk is not None

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
        """The size d of one head (``--head-dim``; defaults to dim / heads)."""
        return self.dim // self.heads if self.d_head is None else self.d_head

    @property
    def kept_cache(self) -> int:
        """Past tokens the layer's cache holds when this step begins, as transformers' caches keep
        them: all N, or at most W - 1 with a window and C - 1 with a chunk (``DynamicSlidingWindowLayer``)."""
        if self.window is not None:
            return min(self.cache, self.window - 1)
        if self.chunk is not None:
            return min(self.cache, self.chunk - 1)
        return self.cache

    @property
    def s_kernel(self) -> int:
        """Keys the attention kernel computes scores over: the kept cache and the L new tokens
        (S without a cache). A decode step of a sliding layer computes W, not S (transformers)."""
        return self.kept_cache + self.seq if self.cache else self.s

    @property
    def extra_keys(self) -> int:
        """The keys ``nn.MultiheadAttention`` appends: +1 with add_bias_kv, +1 more with add_zero_attn."""
        return int(self.add_bias_kv) + int(self.add_zero_attn)

    @property
    def s_total(self) -> int:
        """Keys each query's scores are computed over (S'): :attr:`s_kernel` and :attr:`extra_keys`."""
        return self.s_kernel + self.extra_keys

    @property
    def is_self_attention(self) -> bool:
        """True when query, key and value are one tensor (same length, same features).

        With a KV cache the new tokens are projected into keys and values too: still one tensor.
        """
        return self.kv_tokens == self.seq and self.k_dim == self.dim and self.v_dim == self.dim

    def with_(self, **changes: Any) -> AttnSpec:
        """A copy with ``changes`` applied and validated."""
        return replace(self, **changes).validate()

    def to_dict(self) -> dict[str, Any]:
        """The resolved settings, as the ``config`` object of every JSON document."""
        d = asdict(replace(self, model_config=None))
        d.pop("model_config")
        if self.layer is None:
            d.pop("layer")
            d.pop("layer_type")
        if self.model is None:
            d.pop("model")
        d["kind"] = self.kind
        for key, (kinds, _) in KIND_FIELDS.items():
            if self.kind not in kinds:
                d.pop(key)
        kind_of(self).config_entries(self, d)
        if self.form is not None:
            d["form"] = self.form
        d["kv_seq"], d["kdim"], d["vdim"] = self.s, self.k_dim, self.v_dim
        sources = d.pop("sources")
        if sources:
            d["sources"] = {k: v for k, v in sources}
        if not d["notes"]:
            del d["notes"]
        if d["ignored_fields"]:
            d["ignored_fields"] = list(d["ignored_fields"])
        else:
            del d["ignored_fields"]
        return d

    # ------------------------------------------------------------------ validation
    @property
    def o_bias(self) -> bool:
        """Whether the output projection has a bias (:attr:`out_bias`, else :attr:`bias`)."""
        return self.bias if self.out_bias is None else self.out_bias

    def validate(self) -> AttnSpec:
        """Check every setting; return ``self`` or raise :class:`SpecError`."""
        for flag, value in (("--dim", self.dim), ("--heads", self.heads),
                            ("--batch", self.batch), ("--seq", self.seq),
                            ("--kv-seq", self.kv_seq), ("--kdim", self.kdim),
                            ("--vdim", self.vdim), ("--kv-heads", self.kv_heads),
                            ("--head-dim", self.d_head), ("--window", self.window), ("--chunk", self.chunk)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise SpecError(flag, f"must be an integer, got {value!r}")
            if value is not None and value < 1:
                raise SpecError(flag, f"must be at least 1, got {value}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not -(2**63) <= self.seed < 2**64:
            raise SpecError("--seed", f"must be an integer in [-2**63, 2**64), got {self.seed!r}")
        if isinstance(self.cache, bool) or not isinstance(self.cache, int) or self.cache < 0:
            raise SpecError("--cache", f"must be an integer of at least 0, got {self.cache!r}")
        if self.d_head is None and self.dim % self.heads and self.runs_on_impls:
            raise SpecError("--heads", f"--dim {self.dim} is not divisible by --heads {self.heads} "
                                       "(give --head-dim to choose the head size)")
        if self.n_kv_heads > self.heads or self.heads % self.n_kv_heads:
            raise SpecError("--kv-heads", f"--kv-heads {self.n_kv_heads} must divide --heads {self.heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise SpecError("--dropout", f"must be in [0, 1), got {self.dropout}")
        if self.impl not in IMPLS and self.impl != entry(self.kind).impl:
            raise SpecError("--impl", f"unknown implementation {self.impl!r}; choose from {', '.join(IMPLS)}")
        if self.mask not in MASKS:
            raise SpecError("--mask", f"unknown mask {self.mask!r}; choose from {', '.join(MASKS)}")
        for name, (kinds, unset) in KIND_FIELDS.items():
            if self.kind not in kinds and getattr(self, name) not in unset:
                flag = "--" + name.replace("_", "-")
                raise SpecError(flag, f"applies to {' and '.join(title(k) for k in kinds)} only, not to "
                                      f"{title(self.kind)}")
        kind_of(self).validate(self)
        if self.impl in SELF_ATTENTION_ONLY:
            for flag, value, default in (("--kdim", self.kdim, self.dim),
                                         ("--vdim", self.vdim, self.dim),
                                         ("--kv-seq", self.kv_seq, self.seq)):
                if value is not None and value != default:
                    raise SpecError(flag, f"--impl {self.impl} projects one input (self-attention only); "
                                          f"it cannot take {flag} {value}")
        self._validate_modern()
        if self.qk_norm not in (None, "head", "all"):
            raise SpecError("--config", f"qk_norm must be head or all, got {self.qk_norm!r}")
        if self.impl == "torch" and (self.sinks or self.qk_norm or self.o_bias != self.bias):
            raise SpecError("--impl", "nn.MultiheadAttention cannot hold this model's sinks, qk-norm or output "
                                      "bias; use --impl split, fused or sdpa")
        if self.unbatched and self.batch != 1:
            raise SpecError("--unbatched", f"an unbatched input has no batch; drop --batch {self.batch}")
        if self.causal and self.s < self.seq:
            flag, what = (("--window", "a window") if self.window is not None else ("--chunk", "a chunked mask")
                          if self.chunk is not None else ("--mask", "causal"))
            raise SpecError(flag, f"{what} is aligned bottom-right and needs S >= L (got S={self.s}, "
                                  f"L={self.seq}): the first {self.seq - self.s} queries would see no key")
        if self.mask == "padding" and self.s < 2:
            raise SpecError("--mask", "padding needs at least 2 keys (--kv-seq/--seq >= 2): "
                                      "a single padded key would leave nothing to attend to")
        if self.impl == "per-head" and self.heads > PER_HEAD_MAX_HEADS:
            seconds = self.heads * PER_HEAD_SECONDS
            raise SpecError("--heads", f"--impl per-head builds one module per head and {self.heads:,} heads would "
                                       f"take about {seconds:,.0f} s per layer built; at most "
                                       f"{PER_HEAD_MAX_HEADS:,} (--impl split runs the same layer as one module)")
        return self

    def _validate_modern(self) -> None:
        """--kv-heads, --head-dim, --window, --cache: what they combine with, and which impls run them."""
        if self.window is not None and self.mask == "padding":
            raise SpecError("--window", "cannot be combined with --mask padding (the window is causal by itself)")
        if self.chunk is not None and self.mask == "padding":
            raise SpecError("--chunk", "cannot be combined with --mask padding (chunked attention is causal by itself)")
        if self.chunk is not None and self.window is not None:
            raise SpecError("--chunk", "give --window or --chunk: a layer is sliding or chunked, not both")
        if self.cache:
            if self.kv_seq is not None:
                raise SpecError("--cache", f"a KV cache sets S = N + L itself; drop --kv-seq {self.kv_seq}")
            for flag, value in (("--kdim", self.kdim), ("--vdim", self.vdim)):
                if value is not None and value != self.dim:
                    raise SpecError("--cache", f"the cached keys and values come from the same --dim {self.dim} "
                                               f"tokens; it cannot take {flag} {value}")
            for flag, on in (("--add-bias-kv", self.add_bias_kv), ("--add-zero-attn", self.add_zero_attn)):
                if on:
                    raise SpecError("--cache", f"cannot be combined with {flag} (nn.MultiheadAttention's extra "
                                               "keys belong to a layer without a cache)")
        if self.impl not in MODERN_IMPLS and self.runs_on_impls:
            can = ", ".join(MODERN_IMPLS)
            for flag, used in (("--kv-heads", self.n_kv_heads != self.heads),
                               ("--head-dim", self.d_head is not None and self.d_head * self.heads != self.dim),
                               ("--window", self.window is not None), ("--chunk", self.chunk is not None),
                               ("--cache", self.cache > 0)):
                if used:
                    raise SpecError(flag, f"--impl {self.impl} (nn.MultiheadAttention) cannot run it; "
                                          f"use --impl {can}")
