"""A model by its Hub name, through the real ``huggingface_hub`` client against a stand-in on 127.0.0.1.

Each run is a real process (``python -m attncli``): the client reads ``HF_ENDPOINT``, ``HF_HOME`` and
``HF_HUB_OFFLINE`` when it is imported. The files served are the published ones (tests/data/configs,
Llama-3.1-8B's ``model.safetensors.index.json`` total_size as published: 16,060,522,496 bytes).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.hubstub import HubStub

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests/data/configs"
LLAMA = "meta-llama/Llama-3.1-8B"
LLAMA_WEIGHTS = 16_060_522_496
"""metadata.total_size of meta-llama/Llama-3.1-8B's model.safetensors.index.json."""


@dataclass
class Run:
    code: int
    out: str
    err: str
    seconds: float

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubStub]:
    stub = HubStub()
    stub.home = tmp_path / "hf"  # type: ignore[attr-defined]
    try:
        yield stub
    finally:
        stub.close()


def attncli(stub: HubStub, *args: str, **env: str) -> Run:
    full = {**os.environ, "HF_ENDPOINT": stub.endpoint, "HF_HOME": str(stub.home),  # type: ignore[attr-defined]
            "PYTHONPATH": str(ROOT), "ATTNCLI_HUB_TIMEOUT": "10", **env}
    # NOTE: 10 s a request: the stand-in answers from this process, which a loaded machine may not schedule
    # within 1 s; the tests of a server that does not answer set 1 themselves
    if "HF_HUB_OFFLINE" not in env:
        full.pop("HF_HUB_OFFLINE", None)
    start = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "attncli", *args], capture_output=True, text=True, env=full,
                       cwd=ROOT, timeout=120, stdin=subprocess.DEVNULL)
    return Run(r.returncode, r.stdout, r.stderr, time.monotonic() - start)


def llama(stub: HubStub) -> str:
    index = {"metadata": {"total_size": LLAMA_WEIGHTS},
             "weight_map": {"model.embed_tokens.weight": "model-00001-of-00004.safetensors"}}
    return stub.add(LLAMA, {"config.json": (DATA / "llama-3.1-8b/config.json").read_bytes(),
                            "model.safetensors.index.json": json.dumps(index).encode()})


def one_line(r: Run, *words: str) -> None:
    assert r.code == 2, (r.code, r.err)
    assert r.err.count("\n") == 1 and r.err.startswith("attncli: error: "), r.err
    assert "Traceback" not in r.err and r.out == ""
    for word in words:
        assert word in r.err, r.err


PROVENANCE = ("model", "source", "weights_source")


def test_a_hub_model_answers_as_the_same_files_through_config(hub: HubStub, tmp_path: Path) -> None:
    commit = llama(hub)
    r = attncli(hub, "model", LLAMA, "--format", "json")
    assert r.code == 0, r.err
    local = tmp_path / "Llama-3.1-8B"
    local.mkdir()
    for name, data in hub.repos[LLAMA].items():
        (local / name).write_bytes(data)
    same = attncli(hub, "model", "--config", str(local), "--format", "json")
    assert same.code == 0, same.err
    doc, ref = r.json(), same.json()
    origin = f"hub:{LLAMA}@{commit}"
    assert doc["config"]["model"] == LLAMA and doc["config"]["source"] == f"{origin}: config.json"
    assert doc["config"]["weights_bytes"] == ref["config"]["weights_bytes"] == LLAMA_WEIGHTS
    assert doc["config"]["weights_source"].startswith(origin)
    for d in (doc, ref):
        for key in PROVENANCE:
            d["config"].pop(key)
    assert doc == ref
    # --config takes the Hub id too, on every command
    flops = attncli(hub, "flops", "--config", LLAMA, "--format", "json")
    assert flops.code == 0, flops.err
    cfg = flops.json()["config"]
    assert (cfg["model"], cfg["dim"], cfg["heads"], cfg["kv_heads"]) == (LLAMA, 4096, 32, 8)
    assert f"config.json read from {origin}" in cfg["notes"]
    presets = attncli(hub, "presets", "--config", LLAMA, "--format", "json")
    assert presets.code == 0, presets.err
    assert presets.json()["config"]["config_file"] == f"{origin}: config.json"
    assert presets.json()["presets"][0]["kv_heads"] == 8


