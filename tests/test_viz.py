"""tools/viz.py and lazytorch.debug.viz: kernels drawn as clusters, backward nodes styled apart,
formats by extension, and the .dot fallback without graphviz's `dot` program."""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lazytorch as torch
from lazytorch import debug
from lazytorch.compiler import graph, graphviz, schedule

pytest.importorskip("graphviz")
ROOT = Path(__file__).resolve().parents[1]
VIZ = ROOT / "tools" / "viz.py"
HAS_DOT = graphviz.dot_program() is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="graphviz's `dot` program is not installed")

# the seed's training loop: tensor ops, autograd, a hand-written SGD step
TRAIN = """\
import sys
import lazytorch as torch

torch.manual_seed(0)
X = torch.randn(100, 10)
y = torch.randn(100, 1)
w = torch.randn(10, 1, requires_grad=True)
b = torch.zeros(1, requires_grad=True)
steps = int(sys.argv[1]) if len(sys.argv) > 1 else 3
for step in range(steps):
    pred = X @ w + b
    loss = ((pred - y) ** 2).mean()
    loss.backward()
    with torch.no_grad():
        w -= 0.1 * w.grad
        b -= 0.1 * b.grad
        w.grad.zero_()
        b.grad.zero_()
    print(step, loss.item())
"""


@pytest.fixture
def train_script(tmp_path) -> Path:
    p = tmp_path / "train.py"
    p.write_text(TRAIN)
    return p


def run_viz(*args, env=None, cwd=None) -> subprocess.CompletedProcess:
    e = dict(os.environ, PYTHONPATH=str(ROOT), LAZYTORCH_DEBUG="1")
    e.update(env or {})
    return subprocess.run([sys.executable, str(VIZ), *map(str, args)], capture_output=True,
                          text=True, env=e, cwd=cwd, timeout=300)


def realize_kernels(stderr: str) -> list[int]:
    """Kernels per realize, as realize() itself logs them at debug level 1."""
    return [int(m.group(1)) for m in re.finditer(r"^realize: (\d+) kernels", stderr, re.M)]


def chosen(stderr: str) -> int:
    return int(re.search(r"realize (\d+) of 0\.\.\d+", stderr).group(1))


def svg_clusters(svg: str) -> list[str]:
    return re.findall(r'<g id="clust\d+" class="cluster[^"]*">\s*<title>([^<]*)</title>', svg)


def svg_nodes(svg: str) -> dict[str, list[str]]:
    """backward / forward -> the drawing (shape element) of each node of that kind."""
    out: dict[str, list[str]] = {"backward": [], "forward": []}
    for m in re.finditer(r'<g id="node\d+" class="node ([^"]*)">(.*?)</g>', svg, re.S):
        kinds = m.group(1).split()
        if "folded" in kinds:   # removed by the passes: drawn dotted and unfilled
            continue
        for k in out:
            if k in kinds:
                shape = re.search(r"<(path|polygon|ellipse)[^>]*>", m.group(2))
                out[k].append(shape.group(0) if shape else "")
    return out


def _fill(el: str) -> str:
    return re.search(r'fill="([^"]*)"', el).group(1)


# ------------------------------------------------------------------ the command line tool
@needs_dot
def test_viz_script_svg_has_a_cluster_per_kernel(train_script, tmp_path):
    out = tmp_path / "graph.svg"
    r = run_viz(train_script, "--out", out)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].startswith("0 ")       # the script's own output
    svg = out.read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    counts = realize_kernels(r.stderr)
    assert len(counts) >= 3
    i = chosen(r.stderr)
    clusters = svg_clusters(svg)
    assert len(clusters) == counts[i] > 1
    assert sorted(clusters) == sorted(f"cluster_kernel_{k}" for k in range(counts[i]))
    # cluster labels are the kernel names of the printed schedule, with the ops they fuse
    for k in range(counts[i]):
        assert re.search(rf">kernel_{k}: [a-z, ]+<", svg)
    # forward and backward nodes are both there, and drawn differently
    nodes = svg_nodes(svg)
    assert nodes["forward"] and nodes["backward"]
    assert all('stroke-dasharray="5,2"' in el for el in nodes["backward"])
    assert not any("stroke-dasharray" in el for el in nodes["forward"])
    assert {_fill(el) for el in nodes["backward"]}.isdisjoint(_fill(el)
                                                             for el in nodes["forward"])


