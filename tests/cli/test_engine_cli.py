"""``attncli model --engine vllm`` through the CLI: the answer line, JSON ``engine``, each kind's cache,
ranges, refusals. Expected values are closed forms from vLLM 0.34's source, written out (see
tests/serving/test_vllm_rules.py for the rules themselves)."""

from __future__ import annotations

from typing import Any

import pytest

DATA = "tests/data/configs"
GiB = 2**30


def engine(cli: Any, config: str, *args: str) -> dict[str, Any]:
    r = cli("model", "--config", f"{DATA}/{config}", "--engine", "vllm", "--format", "json", *args)
    assert r.code == 0, r.err
    doc: dict[str, Any] = r.json()["engine"]
    return doc


def test_gpt_oss_20b_answer_line(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    r = cli("model", "--config", f"{DATA}/gpt-oss-20b", "--engine", "vllm", "--kv-cache-memory", "40GiB",
            "--block-size", "16")
    assert r.code == 0, r.err
    text = " ".join(r.out.split())
    assert ("vLLM 0.34, 40.0 GiB of KV: 109,226 blocks of 16 tokens; one 131,072-token request takes 9,225 blocks "
            "(full 8,192 + sliding 1,033); max concurrency 11.84x; GPU KV cache size 1,551,920 tokens") in text
    lines = r.out.splitlines()
    assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)


def test_gpt_oss_20b_json(cli: Any) -> None:
    doc = engine(cli, "gpt-oss-20b", "--kv-cache-memory", "42949672960", "--block-size", "16")
    assert (doc["name"], doc["version"], doc["block_size"]) == ("vllm", "0.34.0", 16)
    assert doc["num_blocks"] == 109_226 and doc["blocks_per_request"] == 9_225
    assert doc["kv_cache_tokens"] == 1_551_920 and round(doc["max_concurrency"], 2) == 11.84
    assert doc["max_model_len"] == doc["max_model_len_fit"] == 131_072 and doc["padding_layers"] == 0
    assert [(g["spec"], len(g["layers"]), g["page_size_bytes"], g["blocks_per_request"]) for g in doc["groups"]] == [
        ("SlidingWindowSpec", 12, 16 * 2048, 1_033), ("FullAttentionSpec", 12, 16 * 2048, 8_192)]
    assert doc["groups"][0]["layers"] == list(range(0, 24, 2))


def test_gpt_oss_20b_at_vllm_034s_default_block(cli: Any) -> None:
    # block 64: one block 12 x 64 x 2,048 B; full 131,072 / 64 = 2,048, sliding cdiv(127 + 16,384, 64) + 1 = 259
    doc = engine(cli, "gpt-oss-20b", "--kv-cache-memory", "40GiB")
    assert doc["block_size"] == 64 and doc["num_blocks"] == 40 * GiB // (12 * 64 * 2048)
    assert doc["blocks_per_request"] == 2_048 + 259


def test_tensor_parallel_shards_then_replicates_kv_heads(cli: Any) -> None:
    # --tp 2: 4 of the 8 KV heads per device, a page of 16 x 1,024 B: twice the blocks; --tp 16: one head, replicated
    assert engine(cli, "gpt-oss-20b", "--kv-cache-memory", "40GiB", "--block-size", "16",
                  "--tp", "2")["num_blocks"] == 40 * GiB // (12 * 16 * 1024)
    assert engine(cli, "gpt-oss-20b", "--kv-cache-memory", "40GiB", "--block-size", "16",
                  "--tp", "16")["num_blocks"] == 40 * GiB // (12 * 16 * 256)


def test_llama_3_1_8b_does_not_fit_and_says_the_longest(cli: Any) -> None:
    r = cli("model", "--config", f"{DATA}/llama-3.1-8b", "--engine", "vllm", "--kv-cache-memory", "2.89GiB",
            "--block-size", "16")
    assert r.code == 0, r.err
    text = " ".join(r.out.split())
    assert "does not fit" in text and "the longest max_model_len that fits is 23,648 tokens" in text
    doc = engine(cli, "llama-3.1-8b", "--kv-cache-memory", "2.89GiB", "--block-size", "16")
    assert doc["fits"] is False and doc["max_model_len_fit"] == 23_648


def test_gemma_3_27b_padding_layers(cli: Any) -> None:
    doc = engine(cli, "gemma-3-27b", "--kv-cache-memory", "40GiB", "--max-model-len", "128k")
    assert doc["padding_layers"] == 8 and len(doc["groups"]) == 7
    # 16 KV heads x 128 x 2 x 2 B = 8,192 B per token; a block 10 layers x 64 x 8,192
    assert doc["bytes_per_block"] == 10 * 64 * 8192


