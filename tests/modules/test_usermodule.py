"""Loading a user's module: every failure is a SpecError naming --module."""

from __future__ import annotations

import sys
from typing import Any

import pytest
import torch

from attncli.modules.calling import call_args, plan_call
from attncli.modules.fence import fenced
from attncli.modules.usermodule import build_user, load_factory, run_user
from attncli.spec import AttnSpec, SpecError

SPEC = AttnSpec(dim=16, heads=4, batch=2, seq=5).validate()


@pytest.mark.parametrize(("ref", "needle"), [
    ("nocolon", "MODULE:FACTORY"),
    ("no_such_module_xyz:f", "cannot import"),
    ("tests.usermods:missing", "no attribute"),
    ("tests.usermods:not_callable", "not a class or function"),
])
def test_load_errors(ref: str, needle: str) -> None:
    with pytest.raises(SpecError, match=needle) as info:
        load_factory(ref)
    assert info.value.flag == "--module"


def test_build_and_run_factory_and_class() -> None:
    for ref in ("tests.usermods:build_tiny", "tests.usermods:TinyAttention"):
        m = build_user(ref, SPEC, "cpu")
        x = torch.randn(2, 5, 16)
        plan = plan_call(m)
        assert plan.style == "x"
        assert run_user(m, call_args(plan, x, x, x), ref).shape == (2, 5, 16)
    mha = build_user("tests.usermods:build_mha", SPEC, "cpu")
    assert plan_call(mha).style == "qkv"


def test_current_directory_is_appended_never_first(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user's file named like an installed package must not shadow it: cwd goes last, and leaves."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    before = list(sys.path)
    with fenced("x:y", None):
        assert sys.path[:-1] == before and sys.path[-1] == str(tmp_path)
    assert sys.path == before


def test_build_and_run_failures() -> None:
    with pytest.raises(SpecError, match="always fails"):
        build_user("tests.usermods:broken", SPEC, "cpu")
    m = build_user("tests.usermods:WrongShape", SPEC, "cpu")
    with pytest.raises(SpecError, match=r"cannot run on inputs \(2, 5, 16\)"):
        x = torch.randn(2, 5, 16)
        run_user(m, (x,), "tests.usermods:WrongShape")


def test_import_leaves_sys_path_as_it_was(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The current directory is importable while the user's module is imported, and not after."""
    (tmp_path / "attncli_user_mod_xyz.py").write_text("def build(dim, heads):\n    return None\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != ""])
    before = list(sys.path)
    assert callable(load_factory("attncli_user_mod_xyz:build"))
    assert sys.path == before
    with pytest.raises(SpecError):
        load_factory("attncli_no_such_mod_xyz:build")
    assert sys.path == before


def test_errors_keep_the_users_traceback() -> None:
    """The one-line SpecError chains the user's exception (``from exc``), so --debug-style tools see it."""
    with pytest.raises(SpecError) as info:
        build_user("tests.usermods:broken", SPEC, "cpu")
    assert info.value.__cause__ is not None and "always fails" in str(info.value.__cause__)


def test_a_missing_hugging_face_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """transformers blocked (None in sys.modules makes its import fail as a missing package)."""
    for name in [m for m in sys.modules if m == "transformers" or m.startswith("transformers.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(SpecError, match=r"pip install 'attncli\[hf\]'") as info:
        load_factory("transformers.models.llama.modeling_llama:LlamaAttention")
    assert info.value.flag == "--module"


def test_the_fence_restores_the_sigint_handler_and_the_directory(tmp_path: Any) -> None:
    import os
    import signal

    before, cwd = signal.getsignal(signal.SIGINT), os.getcwd()
    with fenced("tests.usermods:anything", timeout=None):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        os.chdir(tmp_path)
    assert signal.getsignal(signal.SIGINT) is before and os.getcwd() == cwd


def test_a_file_is_loaded_by_its_path(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """path/to/file.py:factory: spec_from_file_location, under a module name that shadows nothing."""
    (tmp_path / "json.py").write_text("def build(dim, heads):\n    return ('built', dim, heads)\n")
    monkeypatch.chdir(tmp_path)
    before = list(sys.path)
    import json

    for ref in ("./json.py:build", "json.py:build", str(tmp_path / "json.py") + ":build"):
        factory = load_factory(ref)
        assert factory(8, 2) == ("built", 8, 2)
        assert sys.path == before and sys.modules["json"] is json
        assert factory.__module__.startswith("attncli_module_json_")


def test_a_file_that_fails_to_load_is_one_error(tmp_path: Any) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("raise RuntimeError('broken on import')\n")
    with pytest.raises(SpecError, match=r"cannot import .*RuntimeError: broken on import") as info:
        load_factory(f"{bad}:build")
    assert info.value.flag == "--module"
    assert not [m for m in sys.modules if m.startswith("attncli_module_bad_")]
    with pytest.raises(SpecError, match=r"no file .*PATH/TO/FILE\.py:FACTORY"):
        load_factory(f"{tmp_path / 'missing.py'}:build")
