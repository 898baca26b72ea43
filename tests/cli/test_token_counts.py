"""Token counts take binary suffixes, one convention everywhere: 128k = 128 x 1024 = 131,072 and
1M = 1024**2 = 1,048,576 tokens (context lengths are named so); a fraction or garbage is one
line naming the flag, exit 2."""

from __future__ import annotations

from typing import Any

import pytest

SMALL = ("--dim", "64", "--heads", "2", "--batch", "1")


@pytest.mark.parametrize(("text", "tokens"), [("128k", 131072), ("128K", 131072), ("1M", 1048576),
                                              ("4k", 4096), ("4096", 4096)])
def test_seq_suffix(text: str, tokens: int, cli: Any) -> None:
    r = cli("flops", *SMALL, "--seq", text, "--format", "json")
    assert r.code == 0, r.err
    assert r.json()["config"]["seq"] == tokens
    title = cli("flops", *SMALL, "--seq", text)
    assert f"L={tokens}" in title.out.splitlines()[0]


def test_kv_seq_and_cache_suffixes(cli: Any) -> None:
    r = cli("flops", *SMALL, "--impl", "split", "--seq", "1k", "--kv-seq", "2k", "--format", "json")
    assert r.code == 0, r.err
    assert (r.json()["config"]["seq"], r.json()["config"]["kv_seq"]) == (1024, 2048)
    r = cli("flops", *SMALL, "--impl", "split", "--seq", "1", "--cache", "1M")
    assert r.code == 0, r.err
    assert "cache N=1048576 (S=1048577)" in r.out.splitlines()[0]


def test_window_suffix(cli: Any) -> None:
    r = cli("shapes", "--impl", "split", "--seq", "8k", "--window", "4k", "--format", "json")
    assert r.code == 0, r.err
    assert (r.json()["config"]["seq"], r.json()["config"]["window"]) == (8192, 4096)


def test_sweep_range_suffix(cli: Any) -> None:
    r = cli("sweep", *SMALL, "--seq", "1k:8k:x2", "--format", "json")
    assert r.code == 0, r.err
    assert [p["value"] for p in r.json()["points"]] == [1024, 2048, 4096, 8192]
    r = cli("sweep", *SMALL, "--seq", "1", "--cache", "0:1M:+256k", "--format", "json")
    assert r.code == 0, r.err
    assert [p["value"] for p in r.json()["points"]] == [0, 262144, 524288, 786432, 1048576]


def test_model_suffix(cli: Any) -> None:
    r = cli("model", "--preset", "llama-3.1-8b", "--seq", "128k", "--format", "json")
    assert r.code == 0, r.err
    assert r.json()["config"]["seq"] == 131072
    assert "L=131072" in cli("model", "--preset", "llama-3.1-8b", "--seq", "128k").out.splitlines()[0]


@pytest.mark.parametrize(("command", "flag", "text"), [
    (["flops", *SMALL], "--seq", "1.5k"), (["flops", *SMALL], "--seq", "0.5M"), (["flops", *SMALL], "--seq", "abc"),
    (["flops", *SMALL], "--seq", "12kk"), (["flops", *SMALL], "--kv-seq", "2.k"), (["flops", *SMALL], "--cache", "1e3"),
    (["shapes"], "--window", "4x"), (["sweep", *SMALL], "--seq", "0.5k:8k"), (["sweep", *SMALL], "--seq", "1k:8q"),
    (["model", "--preset", "llama-3.1-8b"], "--seq", "1.5M"), (["model", "--preset", "llama-3.1-8b"], "--cache", "k"),
])
def test_refused_in_one_line_naming_the_flag(command: list[str], flag: str, text: str, cli: Any) -> None:
    r = cli(*command, flag, text)
    assert r.code == 2
    assert r.err.startswith(f"attncli: error: {flag}: ") and r.err.count("\n") == 1, r.err
    assert "Traceback" not in r.err and r.out == ""
