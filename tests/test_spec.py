"""AttnSpec: defaults resolve, and every bad setting names its flag."""

from __future__ import annotations

import pytest

from attncli.spec import AttnSpec, SpecError


def test_defaults_resolve() -> None:
    s = AttnSpec(dim=512, heads=8, seq=10).validate()
    assert (s.s, s.k_dim, s.v_dim, s.head_dim) == (10, 512, 512, 64)
    assert s.is_self_attention
    assert AttnSpec(add_bias_kv=True, add_zero_attn=True, seq=7).s_total == 9


@pytest.mark.parametrize(("changes", "flag"), [
    ({"dim": 510}, "--heads"),
    ({"heads": 0}, "--heads"),
    ({"dim": -4}, "--dim"),
    ({"batch": 0}, "--batch"),
    ({"seq": 0}, "--seq"),
    ({"kv_seq": 0}, "--kv-seq"),
    ({"kdim": 0}, "--kdim"),
    ({"vdim": -1}, "--vdim"),
    ({"dropout": 1.0}, "--dropout"),
    ({"impl": "flash"}, "--impl"),
    ({"mask": "diagonal"}, "--mask"),
    ({"impl": "fused", "kdim": 7}, "--kdim"),
    ({"impl": "fused", "vdim": 7}, "--vdim"),
    ({"impl": "fused", "kv_seq": 3}, "--kv-seq"),
    ({"unbatched": True, "batch": 4}, "--unbatched"),
    ({"mask": "causal", "kv_seq": 4}, "--mask"),
    ({"mask": "padding", "seq": 1}, "--mask"),
])
def test_bad_settings_name_their_flag(changes: dict[str, object], flag: str) -> None:
    with pytest.raises(SpecError) as info:
        AttnSpec(**changes).validate()  # type: ignore[arg-type]
    assert info.value.flag == flag
    assert str(info.value).startswith(flag)
    assert "\n" not in str(info.value)


def test_fused_accepts_explicit_defaults() -> None:
    # kdim == dim and kv-seq == seq are not cross-attention, so fused takes them.
    AttnSpec(impl="fused", kdim=512, vdim=512, kv_seq=10).validate()


def test_per_head_refuses_more_heads_than_it_can_build() -> None:
    # One module per head: 4,096 heads took 83 s and 1.2 GiB, 16,384 ran out of memory.
    AttnSpec(dim=1024, heads=1024, impl="per-head").validate()
    with pytest.raises(SpecError, match="per-head builds one module per head") as info:
        AttnSpec(dim=4096, heads=4096, impl="per-head").validate()
    assert info.value.flag == "--heads"
    AttnSpec(dim=4096, heads=4096, impl="split").validate()
