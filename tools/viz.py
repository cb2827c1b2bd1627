"""Run a lazytorch script and draw the graph of one of its realizes (or of all of them).

    python tools/viz.py SCRIPT.py [script args] --out graph.svg [--realize N | --all]

The script runs as `__main__` with sys.argv = [SCRIPT.py, *script args]. Every realize it
triggers is recorded; the largest one (most IR nodes; the first of equals) is drawn, or the
N-th (counted from 0; negative counts from the end), or with --all each one, to graph_0.svg,
graph_1.svg, ... Nodes are coloured by op class, fused kernels are clusters named as in the
printed schedule (kernel_0, ...), backward nodes are dashed. The format follows the extension of
--out (svg, png, pdf, dot); without graphviz's `dot` program the DOT text is written instead.

--out, --realize and --all may appear anywhere after SCRIPT.py; everything after a `--` goes to
the script untouched.
"""
from __future__ import annotations

import os
import runpy
import sys
import traceback
from dataclasses import dataclass, field

USAGE = "usage: python tools/viz.py SCRIPT.py [script args] --out graph.svg [--realize N | --all]"


@dataclass
class Options:
    script: str
    script_args: list[str]
    out: str = "graph.svg"
    realize: int | None = None
    all: bool = False


def parse_args(argv: list[str]) -> Options:
    """Split argv into this tool's options and the script with its own arguments."""
    ours: dict = {}
    rest: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            rest += argv[i + 1:]
            break
        name, eq, val = a.partition("=")
        if name in ("--out", "-o", "--realize"):
            if not eq:
                if i + 1 >= len(argv):
                    raise SystemExit(f"{USAGE}\nerror: {name} needs a value")
                val = argv[i + 1]
                i += 1
            ours["out" if name in ("--out", "-o") else "realize"] = val
        elif a == "--all":
            ours["all"] = True
        elif a in ("-h", "--help") and not rest:
            print(__doc__)
            raise SystemExit(0)
        else:
            rest.append(a)
        i += 1
    if not rest:
        raise SystemExit(f"{USAGE}\nerror: no script given")
    opts = Options(rest[0], rest[1:], **{k: v for k, v in ours.items() if k != "realize"})
    if "realize" in ours:
        try:
            opts.realize = int(ours["realize"])
        except ValueError:
            raise SystemExit(f"{USAGE}\nerror: --realize needs an integer, "
                             f"not {ours['realize']!r}") from None
    if opts.all and opts.realize is not None:
        raise SystemExit(f"{USAGE}\nerror: --realize and --all exclude each other")
    return opts


@dataclass
class Recorder:
    """A realize hook keeping the graphs to draw: all, the N-th, or the largest so far."""

    which: int | None = None       # keep only this realize (non-negative)
    keep_all: bool = False
    keep_last: int = 0             # with a negative --realize: how many of the last to keep
    count: int = 0
    graphs: list = field(default_factory=list)   # (index, size, networkx graph)
    errors: list = field(default_factory=list)

    def __call__(self, outputs, plan) -> None:
        from lazytorch.compiler.graphviz import graph_size, to_networkx
        i = self.count
        self.count += 1
        try:
            if self.keep_all or self.keep_last:
                self.graphs.append((i, graph_size(outputs), to_networkx(outputs)))
                if self.keep_last:
                    del self.graphs[:-self.keep_last]
            elif self.which is not None:
                if i == self.which:
                    self.graphs = [(i, graph_size(outputs), to_networkx(outputs))]
            else:
                size = graph_size(outputs)
                if not self.graphs or size > self.graphs[0][1]:
                    self.graphs = [(i, size, to_networkx(outputs))]
        except Exception as e:  # never break the user's script over a picture
            self.errors.append(f"realize {i}: {type(e).__name__}: {e}")


def run_script(script: str, args: list[str], hook) -> int:
    """Run `script` as __main__ with `hook` in lazytorch.debug.REALIZE_HOOKS; its exit code."""
    from lazytorch import debug
    old_argv, old_path = sys.argv, list(sys.path)
    sys.argv = [script, *args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    debug.REALIZE_HOOKS.append(hook)
    code = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if e.code not in (None, 0) and not isinstance(e.code, int):
            print(e.code, file=sys.stderr)
    except Exception:
        traceback.print_exc()
        print("viz.py: the script failed; drawing the realizes it reached", file=sys.stderr)
        code = 1
    finally:
        debug.REALIZE_HOOKS.remove(hook)
        sys.argv = old_argv
        sys.path[:] = old_path
    return code


def numbered(path: str, i: int) -> str:
    root, ext = os.path.splitext(path)
    return f"{root}_{i}{ext}"


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    if not os.path.exists(opts.script):
        print(f"viz.py: no such script: {opts.script}", file=sys.stderr)
        return 2
    _ensure_importable()
    from lazytorch.compiler.graphviz import render
    rec = Recorder(which=opts.realize if opts.realize is not None and opts.realize >= 0
                   else None, keep_all=opts.all,
                   keep_last=-opts.realize if opts.realize is not None and opts.realize < 0
                   else 0)
    code = run_script(opts.script, opts.script_args, rec)
    for e in rec.errors:
        print(f"viz.py: could not record {e}", file=sys.stderr)
    name = os.path.basename(opts.script)
    if rec.count == 0:
        print(f"viz.py: {name} realized nothing: no graph to draw", file=sys.stderr)
        return code or 1
    chosen = rec.graphs
    if rec.keep_last:
        if len(chosen) < rec.keep_last:
            chosen = []
        chosen = chosen[:1]
    if not chosen:
        print(f"viz.py: there is no realize {opts.realize}: {name} realized {rec.count} "
              f"time(s), counted from 0", file=sys.stderr)
        return code or 1
    for i, size, g in chosen:
        path = numbered(opts.out, i) if opts.all else opts.out
        title = (f"{name}: realize {i} of 0..{rec.count - 1} ({size} nodes, "
                 f"{len(g.graph['kernels'])} kernels)")
        written = render(g, path, title)
        print(f"viz.py: {title} -> {written}", file=sys.stderr)
    return code


def _ensure_importable() -> None:
    """Let `python tools/viz.py` find lazytorch from a source checkout."""
    try:
        import lazytorch  # noqa: F401
    except ImportError:
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


if __name__ == "__main__":
    sys.exit(main())