def test_qwen3_next_block_576_and_prefix_caching(cli: Any) -> None:
    doc = engine(cli, "qwen3-next-80b-a3b", "--kv-cache-memory", "40GiB", "--max-model-len", "262144")
    assert doc["block_size"] == 576
    mamba = [g for g in doc["groups"] if g["spec"] == "MambaSpec"]
    assert len(mamba) == 3 and {g["unpadded_page_size_bytes"] for g in mamba} == {1_097_728}
    # cdiv(262,144, 576) = 456; each GDN group: 2 blocks in 'align' mode + 1 prefill checkpoint (FlashInfer's GDN
    # prefill, vLLM's default on Hopper: num_prefill_checkpoint_blocks=1)
    assert doc["blocks_per_request"] == 456 + 3 * 3
    off = engine(cli, "qwen3-next-80b-a3b", "--kv-cache-memory", "40GiB", "--max-model-len", "262144",
                 "--no-prefix-caching")
    assert off["blocks_per_request"] == 456 + 3
    # --block-size 16: with prefix caching a = lcm(16, 64) = 64 -> 576; without, 16 x cdiv(1,097,728, 32,768) = 544
    assert engine(cli, "qwen3-next-80b-a3b", "--kv-cache-memory", "40GiB", "--block-size", "16")["block_size"] == 576
    assert engine(cli, "qwen3-next-80b-a3b", "--kv-cache-memory", "40GiB", "--block-size", "16",
                  "--no-prefix-caching")["block_size"] == 544
    # a float32 recurrent state: (24,576 x 2 + 524,288 x 4) = 2,146,304 B; 64 x cdiv(2,146,304, 131,072) = 1,088
    assert engine(cli, "qwen3-next-80b-a3b", "--kv-cache-memory", "40GiB", "--mamba-ssm-cache-dtype",
                  "float32")["block_size"] == 1088


def test_mla_latent_and_fp8_ds_mla(cli: Any) -> None:
    # DeepSeek-V3: (512 + 64) x 2 = 1,152 B per token, one group of 61; fp8_ds_mla: 512 + 4 x 4 + 64 x 2 = 656 B
    doc = engine(cli, "deepseek-v3", "--kv-cache-memory", "40GiB")
    assert doc["bytes_per_block"] == 61 * 64 * 1152 and doc["blocks_per_request"] == 163_840 // 64
    fp8 = engine(cli, "deepseek-v3", "--kv-cache-memory", "40GiB", "--kv-cache-dtype", "fp8_ds_mla")
    assert fp8["bytes_per_block"] == 61 * 64 * 656


def test_sparse_mla_adds_the_indexer_cache(cli: Any) -> None:
    # DeepSeek-V3.2: the latent (1,152 B) and the indexer's keys (128 + 4 = 132 B) per token and layer, one group
    doc = engine(cli, "deepseek-v3.2", "--kv-cache-memory", "40GiB")
    assert doc["bytes_per_block"] == 61 * 64 * (1152 + 132) and len(doc["groups"]) == 1


def test_llama_4_chunked_layers_sized_as_full(cli: Any) -> None:
    # 48 layers, 8 KV heads x 128 bf16 = 4,096 B per token, all full (hybrid manager off with chunked attention)
    doc = engine(cli, "llama-4-scout", "--kv-cache-memory", "40GiB", "--max-model-len", "131072")
    assert len(doc["groups"]) == 1 and doc["blocks_per_request"] == 131_072 // 64
    assert "chunked local attention" in " ".join(doc["notes"])


def test_gpu_budget_is_the_share_less_weights_and_the_estimate(cli: Any) -> None:
    # h100-sxm: 80 GB; 0.9 x 80e9 - 16e9 of weights - 2 GiB (the stated estimate)
    doc = engine(cli, "llama-3.1-8b", "--gpu", "h100-sxm", "--gpu-memory-utilization", "0.9",
                 "--weights-memory", "16e9")
    assert doc["kv_cache_memory_bytes"] == int(80e9 * 0.9) - 16 * 10**9 - 2 * GiB
    assert "an estimate" in doc["notes"][0]


@pytest.mark.parametrize("config", ["gpt-oss-20b", "gemma-3-27b", "qwen3-next-80b-a3b"])
@pytest.mark.parametrize("lengths", [None, "8k:1M:x2"])
def test_tables_fit_one_screen(cli: Any, monkeypatch: pytest.MonkeyPatch, config: str, lengths: str | None) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    r = cli("model", "--config", f"{DATA}/{config}", "--engine", "vllm", "--kv-cache-memory", "40GiB",
            *(["--max-model-len", lengths] if lengths else []))
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)


