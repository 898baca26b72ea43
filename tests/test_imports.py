"""Imports run downward: the packages of attncli stand in one order, and a module imports only its own
package and the ones below it. Read from the source with ``ast`` (every import, at module level or inside a
function, ``TYPE_CHECKING`` included), so an import that runs late still counts."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "attncli"

ORDER: dict[str, int] = {
    "choices": 0, "numbers": 0, "registry": 0, "spec": 1, "names": 2, "io": 2, "layer": 3, "engine": 4, "kinds": 5,
    "models": 6, "analyses": 7, "modules": 8, "serving": 9, "render": 10, "cli": 11, "__main__": 12,
}
"""attncli's packages from the ground floor up (modules of one floor may import each other)."""

KNOWN_UPWARD: frozenset[tuple[str, str]] = frozenset({
    # NOTE: the one import from a lower floor to a higher one, for type checking only: the registry's
    # kind_of returns the Kind protocol (it loads a kind's module by the name its entry gives)
    ("registry", "kinds"),
})
"""Upward imports allowed, each only under ``if TYPE_CHECKING:`` (:func:`test_upward_imports_are_for_types_only`)."""


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        name = ".".join(("attncli", *path.relative_to(ROOT).with_suffix("").parts))
        out[name.removesuffix(".__init__")] = path
    return out


def _nodes(tree: ast.AST, run_time_only: bool) -> list[ast.AST]:
    """Every node of ``tree``; with ``run_time_only``, not those under ``if TYPE_CHECKING:``."""
    out: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        if run_time_only and isinstance(node, ast.If) and isinstance(node.test, ast.Name) \
                and node.test.id == "TYPE_CHECKING":
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return out


def _imports(name: str, path: Path, run_time_only: bool = False) -> set[str]:
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in _nodes(ast.parse(path.read_text(encoding="utf-8")), run_time_only):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in found if m.startswith("attncli.") or m == "attncli"}


def test_every_package_has_a_floor() -> None:
    packages = {_package(m) for m in _modules()} - {""}
    assert packages <= set(ORDER), f"give {sorted(packages - set(ORDER))} a floor in ORDER"


def test_imports_run_downward() -> None:
    mods = _modules()
    upward = set()
    for name, path in mods.items():
        own = _package(name)
        for target in _imports(name, path):
            other = _package(target)
            if target in mods and other and own and ORDER[other] > ORDER[own]:
                upward.add((own, other, name, target))
    unexpected = sorted(u for u in upward if (u[0], u[1]) not in KNOWN_UPWARD)
    assert not unexpected, "imports from a lower floor to a higher one:\n" + "\n".join(
        f"{n} -> {t}" for _, _, n, t in unexpected)
    assert {(a, b) for a, b, _, _ in upward} == KNOWN_UPWARD, "a known upward import is gone: drop it from KNOWN_UPWARD"


def test_upward_imports_are_for_types_only() -> None:
    mods = _modules()
    for name, path in mods.items():
        own = _package(name)
        runtime = {t for t in _imports(name, path, run_time_only=True)
                   if t in mods and _package(t) and own and ORDER[_package(t)] > ORDER[own]}
        assert not runtime, f"{name} imports {sorted(runtime)} at run time, from a lower floor to a higher one"


def test_reading_a_config_imports_no_command() -> None:
    code = ("import sys; import attncli.models.modelconfig, attncli.models.configs; "
            "print(sorted(m for m in sys.modules if m == 'typer' or m.startswith('attncli.cli') or m == 'rich'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", out
