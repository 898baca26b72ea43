"""``attncli gpus``: the accelerator table in every format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


def strict(text: str) -> Any:
    def no_constant(name: str) -> Any:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=no_constant)


def test_json(cli: Any) -> None:
    r = cli("gpus", "--format", "json")
    assert r.code == 0 and r.err == ""
    doc = strict(r.out)
    assert doc["schema"] == "attncli.gpus/1" and "config" in doc
    by_name = {g["name"]: g for g in doc["gpus"]}
    # H100 SXM datasheet: BF16 1,979 TFLOPS with sparsity (989.4 dense), 3.35 TB/s, 80 GB.
    h100 = by_name["h100-sxm"]
    assert h100["peak_flops_per_s"]["bfloat16"] == pytest.approx(989.4e12)
    assert h100["bandwidth_bytes_per_s"] == pytest.approx(3.35e12)
    # AMD MI300X datasheet: 192 GB HBM3 at 5.3 TB/s, FP16 1,307.4 TFLOPS dense.
    mi = by_name["mi300x"]
    assert mi["memory_bytes"] == 192 * 10**9 and mi["peak_flops_per_s"]["float16"] == pytest.approx(1307.4e12)
    assert "float8" not in by_name["a100-sxm-80gb"]["peak_flops_per_s"]
    assert all(g["source"].startswith("https://") for g in doc["gpus"])


def test_table_and_markdown(cli: Any) -> None:
    table = cli("gpus")
    assert table.code == 0 and "h100-sxm" in table.out and "989.4" in table.out and "Datasheets:" in table.out
    md = cli("gpus", "-f", "markdown")
    assert md.code == 0 and "| h100-sxm | 67 | 494.7 | 989.4 | 989.4 | 1978.9 | 3.35 | 80 GB |" in md.out
    assert "sparsity" in md.out  # the notes say which figures were halved


def test_output_file(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "gpus.json"
    r = cli("gpus", "-f", "json", "-o", str(out))
    assert r.code == 0 and r.out == "" and strict(out.read_text())["gpus"]


def test_bad_format_exits_2(cli: Any) -> None:
    r = cli("gpus", "--format", "yaml")
    assert r.code == 2 and "--format" in r.err and "Traceback" not in r.err


@pytest.mark.parametrize(("said", "meant", "memory_gb"), [
    # the H100 people mean is the SXM (datasheet: 80 GB); the A100 the 80 GB SXM; MI300X 192 GB, H200 141 GB
    ("h100", "h100-sxm", 80), ("H100", "h100-sxm", 80), ("a100", "a100-sxm-80gb", 80), ("mi300", "mi300x", 192),
    ("h200", "h200", 141), ("l40s", "l40s", 48)])
def test_gpu_names_as_people_say_them(cli: Any, said: str, meant: str, memory_gb: int) -> None:
    r = cli("model", "--preset", "llama-3.1-8b", "--gpu", said, "--format", "json")
    assert r.code == 0, r.err
    roof = r.json()["roofline"]
    assert roof["device"] == meant and roof["memory_bytes"] == memory_gb * 10**9
    flops = cli("flops", "--gpu", said, "--format", "json")
    assert flops.code == 0, flops.err


def test_an_ambiguous_gpu_name_lists_its_choices_in_one_line(cli: Any) -> None:
    r = cli("model", "--preset", "llama-3.1-8b", "--gpu", "a100-80gb")
    assert r.code == 2 and r.err.count("\n") == 1
    assert r.err.startswith("attncli: error: --gpu: 'a100-80gb' is ambiguous: give a100-sxm-80gb or a100-pcie-80gb")


def test_every_alias_names_entries_of_the_table() -> None:
    from importlib import resources

    raw = json.loads(resources.files("attncli").joinpath("data/gpus.json").read_text(encoding="utf-8"))
    names = {g["name"] for g in raw["gpus"]}
    for alias, meant in raw["aliases"].items():
        if alias != "_":
            assert alias not in names and set([meant] if isinstance(meant, str) else meant) <= names
