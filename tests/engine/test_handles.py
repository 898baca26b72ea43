"""The fvcore handles attncli adds, and the stage every counted op is attributed to.

Expected counts are closed forms written out in each test: fvcore counts one multiply-add as
one flop, so ``(n, k) @ (k, m)`` is ``n * k * m``.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from fvcore.nn import FlopCountAnalysis
from torch import Tensor, nn

from attncli.analyses.flops import count_module
from attncli.engine.handles import HANDLES, NATIVE_MHA, SDPA, STAGES, all_handles


def quiet(model: nn.Module, *args: Tensor) -> Any:
    return (FlopCountAnalysis(model, args).unsupported_ops_warnings(False)
            .uncalled_modules_warnings(False))


class Sdpa(nn.Module):
    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        return F.scaled_dot_product_attention(q, k, v)


class Baddbmm(nn.Module):
    def forward(self, m: Tensor, a: Tensor, b: Tensor) -> Tensor:
        return torch.baddbmm(m, a, b)


def test_fvcore_alone_loses_sdpa_and_baddbmm() -> None:
    """The trap the handles close: fvcore's defaults count these ops as 0, silently."""
    q, k, v = torch.empty(2, 3, 5, 4, device="meta"), torch.empty(2, 3, 7, 4, device="meta"), \
        torch.empty(2, 3, 7, 6, device="meta")
    analysis = quiet(Sdpa(), q, k, v)
    assert analysis.total() == 0
    assert analysis.unsupported_ops()[SDPA] == 1
    m, a, b = (torch.empty(2, 5, 7, device="meta"), torch.empty(2, 5, 4, device="meta"),
               torch.empty(2, 4, 7, device="meta"))
    assert quiet(Baddbmm(), m, a, b).total() == 0


def test_sdpa_handle_counts_both_matmuls() -> None:
    # q (2, 3, 5, 4), k (2, 3, 7, 4), v (2, 3, 7, 6): QK^T 2*3 * 5*4*7, AV 2*3 * 5*7*6.
    q, k, v = torch.empty(2, 3, 5, 4, device="meta"), torch.empty(2, 3, 7, 4, device="meta"), \
        torch.empty(2, 3, 7, 6, device="meta")
    analysis = quiet(Sdpa(), q, k, v).set_op_handle(**HANDLES)
    assert analysis.total() == 6 * 5 * 4 * 7 + 6 * 5 * 7 * 6
    counted = count_module(Sdpa(), (q, k, v))
    assert counted.by_stage["qk"] == 6 * 5 * 4 * 7
    assert counted.by_stage["av"] == 6 * 5 * 7 * 6


def test_baddbmm_handle_counts_the_matmul_not_the_add() -> None:
    # (2, 5, 4) @ (2, 4, 7): 2*5*4*7; adding m is not a multiply-add.
    m, a, b = (torch.empty(2, 5, 7, device="meta"), torch.empty(2, 5, 4, device="meta"),
               torch.empty(2, 4, 7, device="meta"))
    assert quiet(Baddbmm(), m, a, b).set_op_handle(**HANDLES).total() == 2 * 5 * 4 * 7


def test_native_mha_fast_path_is_counted_per_stage() -> None:
    """MHA's inference fast path (CPU, no grad) is one op; fvcore alone counts 0 for it."""
    b, n, e = 2, 5, 8
    mha = nn.MultiheadAttention(e, 2, batch_first=True).eval()
    x = torch.randn(b, n, e)

    class SelfAttention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mha = mha

        def forward(self, x: Tensor) -> Tensor:
            out: Tensor = self.mha(x, x, x)[0]
            return out

    with torch.no_grad():
        assert quiet(SelfAttention(), x).total() == 0
        counted = count_module(mha, (x, x, x))  # one tensor three times: self-attention
    assert [op.kind for op in counted.ops] == [NATIVE_MHA]
    # Closed forms (n tokens): projections B*n*E*E each, QK^T and AV B*n*n*E each.
    assert counted.by_stage == {"q_proj": b * n * e * e, "k_proj": b * n * e * e, "v_proj": b * n * e * e,
                                "qk": b * n * n * e, "av": b * n * n * e, "out_proj": b * n * e * e}


def test_all_handles_keeps_fvcore_defaults() -> None:
    handles = all_handles()
    assert {"aten::linear", "aten::matmul", "aten::bmm", "aten::addmm", "aten::einsum"} <= set(handles)
    assert set(HANDLES) <= set(handles)


