"""How attncli names DeepSeek-V4's layers and stages, and the closed forms as text (no torch).

Letters as :class:`attncli.kinds.dsv4.sizes.Dsv4Sizes` names them; B batch, L new tokens, N cached,
S = N + L, Kw = min(N, W - 1) + L the window tensor's keys, T = floor(S / m) compressed entries.
"""

from __future__ import annotations

from attncli.kinds.dsv4.sizes import CSA, HCA, SLIDING, Dsv4Sizes

STAGE_LABELS: dict[str, str] = {
    "q_a_proj": "q_a (E x RQ)", "q_b_proj": "q_b (RQ x H*D)", "kv_proj": "kv (E x D, K=V)",
    "compressor_proj": "compressor kv+gate", "indexer_proj": "indexer kv+gate", "indexer_q_proj": "indexer q_b",
    "indexer_weights": "indexer head weights", "indexer_scores": "indexer scores", "qk": "QK^T", "av": "weights x V",
    "o_a_proj": "grouped o_a", "o_b_proj": "o_b (G*OR x E)",
}
SHORT_LABELS: dict[str, str] = {
    "q_a_proj": "q_a", "q_b_proj": "q_b", "kv_proj": "kv", "compressor_proj": "cmp", "indexer_proj": "idx_kv",
    "indexer_q_proj": "idx_q", "indexer_weights": "idx_w", "indexer_scores": "idx_s", "qk": "qk", "av": "av",
    "o_a_proj": "o_a", "o_b_proj": "o_b",
}
TERMS = ("E hidden, H heads, D head_dim (one K=V head), RQ q_lora_rank, G o_groups, OR o_lora_rank, W sliding_window, "
         "m compression rate, T = floor(S/m) compressed entries, Kw = min(N, W-1) + L window keys, IH/ID/K the "
         "indexer's index_n_heads/index_head_dim/index_topk")


def closed_form_texts(layer_type: str) -> dict[str, str]:
    """The dense closed form of every stage of ``layer_type`` (:func:`attncli.kinds.dsv4.counts.dense`)."""
    keys = "Kw" if layer_type == SLIDING else "(Kw+T)"
    out = {"q_a_proj": "B*L*E*RQ", "q_b_proj": "B*L*RQ*H*D", "kv_proj": "B*L*E*D"}
    if layer_type == HCA:
        out["compressor_proj"] = "2*B*L*E*D"
    if layer_type == CSA:
        out.update({"compressor_proj": "2*B*L*E*2D", "indexer_proj": "2*B*L*E*2ID", "indexer_q_proj": "B*L*RQ*IH*ID",
                    "indexer_weights": "B*L*E*IH", "indexer_scores": "B*L*T*IH*ID"})
    out.update({"qk": f"B*H*L*{keys}*D", "av": f"B*H*L*{keys}*D", "o_a_proj": "B*L*H*D*OR",
                "o_b_proj": "B*L*G*OR*E"})
    return out


def keeps_and_attends(sizes: Dsv4Sizes, layer_type: str) -> str:
    """One line: what a layer of ``layer_type`` keeps in its cache and what each query attends to."""
    w, d = sizes.window, sizes.head_dim
    if layer_type == SLIDING:
        return f"sliding: keeps {w - 1} window tokens (K and V, {d} each); a query attends to {w} tokens and a sink"
    m = sizes.ratio(layer_type)
    kept = f"keeps {w - 1} window tokens (one K=V tensor, {d}) + 1 entry ({d})"
    if layer_type == HCA:
        return f"HCA m={m}: {kept} per {m} tokens; a query attends to {w} tokens, every closed entry and a sink"
    return (f"CSA m={m}: {kept} and 1 indexer key ({sizes.index_head_dim}) per {m} tokens; a query attends to "
            f"{w} tokens, its top-{sizes.index_topk} entries and a sink")
