"""attncli's Mamba2 kind against transformers' own ``NemotronHMamba2Mixer`` (5.25), shrunken on CPU, its
torch path (no mamba-ssm, no causal-conv1d kernels installed here).

Closed forms derived from ``modeling_nemotron_h.py``: ``in_proj`` E x (2*I + 2*G*N + H) (I = H*P,
``intermediate_size = mamba_num_heads * mamba_head_dim``); the depthwise conv (``causal_conv1d_fn``:
``F.conv1d`` padded K - 1, L + K - 1 outputs; a decode step's ``causal_conv1d_update``: 2); the five
einsums of ``mamba2_chunk_scan`` (``bclhn,bcshn->bclsh`` B*H*LP*C*N, ``bclsh,bcshp->bclhp`` B*H*LP*C*P,
``bclhn,bclhp->bchpn`` B*H*LP*P*N, ``bzch,bzhpn->bchpn`` B*H*(n+1)^2*P*N, ``bclhn,bchpn->bclhp``
B*H*LP*P*N); a decode step's ``torch.bmm`` of ``mamba2_selective_state_update`` B*H*P*N; ``out_proj`` I x E.
The expected numbers below are these products written out, not attncli's output.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from attncli.analyses.flops import count_variant
from attncli.kinds.mamba2 import counts, kind, torch_layer
from attncli.spec import AttnSpec, SpecError

transformers = pytest.importorskip("transformers")
from transformers import DynamicCache  # noqa: E402
from transformers.models.nemotron_h.configuration_nemotron_h import NemotronHConfig  # noqa: E402
from transformers.models.nemotron_h.modeling_nemotron_h import NemotronHMamba2Mixer  # noqa: E402

# E=64, H=8, P=16, N=12, G=2, K=4, C=8: I = 128, conv channels 128 + 2*2*12 = 176, in_proj 128 + 176 + 8 = 312
SMALL = {"dim": 64, "mamba_num_heads": 8, "mamba_head_dim": 16, "ssm_state_size": 12, "mamba_n_groups": 2,
         "mamba_conv_kernel": 4, "mamba_chunk": 8}


@pytest.fixture(autouse=True)
def quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def spec(**kw: object) -> AttnSpec:
    return AttnSpec(**{"heads": 4, "batch": 2, "seq": 13, "impl": "mamba2", "mask": "causal", **SMALL, **kw}).validate()


def reference(dtype: torch.dtype = torch.float32) -> NemotronHMamba2Mixer:
    cfg = NemotronHConfig(hidden_size=64, mamba_num_heads=8, mamba_head_dim=16, ssm_state_size=12, n_groups=2,
                          conv_kernel=4, chunk_size=8, layers_block_type=["linear_attention"])
    return NemotronHMamba2Mixer(cfg, layer_idx=0).to(dtype).eval().requires_grad_(False)


def test_closed_form_written_out() -> None:
    s = spec()  # B=2, L=13: LP = 16, n = 2 chunks
    assert counts.dense(s) == {"in_proj": 2 * 13 * 64 * 312, "conv": 2 * 176 * 4 * (13 + 3),
                               "ssd_cb": 2 * 8 * 16 * 8 * 12, "ssd_diag": 2 * 8 * 16 * 8 * 16,
                               "ssd_states": 2 * 8 * 16 * 16 * 12, "ssd_pass": 2 * 8 * 3 ** 2 * 16 * 12,
                               "ssd_out": 2 * 8 * 16 * 16 * 12, "out_proj": 2 * 13 * 128 * 64}
    d = spec(seq=1, cache=13)
    assert d.form == "recurrent"
    assert counts.dense(d) == {"in_proj": 2 * 64 * 312, "conv": 2 * 176 * 4 * 2, "ssm_out": 2 * 8 * 16 * 12,
                               "out_proj": 2 * 128 * 64}
    eff = counts.effective(s, counts.dense(s))  # lower triangles: 2 chunks x 8*9/2 pairs; 3*4/2 chunk-state pairs
    assert eff["ssd_cb"] == 2 * 8 * 2 * 36 * 12 and eff["ssd_pass"] == 2 * 8 * 6 * 16 * 12


def test_params_and_outputs_equal_transformers() -> None:
    s = spec()
    mine = torch_layer.build(s, "cpu")
    ref = reference()
    assert sorted(ref.state_dict()) == sorted(mine.state_dict())
    assert sum(p.numel() for p in ref.parameters()) == kind.params(s)["total"] == (
        64 * 312 + 176 * 4 + 176 + 3 * 8 + 128 + 128 * 64)
    ref.load_state_dict(mine.state_dict())
    x = torch.randn(2, 13, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(mine(x)[0], ref(x), atol=2e-5, rtol=1e-4)


def test_flop_counter_on_transformers_equals_closed_form_and_cache_bytes() -> None:
    s, d = spec(), spec(seq=1, cache=13)
    mine = torch_layer.build(s, "cpu")
    ref = reference()
    ref.load_state_dict(mine.state_dict())
    x = torch.randn(2, 13, 64, generator=torch.Generator().manual_seed(2))
    x1 = torch.randn(2, 1, 64, generator=torch.Generator().manual_seed(3))
    cache = DynamicCache(config=ref.config)
    with FlopCounterMode(display=False) as fc:
        ref(x, cache=cache)
    assert fc.get_total_flops() == 2 * sum(counts.dense(s).values())
    layer = cache.layers[0]
    conv, ssm = layer.conv_states[0], layer.recurrent_states[0]
    assert (tuple(ssm.shape), ssm.dtype, tuple(conv.shape)) == ((2, 8, 16, 12), torch.float32, (2, 176, 4))
    with torch.no_grad():
        _, my_ssm, my_conv = mine(x)
    torch.testing.assert_close(my_ssm, ssm, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(my_conv, conv)
    with FlopCounterMode(display=False) as fc:
        y1 = ref(x1, cache=cache)
    assert fc.get_total_flops() == 2 * sum(counts.dense(d).values())
    step = torch_layer.build(d, "cpu")
    step.load_state_dict(mine.state_dict())
    with torch.no_grad():
        out, my_ssm, my_conv = step(x1, ssm_state=my_ssm, conv_state=my_conv)
    torch.testing.assert_close(out, y1, atol=2e-5, rtol=1e-4)
    held = {"ssm": ssm.numel() * ssm.element_size(), "conv": conv.numel() * conv.element_size()}
    assert counts.state_bytes(d, 4) == held == {"ssm": 2 * 8 * 16 * 12 * 4, "conv": 2 * 176 * 4 * 4}
    bf16 = reference(torch.bfloat16)
    cache = DynamicCache(config=bf16.config)
    bf16(x.to(torch.bfloat16), cache=cache)
    bf16(x1.to(torch.bfloat16), cache=cache)
    layer = cache.layers[0]
    assert layer.recurrent_states[0].dtype == torch.float32 and layer.conv_states[0].dtype == torch.bfloat16
    assert kind.kv_cache_bytes(d, 2) == 2 * 8 * 16 * 12 * 4 + 2 * 176 * 4 * 2


@pytest.mark.parametrize("kw", [{}, {"seq": 1, "cache": 13}, {"seq": 5, "cache": 13}, {"mamba_form": "recurrent"}])
def test_traced_stages_equal_closed_form(kw: dict[str, object]) -> None:
    s = spec(**kw)
    v = count_variant(s)
    assert v.agree, v.problems
    assert dict(v.by_stage) == {**counts.dense(s), "other": 0} or dict(v.by_stage) == counts.dense(s)


def test_meta_params_at_nemotron_3_nano_size() -> None:
    # nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16 config.json: hidden 2688, 64 heads of 64, state 128, 8 groups
    cfg = NemotronHConfig(hidden_size=2688, mamba_num_heads=64, mamba_head_dim=64, ssm_state_size=128, n_groups=8,
                          conv_kernel=4, chunk_size=128, layers_block_type=["linear_attention"])
    with torch.device("meta"):
        ref = NemotronHMamba2Mixer(cfg, layer_idx=0)
    s = AttnSpec(dim=2688, heads=32, impl="mamba2", mamba_num_heads=64, mamba_head_dim=64, ssm_state_size=128,
                 mamba_n_groups=8, mamba_conv_kernel=4, mamba_chunk=128).validate()
    assert sum(p.numel() for p in ref.parameters()) == kind.params(s)["total"] == 38_742_208


def test_hostile_sizes_name_the_field() -> None:
    with pytest.raises(SpecError, match="n_groups"):
        spec(mamba_n_groups=3)
    with pytest.raises(SpecError, match="--window"):
        spec(window=4)
    with pytest.raises(SpecError, match="mamba_head_dim"):
        spec(mamba_head_dim=0)


def test_shapes_report_runs() -> None:
    report = kind.analyse_shapes(spec())
    assert report.attn_output == (2, 13, 64)
    assert report.total_params == kind.params(spec())["total"]
