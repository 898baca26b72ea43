"""What every kind of attention layer answers: the :class:`Kind` protocol (no torch).

A kind is a module (:mod:`attncli.kinds.standard.kind`, :mod:`attncli.kinds.mla.kind`) with these
names. All counts are MACs (see :mod:`attncli.layer.formulas` for the convention); stage names are
the keys of ``by_stage`` in every JSON document.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from attncli.kinds.cache import CacheSpec
    from attncli.kinds.shapes import ShapesReport
    from attncli.layer.formulas import Memory
    from attncli.spec import AttnSpec


class CountedVariant(Protocol):
    """One counted variant as a kind's words read it (``attncli.analyses.flops.Variant`` is one)."""

    @property
    def spec(self) -> AttnSpec | None: ...
    @property
    def form(self) -> str | None: ...
    @property
    def fvcore_flops(self) -> int: ...
    @property
    def effective_fvcore_flops(self) -> int: ...
    @property
    def effective_by_stage(self) -> dict[str, int]: ...
    @property
    def memory(self) -> Memory: ...


class Counted(Protocol):
    """A layer's count as a kind's conclusion reads it (``attncli.analyses.flops.FlopsReport`` is one): the
    kinds sit below the analyses that count them, so they name what they read and import no analysis."""

    @property
    def spec(self) -> AttnSpec: ...
    @property
    def variants(self) -> Sequence[CountedVariant]: ...
    @property
    def heads_cost(self) -> int | None: ...
    @property
    def out_proj_cost(self) -> int | None: ...
    @property
    def out_proj_percent(self) -> float | None: ...
    def get(self, heads: int, out_proj: bool) -> CountedVariant | None: ...


