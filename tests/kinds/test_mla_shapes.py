"""``attncli shapes`` of an MLA layer: the closed-form stage shapes against the tensors attncli's
MLA layer really produces (forward hooks on its submodules), its weights against the parameter
closed form, and the CLI."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from attncli.kinds.mla import kind as mla
from attncli.kinds.mla import torch_layer as mla_torch
from attncli.kinds.mla.shapes import analyse, stage_shapes
from attncli.spec import AttnSpec

SIZES = {"dim": 64, "heads": 4, "kv_lora_rank": 16, "qk_nope_head_dim": 8, "qk_rope_head_dim": 4, "v_head_dim": 6}
HOOKED = {"q_a_proj": "q_a", "q_b_proj": "q", "q_proj": "q", "kv_a_proj_with_mqa": "kv_a", "kv_b_proj": "kv",
          "q_absorb": "q_latent", "out_absorb": "context", "o_proj": "output"}


@pytest.mark.parametrize("form", ["naive", "absorbed"])
@pytest.mark.parametrize("q_lora_rank", [24, None])
@pytest.mark.parametrize("cache", [0, 3])
def test_closed_form_shapes_are_what_the_layer_produces(form: str, q_lora_rank: int | None, cache: int) -> None:
    spec = AttnSpec(**{**SIZES, "q_lora_rank": q_lora_rank, "impl": "mla", "batch": 2, "seq": 5, "cache": cache,
                       "mla_form": form}).validate()  # type: ignore[arg-type]
    module = mla_torch.build(spec)
    seen: dict[str, tuple[int, ...]] = {}
    for name, sub in module.named_children():
        if name in HOOKED:
            sub.register_forward_hook(lambda _m, _i, out, n=HOOKED[name]: seen.__setitem__(n, tuple(out.shape)))
    args, kwargs = mla_torch.make_args(spec)
    with torch.no_grad():
        out = module(*args, **kwargs)
    closed = {st.name: st.shape for st in stage_shapes(spec)}
    assert seen and all(closed[k] == v for k, v in seen.items()), (seen, closed)
    assert closed["output"] == tuple(out.shape) == (2, 5, 64)
    assert closed["latent_all"] == (2, cache + 5, 16)
    assert ("kv" in closed) == (form == "naive") and ("q_latent" in closed) == (form == "absorbed")


def test_weights_hold_the_closed_form_parameters() -> None:
    spec = AttnSpec(**{**SIZES, "q_lora_rank": 24, "impl": "mla", "seq": 4}).validate()  # type: ignore[arg-type]
    r = analyse(spec)
    assert r.total_params == mla.params(spec)["total"] == sum(w.numel for w in r.weights)
    assert r.components["kv_b_proj"] == 16 * 4 * (8 + 6)


def test_cli_shapes_json(cli: Any) -> None:
    r = cli("shapes", "--dim", "64", "--heads", "4", "--kv-lora-rank", "16", "--qk-nope-head-dim", "8",
            "--qk-rope-head-dim", "4", "--v-head-dim", "6", "--seq", "1", "--cache", "7", "--format", "json")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["config"]["form"] == "absorbed"
    names = [s["name"] for s in doc["stages"]]
    assert names[:2] == ["input", "q"] and "latent_cache" in names and "q_latent" in names and "kv" not in names
    assert doc["outputs"]["attn_output"] == [1, 1, 64]
