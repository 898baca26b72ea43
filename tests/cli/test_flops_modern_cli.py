"""``attncli flops`` on the modern flags, end to end: the Llama-3-8B reference numbers in the JSON,
a decode step's KV cache, the roofline with the datasheet figures, and one-line bad input."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from attncli.cli import app

# Llama-3-8B attention layer (config.json on the Hugging Face hub: hidden_size 4096,
# num_attention_heads 32, num_key_value_heads 8, head_dim 128, attention_bias false).
LLAMA = ["--dim", "4096", "--heads", "32", "--kv-heads", "8", "--head-dim", "128", "--no-bias", "--batch", "1"]
# H100 SXM datasheet (nvidia.com H100 datasheet): bfloat16 dense 989.4 TFLOP/s, HBM3 3.35 TB/s.
H100_BF16, H100_BW = 989.4e12, 3.35e12


def _json(args: list[str]) -> dict[str, object]:
    result = CliRunner().invoke(app, ["flops", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    doc: dict[str, object] = json.loads(result.stdout)
    return doc


def _layer(doc: dict[str, object]) -> dict[str, object]:
    variants = doc["variants"]
    assert isinstance(variants, list)
    (v,) = [v for v in variants if v["heads"] == 32 and v["out_proj"]]
    assert isinstance(v, dict)
    return v


@pytest.mark.parametrize("impl", ["sdpa", "split"])
def test_llama3_8b_prefill_from_the_json(impl: str) -> None:
    v = _layer(_json([*LLAMA, "--seq", "8192", "--mask", "causal", "--impl", impl]))
    # q: B*L*E*H*d = 8192*4096*4096; k = v: 8192*4096*8*128; QK^T: H*L*S*d = 32*8192*8192*128
    assert v["by_stage"] == {"q_proj": 137_438_953_472, "k_proj": 34_359_738_368, "v_proj": 34_359_738_368,
                             "qk": 274_877_906_944, "av": 274_877_906_944, "out_proj": 137_438_953_472}
    eff = v["effective"]
    assert isinstance(eff, dict)
    assert eff["by_stage"]["qk"] == 137_455_730_688  # 32 * 128 * (8192 * 8193 / 2)
    assert v["params"] == 41_943_040
    assert v["cross_checks"]["agree"] is True  # type: ignore[index]


def test_llama3_8b_decode_step_from_the_json() -> None:
    doc = _json([*LLAMA, "--seq", "1", "--cache", "8191", "--mask", "causal", "--impl", "sdpa",
                 "--dtype", "bfloat16"])
    v = _layer(doc)
    assert v["by_stage"]["qk"] == 33_554_432  # type: ignore[index]  # 32 heads x 8192 keys x 128
    assert v["memory"]["kv_cache_bytes"] == 33_554_432  # type: ignore[index]  # 2 x 8192 x 8 x 128 x 2 bytes
    config = doc["config"]
    assert isinstance(config, dict)
    assert (config["kv_heads"], config["head_dim"], config["window"], config["cache"]) == (8, 128, None, 8191)


def test_roofline_time_is_the_max_of_compute_and_memory_time_per_stage() -> None:
    doc = _json([*LLAMA, "--seq", "8192", "--mask", "causal", "--impl", "sdpa", "--dtype", "bfloat16",
                 "--gpu", "h100-sxm"])
    roof = doc["roofline"]
    assert isinstance(roof, dict)
    assert (roof["peak_flops_per_s"], roof["bandwidth_bytes_per_s"]) == (H100_BF16, H100_BW)
    total = 0.0
    for stage in roof["by_stage"].values():
        assert stage["time_s"] == max(stage["effective_flops"] / H100_BF16, stage["bytes"] / H100_BW)
        total += stage["time_s"]
    assert roof["stages_time_s"] == pytest.approx(total, rel=1e-12)
    assert roof["time_s"] == max(roof["effective_flops"] / H100_BF16, roof["bytes"] / H100_BW)  # issue 12's "done when"
    # The fused kernel does the effective FLOPs: 2 x (projections + effective QK^T and x V).
    eff = _layer(doc)["effective"]
    assert roof["effective_flops"] == eff["flops"]  # type: ignore[index]
    assert roof["bound"] == "compute" and "upper bound" in roof["note"]


def test_decode_is_memory_bound_and_prefill_compute_bound() -> None:
    decode = _json([*LLAMA, "--seq", "1", "--cache", "8191", "--impl", "sdpa", "--dtype", "bfloat16",
                    "--gpu", "h100-sxm"])["roofline"]
    prefill = _json([*LLAMA, "--seq", "8192", "--impl", "sdpa", "--dtype", "bfloat16", "--gpu", "h100-sxm"])["roofline"]
    assert decode["bound"] == "memory" and prefill["bound"] == "compute"  # type: ignore[index]


@pytest.mark.parametrize(("args", "flag"), [
    (["--heads", "8", "--kv-heads", "3"], "--kv-heads"),
    (["--head-dim", "0"], "--head-dim"),
    (["--window", "0"], "--window"),
    (["--cache", "-1"], "--cache"),
    (["--window", "4", "--mask", "padding"], "--window"),
    (["--cache", "4", "--kv-seq", "8"], "--cache"),
    (["--impl", "torch", "--kv-heads", "2"], "--kv-heads"),
    (["--impl", "torch", "--window", "4"], "--window"),
    (["--impl", "torch", "--cache", "4"], "--cache"),
    (["--gpu", "h900"], "--gpu"),
])
def test_bad_modern_input_is_one_line_naming_the_flag(args: list[str], flag: str) -> None:
    result = CliRunner().invoke(app, ["flops", "--seq", "16", "--batch", "1", *args])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"attncli: error: {flag}"), result.stderr
    assert result.stdout == ""
