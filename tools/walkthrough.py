"""The listings of docs/compiler_walkthrough.md: one op chain followed from Tensor to C.

    python tools/walkthrough.py            # print the listings
    python tools/walkthrough.py --write    # put them into the document
    python tools/walkthrough.py --check    # exit 1, with a diff, if the document is stale

Every listing is printed by the code it describes: the user's program runs (as `train.py`),
then lazytorch.debug.ir, the passes of compiler.passes.PIPELINE, the scheduler (through
engine.realize.schedule, as lazytorch.compiler.schedule does), the C renderer and a realize.
In the document a listing is the fenced block after a `<!-- listing: NAME -->` line.
tests/test_docs.py runs --check, so the document cannot go stale silently. Run it in a fresh
process: buffer numbers count the buffers the process has made.
"""
from __future__ import annotations

import difflib
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from lazytorch import debug  # noqa: E402
from lazytorch.compiler.passes import PIPELINE, cse  # noqa: E402
from lazytorch.engine.plan import format_schedule  # noqa: E402
from lazytorch.engine.realize import schedule, substitute  # noqa: E402
from lazytorch.ir.graph import Graph, format_graph  # noqa: E402

DOC = os.path.join(ROOT, "docs", "compiler_walkthrough.md")

# the user's program: a few elementwise ops, a reduction and its backward
PROGRAM = """\
import lazytorch as torch

x = torch.tensor([[1.0, -2.0, 0.5], [-1.0, 0.5, -0.25]], requires_grad=True)
w = torch.tensor([0.5, -1.0, 2.0])
loss = torch.tanh(x * w).sum()
loss.backward()
print(x.grad)
print(f"{loss.item():.4f}")
"""

# the same step again, with new data: the plan is replayed
AGAIN = """\
x = torch.tensor([[0.5, 1.0, -1.0], [2.0, -0.5, 0.25]], requires_grad=True)
loss = torch.tanh(x * w).sum()
loss.backward()
print(x.grad)
print(f"{loss.item():.4f}")
"""

# a pass that the program above leaves alone: cse puts a commutative op's operands in one order
CSE = """\
import lazytorch as torch

a = torch.tensor([1.0, 2.0])
b = torch.tensor([3.0, 4.0])
y = a * b + b * a
"""


def _run(src: str, ns: dict, upto: str | None = None) -> str:
    """Run the program `src` (as `train.py`, in namespace ns), up to the line `upto` if given;
    return what it printed."""
    import contextlib
    import io
    if upto is not None:
        src = src[:src.index(upto)]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(src, "train.py", "exec"), ns)
    return buf.getvalue().rstrip("\n")


def _compile_listings(loss, x) -> dict[str, str]:
    """The recorded graph of `loss` and `x.grad`, the graph after each pass, the schedule and
    each kernel's C (holding no node afterwards: a node a live variable holds is stored by the
    realize that computes it, which would change the plan the document shows)."""
    out = {"recorded": debug.ir(loss, x.grad)}
    # the graph a realize hands to the passes (realized values substituted), after each pass
    outputs, _ = substitute([loss.node, x.grad.node])
    g = Graph(outputs)
    text = out["before"] = format_graph(g)
    for p in PIPELINE:
        g = p(g)
        new = format_graph(g)
        out[p.__name__] = new if new != text else "(unchanged)"
        text = new
    sched = schedule([loss.node, x.grad.node])
    assert format_graph(sched.graph) == text, "the scheduler saw another graph"
    out["schedule"] = format_schedule(sched)
    for k in sched.kernels:
        out[k.name] = k.source.rstrip("\n")
    return out


def listings() -> dict[str, str]:
    """Every listing of the document, by name, as this lazytorch prints it now."""
    ns: dict = {}
    _run(PROGRAM, ns, upto="print(")
    out = {"program": PROGRAM.rstrip("\n"), **_compile_listings(ns["loss"], ns["x"])}

    # the realize: x.grad's print computes the loss with it; the loss's print then costs nothing
    debug.reset_stats()
    printed = _run(PROGRAM[PROGRAM.index("print("):], ns)
    s = debug.stats()
    out["run"] = f"{printed}\n(realizes: {s['realizes']}, kernels launched: " \
                 f"{s['kernels_launched']})"
    debug.reset_stats()
    printed = _run(AGAIN, ns)
    s = debug.stats()
    out["again"] = AGAIN.rstrip("\n")
    out["again_out"] = f"{printed}\n(kernels compiled: {s['kernels_compiled']}, plans found " \
                       f"in the plan cache: {s['plan_cache_hits']})"

    _run(CSE, ns)
    g = Graph(substitute([ns["y"].node])[0])
    out["cse_program"] = CSE.rstrip("\n")
    out["cse_before"] = format_graph(g)
    out["cse_after"] = format_graph(cse(g))
    return out


_BLOCK = re.compile(r"(<!-- listing: (\w+) -->\n```\w*\n)(.*?)(^```)", re.S | re.M)


def render(doc: str, found: dict[str, str]) -> str:
    """The document with each marked listing replaced by the one found now."""
    missing = [m.group(2) for m in _BLOCK.finditer(doc) if m.group(2) not in found]
    if missing:
        raise SystemExit(f"walkthrough.py: the document marks listings it does not make: "
                         f"{missing}")
    return _BLOCK.sub(lambda m: m.group(1) + found[m.group(2)] + "\n" + m.group(4), doc)


def main(argv: list[str]) -> int:
    found = listings()
    if not argv:
        for name, text in found.items():
            print(f"<!-- listing: {name} -->\n{text}\n")
        return 0
    with open(DOC) as f:
        doc = f.read()
    new = render(doc, found)
    if argv == ["--write"]:
        from lazytorch.runtime.files import atomic_write
        atomic_write(DOC, new.encode())
        return 0
    if argv == ["--check"]:
        if new == doc:
            return 0
        sys.stdout.writelines(difflib.unified_diff(doc.splitlines(True), new.splitlines(True),
                                                   "docs/compiler_walkthrough.md", "now"))
        print("docs/compiler_walkthrough.md is stale: `python tools/walkthrough.py --write`")
        return 1
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
