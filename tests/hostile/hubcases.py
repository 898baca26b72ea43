"""Hub names for the subprocess fuzz: a stand-in Hub on 127.0.0.1 (tests/hubstub.py) whose repositories
answer in hostile ways, malformed ids and path tricks, and the check that a failed download leaves
nothing in the client's cache that a later run would trust.

A case that talks to the stand-in carries :data:`STUB` as its ``HF_ENDPOINT`` and :data:`HOME` as its
``HF_HOME``; the harness puts the stand-in's address and a folder of the run's own in their place.
"""

from __future__ import annotations

import functools
import json
import random
import struct
from pathlib import Path

from tests.hubstub import HubStub

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "configs"
STUB, HOME = "@stub", "@home"
TIMEOUT_S = 3.0
"""ATTNCLI_HUB_TIMEOUT of every Hub case."""
HUGE_BYTES = 100 << 20
"""The over-large config.json a repository serves (100 MiB)."""


def _llama() -> bytes:
    return (DATA / "llama-3.1-8b" / "config.json").read_bytes()


def _safetensors(header: bytes, length: int | None = None) -> bytes:
    return struct.pack("<Q", len(header) if length is None else length) + header + b"\0" * 64


GOOD_HEADER = {"a": {"dtype": "BF16", "shape": [64, 64], "data_offsets": [0, 8192]}}
WEIGHTS_TOTAL = {"fuzz/safetensors": 8192}
"""The weights' bytes attncli may store for a repository (its one model.safetensors' tensors)."""


