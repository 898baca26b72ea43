"""Per-layer geometry and KV sharing against transformers' own modules (Gemma 4, MiMo-V2-Flash, Gemma 3n).

- At the published sizes, on the meta device: every layer's attention module (Gemma4TextAttention,
  MiMoV2FlashAttention, Gemma3nTextAttention, each built with its layer index as the model builds it) holds
  the parameters ``attncli model`` counts, and FlopCounterMode over their forward passes of an 8,192-token
  prefill (the shared layers reading the ``shared_kv_states`` their source layers stored, as the model runs
  them) counts 2 x the dense MACs.
- Shrunken on CPU (a second size of each family, written here, with Gemma 4's own KV sharing): the whole text
  model runs a prefill and one decode step with transformers' DynamicCache, and the bytes of the cache's
  tensors afterwards are ``attncli model --seq 1 --cache P``'s KV bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

DATA = Path("tests/data/configs")
L = 8192

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


def _classes(family: str) -> tuple[Any, Any]:
    if family == "gemma4_text":
        from transformers.models.gemma4.configuration_gemma4 import Gemma4TextConfig
        from transformers.models.gemma4.modeling_gemma4 import Gemma4TextAttention
        return Gemma4TextConfig, Gemma4TextAttention
    if family == "gemma3n_text":
        from transformers.models.gemma3n.configuration_gemma3n import Gemma3nTextConfig
        from transformers.models.gemma3n.modeling_gemma3n import Gemma3nTextAttention
        return Gemma3nTextConfig, Gemma3nTextAttention
    from transformers.models.mimo_v2_flash.configuration_mimo_v2_flash import MiMoV2FlashConfig
    from transformers.models.mimo_v2_flash.modeling_mimo_v2_flash import MiMoV2FlashAttention
    return MiMoV2FlashConfig, MiMoV2FlashAttention


def _text(top: dict[str, Any]) -> dict[str, Any]:
    return top.get("text_config", top)  # type: ignore[no-any-return]


def transformers_counts(cfg: dict[str, Any], seq: int) -> tuple[int, int]:
    """(attention parameters, FlopCounterMode's flops of every layer's attention over a ``seq``-token prefill)."""
    from torch.utils.flop_counter import FlopCounterMode
    from transformers.cache_utils import KVSharingDict

    config_class, attention = _classes(cfg["model_type"])
    config = config_class(**cfg)
    config._attn_implementation = "sdpa"
    with torch.device("meta"):
        layers = [attention(config, i) for i in range(config.num_hidden_layers)]
    params = sum(p.numel() for m in layers for p in m.parameters())
    x = torch.empty(1, seq, config.hidden_size, device="meta")
    shared = KVSharingDict()
    with FlopCounterMode(display=False) as counter:
        for m in layers:
            cos = torch.empty(1, seq, m.head_dim, device="meta")
            extra = {} if cfg["model_type"] == "mimo_v2_flash" else {"shared_kv_states": shared}
            m(x, (cos, cos), None, **extra)
    return params, int(counter.get_total_flops())


def attncli_totals(cli: Any, path: Path, *args: str) -> dict[str, Any]:
    r = cli("model", "--config", str(path), "-f", "json", *args)
    assert r.code == 0, r.err
    return r.json()["totals"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("folder", ["gemma-4-31b-it", "mimo-v2-flash", "gemma-3n-e4b"])
def test_published_sizes_equal_transformers_modules_on_meta(cli: Any, folder: str) -> None:
    cfg = _text(json.loads((DATA / folder / "config.json").read_text()))
    params, flops = transformers_counts(cfg, L)
    tot = attncli_totals(cli, DATA / folder, "--seq", str(L))
    assert (tot["params"], 2 * tot["fvcore_flops"]) == (params, flops)


# ---------------------------------------------------------------------------- a second size, on CPU
SMALL: dict[str, dict[str, Any]] = {
    # Gemma 4 with its own KV sharing (the E2B/E4B layout): 12 layers (5 sliding, 1 full, twice), the last 3
    # reading layer 8 (sliding) or 5 (full); full layers K = V with 1 K/V head of 32
    "gemma4_text": {"model_type": "gemma4_text", "architectures": ["Gemma4ForCausalLM"], "hidden_size": 64,
                    "intermediate_size": 64, "num_hidden_layers": 12, "num_attention_heads": 4,
                    "num_key_value_heads": 2, "head_dim": 16, "global_head_dim": 32, "num_global_key_value_heads": 1,
                    "attention_k_eq_v": True, "num_kv_shared_layers": 3, "sliding_window": 8, "vocab_size": 64,
                    "hidden_size_per_layer_input": 0, "vocab_size_per_layer_input": 64, "dtype": "float32"},
    # MiMo with k 24, v 16, 1 K/V head on full layers (2 on sliding ones), window 6 + 1
    "mimo_v2_flash": {"model_type": "mimo_v2_flash", "architectures": ["MiMoV2FlashForCausalLM"], "hidden_size": 64,
                      "intermediate_size": 64, "moe_intermediate_size": 32, "n_routed_experts": 4,
                      "num_experts_per_tok": 2, "num_hidden_layers": 7, "num_attention_heads": 4,
                      "num_key_value_heads": 1, "head_dim": 24, "v_head_dim": 16, "sliding_window_size": 6,
                      "vocab_size": 64, "dtype": "float32"},
    # Gemma 3n with 10 layers, the last 4 shared
    "gemma3n_text": {"model_type": "gemma3n_text", "architectures": ["Gemma3nForCausalLM"], "hidden_size": 64,
                     "intermediate_size": 64, "num_hidden_layers": 10, "num_attention_heads": 4,
                     "num_key_value_heads": 2, "head_dim": 16, "num_kv_shared_layers": 4, "sliding_window": 8,
                     "vocab_size": 64, "vocab_size_per_layer_input": 64, "hidden_size_per_layer_input": 8,
                     "laurel_rank": 4, "dtype": "float32"},
}


def _cache_bytes_after_prefill_and_decode(cfg: dict[str, Any], prompt: int) -> int:
    from transformers import AutoModelForCausalLM
    from transformers.cache_utils import DynamicCache

    config_class, _ = _classes(cfg["model_type"])
    config = config_class(**{k: v for k, v in cfg.items() if k not in ("architectures", "dtype")})
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    cache = DynamicCache(config=config)
    ids = torch.randint(0, cfg["vocab_size"], (1, prompt))
    with torch.no_grad():
        model(input_ids=ids, cache=cache, use_cache=True)
        model(input_ids=ids[:, -1:], cache=cache, use_cache=True)
    total = 0
    for layer in cache.layers:
        for t in (getattr(layer, "keys", None), getattr(layer, "values", None)):
            if isinstance(t, torch.Tensor) and t.numel():
                total += t.numel() * t.element_size()
    return total


@pytest.mark.parametrize("family", list(SMALL))
def test_second_size_cache_params_and_flops_equal_transformers(cli: Any, tmp_path: Path, family: str) -> None:
    cfg = SMALL[family]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    prompt = 20
    kv = attncli_totals(cli, tmp_path, "--seq", "1", "--cache", str(prompt))["kv_cache_bytes"]
    assert kv == _cache_bytes_after_prefill_and_decode(cfg, prompt)
    params, flops = transformers_counts({k: v for k, v in cfg.items() if k != "architectures"}, 64)
    tot = attncli_totals(cli, tmp_path, "--seq", "64")
    assert (tot["params"], 2 * tot["fvcore_flops"]) == (params, flops)
