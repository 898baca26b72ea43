"""``attncli.render.flops``: the conclusion a reader needs, on a real count.

At B=2, L=S=6, E=16 the closed form gives projections B*L*E*E = 3,072 MACs each and QK^T,
weights x V B*L*S*E = 1,152 each: W_O adds 3,072 to 3*3,072 + 2*1,152 = 11,520, +26.7%.
"""

from __future__ import annotations

from attncli.analyses.flops import count_flops
from attncli.render.common import render_table_text
from attncli.render.flops import conclusion, markdown, table
from attncli.spec import AttnSpec

REPORT = count_flops(AttnSpec(dim=16, heads=4, batch=2, seq=6, impl="split"))


def test_conclusion_names_what_heads_and_w_o_cost() -> None:
    """Heads cost no FLOPs but H score matrices: B*H*L*S float32 = 2*4*6*6*4 = 1,152 bytes
    (1.12 KiB) against 2*1*6*6*4 = 288 for one head."""
    assert conclusion(REPORT) == ("Splitting into 4 heads costs no FLOPs, but the heads hold 4x the attention-matrix "
                                  "memory (1.12 KiB against 288 B for one head); W_O adds 3.07 K (+26.7%).")


def test_configured_layer_first_and_marked() -> None:
    """The layer as configured (4 heads with W_O: 14,592 MACs) leads the table and is marked."""
    text = render_table_text(table(REPORT), width=120)
    first = next(line for line in text.splitlines() if "14,592" in line or "11,520" in line)
    assert first.startswith("4 heads + W_O *") and "14,592" in first
    md = markdown(REPORT)
    assert "**4 heads, with W_O (as configured)**" in md


def test_table_and_markdown_show_the_exact_counts() -> None:
    text = render_table_text(table(REPORT), width=120)
    md = markdown(REPORT)
    for total in ("11,520", "14,592"):  # without and with W_O
        assert total in text and total in md
    assert "MACs" in text and "MACs" in md  # the convention is named
