"""``attncli bench``: measured time of every implementation on this machine, beside its FLOPs."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from attncli.cli import app
from attncli.cli.common import CHECKS, RUN, Dtype, spec_command
from attncli.cli.helptext import AttnCommand, complete_gpus, examples
from attncli.cli.inputs import dtype_parser
from attncli.registry import ALL_KINDS
from attncli.spec import AttnSpec, SpecError


class Device(str, Enum):
    cpu = "cpu"
    cuda = "cuda"


@app.command(cls=AttnCommand, short_help="Time every implementation on this machine, beside its FLOPs.",
             epilog=examples(
                 "attncli bench",
                 "attncli bench --impl sdpa --only --threads 1 --max-time 0.5",
                 "attncli bench --dim 1024 --heads 16 --seq 512 --backward",
                 "attncli bench --preset llama-3-8b --seq 256 --impl sdpa --only"))
@spec_command(dim=256, heads=4, batch=2, seq=128, impl="torch", kinds=ALL_KINDS)
def bench(
    spec: AttnSpec, fmt: str, output: Path | None,
    device: Annotated[Device, typer.Option(
        "--device", metavar="DEVICE", rich_help_panel=RUN, help="Where to run: cpu or cuda.")] = Device.cpu,
    dtype: Annotated[Dtype, typer.Option(
        "--dtype", metavar="DTYPE", rich_help_panel=RUN, parser=dtype_parser(Dtype),
        help="Element type of weights and inputs: float32, tf32, bfloat16, float16 or float8 (or fp32, tf32, "
             "bf16, fp16, fp8).")] = Dtype.float32,
    backward: Annotated[bool, typer.Option(
        "--backward", rich_help_panel=RUN,
        help="Time forward + backward (autograd on; FLOPs counted as 3 x forward).")] = False,
    min_run_time: Annotated[float, typer.Option(
        "--min-run-time", metavar="SECONDS", rich_help_panel=RUN,
        help="Timing budget per row (torch.utils.benchmark).")] = 0.2,
    max_time: Annotated[float | None, typer.Option(
        "--max-time", metavar="SECONDS", rich_help_panel=CHECKS,
        help="Exit 1 when --impl's median time per call exceeds SECONDS.")] = None,
    gpu: Annotated[str | None, typer.Option(
        "--gpu", metavar="NAME", rich_help_panel=RUN, autocompletion=complete_gpus,
        help="Compare with the roofline of this GPU (see attncli gpus); on CUDA the "
             "device's own entry is used when it is in the table.")] = None,
    only: Annotated[bool, typer.Option(
        "--only", rich_help_panel=RUN, help="Time --impl alone instead of every implementation.")] = False,
    threads: Annotated[int | None, typer.Option(
        "--threads", metavar="N", rich_help_panel=RUN, help="torch intra-op threads for the run (default: torch's own, "
                                       "recorded in the report); 1 gives steadier numbers on a busy machine.")] = None,
) -> None:
    """Time the forward pass of every implementation (torch, split, per-head, fused, sdpa; on CUDA
    every SDPA backend too) on this machine, with torch.utils.benchmark: median and IQR per call,
    achieved FLOP/s (effective FLOPs = 2 x MACs / median), the fraction of a GPU's roofline, and
    peak memory beside the memory model's prediction. --impl names the implementation --max-time
    checks (and, with --only, the one timed). Sizes the memory model says will not fit are
    refused (exit 2) before anything is allocated. Times are measured, not estimated.
    """
    from attncli.analyses.bench import plan, run_bench, with_max_time
    from attncli.analyses.timemodel import announce
    from attncli.render import bench as view
    from attncli.render import emit

    if max_time is not None and not max_time > 0:
        raise SpecError("--max-time", f"must be a positive number of seconds, got {max_time}")
    todo = plan(spec, device.value, only)
    with view.bar(len(todo.specs)) as next_row:
        report = run_bench(spec, device=device.value, dtype=dtype.value, backward=backward,
                           min_run_time=min_run_time, gpu=gpu, only=only, threads=threads,
                           on_row=next_row, on_estimate=announce)
    failure = None
    if max_time is not None:
        report, failure = with_max_time(report, max_time)
    emit(fmt, report.to_json(), lambda: view.table(report), lambda: view.markdown(report), output)
    if failure is not None:
        print(f"attncli: CHECK FAILED: {failure}", file=sys.stderr)
        raise typer.Exit(1)
