"""The profiler in PyTorch's shape: `with profile() as prof: ...`, then
`prof.key_averages().table(sort_by="self_cpu_time_total")`.

While a profile records, it is lazytorch.config.PROFILER: the engine reports each realize's
phases to it (lazytorch::prepare: the walk of the pending graph and its structure key;
lazytorch::plan: scheduling and rendering a plan that was not cached; lazytorch::compile: the
compiler's runs; lazytorch::realize: the whole realize) and runs the plans kernel by kernel,
timing each (an event named after the ops it fused, with the user's lines they came from).
The time outside every realize and record_function is the Python of the program: the user's
code and the recording of its ops (`[python] user code and op recording`)."""
from __future__ import annotations

import enum
import functools
import json
import os
import threading
import time
from typing import Any, Callable, Iterable

from .. import config
from ..runtime.files import atomic_write
from .events import EventList, FunctionEvent

PYTHON = "[python] user code and op recording"
_current: profile | None = None   # the profile started and not yet stopped
_recording: list[_Recorder] = []  # the recorders in a recording window: the user's, and
#                                   LAZYTORCH_PROFILE's whole-run profile around it


class _Tee:
    """config.PROFILER while two profiles record (a user's inside LAZYTORCH_PROFILE's)."""

    def __init__(self, recorders: tuple):
        self.recorders = recorders

    def event(self, *args, **kwargs) -> None:
        for r in self.recorders:
            r.event(*args, **kwargs)


def _publish() -> None:
    config.PROFILER = (None if not _recording else _recording[0] if len(_recording) == 1
                       else _Tee(tuple(_recording)))


class ProfilerActivity(enum.Enum):
    CPU = 0
    CUDA = 1


class ProfilerAction(enum.Enum):
    NONE = 0
    WARMUP = 1
    RECORD = 2
    RECORD_AND_SAVE = 3


def schedule(*, wait: int, warmup: int, active: int, repeat: int = 0, skip_first: int = 0
             ) -> Callable[[int], ProfilerAction]:
    """PyTorch's profiler schedule: after `skip_first` steps, cycles of `wait` steps not
    recorded, `warmup` steps not recorded, `active` steps recorded (the last one saves: the
    trace handler is called), `repeat` cycles (0: for ever)."""
    if wait < 0 or warmup < 0 or active <= 0 or repeat < 0 or skip_first < 0:
        raise ValueError("Invalid profiler schedule arguments")

    def action(step: int) -> ProfilerAction:
        if step < skip_first:
            return ProfilerAction.NONE
        step -= skip_first
        cycle = wait + warmup + active
        if repeat > 0 and step // cycle >= repeat:
            return ProfilerAction.NONE
        mod = step % cycle
        if mod < wait:
            return ProfilerAction.NONE
        if mod < wait + warmup:
            return ProfilerAction.WARMUP
        return ProfilerAction.RECORD if mod < cycle - 1 else ProfilerAction.RECORD_AND_SAVE

    return action


class _Recorder:
    """What the engine reports to while a profile records (config.PROFILER)."""

    def __init__(self, record_shapes: bool):
        self.events: list[FunctionEvent] = []
        self.record_shapes = record_shapes
        self.t0 = time.perf_counter()
        self.recorded_s = 0.0         # the time spent recording (the windows of the schedule)
        self._since: float | None = self.t0
        self._lock = threading.Lock()

    def event(self, name: str, t0: float, t1: float, kind: str = "engine",
              ops: tuple = (), sources: tuple = (), shape: tuple | None = None) -> None:
        """An interval from perf_counter() t0 to t1."""
        e = FunctionEvent(name, (t0 - self.t0) * 1e6, (t1 - self.t0) * 1e6, kind,
                          threading.get_ident(), ops, sources,
                          shape if self.record_shapes else None)
        with self._lock:
            self.events.append(e)

    def pause(self) -> None:
        if self._since is not None:
            self.recorded_s += time.perf_counter() - self._since
            self._since = None

    def resume(self) -> None:
        if self._since is None:
            self._since = time.perf_counter()


