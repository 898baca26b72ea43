"""A CUDA device name finds its own entry of the GPU table, or none: never a neighbour's.

The names are what ``torch.cuda.get_device_name`` (the driver's marketing name) reports on each
board. The old rule (a bare substring, the first entry wins) costed an L40S and an L40 as an L4,
a GB200 as a B200, an H200 NVL and a GH200 as the H200 SXM, and an A100 80GB PCIe as the SXM.
"""

from __future__ import annotations

import dataclasses

import pytest

from attncli.analyses import gpus as table_module
from attncli.analyses.gpus import gpu, gpus, match_device

REAL_NAMES: dict[str, str] = {
    "NVIDIA A100-SXM4-40GB": "a100-sxm-40gb",
    "NVIDIA A100-SXM4-80GB": "a100-sxm-80gb",
    "NVIDIA A100 80GB PCIe": "a100-pcie-80gb",
    "NVIDIA H100 80GB HBM3": "h100-sxm",
    "NVIDIA H100 PCIe": "h100-pcie",
    "NVIDIA H100 NVL": "h100-nvl",
    "NVIDIA H200": "h200",
    "NVIDIA H200 NVL": "h200-nvl",
    "NVIDIA B200": "b200",
    "NVIDIA GB200": "gb200",
    "NVIDIA L4": "l4",
    "NVIDIA L40": "l40",
    "NVIDIA L40S": "l40s",
    "NVIDIA GeForce RTX 4090": "rtx-4090",
    "AMD Instinct MI300X": "mi300x",
}

NOT_IN_TABLE: tuple[str, ...] = (
    "NVIDIA GH200 480GB",  # Grace Hopper: not the H200 SXM (other memory, other power)
    "NVIDIA GH200 144G HBM3e",
    "NVIDIA A100-PCIE-40GB",  # not the 80GB PCIe, nor the 40GB SXM
    "NVIDIA H800",
    "NVIDIA H100 80GB HBM3 MIG 1g.10gb",  # a MIG slice is a fraction of the GPU
    "NVIDIA A100-SXM4-80GB MIG 3g.40gb",
    "NVIDIA GeForce RTX 4090 Laptop GPU",  # another chip
    "NVIDIA B300 SXM6 AC",
    "NVIDIA GeForce RTX 5090",
    "NVIDIA RTX 6000 Ada Generation",
    "AMD Instinct MI300A",
    "AMD Instinct MI325X",
    "Tesla T4",
    "AMD EPYC 7763",
    "cpu",
    "",
)


@pytest.mark.parametrize(("device", "entry"), sorted(REAL_NAMES.items()))
def test_every_real_device_name_finds_its_entry(device: str, entry: str) -> None:
    found = match_device(device)
    assert found is not None, device
    assert found.name == entry, (device, found.name)
    assert match_device(device.upper()) is found and match_device(device.lower()) is found  # case does not matter


@pytest.mark.parametrize("device", NOT_IN_TABLE)
def test_a_device_the_table_does_not_have_matches_nothing(device: str) -> None:
    assert match_device(device) is None, (device, match_device(device))


def test_every_entry_is_found_by_some_real_name() -> None:
    """Each entry of the table is reachable from a device name (a new entry needs a name here)."""
    assert {g.name for g in gpus()} == set(REAL_NAMES.values())


@pytest.mark.parametrize(("device", "entry"), [
    ("NVIDIA L40S", "l40s"),  # "L4" is a substring of "L40S" (and of "L40")
    ("NVIDIA L40", "l40"),
    ("NVIDIA GB200", "gb200"),  # "B200" is a substring of "GB200"
    ("NVIDIA H200 NVL", "h200-nvl"),  # "H200" is a substring of "H200 NVL"
    ("NVIDIA A100 80GB PCIe", "a100-pcie-80gb"),  # the SXM entry used to match "A100 80GB"
])
def test_the_old_first_substring_costs_are_gone(device: str, entry: str) -> None:
    found = match_device(device)
    assert found is not None and found.name == entry
    # and the figures are that board's, not the neighbour's
    assert found.bandwidth_bytes_per_s == gpu(entry).bandwidth_bytes_per_s


def test_the_longest_matching_pattern_wins_whatever_the_table_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reversing the table changes nothing: no entry wins by coming first."""
    forward = {name: match_device(name) for name in (*REAL_NAMES, *NOT_IN_TABLE)}
    reversed_table = tuple(reversed(gpus()))
    monkeypatch.setattr(table_module, "gpus", lambda: reversed_table)
    table_module._match_patterns.cache_clear()
    try:
        assert {name: match_device(name) for name in forward} == forward
    finally:
        monkeypatch.undo()
        table_module._match_patterns.cache_clear()


def test_words_not_substrings() -> None:
    # A pattern matches whole words: a bare "L4" device still finds the L4, "L4 " padded too.
    assert match_device("L4") is gpu("l4")
    assert match_device("  NVIDIA   L4  ") is gpu("l4")
    # A form factor or memory size the pattern does not name is another board.
    assert match_device("NVIDIA H100 SXM") is gpu("h100-sxm")
    assert match_device("NVIDIA H100 SXM 64GB") is None
    assert match_device("NVIDIA B200 NVL") is None


def test_a_pattern_owned_by_two_entries_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    h200, nvl = gpu("h200"), gpu("h200-nvl")
    clash = (h200, dataclasses.replace(nvl, match=("H200",)))
    monkeypatch.setattr(table_module, "gpus", lambda: clash)
    table_module._match_patterns.cache_clear()
    try:
        with pytest.raises(ValueError, match="also h200's"):
            match_device("NVIDIA H200")
    finally:
        monkeypatch.undo()
        table_module._match_patterns.cache_clear()


def test_b200_follows_the_per_gpu_hgx_b200_row() -> None:
    """NVIDIA Blackwell datasheet, "Individual Blackwell GPU Specifications": HGX B200 per GPU
    180 GB HBM3E at 7.7 TB/s, TF32 2.2 PF with sparsity (1.1 PF dense); GB200 NVL72 per GPU
    186 GB at 8 TB/s, TF32 2.5 PF with sparsity."""
    b200, gb200 = gpu("b200"), gpu("gb200")
    assert b200.bandwidth_bytes_per_s == 7.7e12 and b200.memory_bytes == 180 * 10**9
    assert b200.peak("tf32") == 1100e12 and b200.peak("bfloat16") == 2250e12
    assert "HGX B200 per-GPU row" in b200.note
    assert gb200.bandwidth_bytes_per_s == 8e12 and gb200.memory_bytes == 186 * 10**9
    assert gb200.peak("tf32") == 1250e12 and gb200.peak("bfloat16") == 2500e12
