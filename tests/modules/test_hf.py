"""attncli.modules.hf: transformers attention classes built from attncli settings and called as their model calls them.

Each class is built on CPU from a tiny config, run, and its FLOPs counted with
``torch.utils.flop_counter.FlopCounterMode`` (2 FLOPs per multiply-add) under eager attention,
which computes attention with explicit matmuls. The expected count is the closed form, in
multiply-adds (MACs) x 2, for hidden states (B, L, E), H query heads, G KV heads of size d and
S = L keys:

    q = B*L*E*H*d,  k = v = B*L*E*G*d,  QK^T = weights x V = B*H*L*S*d,  o = B*L*H*d*E

BERT's self-attention has no W_O (o = 0); GPT-2's projections are Conv1D (c_attn, c_proj) with
the same multiply-adds. Masks, softmax, RoPE and scaling hold no multiply-adds of a matmul.
"""

from __future__ import annotations

import sys
from types import SimpleNamespace
from typing import Any

import pytest
import torch

pytest.importorskip("transformers")

from torch.utils.flop_counter import FlopCounterMode
from transformers.models.bert.modeling_bert import BertModel, BertSelfAttention
from transformers.models.deepseek_v3.modeling_deepseek_v3 import DeepseekV3Attention, DeepseekV3Model
from transformers.models.gemma3.modeling_gemma3 import Gemma3Attention, Gemma3TextModel
from transformers.models.gpt2.modeling_gpt2 import GPT2Attention, GPT2Model
from transformers.models.llama.modeling_llama import LlamaAttention, LlamaModel
from transformers.models.mistral.modeling_mistral import MistralAttention, MistralModel
from transformers.models.phi3.modeling_phi3 import Phi3Attention, Phi3Model
from transformers.models.qwen2.modeling_qwen2 import Qwen2Attention, Qwen2Model
from transformers.models.t5.modeling_t5 import T5Attention, T5EncoderModel

from attncli.modules.hf import build_hf_attention, config_class, is_hf_attention
from attncli.spec import SpecError

B, L = 2, 6


def closed_form_flops(b: int, seq: int, e: int, h: int, g: int, d: int, out_proj: bool = True) -> int:
    s = seq  # self-attention, no cache: S = L
    q = b * seq * e * h * d
    k = v = b * seq * e * g * d
    scores = context = b * h * seq * s * d
    o = b * seq * h * d * e if out_proj else 0
    return 2 * (q + k + v + scores + context + o)


# (class, settings, E, H, G, d, has W_O)
CASES: list[tuple[type, Any, int, int, int, int, bool]] = [
    (LlamaAttention, SimpleNamespace(dim=32, heads=4, kv_heads=2, head_dim=16, bias=False), 32, 4, 2, 16, True),
    (MistralAttention, SimpleNamespace(dim=32, heads=4, kv_heads=1, window=3, bias=False), 32, 4, 1, 8, True),
    (Qwen2Attention, SimpleNamespace(dim=32, heads=4, kv_heads=2, bias=True), 32, 4, 2, 8, True),
    (GPT2Attention, SimpleNamespace(dim=32, heads=4, bias=True), 32, 4, 4, 8, True),
    (BertSelfAttention, SimpleNamespace(dim=32, heads=4, bias=True), 32, 4, 4, 8, False),
    (T5Attention, SimpleNamespace(dim=32, heads=4, head_dim=16, bias=False), 32, 4, 4, 16, True),
    # Phi-3: q, k and v in one fused qkv_proj of width (H + 2G) d
    (Phi3Attention, SimpleNamespace(dim=32, heads=4, kv_heads=2), 32, 4, 2, 8, True),
    # Gemma 3: a rotary table per layer type (layer 0: sliding), qk-norm
    (Gemma3Attention, SimpleNamespace(dim=32, heads=4, kv_heads=2, head_dim=16), 32, 4, 2, 16, True),
]
IDS = [c[0].__name__ for c in CASES]


