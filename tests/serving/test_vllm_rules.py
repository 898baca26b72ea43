"""vLLM 0.34's KV-cache rules (attncli.serving.vllm) against numbers from vLLM itself.

Expected values are vLLM's own: its unit tests (vllm-project/vllm ``tests/v1/core/test_kv_cache_utils.py``),
public logs (issues #10517, #24280), or closed forms derived by hand from the 0.34.0 source, written
out here (``vllm/v1/kv_cache_interface.py``, ``vllm/v1/core/kv_cache_planning.py``,
``vllm/platforms/interface.py``). Nothing is computed by the code under test.
"""

from __future__ import annotations

import pytest

from attncli.kinds.cache import CacheSpec
from attncli.serving.vllm import Settings, aligned_block_size, plan
from attncli.spec import SpecError

GiB = 2**30


def full(token_bytes: int) -> CacheSpec:
    return CacheSpec("full", token_bytes)


def sliding(token_bytes: int, window: int) -> CacheSpec:
    return CacheSpec("sliding_window", token_bytes, window=window)


# gpt-oss-20b: 24 layers alternating sliding (W 128, layer 0 first) and full; 8 KV heads of 64, bfloat16:
# 2 x 8 x 64 x 2 = 2,048 B per token and layer.
GPT_OSS = [sliding(2048, 128) if i % 2 == 0 else full(2048) for i in range(24)]


def test_gpt_oss_20b_at_131072_tokens_with_40_gib() -> None:
    p = plan(GPT_OSS, Settings(40 * GiB, 131_072, block_size=16))
    # two groups of 12 layers, one page 16 x 2,048 B: a block is 12 x 32,768 = 393,216 B
    assert p.layout.bytes_per_block == 393_216
    assert p.num_blocks == 40 * GiB // 393_216 == 109_226
    # full: 131,072 / 16 = 8,192; sliding: cdiv(min(127 + 2 x 8,192, 131,072), 16) + 1 = 1,032 + 1
    assert sorted(g.blocks_per_request for g in p.groups) == [1_033, 8_192]
    assert p.point.blocks_per_request == 9_225
    assert round(p.point.max_concurrency, 2) == 11.84
    assert p.point.kv_cache_tokens == 1_551_920  # int(109,226 / 9,225 x 131,072)
    assert p.layout.padding_layers == 0 and p.point.fits


def test_llama_3_1_8b_vllm_issue_10517() -> None:
    # 32 full layers, 8 KV heads of 128, bfloat16: 4,096 B per token and layer; one group of 32,
    # a block 32 x 16 x 4,096 = 2 MiB. The log: "# GPU blocks: 1952" and "Maximum concurrency for
    # 20000 tokens per request: 1.56x" (3.81 GiB shown; 1,952 blocks are 3.8125 GiB).
    llama = [full(4096)] * 32
    p = plan(llama, Settings(1952 * 2 * 2**20, 20_000, block_size=16))
    assert p.num_blocks == 1952
    assert p.point.blocks_per_request == 1250  # cdiv(20,000, 16)
    assert round(p.point.max_concurrency, 2) == 1.56
    # 2.89 GiB is 1,479.68 blocks: 1,479, one held back for the null block, 1,478 x 16 = 23,648 tokens
    short = plan(llama, Settings(int(2.89 * GiB), 131_072, block_size=16))
    assert not short.point.fits and short.point.max_model_len_fit == 23_648


def test_estimate_max_model_len_as_vllm_unit_test() -> None:
    # test_estimate_max_model_len: 32 full layers of 32 KV heads x 128, float16 (16,384 B per token and
    # layer), block 16, 8 GiB: 16,384 tokens fit ("16384 model_len need 8GB"); max_model_len 16,385 -> 16,384,
    # 16,383 -> 16,383. vLLM 0.34 checks against the memory less the null block (one block of 32 layers x
    # 16 x 16,384 B = 8 MiB), which the unit test's direct call does not: it is added back here.
    layers = [full(16_384)] * 32
    memory = 8 * GiB + 32 * 16 * 16_384
    assert plan(layers, Settings(memory, 16_385, block_size=16)).point.max_model_len_fit == 16_384
    assert plan(layers, Settings(memory, 16_383, block_size=16)).point.max_model_len_fit == 16_383


