"""attncli's Kimi Delta Attention layer against transformers' own ``KimiLinearDeltaAttention`` (5.25) and its
torch functions, with the torch paths forced (no fla, no causal-conv1d kernels).

- The same weights (``load_state_dict``: transformers' names) give the same output in both forms; a
  decode step from the state of a run is the last row of a longer run; a prefill after a state is
  transformers' chunked continuation; the states attncli's layer returns are the ones transformers'
  cache keeps, and their bytes after a prefill and one decode step are :func:`counts.state_bytes`.
- ``chunk_kimi_delta_attention`` under FlopCounterMode does 2 x the matmul stages of the chunked closed
  form (``delta_wy``, ``delta_out``, ``delta_read``, ``delta_av``, ``delta_write``); its broadcast
  products (the decayed K_beta K^T and Q K^T, the forward substitution) are counted op by op as the
  products reduced by ``sum`` over 5-d and 6-d tensors, and are ``delta_kk + delta_qk + delta_inv``.
  ``recurrent_kimi_delta_attention`` is counted the same way (3 D x D per token and head).
- The real module does, per submodule under FlopCounterMode, 2 x attncli's closed form of that stage
  (q/k/v, forget gate, beta, output gate, o_proj), and at its top level the conv and the delta rule's
  matmuls, for a prefill, a prefill after a state and a decode step; it holds the closed-form params,
  small on CPU and at Kimi-Linear-48B-A3B's published sizes on meta.
- attncli's layer run step by step on CPU counts per stage what its meta trace counts: the closed form.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from attncli.kinds.kda import counts, kind, torch_layer
from attncli.spec import AttnSpec
from tests.kinds.linear_torch import (
    Pair,
    check_decode_step_continues_a_run,
    check_prefill_after_a_state_continues_chunked,
    count_last_call,
    force_torch_paths,
    tokens,
)

transformers = pytest.importorskip("transformers")
from transformers import DynamicCache  # noqa: E402
from transformers.models.kimi_linear import modeling_kimi_linear as M  # noqa: E402
from transformers.models.kimi_linear.configuration_kimi_linear import KimiLinearConfig  # noqa: E402

SMALL = {"dim": 64, "linear_num_heads": 4, "linear_head_dim": 8, "linear_conv_kernel_dim": 4}
PUBLISHED = {"dim": 2304, "linear_num_heads": 32, "linear_head_dim": 128, "linear_conv_kernel_dim": 4}
"""Kimi-Linear-48B-A3B (tests/data/configs/kimi-linear-48b-a3b: hidden_size, linear_attn_config)."""
TORCH_PATHS = ("chunk_kimi_delta_attention", "recurrent_kimi_delta_attention", "causal_conv1d_fn",
               "causal_conv1d_update", "causal_conv1d_forward")
PROJECTIONS = {"q_proj": "qkv_proj", "k_proj": "qkv_proj", "v_proj": "qkv_proj", "forget_gate.f_a_proj": "f_proj",
               "forget_gate.f_b_proj": "f_proj", "b_proj": "b_proj", "g_a_proj": "g_proj", "g_b_proj": "g_proj",
               "o_proj": "o_proj"}
"""transformers' submodules that are linear layers -> attncli's stage."""


@pytest.fixture(autouse=True)
def torch_paths(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """transformers' torch functions, whatever kernels (fla, causal-conv1d) are installed."""
    yield from force_torch_paths(monkeypatch, M, TORCH_PATHS)


def config(sizes: dict[str, int]) -> KimiLinearConfig:
    return KimiLinearConfig(hidden_size=sizes["dim"], linear_num_heads=sizes["linear_num_heads"],
                            linear_head_dim=sizes["linear_head_dim"],
                            linear_conv_kernel_dim=sizes["linear_conv_kernel_dim"], num_hidden_layers=1,
                            layer_types=["linear_attention"])