@pytest.mark.parametrize(("cls", "settings", "e", "h", "g", "d", "out_proj"), CASES, ids=IDS)
def test_cpu_flops_equal_closed_form(cls: type, settings: Any, e: int, h: int, g: int, d: int,
                                     out_proj: bool) -> None:
    assert is_hf_attention(cls)
    layer = build_hf_attention(cls, settings, "cpu")
    args, _ = layer.call_args(B, L, "cpu")
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = layer.call(args[0])
    assert out.shape == (B, L, e) and torch.isfinite(out).all()
    assert counter.get_total_flops() == closed_form_flops(B, L, e, h, g, d, out_proj)
    assert (layer.sizes.heads, layer.sizes.kv_heads, layer.sizes.head_dim, layer.sizes.out_proj) == (h, g, d, out_proj)


@pytest.mark.parametrize(("cls", "settings", "e", "h", "g", "d", "out_proj"), CASES, ids=IDS)
def test_runs_on_meta(cls: type, settings: Any, e: int, h: int, g: int, d: int, out_proj: bool) -> None:
    layer = build_hf_attention(cls, settings, "meta")
    assert all(p.device.type == "meta" for p in layer.module.parameters())
    args, _ = layer.call_args(B, L, "meta")
    with FlopCounterMode(display=False) as counter:
        out = layer.wrapper()(args[0])
    assert out.device.type == "meta" and out.shape == (B, L, e)
    assert counter.get_total_flops() == closed_form_flops(B, L, e, h, g, d, out_proj)


def test_fvcore_counts_the_wrapper_on_meta() -> None:
    from fvcore.nn import FlopCountAnalysis

    layer = build_hf_attention(LlamaAttention, SimpleNamespace(dim=32, heads=4, kv_heads=2, head_dim=16), "meta")
    analysis = FlopCountAnalysis(layer.wrapper(), (torch.empty(B, L, 32, device="meta"),))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    # fvcore counts one multiply-add as one "flop": MACs = closed form / 2
    assert analysis.total() == closed_form_flops(B, L, 32, 4, 2, 16) // 2


def _model_attention(model: Any) -> Any:
    for path in ("layers.0.self_attn", "h.0.attn", "encoder.layer.0.attention.self",
                 "encoder.block.0.layer.0.SelfAttention"):
        try:
            return model.get_submodule(path)
        except AttributeError:
            continue
    raise AssertionError(type(model).__name__)