def test_a_second_run_at_a_commit_or_offline_makes_no_request(hub: HubStub) -> None:
    commit = llama(hub)
    assert attncli(hub, "model", LLAMA, "-f", "json").code == 0  # main: the client notes main's commit
    before = hub.count()
    again = attncli(hub, "model", LLAMA, "--revision", commit, "-f", "json")
    assert again.code == 0 and hub.count() == before, hub.requests[before:]
    assert again.json()["config"]["weights_bytes"] == LLAMA_WEIGHTS
    offline = attncli(hub, "model", LLAMA, "-f", "json", HF_HUB_OFFLINE="1")
    assert offline.code == 0 and hub.count() == before, offline.err
    assert offline.json()["config"]["source"] == f"hub:{LLAMA}@{commit}: config.json"


def test_the_weights_of_a_single_safetensors_file_come_from_its_header(hub: HubStub) -> None:
    # A safetensors file: 8 bytes of header length, the JSON header, the tensors' bytes.
    header = {"a": {"dtype": "BF16", "shape": [4096, 4096], "data_offsets": [0, 4096 * 4096 * 2]},
              "b": {"dtype": "F32", "shape": [4096], "data_offsets": [4096 * 4096 * 2, 4096 * 4096 * 2 + 4096 * 4]}}
    raw = json.dumps(header).encode()
    blob = struct.pack("<Q", len(raw)) + raw + b"\0" * 64  # the tensors themselves are never read
    commit = hub.add("Qwen/Qwen3-8B", {"config.json": (DATA / "qwen3-8b/config.json").read_bytes(),
                                       "model.safetensors": blob})
    r = attncli(hub, "model", "Qwen/Qwen3-8B", "--revision", commit, "-f", "json")
    assert r.code == 0, r.err
    assert r.json()["config"]["weights_bytes"] == 4096 * 4096 * 2 + 4096 * 4
    assert "model.safetensors header" in r.json()["config"]["weights_source"]
    before = hub.count()
    assert attncli(hub, "model", "Qwen/Qwen3-8B", "--revision", commit, "-f", "json").json() == r.json()
    assert hub.count() == before


@pytest.mark.parametrize(("setup", "words"), [
    ("missing", ["MODEL: ", "no model org/none", "hf auth login"]),
    ("missing404", ["MODEL: ", "no model org/none", "hf auth login"]),
    ("gated", ["MODEL: ", f"{LLAMA} is gated", "hf auth login", "HF_TOKEN"]),
    ("gated403", ["MODEL: ", f"{LLAMA} is gated", "hf auth login", "HF_TOKEN"]),
    ("no_config", ["MODEL: ", "org/weights-only has no config.json"]),
    ("gguf", ["MODEL: ", "org/model-GGUF holds only GGUF files"]),
    ("error", ["MODEL: ", "answered HTTP 500"]),
    ("offline", ["MODEL: ", "not in the cache and HF_HUB_OFFLINE is set"]),
    ("not_json", ["MODEL: ", "not JSON"]),
    ("not_object", ["MODEL: ", "a config.json holds a JSON object, got list"]),
])
def test_each_failure_is_one_line_exit_2(hub: HubStub, setup: str, words: list[str]) -> None:
    llama(hub)
    name, env = LLAMA, {}
    hub.refusal = 404 if setup == "missing404" else 403 if setup == "gated403" else 401
    if setup.startswith("missing"):
        name = "org/none"
    elif setup.startswith("gated"):
        hub.gated.add(LLAMA)
    elif setup == "no_config":
        name = "org/weights-only"
        hub.add(name, {"model.safetensors": b"x"})
    elif setup == "gguf":
        name = "org/model-GGUF"
        hub.add(name, {"model-Q4_K_M.gguf": b"GGUF", "README.md": b"# x"})
    elif setup == "error":
        hub.mode = "error"
    elif setup == "offline":
        env = {"HF_HUB_OFFLINE": "1"}
    elif setup in ("not_json", "not_object"):
        name = "org/broken"
        hub.add(name, {"config.json": b"{not json" if setup == "not_json" else b"[1, 2]"})
    r = attncli(hub, "model", name, **env)
    one_line(r, *words)
    assert not (Path(hub.home) / "attncli").exists()  # type: ignore[attr-defined]