@functools.cache
def repositories() -> dict[str, tuple[str, dict[str, bytes]]]:
    """Repository -> (how it answers, its files); built once (one of them is 100 MiB)."""
    cfg = _llama()
    index = json.dumps({"metadata": {"total_size": 16_060_522_496}, "weight_map": {}}).encode()
    good = {"config.json": cfg, "model.safetensors.index.json": index}
    huge = cfg[:-1].rstrip(b"}\n ") + b', "padding": "' + b"x" * HUGE_BYTES + b'"}'
    repos: dict[str, tuple[str, dict[str, bytes]]] = {
        f"fuzz/{how.replace('_', '-')}": (how, good)
        for how in ("ok", "slow", "hang", "error", "truncated", "short_length", "long_length", "redirect_loop",
                    "redirect_away", "drip", "any_revision")}
    repos |= {
        "fuzz/huge": ("ok", {"config.json": huge}),
        "fuzz/invalid-json": ("ok", {"config.json": b"{not json"}),
        "fuzz/half-json": ("ok", {"config.json": cfg[:len(cfg) // 2]}),
        "fuzz/latin1": ("ok", {"config.json": cfg.replace(b'"llama"', b'"ll\xe0ma\xff"')}),
        "fuzz/utf16": ("ok", {"config.json": cfg.decode().encode("utf-16")}),
        "fuzz/nan": ("ok", {"config.json": cfg.replace(b"4096", b"NaN").replace(b"500000.0", b"Infinity")}),
        "fuzz/empty": ("ok", {"config.json": b""}),
        "fuzz/no-config": ("ok", {"model.safetensors": _safetensors(json.dumps(GOOD_HEADER).encode())}),
        "fuzz/gguf": ("ok", {"model-Q4.gguf": b"GGUF"}),
        "fuzz/safetensors": ("ok", {"config.json": cfg, "model.safetensors": _safetensors(
            json.dumps(GOOD_HEADER).encode())}),
        "fuzz/bad-header": ("ok", {"config.json": cfg, "model.safetensors": _safetensors(b"{not json")}),
        "fuzz/huge-header": ("ok", {"config.json": cfg, "model.safetensors": _safetensors(b"{}", 2**63)}),
        "fuzz/neg-offsets": ("ok", {"config.json": cfg, "model.safetensors": _safetensors(json.dumps(
            {"a": {"dtype": "BF16", "shape": [1], "data_offsets": [10**30, -5]}}).encode())}),
        "fuzz/bad-index": ("ok", {"config.json": cfg, "model.safetensors.index.json": b'{"metadata": {"total_size": '
                                                                                       b'-1e400}}'}),
        "fuzz/slow-index": ("ok", {"config.json": cfg}),
    }
    return repos


def start() -> HubStub:
    stub = HubStub()
    for repo, (how, files) in repositories().items():
        stub.add(repo, files)
        if how != "ok":
            stub.behaviour[repo] = how
    return stub


NAMES = ("org/", "/name", "org//name", "a/b/c", "org/name@", "org/..", "org/.", "../etc/passwd", "/etc/passwd",
         "%2e%2e/%2e%2e", "org/%2e%2e", "..%2f..%2fetc", "org/name@../../x", "org/na me", "-org/name", "org/name.json",
         "org/" + "n" * 200, "o" * 97 + "/name", "org/name@" + "r" * 300, "ORG/Name_1.x", "org/name\u202e",
         "org/nàme", "fuzz/missing", "fuzz/ok@v9", "fuzz/ok@" + "0" * 40, "fuzz/any-revision@../../../evil")
"""Malformed ids, path tricks and unknown repositories (besides the stand-in's own repositories)."""

REVISIONS = ("main", "../../evil", "..", "/etc", "%2e%2e", "refs/pr/1", "r" * 300, "x\ny", "", "0" * 40, "v1.0",
             "refs/../../../x", "\\..\\x")
"""``--revision`` values."""


def names() -> list[str]:
    return [*repositories(), *NAMES]


def env() -> dict[str, str]:
    """A Hub case's environment (the harness fills in :data:`STUB` and :data:`HOME`)."""
    return {"HF_ENDPOINT": STUB, "HF_HOME": HOME, "HF_HUB_OFFLINE": "", "ATTNCLI_HUB_TIMEOUT": str(TIMEOUT_S)}


def hub_argv(rng: random.Random, command: str) -> list[str]:
    """A Hub name as MODEL (``model``) or ``--config`` (any command taking one), perhaps with ``--revision``."""
    name = rng.choice(names())
    argv = [command, name] if command == "model" and rng.random() < 0.7 else [command, "--config", name]
    if command == "model" and rng.random() < 0.3:
        argv += ["--revision", rng.choice(REVISIONS)]
    return argv


def cache_failures(home: Path, stub: HubStub) -> list[str]:
    """What the client's cache under ``home`` holds that a later run would trust and the stand-in never
    served whole: a snapshot file whose bytes are not the repository's file as announced, a ref or
    file outside the cache's own folders, a weights size that is not the true one."""
    fails = []
    hub = home / "hub"
    if home.exists():
        for path in home.rglob("*"):
            try:
                path.resolve().relative_to(home.resolve())
            except ValueError:
                fails.append(f"cache link outside HF_HOME ({path.name})")
    for snap in hub.glob("models--*/snapshots/*/**/*"):
        if not snap.is_file():
            continue
        parts = snap.relative_to(hub).parts  # models--org--name, snapshots, commit, file...
        repo, name = parts[0][len("models--"):].replace("--", "/"), "/".join(parts[3:])
        files = stub.repos.get(repo, {})
        data = files.get(name)
        how = stub.behaviour.get(repo, "ok")
        expected = None if data is None else data[:len(data) // 2] if how == "short_length" else data
        if snap.read_bytes() != expected:
            fails.append(f"cache holds a {name} of {repo} the server did not serve whole")
    for ref in hub.glob("models--*/refs/**/*"):
        if ref.is_file() and ".." in ref.relative_to(hub).parts:
            fails.append("cache ref outside refs/")
    if hub.exists():
        odd = [p.name for p in hub.iterdir() if not p.name.startswith(("models--", ".locks", "version", "CACHEDIR"))]
        if odd:
            fails.append(f"cache wrote outside its folders ({odd[:2]})")
    for store in (home / "attncli" / "weights").glob("*/*.json"):
        repo = store.parent.name.replace("--", "/")
        try:
            total = json.loads(store.read_text())["weights_bytes"]
        except (OSError, ValueError, KeyError):
            total = None
        if total != WEIGHTS_TOTAL.get(repo):
            fails.append(f"weights of {repo} stored as {total!r}")
    return fails


def home_of(cwd: Path) -> Path:
    """The run's own HF_HOME, beside its working folder (so --output's folder check does not see it)."""
    return cwd.parent / f"{cwd.name}-hf"


def fill(env_: dict[str, str], stub: HubStub | None, cwd: Path) -> dict[str, str]:
    if stub is None or env_.get("HF_ENDPOINT") != STUB:
        return env_
    return {**env_, "HF_ENDPOINT": stub.endpoint, "HF_HOME": str(home_of(cwd))}


def is_hub(env_: dict[str, str]) -> bool:
    return env_.get("HF_ENDPOINT") == STUB

