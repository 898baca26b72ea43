"""The app as a whole: fast start (no torch/fvcore/rich on import), help for every command."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from attncli.cli import app


def command_names() -> list[str]:
    return sorted(c.name or c.callback.__name__ for c in app.registered_commands)  # type: ignore[union-attr]


def test_cli_import_is_light() -> None:
    code = ("import sys, attncli.cli\n"
            "heavy = [m for m in ('torch', 'fvcore', 'rich.table', 'sympy') if m in sys.modules]\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_json_runs_do_not_import_rich() -> None:
    # rich draws tables; importing it costs about a tenth of `import torch`, which a JSON run for CI
    # does not need to pay (benchmarks/bench_flops.py).
    code = ("import contextlib, io, sys\n"
            "from attncli.cli import main\n"
            "for argv in (['flops', '--dim', '64', '--heads', '4', '--seq', '8', '--format', 'json'],\n"
            "             ['report', '--dim', '64', '--heads', '4', '--seq', '8', '--format', 'json'],\n"
            "             ['model', '--preset', 'gemma-3-27b', '--seq', '64', '--format', 'json']):\n"
            "    with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "        code = main(argv)\n"
            "    print(argv[0], code, out.getvalue().lstrip()[:1], 'rich' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:3] == ["flops 0 { False", "report 0 { False", "model 0 { False"], out.stderr


def test_every_command_has_help_and_format(cli: Any) -> None:
    assert "shapes" in command_names()
    for name in command_names():
        r = cli(name, "--help")
        assert r.code == 0, name
        assert "--format" in r.out and "--output" in r.out, name


def test_no_args_shows_help_exit_0(cli: Any) -> None:
    r = cli()  # `attncli` alone is `attncli --help` (issue 22: it was 21 lines of stderr with exit 2)
    assert r.code == 0 and r.out.startswith("Usage") and r.err == ""


def test_command_options_keep_their_help(cli: Any) -> None:
    # Options a command declares itself keep their typer settings next to the shared ones.
    r = cli("shapes", "--help")
    assert "--no-out-proj" in r.out and "without W_O" in r.out and "--no-no-out-proj" not in r.out


def test_sizes_too_large_are_refused_with_the_flag(cli: Any) -> None:
    # Found by the fuzz test: each of these used to raise from torch or allocate gigabytes.
    for args, flag in ((["shapes", "--seq", str(10**9)], "--seq"),
                       (["shapes", "--seed", str(2**64)], "--seed"),
                       (["permute-test", "--dim", "65536"], "--dim"),
                       (["permute-test", "--seq", "100000", "--dim", "4", "--heads", "1"], "--seq")):
        r = cli(*args)
        assert r.code == 2 and flag in r.err and len(r.err.strip().splitlines()) == 1, (args, r.err)


def test_report_skips_a_permutation_test_too_large_to_run(cli: Any) -> None:
    doc = cli("report", "--dim", "65536", "--heads", "1", "--seq", "4", "--batch", "1", "--format", "json").json()
    assert doc["permute"] is None and "--dim" in doc["permute_skipped"]


def test_out_of_memory_is_one_line_and_exit_2(monkeypatch: Any, capsys: Any) -> None:
    import attncli.cli as cli_module

    for exc in (MemoryError(), RuntimeError("[enforce fail at alloc_cpu.cpp:121] DefaultCPUAllocator: "
                                            "can't allocate memory: you tried to allocate 1099511627776 bytes")):
        def boom(argv: Any, exc: BaseException = exc) -> int:
            raise exc

        monkeypatch.setattr(cli_module, "_run", boom)
        assert cli_module.main(["flops"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("attncli: error: --dim/--seq/--batch: out of memory")