def test_a_server_that_never_answers_is_given_up_on(hub: HubStub) -> None:
    llama(hub)
    hub.mode = "hang"
    r = attncli(hub, "model", LLAMA, ATTNCLI_HUB_TIMEOUT="1")  # NOTE: the client's own default retries for minutes
    one_line(r, "MODEL: ", "no answer from http://127.0.0.1:", "within 1 s", "ATTNCLI_HUB_TIMEOUT")
    assert r.seconds < 30
    flag = attncli(hub, "shapes", "--config", LLAMA)
    one_line(flag, "--config: ", "no answer")


def test_a_config_error_names_the_flag_it_came_from(hub: HubStub) -> None:
    hub.add("org/broken", {"config.json": b"{}"})
    one_line(attncli(hub, "flops", "--config", "org/broken"), "--config: ", "no hidden size")
    one_line(attncli(hub, "model", "org/broken", "--revision", "v9"), "MODEL: ", "no revision")


def test_the_cache_folder_is_the_clients(hub: HubStub) -> None:
    commit = llama(hub)
    assert attncli(hub, "model", LLAMA, "-f", "json").code == 0
    snapshot = Path(hub.home) / "hub" / "models--meta-llama--Llama-3.1-8B" / "snapshots" / commit  # type: ignore
    assert sorted(p.name for p in snapshot.iterdir()) == ["config.json", "model.safetensors.index.json"]
    shutil.rmtree(Path(hub.home))  # type: ignore[attr-defined]


def test_on_a_terminal_an_error_after_a_download_is_still_one_line(hub: HubStub) -> None:
    """The client draws a progress bar on a terminal's stderr (a blank line was left before the error)."""
    import pty
    import select

    hub.add("org/broken", {"config.json": b"{not json"})
    env = {**os.environ, "HF_ENDPOINT": hub.endpoint, "HF_HOME": str(hub.home),  # type: ignore[attr-defined]
           "PYTHONPATH": str(ROOT), "ATTNCLI_HUB_TIMEOUT": "1"}
    env.pop("HF_HUB_OFFLINE", None)
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "attncli", "model", "org/broken"], stdout=subprocess.PIPE,
                            stderr=slave, stdin=subprocess.DEVNULL, env=env, cwd=ROOT)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # NOTE: the pty's other end closed: the process is done
                break
            if not chunk:
                break
            chunks.append(chunk)
        elif proc.poll() is not None:
            break
    os.close(master)
    assert proc.wait(timeout=60) == 2
    err = b"".join(chunks).decode()
    assert err.replace("\r\n", "\n").splitlines() == [err.strip()] and err.startswith("attncli: error: MODEL: "), err


# ---------------------------------------------------------------------------- hostile servers (issue 32)
def _snapshots(stub: HubStub) -> list[Path]:
    return [p for p in (Path(stub.home) / "hub").glob("models--*/snapshots/*/*")]  # type: ignore[attr-defined]


def test_a_body_cut_short_is_one_line_and_never_cached(hub: HubStub) -> None:
    """The server announces twice the bytes it sends: the client's warning ("Trying to resume download...")
    was a second line on stderr; the file never reaches the snapshot a later run reads."""
    llama(hub)
    hub.behaviour[LLAMA] = "long_length"
    one_line(attncli(hub, "model", LLAMA), "MODEL: ")
    assert _snapshots(hub) == []


