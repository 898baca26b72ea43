"""attncli's Gated DeltaNet layer against transformers' own ``Qwen3NextGatedDeltaNet`` (5.24) and its
torch functions, with the torch paths forced (no fla, no causal-conv1d kernels).

- The same weights (``load_state_dict``: transformers' names) give the same output in both forms;
  a decode step from the state of a run gives the last row of a longer run; the states attncli's
  layer returns are the ones transformers' cache keeps (shape, dtype, values).
- ``torch_chunk_gated_delta_rule`` under FlopCounterMode does 2 x the chunked closed form of the
  delta rule; ``torch_recurrent_gated_delta_rule`` writes its products as broadcast multiplies and
  sums, which FlopCounterMode counts as 0: its multiply-adds are counted here op by op instead.
- The real module does 2 x attncli's closed-form total under FlopCounterMode (on a decode step,
  less the recurrence FlopCounterMode cannot see), and holds the closed-form parameters, small on
  CPU and at Qwen3-Next-80B's published sizes on meta.
- attncli's layer run step by step on CPU counts per stage what its meta trace counts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from attncli.kinds.gdn import kind as gdn
from attncli.kinds.gdn import torch_layer as gdn_torch
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
from transformers import DynamicCache, Qwen3NextConfig  # noqa: E402
from transformers.models.qwen3_next import modeling_qwen3_next as M  # noqa: E402

SMALL = {"dim": 64, "linear_num_key_heads": 2, "linear_num_value_heads": 4, "linear_key_head_dim": 8,
         "linear_value_head_dim": 6, "linear_conv_kernel_dim": 4}
NEXT = {"dim": 2048, "linear_num_key_heads": 16, "linear_num_value_heads": 32, "linear_key_head_dim": 128,
        "linear_value_head_dim": 128, "linear_conv_kernel_dim": 4}
TORCH_PATHS = ("torch_chunk_gated_delta_rule", "torch_recurrent_gated_delta_rule", "causal_conv1d_fn",
               "causal_conv1d_update")


@pytest.fixture(autouse=True)
def torch_paths(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """transformers' torch functions, whatever kernels (fla, causal-conv1d) are installed."""
    yield from force_torch_paths(monkeypatch, M, TORCH_PATHS)


def config(sizes: dict[str, int], dtype: torch.dtype | None = None) -> Qwen3NextConfig:
    cfg = Qwen3NextConfig(hidden_size=sizes["dim"], linear_num_key_heads=sizes["linear_num_key_heads"],
                          linear_num_value_heads=sizes["linear_num_value_heads"],
                          linear_key_head_dim=sizes["linear_key_head_dim"],
                          linear_value_head_dim=sizes["linear_value_head_dim"],
                          linear_conv_kernel_dim=sizes["linear_conv_kernel_dim"], num_hidden_layers=1,
                          layer_types=["linear_attention"])
    if dtype is not None:
        cfg.dtype = dtype
    return cfg


def real_layer(sizes: dict[str, int] = SMALL, device: str = "cpu") -> Any:
    with torch.device(device):
        module = M.Qwen3NextGatedDeltaNet(config(sizes), layer_idx=0)
    if device != "meta":
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(1)
            for p in module.parameters():
                p.normal_(0, 0.3)
    # NOTE: transformers 5.25 calls causal_conv1d through a `kernels` wrapper module with the conv weight
    # as an argument; FlopCounterMode's module tracker then hooks a leaf that requires grad and asserts.
    # Inference counting needs no grads.
    return module.eval().requires_grad_(False)


def spec(sizes: dict[str, int] = SMALL, **kw: object) -> AttnSpec:
    return AttnSpec(**{**sizes, "impl": "gdn", "batch": 2, "mask": "causal", **kw}).validate()  # type: ignore[arg-type]


def mine_like(ref: Any, s: AttnSpec) -> gdn_torch.GatedDeltaNet:
    module = gdn_torch.build(s)
    module.load_state_dict(ref.state_dict(), strict=True)
    return module


def recurrence(s: AttnSpec) -> int:
    return sum(n for st, n in gdn.closed_form(s).items() if st.startswith("delta_"))


PAIR = Pair(real_layer, mine_like, spec, lambda: DynamicCache(config=config(SMALL)))


