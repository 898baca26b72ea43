"""``--module``: a module written in the tests is counted and shaped like attncli's own."""

from __future__ import annotations

from typing import Any

import pytest

B, L, E, H = 2, 64, 512, 8
# Closed form of standard self-attention (fvcore MACs): 3 projections B*L*E*E, QK^T and
# weights x V B*L*L*E each, W_O B*L*E*E.
CLOSED = 4 * B * L * E * E + 2 * B * L * L * E


@pytest.mark.parametrize("ref", ["tests.usermods:build_tiny", "tests.usermods:TinyAttention",
                                 "tests.usermods:build_mha"])
def test_flops_of_a_user_module(cli: Any, ref: str) -> None:
    r = cli("flops", "--module", ref, "--batch", str(B), "--seq", str(L), "--format", "json")
    assert r.code == 0, r.err
    doc = r.json()
    (v,) = doc["variants"]
    assert v["fvcore_flops"] == CLOSED
    assert v["cross_checks"]["flop_counter"]["flops"] == 2 * CLOSED
    assert v["cross_checks"]["agree"] is True and doc["reference"]["matches"] is True
    # TinyAttention: qkv (3E x E, no bias) + proj (E x E + E); MHA: 4E^2 + 4E
    assert v["params"] == (3 * E * E + E * E + E if "tiny" in ref.lower() else 4 * E * E + 4 * E)


def test_user_module_budget(cli: Any) -> None:
    r = cli("flops", "--module", "tests.usermods:build_tiny", "--batch", str(B), "--seq", str(L),
            "--max-flops", "100M")
    assert r.code == 1 and "max-flops" in r.err


def test_shapes_of_a_user_module(cli: Any) -> None:
    doc = cli("shapes", "--module", "tests.usermods:build_tiny", "--format", "json").json()
    assert doc["outputs"]["attn_output"] == [1, 10, 512]
    assert doc["params"]["total"] == 3 * E * E + E * E + E


@pytest.mark.parametrize(("ref", "needle"), [
    ("no.such.module:f", "cannot import"),
    ("tests.usermods:nope", "no attribute"),
    ("tests.usermods:broken", "always fails"),
    ("tests.usermods:WrongShape", "cannot run on inputs"),
    ("just-a-name", "MODULE:FACTORY"),
])
@pytest.mark.parametrize("command", ["flops", "shapes"])
def test_bad_modules_fail_cleanly(cli: Any, command: str, ref: str, needle: str) -> None:
    r = cli(command, "--module", ref)
    assert r.code == 2 and "--module" in r.err and needle in r.err
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err
