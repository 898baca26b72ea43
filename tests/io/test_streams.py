"""Where a report goes: the atomic --output and the stdout guard (hardening regressions)."""

from __future__ import annotations

import errno
import io
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from attncli.io.streams import GuardedStdout, StdoutError, is_out_of_memory, write_atomic
from attncli.spec import SpecError

ROOT = Path(__file__).resolve().parents[2]


def test_write_atomic_replaces_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    target.write_text("old")
    write_atomic(target, "new\n")
    assert target.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_write_atomic_failure_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "r.json"
    target.write_text("previous good report")

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(SpecError, match="No space left") as info:
        write_atomic(target, "x" * 100_000)
    assert info.value.flag == "--output"
    assert target.read_text() == "previous good report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


@pytest.mark.parametrize("name", ["dir", "no/such/dir/r.json", "no\nsuch/r.json", "nul\x00.json"])
def test_write_atomic_odd_targets_are_one_line(tmp_path: Path, name: str) -> None:
    (tmp_path / "dir").mkdir()
    with pytest.raises(SpecError) as info:
        write_atomic(tmp_path / name, "text")
    assert info.value.flag == "--output"
    assert "\n" not in str(info.value)  # repr escapes a newline in the path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir"]


def test_output_under_a_file_size_limit_keeps_the_previous_file(tmp_path: Path) -> None:
    """A full disk, simulated with RLIMIT_FSIZE: exit 2, one line, the old report intact."""
    target = tmp_path / "r.json"
    target.write_text("GOOD" * 1000)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))

    run = subprocess.run([sys.executable, "-m", "attncli", "flops", "--dim", "64", "-f", "json", "-o", str(target)],
                         capture_output=True, text=True, preexec_fn=limit, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1 and run.stderr.startswith("attncli: error: --output:")
    assert target.read_text() == "GOOD" * 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


class _Failing(io.StringIO):
    def __init__(self, exc: OSError) -> None:
        super().__init__()
        self.exc = exc

    def write(self, text: str) -> int:
        raise self.exc


def test_guard_closed_reader_is_quiet() -> None:
    guard = GuardedStdout(_Failing(BrokenPipeError(errno.EPIPE, "Broken pipe")))
    assert guard.write("report") == len("report")
    assert guard.reader_gone
    guard.write("more")  # ignored, no error


def test_guard_full_disk_is_a_stdout_error_naming_output() -> None:
    guard = GuardedStdout(_Failing(OSError(errno.ENOSPC, "No space left on device")))
    with pytest.raises(StdoutError, match="--output: cannot write to stdout: No space left"):
        guard.write("report")
    assert guard.write("") == 0  # click's probe never reaches the failing stream


def test_out_of_memory_texts() -> None:
    assert is_out_of_memory(RuntimeError("[enforce fail at alloc_cpu.cpp:121] DefaultCPUAllocator: "
                                         "can't allocate memory: you tried to allocate 9 bytes"))
    assert is_out_of_memory(RuntimeError("std::bad_alloc"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))


def test_write_atomic_writes_devices_in_place() -> None:
    # A rename over /dev/null would replace the device node with a regular file.
    write_atomic(Path("/dev/null"), "report")
    assert Path("/dev/null").is_char_device()
    with pytest.raises(SpecError, match="No space left") as info:
        write_atomic(Path("/dev/full"), "report")
    assert info.value.flag == "--output" and Path("/dev/full").is_char_device()


def test_two_writers_leave_one_whole_report(tmp_path: Path) -> None:
    """Concurrent runs writing one --output: the file is one report or the other, never a mix."""
    import threading

    target = tmp_path / "r.txt"
    texts = ["a" * 2_000_000, "b" * 2_000_000]
    threads = [threading.Thread(target=write_atomic, args=(target, t)) for t in texts for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert target.read_text() in texts
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.txt"]


def test_write_atomic_writes_through_a_link_and_keeps_it(tmp_path: Path) -> None:
    """link.json -> target.json: the target gets the text, the link stays a link (it used to be
    replaced by a regular file, leaving the target stale)."""
    (tmp_path / "target.json").write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to("target.json")
    write_atomic(link, "new")
    assert link.is_symlink() and (tmp_path / "target.json").read_text() == "new"
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to("missing.json")
    write_atomic(dangling, "made")
    assert dangling.is_symlink() and (tmp_path / "missing.json").read_text() == "made"


def test_output_dev_stdout_redirected_to_a_file_keeps_dev_stdout(tmp_path: Path) -> None:
    """`--output /dev/stdout > file` (and /dev/fd/1): the text lands in the file the shell opened,
    and /dev/stdout stays the link it was (it used to be renamed over, as root)."""
    before = os.readlink("/dev/stdout")
    for name in ("/dev/stdout", "/dev/fd/1"):
        out = tmp_path / "out.json"
        with open(out, "w") as fh:
            r = subprocess.run([sys.executable, "-c", f"from pathlib import Path; from attncli.io.streams import "
                                f"write_atomic; write_atomic(Path({name!r}), 'through')"],
                               stdout=fh, stderr=subprocess.PIPE, text=True, check=False,
                               env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
        assert r.returncode == 0, r.stderr
        assert out.read_text() == "through"
    assert os.readlink("/dev/stdout") == before


def _forced_colour_run(*args: str) -> subprocess.CompletedProcess[str]:
    """attncli with FORCE_COLOR=1 and stderr a pipe (CI's log): rich would call that a terminal."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
    env.update(PYTHONPATH=str(ROOT), FORCE_COLOR="1", TERM="xterm-256color", COLUMNS="80")
    return subprocess.run([sys.executable, "-m", "attncli", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=180, check=False)


@pytest.mark.parametrize("args", [
    ("sweep", "--seq", "16:128:x2", "--dim", "64", "--heads", "4"),
    ("bench", "--dim", "32", "--heads", "4", "--batch", "1", "--seq", "8", "--min-run-time", "0.01"),
])
def test_no_progress_bar_in_a_piped_stderr_even_with_force_color(args: tuple[str, ...]) -> None:
    """The bar is drawn only when file descriptor 2 is a terminal, whatever FORCE_COLOR says."""
    r = _forced_colour_run(*args)
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stderr, repr(r.stderr[:200])
    assert r.stdout  # the report itself went to stdout


def test_an_error_after_the_sweep_started_is_one_clean_line() -> None:
    """--kv-heads 3 is refused after the sweep counted 1 and 2: one line, no cursor moves before it."""
    r = _forced_colour_run("sweep", "--kv-heads", "1:8:+1", "--heads", "8", "--dim", "512")
    assert r.returncode == 2, r.stderr
    assert r.stdout == ""
    assert r.stderr == "attncli: error: --kv-heads: --kv-heads 3 must divide --heads 8\n"
