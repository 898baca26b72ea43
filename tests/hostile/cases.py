"""Cases for the subprocess fuzz: random argvs over every discovered (command, option) pair drawn
from typed vocabularies and the hostile corpus (:mod:`tests.hostile.corpus`), odd environments, a
closed stdout and random Ctrl-Cs; and the fixed set CI runs every time."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from tests.cli.discovery import POSITIONAL_VALUES, Opt, command_arguments, commands
from tests.hostile import corpus, families, hubcases
from tests.hostile.harness import Case, random_sigint

BUDGETS = ("68.7G", "68.72G", "68,7G", "1,1M", "1,,,0", "1e9", "9007199254740993", "1e400", "-5", "1.5", "nan",
           "", "1_000", "0", "68,719,476,736", "1e30", "1e31", "12M", "1K", "x")
TOLERANCES = ("0.05", "5%", "1e300", "-1", "nan", "inf", "abc", "100%", "0", "1e-9", "")
TOKENS = ("1e200,1;2,3;3,4", "1,2;2,3;3,4", "1,2;2,3;2,3", "nan,1;2,3;3,4", "auto", "seed", "random", "x",
          "1e150,1;2,3;3,4", ";", "1,2")
INTS = ("1", "2", "3", "4", "8", "16", "64", "0", "-1", "abc", "", "1e3", "65536", str(10**9), str(2**63), "5632")
FLOATS = ("0", "0.1", "0.5", "-1", "nan", "inf", "1e300", "abc", "1e-12")
RANGES = ("8:64:x2", "2,4", "1:8:x2", "8:1:x2", "1:1000:+1", "::", "4", "1:1000000000:x2", "1024:65536:+1024")
WORDS = ("none", "rope", "sinusoidal", "learned", "float32", "float64", "float16", "0,2,1", "0,0,1", "2,1,0",
         "json", "x", "", "no_such_module_xyz:make", "json:loads", "vit-b16", "gpt2", "A100", "h100-sxm",
         "fused", "0", "-1", "\x1b[31mx\x07", "llama-3-8b", "deepseek-v3")

# NOTE: model --engine vllm (attncli/cli/engineflags.py) and the model/config flags
ENGINE_BYTES = ("0", "1", "1B", "1PB", "1P", "1e15", str(2**50), "40GiB", "40G", "42.9GB", "4.29e10", "-1", "nan",
                "inf", "1e400", "40 GiB", "40gib", "40KiB", "0.5", str(2**62), str(2**62 + 1), "1e-3", "", "x", "1Ei",
                "8EiB", "1_000", "40Gi", "1.5KiB", "0x10")
UTILIZATIONS = ("0", "-0.1", "1", "1.0000001", "1.5", "nan", "inf", "-inf", "1e-300", "0.92", "0.5", "abc", "", "1e308")
BLOCK_SIZES = ("1", "15", "16", "17", "24", "32", "48", "64", "100", "0", "-16", str(2**31), str(2**63), "1e3", "x")
MAX_MODEL_LENS = ("1", "0", "-1", "8k:1M:x2", "1:2:+1", "1k", "1M", "1G", "1T", str(2**63), "8k:1G:x2", "1:100000:+1",
                  "4096,8192", "x", "", "nan", "1e9", "8k:1k:x2", "1:1:x2", "0:8k:x2", "8k,0")
CACHES = ("0", "1", "1k:1M:x2", "0:1G:x2", "1:1000000:+1", str(2**62), "1T", "1G", "-1", "1k,1G", "x", "", "0,0",
          "1e9", "1M:1k:x2")
IGNORE_FIELDS = ("sliding_window", "layer_types", "compress_ratios", "global_head_dim", "num_kv_shared_layers",
                 "no_such_field", "", "hidden_size", "model_type", "text_config.sliding_window", "\x1b[31m", "a" * 300,
                 "head_dim,sliding_window", "*", "text_config.", "padding")
LAYERS = ("0", "1", "-1", "2", "47", "48", "61", "1000000", "x", "", "0,1", "1e3", str(2**63))
TPS = ("1", "2", "3", "4", "7", "8", "16", "64", "1024", "0", "-1", str(2**31), "x")
BY_FLAG = {"--kv-cache-memory": ENGINE_BYTES, "--weights-memory": ENGINE_BYTES + BUDGETS[:8],
           "--max-kv-bytes": BUDGETS, "--gpu-memory-utilization": UTILIZATIONS, "--block-size": BLOCK_SIZES,
           "--max-model-len": MAX_MODEL_LENS, "--ignore-field": IGNORE_FIELDS, "--layer": LAYERS, "--tp": TPS,
           "--revision": hubcases.REVISIONS, "--max-num-batched-tokens": (*INTS, "8192", "16", "1")}
"""Hostile values of the flags whose meaning a type does not say (a size, a fraction, a range, a field)."""
VALID_BY_FLAG = {"--kv-cache-memory": ("40GiB", "8G", "1e9", "80GB"), "--gpu-memory-utilization": ("0.9", "0.5", "1"),
                 "--block-size": ("16", "32", "64"), "--max-model-len": ("4096", "8k:128k:x2", "1k,32k", "131072"),
                 "--tp": ("1", "2", "4", "8"), "--cache": ("0", "4096", "1k:128k:x2", "0,32k")}
COMMAND_WEIGHTS = {"model": 4, "gpus": 0.5}
"""How often a free case picks a command, against 1 (model has the most new flags, gpus the fewest)."""
P_ENGINE, P_HUB, P_FAMILY = 0.5, 0.12, 0.5
"""Chances that a model case gets --engine vllm, that a case is a Hub case, that a --config is a family's."""

