"""``attncli model`` through the CLI: one screen, JSON keys, Markdown, budgets, refusals."""

from __future__ import annotations

import re
from typing import Any

import pytest

DATA = "tests/data/configs"


def test_table_fits_one_80x24_screen(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    r = cli("model", "--preset", "gpt-oss-20b", "--seq", "131072", "--gpu", "h100-sxm")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert len(lines) <= 24 and all(len(line) <= 80 and line == line.rstrip() for line in lines)
    assert lines[1].startswith("24 layers: 12 sliding (W 128) + 12 full")
    assert "upper bound on speed" in " ".join(r.out.split())


def test_json_has_the_stable_keys(cli: Any) -> None:
    r = cli("model", "--config", f"{DATA}/gpt-oss-20b", "--seq", "1", "--cache", "131071", "--format", "json",
            "--tp", "2", "--gpu", "h100-sxm", "--weights-memory", "13e9")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["schema"] == "attncli.model/1"
    assert [layer["layer_type"] for layer in doc["layers"][:2]] == ["sliding_attention", "full_attention"]
    assert {"index", "layer_type", "kind", "window", "chunk"} <= set(doc["layers"][0])
    g = doc["groups"][0]
    assert {"layer_type", "kind", "window", "chunk", "layers", "per_layer"} <= set(g)
    assert {"fvcore_flops", "effective_fvcore_flops", "by_stage", "effective_by_stage", "params",
            "kv_cache_bytes"} <= set(g["per_layer"])
    assert {"fvcore_flops", "effective_fvcore_flops", "params", "kv_cache_bytes",
            "kv_cache_paged_bytes"} <= set(doc["totals"])
    assert doc["totals"]["kv_cache_bytes"] == 3_224_346_624  # GUIDE section 6
    assert doc["per_device"]["tp"] == 2 and doc["roofline"]["fits_tokens"] > 0
    assert doc["config"]["dtype"] == "bfloat16" and doc["config"]["dtype_source"].startswith("default")


def test_markdown_renders_on_github(cli: Any) -> None:
    cmarkgfm = pytest.importorskip("cmarkgfm")
    r = cli("model", "--preset", "llama-4-scout", "--seq", "16384", "--verbose", "--format", "markdown")
    assert r.code == 0, r.err
    html = str(cmarkgfm.github_flavored_markdown_to_html(r.out))
    assert "<em>" not in html and len(re.findall("<table>", html)) == 3  # groups + two stage tables


def test_budgets_exit_1_naming_what_grew(cli: Any) -> None:
    r = cli("model", "--preset", "llama-3.1-8b", "--seq", "1", "--cache", "131071", "--max-kv-bytes", "16e9")
    assert r.code == 1 and "CHECK FAILED: max-kv-bytes: 17,179,869,184 exceeds 16,000,000,000" in r.err
    r = cli("model", "--preset", "llama-3.1-8b", "--seq", "1", "--cache", "131071", "--max-kv-bytes", "17.2e9")
    assert r.code == 0


def test_past_the_context_limit_warns_once(cli: Any) -> None:
    r = cli("model", "--preset", "mistral-7b", "--seq", "1", "--cache", "40000")
    assert r.code == 0 and r.err.count("warning:") == 1 and "max_position_embeddings" in r.err


@pytest.mark.parametrize(("args", "flag"), [
    ((), "--config"),
    (("--preset", "llama-3.1-8b", "--config", DATA + "/gpt-oss-20b"), "--config"),
    (("--preset", "nope"), "--preset"),
    (("--preset", "llama-3.1-70b", "--tp", "3"), "--tp"),
    (("--preset", "llama-3.1-8b", "--mla-form", "absorbed"), "--mla-form"),
    (("--preset", "llama-3.1-8b", "--gpu", "nope"), "--gpu"),
    (("--preset", "llama-3.1-8b", "--weights-memory", "lots"), "--weights-memory"),
])
def test_bad_input_exits_2_naming_the_flag(cli: Any, args: tuple[str, ...], flag: str) -> None:
    r = cli("model", *args)
    assert r.code == 2 and r.out == "" and r.err.count("\n") == 1
    assert r.err.startswith(f"attncli: error: {flag}")


def test_a_cache_range_gives_the_cache_at_every_context(cli: Any, tmp_path: Any) -> None:
    png = tmp_path / "kv.png"
    r = cli("model", "--preset", "gpt-oss-20b", "--seq", "1", "--cache", "1023,131071", "--gpu", "h100-sxm",
            "--weights-memory", "13e9", "--plot", str(png), "--format", "json")
    assert r.code == 0, r.err
    g = r.json()["growth"]
    assert g["setting"] == "cache" and [p["value"] for p in g["points"]] == [1023, 131071]
    per_token = 2 * 8 * 64 * 2  # K and V, 8 K/V heads of 64, bfloat16 (openai/gpt-oss-20b config.json)
    assert g["points"][0]["kv_cache_bytes"] == 12 * 1024 * per_token + 12 * 127 * per_token
    assert g["points"][1]["kv_cache_bytes"] == 3_224_346_624
    assert all(p["time_s"] > 0 and p["fits"] is True for p in g["points"])
    assert png.stat().st_size > 10_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_k_and_m_ranges_and_the_plot_needs_a_range(cli: Any, tmp_path: Any) -> None:
    r = cli("model", "--preset", "llama-3.1-8b", "--seq", "1", "--cache", "1k:4k:x2", "--format", "json")
    assert r.code == 0, r.err
    assert [p["value"] for p in r.json()["growth"]["points"]] == [1024, 2048, 4096]
    r = cli("model", "--preset", "llama-3.1-8b", "--plot", str(tmp_path / "x.png"))
    assert r.code == 2 and r.err.startswith("attncli: error: --plot")
    r = cli("model", "--preset", "llama-3.1-8b", "--seq", "1,2", "--cache", "3,4")
    assert r.code == 2 and r.err.startswith("attncli: error: --cache")


def test_the_weights_come_from_the_safetensors_index_beside_the_config(cli: Any, tmp_path: Any) -> None:
    import json
    import shutil

    shutil.copy(f"{DATA}/llama-3.1-8b/config.json", tmp_path / "config.json")
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {"total_size": 16_060_522_496}}))
    r = cli("model", "--config", str(tmp_path), "--gpu", "h100-sxm", "--format", "json")
    assert r.code == 0, r.err
    roof = r.json()["roofline"]
    assert roof["weights_bytes"] == 16_060_522_496 and "safetensors" in roof["weights_source"]
    # 80 GB H100 (gpus.json): room / (32 layers x 2 x 8 x 128 x 2 B per token)
    room = roof["memory_bytes"] - 16_060_522_496
    assert roof["fits_tokens"] == room // (32 * 2 * 8 * 128 * 2)


def test_weights_memory_reads_bytes_as_kv_cache_memory_does(cli: Any) -> None:
    # NOTE: G and GiB are 2**30 for both byte flags (vLLM's human_readable_int reads an upper-case G so), GB is 1e9
    def fits(weights: str) -> int:
        r = cli("model", "--preset", "llama-3.1-8b", "--seq", "1", "--cache", "4095", "--gpu", "h100-sxm",
                "--weights-memory", weights, "--format", "json")
        assert r.code == 0, r.err
        return int(r.json()["roofline"]["fits_tokens"])

    binary = fits(str(15 * 2**30))
    assert fits("15G") == fits("15GiB") == binary
    assert fits("15GB") == fits("15e9") != binary
