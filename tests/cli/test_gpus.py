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
