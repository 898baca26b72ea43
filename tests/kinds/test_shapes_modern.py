"""shapes of the modern layer: what the implementations record equals the closed form, and the
parameters equal E*H*d + kdim*G*d + vdim*G*d (+ biases) + H*d*E (+ E), written out here."""

from __future__ import annotations

import pytest

from attncli.kinds.shapes import analyse
from attncli.kinds.standard.shapes import stage_shapes
from attncli.layer.modules import build, make_inputs, run
from attncli.spec import AttnSpec

MODERN = [
    {"kv_heads": 2},
    {"kv_heads": 1, "d_head": 5},
    {"kv_heads": 2, "cache": 4, "mask": "causal"},
    {"window": 3, "d_head": 8},
]


@pytest.mark.parametrize("impl", ["split", "per-head", "fused", "sdpa"])
@pytest.mark.parametrize("changes", MODERN, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_recorded_stages_are_the_closed_form(impl: str, changes: dict[str, object]) -> None:
    spec = AttnSpec(dim=16, heads=4, batch=2, seq=3, impl=impl, **changes).validate()  # type: ignore[arg-type]
    module = build(spec, "meta")
    module.record = {}
    run(module, spec, make_inputs(spec, "meta"))
    want = {st.name: st.shape for st in stage_shapes(spec)}
    recorded = {k: v for k, v in module.record.items() if k not in ("input", "output")}
    assert recorded, "nothing was recorded"
    for name, shape in recorded.items():
        assert shape == want[name], name
    h, g, d, n = spec.heads, spec.n_kv_heads, spec.head_dim, spec.seq
    s = spec.s  # N + L with a cache
    assert want["q_heads"] == (2, h, n, d) and want["k_heads"] == (2, g, s, d)
    # SDPA with enable_gqa broadcasts the K/V heads itself: no copies to list (nor recorded)
    assert ("k_repeated" in want) == (g != h and impl != "sdpa")
    assert ("k_cache" in want) == bool(spec.cache)


@pytest.mark.parametrize("changes", MODERN, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_parameters_by_hand(changes: dict[str, object]) -> None:
    spec = AttnSpec(dim=16, heads=4, batch=1, seq=3, impl="split", **changes).validate()  # type: ignore[arg-type]
    e, hd, gd = 16, 4 * spec.head_dim, spec.n_kv_heads * spec.head_dim
    # W_q (H*d x E) + b, W_k and W_v (G*d x E) + b each, W_O (E x H*d) + b
    want = (e * hd + hd) + 2 * (e * gd + gd) + (hd * e + e)
    assert analyse(spec).total_params == want


def test_llama3_8b_parameters() -> None:
    # 4096*4096 (W_q) + 2 * 1024*4096 (W_k, W_v) + 4096*4096 (W_O), no biases
    spec = AttnSpec(dim=4096, heads=32, kv_heads=8, d_head=128, bias=False, seq=4, impl="sdpa").validate()
    assert analyse(spec).total_params == 41_943_040