def test_viz_all_writes_one_file_per_realize(train_script, tmp_path):
    r = run_viz(train_script, "--all", "--out", tmp_path / "out" / "g.dot")
    assert r.returncode == 0, r.stderr
    counts = realize_kernels(r.stderr)
    assert len(counts) >= 3                       # at least one realize per step
    files = sorted((tmp_path / "out").iterdir(), key=lambda f: int(f.stem.split("_")[1]))
    assert [f.name for f in files] == [f"g_{i}.dot" for i in range(len(counts))]
    sources = [f.read_text() for f in files]
    for src, n in zip(sources, counts):
        assert src.startswith("digraph")
        assert len(re.findall(r"subgraph cluster_kernel_\d+ \{", src)) == n
    assert any(re.search(r'class="[a-z]+ backward"', src) for src in sources)
    assert all(re.search(r'class="[a-z]+ forward"', src) for src in sources)
    # without --realize/--all the largest realize (the first of equals) is drawn
    sizes = [int(re.search(r"\((\d+) nodes", src).group(1)) for src in sources]
    r = run_viz(train_script, "--out", tmp_path / "largest.dot")
    assert r.returncode == 0, r.stderr
    assert chosen(r.stderr) == sizes.index(max(sizes))


def test_viz_passes_script_args(train_script, tmp_path):
    r = run_viz(train_script, "5", "--out", tmp_path / "g.dot")    # "5": the script's argv
    assert r.returncode == 0, r.stderr
    assert [ln.split()[0] for ln in r.stdout.splitlines()] == ["0", "1", "2", "3", "4"]


@needs_dot
def test_viz_realize_n(train_script, tmp_path):
    out = tmp_path / "first.svg"
    r = run_viz(train_script, "--realize", "0", "--out", out)
    assert r.returncode == 0, r.stderr
    assert chosen(r.stderr) == 0
    assert len(svg_clusters(out.read_text())) == realize_kernels(r.stderr)[0]
    bad = run_viz(train_script, "--realize", "7", "--out", tmp_path / "none.svg")
    assert bad.returncode != 0 and "no realize 7" in bad.stderr
    assert not (tmp_path / "none.svg").exists()


def test_viz_without_dot_writes_dot_file(train_script, tmp_path):
    """No `dot` on PATH: the DOT text is written and the user is told how to install graphviz.
    (The interpreter backend needs no C compiler, so PATH can be empty.)"""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    r = run_viz(train_script, "--out", tmp_path / "g.svg",
                env={"PATH": str(empty), "LAZYTORCH_BACKEND": "interp"})
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "g.svg").exists()
    dot = (tmp_path / "g.dot").read_text()
    assert dot.startswith("digraph") and "subgraph cluster_kernel_0" in dot
    assert "apt-get install graphviz" in r.stderr and "g.dot" in r.stderr


def test_viz_script_failure_still_draws(tmp_path):
    p = tmp_path / "fails.py"
    p.write_text("import lazytorch as torch\n"
                 "x = torch.randn(3, 4)\n"
                 "print((x * 2).sum().item())\n"
                 "raise ValueError('boom')\n")
    r = run_viz(p, "--out", tmp_path / "g.dot")
    assert r.returncode == 1
    assert "ValueError: boom" in r.stderr
    assert (tmp_path / "g.dot").read_text().startswith("digraph")


def _load_viz_module():
    spec = importlib.util.spec_from_file_location("lt_tools_viz", VIZ)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_parse_args_splits_tool_and_script_options():
    viz = _load_viz_module()
    o = viz.parse_args(["s.py", "--lr", "0.1", "--out", "g.png", "--realize=2", "x"])
    assert (o.script, o.script_args, o.out, o.realize, o.all) == \
        ("s.py", ["--lr", "0.1", "x"], "g.png", 2, False)
    o = viz.parse_args(["--all", "s.py", "-o", "d/g.pdf", "--", "--all", "--out"])
    assert (o.script, o.script_args, o.out, o.all) == ("s.py", ["--all", "--out"], "d/g.pdf",
                                                       True)
    with pytest.raises(SystemExit):
        viz.parse_args(["s.py", "--all", "--realize", "1"])
    with pytest.raises(SystemExit):
        viz.parse_args(["--out", "g.svg"])


