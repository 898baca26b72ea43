"""FLOPs of grouped-query heads, head sizes, causal and sliding-window masks and a KV cache.

Where the expected values come from:

- the Llama-3-8B reference numbers of attncli's modern-attention spec (E 4096, H 32, G 8,
  d 128, no bias; the model's config.json on the Hugging Face hub), in multiply-adds, worked
  out by hand below;
- the dense closed form per stage, written out here in G, d and S = N + L;
- the effective count: the visible (query, key) pairs summed one by one here, from the mask
  definitions (not from :mod:`attncli.layer.visibility`), times B * H * d;
- ``torch.utils.flop_counter.FlopCounterMode`` run here on the meta device (2 per MAC; it
  charges every score, so it checks the dense count only).
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from attncli.analyses.flops import count_flops, count_variant
from attncli.layer.modules import build, make_inputs, run
from attncli.spec import AttnSpec

LLAMA3_8B = AttnSpec(dim=4096, heads=32, kv_heads=8, d_head=128, bias=False, batch=1, seq=8192,
                     mask="causal", impl="sdpa")


def _closed(spec: AttnSpec) -> dict[str, int]:
    """Dense MACs per stage by hand; T tokens are projected into K/V (L with a cache, else S)."""
    b, n, h, g, d, e = spec.batch, spec.seq, spec.heads, spec.n_kv_heads, spec.head_dim, spec.dim
    t = n if spec.cache else spec.s
    # the keys the kernel computes over: with a cache, the N cached (of which a sliding layer keeps the last
    # W - 1, a chunked one C - 1, as transformers' caches do) and the L new ones
    bound = spec.window if spec.window is not None else spec.chunk
    kept = spec.cache if bound is None else min(spec.cache, bound - 1)
    s_ = (kept + n if spec.cache else spec.s) + int(spec.add_bias_kv) + int(spec.add_zero_attn)
    return {
        "q_proj": b * n * e * h * d,           # (B*L, E) @ (E, H*d)
        "k_proj": b * t * spec.k_dim * g * d,  # (B*T, kdim) @ (kdim, G*d)
        "v_proj": b * t * spec.v_dim * g * d,  # (B*T, vdim) @ (vdim, G*d)
        "qk": b * h * n * s_ * d,              # H x (B, L, d) @ (B, d, S')
        "av": b * h * n * s_ * d,              # H x (B, L, S') @ (B, S', d)
        "out_proj": b * n * h * d * e if spec.out_proj else 0,  # (B*L, H*d) @ (H*d, E)
    }


def _visible(spec: AttnSpec) -> int:
    """Visible pairs of one batch item and head, one by one (query i at position S - L + i)."""
    s, n, pad = spec.s, spec.seq, max(1, spec.s // 4)
    count = 0
    for i in range(n):
        p = s - n + i
        for j in range(s):
            if spec.window is not None:
                count += p - spec.window < j <= p
            elif spec.mask == "causal":
                count += j <= p
            elif spec.mask == "padding":
                count += j < s - pad
            else:
                count += 1
    return count + n * (int(spec.add_bias_kv) + int(spec.add_zero_attn))


def test_llama3_8b_prefill_reference_numbers() -> None:
    for impl in ("sdpa", "split"):
        report = count_flops(replace(LLAMA3_8B, impl=impl).validate(), dtype="bfloat16")
        v = report.get(32, True)
        assert v is not None
        assert v.by_stage == {"q_proj": 137_438_953_472, "k_proj": 34_359_738_368, "v_proj": 34_359_738_368,
                              "qk": 274_877_906_944, "av": 274_877_906_944, "out_proj": 137_438_953_472}
        eff = v.to_json()["effective"]
        # 32 heads x 128 x (8192 x 8193 / 2) visible pairs
        assert eff["by_stage"]["qk"] == eff["by_stage"]["av"] == 137_455_730_688
        assert eff["fvcore_flops"] == v.fvcore_flops - 2 * (274_877_906_944 - 137_455_730_688)
        assert eff["flops"] == 2 * eff["fvcore_flops"]
        # W_q 4096x4096, W_k and W_v 1024x4096 each, W_O 4096x4096, no biases
        assert v.params == 41_943_040
        assert not v.problems, v.problems


def test_llama3_8b_decode_step_against_an_8191_token_cache() -> None:
    spec = replace(LLAMA3_8B, seq=1, cache=8191).validate()
    v = count_flops(spec, dtype="bfloat16").get(32, True)
    assert v is not None
    assert v.by_stage["qk"] == v.by_stage["av"] == 32 * 8192 * 128 == 33_554_432
    assert v.by_stage["k_proj"] == 4096 * 1024  # only the new token is projected
    # 2 (K and V) x B 1 x S 8192 x G 8 x d 128 x 2 bytes (bfloat16)
    assert v.memory.to_json()["kv_cache_bytes"] == 33_554_432
    assert not v.problems, v.problems


def test_one_head_variants_keep_the_seed_meaning() -> None:
    # One head of width H*d with one K/V head: K and V project to H*d features.
    report = count_flops(replace(LLAMA3_8B, seq=16).validate())
    one = report.get(1, True)
    assert one is not None
    assert one.by_stage["k_proj"] == 16 * 4096 * 4096
    assert one.by_stage["qk"] == 16 * 16 * 4096


def _settings(n: int) -> settings:
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def modern_specs(draw: st.DrawFn) -> AttnSpec:
    impl = draw(st.sampled_from(("split", "per-head", "fused", "sdpa")))
    g = draw(st.integers(1, 3))
    h = g * draw(st.integers(1, 3))
    d = draw(st.integers(1, 6))
    dim = draw(st.integers(1, 12))
    seq = draw(st.integers(1, 6))
    cache = draw(st.sampled_from((0, 0, 1, 5)))
    window = draw(st.none() | st.integers(1, 8))
    mask = draw(st.sampled_from(("none", "causal") if (window is not None or cache) else ("none", "causal", "padding")))
    kv_seq = None
    if not cache and impl != "fused" and draw(st.booleans()):
        kv_seq = draw(st.integers(seq if (mask == "causal" or window) else 2, 9))
    extra = {} if cache else {"add_bias_kv": draw(st.booleans()), "add_zero_attn": draw(st.booleans())}
    spec = AttnSpec(dim=dim, heads=h, kv_heads=g, d_head=d, seq=seq, kv_seq=kv_seq, cache=cache,
                    window=window, mask=mask, batch=draw(st.integers(1, 2)), impl=impl,
                    bias=draw(st.booleans()), out_proj=draw(st.booleans()), **extra)
    if spec.mask == "padding" and spec.s < 2:
        spec = replace(spec, mask="none")
    return spec.validate()


@_settings(60)
@given(spec=modern_specs())
def test_dense_equals_closed_form_and_flop_counter_effective_equals_visible_pairs(spec: AttnSpec) -> None:
    closed = _closed(spec)
    v = count_variant(spec)
    assert {k: v.by_stage.get(k, 0) for k in closed} == closed
    assert not v.problems, v.problems
    with FlopCounterMode(display=False) as counter:
        run(build(spec, "meta"), spec, make_inputs(spec, "meta"))
    assert counter.get_total_flops() == 2 * sum(closed.values())
    eff = v.to_json()["effective"]
    visible = spec.batch * spec.heads * spec.head_dim * _visible(spec)
    assert eff["by_stage"] == {**closed, "qk": visible, "av": visible}
    assert eff["fvcore_flops"] == sum(eff["by_stage"].values())