@pytest.mark.parametrize(("cls", "model_cls", "settings"), [
    (LlamaAttention, LlamaModel, SimpleNamespace(dim=32, heads=4, kv_heads=2, head_dim=16)),
    # window 3 < L = 6: the sliding-window mask changes the output
    (MistralAttention, MistralModel, SimpleNamespace(dim=32, heads=4, kv_heads=2, window=3)),
    (Qwen2Attention, Qwen2Model, SimpleNamespace(dim=32, heads=4, kv_heads=2, window=3)),
    (GPT2Attention, GPT2Model, SimpleNamespace(dim=32, heads=4)),
    (BertSelfAttention, BertModel, SimpleNamespace(dim=32, heads=4)),
    (T5Attention, T5EncoderModel, SimpleNamespace(dim=32, heads=4, head_dim=8)),
    (Phi3Attention, Phi3Model, SimpleNamespace(dim=32, heads=4, kv_heads=2, window=3)),
    (Gemma3Attention, Gemma3TextModel, SimpleNamespace(dim=32, heads=4, kv_heads=2, head_dim=16, window=3)),
], ids=["llama", "mistral", "qwen2", "gpt2", "bert", "t5", "phi3", "gemma3"])
def test_called_as_the_model_calls_it(cls: type, model_cls: type, settings: Any) -> None:
    """The layer's output on the hidden states the model fed its first attention layer is the model's own."""
    torch.manual_seed(0)
    layer = build_hf_attention(cls, settings, "cpu")
    pad = getattr(layer.config, "pad_token_id", None)  # Phi-3's 32000 lies outside a vocabulary of 50
    config = config_class(cls)(**{**layer.config.to_dict(), "vocab_size": 50,
                                  "pad_token_id": pad if pad is None or pad < 50 else None})
    config._attn_implementation = "eager"
    model = model_cls(config).eval()
    seen: dict[str, Any] = {}

    def hook(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        seen["x"] = args[0] if args else kwargs["hidden_states"]
        seen["out"] = output[0]

    attention = _model_attention(model)
    attention.register_forward_hook(hook, with_kwargs=True)
    with torch.no_grad():
        model(input_ids=torch.randint(0, 50, (B, L)))
        layer.module.load_state_dict(attention.state_dict())
        ours = layer.call(seen["x"])
    torch.testing.assert_close(ours, seen["out"])


def test_sdpa_matches_eager() -> None:
    settings = SimpleNamespace(dim=32, heads=4, kv_heads=2, window=3)
    eager = build_hf_attention(MistralAttention, settings, "cpu", "eager")
    sdpa = build_hf_attention(MistralAttention, settings, "cpu", "sdpa")
    sdpa.module.load_state_dict(eager.module.state_dict())
    args, _ = eager.call_args(B, L, "cpu")
    with torch.no_grad():
        torch.testing.assert_close(sdpa.call(args[0]), eager.call(args[0]))


def test_settings_reach_the_config() -> None:
    layer = build_hf_attention(LlamaAttention, SimpleNamespace(dim=64, heads=8, kv_heads=2, head_dim=32,
                                                               bias=True), "meta")
    q = layer.module.q_proj
    # q_proj: E -> H*d = 8*32 = 256; k_proj: E -> G*d = 2*32 = 64
    assert tuple(q.weight.shape) == (256, 64) and q.bias is not None
    assert tuple(layer.module.k_proj.weight.shape) == (64, 64)
    qwen = build_hf_attention(Qwen2Attention, SimpleNamespace(dim=32, heads=4, bias=False), "meta")
    assert any("o_proj has none" in n for n in qwen.notes) and any("ignored" in n for n in qwen.notes)
    assert build_hf_attention(Qwen2Attention, SimpleNamespace(dim=32, heads=4), "meta").sizes.window is None


@pytest.mark.parametrize(("cls", "settings", "flag"), [
    (GPT2Attention, SimpleNamespace(dim=32, heads=4, kv_heads=2), "--kv-heads"),
    (BertSelfAttention, SimpleNamespace(dim=32, heads=4, head_dim=16), "--head-dim"),
    (LlamaAttention, SimpleNamespace(dim=32, heads=4, window=8), "--window"),
    (LlamaAttention, SimpleNamespace(dim=32, heads=4, cache=16), "--cache"),
    (LlamaAttention, SimpleNamespace(dim=32, heads=3), "--module"),  # 32 % 3: the constructor refuses
])
def test_what_a_class_cannot_express(cls: type, settings: Any, flag: str) -> None:
    with pytest.raises(SpecError) as err:
        build_hf_attention(cls, settings, "meta")
    assert err.value.flag == flag and "\n" not in str(err.value)


def test_not_hf_classes() -> None:
    class Plain(torch.nn.Module):
        def __init__(self, dim: int, heads: int) -> None:
            super().__init__()

    assert not is_hf_attention(torch.nn.MultiheadAttention)
    assert not is_hf_attention(Plain)
    assert not is_hf_attention(len)
    with pytest.raises(SpecError) as err:
        build_hf_attention(Plain, SimpleNamespace(dim=8, heads=2))
    assert err.value.flag == "--module"


def test_without_transformers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers now raises ImportError
    with pytest.raises(SpecError) as err:
        build_hf_attention(LlamaAttention, SimpleNamespace(dim=32, heads=4))
    assert err.value.flag == "--module" and "pip install 'attncli[hf]'" in err.value.message
    assert not is_hf_attention(LlamaAttention)


@pytest.mark.parametrize("window", [1, 3, 5])
def test_sliding_window_keeps_as_many_keys_as_attncli(window: int) -> None:
    # transformers' own rule: sliding_window_overlay(W) keeps kv_idx > q_idx - W on top of causal
    # (Mistral, Qwen2, Gemma-2 all build their local masks with create_sliding_window_causal_mask).
    # attncli's --window W: a query at p sees keys p-W+1 .. p, i.e. min(W, p + 1) keys.
    from transformers.masking_utils import and_masks, causal_mask_function, sliding_window_overlay

    from attncli.layer.visibility import visible_pairs

    rule = and_masks(causal_mask_function, sliding_window_overlay(window))
    n = 8
    t = torch.tensor
    seen = [[bool(rule(t(0), t(0), t(q), t(k))) for k in range(n)] for q in range(n)]
    for q in range(n):
        assert [k for k in range(n) if seen[q][k]] == list(range(max(0, q - window + 1), q + 1))
    assert sum(map(sum, seen)) == visible_pairs(n, n, window=window) == sum(min(window, p + 1) for p in range(n))


# ------------------------------------------------------------------ multi-head latent attention
MLA = SimpleNamespace(dim=96, heads=3, kv_lora_rank=32, q_lora_rank=48, qk_nope_head_dim=16, qk_rope_head_dim=8,
                      v_head_dim=24)


def _mla_spec(**over: Any) -> Any:
    from attncli.spec import AttnSpec

    keys = ("dim", "heads", "kv_lora_rank", "q_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim")
    sizes = {k: getattr(MLA, k) for k in keys}
    return AttnSpec(**{**sizes, "batch": B, "seq": L, "bias": False, "impl": "mla", "mla_form": "naive",
                       "mask": "causal", **over}).validate()


def test_deepseek_v3_attention_is_built_with_the_mla_sizes() -> None:
    """E/H = 32, not DeepseekV3Config's default 7168/128: the config gets every MLA size, and the
    layer's FlopCounterMode count is twice the MLA closed form (naive: kv_b_proj expands every latent)."""
    from attncli.kinds.mla import kind as mla

    layer = build_hf_attention(DeepseekV3Attention, MLA, "cpu")
    assert layer.sizes.mla == {"kv_lora_rank": 32, "q_lora_rank": 48, "qk_nope_head_dim": 16,
                               "qk_rope_head_dim": 8, "v_head_dim": 24}
    m = layer.module
    assert tuple(m.kv_b_proj.weight.shape) == (3 * (16 + 24), 32) and tuple(m.q_b_proj.weight.shape) == (72, 48)
    args, _ = layer.call_args(B, L, "cpu")
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = layer.call(args[0])
    assert out.shape == (B, L, 96) and torch.isfinite(out).all()
    spec = _mla_spec()
    assert counter.get_total_flops() == 2 * sum(mla.closed_form(spec).values())
    assert sum(p.numel() for p in m.parameters()) == mla.params(spec)["total"]


def test_deepseek_v3_attention_is_called_as_the_model_calls_it() -> None:
    torch.manual_seed(0)
    layer = build_hf_attention(DeepseekV3Attention, MLA, "cpu")
    config = config_class(DeepseekV3Attention)(**{**layer.config.to_dict(), "vocab_size": 50,
                                                   "intermediate_size": 64, "moe_intermediate_size": 16,
                                                   "n_routed_experts": 4, "num_experts_per_tok": 2,
                                                   "n_group": 1, "topk_group": 1})
    config._attn_implementation = "eager"
    model = DeepseekV3Model(config).eval()
    seen: dict[str, Any] = {}

    def hook(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        seen["x"] = args[0] if args else kwargs["hidden_states"]
        seen["out"] = output[0]

    attention = model.get_submodule("layers.0.self_attn")
    attention.register_forward_hook(hook, with_kwargs=True)
    with torch.no_grad():
        model(input_ids=torch.randint(0, 50, (B, L)))
        layer.module.load_state_dict(attention.state_dict())
        ours = layer.call(seen["x"])
    torch.testing.assert_close(ours, seen["out"])


@pytest.mark.parametrize(("settings", "flag"), [
    (SimpleNamespace(dim=64, heads=4, kv_heads=2), "--kv-heads"),
    (SimpleNamespace(dim=64, heads=4, d_head=8), "--head-dim"),
    (SimpleNamespace(dim=64, heads=4, window=8), "--window"),
    (SimpleNamespace(**vars(MLA), mla_form="absorbed"), "--mla-form"),
])
def test_what_an_mla_class_cannot_express(settings: Any, flag: str) -> None:
    with pytest.raises(SpecError) as err:
        build_hf_attention(DeepseekV3Attention, settings, "meta")
    assert err.value.flag == flag and "\n" not in str(err.value)


def test_mla_sizes_on_a_class_without_them_exit_2() -> None:
    with pytest.raises(SpecError) as err:
        build_hf_attention(LlamaAttention, MLA, "meta")
    assert err.value.flag == "--kv-lora-rank"


# ------------------------------------------------------------------ no warnings from transformers
@pytest.mark.parametrize(("cls", "settings"), [*((c[0], c[1]) for c in CASES), (DeepseekV3Attention, MLA)],
                         ids=[*IDS, "DeepseekV3Attention"])
@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_a_hugging_face_class_runs_without_warnings(cls: type, settings: Any, device: str) -> None:
    """transformers 5.24 deprecates the mask functions' past_key_values for cache (a FutureWarning until
    5.40 removes it): attncli passes the name the installed version takes, so nothing warns."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer = build_hf_attention(cls, settings, device)
        args, _ = layer.call_args(B, L, device)
        with torch.no_grad():
            layer.wrapper()(args[0])


def test_the_cache_keyword_follows_the_signature() -> None:
    from attncli.modules.hfcall import cache_keyword

    def old(config: Any, inputs_embeds: Any, attention_mask: Any, past_key_values: Any, position_ids: Any) -> None:
        """transformers 5.0 to 5.23."""

    def new(config: Any, inputs_embeds: Any, attention_mask: Any, cache: Any = None, position_ids: Any = None,
            **kwargs: Any) -> None:
        """transformers 5.24: past_key_values still accepted (through **kwargs), with a FutureWarning."""

    def neither(config: Any, inputs_embeds: Any) -> None:
        """A mask function with no cache argument."""

    assert (cache_keyword(old), cache_keyword(new), cache_keyword(neither)) == ("past_key_values", "cache", None)
    from transformers import masking_utils

    assert cache_keyword(masking_utils.create_causal_mask) in ("cache", "past_key_values")


def test_the_installed_transformers_is_in_the_pinned_range() -> None:
    """pyproject's hf and dev extras pin the versions these tests ran on; the set-up installs one of them."""
    import re
    from pathlib import Path

    import transformers

    text = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    extras = {m.group(1): m.group(2) for m in re.finditer(r'^(hf|dev) = \[(.*?)\]$', text, re.M | re.S)}
    assert set(extras) == {"hf", "dev"}
    assert all('"transformers>=5.24,<5.26"' in deps for deps in extras.values())

    def version(text: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", text)[:2])

    assert version("5.24") <= version(transformers.__version__) < version("5.26")
    # constraints.txt pins the one the set-up installs
    pinned = re.search(r"^transformers==(\S+)$", (Path(__file__).parents[2] / "constraints.txt").read_text(), re.M)
    assert pinned is not None and pinned.group(1) == transformers.__version__


def test_phi3_fused_qkv_is_split_by_its_slices() -> None:
    """Phi3Attention.qkv_proj: (B*L, E) @ (E, (H + 2G) d) is q H*d, k G*d and v G*d of it."""
    from attncli.engine.handles import OpCount
    from attncli.modules.hfcall import split_fused

    layer = build_hf_attention(Phi3Attention, SimpleNamespace(dim=32, heads=4, kv_heads=2), "meta")
    assert layer.fused == (("qkv_proj", (("q_proj", 32), ("k_proj", 16), ("v_proj", 16))),)
    assert any("qkv_proj" in n and "q 32, k 16, v 16" in n for n in layer.notes)
    total = B * L * 32 * 64
    ops = (OpCount("aten::linear", "layer.attn.qkv_proj", total, (("v_proj", total),)),
           OpCount("aten::linear", "layer.attn.o_proj", 7, (("out_proj", 7),)))
    split = split_fused(ops, layer.fused)
    assert split[0].stages == (("q_proj", total // 2), ("k_proj", total // 4), ("v_proj", total // 4))
    assert split[1] is ops[1]
    assert build_hf_attention(LlamaAttention, SimpleNamespace(dim=32, heads=4), "meta").fused == ()


def test_gemma3_rotary_gets_layer_zeros_type() -> None:
    layer = build_hf_attention(Gemma3Attention, SimpleNamespace(dim=32, heads=4, kv_heads=2, head_dim=16), "meta")
    assert layer.rotary_layer_type == layer.config.layer_types[0] == "sliding_attention"
    assert build_hf_attention(LlamaAttention, SimpleNamespace(dim=32, heads=4), "meta").rotary_layer_type is None