class Kind(Protocol):
    NAME: str
    """The kind's name, as ``config.kind`` in JSON."""
    STAGE_LABELS: dict[str, str]
    """How the tables name each stage (every stage of every form, and ``other``)."""
    SHORT_LABELS: dict[str, str]
    """Narrow column heads for each stage."""
    ABBREVIATIONS: dict[str, str]
    """The narrowest column heads (the sweep's main table)."""
    TERMS: str
    """What the letters of the closed forms stand for."""
    KV_FORM: str
    """The KV cache's closed form in bytes, as the memory tables print it."""
    PERMUTE_SKIPPED: str | None
    """Why ``attncli report`` runs no permutation test on this kind (None: it runs one)."""
    SWEEP_EXPECTED: dict[str, str]
    """What the closed forms predict for each setting ``attncli sweep`` may sweep."""

    SWEEP_EFFECTIVE_OWN: bool
    """Whether :data:`SWEEP_EXPECTED` already says how the effective counts grow under a mask."""
    TP_WORDS: str | None
    """How ``--tp`` shards the layer, in words (None: the words every kind shares)."""
    PAGED_MODELLED: bool
    """Whether a paged engine's layout of this kind's cache is modelled (DeepSeek-V4's is not)."""
    HF_CLASS: str
    """What ``--module`` does with a Hugging Face class for this kind: ``built``, ``config``, ``counted``, ``own`` or
    ``refused`` (:data:`attncli.kinds.standard.kind.HF_CLASS` says what each means)."""
    BENCH_FORMS: bool
    """Whether ``attncli bench`` times the layer in each of its forms (MLA's naive and absorbed), or as asked only."""

    def validate(self, spec: AttnSpec) -> None:
        """The kind's own checks (called by ``AttnSpec.validate``); :class:`SpecError` names the flag."""

    def config_entries(self, spec: AttnSpec, d: dict[str, Any]) -> None:
        """Put the kind's own sizes into ``d``, the JSON ``config`` object ``AttnSpec.to_dict`` is building (the
        settings of other kinds already dropped), and drop the settings the kind's sizes replace."""

    def head_counts(self, spec: AttnSpec) -> tuple[int, int | None]:
        """The layer's heads (those ``--tp`` splits) and its grouped K/V heads (None: a kind without them)."""

    def stages(self, spec: AttnSpec) -> tuple[str, ...]:
        """The stages of ``spec``, in the order they run."""

    def closed_form(self, spec: AttnSpec) -> dict[str, int]:
        """Dense MACs of every stage of :meth:`stages`."""

    def visible_pairs(self, spec: AttnSpec) -> int:
        """(query, key) pairs of one batch item and head the layer's mask (or its top-k) leaves."""

    def effective(self, spec: AttnSpec, by_stage: dict[str, int]) -> tuple[dict[str, int], tuple[str, ...]]:
        """The effective count of a dense ``by_stage`` (only the work the mask leaves), and the problems."""

    def closed_form_texts(self, spec: AttnSpec) -> dict[str, str]:
        """The closed form of every stage, as text."""

    def params(self, spec: AttnSpec) -> dict[str, int]:
        """Parameters by part, and ``total``, as the layer holds them."""

    def kv_bytes_per_token(self, spec: AttnSpec, bytes_per_element: int) -> int:
        """What the layer's cache holds per token and sequence."""

    def kv_cache_bytes(self, spec: AttnSpec, bytes_per_element: int) -> int:
        """What the layer's cache holds after this step (B sequences of S tokens)."""

    def vllm_cache_spec(self, spec: AttnSpec, kv_cache_dtype: str, model_bytes: int, ssm_bytes: int | None,
                        tp: int) -> tuple[CacheSpec, ...]:
        """The caches vLLM v1 builds for one such layer on one of ``tp`` devices (one per cache the
        layer registers), at ``--kv-cache-dtype`` (``model_bytes``: the model's element size) and
        ``--mamba-ssm-cache-dtype`` (``ssm_bytes``, None: auto) (:mod:`attncli.kinds.cache`)."""

    def device_spec(self, spec: AttnSpec, tp: int) -> AttnSpec:
        """What one of ``tp`` devices runs of the layer (vLLM's tensor parallelism: what shards, what is
        replicated); :class:`SpecError` on ``--tp`` when ``tp`` does not divide what must split."""

    def kv_cache_held_bytes(self, spec: AttnSpec, bytes_per_element: int) -> int:
        """The storage the cache holds after the step (transformers' sliding cache is a view of the step's
        concatenation, which stays alive); what it keeps for the others."""

    def kv_fixed_bytes(self, spec: AttnSpec, bytes_per_element: int) -> int | None:
        """The part of the cache that grows by whole entries every m tokens (DeepSeek-V4), else None."""

    def keeps_line(self, spec: AttnSpec) -> str | None:
        """A line of its own for ``model``'s table saying what the layer keeps and attends to, or None."""

    def memory(self, spec: AttnSpec, dtype: str) -> Memory:
        """The attention matrix, the activations and the KV cache of one forward pass."""

    def variant_specs(self, spec: AttnSpec) -> list[AttnSpec]:
        """The variants ``attncli flops`` counts: the layer as configured first."""

    def variant_label(self, spec: AttnSpec) -> str:
        """How a variant is named in tables and JSON."""

    def variants_note(self, spec: AttnSpec) -> str:
        """One sentence under the variants table: what the rows after the first are."""

    def build_call(self, spec: AttnSpec, device: str) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
        """The torch module attncli traces for ``spec`` and the arguments of one call (imports torch)."""

    def relabel(self, scope: str, stage: str) -> str:
        """The stage of an op the tracer attributed to ``stage``, run in submodule ``scope``."""

    def kernel_elements(self, spec: AttnSpec, naive: bool, dense: dict[str, int],
                        effective: dict[str, int]) -> list[tuple[str, int, int]]:
        """The roofline's kernels: (name, MACs, elements moved) for a fused attention kernel
        (``naive`` False: effective MACs) or a naive one (dense MACs, scores materialised)."""

    def title_parts(self, spec: AttnSpec) -> list[str]:
        """Terms a layer title adds for this kind (empty for the standard kind)."""

    def short_label(self, spec: AttnSpec) -> str:
        """A variant's name in narrow tables."""

    def conclusion(self, report: Counted) -> str:
        """The sentence under the variants table."""

    def analyse_shapes(self, spec: AttnSpec) -> ShapesReport:
        """``attncli shapes``: every stage's shape, the weights, the returned shapes (imports torch)."""

    def check_representable(self, spec: AttnSpec) -> None:
        """Refuse (SpecError naming the flag) sizes torch cannot describe, before anything is built."""