def test_range_in_json(cli: Any) -> None:
    doc = engine(cli, "gpt-oss-20b", "--kv-cache-memory", "40GiB", "--max-model-len", "8k:1M:x2")
    assert [p["max_model_len"] for p in doc["sweep"]] == [8192 * 2**i for i in range(8)]


def test_verbose_shows_each_knob(cli: Any) -> None:
    r = cli("model", "--config", f"{DATA}/qwen3-next-80b-a3b", "--engine", "vllm", "--kv-cache-memory", "40GiB",
            "--verbose")
    assert r.code == 0, r.err
    for flag in ("--max-model-len", "--kv-cache-memory", "--block-size", "--max-num-batched-tokens",
                 "--no-prefix-caching"):
        assert flag in r.out


def test_markdown(cli: Any) -> None:
    r = cli("model", "--config", f"{DATA}/gpt-oss-20b", "--engine", "vllm", "--kv-cache-memory", "40GiB",
            "--format", "markdown", "--verbose")
    assert r.code == 0, r.err
    assert "GPU KV cache size" in r.out and "| group |" in r.out


@pytest.mark.parametrize(("args", "flag"), [
    (["--kv-cache-memory", "40G"], "--kv-cache-memory"),
    (["--no-prefix-caching"], "--no-prefix-caching"),
    (["--max-model-len", "8k"], "--max-model-len"),
    (["--kv-cache-dtype", "fp8"], "--kv-cache-dtype"),
    (["--mamba-ssm-cache-dtype", "float32"], "--mamba-ssm-cache-dtype"),
    (["--max-num-batched-tokens", "4096"], "--max-num-batched-tokens"),
    (["--gpu-memory-utilization", "0.9"], "--gpu-memory-utilization"),
    (["--engine", "vllm"], "--engine"),
    (["--engine", "sglang", "--kv-cache-memory", "1G"], "--engine"),
    (["--engine", "vllm", "--kv-cache-memory", "0"], "--kv-cache-memory"),
    (["--engine", "vllm", "--kv-cache-memory", "-1G"], "--kv-cache-memory"),
    (["--engine", "vllm", "--kv-cache-memory", "lots"], "--kv-cache-memory"),
    (["--engine", "vllm", "--kv-cache-memory", "1G", "--block-size", "24"], "--block-size"),
    (["--engine", "vllm", "--kv-cache-memory", "1G", "--max-model-len", "0"], "--max-model-len"),
    (["--engine", "vllm", "--kv-cache-memory", "1G", "--max-num-batched-tokens", "0"], "--max-num-batched-tokens"),
    (["--engine", "vllm", "--kv-cache-memory", "1G", "--kv-cache-dtype", "nvfp4"], "--kv-cache-dtype"),
    (["--engine", "vllm", "--kv-cache-memory", "1G", "--kv-cache-dtype", "fp8_ds_mla"], "--kv-cache-dtype"),
    (["--engine", "vllm", "--kv-cache-memory", "1G", "--mamba-ssm-cache-dtype", "int3"], "--mamba-ssm-cache-dtype"),
    (["--engine", "vllm", "--gpu", "h100-sxm", "--gpu-memory-utilization", "0"], "--gpu-memory-utilization"),
    (["--engine", "vllm", "--gpu", "h100-sxm", "--gpu-memory-utilization", "1.5"], "--gpu-memory-utilization"),
    (["--engine", "vllm", "--gpu", "h100-sxm"], "--weights-memory"),
    (["--engine", "vllm", "--gpu", "h100-sxm", "--weights-memory", "1e12"], "--gpu"),
])
def test_refusals_name_the_flag(cli: Any, args: list[str], flag: str) -> None:
    r = cli("model", "--config", f"{DATA}/llama-3.1-8b", *args)
    assert r.code == 2, r.out
    assert r.err.startswith(f"attncli: error: {flag}: ") and r.err.count("\n") == 1 and "Traceback" not in r.err


def test_plot_of_a_range(cli: Any, tmp_path: Any) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "concurrency.png"
    r = cli("model", "--config", f"{DATA}/gpt-oss-20b", "--engine", "vllm", "--kv-cache-memory", "40GiB",
            "--max-model-len", "8k:256k:x2", "--plot", str(out))
    assert r.code == 0, r.err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_past_max_position_embeddings_is_said(cli: Any) -> None:
    doc = engine(cli, "gpt-oss-20b", "--kv-cache-memory", "40GiB", "--max-model-len", "1M")
    assert "VLLM_ALLOW_LONG_MAX_MODEL_LEN" in " ".join(doc["notes"])
