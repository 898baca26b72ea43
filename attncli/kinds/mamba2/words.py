"""How attncli names a Mamba2 layer's stages, and its closed forms as text (no torch)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from attncli.kinds.mamba2.counts import SCAN_FORMS, conv_outputs

if TYPE_CHECKING:
    from attncli.spec import AttnSpec

STAGE_LABELS: dict[str, str] = {
    "in_proj": "z,x,B,C,dt proj", "conv": "short conv", "ssd_cb": "chunk C B^T", "ssd_diag": "chunk scores x X",
    "ssd_states": "chunk states B^T X", "ssd_pass": "chunk-state pass", "ssd_out": "C x chunk state",
    "ssm_out": "state out (S C)", "out_proj": "W_O", "other": "other",
}
SHORT_LABELS: dict[str, str] = {
    "in_proj": "in", "conv": "conv", "ssd_cb": "CBc", "ssd_diag": "MXc", "ssd_states": "BXc", "ssd_pass": "pass",
    "ssd_out": "CSc", "ssm_out": "SC", "out_proj": "W_O", "other": "other",
}
TERMS = ("H = mamba heads, P = their size, N = ssm_state_size, G = n_groups, I = H*P, K = conv kernel, C = chunk "
         "(chunk_size), LP = L rounded up to a multiple of C, n = LP/C chunks; the conv computes L+K-1 outputs per "
         "channel (L+2K-1 after a state, 2 for a decode step) as transformers' torch path does; no KV cache: a "
         "constant state")
KV_FORM = "state: B*H*P*N*4 (float32) + B*(I+2*G*N)*K*bytes"

PROJECTIONS: dict[str, str] = {"in_proj": "B*L*E*(2*I+2*G*N+H)", "out_proj": "B*L*I*E"}
SCANS: dict[str, dict[str, str]] = {
    "chunked": {"ssd_cb": "B*H*LP*C*N", "ssd_diag": "B*H*LP*C*P", "ssd_states": "B*H*LP*P*N",
                "ssd_pass": "B*H*(n+1)^2*P*N", "ssd_out": "B*H*LP*P*N"},
    "recurrent": {"ssm_out": "B*H*L*P*N"},
}
assert all(tuple(SCANS[f]) == SCAN_FORMS[f] for f in SCAN_FORMS)


def closed_form_texts(spec: AttnSpec) -> dict[str, str]:
    """The dense closed form of every stage of ``spec``'s form."""
    texts = {**PROJECTIONS, "conv": f"B*(I+2*G*N)*K*{conv_outputs(spec)[1]}", **SCANS[spec.form or "chunked"]}
    stages = ("in_proj", "conv", *SCAN_FORMS[spec.form or "chunked"], "out_proj")
    return {st: texts[st] for st in stages}
