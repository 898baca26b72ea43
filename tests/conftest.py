"""Shared test helpers: run the CLI in-process and capture what it prints."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from attncli.cli import main


def pytest_configure(config: pytest.Config) -> None:
    """No test reaches the real Hub: a Hub id (``attncli model org/name``, ``--config org/name``) is
    looked up offline, in an empty cache, against a closed loopback port (tests/models/test_hub.py
    starts its own stand-in and passes its own environment to the processes it runs)."""
    import os
    import tempfile

    home = tempfile.mkdtemp(prefix="attncli-tests-hf-")
    config.add_cleanup(lambda: __import__("shutil").rmtree(home, ignore_errors=True))
    os.environ.update({"HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": home,
                       "HF_HUB_DISABLE_TELEMETRY": "1"})
    os.environ.pop("HF_TOKEN", None)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true",
                     help="Rewrite tests/golden/*.txt from the current output (review the diff).")


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Any:
    """``cli("shapes", "--format", "json")`` -> Result(code, stdout, stderr)."""

    def run(*args: str) -> Result:
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run
