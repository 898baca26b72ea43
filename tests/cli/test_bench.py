"""``attncli bench``: the JSON contract, skips, refusals and the --max-time budget (never a speed)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch

from attncli.spec import IMPLS

FAST = ("--dim", "32", "--heads", "2", "--batch", "1", "--seq", "8", "--min-run-time", "0.01")


def strict(text: str) -> Any:
    def no_constant(name: str) -> Any:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=no_constant)


def test_json_contract_and_every_impl(cli: Any) -> None:
    r = cli("bench", *FAST, "--format", "json")
    assert r.code == 0, r.err
    doc = strict(r.out)
    assert doc["schema"] == "attncli.bench/2"
    assert doc["config"]["device"] == "cpu" and doc["config"]["dtype"] == "float32"
    assert doc["config"]["backward"] is False and doc["config"]["dim"] == 32
    env = doc["environment"]
    assert env["torch"] == torch.__version__ and env["num_threads"] == torch.get_num_threads() and env["device_name"]
    assert [row["impl"] for row in doc["results"]] == list(IMPLS) and doc["skipped"] == []
    # Closed form, MACs: 4 x B*L*E*E (q, k, v, W_O) + 2 x B*L*S*E (QK^T, x V) = 4*8*32*32 + 2*8*8*32.
    flops = 2 * (4 * 8 * 32 * 32 + 2 * 8 * 8 * 32)
    for row in doc["results"]:
        assert set(row) >= {"impl", "backend", "median_s", "iqr_s", "flops", "effective_flops", "achieved_flops_per_s",
                            "roofline_fraction", "peak_memory_bytes", "predicted_memory_bytes", "runs"}
        assert row["flops"] == flops and row["effective_flops"] == flops and row["backend"] is None
        assert row["achieved_flops_per_s"] == row["effective_flops"] / row["median_s"]
        assert row["roofline_fraction"] is None and row["peak_memory_bytes"] is None
    assert doc["roofline"] is None


def test_cross_attention_skips_fused_with_the_reason(cli: Any) -> None:
    doc = strict(cli("bench", *FAST, "--kv-seq", "4", "-f", "json").out)
    assert "fused" not in [row["impl"] for row in doc["results"]]
    assert [s["impl"] for s in doc["skipped"]] == ["fused"] and "self-attention" in doc["skipped"][0]["reason"]


def test_gpu_roofline_fraction(cli: Any) -> None:
    doc = strict(cli("bench", *FAST, "--only", "--gpu", "h100-sxm", "--dtype", "bfloat16", "-f", "json").out)
    assert doc["roofline"]["device"] == "h100-sxm" and doc["roofline"]["peak_flops_per_s"] == pytest.approx(989.4e12)
    (row,) = doc["results"]
    assert row["roofline_fraction"] == doc["roofline"]["time_s"] / row["median_s"]


def test_backward_counts_three_times_forward(cli: Any) -> None:
    doc = strict(cli("bench", *FAST, "--only", "--backward", "-f", "json").out)
    assert doc["config"]["backward"] is True
    assert doc["results"][0]["flops"] == 3 * 2 * (4 * 8 * 32 * 32 + 2 * 8 * 8 * 32)


def test_threads_are_recorded_and_restored(cli: Any) -> None:
    before = torch.get_num_threads()
    doc = strict(cli("bench", *FAST, "--only", "--threads", "1", "-f", "json").out)
    assert doc["environment"]["num_threads"] == 1 and torch.get_num_threads() == before


def test_memory_refusal_exits_2_before_running(cli: Any) -> None:
    # The (B, H, L, L) scores alone: 64 * 8 * 10^12 * 4 bytes, more than any machine has.
    r = cli("bench", "--seq", "1000000", "--batch", "64", "--min-run-time", "0.01")
    assert r.code == 2 and r.out == ""
    assert r.err.startswith("attncli: error: --seq: ") and r.err.count("\n") == 1 and "memory model" in r.err


def test_max_time_budget(cli: Any) -> None:
    slow = cli("bench", *FAST, "--impl", "split", "--max-time", "1e-12", "-f", "json")
    assert slow.code == 1 and "split" in slow.err and "--max-time" in slow.err
    assert strict(slow.out)["checks"][0]["passed"] is False  # the report is still written
    ok = cli("bench", *FAST, "--only", "--max-time", "1e6")
    assert ok.code == 0, ok.err


def test_table_and_markdown_say_measured(cli: Any) -> None:
    table = cli("bench", *FAST, "--only")
    assert table.code == 0 and "measured on" in table.out and "torch*" in table.out
    md = cli("bench", *FAST, "--kv-seq", "4", "-f", "markdown")
    assert md.code == 0 and "measured on" in md.out and "| achieved FLOP/s |" in md.out and "skipped fused" in md.out


@pytest.mark.parametrize(("args", "flag"), [
    (["--gpu", "nope"], "--gpu"),
    (["--min-run-time", "0"], "--min-run-time"),
    (["--max-time", "-1"], "--max-time"),
    (["--dtype", "float64"], "--dtype"),
    (["--device", "tpu"], "--device"),
    (["--threads", "0"], "--threads"),
    (["--threads", "1000000000"], "--threads"),
])
def test_bad_input_exits_2(cli: Any, args: list[str], flag: str) -> None:
    r = cli("bench", *FAST, *args)
    assert r.code == 2 and flag in r.err and r.out == "" and "Traceback" not in r.err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_cuda_without_a_gpu_exits_2(cli: Any) -> None:
    r = cli("bench", *FAST, "--device", "cuda")
    assert r.code == 2 and r.out == "" and r.err.startswith("attncli: error: --device: ") and r.err.count("\n") == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_rows(cli: Any) -> None:
    doc = strict(cli("bench", *FAST, "--device", "cuda", "--dtype", "float16", "-f", "json").out)
    assert all(row["peak_memory_bytes"] is not None for row in doc["results"])


def test_fused_runs_in_half_precision(cli: Any) -> None:
    """The cast to bfloat16 kept query, key and value one tensor (fused checks `key is query`): it was a
    ValueError traceback from the warm-up call."""
    r = cli("bench", "--dtype", "bf16", "--only", "--impl", "fused", "--dim", "32", "--heads", "2", "--seq", "8",
            "--batch", "1", "--min-run-time", "0.01", "--format", "json")
    assert r.code == 0, r.err
    (row,) = r.json()["results"]
    assert row["impl"] == "fused" and r.json()["config"]["dtype"] == "bfloat16"
