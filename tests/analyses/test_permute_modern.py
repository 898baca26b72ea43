"""permute-test under the modern flags: GQA and a head size keep the symmetry, a window breaks
it by itself (like a causal mask), a KV cache is refused."""

from __future__ import annotations

import pytest

from attncli.analyses.permute import permute_test
from attncli.spec import AttnSpec, SpecError


@pytest.mark.parametrize("impl", ["split", "per-head", "fused", "sdpa"])
@pytest.mark.parametrize("changes", [{"kv_heads": 2}, {"kv_heads": 1, "d_head": 3}])
def test_grouped_query_heads_stay_permutation_equivariant(impl: str, changes: dict[str, int]) -> None:
    spec = AttnSpec(dim=16, heads=4, seq=5, impl=impl, **changes).validate()  # type: ignore[arg-type]
    report = permute_test(spec)
    assert report.cases[0].encoding == "none" and report.cases[0].equivariant
    assert report.holds, report.reasons


def test_a_window_breaks_the_symmetry_by_itself_and_says_so() -> None:
    spec = AttnSpec(dim=16, heads=4, seq=6, window=2, impl="split").validate()
    report = permute_test(spec, permutation="4,2,1,0,5,3")
    assert not report.cases[0].equivariant
    assert not report.holds
    assert any("sliding window itself breaks the symmetry" in r for r in report.reasons)
    assert report.mask_check is not None and report.mask_check.mask == "window"
    assert report.mask_check.moved_equivariant  # moved with the tokens, the window keeps it


def test_a_cache_is_refused() -> None:
    with pytest.raises(SpecError) as info:
        permute_test(AttnSpec(dim=16, heads=4, seq=3, cache=2, impl="split").validate())
    assert info.value.flag == "--cache"