class Block(nn.Module):
    """Attention written with a weight-matrix matmul, a packed kv projection, then an MLP."""

    def __init__(self, e: int) -> None:
        super().__init__()
        self.w_q = nn.Parameter(torch.empty(e, e, device="meta"))
        self.kv = nn.Linear(e, 2 * e, device="meta")
        self.proj = nn.Linear(e, e, device="meta")
        self.fc1 = nn.Linear(e, 4 * e, device="meta")
        self.fc2 = nn.Linear(4 * e, e, device="meta")

    def forward(self, x: Tensor) -> Tensor:
        q = x @ self.w_q                       # a projection written as matmul
        k, v = self.kv(x).chunk(2, dim=-1)      # packed k and v
        # (b, l, e) @ (b, e, l) -> (b, l, l)
        w = torch.softmax(q @ k.transpose(-2, -1) / 2.0, dim=-1)
        # (b, l, l) @ (b, l, e) -> (b, l, e)
        y = self.proj(w @ v)
        out: Tensor = self.fc2(torch.relu(self.fc1(y)))
        return out


def test_stages_follow_the_data_not_the_names() -> None:
    b, n, e = 2, 3, 4
    counted = count_module(Block(e), (torch.empty(b, n, e, device="meta"),))
    bne = b * n * e
    assert counted.by_stage == {
        "q_proj": bne * e, "k_proj": bne * e, "v_proj": bne * e,  # kv split evenly: E columns each
        "qk": b * n * e * n, "av": b * n * n * e, "out_proj": bne * e,
        "other": bne * 4 * e + b * n * 4 * e * e,  # the MLP is not attention
    }
    assert counted.stages_add_up
    assert counted.total == sum(counted.by_stage.values())
    assert counted.stage_sources["k_proj"] == ("kv: aten::linear",)
    assert counted.stage_sources["q_proj"] == ("(layer): aten::matmul",)


class TwoLayers(nn.Module):
    """Two attention layers in a row: the second one's projections read the first one's W_O."""

    def __init__(self, e: int) -> None:
        super().__init__()
        self.a = nn.MultiheadAttention(e, 2, batch_first=True, device="meta")
        self.b = nn.MultiheadAttention(e, 2, batch_first=True, device="meta")

    def forward(self, x: Tensor) -> Tensor:
        y = self.a(x, x, x, need_weights=False)[0]
        out: Tensor = self.b(y, y, y)[0]
        return out


def test_two_layers_attribute_each_stage_twice() -> None:
    b, n, e = 2, 3, 4
    counted = count_module(TwoLayers(e), (torch.empty(b, n, e, device="meta"),))
    one = {"q_proj": b * n * e * e, "k_proj": b * n * e * e, "v_proj": b * n * e * e,
           "qk": b * n * n * e, "av": b * n * n * e, "out_proj": b * n * e * e}
    assert counted.by_stage == {k: 2 * v for k, v in one.items()}
    assert set(counted.by_stage) == set(STAGES)


def test_shape_arithmetic_never_links_stages() -> None:
    """``q.size(0)`` feeding a view of k must not make the q projection a k projection too."""

    class Views(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.q = nn.Linear(4, 4, device="meta")
            self.k = nn.Linear(4, 4, device="meta")

        def forward(self, x: Tensor) -> Tensor:
            q = self.q(x)
            k = self.k(x).view(q.size(0), q.size(1), 4)
            out: Tensor = q @ k.transpose(-2, -1)
            return out

    counted = count_module(Views(), (torch.empty(2, 3, 4, device="meta"),))
    assert counted.by_stage["q_proj"] == counted.by_stage["k_proj"] == 2 * 3 * 4 * 4
    assert counted.stage_sources["q_proj"] == ("q: aten::linear",)


def test_count_module_takes_dict_outputs_and_refuses_none() -> None:
    class DictOut(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 3, device="meta")

        def forward(self, x: Tensor) -> dict[str, Tensor]:
            return {"y": self.lin(x)}

    class Nothing(nn.Module):
        def forward(self, x: Tensor) -> None:
            return None

    x = torch.empty(2, 4, device="meta")
    assert count_module(DictOut(), (x,)).total == 2 * 4 * 3  # (2, 4) @ (4, 3)
    with pytest.raises(TypeError, match="no tensor"):
        count_module(Nothing(), (x,))


def test_registry_refuses_a_second_description() -> None:
    """One op, one description: registering an op twice is a bug, not a silent override."""
    from attncli.engine.handles import REGISTRY, register

    before = dict(REGISTRY)
    with pytest.raises(RuntimeError, match="already registered"):
        register(SDPA, uncounted_why="would hide the attention matmuls")
    assert before == REGISTRY


def test_registry_views_agree() -> None:
    """Every op with a handle of its own either is a matmul or splits into stages."""
    from attncli.engine.handles import MATMUL_OPERANDS, REGISTRY, STAGE_SPLITS, UNCOUNTED_WHY

    assert set(HANDLES) <= set(MATMUL_OPERANDS) | set(STAGE_SPLITS)
    assert not set(UNCOUNTED_WHY) & (set(HANDLES) | set(MATMUL_OPERANDS))
    assert set(HANDLES) == {"aten::baddbmm", SDPA, NATIVE_MHA}  # fvcore 0.1.5 lacks exactly these
    assert all(info.kind == kind for kind, info in REGISTRY.items())
