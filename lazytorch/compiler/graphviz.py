"""The pending graph as data and as a picture: a networkx DiGraph, and graphviz DOT from it.

`to_networkx(outputs)` describes the graph that realizing `outputs` would compute: one graph node
per IR node, named as the IR printer names it (`%0`, `%1`, ... in topological order), carrying
its op, shape, dtype, the kernel it fuses into, whether autograd built it, and the user's source
line. `to_dot(g)` draws it: nodes coloured by op class, each fused kernel a cluster named as in
the printed schedule (`kernel_0`, ...), backward nodes dashed on a paler fill. `render(g, path)`
writes svg, png, pdf or dot by the file's extension.
"""
from __future__ import annotations

import os
import shutil
import sys
from typing import TYPE_CHECKING

from ..ir.graph import Graph, Node, _fmt_arg, toposort
from ..ir.ops import ELEMENTWISE, MOVEMENT, REDUCE, SCAN, SOURCE, Op
from .renderer import Capabilities

if TYPE_CHECKING:
    import graphviz as _graphviz
    import networkx as nx

# op class -> (fill for forward nodes, fill for backward nodes)
COLORS: dict[str, tuple[str, str]] = {
    "elementwise": ("#9ecae1", "#deebf7"),
    "reduce": ("#fd8d3c", "#fdd0a2"),
    "movement": ("#c7e9c0", "#edf8e9"),
    "source": ("#d9d9d9", "#f0f0f0"),
    "indexing": ("#bcbddc", "#efedf5"),
    "other": ("#ffffb2", "#ffffe5"),
}
BACKWARD_BORDER = "#cb181d"
FORMATS = ("svg", "png", "pdf", "dot")


def op_class(op: Op) -> str:
    """elementwise, reduce, movement, source (buffer/const), indexing (scan/gather/scatter),
    or other (contiguous, detach)."""
    if op in ELEMENTWISE:
        return "elementwise"
    if op in REDUCE:
        return "reduce"
    if op in MOVEMENT:
        return "movement"
    if op in SOURCE:
        return "source"
    if op in SCAN or op in (Op.GATHER, Op.SCATTER):
        return "indexing"
    return "other"


def _optimize_traced(g: Graph) -> tuple[Graph, dict[Node, Node]]:
    """Run the compiler's passes on g; also return where each node of g went."""
    from .passes import optimize
    from .passes.rewrite import TRACE
    old = getattr(TRACE, "maps", None)
    TRACE.maps = maps = []
    try:
        opt = optimize(g)
    finally:
        TRACE.maps = old
    where: dict[Node, Node] = {}
    for n in g.nodes:
        x = n
        for m in maps:
            x = m.get(x, x)
        where[n] = x
    return opt, where


def to_networkx(outputs: list[Node], caps: Capabilities | None = None) -> nx.DiGraph:
    """The graph computing `outputs` (nodes whose inputs are buffers: see realize.substitute),
    its kernels as a renderer with capabilities `caps` would have them scheduled (by default
    the C renderer's, the CPU's default backend).

    Node names are `%i` in the IR printer's order; attributes: op, arg, shape, dtype, op_class,
    kernel (the kernel that computes the node, as the schedule names it; None for inputs and
    nodes the passes fold into inputs), kernels (every kernel that computes it: a node may be
    recomputed in several), stored (the kernel writes it to a buffer), backward, site
    (file:line), api (the lazytorch call). Graph attributes: outputs (names) and kernels
    (name -> the ops it fuses, in execution order). Edges go from a source to its user.
    """
    import networkx as nx

    from ..ir.sites import BACKWARD, SITES
    from .schedule import schedule_graph
    if caps is None:
        from .codegen.c import CRenderer
        caps = CRenderer.capabilities(1)   # the kernels, not how the threads split them
    g = Graph(outputs)
    opt, where = _optimize_traced(g)
    sched = schedule_graph(opt, caps)
    in_kernels: dict[Node, list[str]] = {}
    for k in sched.kernels:
        for n in k.nodes:
            in_kernels.setdefault(n, []).append(k.name)
    stored = {k.output: k.name for k in sched.kernels}
    names: dict[Node, str] = {}
    out = nx.DiGraph()
    for n in g.nodes:
        name = names[n] = f"%{len(names)}"
        m = where.get(n, n)
        ks = [stored[m]] if m in stored else []
        ks += [k for k in in_kernels.get(m, ()) if k not in ks]
        site = SITES.get(n)
        out.add_node(name, op=n.op.name.lower(),
                     arg=None if n.arg is None else _fmt_arg(n),
                     shape=tuple(n.shape), dtype=n.dtype.short, op_class=op_class(n.op),
                     kernel=ks[0] if ks else None, kernels=tuple(ks),
                     stored=m in stored and n.op is not Op.BUFFER,
                     folded=not ks and n.op is not Op.BUFFER and m.op is not Op.BUFFER,
                     backward=n in BACKWARD, site=site[0] if site else None,
                     api=site[1] if site and site[1] else None)
        for i, s in enumerate(n.srcs):
            out.add_edge(names[s], name, index=i)
    out.graph["outputs"] = [names[o] for o in g.outputs]
    out.graph["kernels"] = {k.name: list(k.ops) for k in sched.kernels}
    return out


