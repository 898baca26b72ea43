"""``attncli.render.sweep`` on a hand-built report: every count shown, exact counts in Markdown.

The points are the closed form of fused self-attention at B=1, E=512 (projections and W_O
B*L*E*E, QK^T and weights x V B*L*L*E), written out here.
"""

from __future__ import annotations

from attncli.render.common import human, render_table_text
from attncli.render.sweep import chart_lines, markdown, table
from attncli.spec import AttnSpec
from attncli.sweep import Point, SweepReport

E = 512


def _point(n: int) -> Point:
    proj, attn = n * E * E, n * n * E
    by_stage = {"q_proj": proj, "k_proj": proj, "v_proj": proj, "qk": attn, "av": attn, "out_proj": proj}
    return Point(n, by_stage, sum(by_stage.values()), 4 * E * E + 4 * E, 8 * n * n * 4)


REPORT = SweepReport(AttnSpec(dim=E, heads=8, batch=1, seq=128, impl="fused"), "seq",
                     (_point(128), _point(256)), {"qk": 2.0, "total": 1.2, "params": 0.0}, "float32")


def test_table_shows_every_point_and_the_exponents() -> None:
    text = render_table_text(table(REPORT))
    for p in REPORT.points:
        assert human(p.flops) in text and human(p.by_stage["qk"]) in text
    assert "2.00" in text and "0.00" in text
    assert "growth exponent" in text
    assert "┏" not in text  # one table style: no heavy box


def test_markdown_has_exact_counts() -> None:
    md = markdown(REPORT)
    assert f"{sum(_point(256).by_stage.values()):,}" in md
    assert "| 128 |" in md and "| 256 |" in md


def test_chart_bars_grow_with_the_total() -> None:
    lines = chart_lines(REPORT, width=10)
    assert len(lines) == 2 and lines[0].count("#") < lines[1].count("#") == 10


def test_chart_bars_start_at_zero() -> None:
    """Bars proportional to the total: L=128 costs 6*128*E^2... against 256's, so its bar is
    the ratio of the two closed-form totals long, not one '#' against the widest."""
    small, big = _point(128).flops, _point(256).flops
    lines = chart_lines(REPORT, width=40)
    assert lines[0].count("#") == round(small / big * 40)
    near = SweepReport(REPORT.spec, "seq", (_point(1000), _point(1001)), {}, "float32")
    a, b = (line.count("#") for line in chart_lines(near, width=40))
    assert a == b == 40  # 1000 and 1001 tokens cost within 0.2% of each other


def test_memory_exponent_is_shown() -> None:
    """The attention matrix is B*H*L*L scores (8*n*n*4 bytes here): exponent 2 over L."""
    text = render_table_text(table(REPORT), width=140)
    assert "attn matrix" in text
    assert markdown(REPORT).count("2.00") >= 2  # QK^T and the attention matrix


def test_plot_series_merge_coinciding_stages() -> None:
    """At E=512 q, k, v and W_O are all L*E*E and QK^T = weights x V = L*L*E: three lines, not seven."""
    from attncli.render.sweep import _series

    exps = {"q_proj": 1.0, "k_proj": 1.0, "v_proj": 1.0, "qk": 2.0, "av": 2.0, "out_proj": 1.0}
    report = SweepReport(REPORT.spec, "seq", REPORT.points, exps, "float32")
    labels = [label for label, _ in _series(report)]
    assert labels == ["q proj = k proj = v proj = W_O (exp 1.00)", "QK^T = weights x V (exp 2.00)"]


def test_plot_draws_the_effective_total_when_masked() -> None:
    """Causal self-attention: each of the L queries sees i+1 keys, L(L+1)/2 pairs, so QK^T and
    weights x V each cost E*L(L+1)/2 effective MACs (closed form) against E*L*L dense."""
    from attncli.render.sweep import _totals

    def causal(n: int) -> Point:
        p = _point(n)
        eff = dict(p.by_stage, qk=E * n * (n + 1) // 2, av=E * n * (n + 1) // 2)
        return Point(p.value, p.by_stage, p.flops, p.params, p.attn_matrix_bytes, effective_by_stage=eff)

    report = SweepReport(REPORT.spec, "seq", (causal(128), causal(256)),
                         {"total": 1.2, "effective_total": 1.1}, "float32")
    (dense_label, dense), (eff_label, eff) = _totals(report)
    assert dense == [_point(128).flops, _point(256).flops]
    assert eff == [4 * 128 * E * E + 128 * 129 * E, 4 * 256 * E * E + 256 * 257 * E]
    assert "dense" in dense_label and "effective" in eff_label and "1.10" in eff_label
    assert len(_totals(REPORT)) == 1  # unmasked: one total, dense = effective


def test_title_names_the_mask() -> None:
    """A causal or windowed sweep says so in its title (the PNG's and the table's)."""
    from attncli.render.sweep import _title

    base = dict(dim=E, heads=8, batch=1, seq=128, impl="fused")
    assert ", causal with W_O" in _title(SweepReport(AttnSpec(**base, mask="causal"), "seq", (), {}, "float32"))
    assert ", window 64 with W_O" in _title(SweepReport(AttnSpec(**base, window=64), "seq", (), {}, "float32"))
    assert "causal" not in _title(REPORT) and "window" not in _title(REPORT)
