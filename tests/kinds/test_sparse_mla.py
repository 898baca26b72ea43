"""Top-k sparse MLA (DeepSeek-V3.2): the indexer's closed forms, the top-k pairs, the layer, params, KV.

Expected numbers never come from attncli's own formulas:

- the closed forms in :func:`by_hand`, written from DeepSeek-V3.2-Exp ``inference/model.py``
  (github.com/deepseek-ai/DeepSeek-V3.2-Exp): ``Indexer.__init__`` lines 441-444 (``wq_b``
  q_lora_rank x n_heads*head_dim, ``wk`` dim x head_dim, ``k_norm`` LayerNorm(head_dim),
  ``weights_proj`` dim x n_heads), ``Indexer.forward`` lines 455 (``wq_b(qr)``), 460 (``wk(x)``),
  471 (``weights_proj(x)``), 473 (``fp8_index``: ``kernel.py`` line 231 one gemm of head_dim per head
  and key, line 241 ReLU times the head weight, line 244 the sum over heads), 476 (``topk``), and
  ``MLA.forward`` lines 573-575 / 590-591 (the index mask added to the scores); MLA's stages as in
  ``tests/kinds/test_mla.py``;
- the top-k pairs by brute force over every query position;
- transformers 5.24's real ``DeepseekV32Attention`` and ``DeepseekV32Indexer``: the same weights give
  the same output, FlopCounterMode on it gives the closed form, its parameters and its cache;
- DeepSeek-V3.2-Exp's published sizes, ``tests/data/configs/deepseek-v3.2/config.json``, which
  :func:`test_packaged_config_is_the_published_one` checks against ``inference/config_671B_v3.2.json``
  (dim 7168, n_heads 128, q_lora_rank 1536, kv_lora_rank 512, qk_nope 128, qk_rope 64, v 128,
  index_n_heads 64, index_head_dim 128, index_topk 2048).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from attncli.analyses.flops import count_variant
from attncli.kinds.mla import kind as mla
from attncli.kinds.mla import torch_layer as mla_torch
from attncli.kinds.sparse_mla import kind as sparse_mla
from attncli.kinds.sparse_mla import torch_layer as sparse_mla_torch
from attncli.kinds.sparse_mla.shapes import analyse, stage_shapes
from attncli.registry import kind_of
from attncli.spec import AttnSpec, SpecError

CONFIG = Path(__file__).parents[1] / "data" / "configs" / "deepseek-v3.2" / "config.json"
SMALL = {"dim": 64, "heads": 4, "kv_lora_rank": 16, "q_lora_rank": 24, "qk_nope_head_dim": 8, "qk_rope_head_dim": 4,
         "v_head_dim": 8, "index_topk": 5, "index_n_heads": 3, "index_head_dim": 8, "bias": False}


def published() -> dict[str, Any]:
    c = json.loads(CONFIG.read_text())
    return {"dim": c["hidden_size"], "heads": c["num_attention_heads"], "kv_lora_rank": c["kv_lora_rank"],
            "q_lora_rank": c["q_lora_rank"], "qk_nope_head_dim": c["qk_nope_head_dim"],
            "qk_rope_head_dim": c["qk_rope_head_dim"], "v_head_dim": c["v_head_dim"], "index_topk": c["index_topk"],
            "index_n_heads": c["index_n_heads"], "index_head_dim": c["index_head_dim"], "bias": c["attention_bias"]}


V32 = published()


def layer(sizes: dict[str, Any], **kw: Any) -> AttnSpec:
    return AttnSpec(**{**sizes, "impl": "sparse_mla", "batch": 1, "mask": "causal", **kw}).validate()


def by_hand(sizes: dict[str, Any], B: int, L: int, N: int, form: str) -> dict[str, int]:
    """Dense MACs per stage, written from the reference code (see the module docstring)."""
    e, h, r, rq = sizes["dim"], sizes["heads"], sizes["kv_lora_rank"], sizes["q_lora_rank"]
    dn, dr, dv = sizes["qk_nope_head_dim"], sizes["qk_rope_head_dim"], sizes["v_head_dim"]
    ih, idim = sizes["index_n_heads"], sizes["index_head_dim"]
    s = N + L
    out = {
        "indexer_q_proj": B * L * rq * ih * idim,        # wq_b(qr), line 455
        "indexer_k_proj": B * L * e * idim,              # wk(x), line 460: the new tokens
        "indexer_weights": B * L * e * ih,               # weights_proj(x), line 471
        "indexer_scores": B * L * s * ih * idim          # fp8_index: q_h . k per head and key (kernel.py 231)
        + B * L * s * ih,                                # and relu(.) * w_h summed over heads (241, 244)
        "q_a_proj": B * L * e * rq, "q_b_proj": B * L * rq * h * (dn + dr), "kv_a_proj": B * L * e * (r + dr),
    }
    if form == "naive":
        out |= {"kv_b_proj": B * s * r * h * (dn + dv), "qk": B * h * L * s * (dn + dr), "av": B * h * L * s * dv}
    else:
        out |= {"q_absorb": B * L * h * dn * r, "qk": B * h * L * s * (r + dr), "av": B * h * L * s * r,
                "out_absorb": B * L * h * r * dv}
    out["out_proj"] = B * L * h * dv * e
    return out


def brute_topk_pairs(L: int, s: int, k: int, mask: str) -> int:
    """For every query (absolute position p = S - L + i), min(K, the keys its mask leaves)."""
    total = 0
    for p in range(s - L, s):
        if mask == "causal":
            keys = sum(1 for j in range(s) if j <= p)
        elif mask == "padding":
            keys = s - max(1, s // 4)
        else:
            keys = s
        total += min(k, keys)
    return total


# ---------------------------------------------------------------------------- published sizes
def test_packaged_config_is_the_published_one() -> None:
    assert V32 == {"dim": 7168, "heads": 128, "kv_lora_rank": 512, "q_lora_rank": 1536, "qk_nope_head_dim": 128,
                   "qk_rope_head_dim": 64, "v_head_dim": 128, "index_topk": 2048, "index_n_heads": 64,
                   "index_head_dim": 128, "bias": False}
    assert json.loads(CONFIG.read_text())["model_type"] == "deepseek_v32"


def test_deepseek_v32_params_per_layer() -> None:
    p = sparse_mla.params(layer(V32, seq=8))
    assert p["indexer.wq_b"] == 1536 * 64 * 128 == 12_582_912
    assert p["indexer.wk"] == 7168 * 128 == 917_504
    assert p["indexer.k_norm"] == 2 * 128  # LayerNorm: weight and bias
    assert p["indexer.weights_proj"] == 7168 * 64 == 458_752
    assert p["total"] == 187_107_328 + 12_582_912 + 917_504 + 256 + 458_752 == 201_066_752
    assert count_variant(layer(V32, seq=8)).params == 201_066_752  # the traced module holds as many


def test_deepseek_v32_at_16384_tokens_charges_the_top_2048_keys() -> None:
    v = count_variant(layer(V32, seq=16384))
    assert not v.problems
    pairs = 2048 * 2049 // 2 + (16384 - 2048) * 2048  # p < 2048 sees p + 1 keys, the rest 2048
    assert pairs == 31_458_304 == sparse_mla.topk_visible_pairs(layer(V32, seq=16384))
    assert v.effective_by_stage["qk"] == 128 * pairs * (128 + 64)
    assert v.effective_by_stage["av"] == 128 * pairs * 128
    causal = 16384 * 16385 // 2
    assert v.effective_by_stage["indexer_scores"] == causal * 64 * (128 + 1)  # every causal pair is scored
    assert v.by_stage["qk"] == 128 * 16384 * 16384 * 192  # dense: every pair
    assert v.by_stage == by_hand(V32, 1, 16384, 0, "naive")


# ---------------------------------------------------------------------------- closed forms and traces
CASES = [(SMALL, 2, 12, 0), (SMALL, 2, 6, 7), (SMALL, 1, 1, 9), (SMALL, 1, 3, 0), (V32, 1, 1024, 0),
         (V32, 1, 1, 4095)]


@pytest.mark.parametrize(("sizes", "B", "L", "N"), CASES)
@pytest.mark.parametrize("form", ["naive", "absorbed"])
def test_trace_equals_closed_form_and_flop_counter_per_stage(sizes: dict[str, Any], B: int, L: int, N: int,
                                                             form: str) -> None:
    spec = layer(sizes, batch=B, seq=L, cache=N, mla_form=form)
    want = by_hand(sizes, B, L, N, form)
    assert sparse_mla.closed_form(spec) == want
    v = count_variant(spec)
    assert v.by_stage == want and list(v.stages) == list(want)
    assert v.flop_counter is not None and v.flop_counter.by_stage == {k: 2 * n for k, n in want.items()}
    assert not v.problems
    # effective: QK^T and weights x V over the top-k pairs, the indexer's scores over the causal ones
    s, k = N + L, sizes["index_topk"]
    top = brute_topk_pairs(L, s, k, "causal")
    causal = sum(p + 1 for p in range(N, s))
    scaled = {st: want[st] // (L * s) * n for st, n in (("qk", top), ("av", top), ("indexer_scores", causal))}
    assert v.effective_by_stage == {**want, **scaled}
    assert sparse_mla.effective(spec, want) == ({**want, **scaled}, ())


def test_stages_are_the_indexers_then_mlas() -> None:
    spec = layer(SMALL, seq=4)
    assert sparse_mla.stages(spec) == ("indexer_q_proj", "indexer_k_proj", "indexer_weights", "indexer_scores",
                                       *mla.stages(spec))
    assert set(sparse_mla.closed_form_texts(spec)) == set(sparse_mla.stages(spec))
    assert kind_of(spec) is sparse_mla and spec.kind == "sparse_mla"


def test_the_flop_counter_on_transformers_deepseek_v32_attention_equals_the_closed_form() -> None:
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import DeepseekV32Config
    from transformers.models.deepseek_v32.modeling_deepseek_v32 import DeepseekV32Attention

    cfg = DeepseekV32Config(**json.loads(CONFIG.read_text()))
    cfg._attn_implementation = "eager"
    with torch.device("meta"):
        attn = DeepseekV32Attention(cfg, layer_idx=0)
    L = 512
    assert sum(p.numel() for p in attn.parameters()) == 201_066_752
    x, cs = torch.empty(1, L, 7168, device="meta"), torch.empty(1, L, 64, device="meta")
    with warnings.catch_warnings(), FlopCounterMode(display=False) as fc:
        warnings.simplefilter("ignore")
        attn(x, (cs, cs), torch.empty(1, 1, L, L, device="meta"))
    assert fc.get_total_flops() == 2 * sum(sparse_mla.closed_form(layer(V32, seq=L)).values())


# ---------------------------------------------------------------------------- the top-k pairs
SIZES_LNK = [(1, 0, 1), (7, 0, 3), (7, 0, 7), (7, 0, 50), (5, 9, 4), (1, 30, 8), (16, 16, 16), (3, 2, 1), (2, 0, 1)]


@pytest.mark.parametrize(("mask", "L", "N", "K"), [("causal", *c) for c in SIZES_LNK] + [
    (mask, L, 0, K) for mask in ("none", "padding") for L, N, K in SIZES_LNK if not N and L > 1])
def test_topk_pairs_against_brute_force(mask: str, L: int, N: int, K: int) -> None:
    spec = layer(SMALL, seq=L, cache=N, index_topk=K, mask=mask)
    assert sparse_mla.topk_visible_pairs(spec) == brute_topk_pairs(L, N + L, K, mask)
    assert sparse_mla.visible_pairs(spec) == brute_topk_pairs(L, N + L, K, mask)


@pytest.mark.parametrize(("L", "N", "K"), [(9, 0, 4), (4, 6, 3), (1, 12, 5), (6, 0, 20)])
def test_the_layers_top_k_mask_leaves_exactly_those_pairs(L: int, N: int, K: int) -> None:
    spec = layer(SMALL, batch=2, seq=L, cache=N, index_topk=K)
    module = sparse_mla_torch.build(spec)
    blocked = mla_torch.make_args(spec)[1]["blocked"]
    scores = torch.randn(2, L, N + L, generator=torch.Generator().manual_seed(3))
    hidden = module.topk_blocked(scores, blocked)
    assert int((~hidden).sum()) == 2 * sparse_mla.topk_visible_pairs(spec)


# ---------------------------------------------------------------------------- the torch layer
def plain_reference(module: sparse_mla_torch.SparseMlaAttention, spec: AttnSpec) -> tuple[torch.Tensor, int]:
    """MLA with an explicit top-k mask, the indexer's scores computed here from its weights as
    model.py computes them (without the Hadamard rotation and FP8: orthogonal, precision only)."""
    (x, cos, sin), kw = sparse_mla_torch.make_args(spec)
    ix, dr = module.indexer, SMALL["qk_rope_head_dim"]
    ih, idim = SMALL["index_n_heads"], SMALL["index_head_dim"]

    def rope(t: torch.Tensor, c: torch.Tensor, s_: torch.Tensor) -> torch.Tensor:
        rot, rest = t[..., :dr], t[..., dr:]
        half = dr // 2
        turned = torch.cat((-rot[..., half:], rot[..., :half]), dim=-1)
        return torch.cat((rot * c + turned * s_, rest), dim=-1)

    qr = module.q_a_layernorm(module.q_a_proj(x))
    q = rope((qr @ ix.wq_b.weight.T).view(*x.shape[:2], ih, idim), cos[:, None], sin[:, None])
    k = F.layer_norm(x @ ix.wk.weight.T, (idim,), ix.k_norm.weight, ix.k_norm.bias, 1e-6)
    keys = torch.cat((kw["past_index_keys"], rope(k, cos, sin)), dim=1) if "past_index_keys" in kw \
        else rope(k, cos, sin)
    w = (x @ ix.weights_proj.weight.T) * ih ** -0.5
    head = torch.relu(torch.einsum("blhd,bsd->blhs", q, keys) * idim ** -0.5)
    index = torch.einsum("blh,blhs->bls", w, head)
    causal = kw["blocked"] if "blocked" in kw else torch.zeros(x.shape[1], keys.shape[1], dtype=torch.bool)
    index = index.masked_fill(causal, float("-inf"))
    keep = torch.zeros_like(index, dtype=torch.bool)
    order = index.argsort(dim=-1, descending=True)[..., : spec.index_topk]
    keep.scatter_(-1, order, torch.ones_like(order, dtype=torch.bool))
    blocked = causal | ~keep[:, None]
    plain = mla_torch.MlaAttention(spec)
    plain.load_state_dict({k_: v for k_, v in module.state_dict().items() if not k_.startswith("indexer.")})
    mla_kw = {k_: v for k_, v in kw.items() if k_ in ("past_latent", "past_k_rope")}
    return plain(x, cos, sin, **mla_kw, blocked=blocked), int((~blocked).sum())


@pytest.mark.parametrize("form", ["naive", "absorbed"])
@pytest.mark.parametrize(("L", "N", "mask"), [(9, 0, "causal"), (4, 6, "causal"), (1, 11, "causal"), (7, 0, "none")])
def test_layer_output_is_mla_with_the_indexers_top_k_mask(form: str, L: int, N: int, mask: str) -> None:
    spec = layer(SMALL, batch=2, seq=L, cache=N, mask=mask, mla_form=form)
    module = sparse_mla_torch.build(spec)
    args, kw = sparse_mla_torch.make_args(spec)
    with torch.no_grad():
        got = module(*args, **kw)
        want, kept = plain_reference(module, spec)
        dense = mla_torch.MlaAttention(spec)
        dense.load_state_dict({k: v for k, v in module.state_dict().items() if not k.startswith("indexer.")})
        full = dense(*args, **{k: v for k, v in kw.items() if k != "past_index_keys"})
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert kept == 2 * sparse_mla.topk_visible_pairs(spec)
    assert not torch.allclose(got, full, atol=1e-4)  # K = 5 < the keys some query sees: the top-k matters


def test_layer_with_k_of_at_least_s_is_plain_mla() -> None:
    spec = layer(SMALL, seq=6, index_topk=6)
    module = sparse_mla_torch.build(spec)
    args, kw = sparse_mla_torch.make_args(spec)
    dense = mla_torch.MlaAttention(spec)
    dense.load_state_dict({k: v for k, v in module.state_dict().items() if not k.startswith("indexer.")})
    with torch.no_grad():
        torch.testing.assert_close(module(*args, **kw), dense(*args, **kw))


def test_layer_norm_is_torchs() -> None:
    ln = sparse_mla_torch.LayerNorm(8)
    with torch.no_grad():
        ln.weight.uniform_(0.5, 1.5)
        ln.bias.uniform_(-0.5, 0.5)
    x = torch.randn(3, 5, 8)
    torch.testing.assert_close(ln(x), F.layer_norm(x, (8,), ln.weight, ln.bias, 1e-6))


def _perm_rope_rows(w: torch.Tensor, width: int, dr: int) -> torch.Tensor:
    """transformers' interleaved RoPE pairs (x0, x1), (x2, x3)...; attncli's rotate_half pairs x_i with
    x_(i + DR/2): de-interleave the RoPE rows (evens, then odds) of every ``width``-row block so both
    layers rotate the same numbers and lay them out alike (q . k is unchanged)."""
    perm = torch.cat((torch.arange(0, dr, 2), torch.arange(1, dr, 2))) + (width - dr)
    out = w.clone().view(-1, width, *w.shape[1:])
    out[:, width - dr:] = out[:, perm]
    return out.view_as(w)


@pytest.mark.parametrize("form", ["naive", "absorbed"])
def test_same_output_as_transformers_deepseek_v32_attention(form: str) -> None:
    from transformers import DeepseekV32Config
    from transformers.models.deepseek_v32.modeling_deepseek_v32 import DeepseekV32Attention

    s = SMALL
    cfg = DeepseekV32Config(hidden_size=s["dim"], num_attention_heads=s["heads"], num_key_value_heads=s["heads"],
                            q_lora_rank=s["q_lora_rank"], kv_lora_rank=s["kv_lora_rank"],
                            qk_nope_head_dim=s["qk_nope_head_dim"], qk_rope_head_dim=s["qk_rope_head_dim"],
                            v_head_dim=s["v_head_dim"], index_topk=s["index_topk"], index_n_heads=s["index_n_heads"],
                            index_head_dim=s["index_head_dim"], attention_bias=False)
    cfg._attn_implementation = "eager"
    spec = layer(SMALL, batch=2, seq=9, mla_form=form)
    mine = sparse_mla_torch.build(spec)
    torch.manual_seed(1)
    ref = DeepseekV32Attention(cfg, layer_idx=0).eval()
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if name.endswith("norm.weight") or name.endswith("norm.bias"):
                p.uniform_(0.5, 1.5)
    state = dict(ref.state_dict())
    dr = s["qk_rope_head_dim"]
    state["q_b_proj.weight"] = _perm_rope_rows(state["q_b_proj.weight"], s["qk_nope_head_dim"] + dr, dr)
    state["kv_a_proj_with_mqa.weight"] = _perm_rope_rows(state["kv_a_proj_with_mqa.weight"], s["kv_lora_rank"] + dr,
                                                         dr)
    mine.load_state_dict(state, strict=True)  # transformers' names, the indexer's included
    (x, cos, sin), kw = sparse_mla_torch.make_args(spec)
    additive = torch.zeros(2, 1, 9, 9).masked_fill(kw["blocked"], float("-inf"))
    with torch.no_grad():
        want, _ = ref(x, (cos.expand(2, -1, -1), sin.expand(2, -1, -1)), additive)
        got = mine(x, cos, sin, **kw)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_transformers_cache_keeps_the_latent_and_the_indexer_keys_at_the_layers_dtype() -> None:
    from transformers import DeepseekV32Config, DynamicCache
    from transformers.cache_utils import DynamicIndexedLayer
    from transformers.models.deepseek_v32.modeling_deepseek_v32 import DeepseekV32Attention

    s = SMALL
    cfg = DeepseekV32Config(hidden_size=s["dim"], num_attention_heads=s["heads"], num_key_value_heads=s["heads"],
                            q_lora_rank=s["q_lora_rank"], kv_lora_rank=s["kv_lora_rank"],
                            qk_nope_head_dim=s["qk_nope_head_dim"], qk_rope_head_dim=s["qk_rope_head_dim"],
                            v_head_dim=s["v_head_dim"], index_topk=s["index_topk"], index_n_heads=s["index_n_heads"],
                            index_head_dim=s["index_head_dim"], num_hidden_layers=1)
    cfg._attn_implementation = "eager"
    attn = DeepseekV32Attention(cfg, layer_idx=0).to(torch.bfloat16).eval()
    cache = DynamicCache(config=cfg)
    L = 6
    x = torch.randn(1, L, 64, dtype=torch.bfloat16)
    cs = torch.ones(1, L, 4, dtype=torch.bfloat16)
    mask = torch.zeros(1, 1, L, L, dtype=torch.bfloat16).masked_fill(torch.ones(L, L, dtype=torch.bool).triu(1),
                                                                     float("-inf"))
    with torch.no_grad():
        attn(x, (cs, cs), mask, cache=cache)
    held = cache.layers[0]
    assert isinstance(held, DynamicIndexedLayer)  # the latent's layer with the indexer's keys beside it
    assert held.keys is not None and held.values is not None and held.indexer_keys is not None
    tensors = [held.keys, held.values, held.indexer_keys]
    assert all(t.dtype == torch.bfloat16 for t in tensors)
    assert held.indexer_keys.shape == (1, L, 8)
    per_token = sum(t.numel() for t in tensors) * 2 // L
    spec = layer(SMALL, seq=L)
    assert per_token == sparse_mla.kv_bytes_per_token(spec, 2) == (16 + 4 + 8) * 2


# ---------------------------------------------------------------------------- KV cache and layouts
def test_kv_bytes_of_deepseek_v32() -> None:
    spec = layer(V32, seq=1, cache=131071)
    assert sparse_mla.kv_bytes_per_token(spec, 2) == (512 + 64 + 128) * 2 == 1408
    assert sparse_mla.kv_cache_bytes(spec, 2) == 131072 * 1408
    assert kind_of(spec).memory(spec, "bfloat16").kv_cache == 131072 * 1408
    # the reference: bf16 latent (1,152 B), fp8 indexer keys (128 B) and one float32 scale per 128 (4 B)
    assert sparse_mla.reference_kv_bytes_per_token(spec) == 1152 + 128 + 4
    # vLLM: fp8_ds_mla 512 fp8 + 4 float32 scales + 64 bf16 = 656 B, indexer 128 + 128 // 128 * 4 = 132 B
    assert sparse_mla.vllm_fp8_kv_bytes_per_token(spec) == {"latent": 656, "indexer": 132}
    assert sparse_mla.VLLM_FP8_DS_MLA_BYTES == 512 + 4 * 4 + 64 * 2


def test_a_fused_decode_reads_only_the_chosen_keys() -> None:
    spec = layer(V32, seq=1, cache=131071)
    dense = sparse_mla.closed_form(spec)
    eff, _ = sparse_mla.effective(spec, dense)
    fused = dict((n, el) for n, _, el in sparse_mla.kernel_elements(spec, False, dense, eff))
    h, r, latent = 128, 512, 576
    assert fused["attention"] == h * latent + 2048 * latent + h * r  # q, the 2,048 latents chosen, context
    assert eff["qk"] == h * 2048 * latent and eff["av"] == h * 2048 * r


# ---------------------------------------------------------------------------- settings
@pytest.mark.parametrize(("changes", "flag"), [
    ({"q_lora_rank": None}, "--q-lora-rank"), ({"index_head_dim": 2}, "--index-head-dim"),
    ({"index_topk": 0}, "--index-topk"), ({"index_n_heads": -1}, "--index-n-heads"), ({"window": 8}, "--window"),
    ({"impl": "mla"}, "--impl"), ({"kv_heads": 2}, "--kv-heads"),
])
def test_settings_sparse_mla_does_not_take_are_refused(changes: dict[str, Any], flag: str) -> None:
    with pytest.raises(SpecError) as err:
        AttnSpec(**{**SMALL, "impl": "sparse_mla", "seq": 8, **changes}).validate()
    assert err.value.flag == flag


def test_indexer_sizes_default_to_transformers() -> None:
    spec = layer({**SMALL, "index_n_heads": None, "index_head_dim": None}, seq=2)
    assert sparse_mla.indexer_sizes(spec) == sparse_mla.IndexerSizes(5, 64, 128)


def test_relabel_names_the_indexer_by_its_submodules() -> None:
    assert sparse_mla.relabel("indexer.wq_b", "q_proj") == "indexer_q_proj"
    assert sparse_mla.relabel("indexer", "qk") == "indexer_scores"
    assert sparse_mla.relabel("indexer.k_norm", "other") == "other"
    assert sparse_mla.relabel("kv_b_proj", "k_proj") == "kv_b_proj" and sparse_mla.relabel("", "av") == "av"


# ---------------------------------------------------------------------------- shapes
HOOKED = {"wq_b": "index_q", "wk": "index_k", "weights_proj": "index_weights"}


@pytest.mark.parametrize("cache", [0, 4])
def test_shapes_closed_form_is_what_the_indexer_produces(cache: int) -> None:
    spec = layer(SMALL, batch=2, seq=5, cache=cache)
    module = sparse_mla_torch.build(spec)
    seen: dict[str, tuple[int, ...]] = {}
    for name, sub in module.indexer.named_children():
        if name in HOOKED:
            sub.register_forward_hook(lambda _m, _i, out, n=HOOKED[name]: seen.__setitem__(n, tuple(out.shape)))
    module.indexer.register_forward_hook(lambda _m, _i, out: seen.__setitem__("index_scores", tuple(out.shape)))
    args, kw = sparse_mla_torch.make_args(spec)
    with torch.no_grad():
        module(*args, **kw)
    closed = {st.name: st.shape for st in stage_shapes(spec)}
    seen["index_q"] = (*seen["index_q"][:2], 3, 8)  # wq_b's output, viewed as IH heads of ID
    assert all(closed[k] == v for k, v in seen.items()), (seen, closed)
    assert closed["topk"] == (2, 5, 5) and ("index_k_cache" in closed) == bool(cache)
    names = [st.name for st in stage_shapes(spec)]
    assert names.index("scores") < names.index("index_q") < names.index("weights")


def test_shapes_weights_hold_the_closed_form_parameters() -> None:
    spec = layer(SMALL, seq=4)
    r = analyse(spec)
    assert r.total_params == sparse_mla.params(spec)["total"] == sum(w.numel for w in r.weights)
    assert r.components["indexer"] == 24 * 3 * 8 + 64 * 8 + 2 * 8 + 64 * 3
    assert r.attn_output == (1, 4, 64)