def graph_size(outputs: list[Node]) -> int:
    """How many IR nodes realizing `outputs` involves (cheap: no passes)."""
    return len(toposort(outputs))


def _label(name: str, a: dict) -> str:
    op = a["op"]
    if a["op"] == "buffer":
        op = f"input {a['arg']}"
    elif a["api"] and a["api"].removesuffix(" (backward)") != op:
        op = f"{op} ({a['api'].removesuffix(' (backward)')})"
    shape = ",".join(map(str, a["shape"]))
    lines = [f"{name} {op}", f"{a['dtype']}[{shape}]"]
    if a["op"] == "const":
        lines.append(str(a["arg"]))
    return "\\n".join(lines)  # DOT's escape for a centred line break: one line per statement


def to_dot(g: nx.DiGraph, title: str | None = None, legend: bool = True) -> _graphviz.Digraph:
    """Draw a graph made by to_networkx: a graphviz.Digraph (its `.source` is the DOT text).

    Every node has a DOT `class`, which the SVG keeps: its op class, `backward` or `forward`,
    and `folded` when the passes removed it; each kernel is a subgraph `cluster_<kernel name>`.
    Backward nodes are dashed with a red border on a paler fill; folded ones dotted, unfilled.
    """
    import graphviz

    dot = graphviz.Digraph("lazytorch", graph_attr={
        "rankdir": "TB", "fontname": "Helvetica", "fontsize": "12", "newrank": "true",
        **({"label": title, "labelloc": "t"} if title else {})},
        node_attr={"shape": "box", "style": "rounded,filled", "fontname": "Helvetica",
                   "fontsize": "10"},
        edge_attr={"color": "#555555", "arrowsize": "0.6"})
    clusters: dict[str | None, list[str]] = {k: [] for k in g.graph.get("kernels", {})}
    clusters[None] = []
    for name, a in g.nodes(data=True):
        clusters.setdefault(a["kernel"], []).append(name)

    def add(where, name: str) -> None:
        a = g.nodes[name]
        back = bool(a["backward"])
        fill = COLORS[a["op_class"]][1 if back else 0]
        kind = ("backward" if back else "forward") + (" folded" if a["folded"] else "")
        attrs = {"label": _label(name, a), "fillcolor": fill, "style": "rounded,filled",
                 "class": f"{a['op_class']} {kind}",
                 "tooltip": " ".join(x for x in (a["site"], a["api"]) if x) or name}
        if back:
            attrs.update(style="rounded,filled,dashed", color=BACKWARD_BORDER, penwidth="2",
                         fontcolor="#67000d")
        if a["folded"]:  # the passes removed it: no kernel computes it
            attrs.update(style="rounded,filled,dotted", fontcolor="#737373", fillcolor="white")
        if a["op_class"] == "source":
            attrs["shape"] = "box" if a["op"] == "buffer" else "ellipse"
        if name in g.graph.get("outputs", ()):
            attrs["peripheries"] = "2"
        where.node(name, **attrs)

    for name in clusters.pop(None):
        add(dot, name)
    for kname, members in clusters.items():
        ops = g.graph.get("kernels", {}).get(kname)
        label = f"{kname}: {', '.join(ops) or 'copy'}" if ops is not None else kname
        with dot.subgraph(name=f"cluster_{kname}") as c:
            c.attr(label=label, style="rounded", color="#3f3f3f", fontname="Helvetica",
                   fontsize="11", labeljust="l")
            c.attr("graph", **{"class": f"kernel {kname}"})
            for name in members:
                add(c, name)
    for s, d in g.edges():
        dot.edge(s, d)
    if legend:
        dot.node("legend", label=_legend(), shape="plaintext", style="", fillcolor="white")
    return dot


def _legend() -> str:
    rows = "".join(f'<TR><TD BGCOLOR="{f}">{c}</TD><TD BGCOLOR="{b}" STYLE="dashed">'
                   f'{c} (backward)</TD></TR>' for c, (f, b) in COLORS.items())
    return f'<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0">{rows}</TABLE>>'


def dot_program() -> str | None:
    """The path of graphviz's `dot` program, or None."""
    return shutil.which("dot")


def render(g: nx.DiGraph, path: str, title: str | None = None) -> str:
    """Write `g` to `path` in the format its extension names (svg, png, pdf, dot or gv);
    return the path written. Without the `dot` program, write the DOT text next to it (same
    name, .dot) and say on stderr how to install graphviz."""
    dot = to_dot(g, title)
    root, ext = os.path.splitext(path)
    fmt = ext.lstrip(".").lower()
    if fmt in ("dot", "gv"):
        return _write(path, dot.source.encode())
    if fmt not in FORMATS:
        raise ValueError(f"cannot render {path!r}: the extension must be one of "
                         f"{', '.join('.' + f for f in FORMATS)}")
    if dot_program() is None:
        out = _write(root + ".dot", dot.source.encode())
        print(f"lazytorch: graphviz's `dot` program was not found, so {path} was not drawn; "
              f"wrote the graph to {out} instead. Install graphviz (Debian/Ubuntu: "
              f"`apt-get install graphviz`, macOS: `brew install graphviz`, conda: "
              f"`conda install graphviz`) and run `dot -T{fmt} {out} -o {path}`.",
              file=sys.stderr)
        return out
    return _write(path, dot.pipe(format=fmt))


def _write(path: str, data: bytes) -> str:
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path