def real_layer(sizes: dict[str, int] = SMALL, device: str = "cpu") -> Any:
    with torch.device(device):
        module = M.KimiLinearDeltaAttention(config(sizes), layer_idx=0)
    if device != "meta":
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(1)
            for p in module.parameters():
                p.normal_(0, 0.3)
            module.forget_gate.A_log.uniform_(0, 2)  # NOTE: decay rates exp(A_log) of 1 to 7.4
            module.forget_gate.dt_bias.uniform_(-4, -1)
    # NOTE: as in test_gdn_torch: FlopCounterMode's module tracker asserts on a kernels-wrapped call with grads
    return module.eval().requires_grad_(False)


def spec(sizes: dict[str, int] = SMALL, **kw: object) -> AttnSpec:
    return AttnSpec(**{**sizes, "impl": "kda", "batch": 2, "mask": "causal", **kw}).validate()  # type: ignore[arg-type]


def mine_like(ref: Any, s: AttnSpec) -> torch_layer.KimiDeltaAttention:
    module = torch_layer.build(s)
    module.load_state_dict(ref.state_dict(), strict=True)
    return module


def stages_sum(s: AttnSpec, which: frozenset[str] | set[str]) -> int:
    return sum(n for st, n in counts.closed_form(s).items() if st in which)


PAIR = Pair(real_layer, mine_like, spec, lambda: DynamicCache(config=config(SMALL)))


# ---------------------------------------------------------------------------- the same function
@pytest.mark.parametrize("form", ["chunked", "recurrent"])
@pytest.mark.parametrize("L", [7, 70])
def test_same_output_as_transformers_with_the_same_weights(form: str, L: int) -> None:
    ref = real_layer()
    mine = mine_like(ref, spec(seq=L, gdn_form=form))
    x = tokens(L)
    with torch.no_grad():
        want = ref(x)
        got = mine(x)[0]
    assert got.shape == want.shape == (2, L, 64)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_chunks_of_another_size_give_the_same_function() -> None:
    ref = real_layer()
    x = tokens(40)
    with torch.no_grad():
        torch.testing.assert_close(mine_like(ref, spec(seq=40, gdn_chunk=16))(x)[0], ref(x), rtol=1e-4, atol=1e-5)


def test_a_decode_step_from_the_state_of_a_run_is_the_last_row_of_a_longer_run() -> None:
    check_decode_step_continues_a_run(PAIR)


@pytest.mark.parametrize("prefill", [2, 8])
def test_a_prefill_after_a_state_is_transformers_chunked_continuation(prefill: int) -> None:
    check_prefill_after_a_state_continues_chunked(PAIR, prefill)


def test_the_state_transformers_keeps_after_a_prefill_and_a_decode_step_at_bfloat16() -> None:
    """The conv state at the layer's dtype (B, 3*H*D, K), the recurrent state in float32 (B, H, D, D)."""
    ref = real_layer().to(torch.bfloat16)
    cache = DynamicCache(config=config(SMALL))
    x = tokens(7).to(torch.bfloat16)
    with torch.no_grad():
        ref(x[:, :6], cache=cache)
        ref(x[:, 6:], cache=cache)
    conv, rec = cache.layers[0].conv_states[0], cache.layers[0].recurrent_states[0]
    assert conv.shape == (2, 3 * 4 * 8, 4) and conv.dtype == torch.bfloat16
    assert rec.shape == (2, 4, 8, 8) and rec.dtype == torch.float32
    held = rec.numel() * rec.element_size() + conv.numel() * conv.element_size()
    s = spec(seq=1, cache=6)
    assert counts.state_bytes(s, 2) == {"recurrent": 2 * 4 * 8 * 8 * 4, "conv": 2 * 96 * 4 * 2}
    assert kind.kv_cache_bytes(s, 2) == held == 2048 + 1536
    assert kind.kv_bytes_per_token(s, 2) == 0


