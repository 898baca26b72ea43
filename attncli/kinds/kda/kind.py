"""Kimi Delta Attention as a kind (:class:`attncli.kinds.base.Kind`): a linear-attention layer of Kimi Linear.

E ``dim``, H ``linear_num_heads``, D ``linear_head_dim``, K ``linear_conv_kernel_dim``; the form (recurrent
for a decode step, chunked otherwise, as transformers picks it) and the chunk C are ``gdn_form`` and
``gdn_chunk``, the delta rule's settings the two linear kinds share. Every count is
:mod:`attncli.kinds.kda.counts`' (derived from transformers 5.25 ``modeling_kimi_linear.py``, cited there);
the traced module is :mod:`attncli.kinds.kda.torch_layer`. No torch at import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from attncli.kinds import base, forms
from attncli.kinds.kda import counts, words
from attncli.kinds.kda.counts import STATE_BYTES, padded_length, state_bytes
from attncli.kinds.kda.sizes import kda_sizes
from attncli.numbers import human_bytes
from attncli.spec import SpecError

if TYPE_CHECKING:
    from attncli.kinds.base import Counted
    from attncli.kinds.cache import CacheSpec
    from attncli.kinds.shapes import ShapesReport
    from attncli.spec import AttnSpec

NAME = "kda"
FORMS: tuple[str, ...] = ("auto", "recurrent", "chunked")
STAGE_LABELS: dict[str, str] = words.STAGE_LABELS
SHORT_LABELS: dict[str, str] = words.SHORT_LABELS
ABBREVIATIONS: dict[str, str] = SHORT_LABELS
TERMS = words.TERMS
KV_FORM = words.KV_FORM
PERMUTE_SKIPPED: str | None = words.PERMUTE_SKIPPED
SWEEP_EXPECTED: dict[str, str] = words.SWEEP_EXPECTED
TP_WORDS = ("query heads split, an MLA latent whole on every device; KDA's heads split, its f_a and g_a (E x D) "
            "and the state per head as vLLM's KimiDeltaAttention shares them")
"""How ``attncli model --tp`` shares the layers of a Kimi Linear model (:func:`attncli.analyses.model.device_spec`)."""

WHY = "does not apply to Kimi Delta Attention linear attention (linear_attn_config)"
REFUSED: tuple[tuple[str, str, str], ...] = (
    ("window", "--window", "a linear-attention layer has no window: its state holds every past token"),
    ("chunk", "--chunk", "chunked attention does not apply (the delta rule's chunk is its own, 64)"),
    ("kv_seq", "--kv-seq", "KDA here is self-attention (use --cache for past tokens)"),
    ("kdim", "--kdim", "KDA here is self-attention"),
    ("vdim", "--vdim", "KDA here is self-attention"),
)


SWEEP_EFFECTIVE_OWN = False
"""Whether :data:`SWEEP_EXPECTED` already says how the effective counts grow under a mask."""
PAGED_MODELLED = True
"""Whether a paged engine's layout of this kind's cache is modelled."""


def validate(spec: AttnSpec) -> None:
    """The KDA settings' checks (called by ``AttnSpec.validate``); :class:`SpecError` names the flag.

    ``--kv-heads`` and ``--head-dim`` are accepted and unused, as for Gated DeltaNet; KDA has no biases,
    so ``--bias`` (the MLA layers' ``attention_bias``) is unused."""
    for name in ("linear_num_heads", "linear_head_dim", "linear_conv_kernel_dim", "gdn_chunk"):
        value = getattr(spec, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise SpecError("--" + name.replace("_", "-"), f"must be an integer of at least 1, got {value!r}")
    if spec.gdn_form not in FORMS:
        raise SpecError("--gdn-form", f"unknown form {spec.gdn_form!r}; choose from {', '.join(FORMS)}")
    base.refuse_mixer_settings(spec, WHY, REFUSED, "it runs attncli's own KDA layer")


stages = counts.stages
closed_form = counts.closed_form
params = counts.params
closed_form_texts = words.closed_form_texts


def visible_pairs(spec: AttnSpec) -> int:
    """Every (query, key) pair: a linear layer has no pairs a mask could hide (:func:`effective`)."""
    from attncli.layer.visibility import dense_pairs

    return dense_pairs(spec)


def effective(spec: AttnSpec, by_stage: dict[str, int]) -> tuple[dict[str, int], tuple[str, ...]]:
    """Dense: a linear layer is causal by construction, no pairs to leave out."""
    return dict(by_stage), ()


def kv_bytes_per_token(spec: AttnSpec, bytes_per_element: int) -> int:
    """0: the state does not grow with the context (:func:`kv_cache_bytes` is the constant state)."""
    return 0


def kv_cache_bytes(spec: AttnSpec, bytes_per_element: int) -> int:
    """The state after this step, the same at any context length (:func:`counts.state_bytes`)."""
    return sum(state_bytes(spec, bytes_per_element).values())


def vllm_cache_spec(spec: AttnSpec, kv_cache_dtype: str, model_bytes: int, ssm_bytes: int | None,
                    tp: int) -> tuple[CacheSpec, ...]:
    """vLLM pages KDA's state as a Mamba-style state whose layout (how many states, their dtypes and any
    prefill checkpoints) differs between its releases and is not read here: ``--engine vllm`` is refused
    in one line rather than guessed."""
    raise SpecError("--engine", "vLLM's state layout for Kimi Delta Attention layers is not modelled; attncli "
                                "model without --engine gives the state as transformers keeps it")


variant_specs = forms.variant_specs  # NOTE: the form it runs (auto resolved), then the other


def variant_label(spec: AttnSpec) -> str:
    return f"{kda_sizes(spec).heads} KDA heads, {spec.form} form"


def variants_note(spec: AttnSpec) -> str:
    return forms.other_form_note("recurrent: one token at a time, 3 D x D products per token and head; chunked: "
                                 "chunks of C tokens, L padded to a multiple of C")


def build_call(spec: AttnSpec, device: str) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
    from attncli.kinds.kda import torch_layer

    return base.layer_call(torch_layer, spec, device)


SCOPE_STAGES: dict[str, str] = {
    "q_proj": "qkv_proj", "k_proj": "qkv_proj", "v_proj": "qkv_proj", "conv1d": "conv", "f_a_proj": "f_proj",
    "f_b_proj": "f_proj", "b_proj": "b_proj", "g_a_proj": "g_proj", "g_b_proj": "g_proj", "o_proj": "o_proj",
    **{st: st for st in counts.RECURRENCE["chunked"]},
}
"""Submodule of attncli's KDA layer (transformers' names) -> the stage its matmuls belong to."""
relabel = base.scoped_relabel(SCOPE_STAGES)  # NOTE: every op is named by the submodule that ran it, else other


def check_representable(spec: AttnSpec) -> None:
    """Refuse tensors torch cannot describe (2**63 bytes at float32), even on the meta device."""
    m = kda_sizes(spec)
    lp = padded_length(spec)
    base.refuse_unrepresentable((
        ("the decayed keys of the chunks (B, H, LP, D, C)", spec.batch * m.heads * lp * m.head_dim * m.chunk, "--seq"),
        ("the projected q, k, v (B, L, 3*H*D)", spec.batch * spec.seq * m.conv_dim, "--seq"),
        ("the recurrent states (B, H, L, D, D)", spec.batch * m.heads * spec.seq * m.head_dim ** 2, "--seq"),
        ("the q_proj weight", spec.dim * m.inner, "--dim")))


def title_parts(spec: AttnSpec) -> list[str]:
    """``Kimi Delta Attention H=32 D=128 K=4`` and the form, for titles."""
    m = kda_sizes(spec)
    return [f"Kimi Delta Attention H={m.heads} D={m.head_dim} K={m.kernel}", forms.form_title(spec, m.chunk)]


def short_label(spec: AttnSpec) -> str:
    return "KDA " + forms.short_label(spec)


def keeps_line(spec: AttnSpec) -> str | None:
    """What a KDA layer keeps, one line (``attncli model`` prints it per group)."""
    m, state = kda_sizes(spec), state_bytes(spec.with_(batch=1), 2)
    return (f"KDA: keeps {m.heads} x {m.head_dim} x {m.head_dim} float32 state values "
            f"({human_bytes(state['recurrent'])}) and the last {m.kernel} conv inputs of {m.conv_dim} channels per "
            "sequence, the same at any context length")


def conclusion(report: Counted) -> str:
    """What the other form would cost, and the state."""
    state = state_bytes(report.spec, report.variants[0].memory.bytes_per_element)
    return (f"{forms.form_sentence(report, 'as asked', 'state')} No KV cache: the state is "
            f"{human_bytes(state['recurrent'])} recurrent (float32, {STATE_BYTES} B per value) + "
            f"{human_bytes(state['conv'])} conv per layer, the same at any context length.")


def analyse_shapes(spec: AttnSpec) -> ShapesReport:
    """``attncli shapes`` of the KDA layer (:mod:`attncli.kinds.kda.shapes`)."""
    from attncli.kinds.kda.shapes import analyse

    return analyse(spec)


# NOTE: what the layer holds and moves (its memory model and roofline traffic) lives in traffic.py
from attncli.kinds.kda.traffic import kernel_elements as kernel_elements  # noqa: E402
from attncli.kinds.kda.traffic import memory as memory  # noqa: E402


def device_spec(spec: AttnSpec, tp: int) -> AttnSpec:
    """vLLM's KimiDeltaAttention splits its H heads (q/k/v, f_b, g_b, b_proj column-parallel, the conv per
    channel, o_proj row-parallel); f_a_proj and g_a_proj (E x D) are whole on every device."""
    if spec.heads % tp:
        raise SpecError("--tp", f"--tp {tp} must divide the {spec.heads} query heads")
    h = spec.linear_num_heads or 0
    if h % tp:
        raise SpecError("--tp", f"--tp {tp} must divide the {h} heads of a Kimi Delta Attention layer")
    return spec.with_(heads=spec.heads // tp, linear_num_heads=h // tp)


kv_fixed_bytes = base.no_fixed_bytes
kv_cache_held_bytes = kv_cache_bytes  # NOTE: the storage held after the step is what the state keeps
config_entries = base.sized_entries(kda_sizes)
head_counts = base.ungrouped_heads
HF_CLASS = "counted"  # NOTE: what --module does with a Hugging Face class of this kind (Kind.HF_CLASS)
BENCH_FORMS = False  # NOTE: bench times the layer as asked
