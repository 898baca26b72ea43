"""DeepSeek-V4-Flash through the CLI (``model`` and ``flops --layer N``), against transformers 5.25's own
DeepseekV4Attention at the published sizes (FlopCounterMode on meta, sum(p.numel()), the cache's tensors
after a decode step; the issue's 5.24 numbers are the same): prefill 8,192 dense 257,433,897,271,296 MACs,
params 5,086,317,888; decode after 131,071 tokens dense 57,521,995,776 MACs and 907,950,080 B of KV (each
distinct tensor once, the overlap gates float32)."""

from __future__ import annotations

from typing import Any

import pytest

FLASH = "tests/data/configs/deepseek-v4-flash"


def test_model_prefill_equals_transformers(cli: Any) -> None:
    r = cli("model", "--config", FLASH, "--seq", "8192", "--format", "json")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["totals"]["fvcore_flops"] == 257_433_897_271_296
    assert doc["totals"]["params"] == 5_086_317_888
    assert doc["cross_checks"]["agree"] is True
    assert [(g["label"], len(g["layers"])) for g in doc["groups"]] == [
        ("sliding (W 128)", 2), ("CSA (m 4)", 21), ("HCA (m 128)", 20)]
    assert [layer["compress_ratio"] for layer in doc["layers"][:4]] == [0, 0, 4, 128]


