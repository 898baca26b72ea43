"""``attncli.render.sweep`` on a hand-built report: every count shown, exact counts in Markdown.

The points are the closed form of fused self-attention at B=1, E=512 (projections and W_O
B*L*E*E, QK^T and weights x V B*L*L*E), written out here.
"""

from __future__ import annotations

import math

import pytest

from attncli.analyses.sweep import Point, SweepReport
from attncli.render.common import human, render_table_text
from attncli.render.sweep import chart_lines, markdown, table
from attncli.spec import AttnSpec

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


def test_chart_bars_are_on_a_log_scale() -> None:
    """A bar is width * log(total / floor) / log(max / floor), floor = half the smallest total, from the
    closed-form totals of the two points: L=128's bar is not empty (it was on the linear scale)."""
    import math

    small, big = _point(128).flops, _point(256).flops
    lines = chart_lines(REPORT, width=40)
    assert lines[0].count("#") == round(40 * math.log(2) / math.log(big / (small / 2))) > 0
    assert lines[1].count("#") == 40
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


W = 128


def _window_pairs(n: int) -> int:
    """Causal sliding window W, self-attention, n queries: query i sees min(i + 1, W) keys, so
    sum_i min(i + 1, W) = n(n + 1)/2 for n <= W, else W(W + 1)/2 + (n - W) W visible pairs."""
    return n * (n + 1) // 2 if n <= W else W * (W + 1) // 2 + (n - W) * W


def _windowed(n: int) -> Point:
    """QK^T and weights x V cost E MACs per visible pair (B = 1, H*d = E); projections as dense."""
    p = _point(n)
    eff = dict(p.by_stage, qk=E * _window_pairs(n), av=E * _window_pairs(n))
    return Point(n, p.by_stage, p.flops, p.params, p.attn_matrix_bytes, effective_by_stage=eff)


# pairs 2080, 8256, 24640, 57408, 122944 at L = 64 .. 1024: local exponents log2(8256/2080) = 1.99,
# log2(24640/8256) = 1.58, log2(57408/24640) = 1.22, log2(122944/57408) = 1.10.
WINDOWED = SweepReport(AttnSpec(dim=E, heads=8, batch=1, seq=64, impl="sdpa", window=W), "seq",
                       tuple(_windowed(n) for n in (64, 128, 256, 512, 1024)),
                       {"qk": 2.0, "total": 1.5, "effective_qk": 1.4, "effective_total": 1.2, "params": 0.0},
                       "float32")


def test_masked_table_shows_effective_counts_and_local_exponents() -> None:
    text = render_table_text(table(WINDOWED), width=80)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "dense MACs" in text and "effective MACs" in text and "visible" in text
    # after the dense tables, the effective table's row for L = 256: QK^T eff., total eff., exp dense, exp eff.
    eff_rows = text.split("effective MACs")[1].split("growth exponent")[0]
    row = next(line.split() for line in eff_rows.splitlines() if line.split()[:1] == ["256"])
    assert " ".join(row[1:3]) == human(E * 24640)
    assert row[-2:] == ["2.00", f"{math.log2(24640 / 8256):.2f}"] == ["2.00", "1.58"]
    last = next(line.split() for line in eff_rows.splitlines() if line.split()[:1] == ["1024"])
    assert last[-1] == f"{math.log2(122944 / 57408):.2f}" == "1.10"
    first = next(line.split() for line in eff_rows.splitlines() if line.split()[:1] == ["64"])
    assert first[-2:] == ["-", "-"]  # no point before the first
    expected = text[text.index("expected:"):].replace("\n", " ")
    assert "window 128" in expected and "W L (1)" in expected and "dense:" in expected


def test_unmasked_table_has_no_effective_section() -> None:
    text = render_table_text(table(REPORT), width=140)
    assert "effective" not in text and "dense MACs" not in text
    assert "effective" not in markdown(REPORT).lower()


def test_masked_markdown_is_valid_and_exact() -> None:
    cmarkgfm = pytest.importorskip("cmarkgfm")
    md = markdown(WINDOWED)
    # the exact effective counts of L = 1024: E * 122944 MACs for QK^T and for weights x V
    assert f"| 1024 | {E * 122944:,} | {E * 122944:,} |" in md
    assert f"| {math.log2(122944 / 57408):.2f} |" in md
    assert "Dense MACs per stage" in md and "Effective MACs" in md
    html = cmarkgfm.github_flavored_markdown_to_html(md)
    assert html.count("<table>") == 4  # dense, params/memory, effective, exponents
    assert "`W(W+1)/2`" not in md and "W(W+1)/2 + (L-W)W" in md


def test_title_does_not_name_a_swept_window() -> None:
    """--window 64,128,256: the title says the window is W, not the first (or base) value."""
    from attncli.render.sweep import _title

    spec = AttnSpec(dim=E, heads=8, batch=1, seq=1024, impl="sdpa", window=64)
    title = _title(SweepReport(spec, "window", (), {}, "float32"))
    assert title.startswith("attncli sweep --window:") and "window W" in title and "64" not in title
    assert ", window 64 with W_O" in _title(SweepReport(spec, "seq", (), {}, "float32"))


def test_head_dim_sweep_is_named_by_its_flag() -> None:
    """The spec field d_head is --head-dim to the user: title, column head and Markdown."""
    from attncli.render.sweep import _title

    def point(d: int) -> Point:
        by_stage = {"q_proj": d, "qk": d}
        return Point(d, by_stage, 2 * d, d, 0, effective_by_stage=dict(by_stage))

    r = SweepReport(AttnSpec(dim=E, heads=8, batch=1, seq=16, impl="split"), "d_head", (point(32), point(64)),
                    {"qk": 1.0}, "float32")
    assert _title(r).startswith("attncli sweep --head-dim:")
    text, md = render_table_text(table(r), width=80), markdown(r)
    assert "d_head" not in text and "d_head" not in md
    assert text.split("\n")[2].split()[0] == "head-dim" and "| head-dim |" in md
