"""Running the permutation test: the layer on ``x`` and on ``P x``, for every encoding."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from attncli.analyses import timemodel
from attncli.analyses.permute import encodings as enc
from attncli.analyses.permute.parse import (
    Rows,
    check_dtype,
    check_self_attention,
    check_size,
    parse_encodings,
    parse_permutation,
    parse_tokens,
)
from attncli.analyses.permute.results import (
    SHOW_FEATURES,
    SHOW_TOKENS,
    Case,
    MaskCheck,
    PermuteReport,
    RopeInfo,
    TokenRow,
)
from attncli.analyses.permute.verdict import notes, reasons, verdict
from attncli.layer.layout import along_sequence, first_item, layout_name, sequence_axis, tokens_in_layout
from attncli.layer.modules import build, make_inputs
from attncli.spec import AttnSpec, SpecError

TORCH_DTYPES: dict[str, torch.dtype] = {"float64": torch.float64, "float32": torch.float32}
"""``--dtype`` (:data:`attncli.choices.PERMUTE_DTYPES`) as torch dtypes."""


def _per_slot_max(t: Tensor, axis: int) -> Tensor:
    """max over every axis but ``axis``: (L,)."""
    return t.movedim(axis, 0).reshape(t.shape[axis], -1).amax(dim=1)


Masks = tuple[Tensor | None, Tensor | None]


def _forward(module: nn.Module, spec: AttnSpec, x: Tensor, masks: Masks, table: Tensor | None) -> Tensor:
    """One self-attention call ``module(x', x', x')`` with ``x' = x (+ table)``."""
    xin = x if table is None else x + along_sequence(table, spec)
    key_padding_mask, attn_mask = masks
    out: Tensor = module(xin, xin, xin, key_padding_mask=key_padding_mask,
                         need_weights=spec.need_weights, attn_mask=attn_mask,
                         average_attn_weights=spec.average_weights)[0]
    return out


def _permuted_masks(masks: Masks, idx: Tensor) -> Masks:
    """The masks moved with their tokens: key padding ``m[perm]``, attn mask ``M[perm][:, perm]``."""
    kpm, attn_mask = masks
    kpm = None if kpm is None else kpm.index_select(-1, idx)
    attn_mask = None if attn_mask is None else attn_mask.index_select(0, idx).index_select(1, idx)
    return kpm, attn_mask


def _case(encoding: str, y: Tensor, y_perm: Tensor, x: Tensor, perm: tuple[int, ...],
          spec: AttnSpec, tolerance: float, show: bool) -> Case:
    axis = sequence_axis(spec)
    for out in (y, y_perm):
        if not bool(torch.isfinite(out).all()):
            # NOTE: huge tokens (1e200) overflow the scores to inf and the softmax to NaN; a
            # NaN difference compares as "not equivariant" and JSON cannot carry it.
            raise SpecError("--tokens", f"the layer's output is not finite with these tokens (encoding "
                                        f"{encoding}): the values overflow {x.dtype}; use smaller token values")
    idx = torch.tensor(perm)
    expected = y.index_select(axis, idx)  # P f(x): slot j holds f(x)[perm[j]]
    diff = (y_perm - expected).abs()
    max_diff = float(diff.max())
    per_slot = _per_slot_max(diff, axis)  # (L,): slot j is about token perm[j]
    inverse = [0] * len(perm)
    for slot, token in enumerate(perm):
        inverse[token] = slot
    token_diffs = tuple(float(per_slot[inverse[i]]) for i in range(len(perm)))
    rows = None
    if show:
        x0, y0, yp0 = first_item(x, spec), first_item(y, spec), first_item(y_perm, spec)
        rows = tuple(TokenRow(
            token=i, slot_after=inverse[i], input=tuple(x0[i].tolist()), before=tuple(y0[i].tolist()),
            after=tuple(yp0[inverse[i]].tolist()),
            max_abs_diff=float((yp0[inverse[i]] - y0[i]).abs().max())) for i in range(len(perm)))
    return Case(encoding=encoding, description=enc.describe(encoding), max_abs_diff=max_diff,
                equivariant=max_diff <= tolerance, max_abs_output=float(y.abs().max()),
                token_diffs=token_diffs, rows=rows)


def _degenerate(spec: AttnSpec, perm: tuple[int, ...], x: Tensor, x_perm: Tensor) -> str | None:
    if spec.seq == 1:
        return ("a single token has only one order (--seq 1): there is nothing to permute, so "
                "f(P x) = P f(x) holds for any layer, with or without positional encoding")
    if list(perm) == sorted(perm):
        return ("the identity permutation moves no token: f(P x) = P f(x) holds for any layer, "
                "with or without positional encoding")
    if torch.equal(x, x_perm):
        moved = [i for i, p in enumerate(perm) if i != p]
        return (f"the permutation only exchanges identical tokens (slots {moved}), so P x = x: the "
                "layer sees the same input twice and the test cannot show what it does with order")
    return None


def permute_test(spec: AttnSpec, *, permutation: str | Sequence[int] | None = None,
                 encodings: Sequence[str] | None = None, tolerance: float | None = None,
                 dtype: str = "float64",
                 tokens: str | Rows = "auto",
                 on_estimate: Callable[[timemodel.Estimate], None] | None = None) -> PermuteReport:
    """Compare ``f(P x)`` with ``P f(x)`` for each encoding; see the module docstring.

    Raises :class:`SpecError` (naming the flag) for a malformed permutation or tokens, an
    unknown encoding or dtype, a non-positive tolerance or cross-attention settings, or a
    layer the time model (:mod:`attncli.analyses.timemodel`) says takes longer than its limit;
    ``on_estimate`` is given the estimate of an allowed run before it starts.
    """
    check_self_attention(spec)
    tol = check_dtype(dtype, tolerance)
    check_size(spec, dtype)
    perm = parse_permutation(permutation, spec.seq, spec.seed)
    chosen = parse_encodings(encodings)
    source, rows = parse_tokens(tokens, spec)
    estimate = timemodel.check(timemodel.permute_estimate(spec, dtype, chosen))
    if on_estimate is not None:
        on_estimate(estimate)
    torch_dtype = TORCH_DTYPES[dtype]

    inputs = make_inputs(spec, dtype=torch_dtype)
    x = inputs.query if rows is None else tokens_in_layout(torch.tensor(rows, dtype=torch_dtype), spec)
    masks: Masks = (inputs.key_padding_mask, inputs.attn_mask)
    axis = sequence_axis(spec)
    idx = torch.tensor(perm)
    x_perm = x.index_select(axis, idx)  # P x: slot j holds token perm[j]
    show = spec.seq <= SHOW_TOKENS and spec.dim <= SHOW_FEATURES

    module = build(spec).to(torch_dtype)
    cases: list[Case] = []
    rope: RopeInfo | None = None
    with torch.no_grad():
        for name in chosen:
            table = enc.additive_table(name, spec, torch_dtype)
            if name == "rope":
                layer = enc.rope_ready(module, spec)
                stand_in_diff = None
                if layer is not module:
                    stand_in_diff = float((_forward(layer, spec, x, masks, None)
                                           - _forward(module, spec, x, masks, None)).abs().max())
                with enc.rope_attached(layer, spec.head_dim) as calls:
                    y = _forward(layer, spec, x, masks, None)
                    y_perm = _forward(layer, spec, x_perm, masks, None)
                if calls[0] == 0:
                    raise RuntimeError(f"RoPE hooks never ran in {type(layer).__name__}")
                via = ("hooks on the q and k projections of the layer itself" if layer is module else
                       "the split implementation loaded with nn.MultiheadAttention's own weights "
                       "(MHA cannot be hooked between its projections and its scores)")
                rope = RopeInfo(via=via, acts=enc.rope_acts(spec), stand_in_max_abs_diff=stand_in_diff)
            else:
                y = _forward(module, spec, x, masks, table)
                y_perm = _forward(module, spec, x_perm, masks, table)
            cases.append(_case(name, y, y_perm, x, perm, spec, tol, show))

        mask_check = None
        if spec.mask != "none" or spec.window is not None:
            moved = float((_forward(module, spec, x_perm, _permuted_masks(masks, idx), None)
                           - _forward(module, spec, x, masks, None).index_select(axis, idx)).abs().max())
            mask_check = MaskCheck(mask="window" if spec.window is not None else spec.mask,
                                   fixed_max_abs_diff=cases[0].max_abs_diff,
                                   moved_max_abs_diff=moved, moved_equivariant=moved <= tol)

    degenerate = _degenerate(spec, perm, x, x_perm)
    why = reasons(spec, cases, tol, degenerate, rope)
    fixed = tuple(i for i, p in enumerate(perm) if i == p)
    return PermuteReport(
        spec=spec, permutation=perm, tolerance=tol, dtype=dtype, encodings=chosen, tokens=source,
        layout=layout_name(spec).split(" ")[0], sequence_axis=axis, input_shape=tuple(x.shape),
        fixed_tokens=fixed, cases=tuple(cases), holds=not why, degenerate=degenerate,
        reasons=why, verdict=verdict(cases, tol, why, fixed),
        mask_check=mask_check, rope=rope,
        notes=notes(spec, source, dtype, tol, show, mask_check, rope))