# ---------------------------------------------------------------------------- transformers' delta rule, op by op
class Reduced(TorchDispatchMode):
    """Multiply-adds written as broadcast products: the elements of every 5-d or 6-d tensor reduced by
    ``sum`` (the chunked rule's decayed K_beta K^T and Q K^T, (.., C, C, D), and its forward substitution,
    (.., i, i)), and in the recurrent rule the state-shaped products reduced by ``sum`` (k^T S, q^T S) or
    accumulated by ``add`` (S + k delta^T)."""

    def __init__(self, state_shape: tuple[int, ...] | None = None) -> None:
        super().__init__()
        self.state, self.macs = state_shape, 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        if func is torch.ops.aten.sum.dim_IntList:
            shape = tuple(args[0].shape)
            if (self.state is None and len(shape) >= 5) or shape == self.state:
                self.macs += args[0].numel()
        elif func is torch.ops.aten.add.Tensor and self.state is not None and tuple(out.shape) == self.state:
            self.macs += out.numel()
        return out


def rule_inputs(sizes: dict[str, int], L: int, device: str, B: int = 2) -> dict[str, torch.Tensor]:
    h, d = sizes["linear_num_heads"], sizes["linear_head_dim"]
    g = torch.Generator().manual_seed(0)

    def t(*shape: int) -> torch.Tensor:
        return torch.empty(shape, device="meta") if device == "meta" else torch.rand(shape, generator=g)

    return {"query": t(B, L, h, d), "key": t(B, L, h, d), "value": t(B, L, h, d), "g": -t(B, L, h, d),
            "beta": t(B, L, h)}


MATMUL_STAGES = {"delta_wy", "delta_out", "delta_read", "delta_av", "delta_write"}


@pytest.mark.parametrize(("sizes", "L", "C", "device"), [
    (SMALL, 7, 64, "cpu"), (SMALL, 100, 64, "cpu"), (SMALL, 100, 16, "cpu"), (SMALL, 128, 32, "meta"),
    (PUBLISHED, 4096, 64, "meta"), (PUBLISHED, 1000, 64, "meta"),
])
def test_transformers_chunk_rule_is_the_chunked_closed_form(sizes: dict[str, int], L: int, C: int,
                                                            device: str) -> None:
    s = spec(sizes, seq=L, gdn_chunk=C, gdn_form="chunked")
    with FlopCounterMode(display=False) as fc, Reduced() as reduced:
        M.chunk_kimi_delta_attention(**rule_inputs(sizes, L, device), chunk_size=C, output_final_state=True,
                                     use_qk_l2norm_in_kernel=True)
    assert fc.get_total_flops() == 2 * stages_sum(s, MATMUL_STAGES)
    assert reduced.macs == stages_sum(s, {"delta_kk", "delta_qk", "delta_inv"})
    assert counts.BROADCAST["chunked"] == set(counts.RECURRENCE["chunked"]) - MATMUL_STAGES


@pytest.mark.parametrize("L", [1, 5])
def test_transformers_recurrent_rule_is_the_recurrent_closed_form(L: int) -> None:
    inputs = rule_inputs(SMALL, L, "cpu")
    state = torch.zeros(2, 4, 8, 8)
    with FlopCounterMode(display=False) as fc, Reduced((2, 4, 8, 8)) as reduced:
        M.recurrent_kimi_delta_attention(**inputs, initial_state=state, output_final_state=True,
                                         use_qk_l2norm_in_kernel=True)
    assert fc.get_total_flops() == 0  # broadcast multiplies and sums: FlopCounterMode has no formula for them
    s = spec(seq=L, gdn_form="recurrent")
    assert reduced.macs == stages_sum(s, set(counts.RECURRENCE["recurrent"])) == 3 * 2 * 4 * L * 8 * 8


# ---------------------------------------------------------------------------- the real module
def real_counts(ref: Any, calls: list[tuple[torch.Tensor, bool]], sizes: dict[str, int]) -> dict[str, int]:
    """FlopCounterMode FLOPs of the last call per submodule (``""``: the layer's own ops, the conv and the rule)."""
    fc = count_last_call(ref, calls, DynamicCache(config=config(sizes)))
    per_module = {name: sum(ops.values()) for name, ops in fc.get_flop_counts().items()}
    top = next(name for name in per_module if "." not in name)
    out = {name.split(".", 1)[1]: n for name, n in per_module.items() if name.count(".") >= 1}
    out[""] = per_module[top] - sum(n for name, n in per_module.items() if name.count(".") == 1)
    return out


