"""``attncli.analyses.report``: one document of shapes, FLOPs and the permutation test."""

from __future__ import annotations

from attncli.analyses.checks import budget
from attncli.analyses.report import PERMUTE_TOKENS, build_report, permute_spec
from attncli.spec import AttnSpec

SPEC = AttnSpec(dim=16, heads=4, batch=3, seq=12, impl="split").validate()


def test_permute_runs_on_a_small_slice() -> None:
    small = permute_spec(SPEC)
    assert (small.batch, small.seq, small.dim, small.heads) == (1, PERMUTE_TOKENS, 16, 4)


def test_report_holds_all_three_and_its_checks() -> None:
    r = build_report(SPEC)
    assert r.permute is not None and r.permute.holds and r.permute_skipped is None
    v = r.flops.get(4, True)
    # B*L*E*E per projection and W_O, B*L*L*E for QK^T and weights x V (B=3, L=12, E=16).
    assert v is not None and v.fvcore_flops == 4 * 3 * 12 * 16 * 16 + 2 * 3 * 12 * 12 * 16
    doc = r.with_checks([budget("max-flops", v.fvcore_flops, 1, "MACs")]).to_json()
    assert doc["schema"] == "attncli.report/2" and doc["config"]["seed"] == 0
    assert [c["passed"] for c in doc["checks"]] == [False]
    assert set(doc) >= {"shapes", "flops", "permute", "notes"}


def test_cross_attention_skips_the_permutation_test() -> None:
    r = build_report(SPEC.with_(kv_seq=7))
    assert r.permute is None and r.permute_skipped is not None and "cross-attention" in r.permute_skipped
