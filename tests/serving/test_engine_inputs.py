"""The engine's inputs as vLLM reads them (``human_readable_int``: an upper-case suffix is binary,
a lower-case one decimal) and the GPU budget."""

from __future__ import annotations

import pytest

from attncli.serving.inputs import OVERHEAD_ESTIMATE, gpu_budget, parse_bytes
from attncli.spec import SpecError


@pytest.mark.parametrize(("text", "expected"), [
    ("40GiB", 40 * 2**30), ("40Gi", 40 * 2**30), ("40G", 40 * 2**30), ("40g", 40 * 10**9), ("40GB", 40 * 10**9),
    ("512MiB", 512 * 2**20), ("42949672960", 42_949_672_960), ("4.29e10", 42_900_000_000),
    ("2.89GiB", 3_103_113_871),  # 2.89 x 2**30 = 3,103,113,871.36, rounded down
])
def test_sizes(text: str, expected: int) -> None:
    assert parse_bytes(text, "--kv-cache-memory") == expected


@pytest.mark.parametrize("text", ["0", "-1G", "", "lots", "iB", "1e400", "0.4"])
def test_refused_sizes_name_the_flag(text: str) -> None:
    with pytest.raises(SpecError) as exc:
        parse_bytes(text, "--kv-cache-memory")
    assert exc.value.flag == "--kv-cache-memory"


def test_gpu_budget() -> None:
    # 80 GB x 0.92 less 16 GB of weights on 2 devices (8 GB each) less the 2 GiB estimate
    budget = gpu_budget(80 * 10**9, "H100", 0.92, 16 * 10**9, 2)
    assert budget.kv_cache_memory == 73_600_000_000 - 8 * 10**9 - 2 * 2**30
    assert OVERHEAD_ESTIMATE == 2 * 2**30
    assert "estimate" in budget.source
    with pytest.raises(SpecError, match="--gpu"):
        gpu_budget(80 * 10**9, "H100", 0.92, 10**12, 1)