@pytest.mark.parametrize(("layers", "memory_blocks", "blocks", "groups"), [
    # test_get_kv_cache_config_one_worker: page p per layer; memory in pages -> num_blocks and the groups
    (["full", "sliding"], 2 * 32, 64, [(0,), (1,)]),
    (["full", "full", "sliding", "sliding", "sliding", "sliding"], 2 * 32, 32, [(0, 1), (2, 4), (3, 5)]),
    (["full"] * 3 + ["sliding"] * 7, 3 * 32, 32, [(0, 1, 2), (3, 6, 9), (4, 7), (5, 8)]),
    (["full"] * 6 + ["sliding"] * 5, 6 * 32, 32, [(0, 1, 2, 3, 4, 5), (6, 7, 8, 9, 10)]),
])
def test_grouping_as_vllm_unit_tests(layers: list[str], memory_blocks: int, blocks: int,
                                     groups: list[tuple[int, ...]]) -> None:
    # new_kv_cache_spec / new_sliding_window_spec: block 16, page 16 x 2 x 64 x 4 x 2 = 16,384 B (1,024 B a token)
    specs = [full(1024) if kind == "full" else sliding(1024, 1) for kind in layers]
    p = plan(specs, Settings(memory_blocks * 16_384, 16, block_size=16))
    assert p.num_blocks == blocks
    assert [g.layers for g in p.groups] == groups


def test_uniform_type_with_two_page_sizes_is_one_group() -> None:
    # "different hidden size but same type, use UniformTypeKVCacheSpecs": head 128 and 64, memory 3 x 32 pages
    p = plan([full(2048), full(1024)], Settings(3 * 32 * 16_384, 16, block_size=16))
    assert p.num_blocks == 32 and [g.layers for g in p.groups] == [(0, 1)]


def test_max_concurrency_as_vllm_unit_test() -> None:
    # test_get_max_concurrency_for_kv_cache_config: max_model_len 16,384, max_num_batched_tokens 1,024, one
    # batch in flight (that test's scheduler), block 16. Full: 1,024 blocks a request; sliding 1,024:
    # cdiv(min(1,023 + 1,024, 16,384), 16) + 1 = 129. num_blocks 1,536 -> 1.5x; 129 x 3 -> 3x; hybrid 3x.
    token = 2 * 32 * 128 * 2
    settings = Settings(0, 16_384, block_size=16, max_num_batched_tokens=1024, async_scheduling=False)
    one_full = plan([full(token)] * 32, Settings(1536 * 32 * 16 * token, 16_384, 16, 1024, True, False))
    assert one_full.point.max_concurrency == 1.5
    windowed = plan([sliding(token, 1024)] * 32, Settings(129 * 3 * 32 * 16 * token, 16_384, 16, 1024, True, False))
    assert windowed.point.blocks_per_request == 129 and windowed.point.max_concurrency == 3
    hybrid = [full(token)] * 32 + [sliding(token, 1024)] * 32
    both = plan(hybrid, Settings((1024 + 129) * 3 * 32 * 16 * token, 16_384, 16, 1024, True, False))
    assert both.point.max_concurrency == 3
    assert settings.in_flight == 1024


def test_gemma_3_27b_has_8_padding_layers() -> None:
    # 62 layers, every 6th full (10 full, 52 sliding W 1024): group size 10, sliding split into
    # cdiv(52, 10) = 6 groups, 10 - 52 % 10 = 8 padding layers
    gemma = [full(8192) if (i + 1) % 6 == 0 else sliding(8192, 1024) for i in range(62)]
    p = plan(gemma, Settings(40 * GiB, 131_072))
    assert p.layout.padding_layers == 8
    assert len(p.groups) == 7 and sorted(len(g.layers) for g in p.groups) == [8, 8, 9, 9, 9, 9, 10]
    assert "8 padding layers" in " ".join(p.notes) and "15.38%" in " ".join(p.notes)


