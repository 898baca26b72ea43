"""``attncli.layer.formulas``: closed forms, memory and limits, checked against numbers written here."""

from __future__ import annotations

import sys
from dataclasses import replace

import pytest

from attncli.layer.formulas import check_representable, closed_form, memory
from attncli.spec import AttnSpec, SpecError

SEED = AttnSpec(dim=512, heads=8, batch=32, seq=1024, impl="fused")


def test_seed_closed_form() -> None:
    """Seed 002: 68,719,476,736 MACs with W_O, 60,129,542,144 without."""
    assert sum(closed_form(SEED).values()) == 68_719_476_736
    assert sum(closed_form(replace(SEED, out_proj=False)).values()) == 60_129_542_144


def test_cross_attention_and_extra_keys() -> None:
    """L=3 queries, S=5 keys of kdim 7 / vdim 9, bias_kv and zero_attn: S' = 7; B=2, E=4."""
    spec = AttnSpec(dim=4, heads=2, batch=2, seq=3, kv_seq=5, kdim=7, vdim=9, add_bias_kv=True,
                    add_zero_attn=True, impl="split")
    assert closed_form(spec) == {"q_proj": 2 * 3 * 4 * 4, "k_proj": 2 * 5 * 7 * 4, "v_proj": 2 * 5 * 9 * 4,
                                 "qk": 2 * 3 * 7 * 4, "av": 2 * 3 * 7 * 4, "out_proj": 2 * 3 * 4 * 4}


def test_seed_memory() -> None:
    """(32, 8, 1024, 1024) float32 scores: 1 GiB; half that in bfloat16."""
    assert memory(SEED).attention_matrix == 2**30
    assert memory(SEED, "bfloat16").attention_matrix == 2**29
    assert memory(SEED, "float8").attention_matrix == 2**28  # 1 byte per element
    with pytest.raises(SpecError) as info:
        memory(SEED, "float4")
    assert info.value.flag == "--dtype"


def test_limits_name_the_flag() -> None:
    with pytest.raises(SpecError) as info:
        check_representable(replace(SEED, seq=10**9))
    assert info.value.flag == "--seq"
    check_representable(replace(SEED, seq=131072))  # 2**40 elements: fine on meta


def test_no_torch() -> None:
    import subprocess

    code = "import sys, attncli.layer.formulas, attncli.choices; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