# ---------------------------------------------------------------------------- the same function
@pytest.mark.parametrize("form", ["chunked", "recurrent"])
@pytest.mark.parametrize("L", [7, 70])
@pytest.mark.parametrize("heads", [(2, 4), (4, 4)])
def test_same_output_as_transformers_with_the_same_weights(form: str, L: int, heads: tuple[int, int]) -> None:
    sizes = {**SMALL, "linear_num_key_heads": heads[0], "linear_num_value_heads": heads[1]}
    ref = real_layer(sizes)
    mine = mine_like(ref, spec(sizes, seq=L, gdn_form=form))
    x = tokens(L)
    with torch.no_grad():
        want = ref(x)
        got = mine(x)[0]
    assert got.shape == want.shape == (2, L, 64)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_a_decode_step_from_the_state_of_a_run_is_the_last_row_of_a_longer_run() -> None:
    check_decode_step_continues_a_run(PAIR)


@pytest.mark.parametrize("prefill", [2, 8])
def test_a_prefill_after_a_state_is_transformers_chunked_continuation(prefill: int) -> None:
    check_prefill_after_a_state_continues_chunked(PAIR, prefill)


def test_the_state_transformers_keeps_at_bfloat16() -> None:
    """The conv state at the layer's dtype, the recurrent state in float32, (B, C, K) and (B, HV, DK, DV)."""
    ref = real_layer().to(torch.bfloat16)
    cache = DynamicCache(config=config(SMALL))
    with torch.no_grad():
        ref(tokens(6).to(torch.bfloat16), cache=cache)
    conv, rec = cache.layers[0].conv_states[0], cache.layers[0].recurrent_states[0]
    assert conv.shape == (2, 2 * 2 * 8 + 4 * 6, 4) and conv.dtype == torch.bfloat16
    assert rec.shape == (2, 4, 8, 6) and rec.dtype == torch.float32
    s = spec(seq=1, cache=6)
    assert gdn.state_bytes(s, 2) == {"recurrent": rec.numel() * 4, "conv": conv.numel() * 2}
    assert gdn.kv_cache_bytes(s, 2) == rec.numel() * rec.element_size() + conv.numel() * conv.element_size()


# ---------------------------------------------------------------------------- transformers' delta rule, op by op
def rule_inputs(sizes: dict[str, int], L: int, device: str, B: int = 2) -> dict[str, torch.Tensor]:
    hk, hv = sizes["linear_num_key_heads"], sizes["linear_num_value_heads"]
    dk, dv = sizes["linear_key_head_dim"], sizes["linear_value_head_dim"]
    g = torch.Generator().manual_seed(0)

    def t(*shape: int) -> torch.Tensor:
        return torch.empty(shape, device="meta") if device == "meta" else torch.rand(shape, generator=g)

    return {"query": t(B, L, hk, dk), "key": t(B, L, hk, dk), "value": t(B, L, hv, dv), "g": -t(B, L, hv),
            "beta": t(B, L, hv)}


@pytest.mark.parametrize(("sizes", "L", "C", "device"), [
    (SMALL, 7, 64, "cpu"), (SMALL, 100, 64, "cpu"), (SMALL, 100, 16, "cpu"), (SMALL, 128, 32, "meta"),
    (NEXT, 4096, 64, "meta"), (NEXT, 1000, 64, "meta"),
])
def test_transformers_chunk_rule_is_the_chunked_closed_form(sizes: dict[str, int], L: int, C: int,
                                                            device: str) -> None:
    with FlopCounterMode(display=False) as fc:
        M.torch_chunk_gated_delta_rule(**rule_inputs(sizes, L, device), chunk_size=C, output_final_state=True,
                                       use_qk_l2norm_in_kernel=True)
    assert fc.get_total_flops() == 2 * recurrence(spec(sizes, seq=L, gdn_chunk=C, gdn_form="chunked"))


