"""``attncli model MODEL``: a packaged preset, a config.json or its folder, or a Hub id (tests/models/test_hub.py
runs the Hub through a stand-in; here the suite is offline with an empty cache, tests/conftest.py)."""

from __future__ import annotations

from typing import Any

import pytest

DATA = "tests/data/configs"


def _same(a: Any, b: Any) -> None:
    assert a.code == 0 and b.code == 0, (a.err, b.err)
    assert a.json() == b.json()


def test_model_as_a_preset_equals_the_preset_flag(cli: Any) -> None:
    _same(cli("model", "llama-3.1-8b", "-f", "json"), cli("model", "--preset", "llama-3.1-8b", "-f", "json"))
    _same(cli("model", "Qwen3-8B", "-f", "json"), cli("model", "--preset", "qwen3-8b", "-f", "json"))


@pytest.mark.parametrize("path", [f"{DATA}/qwen3-8b", f"{DATA}/qwen3-8b/config.json"])
def test_model_as_a_file_or_folder_equals_config(cli: Any, path: str) -> None:
    _same(cli("model", path, "-f", "json"), cli("model", "--config", path, "-f", "json"))


@pytest.mark.parametrize(("argv", "start"), [
    (["model", "llama-3.1-8b", "--preset", "qwen3-8b"], "attncli: error: MODEL: 'llama-3.1-8b': give the model once"),
    (["model", "lama-3.1-8b"], "attncli: error: MODEL: unknown model 'lama-3.1-8b'; did you mean llama-3.1-8b?"),
    (["model", "no/such.json"], "attncli: error: MODEL: 'no/such.json': no such file"),
    (["model", "--preset", "llama-3.1-8b", "--revision", "main"], "attncli: error: --revision: is for a Hub model"),
    (["model", f"{DATA}/qwen3-8b", "--revision", "main"], "attncli: error: --revision: is for a Hub model"),
    (["model", "--preset", "Qwen/Qwen3-8B"], "attncli: error: --preset: 'Qwen/Qwen3-8B' is a Hugging Face Hub model"),
    (["flops", "--preset", "Qwen/Qwen3-8B"], "attncli: error: --preset: 'Qwen/Qwen3-8B' is a Hugging Face Hub model"),
    # offline (tests/conftest.py), nothing cached: the Hub id is named, no request is made
    (["model", "Qwen/Qwen3-8B"], "attncli: error: MODEL: config.json of Qwen/Qwen3-8B is not in the cache and "
                                 "HF_HUB_OFFLINE is set"),
    (["shapes", "--config", "Qwen/Qwen3-8B"], "attncli: error: --config: config.json of Qwen/Qwen3-8B is not in"),
    (["model", "--config", "Qwen/Qwen3-8B@v2", "--revision", "main"], "attncli: error: --revision: 'main' and"),
])
def test_refusals_are_one_line(cli: Any, argv: list[str], start: str) -> None:
    r = cli(*argv)
    assert r.code == 2 and r.out == "" and r.err.count("\n") == 1, r.err
    assert r.err.startswith(start), r.err


def test_no_model_at_all_names_the_three_ways(cli: Any) -> None:
    r = cli("model")
    assert r.code == 2 and r.err.startswith("attncli: error: --config: give the model as MODEL")


def test_the_fuzzers_see_the_positional_argument() -> None:
    from tests.cli.discovery import command_arguments

    assert command_arguments("model") == ("name",)
    assert command_arguments("flops") == ()


@pytest.mark.parametrize(("value", "says"), [("soon", "'soon' is not a number of seconds"),
                                             ("0", "'0': give between 0 and 600 seconds"),
                                             ("1e9", "'1e9': give between 0 and 600 seconds")])
def test_a_bad_hub_timeout_names_its_variable(cli: Any, monkeypatch: pytest.MonkeyPatch, value: str,
                                              says: str) -> None:
    monkeypatch.setenv("ATTNCLI_HUB_TIMEOUT", value)
    r = cli("model", "Qwen/Qwen3-8B")
    assert r.code == 2 and r.err == f"attncli: error: ATTNCLI_HUB_TIMEOUT: {says}\n"
