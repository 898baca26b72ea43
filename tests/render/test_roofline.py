"""The roofline renderer: every stage and both kernels appear, with the upper-bound caveat."""

from __future__ import annotations

from attncli.analyses.roofline import Roofline, estimate
from attncli.kinds.standard.traffic import LayerDims
from attncli.render.common import render_table_text
from attncli.render.roofline import markdown, seconds, table


def _roofline() -> Roofline:
    dims = LayerDims(batch=1, heads=8, kv_heads=8, head_dim=64, dim=512, q_len=128, kv_len=128, new_kv_tokens=128)
    # Closed form, MACs: projections 128*512*512, QK^T and x V 128*128*512.
    macs = {"q_proj": 128 * 512 * 512, "k_proj": 128 * 512 * 512, "v_proj": 128 * 512 * 512,
            "qk": 128 * 128 * 512, "av": 128 * 128 * 512, "out_proj": 128 * 512 * 512}
    return estimate(dims, macs, macs, "a100-sxm-80gb", "float32")


def test_markdown_has_every_stage_exactly() -> None:
    r = _roofline()
    md = markdown(r)
    for label in ("attention (QK^T, softmax, x V)", "QK^T", "softmax", "weights x V", "W_O", "total (effective FLOPs)",
                  "total (dense FLOPs)"):
        assert f"| {label} |" in md, label
    # Exact counts: q proj is 2 * 128*512*512 = 67,108,864 FLOPs.
    assert "| 67,108,864 |" in md and "upper bound" in md and "NVIDIA A100 SXM 80GB" in md


def test_table_renders() -> None:
    text = render_table_text(table(_roofline()), width=140)
    assert "fused" in text and "naive" in text and "memory" in text


def test_seconds() -> None:
    assert seconds(1.5e-5) == "15.0 us" and seconds(2.0) == "2.00 s" and seconds(3e-9) == "3.00 ns"
    assert seconds(0.0041) == "4.10 ms" and seconds(0.0009999) == "1.00 ms"  # trailing zeros kept, rounding up