def _nest(events: list[FunctionEvent]) -> list[FunctionEvent]:
    """Link each event to the ones directly inside it (same thread); the top-level ones."""
    top = []
    by_thread: dict[int, list[FunctionEvent]] = {}
    for e in sorted(events, key=lambda e: (e.start_us, -e.end_us)):
        e.children = []
        stack = by_thread.setdefault(e.thread, [])
        while stack and stack[-1].end_us <= e.start_us:
            stack.pop()
        while stack and e.end_us > stack[-1].end_us:   # overlapping, not nested: a sibling
            stack.pop()
        (stack[-1].children if stack else top).append(e)
        stack.append(e)
    return top


class profile:
    """Record what lazytorch runs while the context is open (or between start() and stop()).

    Accepts PyTorch's arguments: `activities` (ProfilerActivity.CPU and .CUDA; kernels of
    every device are timed), `schedule` with `step()` and `on_trace_ready`, `record_shapes`
    (the table can group kernels by their output's shape); `profile_memory`, `with_stack`,
    `with_flops` and `with_modules` are accepted and change nothing (a kernel's events always
    name the user's source lines)."""

    def __init__(self, *, activities: Iterable[ProfilerActivity] | None = None,
                 schedule: Callable[[int], ProfilerAction] | None = None,
                 on_trace_ready: Callable[[profile], Any] | None = None,
                 record_shapes: bool = False, profile_memory: bool = False,
                 with_stack: bool = False, with_flops: bool = False,
                 with_modules: bool = False, **kwargs: Any):
        self.activities = set(activities or (ProfilerActivity.CPU,))
        self.schedule = schedule
        self.on_trace_ready = on_trace_ready
        self.record_shapes = record_shapes
        self.step_num = 0
        self._rec: _Recorder | None = None
        self._done: list[FunctionEvent] = []
        self._wall_us = 0.0
        self._saved: tuple[list[FunctionEvent], float] = ([], 0.0)   # the last saved window's
        self._action = ProfilerAction.NONE

    # -- the recording window ------------------------------------------------------------------
    def __enter__(self) -> profile:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        self._start(whole_run=False)

    def _start(self, whole_run: bool) -> None:
        """(The whole-run profile of LAZYTORCH_PROFILE is not `_current`: a user's profile may
        start inside it, and both record.)"""
        global _current
        if _current is not None and not whole_run:
            raise RuntimeError("Profiler is already enabled")
        action = self._next_action()   # (the user's schedule may raise: nothing started yet)
        if not whole_run:
            _current = self
        self._rec = _Recorder(self.record_shapes)
        self._rec.pause()
        self._enter(action)

    def stop(self) -> None:
        global _current
        if self._rec is None:
            return
        saving = self._action in (ProfilerAction.RECORD, ProfilerAction.RECORD_AND_SAVE)
        self._enter(ProfilerAction.NONE)
        if _current is self:
            _current = None
        try:
            # (a window just begun, with nothing in it, leaves the last saved one the results)
            if saving and self.schedule is not None and (self._rec.events or self._done):
                self._save()
        finally:
            self._collect()
            self._rec = None

    def step(self) -> None:
        """The end of one training step (with a schedule: the next action begins)."""
        if self._rec is None:
            return
        before = self._action
        self.step_num += 1
        self._enter(self._next_action())
        if before is ProfilerAction.RECORD_AND_SAVE:
            self._save()

    def _next_action(self) -> ProfilerAction:
        return ProfilerAction.RECORD if self.schedule is None else self.schedule(self.step_num)

    def _enter(self, action: ProfilerAction) -> None:
        self._action = action
        rec = self._rec
        if action in (ProfilerAction.RECORD, ProfilerAction.RECORD_AND_SAVE):
            if rec not in _recording:
                _recording.append(rec)
            rec.resume()
        else:   # waiting or warming up: nothing is reported, the plans run as they do unseen
            if rec in _recording:
                _recording.remove(rec)
            rec.pause()
        _publish()

    def _save(self) -> None:
        """The end of an active window: the trace handler sees what it recorded, and the
        results (events(), key_averages()) are that window's until the next one ends."""
        self._collect()
        self._saved = (self._done, self._wall_us)
        self._done = []
        self._wall_us = 0.0
        if self.on_trace_ready is not None:
            self.on_trace_ready(self)

    def _collect(self) -> None:
        rec = self._rec
        with rec._lock:
            events, rec.events = rec.events, []
        wall_s, rec.recorded_s = rec.recorded_s, 0.0
        if rec._since is not None:
            now = time.perf_counter()
            wall_s += now - rec._since
            rec._since = now
        self._done.extend(events)
        self._wall_us += wall_s * 1e6

    # -- results -------------------------------------------------------------------------------
    def events(self) -> EventList:
        """Every event recorded, and one for the Python time outside every realize and
        record_function on the profiling thread."""
        done, wall = self._window()
        top = _nest(done)
        me = threading.get_ident()
        inside = sum(e.cpu_time_total for e in top if e.thread == me)
        rest = max(wall - inside, 0.0)
        out = EventList(sorted(done, key=lambda e: e.start_us), wall)
        if wall:
            out.append(FunctionEvent(PYTHON, 0.0, rest, "python", me))
        return out

    def _window(self) -> tuple[list[FunctionEvent], float]:
        """The events and wall time of the results: those recorded since the last saved
        window, or (no events since) the saved window's."""
        if self._done or not self._saved[0]:
            return self._done, self._wall_us
        return self._saved

    def key_averages(self, group_by_input_shape: bool = False, group_by_stack_n: int = 0
                     ) -> EventList:
        """The events averaged by name (and shape, with `group_by_input_shape`)."""
        return self.events().key_averages(group_by_input_shape)

    def export_chrome_trace(self, path: str) -> None:
        """The events as a Chrome trace (chrome://tracing, Perfetto), written whole."""
        pid = os.getpid()
        trace = [{"name": e.name, "ph": "X", "ts": e.start_us, "dur": e.cpu_time_total,
                  "pid": pid, "tid": e.thread, "cat": e.kind,
                  "args": {"ops": list(e.ops), "sources": list(e.sources)}}
                 for e in self._window()[0]]
        atomic_write(path, json.dumps({"traceEvents": trace}).encode())


class record_function:
    """A named range of the user's code: `with record_function("forward"): ...` or as a
    decorator; its time includes the realizes inside it, its self time excludes them."""

    def __init__(self, name: str, args: str | None = None):
        self.name = name
        self._t0 = 0.0

    def __enter__(self) -> record_function:
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        prof = config.PROFILER
        if prof is not None:
            prof.event(self.name, self._t0, time.perf_counter(), "user")

    def __call__(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            with record_function(self.name):
                return fn(*args, **kwargs)
        return wrapped


def at_exit() -> profile | None:
    """With LAZYTORCH_PROFILE=1 (or a sort key: LAZYTORCH_PROFILE=cpu_time_total), profile
    the whole program and print its table to stderr at exit; the profile, else None."""
    sort = os.environ.get("LAZYTORCH_PROFILE", "")
    if sort in ("", "0"):
        return None
    if sort == "1":
        sort = "self_cpu_time_total"
    import atexit
    import sys
    prof = profile()
    prof._start(whole_run=True)

    def report() -> None:
        prof.stop()
        sys.stderr.write(prof.key_averages().table(sort_by=sort, row_limit=40,
                                                   header="lazytorch profile (LAZYTORCH_PROFILE)"))

    atexit.register(report)
    return prof
