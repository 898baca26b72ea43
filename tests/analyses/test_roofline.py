"""The roofline estimate: datasheet figures, hand-counted bytes, and the bound of decode vs prefill."""

from __future__ import annotations

import pytest

from attncli.analyses.gpus import gpu, gpus, match_device
from attncli.analyses.roofline import estimate, layer_macs
from attncli.kinds.standard.traffic import LayerDims, layer_dims, stage_elements
from attncli.spec import AttnSpec, SpecError

# NVIDIA H100 Tensor Core GPU datasheet, H100 SXM column
# (https://resources.nvidia.com/en-us-tensor-core/nvidia-tensor-core-gpu-datasheet): BF16 Tensor
# Core 1,979 TFLOPS *with sparsity*, i.e. 989.4 dense (H100 whitepaper); GPU memory bandwidth 3.35 TB/s.
H100_BF16 = 989.4e12
H100_BW = 3.35e12

# Llama-3-8B attention layer (meta-llama/Meta-Llama-3-8B config.json: hidden_size 4096,
# num_attention_heads 32, num_key_value_heads 8, so head_dim 128).
E, H, G, D = 4096, 32, 8, 128


def llama_macs(q_len: int, kv_len: int, new_kv_tokens: int, causal_prefill: bool = False) -> tuple[dict[str, int],
                                                                                                    dict[str, int]]:
    """Dense and effective MACs per stage, by hand: projections tokens x in x out, QK^T and
    weights x V B*H*L*S*d; a causal prefill sees L(L+1)/2 pairs per head."""
    dense = {"q_proj": q_len * E * H * D, "k_proj": new_kv_tokens * E * G * D, "v_proj": new_kv_tokens * E * G * D,
             "qk": H * q_len * kv_len * D, "av": H * q_len * kv_len * D, "out_proj": q_len * H * D * E}
    eff = dict(dense)
    if causal_prefill:
        eff["qk"] = eff["av"] = H * (q_len * (q_len + 1) // 2) * D
    return dense, eff


def llama_dims(q_len: int, kv_len: int, new_kv_tokens: int) -> LayerDims:
    return LayerDims(batch=1, heads=H, kv_heads=G, head_dim=D, dim=E, q_len=q_len, kv_len=kv_len,
                     new_kv_tokens=new_kv_tokens, bias=False, bytes_per_element=2)


def test_h100_figures_are_the_datasheets() -> None:
    h100 = gpu("h100-sxm")
    assert h100.peak("bfloat16") == H100_BF16
    assert h100.bandwidth_bytes_per_s == H100_BW
    assert h100.memory_bytes == 80 * 10**9


def test_every_gpu_has_the_common_dtypes_and_a_datasheet() -> None:
    names = {g.name for g in gpus()}
    assert {"a100-sxm-40gb", "a100-sxm-80gb", "h100-sxm", "h100-pcie", "h200", "b200", "l4", "l40s",
            "rtx-4090", "mi300x"} <= names
    for g in gpus():
        assert {"float32", "bfloat16", "float16"} <= set(g.peak_flops_per_s), g.name
        assert g.source.startswith("https://") and g.note, g.name
        # A dense tensor-core peak is far above plain float32 and below 10 PFLOP/s everywhere.
        assert g.peak("float32") <= g.peak("bfloat16") < 10e15, g.name


def test_time_is_max_of_compute_and_memory_per_stage_and_summed() -> None:
    dense, eff = llama_macs(q_len=1, kv_len=8192, new_kv_tokens=1)
    r = estimate(llama_dims(1, 8192, 1), dense, eff, "h100-sxm", "bfloat16")
    assert r.peak_flops_per_s == H100_BF16 and r.bandwidth_bytes_per_s == H100_BW
    for kernel in (r.fused, r.naive):
        for s in kernel.by_stage:
            assert s.time_s == max(s.flops / H100_BF16, s.bytes / H100_BW), s.name
        # the whole layer's roofline (issue 12: time_s = max(flops / peak, bytes / bandwidth)), and
        # stage by stage the sum of the stages' own
        assert kernel.time_s == max(kernel.flops / H100_BF16, kernel.bytes / H100_BW)
        assert kernel.stages_time_s == pytest.approx(sum(s.time_s for s in kernel.by_stage), rel=1e-12)
        assert kernel.flops == sum(s.flops for s in kernel.by_stage)
    assert r.fused.flops == 2 * sum(eff.values()) and r.naive.flops == 2 * sum(dense.values())


def test_mixed_bounds_take_longer_stage_by_stage() -> None:
    """A causal prefill of 512 tokens, naive: the projections are compute-bound on an H100 while
    softmax moves 4 x H*L*S bytes with no FLOPs (memory-bound), so adding the stages' own times
    exceeds the layer's roofline, max(total FLOPs / peak, total bytes / bandwidth)."""
    dense, eff = llama_macs(q_len=512, kv_len=512, new_kv_tokens=512, causal_prefill=True)
    r = estimate(llama_dims(512, 512, 512), dense, eff, "h100-sxm", "bfloat16")
    bounds = {s.bound for s in r.naive.by_stage}
    assert bounds == {"compute", "memory"}
    assert r.naive.time_s == max(r.naive.flops / H100_BF16, r.naive.bytes / H100_BW)
    assert r.naive.stages_time_s > r.naive.time_s


def test_decode_step_is_memory_bound() -> None:
    # One new token against an 8192-token cache: every weight and the whole cache are read
    # for a few FLOPs each, far below the ridge point (989.4 / 3.35 = 295 FLOPs per byte).
    dense, eff = llama_macs(q_len=1, kv_len=8192, new_kv_tokens=1)
    r = estimate(llama_dims(1, 8192, 1), dense, eff, "h100-sxm", "bfloat16")
    assert r.ridge_point == pytest.approx(989.4 / 3.35)
    assert r.fused.bound == "memory" and r.naive.bound == "memory"
    assert all(s.bound == "memory" for s in r.fused.by_stage)
    # Bytes: the KV cache, K and V (8192 x 8 x 128 each, 2 bytes) alone is 32 MiB.
    attention = next(s for s in r.fused.by_stage if s.name == "attention")
    assert attention.bytes == 2 * (2 * 8192 * G * D + 2 * H * D)


def test_long_prefill_is_compute_bound() -> None:
    dense, eff = llama_macs(q_len=8192, kv_len=8192, new_kv_tokens=8192, causal_prefill=True)
    r = estimate(llama_dims(8192, 8192, 8192), dense, eff, "h100-sxm", "bfloat16")
    assert r.fused.bound == "compute"
    assert r.fused.flops < r.naive.flops  # the causal mask skips about half of QK^T and x V
    assert r.naive.bytes > r.fused.bytes


def test_bytes_by_hand_for_a_small_config() -> None:
    # B=2, H=2 query heads, G=1 kv head, d=4, E=8, L=3 new tokens, S=5 keys (a cache of 2),
    # K/V projected for the B*L = 6 new tokens, biases, 2-byte elements.
    dims = LayerDims(batch=2, heads=2, kv_heads=1, head_dim=4, dim=8, q_len=3, kv_len=5, new_kv_tokens=6,
                     bias=True, bytes_per_element=2)
    fused = stage_elements(dims, naive=False)
    # q_proj: input 6*8 + W 8*8 + b 8 + output 6*8 = 168; k_proj: 6*8 + 8*4 + 4 + 6*4 = 108.
    # attention: Q 2*3*2*4 = 48, K and V 2*5*1*4 = 40 each, output 48.
    assert fused == {"q_proj": 168, "k_proj": 108, "v_proj": 108, "attention": 176, "out_proj": 168}
    naive = stage_elements(dims, naive=True)
    # scores/weights (B, H, L, S) = 2*2*3*5 = 60: QK^T 48 + 40 + 60, softmax 60 + 60, x V 60 + 40 + 48.
    assert naive == {"q_proj": 168, "k_proj": 108, "v_proj": 108, "qk": 148, "softmax": 120, "av": 148,
                     "out_proj": 168}
    macs = {"q_proj": 1, "k_proj": 1, "v_proj": 1, "qk": 1, "av": 1, "out_proj": 1}
    r = estimate(dims, macs, macs, "l4", "float16")
    assert r.fused.bytes == 728 * 2 and r.naive.bytes == 968 * 2
    assert r.naive.bytes - r.fused.bytes == 4 * 60 * 2  # scores and weights, each written then read


@pytest.mark.parametrize(("device", "dtype", "flag"), [
    ("nope", "bfloat16", "--gpu"),
    ("a100-sxm-40gb", "float8", "--dtype"),  # A100 has no FP8 tensor cores
    ("h100-sxm", "int4", "--dtype"),
])
def test_bad_names_name_the_flag_and_the_choices(device: str, dtype: str, flag: str) -> None:
    dense, eff = llama_macs(1, 8, 1)
    with pytest.raises(SpecError) as err:
        estimate(llama_dims(1, 8, 1), dense, eff, device, dtype)
    assert err.value.flag == flag and "choose from" in err.value.message


def test_json_object_has_the_contract_keys() -> None:
    dense, eff = llama_macs(1, 8192, 1)
    doc = estimate(llama_dims(1, 8192, 1), dense, eff, "h100-sxm", "bfloat16").to_json()
    # NOTE: the fused estimate (top level) does the effective FLOPs: effective_flops; the naive one flops
    for key in ("device", "dtype", "peak_flops_per_s", "bandwidth_bytes_per_s", "effective_flops", "bytes", "intensity",
                "bound", "time_s", "naive", "by_stage", "note"):
        assert key in doc, key
    assert set(doc["naive"]) >= {"flops", "bytes", "intensity", "bound", "time_s", "by_stage"}
    assert "flops" not in doc and "effective_flops" not in doc["naive"]
    assert "upper bound" in doc["note"]


def test_cuda_device_names_match_the_table() -> None:
    found = match_device("NVIDIA H100 80GB HBM3")
    assert found is not None and found.name == "h100-sxm"
    assert match_device("AMD EPYC 7763") is None


# ---------------------------------------------------------------------------- from a spec
TINY = AttnSpec(dim=64, heads=4, batch=2, seq=16).validate()


def test_layer_macs_is_the_closed_form_by_hand() -> None:
    effective, dense = layer_macs(TINY)
    # B*L*E*E = 2*16*64*64 for each projection and W_O; B*L*S*E = 2*16*16*64 for QK^T and x V.
    want = {"q_proj": 131072, "k_proj": 131072, "v_proj": 131072, "qk": 32768, "av": 32768, "out_proj": 131072}
    assert dense == want and effective == want


def test_layer_dims() -> None:
    d = layer_dims(AttnSpec(dim=64, heads=4, batch=2, seq=16, kv_seq=10).validate(), "bfloat16")
    assert (d.batch, d.heads, d.kv_heads, d.head_dim, d.dim, d.q_len, d.kv_len) == (2, 4, 4, 16, 64, 16, 10)
    assert d.new_kv_tokens == 2 * 10 and d.bytes_per_element == 2


def test_layer_macs_effective_for_a_causal_gqa_decode_step() -> None:
    # One decode step of a Llama-3-8B layer (E 4096, H 32, G 8, d 128) against 8191 cached tokens:
    # the new query sees all 8192 keys, so effective = dense; K/V project one token.
    spec = AttnSpec(dim=4096, heads=32, kv_heads=8, d_head=128, seq=1, cache=8191, mask="causal",
                    impl="sdpa").validate()
    effective, dense = layer_macs(spec)
    assert dense["qk"] == effective["qk"] == 32 * 8192 * 128
    assert dense["k_proj"] == 4096 * 8 * 128
    d = layer_dims(spec, "bfloat16")
    assert (d.kv_heads, d.head_dim, d.q_len, d.kv_len, d.new_kv_tokens) == (8, 128, 1, 8192, 1)


def test_layer_macs_effective_for_a_causal_prefill() -> None:
    # L = S = 8: 8 * 9 / 2 = 36 visible pairs of 64, per head of d = 16, B = 2, H = 4.
    spec = AttnSpec(dim=64, heads=4, batch=2, seq=8, mask="causal", impl="split").validate()
    effective, dense = layer_macs(spec)
    assert dense["qk"] == 2 * 4 * 64 * 16 and effective["qk"] == effective["av"] == 2 * 4 * 36 * 16


def test_datasheet_figures_are_exact_integers_of_bytes_and_flops() -> None:
    """2.039 TB/s (A100 80GB datasheet) is 2,039,000,000,000 bytes/s exactly: 2.039 * 1e12 in
    binary floating point is 2039000000000.0002, which the JSON printed."""
    assert gpu("a100-sxm-80gb").bandwidth_bytes_per_s == 2_039_000_000_000
    assert gpu("h100-sxm").peak("bfloat16") == 989_400_000_000_000