class StateProducts(TorchDispatchMode):
    """Multiply-adds written elementwise over state-shaped tensors: a product reduced by ``sum``
    (k^T S, q^T S) or accumulated by ``add`` (S + k delta^T), one per element; and every
    state-shaped product (those three and the decay, a scaling)."""

    def __init__(self, state_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape, self.macs, self.products = state_shape, 0, 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        if func is torch.ops.aten.sum.dim_IntList and tuple(args[0].shape) == self.shape:
            self.macs += args[0].numel()
        elif func is torch.ops.aten.add.Tensor and tuple(out.shape) == self.shape:
            self.macs += out.numel()
        if func is torch.ops.aten.mul.Tensor and tuple(out.shape) == self.shape:
            self.products += out.numel()
        return out


@pytest.mark.parametrize("L", [1, 5])
def test_transformers_recurrent_rule_is_the_recurrent_closed_form(L: int) -> None:
    inputs = rule_inputs(SMALL, L, "cpu")
    with FlopCounterMode(display=False) as fc:
        M.torch_recurrent_gated_delta_rule(**inputs, output_final_state=True, use_qk_l2norm_in_kernel=True)
    assert fc.get_total_flops() == 0  # broadcast multiplies and sums: FlopCounterMode has no formula for them
    with StateProducts((2, 4, 8, 6)) as counted:
        M.torch_recurrent_gated_delta_rule(**inputs, output_final_state=True, use_qk_l2norm_in_kernel=True)
    want = recurrence(spec(seq=L, gdn_form="recurrent"))
    assert want == 3 * 2 * 4 * L * 8 * 6
    assert counted.macs == want
    assert counted.products == want // 3 * 4  # and the decay's scaling, not a multiply-add


# ---------------------------------------------------------------------------- the real module
def real_flops(ref: Any, calls: list[tuple[torch.Tensor, bool]], sizes: dict[str, int]) -> int:
    """FlopCounterMode FLOPs of the last call (the ones before fill the cache)."""
    return int(count_last_call(ref, calls, DynamicCache(config=config(sizes))).get_total_flops())


@pytest.mark.parametrize(("sizes", "device"), [(SMALL, "cpu"), (NEXT, "meta")])
def test_real_module_does_the_closed_form(sizes: dict[str, int], device: str) -> None:
    ref = real_layer(sizes, device)
    e = sizes["dim"]

    def x(n: int) -> torch.Tensor:
        return torch.empty(2, n, e, device="meta") if device == "meta" else tokens(n, e)

    prefill = spec(sizes, seq=100)
    assert real_flops(ref, [(x(100), False)], sizes) == 2 * sum(gdn.closed_form(prefill).values())
    after_state = spec(sizes, seq=70, cache=9)
    assert real_flops(ref, [(x(9), True), (x(70), True)], sizes) == 2 * sum(gdn.closed_form(after_state).values())
    decode = spec(sizes, seq=1, cache=9)
    assert decode.form == "recurrent"
    seen = real_flops(ref, [(x(9), True), (x(1), True)], sizes)
    assert seen == 2 * (sum(gdn.closed_form(decode).values()) - recurrence(decode))  # the recurrence: elementwise


@pytest.mark.parametrize(("sizes", "device"), [(SMALL, "cpu"), (NEXT, "meta")])
def test_real_module_holds_the_closed_form_params(sizes: dict[str, int], device: str) -> None:
    ref = real_layer(sizes, device)
    want = gdn.params(spec(sizes, seq=4))
    got = {name: sum(p.numel() for n, p in ref.named_parameters() if n.split(".")[0] == name) for name in want}
    got["total"] = sum(p.numel() for p in ref.parameters())
    assert got == want
    assert set(ref.state_dict()) == set(gdn_torch.build(spec(sizes, seq=4), "meta").state_dict())


# ---------------------------------------------------------------------------- attncli's layer, step by step
@pytest.mark.parametrize("kw", [{"seq": 100}, {"seq": 100, "gdn_chunk": 16, "cache": 3},
                                {"seq": 6, "gdn_form": "recurrent"}, {"seq": 1, "cache": 5}])
def test_the_loops_count_what_the_meta_trace_counts(kw: dict[str, object]) -> None:
    """On CPU the layer loops over chunks or tokens; on meta it issues them at once (gdn_torch's
    docstring). FlopCounterMode per submodule on the loops is 2 x the closed form per stage."""
    s = spec(**kw)
    module = gdn_torch.build(s)
    args, kwargs = gdn_torch.make_args(s)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        module(*args, **kwargs)
    counts = fc.get_flop_counts()
    by_stage = {gdn.SCOPE_STAGES[name.rsplit(".", 1)[-1]]: sum(ops.values())
                for name, ops in counts.items() if "." in name}
    closed = gdn.closed_form(s)
    assert by_stage == {st: 2 * n for st, n in closed.items() if n}
    assert fc.get_total_flops() == 2 * sum(closed.values())
