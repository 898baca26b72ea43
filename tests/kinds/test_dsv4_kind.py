"""DeepSeek-V4 as a kind (attncli.kinds.dsv4.kind): a layer of each type at DeepSeek-V4-Flash's
published sizes counted by the engine (fvcore with attncli's handles, FlopCounterMode beside it, the
closed forms) on the meta device. Expected per-layer numbers: transformers 5.25's own
DeepseekV4Attention at the same sizes, FlopCounterMode on meta (a decode step after a 131,071-token
prefill through its DynamicCache), measured 2026-12-07."""

from __future__ import annotations

import pytest

from attncli.spec import AttnSpec, SpecError

FLASH = {"dim": 4096, "heads": 64, "d_head": 512, "q_lora_rank": 1024, "o_groups": 8, "o_lora_rank": 1024,
         "window": 128, "mask": "causal", "impl": "dsv4", "index_n_heads": 64, "index_head_dim": 128, "batch": 1}
TYPES = {"sliding": (0, None), "csa": (4, 512), "hca": (128, None)}


def flash(kind: str, seq: int, cache: int = 0) -> AttnSpec:
    ratio, topk = TYPES[kind]
    return AttnSpec(**FLASH, compress_ratio=ratio, index_topk=topk, seq=seq, cache=cache).validate()


@pytest.mark.parametrize(("kind", "prefill", "decode", "params"), [
    ("sliding", 5_274_219_839_488, 115_343_360, 106_956_352),
    ("csa", 6_667_936_727_040, 2_550_398_976, 126_098_624),
    ("hca", 5_342_939_316_224, 186_646_528, 111_216_704),
])
def test_flash_layers_equal_transformers(kind: str, prefill: int, decode: int, params: int) -> None:
    from attncli.analyses.flops import count_variant

    for spec, want in ((flash(kind, 8192), prefill), (flash(kind, 1, 131_071), decode)):
        assert spec.kind == "dsv4"
        v = count_variant(spec, "bfloat16")
        assert v.agree, v.problems
        assert (v.fvcore_flops, v.params) == (want, params)


def test_chunked_prefill_and_effective() -> None:
    """64 tokens after 1,000: every stage agrees; effective QK^T on CSA counts per query its window
    min(p + 1, 128) = 128 keys and min(512, floor((p + 1) / 4)) entries, p = 1000 .. 1063."""
    from attncli.analyses.flops import count_variant

    v = count_variant(flash("csa", 64, 1000), "bfloat16")
    assert v.agree, v.problems
    pairs = sum(128 + min(512, (p + 1) // 4) for p in range(1000, 1064))
    assert v.effective_by_stage["qk"] == pairs * 64 * 512
    assert v.by_stage["qk"] == 64 * (127 + 64 + 1064 // 4) * 64 * 512


def test_one_line_refusals() -> None:
    with pytest.raises(SpecError) as err:
        AttnSpec(**{**FLASH, "window": None}, compress_ratio=4, index_topk=512, seq=8).validate()
    assert err.value.flag == "--window"
    with pytest.raises(SpecError) as err:
        AttnSpec(**{**FLASH, "mask": "padding"}, compress_ratio=4, seq=8).validate()
    assert err.value.flag == "--mask"
    with pytest.raises(SpecError) as err:  # the DeepSeek-V4 fields on another kind
        AttnSpec(dim=64, heads=4, o_groups=2).validate()
    assert err.value.flag == "--o-groups"


def test_roofline_kernels_carry_the_counts() -> None:
    """The roofline's kernels of a CSA decode step hold every dense MAC (naive) or effective MAC (fused)."""
    from attncli.kinds.dsv4 import kind

    spec = flash("csa", 1, 131_071)
    dense = kind.closed_form(spec)
    eff, problems = kind.effective(spec, dense)
    assert not problems
    naive, fused = kind.kernel_elements(spec, True, dense, eff), kind.kernel_elements(spec, False, dense, eff)
    assert sum(m for _, m, _ in naive) == sum(dense.values())
    assert sum(m for _, m, _ in fused) == sum(eff.values())
    # the fused attention reads q, the 128 + 32,768 keys of 512 once, and writes the context
    attention = dict((name, n) for name, _, n in fused)["attention"]
    assert attention == 2 * 64 * 512 + (128 + 32_768) * 512