@pytest.mark.parametrize(("sizes", "device"), [(SMALL, "cpu"), (PUBLISHED, "meta")])
@pytest.mark.parametrize("step", ["prefill", "after_state", "decode"])
def test_real_module_does_the_closed_form_per_stage(sizes: dict[str, int], device: str, step: str) -> None:
    ref = real_layer(sizes, device)
    e = sizes["dim"]

    def x(n: int) -> torch.Tensor:
        return torch.empty(2, n, e, device="meta") if device == "meta" else tokens(n, e)

    calls, s = {"prefill": ([(x(100), False)], spec(sizes, seq=100)),
                "after_state": ([(x(9), True), (x(70), True)], spec(sizes, seq=70, cache=9)),
                "decode": ([(x(9), True), (x(1), True)], spec(sizes, seq=1, cache=9))}[step]
    assert s.form == ("recurrent" if step == "decode" else "chunked")
    seen = real_counts(ref, calls, sizes)
    closed = counts.closed_form(s)
    by_stage: dict[str, int] = {}
    for name, stage in PROJECTIONS.items():
        by_stage[stage] = by_stage.get(stage, 0) + seen.get(name, 0)
    assert by_stage == {st: 2 * closed[st] for st in set(PROJECTIONS.values())}
    # the layer's own ops: the conv and the rule's matmuls (its broadcast products are elementwise to FlopCounterMode)
    form = s.form or ""
    assert seen[""] == 2 * (closed["conv"] + stages_sum(s, set(counts.RECURRENCE[form]) - counts.BROADCAST[form]))
    if step == "decode":
        hd = sizes["linear_num_heads"] * sizes["linear_head_dim"]
        assert seen[""] == 2 * closed["conv"] == 2 * 2 * 3 * hd * 4 * 2  # B * 3HD channels * K * 2 outputs


@pytest.mark.parametrize(("sizes", "device"), [(SMALL, "cpu"), (PUBLISHED, "meta")])
def test_real_module_holds_the_closed_form_params(sizes: dict[str, int], device: str) -> None:
    ref = real_layer(sizes, device)
    want = counts.params(spec(sizes, seq=4))
    got = {name: sum(p.numel() for n, p in ref.named_parameters() if n.rsplit(".", 1)[0] == name or n == name)
           for name in want if name != "total"}
    got["total"] = sum(p.numel() for p in ref.parameters())
    assert got == want
    assert set(ref.state_dict()) == set(torch_layer.build(spec(sizes, seq=4), "meta").state_dict())
    if sizes is PUBLISHED:  # 3*E*HD + 3HD*K + 2*(E*D + D*HD) + HD + H + E*H + D + HD*E
        assert want["total"] == 4 * 2304 * 4096 + 3 * 4096 * 4 + 2 * (2304 * 128 + 128 * 4096) + 4096 + 32 \
            + 2304 * 32 + 128 == 39_514_272


# ---------------------------------------------------------------------------- attncli's layer, step by step
@pytest.mark.parametrize("kw", [{"seq": 100}, {"seq": 100, "gdn_chunk": 16, "cache": 3},
                                {"seq": 6, "gdn_form": "recurrent"}, {"seq": 1, "cache": 5}])
@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_attncli_layer_counts_the_closed_form_per_stage(kw: dict[str, object], device: str) -> None:
    """On CPU the layer loops over chunks or tokens; on meta it issues them at once. FlopCounterMode per
    submodule is 2 x the closed form per stage either way."""
    s = spec(**kw)
    module = torch_layer.build(s, device)
    args, kwargs = torch_layer.make_args(s, device)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        module(*args, **kwargs)
    by_stage: dict[str, int] = {}
    for name, ops in fc.get_flop_counts().items():
        if "." in name:
            stage = kind.relabel(name.split(".", 1)[1], "")
            by_stage[stage] = by_stage.get(stage, 0) + sum(ops.values())
    by_stage.pop("other", None)
    closed = counts.closed_form(s)
    assert by_stage == {st: 2 * n for st, n in closed.items() if n}
    assert fc.get_total_flops() == 2 * sum(closed.values())