VALID_INTS = ("1", "2", "4", "8", "16", "64", "128")
VALID_FLOATS = ("0", "0.01", "0.1", "0.5")
VALID_RANGES = ("8:64:x2", "2,4", "1:8:x2", "16:128:+16")

P_ENV, P_CLOSED, P_SIGINT, P_VALID = 0.25, 0.04, 0.08, 0.5
"""Chances that a random case gets an odd environment, a closed stdout, a Ctrl-C, and well-formed
numbers and choices only (so that it reaches the count, the run, the output and their failures)."""


@dataclass
class Vocab:
    baselines: list[str]
    outputs: list[str]
    plots: list[str]
    configs: list[str]
    modules: list[str]
    families: list[str] = field(default_factory=list)
    """Hostile config.json files per family and field (tests/hostile/families.py)."""


def vocabulary(tmp: Path) -> Vocab:
    """The corpus written under ``tmp``."""
    return Vocab(corpus.baselines(tmp), corpus.outputs(tmp),
                 ["p.png", "p.txt", "no/p.png", str(tmp / "p.png")], corpus.configs(tmp), corpus.modules(),
                 families.write(tmp / "families"))


def value_for(opt: Opt, rng: random.Random, vocab: Vocab, command: str, valid: bool = False) -> str:
    name = opt.names[0]
    ranged = command in ("sweep", "model") and name in ("--dim", "--heads", "--batch", "--seq", "--context", "--cache")
    if valid and name in VALID_BY_FLAG:
        return rng.choice(VALID_BY_FLAG[name])
    if valid and (ranged or opt.kind in ("int", "float", "choice")):
        if ranged:
            return rng.choice(VALID_RANGES + VALID_INTS)
        return rng.choice({"int": VALID_INTS, "float": VALID_FLOATS}.get(opt.kind, opt.choices))
    if name == "--baseline":
        return rng.choice(vocab.baselines)
    if name in ("--output", "-o"):
        return rng.choice(vocab.outputs)
    if name == "--plot":
        return rng.choice(vocab.plots)
    if name == "--config":
        return rng.choice(vocab.families if vocab.families and rng.random() < P_FAMILY else vocab.configs)
    if name in BY_FLAG:
        return rng.choice(BY_FLAG[name])
    if name == "--cache" and command == "model":
        return rng.choice(CACHES)
    if name == "--module":
        return rng.choice(vocab.modules)
    if name in ("--max-flops", "--max-params"):
        return rng.choice(BUDGETS)
    if name == "--tolerance":
        return rng.choice(TOLERANCES)
    if name == "--tokens":
        return rng.choice(TOKENS)
    if opt.kind == "int":
        return rng.choice(INTS)
    if opt.kind == "float":
        return rng.choice(FLOATS)
    if opt.kind == "choice":
        return rng.choice([*opt.choices, *opt.choices, "bogus"])
    if opt.kind == "path":
        return rng.choice(vocab.outputs)
    if ranged:
        return rng.choice(RANGES + INTS[:6])
    return rng.choice(WORDS + INTS[:4])


def _add(argv: list[str], opt: Opt, rng: random.Random, vocab: Vocab, command: str, valid: bool) -> None:
    argv.append(rng.choice(opt.names))
    if opt.kind != "flag":
        value = value_for(opt, rng, vocab, command, valid)
        argv.append(value)
        if opt.names[0] == "--module" and value.rsplit(":", 1)[-1] in corpus.SLOW_MODULES:
            argv += ["--module-timeout", "2"]  # NOTE: these never return; the fence must end them


