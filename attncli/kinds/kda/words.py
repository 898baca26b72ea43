"""How attncli names Kimi Delta Attention's stages, its closed forms as text and what the sweep expects.

Letters: B batch, L new tokens, E ``hidden_size``, H ``linear_num_heads``, D ``linear_head_dim``, K the
short convolution's kernel, C the chunk, LP = L rounded up to a multiple of C (no torch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attncli.kinds.kda.counts import RECURRENCE, conv_outputs, stages

if TYPE_CHECKING:
    from attncli.spec import AttnSpec

STAGE_LABELS: dict[str, str] = {
    "qkv_proj": "q,k,v proj", "conv": "short conv", "f_proj": "forget gate (f_a,f_b)", "b_proj": "beta proj",
    "delta_kk": "chunk K_beta K^T (decayed)", "delta_inv": "chunk (I+A)^-1 rows",
    "delta_wy": "chunk T x V_beta, K_beta",
    "delta_out": "state out (Q S)", "delta_qk": "chunk Q K^T (decayed)", "delta_read": "state read (K S)",
    "delta_av": "chunk attn x V_new", "delta_write": "state write (K^T V)", "g_proj": "output gate (g_a,g_b)",
    "o_proj": "W_O", "other": "other",
}
SHORT_LABELS: dict[str, str] = {
    "qkv_proj": "qkv", "conv": "conv", "f_proj": "f", "b_proj": "b", "delta_kk": "KKc", "delta_inv": "inv",
    "delta_wy": "TV", "delta_out": "QS", "delta_qk": "QKc", "delta_read": "KS", "delta_av": "AVc",
    "delta_write": "KtV", "g_proj": "g", "o_proj": "W_O", "other": "other",
}

CLOSED_FORMS: dict[str, str] = {
    "qkv_proj": "3*B*L*E*H*D", "f_proj": "B*L*D*(E+H*D)", "b_proj": "B*L*E*H", "g_proj": "B*L*D*(E+H*D)",
    "o_proj": "B*L*H*D*E",
}
RECURRENCE_FORMS: dict[str, dict[str, str]] = {
    "recurrent": {"delta_read": "B*H*L*D*D", "delta_write": "B*H*L*D*D", "delta_out": "B*H*L*D*D"},
    "chunked": {"delta_kk": "B*H*LP*C*D", "delta_inv": "B*H*(LP/C)*(C-1)*C*(2C-1)/6", "delta_wy": "2*B*H*LP*C*D",
                "delta_out": "B*H*LP*D*D", "delta_qk": "B*H*LP*C*D", "delta_read": "B*H*LP*D*D",
                "delta_av": "B*H*LP*C*D", "delta_write": "B*H*LP*D*D"},
}
assert all(tuple(RECURRENCE_FORMS[f]) == RECURRENCE[f] for f in RECURRENCE)

TERMS = ("H, D = KDA heads and head size (linear_num_heads, linear_head_dim: q, k and v alike), K = short conv "
         "kernel, C = chunk (64), LP = L rounded up to a multiple of C (transformers pads); the conv computes L+K-1 "
         "outputs per channel (L+2K-1 after a state, 2 for a decode step); no KV cache: a constant state")
KV_FORM = "state: B*H*D*D*4 (float32) + B*3*H*D*K*bytes"
PERMUTE_SKIPPED = ("not run: a Kimi Delta Attention layer is a causal recurrence (each token reads a state written by "
                   "the tokens before it, after a causal convolution), so permuting its tokens changes every output "
                   "by construction")
SWEEP_EXPECTED: dict[str, str] = {
    "seq": "every stage grows as L (exponent 1): no stage is quadratic; the chunked form's intra-chunk stages grow "
           "as L x C, the conv as L + K - 1",
    "batch": "every stage grows as B (1), and so does the state",
    "dim": "q,k,v proj, beta proj, W_O and the gates' E x D halves grow as E (1); the conv and the delta rule stay (0)",
    "cache": "nothing grows with N (0): the state is constant in the context length; a cache only adds the K "
             "cached conv inputs to the conv",
    "heads": "no stage changes (0): --heads sets the MLA layers, a KDA layer's heads are linear_num_heads",
}


def closed_form_texts(spec: AttnSpec) -> dict[str, str]:
    """The dense closed form of every stage of ``spec``'s form, as text."""
    texts = {**CLOSED_FORMS, "conv": f"B*3*H*D*K*{conv_outputs(spec)[1]}", **RECURRENCE_FORMS[spec.form or "chunked"]}
    return {st: texts[st] for st in stages(spec)}
