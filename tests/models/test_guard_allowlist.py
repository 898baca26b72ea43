"""The allowlist guard on real configs: flagships whose layer attncli does not model are refused naming a
field they carry; configs transformers itself writes that the old guard over-refused are answered as
transformers reads them.

Refused (tests/data/configs, copied from the published files): Gemma 4 31B's text_config carries
``attention_k_eq_v``, ``global_head_dim`` and ``num_global_key_value_heads`` (its global layers share K and
V, with their own head size and KV heads); MiMo-V2-Flash's ``hybrid_layer_pattern`` and ``swa_*`` give its
sliding layers their own geometry. Answered, with transformers 5.25's configuration files as the expected values
(``.venv/lib/python3.11/site-packages/transformers/models/<family>/``):

- DeepSeek-V3.2: ``DeepseekV32Config.__post_init__`` writes ``layer_types = ["indexed_attention"] *
  num_hidden_layers``; modeling_deepseek_v32.py gives each the causal mask: every layer is MLA with the indexer.
- Qwen2-MoE: ``self.sliding_window = self.sliding_window if self.use_sliding_window else 0``: 0 is no window.
- AFMoE: ``layer_types``: sliding if ``bool((i + 1) % global_attn_every_n_layers)`` (default 4), sliding_window
  1024; AfmoeAttention adds ``gate_proj = nn.Linear(hidden_size, num_attention_heads * head_dim, bias=False)``
  and a sigmoid gate, with q_norm and k_norm over head_dim: 5 E*H*d + 2d = 20,971,776 params at E 2048, H 16, d 128.
- DBRX (databricks/dbrx-base config.json): ``attribute_map`` hidden_size -> d_model, num_attention_heads ->
  n_heads, num_hidden_layers -> n_layers; DbrxAttention: ``num_key_value_heads = attn_config.kv_n_heads``,
  ``head_dim = hidden_size // num_heads``, ``Wqkv = nn.Linear(E, E + 2 * G * d, bias=False)``, ``out_proj``
  E x E without bias: 6144 * 8192 + 6144 * 6144 = 88,080,384 params.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parents[1] / "data" / "configs"

DBRX = {"architectures": ["DbrxForCausalLM"], "attn_config": {"clip_qkv": 8, "kv_n_heads": 8, "rope_theta": 500000},
        "d_model": 6144, "emb_pdrop": 0.0, "ffn_config": {"ffn_hidden_size": 10752, "moe_jitter_eps": 0.01,
                                                          "moe_loss_weight": 0.05, "moe_num_experts": 16,
                                                          "moe_top_k": 4},
        "initializer_range": 0.02, "max_seq_len": 32768, "model_type": "dbrx", "n_heads": 48, "n_layers": 40,
        "output_router_logits": False, "resid_pdrop": 0.0, "router_aux_loss_coef": 0.05, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16", "transformers_version": "4.38.2", "use_cache": True, "vocab_size": 100352}
AFMOE = {"model_type": "afmoe", "architectures": ["AfmoeForCausalLM"], "hidden_size": 2048, "num_attention_heads": 16,
         "head_dim": 128, "num_hidden_layers": 32, "global_attn_every_n_layers": 4, "sliding_window": 1024,
         "attention_bias": False, "intermediate_size": 6144, "moe_intermediate_size": 1408, "num_dense_layers": 1,
         "num_experts": 64, "num_experts_per_tok": 6, "num_shared_experts": 2, "route_scale": 1.0,
         "mup_enabled": False, "rms_norm_eps": 1e-05, "vocab_size": 200192, "max_position_embeddings": 16384}
QWEN2_MOE = {"model_type": "qwen2_moe", "architectures": ["Qwen2MoeForCausalLM"], "hidden_size": 2048,
             "num_attention_heads": 16, "num_key_value_heads": 16, "num_hidden_layers": 24, "use_sliding_window": False,
             "sliding_window": 0, "max_window_layers": 28, "qkv_bias": True, "moe_intermediate_size": 1408,
             "shared_expert_intermediate_size": 5632, "num_experts_per_tok": 4, "num_experts": 60}


def _write(tmp_path: Path, cfg: dict[str, Any], name: str = "config.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(cfg))
    return path


def _flops(cli: Any, path: Path, *extra: str) -> dict[str, Any]:
    r = cli("flops", "--config", str(path), "--seq", "16", "-f", "json", *extra)
    assert r.code == 0, r.err
    return r.json()  # type: ignore[no-any-return]


def test_deepseek_v32_indexed_attention_layer_types_are_its_sparse_mla(cli: Any, tmp_path: Path) -> None:
    cfg = json.loads((DATA / "deepseek-v3.2" / "config.json").read_text())
    plain = _flops(cli, _write(tmp_path, cfg))
    typed = _flops(cli, _write(tmp_path, {**cfg, "layer_types": ["indexed_attention"] * cfg["num_hidden_layers"]},
                               "typed.json"))
    assert typed["config"]["kind"] == "sparse_mla" and typed["config"]["index_topk"] == 2048
    assert [v["effective_fvcore_flops"] for v in typed["variants"]] == \
           [v["effective_fvcore_flops"] for v in plain["variants"]]
    assert cli("flops", "--config", str(_write(tmp_path, {**cfg, "layer_types": ["full_attention"] * 61}, "x.json")),
               "--seq", "16").code == 2  # NOTE: transformers' deepseek_v32 names every layer indexed_attention


def test_qwen2_moe_sliding_window_0_with_use_sliding_window_false_is_full(cli: Any, tmp_path: Path) -> None:
    d = _flops(cli, _write(tmp_path, QWEN2_MOE))
    assert d["config"]["window"] is None and d["config"]["bias"] is True


def test_afmoe_is_a_gated_decoder_with_its_sliding_and_full_schedule(cli: Any, tmp_path: Path) -> None:
    path = _write(tmp_path, AFMOE)
    first = _flops(cli, path)
    assert (first["config"]["kind"], first["config"]["window"], first["config"]["mask"]) == ("gated", 1024, "causal")
    assert first["variants"][0]["params"] == 5 * 2048 * 16 * 128 + 2 * 128
    fourth = _flops(cli, path, "--layer", "3")
    assert (fourth["config"]["layer_type"], fourth["config"]["window"]) == ("full_attention", None)
    r = cli("model", "--config", str(path), "--seq", "64", "-f", "json")
    assert r.code == 0, r.err
    assert r.json()["schedule"]["summary"] == "32 layers: 24 sliding (W 1024) + 8 full"


def test_dbrx_is_read_from_attn_config_and_its_own_names(cli: Any, tmp_path: Path) -> None:
    d = _flops(cli, _write(tmp_path, DBRX))
    c = d["config"]
    assert (c["dim"], c["heads"], c["kv_heads"], c["head_dim"], c["bias"], c["mask"]) == (6144, 48, 8, 128, False,
                                                                                        "causal")
    assert d["variants"][0]["params"] == 6144 * (6144 + 2 * 8 * 128) + 6144 * 6144 == 88_080_384
    r = cli("model", "--config", str(_write(tmp_path, DBRX)), "--seq", "64", "-f", "json")
    assert r.code == 0 and r.json()["schedule"]["summary"] == "40 layers: 40 full", r.err
    unknown = {**DBRX, "attn_config": {**DBRX["attn_config"], "attn_k_shared": True}}
    r = cli("flops", "--config", str(_write(tmp_path, unknown)))
    assert r.code == 2 and "attn_config.attn_k_shared (not modelled for dbrx)" in r.err


def test_minimax_m2_fields_transformers_never_reads_are_not_refused(cli: Any) -> None:
    # MiniMaxM2Config defines no qk_norm_type, use_mtp, num_mtp_modules or mtp_transformer_layers (published
    # config: hidden_size 3072, 48 heads, 8 KV heads, head_dim 128). The bias a config omits is the class's
    # default, settled with attention_bias defaults elsewhere, so it is not asserted here.
    c = _flops(cli, DATA / "minimax-m2.5")["config"]
    assert (c["dim"], c["heads"], c["kv_heads"], c["head_dim"], c["window"]) == (3072, 48, 8, 128, None)


@pytest.mark.parametrize(("family", "said"), [("beam", "gate_proj"), ("minicpm5_moe", "q_gate_proj"),
                                              ("t5gemma2_decoder", "merged")])
def test_families_whose_attention_differs_with_no_field_to_say_so_are_refused(cli: Any, tmp_path: Path, family: str,
                                                                             said: str) -> None:
    # modeling_beam.py BeamAttention: gate_proj and gate_bias; modeling_minicpm5_moe.py: q_gate_proj;
    # modeling_t5gemma2.py T5Gemma2MergedAttention: self- and cross-attention in one softmax
    cfg = {"model_type": family, "architectures": ["XForCausalLM"], "hidden_size": 256, "num_attention_heads": 4,
           "num_hidden_layers": 2}
    r = cli("flops", "--config", str(_write(tmp_path, cfg)), "--seq", "8")
    assert r.code == 2 and f"model_type {family}" in r.err and said in r.err


def test_a_config_that_does_not_say_whether_it_is_causal_needs_mask(cli: Any, tmp_path: Path) -> None:
    # no is_decoder, no ...ForCausalLM architecture, a family attncli does not know: causal and bidirectional
    # attention are different layers (the effective count), so the user says which
    path = _write(tmp_path, {"model_type": "acme_lm", "hidden_size": 256, "num_attention_heads": 4,
                             "num_hidden_layers": 2})
    r = cli("flops", "--config", str(path), "--seq", "8")
    assert r.code == 2 and "cannot tell whether its attention is causal" in r.err and "--mask" in r.err
    assert _flops(cli, path, "--mask", "none")["config"]["mask"] == "none"
    assert cli("model", "--config", str(path), "--seq", "8").code == 2


def test_a_vision_language_model_runs_its_text_config_as_a_decoder(cli: Any, tmp_path: Path) -> None:
    # Qwen2VLForConditionalGeneration generates text: its text model (Qwen2VLTextModel) is causal
    text = {"model_type": "qwen2_vl_text", "hidden_size": 256, "num_attention_heads": 4, "num_key_value_heads": 2,
            "num_hidden_layers": 2}
    path = _write(tmp_path, {"model_type": "qwen2_vl", "architectures": ["Qwen2VLForConditionalGeneration"],
                             "text_config": text, "vision_config": {"depth": 2}})
    assert _flops(cli, path)["config"]["mask"] == "causal"


@pytest.mark.parametrize(("extra", "mask"), [({}, "none"), ({"is_decoder": False}, "none"),
                                             ({"is_decoder": True}, "causal")])
def test_bert_is_causal_only_with_is_decoder_whatever_its_architecture(cli: Any, tmp_path: Path,
                                                                        extra: dict[str, Any], mask: str) -> None:
    # modeling_bert.py BertLayer: BertAttention(config, is_causal=config.is_decoder), also in BertLMHeadModel
    cfg = {"model_type": "bert", "architectures": ["BertLMHeadModel"], "hidden_size": 256, "num_attention_heads": 4,
           "num_hidden_layers": 2, **extra}
    assert _flops(cli, _write(tmp_path, cfg))["config"]["mask"] == mask