# Qwen3-Next-80B-A3B: full layers 2 KV heads x 256, bfloat16 = 2,048 B per token; a Gated DeltaNet state
# (gated_delta_net_state_shape): conv (2 x 16 x 128 + 32 x 128 = 8,192) x (4 - 1) and recurrent 32 x 128 x 128,
# bfloat16: (24,576 + 524,288) x 2 = 1,097,728 B.
QWEN3_NEXT = [full(2048) if (i + 1) % 4 == 0 else CacheSpec("mamba", state_bytes=1_097_728) for i in range(48)]


def test_qwen3_next_attention_block_is_576_tokens() -> None:
    # _align_hybrid_block_size: a = max(16, 64) = 64; 64 x cdiv(1,097,728, 64 x 2,048) = 64 x 9 = 576
    p = plan(QWEN3_NEXT, Settings(40 * GiB, 262_144))
    assert p.layout.block_size == 576
    assert {g.page_size_bytes for g in p.groups} == {576 * 2048}  # the Mamba page padded to 1,179,648 B
    # 12 full + 36 GDN layers: 4 groups of 12; a request: cdiv(262,144, 576) = 456 + 3 x 2 (prefix caching, 'align')
    assert p.point.blocks_per_request == 456 + 6
    off = plan(QWEN3_NEXT, Settings(40 * GiB, 262_144, prefix_caching=False))
    assert off.point.blocks_per_request == 456 + 3


def test_nemotron_nano_9b_v2_block_672_or_1312_vllm_issue_24280() -> None:
    # Nemotron-H 9B v2: attention 8 KV heads x 128 bf16 = 4,096 B per token. Mamba2 state (mamba2_state_shape):
    # conv (128 x 80 + 2 x 8 x 128 = 12,288) x 3, SSM 128 x 80 x 128. bf16: (36,864 + 1,310,720) x 2 = 2,695,168;
    # float32 SSM: 36,864 x 2 + 1,310,720 x 4 = 5,316,608. At --block-size 16 (the default of #24280's vLLM):
    # 16 x cdiv(2,695,168, 65,536) = 16 x 42 = 672 and 16 x cdiv(5,316,608, 65,536) = 16 x 82 = 1,312.
    assert aligned_block_size(16, 4096, 2_695_168) == 672
    assert aligned_block_size(16, 4096, 5_316_608) == 1312


def test_chunked_local_attention_is_sized_as_full() -> None:
    # Llama 4: the hybrid manager is off by default with chunked local attention, so every layer is full
    llama4 = [full(2048) if (i + 1) % 4 == 0 else CacheSpec("chunked_local", 2048, chunk=8192) for i in range(48)]
    p = plan(llama4, Settings(40 * GiB, 262_144))
    assert len(p.groups) == 1 and p.point.blocks_per_request == 262_144 // 64


def test_block_size_must_be_a_multiple_of_the_kernel_block() -> None:
    with pytest.raises(SpecError, match="--block-size"):
        plan(GPT_OSS, Settings(GiB, 1024, block_size=24))
    with pytest.raises(SpecError, match="--block-size"):  # FlashMLA: 64
        plan([CacheSpec("mla", 1152)] * 2, Settings(GiB, 1024, block_size=16))


def test_gdn_prefill_checkpoints_take_a_block_and_align_the_block() -> None:
    # FlashInfer's GDN prefill (Hopper's default) in 'align' mode: MambaSpec.max_memory_usage_bytes is
    # page x (2 + num_prefill_checkpoint_blocks) = 3 blocks; _align_hybrid_block_size takes
    # lcm(max(16, block), 64): at --block-size 16, 64 x cdiv(1,097,728, 64 x 2,048) = 576, else 16 x 34 = 544
    gdn = CacheSpec("mamba", state_bytes=1_097_728, checkpoint_alignment=64)
    layers = [full(2048) if (i + 1) % 4 == 0 else gdn for i in range(48)]
    on = plan(layers, Settings(40 * GiB, 262_144, block_size=16))
    assert on.layout.block_size == 576 and on.point.blocks_per_request == 456 + 3 * 3
    off = plan(layers, Settings(40 * GiB, 262_144, block_size=16, prefix_caching=False))
    assert off.layout.block_size == 544 and off.point.blocks_per_request == 262_144 // 544 + 1 + 3