def test_a_revision_that_climbs_out_of_the_cache_is_refused_before_any_request(hub: HubStub) -> None:
    """The client writes ``refs/<revision>`` under its cache: ``../../x`` would name a file outside it."""
    llama(hub)
    hub.behaviour[LLAMA] = "any_revision"
    one_line(attncli(hub, "model", LLAMA, "--revision", "../../evil"), "--revision: ", "'../../evil'")
    one_line(attncli(hub, "model", f"{LLAMA}@../../../evil"), "MODEL: ", "not a branch, tag or commit")
    one_line(attncli(hub, "flops", "--config", f"{LLAMA}@refs/../x"), "--config: ", "not a branch, tag or commit")
    assert hub.count() == 0
    assert not (Path(hub.home) / "hub").exists()  # type: ignore[attr-defined]


def test_an_over_large_config_is_refused_from_its_announced_size(hub: HubStub) -> None:
    """A 100 MiB config.json: refused from the HEAD's size (attncli reads at most 4 MiB), not downloaded."""
    hub.add("org/huge", {"config.json": b'{"padding": "' + b"x" * (100 << 20) + b'"}'})
    one_line(attncli(hub, "model", "org/huge"), "MODEL: ", "104,857,615 bytes", "not downloaded")
    assert [c for c, _ in hub.requests] == ["HEAD"]
    assert _snapshots(hub) == []


def test_a_safetensors_header_with_bad_offsets_gives_no_size(hub: HubStub) -> None:
    """Offsets that run backwards summed to a negative weights' size, which was stored and trusted."""
    header = {"a": {"dtype": "BF16", "shape": [1], "data_offsets": [10**30, -5]}}
    raw = json.dumps(header).encode()
    commit = hub.add("org/odd", {"config.json": (DATA / "qwen3-8b/config.json").read_bytes(),
                                 "model.safetensors": struct.pack("<Q", len(raw)) + raw + b"\0" * 8})
    r = attncli(hub, "model", "org/odd", "-f", "json")
    assert r.code == 0, r.err
    assert r.json()["config"]["weights_bytes"] is None
    store = Path(hub.home) / "attncli" / "weights" / "org--odd" / f"{commit}.json"  # type: ignore[attr-defined]
    assert not store.exists()
    # a size stored by an older attncli is checked too, not trusted
    store.parent.mkdir(parents=True)
    store.write_text(json.dumps({"weights_bytes": -5, "weights_source": "x"}))
    again = attncli(hub, "model", "org/odd", "-f", "json", HF_HUB_OFFLINE="1")
    assert again.code == 0, again.err
    assert again.json()["config"]["weights_bytes"] is None


def test_the_whole_look_up_has_one_deadline() -> None:
    """Each request has ATTNCLI_HUB_TIMEOUT; past three times that in all, no request starts."""
    import time

    from attncli.models import hub as hubmod
    from attncli.spec import SpecError

    hubmod._DEADLINE.append(time.monotonic() - 1)
    try:
        with pytest.raises(SpecError, match="in all"):
            hubmod._bounded(lambda: 1, hubmod._left(5.0), lambda text: SpecError("MODEL", text))
    finally:
        hubmod._DEADLINE.pop()
    assert hubmod._left(5.0) == 5.0
    assert hubmod._bounded(lambda: 7, hubmod._left(5.0), lambda text: SpecError("MODEL", text)) == 7


def test_a_cached_name_loads_no_download_code(hub: HubStub) -> None:
    """A name read from the cache costs what a local folder costs: the client's download module and its
    HTTP stack (about 0.3 s to import) are not loaded, and nothing is asked of the server."""
    commit = llama(hub)
    assert attncli(hub, "model", LLAMA, "-f", "json").code == 0
    before = hub.count()
    for args, env in (((LLAMA, "--revision", commit), {}), ((LLAMA,), {"HF_HUB_OFFLINE": "1"})):
        r = attncli(hub, "model", *args, "-f", "json", PYTHONPROFILEIMPORTTIME="1", **env)
        assert r.code == 0, r.err[-400:]
        loaded = {line.rsplit("|", 1)[-1].strip() for line in r.err.splitlines() if "|" in line}
        assert "huggingface_hub.file_download" not in loaded and not any(m.startswith("httpx") for m in loaded)
        assert json.loads(r.out)["config"]["weights_bytes"] == LLAMA_WEIGHTS
    assert hub.count() == before