def test_model_decode_equals_transformers(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    r = cli("model", "--config", FLASH, "--seq", "1", "--cache", "131071", "--format", "json")
    assert r.code == 0, r.err
    tot = r.json()["totals"]
    assert (tot["fvcore_flops"], tot["kv_cache_bytes"]) == (57_521_995_776, 907_950_080)
    # effective: per layer the 128-token window, CSA's top-512 entries, HCA's 1,024, H*D MACs each in
    # QK^T and in weights x V; the projections and the indexer's scores (32,768 entries) as dense
    hd = 64 * 512
    dense = {"sliding": 115_343_360, "csa": 2_550_398_976, "hca": 186_646_528}
    eff = {"sliding": dense["sliding"], "csa": dense["csa"] - 2 * (32_768 - 512) * hd,
           "hca": dense["hca"]}
    assert tot["effective_fvcore_flops"] == 2 * eff["sliding"] + 21 * eff["csa"] + 20 * eff["hca"]
    monkeypatch.setenv("COLUMNS", "80")
    text = cli("model", "--config", FLASH, "--seq", "1", "--cache", "131071")
    lines = text.out.splitlines()
    assert text.code == 0 and len(lines) <= 24 and all(len(line) <= 80 for line in lines)
    flat = " ".join(text.out.split())
    assert "CSA m=4: keeps 127 window tokens (one K=V tensor, 512) + 1 entry (512) and 1 indexer key (128) per 4 " \
           "tokens; a query attends to 128 tokens, its top-512 entries and a sink" in flat
    assert "paged: not modelled for DeepSeek-V4" in flat


@pytest.mark.parametrize(("layer", "macs"), [(0, 5_274_219_839_488), (2, 6_667_936_727_040),
                                             (3, 5_342_939_316_224)])
def test_flops_of_each_layer_type(cli: Any, layer: int, macs: int) -> None:
    r = cli("flops", "--config", FLASH, "--layer", str(layer), "--seq", "8192", "--batch", "1", "--format", "json")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["config"]["kind"] == "dsv4"
    assert doc["variants"][0]["fvcore_flops"] == macs


@pytest.mark.parametrize(("args", "flag"), [
    (("shapes", "--config", FLASH), "--config"),
    (("flops", "--config", FLASH, "--impl", "sdpa"), "--impl"),
    (("model", "--config", FLASH, "--tp", "3"), "--tp"),
    (("flops", "--config", FLASH, "--layer", "2", "--module",
      "transformers.models.deepseek_v4.modeling_deepseek_v4:DeepseekV4Attention"), "--module"),
    (("permute-test", "--config", FLASH), "--config"),
    # vLLM's layout of the compressed caches is not modelled: refused, not guessed
    (("model", "--config", FLASH, "--engine", "vllm", "--kv-cache-memory", "40GiB"), "--engine"),
])
def test_one_line_refusals(cli: Any, args: tuple[str, ...], flag: str) -> None:
    r = cli(*args)
    assert r.code == 2 and r.err.startswith(f"attncli: error: {flag}:") and len(r.err.splitlines()) == 1, r.err


def test_bench_times_the_kinds_own_layer(cli: Any, tmp_path: Any) -> None:
    """bench on a layer whose kind has one implementation (its own layer) times that layer; it timed
    nothing and exited 0 before (every --impl was skipped)."""
    import json

    cfg = {"model_type": "deepseek_v4", "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 1,
           "head_dim": 32, "q_lora_rank": 16, "o_groups": 2, "o_lora_rank": 8, "sliding_window": 8,
           "index_n_heads": 2, "index_head_dim": 16, "index_topk": 4, "num_hidden_layers": 3,
           "compress_ratios": [0, 4, 128]}
    (tmp_path / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    r = cli("bench", "--config", str(tmp_path), "--layer", "1", "--seq", "16", "--batch", "1", "--format", "json")
    assert r.code == 0, r.err
    assert [row["impl"] for row in r.json()["results"]] == ["dsv4"]


def test_whole_model_preset(cli: Any) -> None:
    """--preset deepseek-v4-flash is the published config (less quantization_config): the same numbers."""
    r = cli("model", "--preset", "deepseek-v4-flash", "--seq", "1", "--cache", "131071", "--format", "json")
    assert r.code == 0, r.err
    tot = r.json()["totals"]
    assert (tot["fvcore_flops"], tot["kv_cache_bytes"], tot["params"]) == (57_521_995_776, 907_950_080, 5_086_317_888)


def test_no_fit_is_claimed(cli: Any) -> None:
    """The paged layout (and so a fit beside the weights) is not modelled for these caches: said, not guessed."""
    r = cli("model", "--preset", "deepseek-v4-flash", "--seq", "1", "--cache", "131071", "--gpu", "h100-sxm",
            "--weights-memory", "150e9", "--format", "json")
    assert r.code == 0, r.err
    assert r.json()["roofline"]["fits_tokens"] is None
    text = cli("model", "--preset", "deepseek-v4-flash", "--seq", "1", "--cache", "131071", "--gpu", "h100-sxm",
               "--weights-memory", "150e9")
    assert "how many tokens fit is not estimated" in " ".join(text.out.split())


@pytest.mark.parametrize("swept", [("--seq", "64:256:x2"), ("--window", "64:128:x2"), ("--cache", "1k:4k:x2"),
                                   ("--heads", "32:64:x2"), ("--head-dim", "256:512:x2")])
def test_sweep_each_setting(cli: Any, swept: tuple[str, str]) -> None:
    """sweep runs every setting on a DeepSeek-V4 layer and says what the closed forms expect (--window
    raised a KeyError: the kind had no expectation for it)."""
    args = ["sweep", "--config", FLASH, "--layer", "2", "--batch", "1", *swept]
    if swept[0] != "--seq":
        args += ["--seq", "64"]
    r = cli(*args)
    assert r.code == 0, r.err
    assert "expected:" in r.out


def test_every_uncounted_op_is_known(cli: Any) -> None:
    """attncli's layer runs only ops the engine knows carry no multiply-adds (a comparison with <, 1/x
    and square() were flagged as ops without an fvcore handle)."""
    for layer in ("2", "3"):
        r = cli("flops", "--config", FLASH, "--layer", layer, "--seq", "1", "--cache", "4095", "--batch", "1",
                "--verbose")
        assert r.code == 0 and "NO fvcore HANDLE" not in r.out, r.out


def test_tp_splits_heads_and_output_groups(cli: Any) -> None:
    """--tp 8: q_b_proj, the grouped o_a_proj, o_b_proj (by its 8 groups' rows) and the sinks split 8
    ways; q_a_proj, the K=V head, the compressors and the indexer stay whole. CSA per layer, by hand:
    126,098,624 - 7/8 x (3 x 33,554,432 + 64) = 38,018,184 parameters per device."""
    r = cli("model", "--config", FLASH, "--seq", "64", "--tp", "8", "--format", "json")
    assert r.code == 0, r.err
    csa = next(g for g in r.json()["groups"] if g["layer_type"] == "compressed_sparse_attention")
    assert csa["per_layer"]["params"] == 126_098_624
    assert csa["per_device"]["params"] == 38_018_184
    assert "K=V head, compressors and indexer whole" in " ".join(cli("model", "--config", FLASH, "--seq", "64",
                                                                      "--tp", "8").out.split())


def test_bytes_per_token_and_fixed_bytes(cli: Any) -> None:
    """Per layer after 131,072 tokens (bfloat16): CSA grows by a 512-wide entry and a 128-wide indexer key
    every 4 tokens, (512 + 128) x 2 / 4 = 320 B per token, and holds 127 x 512 x 2 of window and the
    overlap, 4 x (512 + 128) x (2 + 4), fixed: 130,048 + 15,360 = 145,408; HCA 512 x 2 / 128 = 8 B per
    token and its window; a sliding layer only its window, keys and values (260,096)."""
    r = cli("model", "--config", FLASH, "--seq", "1", "--cache", "131071", "--format", "json")
    assert r.code == 0, r.err
    got = {g["layer_type"]: (g["per_layer"]["kv_bytes_per_token"], g["per_layer"]["kv_fixed_bytes"],
                             g["per_layer"]["kv_cache_bytes"]) for g in r.json()["groups"]}
    assert got["compressed_sparse_attention"] == (320, 145_408, 320 * 131_072 + 145_408)
    assert got["heavily_compressed_attention"] == (8, 130_048, 8 * 131_072 + 130_048)
    assert got["sliding_attention"] == (0, 260_096, 260_096)