def test_viz_main_in_process_passes_argv(tmp_path, monkeypatch, capsys):
    viz = _load_viz_module()
    p = tmp_path / "argv.py"
    p.write_text("import sys\nimport lazytorch as torch\n"
                 "print(repr(sys.argv))\n"
                 "print(float((torch.ones(2, 3) * torch.arange(3.0)).sum()))\n")
    monkeypatch.setattr(graphviz.shutil, "which", lambda name, *a, **k: None)
    code = viz.main([str(p), "--flag", "v", "--out", str(tmp_path / "a.svg")])
    assert code == 0
    out = capsys.readouterr()
    assert out.out.splitlines()[0] == repr([str(p), "--flag", "v"])
    assert out.out.splitlines()[1] == "6.0"
    assert (tmp_path / "a.dot").exists() and "apt-get install graphviz" in out.err
    assert viz not in debug.REALIZE_HOOKS and not debug.REALIZE_HOOKS


# ------------------------------------------------------------------ debug.viz and rendering
def _model(rng):
    w = torch.tensor(rng.standard_normal((6, 3)).astype(np.float32), requires_grad=True)
    x = torch.tensor(rng.standard_normal((5, 6)).astype(np.float32))
    loss = (x @ w).tanh().sum()
    loss.backward()
    return loss, w


MAGIC = {"svg": b"<?xml", "png": b"\x89PNG", "pdf": b"%PDF", "dot": b"digraph"}


@needs_dot
@pytest.mark.parametrize("fmt", sorted(MAGIC))
def test_debug_viz_formats_by_extension(tmp_path, rng, fmt):
    loss, w = _model(rng)
    path = tmp_path / f"g.{fmt}"
    assert debug.viz(loss, w.grad, path=str(path)) == str(path)
    assert path.read_bytes().startswith(MAGIC[fmt])


def test_debug_viz_dot_source_clusters_and_classes(tmp_path, rng):
    loss, w = _model(rng)
    path = tmp_path / "g.dot"
    debug.viz(loss, w.grad, path=str(path))
    src = path.read_text()
    kernels = schedule(loss, w.grad)
    assert re.findall(r"subgraph (cluster_\w+) \{", src) == [f"cluster_{k.name}"
                                                             for k in kernels]
    for k in kernels:
        assert f'label="{k.name}: {", ".join(k.ops) or "copy"}"' in src
    # every node has a class naming its op class and forward/backward
    g = graph(loss, w.grad)
    for name, a in g.nodes(data=True):
        m = re.search(rf'^\s*"{re.escape(name)}" \[(.*)\]$', src, re.M)
        assert m, name
        line = m.group(1)
        cls = re.search(r'class="([^"]*)"', line).group(1)
        assert cls == (f"{a['op_class']} {'backward' if a['backward'] else 'forward'}"
                       + (" folded" if a["folded"] else ""))
        assert ("dashed" in line) == (a["backward"] and not a["folded"])
        assert a["dtype"] in line and ",".join(map(str, a["shape"])) in line
        assert ("input" if a["op"] == "buffer" else a["op"]) in line


def test_render_without_dot_falls_back(tmp_path, rng, monkeypatch, capsys):
    monkeypatch.setattr(graphviz.shutil, "which", lambda name, *a, **k: None)
    loss, w = _model(rng)
    written = debug.viz(loss, w.grad, path=str(tmp_path / "g.png"))
    assert written == str(tmp_path / "g.dot")
    assert not (tmp_path / "g.png").exists()
    assert (tmp_path / "g.dot").read_text().startswith("digraph")
    err = capsys.readouterr().err
    assert "apt-get install graphviz" in err and "dot -Tpng" in err


def test_render_rejects_unknown_extension(tmp_path, rng):
    loss, _ = _model(rng)
    with pytest.raises(ValueError, match="extension"):
        debug.viz(loss, path=str(tmp_path / "g.jpeg2000"))


def test_op_classes_colour_nodes():
    from lazytorch.ir.ops import Op
    assert graphviz.op_class(Op.ADD) == "elementwise"
    assert graphviz.op_class(Op.SUM) == "reduce"
    assert graphviz.op_class(Op.PERMUTE) == "movement"
    assert graphviz.op_class(Op.BUFFER) == graphviz.op_class(Op.CONST) == "source"
    assert graphviz.op_class(Op.GATHER) == graphviz.op_class(Op.CUMSUM) == "indexing"
    fills = [f for pair in graphviz.COLORS.values() for f in pair]
    assert len(set(fills)) == len(fills)
