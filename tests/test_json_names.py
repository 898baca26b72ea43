"""One name for one thing in every JSON document: ``flops`` is always the dense 2 x MACs count,
``effective_flops`` the effective one, no other spelling (``flops_torch``, ``dense_flops``), and
``convention`` an object everywhere. Each command runs with ``--format json`` once, masked so
that the effective count differs from the dense one (a swap of the two cannot pass)."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from attncli.cli import main

SMALL = ("--dim", "64", "--heads", "2", "--batch", "1", "--mask", "causal")
COMMANDS: dict[str, list[str]] = {
    "flops": ["flops", *SMALL, "--seq", "16", "--gpu", "h100-sxm"],
    "flops_module": ["flops", "--module", "tests.usermods:build_tiny", "--batch", "1", "--seq", "8"],
    "sweep": ["sweep", *SMALL, "--seq", "16,32", "--gpu", "h100-sxm"],
    "report": ["report", *SMALL, "--seq", "16", "--gpu", "h100-sxm"],
    "shapes": ["shapes"],
    "bench": ["bench", "--dim", "32", "--heads", "2", "--batch", "1", "--seq", "16", "--mask", "causal",
              "--min-run-time", "0.01", "--gpu", "h100-sxm"],
    "model": ["model", "--preset", "gemma-2-9b", "--seq", "8192", "--gpu", "h100-sxm"],
    "gpus": ["gpus"],
    "presets": ["presets"],
    "permute": ["permute-test"],
}
SCHEMAS = {"flops": "attncli.flops/2", "flops_module": "attncli.flops/2", "sweep": "attncli.sweep/2",
           "report": "attncli.report/2", "bench": "attncli.bench/2", "model": "attncli.model/1"}
RETIRED = {"flops_torch", "dense_flops"}


def walk(node: Any, path: str = "$") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object of a document with its path."""
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from walk(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, f"{path}[{i}]")


def counts(obj: dict[str, Any]) -> dict[str, int]:
    """The integer counts of an object (a ``convention`` object holds the same keys as text)."""
    return {k: v for k, v in obj.items() if type(v) is int}


@pytest.fixture(scope="module")
def docs() -> dict[str, dict[str, Any]]:
    """Every command's document, run once for the module."""
    out: dict[str, dict[str, Any]] = {}
    for name, args in COMMANDS.items():
        buf, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(err):
            code = main([*args, "--format", "json"])
        assert code == 0, (name, err.getvalue())
        out[name] = json.loads(buf.getvalue())
    return out


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_naming_rules(name: str, docs: dict[str, dict[str, Any]]) -> None:
    doc = docs[name]
    if name in SCHEMAS:
        assert doc["schema"] == SCHEMAS[name]
    for path, obj in walk(doc):
        assert not RETIRED & set(obj), f"{path} still has {RETIRED & set(obj)}"
        if "convention" in obj:
            assert isinstance(obj["convention"], dict), f"{path}.convention is not an object"
        n = counts(obj)
        if "flops" in n and "fvcore_flops" in n:
            assert n["flops"] == 2 * n["fvcore_flops"], path
        if "effective_flops" in n and "effective_fvcore_flops" in n:
            assert n["effective_flops"] == 2 * n["effective_fvcore_flops"], path
        if "flops" in n and "effective_flops" in n:
            assert n["effective_flops"] <= n["flops"], f"{path}: effective above dense"


def test_masked_counts_differ_where_both_are_shown(docs: dict[str, dict[str, Any]]) -> None:
    """Under a causal mask the effective count is below the dense one in every document that shows
    both: a document that swapped them would fail ``effective_flops <= flops`` above."""
    pairs = [(name, path) for name in ("flops", "sweep", "report", "bench", "model")
             for path, obj in walk(docs[name]) if "flops" in counts(obj) and "effective_flops" in counts(obj)
             and obj["effective_flops"] < obj["flops"]]
    assert {name for name, _ in pairs} == {"flops", "sweep", "report", "bench", "model"}


def test_flops_variants_in_table_order_with_the_configured_one_marked(docs: dict[str, dict[str, Any]]) -> None:
    variants = docs["flops"]["variants"]
    assert [(v["heads"], v["out_proj"]) for v in variants] == [(2, True), (2, False), (1, True), (1, False)]
    assert [v["configured"] for v in variants] == [True, False, False, False]
    assert [v["configured"] for v in docs["report"]["flops"]["variants"]] == [True, False, False, False]
    assert [v["configured"] for v in docs["flops_module"]["variants"]] == [True]


def test_dense_flops_closed_form(docs: dict[str, dict[str, Any]]) -> None:
    """B=1, L=S=16, E=64, H=2 (d=32), causal: dense MACs 4*L*E*E (projections) + 2*L*S*E (scores, mix);
    effective counts the 136 = 16*17/2 visible pairs per head instead of 256."""
    b, n, e = 1, 16, 64
    configured = docs["flops"]["variants"][0]
    assert configured["flops"] == 2 * (4 * b * n * e * e + 2 * b * n * n * e)
    assert configured["effective_flops"] == 2 * (4 * b * n * e * e + 2 * b * (n * (n + 1) // 2) * e)
    roofline = docs["flops"]["roofline"]
    assert roofline["effective_flops"] == configured["effective_flops"]
    assert roofline["naive"]["flops"] == configured["flops"]
