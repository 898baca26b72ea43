"""bench's table warns where its numbers cannot be read as they look: a noisy row, a CPU run
against a GPU's roofline."""

from __future__ import annotations

from typing import Any

from attncli.analyses.benchreport import NOISY_IQR, Row


def _row(median: float, iqr: float | None) -> Row:
    return Row(impl="split", backend=None, median_s=median, iqr_s=iqr, flops=10, dense_flops=10, runs=8, blocks=8,
               predicted_memory_bytes=1)


def test_a_row_is_noisy_past_half_its_median() -> None:
    assert NOISY_IQR == 0.5
    assert not _row(1.0, 0.5).noisy and _row(1.0, 0.51).noisy and not _row(1.0, None).noisy
    assert _row(0.1, 0.3).noisy  # the 3x the median


def test_bench_on_cpu_with_a_gpu_says_what_the_percentage_is(cli: Any) -> None:
    r = cli("bench", "--dim", "32", "--heads", "2", "--seq", "8", "--batch", "1", "--only", "--impl", "split",
            "--gpu", "h100-sxm", "--min-run-time", "0.01")
    assert r.code == 0, r.err
    text = " ".join(r.out.split())
    assert "caveat: measured on the CPU against NVIDIA H100" in text and "not how well the kernel" in text
    r = cli("bench", "--dim", "32", "--heads", "2", "--seq", "8", "--batch", "1", "--only", "--impl", "split",
            "--min-run-time", "0.01")
    assert r.code == 0 and "caveat" not in r.out
