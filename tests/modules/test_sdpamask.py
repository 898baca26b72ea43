"""The mask a user's module applies itself: read from its scaled_dot_product_attention calls.

Expected counts are closed forms for the modules in ``tests/usermods.py`` (fused qkv, W_O without
bias): at B=1, L=16, E=64, H=4, d=16 the projections are 16*64*192 + 16*64*64 = 262,144 MACs and
QK^T = weights x V = H*d*P with P pairs: 256 dense, 136 = 16*17/2 causal.
"""

from __future__ import annotations

from typing import Any

import pytest

from attncli.modules.sdpamask import SdpaCall, read_mask
from attncli.spec import SpecError

SIZES = ("--dim", "64", "--heads", "4", "--seq", "16", "--batch", "1", "--format", "json")
PROJ = 16 * 64 * 192 + 16 * 64 * 64


def effective(cli: Any, factory: str, *extra: str) -> tuple[str, int, int, list[str]]:
    r = cli("flops", "--module", f"tests.usermods:{factory}", *SIZES, *extra)
    assert r.code == 0, r.err
    doc = r.json()
    (v,) = doc["variants"]
    return doc["config"]["mask"], v["fvcore_flops"], v["effective"]["fvcore_flops"], v["notes"]


def test_is_causal_is_read_from_the_call(cli: Any) -> None:
    mask, dense, eff, notes = effective(cli, "sdpa_causal")
    assert mask == "causal"
    assert dense == PROJ + 2 * 4 * 16 * 256 and eff == PROJ + 2 * 4 * 16 * 136
    assert any("is_causal=True" in n for n in notes)


def test_no_mask_is_read_as_none(cli: Any) -> None:
    mask, dense, eff, _ = effective(cli, "sdpa_plain")
    assert mask == "none" and dense == eff == PROJ + 2 * 4 * 16 * 256


def test_a_tensor_mask_cannot_be_read_and_says_so(cli: Any) -> None:
    mask, dense, eff, notes = effective(cli, "sdpa_tensor_mask")
    assert mask == "none" and eff == dense
    assert any("cannot read" in n and "--mask" in n for n in notes)


def test_mask_states_what_attncli_cannot_read(cli: Any) -> None:
    mask, _, eff, notes = effective(cli, "sdpa_tensor_mask", "--mask", "causal")
    assert mask == "causal" and eff == PROJ + 2 * 4 * 16 * 136
    assert any("as stated by --mask" in n for n in notes)


def test_mask_that_contradicts_the_call_exits_2(cli: Any) -> None:
    r = cli("flops", "--module", "tests.usermods:sdpa_causal", *SIZES, "--mask", "none")
    assert r.code == 2 and r.err.startswith("attncli: error: --mask:") and r.err.count("\n") == 1


def test_mask_on_a_hugging_face_class_exits_2(cli: Any) -> None:
    pytest.importorskip("transformers")
    r = cli("flops", "--module", "transformers.models.llama.modeling_llama:LlamaAttention", "--dim", "64",
            "--heads", "4", "--mask", "none")
    assert r.code == 2 and r.err.startswith("attncli: error: --mask:") and "create_causal_mask" in r.err


def test_read_mask_rules() -> None:
    assert read_mask("m", [SdpaCall(True, False, 8, 8)], None)[0] == "causal"
    assert read_mask("m", [SdpaCall(False, False, 8, 8)], None)[0] == "none"
    # top-left is_causal with L != S is not attncli's bottom-right causal: not read
    assert read_mask("m", [SdpaCall(True, False, 4, 8)], None)[0] == "none"
    assert read_mask("m", [SdpaCall(True, False, 8, 8), SdpaCall(False, False, 8, 8)], "causal")[0] == "causal"
    assert read_mask("m", [], "causal") == ("causal", read_mask("m", [], "causal")[1])
    with pytest.raises(SpecError) as err:
        read_mask("m", [SdpaCall(False, False, 8, 8)], "causal")
    assert err.value.flag == "--mask"


def test_json_effective_total_includes_other_ops(cli: Any) -> None:
    """The module JSON's effective total is the table's: the attention stages' effective MACs plus
    the ops outside them (timm's qk-norm LayerNorms: fvcore's layer_norm handle, 5 per element with an
    affine: 2 norms x B*H*L*d = 2 x 1,024 elements -> 10,240, under 'other')."""
    r = cli("flops", "--module", "tests.usermods:timm_qk_norm", *SIZES)
    assert r.code == 0, r.err
    (v,) = r.json()["variants"]
    assert v["by_stage"]["other"] == 10_240
    assert v["effective"]["fvcore_flops"] == sum(v["effective"]["by_stage"].values()) + 10_240
    assert v["effective"]["fvcore_flops"] == PROJ + 2 * 4 * 16 * 256 + 10_240
