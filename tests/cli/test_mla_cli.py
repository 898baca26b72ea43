"""MLA through the CLI: `flops` (JSON, table, Markdown, roofline, refusals), `sweep`, and what refuses it.

Expected counts are DeepSeek-V3's (GUIDE section 6, measured against transformers'
``DeepseekV3Attention`` at the published sizes of deepseek-ai/DeepSeek-V3's config.json).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

V3 = ("--dim", "7168", "--heads", "128", "--kv-lora-rank", "512", "--q-lora-rank", "1536",
      "--qk-nope-head-dim", "128", "--qk-rope-head-dim", "64", "--v-head-dim", "128", "--no-bias",
      "--batch", "1", "--mask", "causal")
DECODE = (*V3, "--seq", "1", "--cache", "4095")


def test_prefill_json(cli: Any) -> None:
    r = cli("flops", *V3, "--seq", "4096", "--format", "json")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["config"]["kind"] == "mla" and doc["config"]["form"] == "naive" and doc["config"]["mla_form"] == "auto"
    first, other = doc["variants"]
    assert (first["form"], other["form"]) == ("naive", "absorbed")
    assert first["fvcore_flops"] == 1_453_577_994_240 and first["effective"]["fvcore_flops"] == 1_110_064_496_640
    assert first["params"] == 187_107_328
    assert list(first["by_stage"]) == ["q_a_proj", "q_b_proj", "kv_a_proj", "kv_b_proj", "qk", "av", "out_proj"]
    assert first["cross_checks"]["closed_form"]["agree"] and first["cross_checks"]["flop_counter"]["agree"]
    assert doc["cross_checks"]["agree"] is True


def test_decode_json_absorbed_and_naive(cli: Any) -> None:
    r = cli("flops", *DECODE, "--format", "json", "--dtype", "bfloat16")
    assert r.code == 0, r.err
    doc = r.json()
    assert [v["fvcore_flops"] for v in doc["variants"]] == [757_530_624, 69_057_576_960]
    assert doc["variants"][0]["memory"]["kv_cache_bytes"] == 4096 * 1152  # R + DR at bfloat16, once
    forced = cli("flops", *DECODE, "--mla-form", "naive", "--format", "json").json()
    assert forced["config"]["form"] == "naive" and forced["variants"][0]["fvcore_flops"] == 69_057_576_960


def test_decode_roofline_reads_the_latent_cache(cli: Any) -> None:
    r = cli("flops", *DECODE, "--gpu", "h100-sxm", "--dtype", "bfloat16", "--format", "json")
    assert r.code == 0, r.err
    attn = r.json()["roofline"]["by_stage"]["attention"]
    # fused absorbed attention: read Q (H(R+DR)) and the latent cache (S (R+DR)) once, write H*R
    assert attn["bytes"] == 2 * (128 * 576 + 4096 * 576 + 128 * 512)
    assert attn["effective_flops"] == 2 * (128 * 4096 * 576 + 128 * 4096 * 512)


def test_table_names_the_form_and_fits_80_columns(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    r = cli("flops", *DECODE, "--verbose")
    assert r.code == 0, r.err
    for line in r.out.splitlines():
        assert len(line) <= 80 and line == line.rstrip(), line
    flat = " ".join(r.out.split())
    assert "absorbed form *" in r.out and "q absorb (W_UK)" in r.out and "B*L*H*DN*R" in r.out
    assert "naive form would cost 69.1 G MACs" in flat
    assert "KV cache = B*S*(R+DR)" in flat


def test_markdown_renders_on_github(cli: Any) -> None:
    cmarkgfm = pytest.importorskip("cmarkgfm")
    from cmarkgfm.cmark import Options

    r = cli("flops", *V3, "--seq", "64", "--format", "markdown")
    assert r.code == 0, r.err
    html = str(cmarkgfm.github_flavored_markdown_to_html(r.out, options=Options.CMARK_OPT_UNSAFE))
    assert "<em>" not in html
    assert len(re.findall(r"<table>", html)) >= 3
    assert "B*S*R*H*(DN+DV)" in html


@pytest.mark.parametrize(("args", "flag"), [
    (("--kv-heads", "8"), "--kv-heads"),
    (("--impl", "sdpa"), "--impl"),
    (("--head-dim", "64"), "--head-dim"),
    (("--window", "128"), "--window"),
])
def test_flags_mla_does_not_take_exit_2_naming_them(cli: Any, args: tuple[str, ...], flag: str) -> None:
    r = cli("flops", *V3, "--seq", "8", *args)
    assert r.code == 2 and r.out == ""
    assert r.err.count("\n") == 1 and r.err.startswith(f"attncli: error: {flag}:")


def test_mla_flag_without_kv_lora_rank_exits_2(cli: Any) -> None:
    r = cli("flops", "--mla-form", "absorbed")
    assert r.code == 2 and "--mla-form" in r.err and "--kv-lora-rank" in r.err


@pytest.mark.parametrize("command", ["permute-test"])
def test_commands_that_cannot_take_mla_yet_refuse_it(cli: Any, command: str) -> None:
    r = cli(command, "--dim", "64", "--heads", "4", "--kv-lora-rank", "16")
    assert r.code == 2 and r.out == ""
    assert r.err.startswith("attncli: error: --kv-lora-rank:") and "does not take" in r.err


def test_a_standard_baseline_refuses_an_mla_layer(cli: Any, tmp_path: Any) -> None:
    base = tmp_path / "base.json"
    r = cli("flops", "--dim", "64", "--heads", "4", "--seq", "8", "--batch", "1", "--format", "json")
    base.write_text(r.out)
    r = cli("flops", "--dim", "64", "--heads", "4", "--seq", "8", "--batch", "1", "--kv-lora-rank", "16",
            "--qk-nope-head-dim", "8", "--qk-rope-head-dim", "8", "--v-head-dim", "16", "--baseline", str(base))
    assert r.code == 2 and "kind" in r.err and "--baseline" in r.err


# ---------------------------------------------------------------------------- real models
CONFIGS = "tests/data/configs"


@pytest.mark.parametrize(("source", "params", "prefill"), [
    (("--config", f"{CONFIGS}/deepseek-v3"), 187_107_328, 1_453_577_994_240),
    (("--preset", "deepseek-v3"), 187_107_328, 1_453_577_994_240),
    (("--config", f"{CONFIGS}/kimi-k2"), 101_124_096, 757_793_292_288),
    (("--preset", "kimi-k2"), 101_124_096, 757_793_292_288),
])
def test_config_and_preset_count_the_published_layer(cli: Any, source: tuple[str, ...], params: int,
                                                     prefill: int) -> None:
    r = cli("flops", *source, "--seq", "4096", "--batch", "1", "--format", "json")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["config"]["kind"] == "mla" and doc["config"]["mask"] == "causal"
    assert doc["variants"][0]["params"] == params and doc["variants"][0]["fvcore_flops"] == prefill


def test_deepseek_v2_lite_has_a_direct_query_projection(cli: Any) -> None:
    """DeepSeek-V2-Lite (deepseek-ai/DeepSeek-V2-Lite config.json): q_lora_rank null, E 2048, H 16."""
    for source in (("--config", f"{CONFIGS}/deepseek-v2-lite"), ("--preset", "deepseek-v2-lite")):
        doc = cli("flops", *source, "--seq", "1", "--cache", "4095", "--batch", "1", "--format", "json").json()
        v = doc["variants"][0]
        assert v["form"] == "absorbed" and next(iter(v["by_stage"])) == "q_proj"
        # q_proj E*H*(DN+DR), kv_a E*(R+DR), q_absorb H*DN*R, QK^T H*S*(R+DR), AV H*S*R, out_absorb H*R*DV, W_O H*DV*E
        assert v["fvcore_flops"] == (2048 * 16 * 192 + 2048 * 576 + 16 * 128 * 512 + 16 * 4096 * 576
                                     + 16 * 4096 * 512 + 16 * 512 * 128 + 16 * 128 * 2048)
        # q_proj 2048*3072, kv_a 2048*576, kv_a_layernorm 512, kv_b 512*4096, o_proj 2048*2048
        assert v["params"] == 2048 * 3072 + 2048 * 576 + 512 + 512 * 4096 + 2048 * 2048


def test_what_a_config_holds_but_attncli_does_not_count_is_named(cli: Any) -> None:
    r = cli("flops", "--config", f"{CONFIGS}/gpt-oss-20b", "--seq", "64", "--batch", "1", "--format", "json")
    assert r.code == 0, r.err
    notes = r.json()["notes"]
    assert any("sinks" in n for n in notes) and any("layer 0" in n for n in notes)


# ---------------------------------------------------------------------------- sweep
def test_sweep_heads_grows_every_stage_but_the_shared_latent(cli: Any) -> None:
    """Closed form: q_a (E*RQ) and kv_a (E*(R+DR)) do not depend on H; every other stage is H x."""
    r = cli("sweep", "--preset", "deepseek-v3", "--heads", "32,64,128", "--seq", "1", "--cache", "4095",
            "--format", "json")
    assert r.code == 0, r.err
    exps = r.json()["exponents"]
    assert exps["q_a_proj"] == exps["kv_a_proj"] == 0.0
    assert all(exps[st] == 1.0 for st in ("q_b_proj", "q_absorb", "qk", "av", "out_absorb", "out_proj"))


def test_sweep_dim_grows_only_the_projections_from_and_to_e(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    r = cli("sweep", "--preset", "deepseek-v3", "--dim", "1024,2048,4096", "--seq", "64")
    assert r.code == 0, r.err
    assert all(len(line) <= 80 for line in r.out.splitlines())
    doc = cli("sweep", "--preset", "deepseek-v3", "--dim", "1024,2048,4096", "--seq", "64", "--format", "json").json()
    exps = doc["exponents"]
    assert exps["q_a_proj"] == exps["kv_a_proj"] == exps["out_proj"] == 1.0
    assert exps["q_b_proj"] == exps["kv_b_proj"] == exps["qk"] == exps["av"] == 0.0


def test_sweep_across_both_auto_forms_is_refused(cli: Any) -> None:
    r = cli("sweep", "--preset", "deepseek-v3", "--seq", "1,2", "--cache", "100")
    assert r.code == 2 and r.err.startswith("attncli: error: --mla-form:")


def test_report_counts_and_shapes_mla_and_says_why_no_permutation_test(cli: Any) -> None:
    r = cli("report", "--preset", "kimi-k2", "--seq", "1", "--cache", "4095", "--batch", "1", "--format", "json")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["config"]["kind"] == "mla" and doc["permute"] is None
    assert "RoPE" in doc["permute_skipped"]
    assert doc["shapes"]["params"]["total"] == doc["flops"]["variants"][0]["params"] == 101_124_096


# ---------------------------------------------------------------------------- bench
SMALL_MLA = ("--dim", "64", "--heads", "4", "--kv-lora-rank", "16", "--q-lora-rank", "24", "--qk-nope-head-dim", "8",
             "--qk-rope-head-dim", "4", "--v-head-dim", "6", "--batch", "1", "--mask", "causal",
             "--min-run-time", "0.01")


@pytest.mark.parametrize("backward", [False, True])
def test_bench_times_both_forms_each_with_its_own_count(cli: Any, backward: bool) -> None:
    r = cli("bench", *SMALL_MLA, "--seq", "1", "--cache", "31", "--format", "json",
            *(("--backward",) if backward else ()))
    assert r.code == 0, r.err
    rows = {row["impl"]: row for row in r.json()["results"]}
    assert set(rows) == {"mla absorbed", "mla naive"}
    # closed forms at B=1, L=1, S=32 (GUIDE section 6's stages): absorbed and naive, in MACs
    absorbed = 64 * 24 + 24 * 4 * 12 + 64 * 20 + 4 * 8 * 16 + 4 * 32 * 20 + 4 * 32 * 16 + 4 * 16 * 6 + 4 * 6 * 64
    naive = 64 * 24 + 24 * 4 * 12 + 64 * 20 + 32 * 16 * 4 * 14 + 4 * 32 * 12 + 4 * 32 * 6 + 4 * 6 * 64
    factor = 3 if backward else 1
    assert rows["mla absorbed"]["flops"] == 2 * absorbed * factor
    assert rows["mla naive"]["flops"] == 2 * naive * factor


def test_bench_only_times_the_configured_form(cli: Any) -> None:
    r = cli("bench", *SMALL_MLA, "--seq", "8", "--only", "--format", "json")
    assert r.code == 0, r.err
    assert [row["impl"] for row in r.json()["results"]] == ["mla naive"]
