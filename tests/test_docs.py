"""The documents tell the truth: every Python block of README.md and docs/*.md runs, prints what
the document shows after it, and the compiler walk-through's listings are what its script
prints now.

A ```python block runs as a script of its own, in a fresh process and an empty directory, as
`python - <<EOF` runs it (tests/doc_blocks.py), so the source lines it prints are `<stdin>:N`.
When a ```text block follows it, with only blank lines between, that is the block's expected
output: compared line by line, where a line `...` stands for any number of lines.
The shell blocks' commands name files and modules that must exist, the settings they set must
be ones lazytorch reads, and the cheap ones are run.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.doc_blocks import BlockRunner

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)


def blocks(path: Path) -> list[tuple[str, int, str]]:
    """(language, first line number, text) of each fenced block of the document."""
    text = path.read_text()
    return [(m.group(1), text.count("\n", 0, m.start()) + 2, m.group(2))
            for m in _FENCE.finditer(text)]


def python_blocks() -> list[tuple[Path, int, str, str | None]]:
    """(document, line, source, expected output or None) of every Python block."""
    out = []
    for path in DOCS:
        bs = blocks(path)
        lines = path.read_text().splitlines()
        for i, (lang, line, src) in enumerate(bs):
            if lang != "python":
                continue
            expected = None
            if i + 1 < len(bs) and bs[i + 1][0] == "text":
                # only blank lines between this block's closing fence and the next's opening one
                between = lines[line + src.count("\n"):bs[i + 1][1] - 2]
                if not any(s.strip() for s in between):
                    expected = bs[i + 1][2]
            out.append((path, line, src, expected))
    return out


def matches(expected: str, got: str) -> bool:
    """Does `got` equal `expected`, where a line `...` of expected stands for any lines?"""
    want, have = expected.rstrip("\n").split("\n"), got.rstrip("\n").split("\n")

    def match(i: int, j: int) -> bool:
        if i == len(want):
            return j == len(have)
        if want[i] == "...":
            return any(match(i + 1, k) for k in range(j, len(have) + 1))
        return j < len(have) and want[i].rstrip() == have[j].rstrip() and match(i + 1, j + 1)
    return match(0, 0)


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    # the suite's compile cache (conftest's, which is set per test: after this fixture starts)
    env = _env()
    env["LAZYTORCH_CACHE_DIR"] = os.environ.get(
        "LT_TEST_CACHE", str(tmp_path_factory.getbasetemp() / "lt-cache"))
    r = BlockRunner(env)
    yield r
    r.close()


PY_BLOCKS = python_blocks()


def test_documents_have_python_blocks():
    names = {p.name for p, *_ in PY_BLOCKS}
    assert {"README.md", "migration.md"} <= names, names


@pytest.mark.parametrize("path,line,src,expected", PY_BLOCKS,
                         ids=[f"{p.name}:{line}" for p, line, _, _ in PY_BLOCKS])
def test_python_block_runs(path, line, src, expected, tmp_path, runner):
    rc, got, err = runner.run(src, tmp_path)
    assert rc == 0, f"{path.name}:{line} failed:\n{got}{err}"
    if expected is not None:
        assert matches(expected, got), (f"{path.name}:{line} printed\n{got}\n"
                                        f"but the document shows\n{expected}")


def test_matches():
    assert matches("a\n...\nd", "a\nb\nc\nd\n")
    assert matches("a\n...\nb", "a\nb")
    assert not matches("a\n...\nd", "a\nb\nc")
    assert not matches("a\nb", "a\nc")
    assert not matches("a", "a\nb")


# --------------------------------------------------------------------------- shell blocks
def commands() -> list[tuple[str, int, str]]:
    """(document, line, command) of every command line of the shell blocks."""
    out = []
    for path in DOCS:
        for lang, line, src in blocks(path):
            if lang not in ("bash", "sh", "shell", "console"):
                continue
            for k, cmd in enumerate(src.splitlines()):
                cmd = cmd.strip().removeprefix("$ ")
                if cmd and not cmd.startswith("#"):
                    out.append((path.name, line + k, cmd))
    return out


def inline_commands() -> list[tuple[str, str]]:
    """(document, command) of every inline `python ...` or `LAZYTORCH_...=... python ...`."""
    out = []
    for path in DOCS:
        for m in re.finditer(r"`((?:LAZYTORCH_\w+=\S+ )*python [^`]+)`", path.read_text()):
            out.append((path.name, m.group(1)))
    return out


def _words(cmd: str) -> list[str]:
    """The words of a one-line command (pipelines and lists split at && and |)."""
    return [w for part in re.split(r"&&|\|\|?", cmd) for w in shlex.split(part)]


def _named(cmd: str) -> tuple[list[str], list[str], list[str]]:
    """(files run with `python FILE`, modules run with `python -m MOD`, LAZYTORCH_ settings)."""
    files, mods, settings = [], [], []
    words = _words(cmd)
    for i, w in enumerate(words):
        if re.fullmatch(r"LAZYTORCH_\w+=.*", w):
            settings.append(w.split("=")[0])
        if w == "python" and i + 1 < len(words):
            nxt = words[i + 1]
            if nxt == "-m" and i + 2 < len(words):
                mods.append(words[i + 2])
            elif nxt.endswith(".py") or nxt.endswith("/*.py"):
                files.append(nxt)
    return files, mods, settings


_ALL_COMMANDS = [(d, c) for d, _, c in commands()] + inline_commands()
# placeholders the prose uses for the user's own program
_USERS = {"train.py", "SCRIPT.py", "script.py", "pkg.train"}


@pytest.mark.parametrize("doc,cmd", _ALL_COMMANDS, ids=[c for _, c in _ALL_COMMANDS])
def test_command_names_what_exists(doc, cmd):
    import importlib.util
    files, mods, settings = _named(cmd)
    for f in files:
        if f in _USERS:
            continue
        target = f.removesuffix("/*.py")
        assert (ROOT / target).exists(), f"{doc}: `{cmd}` runs {f}, which does not exist"
    for m in mods:
        if m in _USERS or m == "pytest":
            continue
        if m == "lazytorch":
            continue
        sys.path.insert(0, str(ROOT))
        try:
            assert importlib.util.find_spec(m) is not None, f"{doc}: no module {m}"
        finally:
            sys.path.remove(str(ROOT))
    src = "\n".join(p.read_text() for p in (ROOT / "lazytorch").rglob("*.py"))
    for s in settings:
        assert s in src, f"{doc}: `{cmd}` sets {s}, which lazytorch never reads"


def test_documented_settings_exist():
    """Every LAZYTORCH_ setting the documents name is read by lazytorch."""
    src = "\n".join(p.read_text() for p in (ROOT / "lazytorch").rglob("*.py"))
    for path in DOCS:
        for name in set(re.findall(r"LAZYTORCH_[A-Z_]+[A-Z]", path.read_text())):
            assert name in src, f"{path.name} names {name}, which lazytorch never reads"


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_readme_graph_command_runs(tmp_path):
    """The command that drew the README's picture still draws it."""
    cmd = "python tools/viz.py docs/graph_step.py --out docs/graph.svg"
    assert cmd in (ROOT / "README.md").read_text()
    assert (ROOT / "docs" / "graph.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    out = tmp_path / "graph.svg"
    r = subprocess.run([sys.executable, "tools/viz.py", "docs/graph_step.py", "--out", str(out)],
                       cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert out.exists() or out.with_suffix(".dot").exists(), r.stderr
    # the caption's counts are the graph's
    m = re.search(r"\((\d+) nodes, (\d+) kernels\)", r.stderr)
    assert m, r.stderr
    readme = (ROOT / "README.md").read_text()
    assert f"{m.group(1)} IR nodes" in readme and f"{m.group(2)} fused kernels" in readme, \
        m.group(0)


@pytest.mark.parametrize("args", [["-m", "lazytorch.cache"], ["-m", "lazytorch", "--help"],
                                  ["tools/api_coverage.py", "--check"]])
def test_cheap_commands_run(args):
    r = subprocess.run([sys.executable, *args], cwd=ROOT, env=_env(), capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr


# --------------------------------------------------------------------------- walk-through
def test_walkthrough_listings_are_current():
    """docs/compiler_walkthrough.md's listings equal what tools/walkthrough.py prints now
    (`python tools/walkthrough.py --write` regenerates them)."""
    r = subprocess.run([sys.executable, "tools/walkthrough.py", "--check"], cwd=ROOT, env=_env(),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