def _without(argv: list[str], flags: tuple[str, ...]) -> list[str]:
    """``argv`` less every ``FLAG VALUE`` pair of ``flags``."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in flags:
            skip = True
        else:
            out.append(a)
    return out


def random_case(rng: random.Random, cmds: dict[str, tuple[Opt, ...]], vocab: Vocab,
                first: tuple[str, Opt] | None = None) -> Case:
    """A random case; ``first`` = (command, option) puts that pair in it (every pair gets its turn)."""
    names = sorted(cmds)
    command = first[0] if first else rng.choices(names, [COMMAND_WEIGHTS.get(n, 1) for n in names])[0]
    argv = [command]
    opts = cmds[command]
    valid = rng.random() < P_VALID
    if first:
        _add(argv, first[1], rng, vocab, command, valid)
    for _ in range(rng.choice((0, 1, 2, 2, 3, 3, 4, 5))):
        _add(argv, rng.choice(opts), rng, vocab, command, valid)
        if rng.random() < 0.05:  # repeated option
            argv += argv[-2:]
    if rng.random() < 0.5:
        argv += ["--format", "json"]
    roll = rng.random() * (3 if valid else 1)
    if roll < 0.03:
        argv.append("--no-such-flag")
    elif roll < 0.05:
        argv.append("stray")
    elif roll < 0.06:
        argv.append("--help")
    elif roll < 0.07:
        argv.append(argv[-1] if argv[-1].startswith("-") else "--format")  # dangling option
    if command == "model" and "--engine" not in argv and rng.random() < P_ENGINE:
        argv += ["--engine", "vllm"] + (["--kv-cache-memory", rng.choice(VALID_BY_FLAG["--kv-cache-memory"])]
                                        if "--kv-cache-memory" not in argv and rng.random() < 0.7 else [])
    env: dict[str, str] = {}
    hub = ("--config" in argv and rng.random() < P_HUB * 3) or rng.random() < P_HUB
    takes_config = command == "model" or any(o.names[0] == "--config" for o in opts)
    if hub and takes_config and (first is None or first[1].names[0] in ("--config", "--revision")):
        argv = _without(argv, ("--config", "--preset", "--revision"))
        argv[:1] = hubcases.hub_argv(rng, command)
        env = hubcases.env()
    elif command_arguments(command) and rng.random() < 0.3:  # NOTE: attncli model MODEL
        pool = POSITIONAL_VALUES + tuple(rng.sample(vocab.families, min(3, len(vocab.families))))
        argv.insert(1, rng.choice(pool))
    if rng.random() < P_ENV:
        env = {**env, **rng.choice(corpus.ENVIRONMENTS)}
    return Case(argv, env, close_stdout=rng.random() < P_CLOSED,
                sigint_after=random_sigint(rng) if rng.random() < P_SIGINT else None)


def pair_cases(rng: random.Random, vocab: Vocab, n: int) -> list[Case]:
    """``n`` random cases; the first ones go through every (command, option) pair once, in a
    shuffled order, then the choice is free."""
    cmds = commands()
    pairs = [(c, o) for c, opts in cmds.items() for o in opts]
    rng.shuffle(pairs)
    return [random_case(rng, cmds, vocab, pairs[i] if i < len(pairs) else None) for i in range(n)]


def reported_cases(vocab: Vocab) -> list[Case]:
    """The cases earlier adversarial runs reported (most count a layer first: about 1 s of CPU each),
    for ``benchmarks/fuzz_long.py --fixed``."""
    base = vocab.baselines
    return [Case(a) for a in [
        ["flops", "--baseline", base[1]], ["flops", "--baseline", base[2]], ["flops", "--baseline", base[7]],
        ["flops", "--baseline", base[16]], ["flops", "--baseline", base[17]],
        ["flops", "--dim", "64", "--baseline", base[0]], ["flops", "--baseline", base[0], "--tolerance", "1e300"],
        ["flops", "--max-flops", "68,7G"], ["flops", "--max-flops", "68.72G", "-f", "json"],
        ["permute-test", "--tokens", "1e200,1;2,3;3,4", "-f", "json"],
        ["permute-test", "--dim", "5632", "--heads", "8", "--seq", "3"],
        ["flops", "--dim", "64", "-o", vocab.outputs[6]],
        ["shapes", "-f", "json", "-o", "/dev/full"],
        ["shapes", "--dim", "64", "--heads", "4"],
    ]] + [Case(["shapes", "--dim", "64", "--heads", "4"], {"LC_ALL": "C", "PYTHONIOENCODING": "latin-1"}),
          Case(["flops", "--dim", "64", "-o", "out.json", "-f", "json"], close_stdout=True),
          Case(["flops", "--module", "tests.hostile.misbehave:Raises", "--dim", "64", "--heads", "4", "-f", "json"])]


def fixed_cases(vocab: Vocab) -> list[Case]:
    """One of each kind of hostile input, always run in CI: mostly refused before torch loads
    (a second each), three that run a count (a closed stdout with --output, a Ctrl-C while
    counting, a config.json full of control characters on an ASCII terminal)."""
    cfg = {Path(p).stem: p for p in vocab.configs}
    cases = [Case(["model", "--config", cfg[name], "-f", "json"])
             for name in ("not_json", "fifo", "zero", "big", "deep_object", "text_config_string", "huge_sizes",
                          "loop", "unknown_layers")]
    return [
        *cases,
        Case(["model", "--config", cfg["control_chars"]], {"FORCE_COLOR": "1", "COLUMNS": "20",
                                                            "PYTHONIOENCODING": "ascii"}),
        Case(["flops", "--config", cfg["unknown_attention"], "-f", "json"], {"LC_ALL": "C"}),
        Case(["flops", "--impl", "per-head", "--heads", "4096", "--dim", "4096"]),
        # NOTE: MODEL as a Hub id, offline with nothing cached (tests/conftest.py): one line, no request
        Case(["model", "Qwen/Qwen3-8B", "-f", "json"]), Case(["model", cfg["not_json"]]),
        Case(["shapes", "--config", "org/name@v1", "-o", "out.json"]),
        Case(["gpus"], close_stdout=True),
        Case(["shapes", "--dim", "64", "--heads", "4", "-o", "out.json", "-f", "json"], close_stdout=True),
        Case(["flops", "--dim", "64", "-o", "good.json", "-f", "json"], sigint_after=0.6),
        Case(["report", "--dim", "64", "-f", "json"], sigint_after=1.5),
        # NOTE: a Ctrl-C with stdout closed was an AttributeError traceback (flushing sys.stdout = None)
        Case(["flops", "--dim", "64", "-f", "json"], close_stdout=True, sigint_after=1.5),
        *engine_cases(), *family_cases(vocab), *hub_cases(),
    ]


ENGINE = ["model", "--preset", "llama-3.1-8b", "--engine", "vllm"]


def engine_cases() -> list[Case]:
    """The engine's flags refused before a count: a budget of 0 and past 2**62 bytes, a block size that
    is no multiple of 16, a utilisation outside (0, 1], a --max-model-len of 0 and a range that falls."""
    return [Case([*ENGINE, *extra, "-f", "json"]) for extra in (
        ["--kv-cache-memory", "0"], ["--kv-cache-memory", "1e400"], ["--kv-cache-memory", "8EiB"],
        ["--kv-cache-memory", "40GiB", "--block-size", "17"], ["--gpu", "h100", "--gpu-memory-utilization", "1.5"],
        ["--gpu", "h100", "--gpu-memory-utilization", "nan"], ["--kv-cache-memory", "1G", "--max-model-len", "0"],
        ["--kv-cache-memory", "1G", "--max-model-len", "8k:1k:x2"], ["--kv-cache-memory", "1G", "--tp", "0"])]


def family_cases(vocab: Vocab) -> list[Case]:
    """One hostile field of each kind a family reads (tests/hostile/families.py), refused before a count."""
    found = {Path(p).stem: p for p in vocab.families}
    return [Case(["model", found[name], "-f", "json"]) for name in (
        "deepseek_v4.compress_ratios.all_zero", "deepseek_v4.compress_ratios.neg", "deepseek_v4.compress_ratios.short",
        "gemma3.layer_types.short", "gemma3.layer_types.alphabet", "gemma3.global_head_dim.zero",
        "llama.hidden_size.nan", "llama.num_attention_heads.inf", "qwen3_next.linear_key_head_dim.huge")
        if name in found]


def hub_cases() -> list[Case]:
    """Hub names against the stand-in (tests/hostile/hubcases.py): a server too slow, a redirect loop, a
    100 MiB and a latin-1 config.json, a body cut short, a revision that climbs out of the cache."""
    return [Case(argv, hubcases.env()) for argv in (
        ["model", "fuzz/slow"], ["model", "fuzz/redirect-loop"], ["model", "fuzz/huge", "-f", "json"],
        ["shapes", "--config", "fuzz/latin1"], ["model", "fuzz/long-length"],
        ["model", "fuzz/any-revision", "--revision", "../../evil"], ["flops", "--config", "org/.."])]
