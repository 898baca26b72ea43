"""attncli's DeepSeek-V4 layer (attncli.kinds.dsv4.torch_layer) against transformers' own
DeepseekV4Attention with the same weights: the output of a prefill without a cache and of a decode
step fed the cache transformers keeps, on a tiny config on CPU (plain RoPE: no YaRN), and its
FlopCounterMode count against the closed forms."""

from __future__ import annotations

from typing import Any

import pytest

from attncli.kinds.dsv4 import counts as C
from attncli.kinds.dsv4 import sizes as Z

torch = pytest.importorskip("torch")
pytest.importorskip("transformers.models.deepseek_v4")

from tests.kinds.test_dsv4 import TINY  # noqa: E402  (the tiny DeepSeek-V4 both files build)


def _pair(layer: int, cached: int) -> tuple[Any, Any, Any]:
    from transformers.models.deepseek_v4 import modeling_deepseek_v4 as M
    from transformers.models.deepseek_v4.configuration_deepseek_v4 import DeepseekV4Config

    from attncli.kinds.dsv4.torch_layer import Dsv4Attention

    torch.manual_seed(layer)
    config = DeepseekV4Config(**TINY)
    config._attn_implementation = "eager"
    ref = M.DeepseekV4Attention(config, layer).eval()
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_(0, 0.5)
    sizes, types = Z.read_sizes(TINY), Z.read_layer_types(TINY)
    ours = Dsv4Attention(sizes, types[layer], rope_dim=4, rope_theta=config.rope_theta,
                         compress_rope_theta=config.compress_rope_theta, cached=cached)
    ours.load_state_dict(ref.state_dict(), strict=True)
    return config, ref, ours


def _mask(q_len: int, cached: int, kv_len: int, window: int) -> Any:
    q = torch.arange(cached, cached + q_len)[:, None]
    k = torch.arange(kv_len)[None, :] + (cached + q_len - kv_len)
    keep = (k <= q) & (k > q - window)
    return torch.where(keep, 0.0, torch.finfo(torch.float32).min)[None, None]


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_prefill_and_decode_equal_transformers(layer: int) -> None:
    from transformers import DynamicCache
    from transformers.models.deepseek_v4 import modeling_deepseek_v4 as M

    config, ref, ours = _pair(layer, 0)
    rot = M.DeepseekV4RotaryEmbedding(config)

    def pe(x: Any, pos: Any) -> dict[str, Any]:
        return {"main": rot(x, pos, "main"), "compress": rot(x, pos, "compress")}

    x = torch.randn(1, 21, 32)
    pos = torch.arange(21)[None]
    with torch.no_grad():
        want, _ = ref(x, position_embeddings=pe(x, pos), position_ids=pos, attention_mask=_mask(21, 0, 21, 6),
                      cache=None)
        got = ours(x, torch.zeros(1, 0, 16))
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-4)
    # a decode step after 23 tokens (S = 24 closes a window of each compressor), with transformers' cache
    cache = DynamicCache(config=config)
    x0, x1 = torch.randn(1, 23, 32), torch.randn(1, 1, 32)
    with torch.no_grad():
        for i in range(layer):
            cache.layers[i].lazy_initialization(torch.zeros(1, 1, 1, 16), torch.zeros(1, 1, 1, 16))
        pos0 = torch.arange(23)[None]
        ref(x0, position_embeddings=pe(x0, pos0), position_ids=pos0, attention_mask=_mask(23, 0, 23, 6),
            cache=cache)
        layer_cache = cache.layers[layer]
        window = layer_cache.keys[:, 0].clone()
        # the cache's state before the step: closed entries, the open window's buffer, CSA's overlap
        before: dict[str, Any] = {}
        for name in ("compressor", "indexer") if layer else ():
            if name not in layer_cache.compressed_kv:
                continue
            overlap = getattr(layer_cache, "overlap_kv", {}).get(name)
            before[name] = (layer_cache.compressed_kv[name].clone(),
                            (layer_cache.buffer_kv[name].clone(), layer_cache.buffer_gate[name].clone(),
                             None if overlap is None else overlap.clone(),
                             None if overlap is None else layer_cache.overlap_gate[name].clone()))
        pos1 = torch.tensor([[23]])
        want, _ = ref(x1, position_embeddings=pe(x1, pos1), position_ids=pos1,
                      attention_mask=_mask(1, 23, window.shape[1] + 1, 6), cache=cache)
        ours.cached = 23
        kw: dict[str, Any] = {}
        if "compressor" in before:
            kw["compressed"], kw["state"] = before["compressor"]
        if "indexer" in before:
            kw["index_keys"], kw["index_state"] = before["indexer"]
        got = ours(x1, window, **kw)
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(("q_len", "cached"), [(21, 0), (1, 23), (5, 30)])
def test_counted_as_the_closed_forms(q_len: int, cached: int) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    from attncli.kinds.dsv4.torch_layer import Dsv4Attention

    sizes, types = Z.read_sizes(TINY), Z.read_layer_types(TINY)
    for t in types:
        layer = Dsv4Attention(sizes, t, rope_dim=4, cached=cached)
        m = sizes.ratio(t)
        kw: dict[str, Any] = {}
        if cached and t != Z.SLIDING:
            # what the cache holds before the step: floor(N/m) entries, N mod m buffered tokens, the overlap
            def state(width: int, d: int, m: int = m, csa: bool = t == Z.CSA) -> Any:
                overlap = torch.randn(1, m, d) if csa and cached >= m else None
                return (torch.randn(1, cached % m, width), torch.randn(1, cached % m, width), overlap, overlap)

            kw["compressed"] = torch.randn(1, cached // m, 16)
            kw["state"] = state(32 if t == Z.CSA else 16, 16)
            if t == Z.CSA:
                kw["index_keys"], kw["index_state"] = torch.randn(1, cached // m, 8), state(16, 8)
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            layer(torch.randn(1, q_len, 32), torch.randn(1, min(cached, 5), 16), **kw)
        assert fc.get_total_flops() == 2 * sum(C.dense(sizes, t, 1, q_len, cached).values()), (t, q_len, cached)
