"""What a profile recorded, and its tables: events (an interval with a name, and for a kernel
the ops it fused and the user's lines they came from), their averages by name, and the table
printed in PyTorch's layout (`key_averages().table(sort_by="self_cpu_time_total")`)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FunctionEvent:
    """One interval: `name`, start and end in microseconds since the profile began, the
    thread, and what it was (`kind`: "kernel", "engine" for the realize's phases, "user" for
    record_function, "python" for the time outside every realize). A kernel has the user-level
    ops it fused (`ops`), the source lines they came from (`sources`) and its output's shape."""

    name: str
    start_us: float
    end_us: float
    kind: str = "engine"
    thread: int = 0
    ops: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    shape: tuple[int, ...] | None = None
    children: list[FunctionEvent] = field(default_factory=list, repr=False)

    @property
    def cpu_time_total(self) -> float:
        return self.end_us - self.start_us

    @property
    def self_cpu_time_total(self) -> float:
        return self.cpu_time_total - sum(c.cpu_time_total for c in self.children)

    @property
    def key(self) -> str:
        return self.name


@dataclass
class FunctionEventAvg:
    """The events of one key: their count, total and self times (microseconds), the ops and
    lines of the kernels among them."""

    key: str
    count: int = 0
    cpu_time_total: float = 0.0
    self_cpu_time_total: float = 0.0
    kind: str = ""
    ops: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    input_shapes: str = ""

    @property
    def cpu_time(self) -> float:
        """The average time of one call."""
        return self.cpu_time_total / self.count if self.count else 0.0

    # a CPU device runs kernels on the host: its device time is its CPU time
    @property
    def self_device_time_total(self) -> float:
        return self.self_cpu_time_total if self.kind == "kernel" else 0.0

    self_cuda_time_total = self_device_time_total

    @property
    def device_time_total(self) -> float:
        return self.cpu_time_total if self.kind == "kernel" else 0.0

    cuda_time_total = device_time_total

    def add(self, e: FunctionEvent) -> None:
        self.count += 1
        self.cpu_time_total += e.cpu_time_total
        self.self_cpu_time_total += e.self_cpu_time_total
        self.kind = self.kind or e.kind
        self.ops = tuple(dict.fromkeys(self.ops + e.ops))
        self.sources = tuple(dict.fromkeys(self.sources + e.sources))


def _fmt_us(us: float) -> str:
    if us >= 1e6:
        return f"{us / 1e6:.3f}s"
    if us >= 1e3:
        return f"{us / 1e3:.3f}ms"
    return f"{us:.3f}us"


def _cut(s: str, width: int) -> str:
    return s if len(s) <= width else s[:width - 3] + "..."


class EventList(list):
    """Events, or their averages; `table()` prints them."""

    def __init__(self, items=(), wall_us: float = 0.0):
        super().__init__(items)
        self.wall_us = wall_us

    def key_averages(self, group_by_input_shape: bool = False) -> EventList:
        """One FunctionEventAvg per name (and output shape, with `group_by_input_shape`)."""
        groups: dict[tuple, FunctionEventAvg] = {}
        for e in self:
            shape = str(list(e.shape)) if group_by_input_shape and e.shape is not None else ""
            avg = groups.get((e.key, shape))
            if avg is None:
                avg = groups[e.key, shape] = FunctionEventAvg(e.key, input_shapes=shape)
            avg.add(e)
        return EventList(groups.values(), self.wall_us)

    @property
    def self_cpu_time_total(self) -> float:
        return sum(e.self_cpu_time_total for e in self)

    def table(self, sort_by: str | None = None, row_limit: int = 100,
              max_name_column_width: int = 55, max_src_column_width: int = 60,
              header: str | None = None, top_level_events_only: bool = False) -> str:
        """The events as PyTorch's profiler prints them (Name, Self CPU %, Self CPU, CPU total
        %, CPU total, CPU time avg, # of Calls), with two columns of lazytorch's: the ops a
        kernel fused and the user's source lines they came from. `sort_by` names an attribute
        of the rows, largest first ("self_cpu_time_total", "cpu_time_total", "cpu_time",
        "count", ...)."""
        rows = list(self)
        if top_level_events_only:
            rows = [r for r in rows if getattr(r, "kind", "") != "kernel"]
        if sort_by is not None:
            if rows and not hasattr(rows[0], sort_by):
                raise AttributeError(f"profiler events have no attribute {sort_by!r} to sort by")
            rows.sort(key=lambda r: getattr(r, sort_by), reverse=True)
        rows = rows[:row_limit] if row_limit is not None and row_limit >= 0 else rows
        total_self = self.self_cpu_time_total or 1.0
        shapes = any(getattr(r, "input_shapes", "") for r in rows)
        nw = max([len("Name")] + [min(len(r.key), max_name_column_width) for r in rows])
        cols = [("Name", nw, "<"), ("Self CPU %", 10, ">"), ("Self CPU", 11, ">"),
                ("CPU total %", 11, ">"), ("CPU total", 11, ">"), ("CPU time avg", 12, ">"),
                ("# of Calls", 10, ">")]
        if shapes:
            cols.append(("Shape", 16, "<"))
        cols += [("Fused ops", 30, "<"), ("Source", max_src_column_width, "<")]
        line = "  ".join("-" * w for _, w, _ in cols)
        out = [header] if header else []
        out += [line, "  ".join(f"{n:{a}{w}}" for n, w, a in cols), line]
        for r in rows:
            cells = [_cut(r.key, nw), f"{100 * r.self_cpu_time_total / total_self:.2f}%",
                     _fmt_us(r.self_cpu_time_total),
                     f"{100 * r.cpu_time_total / total_self:.2f}%", _fmt_us(r.cpu_time_total),
                     _fmt_us(r.cpu_time_total / max(getattr(r, "count", 1), 1)),
                     str(getattr(r, "count", 1))]
            if shapes:
                cells.append(_cut(getattr(r, "input_shapes", ""), 16))
            cells += [_cut(", ".join(r.ops), 30), _cut(", ".join(r.sources), max_src_column_width)]
            out.append("  ".join(f"{c:{a}{w}}" for c, (_, w, a) in zip(cells, cols)))
        out += [line, f"Self CPU time total: {_fmt_us(self.self_cpu_time_total)}"]
        if self.wall_us:
            out.append(f"Wall time of the profile: {_fmt_us(self.wall_us)}")
        return "\n".join(out) + "\n"

    def __str__(self) -> str:
        return self.table()
