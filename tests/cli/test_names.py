"""One name for one thing on the command line: every dtype flag takes fp16/bf16/fp8/fp32 and the
torch names, in any case, and outputs show the torch name; --preset and --gpu are case-insensitive
and an unknown name suggests the close ones."""

from __future__ import annotations

from typing import Any

import pytest

SMALL = ("--dim", "64", "--heads", "2", "--batch", "1", "--seq", "16")
BYTES = {"float32": 4, "tf32": 4, "bfloat16": 2, "float16": 2, "float8": 1}
"""Bytes per element of each dtype (IEEE binary32, bfloat16, binary16, OCP FP8)."""


@pytest.mark.parametrize(("text", "name"), [
    ("fp16", "float16"), ("FP16", "float16"), ("half", "float16"), ("torch.float16", "float16"),
    ("bf16", "bfloat16"), ("BFloat16", "bfloat16"), ("fp8", "float8"), ("float8_e4m3fn", "float8"),
    ("fp32", "float32"), ("float32", "float32"), ("TF32", "tf32")])
@pytest.mark.parametrize("command", ["flops", "sweep", "report"])
def test_dtype_aliases(text: str, name: str, command: str, cli: Any) -> None:
    sizes = (*SMALL[:-1], "16,32") if command == "sweep" else SMALL
    r = cli(command, *sizes, "--dtype", text, "--format", "json")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["config"]["dtype"] == name
    if command == "flops":
        assert doc["variants"][0]["memory"]["bytes_per_element"] == BYTES[name]


def test_model_dtype_and_kv_dtype_aliases(cli: Any) -> None:
    r = cli("model", "--preset", "llama-3.1-8b", "--seq", "16", "--dtype", "FP16", "--kv-dtype", "fp8",
            "--format", "json")
    assert r.code == 0, r.err
    assert (r.json()["config"]["dtype"], r.json()["config"]["kv_dtype"]) == ("float16", "float8")


def test_permute_dtype_alias(cli: Any) -> None:
    r = cli("permute-test", "--dtype", "FP32", "--format", "json")
    assert r.code == 0, r.err
    assert r.json()["config"]["dtype"] == "float32"


@pytest.mark.parametrize(("command", "flag"), [(["flops"], "--dtype"), (["model", "--preset", "llama-3.1-8b"],
                                                                       "--kv-dtype"), (["bench"], "--dtype")])
def test_unknown_dtype_is_one_line(command: list[str], flag: str, cli: Any) -> None:
    r = cli(*command, flag, "fp4")
    assert r.code == 2
    assert r.err.startswith(f"attncli: error: {flag}: 'fp4' is not one of float32, ") and r.err.count("\n") == 1


def test_gpus_heads_are_the_names_dtype_flags_take(cli: Any) -> None:
    head = next(line for line in cli("gpus").out.splitlines() if line.startswith("name"))
    dtypes = head.split()[1:-2]
    assert dtypes == ["float32", "tf32", "bfloat16", "float16", "float8"]
    for d in dtypes:
        r = cli("flops", *SMALL, "--gpu", "h100-sxm", "--dtype", d, "--format", "json")
        assert r.code == 0 and r.json()["roofline"]["dtype"] == d, r.err


@pytest.mark.parametrize(("command", "typed", "name"), [
    (["flops", "--seq", "16", "--batch", "1"], "Llama-3-8B", "llama-3-8b"),
    (["flops", "--seq", "16", "--batch", "1"], "LLAMA-3-8B", "llama-3-8b"),
    (["model", "--seq", "16"], "Llama-3.1-8B", "llama-3.1-8b")])
def test_preset_case_insensitive(command: list[str], typed: str, name: str, cli: Any) -> None:
    a = cli(*command, "--preset", typed, "--format", "json")
    b = cli(*command, "--preset", name, "--format", "json")
    assert a.code == 0, a.err
    assert a.json()["config"] == b.json()["config"]


def test_gpu_case_insensitive(cli: Any) -> None:
    r = cli("flops", *SMALL, "--gpu", "H100-SXM", "--format", "json")
    assert r.code == 0, r.err
    assert r.json()["roofline"]["device"] == "h100-sxm"


@pytest.mark.parametrize(("command", "flag", "typed", "meant"), [
    (["flops"], "--preset", "lama-3-8b", "llama-3-8b"),
    (["flops"], "--preset", "mistral7b", "mistral-7b"),
    (["model"], "--preset", "lama-3.1-8b", "llama-3.1-8b"),
    (["flops", *SMALL], "--gpu", "h100sxm", "h100-sxm"),
    (["model", "--preset", "llama-3.1-8b"], "--gpu", "H20", "h200")])
def test_unknown_name_suggests_the_close_one(command: list[str], flag: str, typed: str, meant: str,
                                             cli: Any) -> None:
    r = cli(*command, flag, typed)
    assert r.code == 2
    assert r.err.startswith(f"attncli: error: {flag}: unknown ") and r.err.count("\n") == 1
    assert f"{typed!r}; did you mean {meant}?" in r.err


def test_far_name_lists_every_choice(cli: Any) -> None:
    r = cli("flops", "--preset", "zzzz")
    assert r.code == 2
    assert "choose from gpt2, " in r.err and "did you mean" not in r.err
