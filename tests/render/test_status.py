"""The transient status line: on a terminal's stderr only, never in a pipe or with JSON."""

from __future__ import annotations

import io
import sys
import time

import pytest

from attncli.render.common import status


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_silent_in_a_pipe(capsys: pytest.CaptureFixture[str]) -> None:
    with status("working", delay=0.0):
        time.sleep(0.2)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(("stdout", "fmt"), [
    # stderr a terminal but stdout a pipe (attncli flops | less): the spinner would draw over the pager
    (io.StringIO, "table"),
    # JSON on a terminal: nothing but the document
    (_Tty, "json"),
], ids=["behind a pager", "with json"])
def test_silent_behind_a_pager_or_with_json(monkeypatch: pytest.MonkeyPatch, stdout: type[io.StringIO],
                                            fmt: str) -> None:
    fake = _Tty()
    monkeypatch.setattr(sys, "stderr", fake)
    monkeypatch.setattr(sys, "stdout", stdout())
    with status("working", fmt=fmt, delay=0.0):
        time.sleep(0.2)
    assert fake.getvalue() == ""


def test_shown_on_a_terminal_after_the_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _Tty()
    monkeypatch.setattr(sys, "stderr", fake)
    monkeypatch.setattr(sys, "stdout", _Tty())
    monkeypatch.setenv("TERM", "xterm")
    with status("quick", delay=5.0):
        pass
    assert "quick" not in fake.getvalue()  # done before the delay: never shown
    with status("slow work", delay=0.05):
        time.sleep(0.5)
    assert "slow work" in fake.getvalue()