# ---------------------------------------------------------------------------- answers kinds share
def sized_entries(sizes: Callable[[AttnSpec], Any]) -> Callable[[AttnSpec, dict[str, Any]], None]:
    """The ``config_entries`` of a kind whose own sizes dataclass (``sizes(spec).to_dict()``) says its heads: those
    entries in, the standard layer's ``kv_heads`` and ``d_head`` settings out."""
    def config_entries(spec: AttnSpec, d: dict[str, Any]) -> None:
        d.update(sizes(spec).to_dict())
        d.pop("kv_heads")
        d.pop("d_head")

    return config_entries


def ungrouped_heads(spec: AttnSpec) -> tuple[int, int | None]:
    """The ``head_counts`` of a kind without grouped K/V heads: its heads, and None."""
    return spec.heads, None


def scoped_relabel(scope_stages: dict[str, str], kept: tuple[str, ...] = ()) -> Callable[[str, str], str]:
    """The ``relabel`` of a kind whose ops are named by the submodule that ran them (the last part of the scope,
    looked up in ``scope_stages``, else ``other``); the stages of ``kept`` (the attention matmuls, which the data
    flow names) keep their name."""
    def relabel(scope: str, stage: str) -> str:
        if stage in kept:
            return stage
        return scope_stages.get(scope.rsplit(".", 1)[-1], "other") if scope else "other"

    return relabel


class TorchLayer(Protocol):
    """A kind's own torch layer module (``attncli.kinds.gdn.torch_layer``): what builds it and its arguments."""

    def build(self, spec: AttnSpec, device: str) -> Any: ...
    def make_args(self, spec: AttnSpec, device: str) -> tuple[tuple[Any, ...], dict[str, Any]]: ...


def layer_call(torch_layer: TorchLayer, spec: AttnSpec, device: str) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
    """The ``build_call`` of a kind that runs its own torch layer: the layer ``torch_layer`` builds, and the
    arguments of one call (the kind imports ``torch_layer`` when called, so that nothing imports torch before)."""
    module = torch_layer.build(spec, device)
    args, kwargs = torch_layer.make_args(spec, device)
    return module, args, kwargs


def refuse_unrepresentable(tensors: Sequence[tuple[str, int, str]]) -> None:
    """The ``check_representable`` loop: refuse the first of ``tensors`` ((what, elements, the flag to blame))
    that torch cannot describe at float32 (2**63 bytes), even on the meta device."""
    from attncli.layer.formulas import TORCH_MAX_BYTES
    from attncli.spec import SpecError

    for what, elements, flag in tensors:
        if elements * 4 > TORCH_MAX_BYTES:
            raise SpecError(flag, f"{what} would have {elements:,} elements: more than torch can describe, "
                                  "even on the meta device (2**63 bytes)")


def no_keeps_line(spec: AttnSpec) -> str | None:
    """The ``keeps_line`` of a kind with no line of its own in ``model``'s table: the KV line says what it keeps."""
    return None


def no_fixed_bytes(spec: AttnSpec, bytes_per_element: int) -> int | None:
    """The ``kv_fixed_bytes`` of a cache with no part that grows by whole entries (only DeepSeek-V4's has one)."""
    return None


def refuse_mixer_settings(spec: AttnSpec, why: str, refused: Sequence[tuple[str, str, str]], impl: str) -> None:
    """The settings a causal linear layer (Gated DeltaNet, KDA, Mamba2) does not take, each SpecError saying
    ``why`` and its reason: ``refused`` ((the setting, its flag, the reason)) when set, then
    nn.MultiheadAttention's extra keys, unbatched or sequence-first input, dropout, a padding mask, and an
    ``--impl`` other than the kind's own layer (``impl``: the reason)."""
    from attncli.spec import SpecError

    for name, flag, reason in refused:
        if getattr(spec, name) is not None:
            raise SpecError(flag, f"{why}: {reason}")
    for flag, on, reason in (("--add-bias-kv", spec.add_bias_kv, "nn.MultiheadAttention's extra key"),
                             ("--add-zero-attn", spec.add_zero_attn, "nn.MultiheadAttention's extra key"),
                             ("--unbatched", spec.unbatched, "the layer is run batched"),
                             ("--no-batch-first", not spec.batch_first, "the layer is run batch-first"),
                             ("--dropout", spec.dropout > 0, "the layer has no dropout"),
                             ("--mask", spec.mask == "padding", "padding is not modelled (the layer is causal by "
                                                                "itself: --mask none or causal)"),
                             ("--impl", spec.impl != spec.kind, impl)):
        if on:
            raise SpecError(flag, f"{why}: {reason}")
