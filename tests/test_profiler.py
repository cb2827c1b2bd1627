"""torch.profiler: the events a profile records (kernels with their fused ops and the user's
lines, the realize's phases, record_function ranges, the Python between), the table in
PyTorch's layout, schedules, the Chrome trace and LAZYTORCH_PROFILE."""
from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import lazytorch as torch
import lazytorch.nn as nn
from lazytorch import debug
from lazytorch.profiler import ProfilerAction, profile, record_function, schedule

HERE = "test_profiler.py"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def here() -> int:
    return inspect.currentframe().f_back.f_lineno


def _model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
    return model, opt, x, y


def _step(model, opt, x, y) -> float:
    opt.zero_grad()
    loss = nn.functional.cross_entropy(model(x), y)   # the line the forward kernels name
    loss.backward()
    opt.step()
    return loss.item()


LOSS_LINE = inspect.getsource(_step).splitlines().index(
    "    loss = nn.functional.cross_entropy(model(x), y)   # the line the forward kernels name"
) + _step.__code__.co_firstlineno


def test_kernels_are_events_with_their_ops_and_lines():
    model, opt, x, y = _model()
    _step(model, opt, x, y)
    debug.reset_stats()
    with profile() as prof:
        for _ in range(3):
            _step(model, opt, x, y)
    events = prof.events()
    kernels = [e for e in events if e.kind == "kernel"]
    # every kernel launched is one event, each inside a realize
    assert len(kernels) == debug.stats()["kernels_launched"] > 0
    realizes = [e for e in events if e.name == "lazytorch::realize"]
    assert len(realizes) == debug.stats()["realizes"]
    for k in kernels:
        assert any(r.start_us <= k.start_us and k.end_us <= r.end_us for r in realizes)
    # the forward's kernels name the user's line, and linear among their ops
    forward = [k for k in kernels if f"{HERE}:{LOSS_LINE}" in k.sources]
    assert forward and any("linear" in k.ops for k in forward)
    assert any("step" in k.ops for k in kernels)   # the optimizer's update, named by its API
    avg = {a.key: a for a in prof.key_averages()}
    assert sum(a.count for a in avg.values() if a.kind == "kernel") == len(kernels)


def test_self_times_partition_the_wall_time():
    model, opt, x, y = _model()
    with profile() as prof:
        for _ in range(2):
            with record_function("step"):
                with record_function("forward+backward"):
                    opt.zero_grad()
                    nn.functional.cross_entropy(model(x), y).backward()
                opt.step()
            (x * 2).sum().item()
    avg = prof.key_averages()
    # everything ran on this thread: the self times add up to the profile's wall time
    assert avg.self_cpu_time_total == pytest.approx(avg.wall_us, rel=1e-6)
    ev = prof.events()
    steps = [e for e in ev if e.name == "step"]
    inner = [e for e in ev if e.name == "forward+backward"]
    assert len(steps) == len(inner) == 2
    for s, i in zip(steps, inner):
        assert i in s.children
        assert s.self_cpu_time_total == pytest.approx(
            s.cpu_time_total - sum(c.cpu_time_total for c in s.children))
        assert 0 <= s.self_cpu_time_total < s.cpu_time_total


def test_a_new_structure_is_planned_and_compiled_a_cached_one_is_not():
    x = torch.randn(40)
    c = float(np.random.default_rng().integers(1 << 30))   # a constant no cache has seen
    with profile() as prof:
        (x * c + 1).exp().sum().item()
    names = [e.name for e in prof.events()]
    assert "lazytorch::plan" in names and "lazytorch::compile" in names
    with profile() as prof:
        (x * c + 1).exp().sum().item()     # the same structure: the plan is replayed
    names = [e.name for e in prof.events()]
    assert "lazytorch::plan" not in names and "lazytorch::compile" not in names
    assert "lazytorch::prepare" in names


def test_profiling_does_not_change_the_numbers():
    model, opt, x, y = _model()
    plain = [_step(model, opt, x, y) for _ in range(3)]
    params = [p.detach().numpy().copy() for p in model.parameters()]
    model, opt, x, y = _model()
    with profile():
        profiled = [_step(model, opt, x, y) for _ in range(3)]
    assert plain == profiled
    for a, p in zip(params, model.parameters()):
        np.testing.assert_array_equal(a, p.detach().numpy())


def test_table_in_pytorchs_layout():
    x = torch.randn(64, 64)
    with profile(record_shapes=True) as prof:
        for n in (64, 32):
            (x[:n] @ x).relu().sum().item()
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=5)
    lines = table.splitlines()
    for col in ("Name", "Self CPU %", "Self CPU", "CPU total", "CPU time avg", "# of Calls",
                "Fused ops", "Source"):
        assert col in lines[1]
    assert lines[-2].startswith("Self CPU time total:")
    rows = lines[3:3 + 5]
    assert len([r for r in lines[3:] if not r.startswith(("-", "Self", "Wall"))]) <= 5
    # sorted by self time, largest first
    avg = sorted(prof.key_averages(), key=lambda a: a.self_cpu_time_total, reverse=True)
    assert rows[0].startswith(avg[0].key[:40])
    by_total = prof.key_averages().table(sort_by="cpu_time_total").splitlines()[3]
    top = max(prof.key_averages(), key=lambda a: a.cpu_time_total)
    assert by_total.startswith(top.key[:40])
    with pytest.raises(AttributeError, match="no attribute 'bogus'"):
        prof.key_averages().table(sort_by="bogus")
    # grouped by shape: the matmul kernels of the two shapes are two rows
    shaped = prof.key_averages(group_by_input_shape=True)
    mm = [a for a in shaped if a.kind == "kernel" and "matmul" in a.ops]
    assert len({a.input_shapes for a in mm}) == 2


def test_a_schedule_records_only_its_active_steps():
    x = torch.randn(16)
    seen = []
    sched = schedule(wait=1, warmup=1, active=2, repeat=1)
    assert [sched(i) for i in range(6)] == [
        ProfilerAction.NONE, ProfilerAction.WARMUP, ProfilerAction.RECORD,
        ProfilerAction.RECORD_AND_SAVE, ProfilerAction.NONE, ProfilerAction.NONE]
    with profile(schedule=sched, on_trace_ready=lambda p: seen.append(
            [e.name for e in p.events()])) as prof:
        for i in range(6):
            (x + i).sum().item()
            prof.step()
    assert len(seen) == 1
    assert seen[0].count("lazytorch::realize") == 2     # steps 2 and 3 only


def test_chrome_trace(tmp_path):
    with profile() as prof:
        (torch.randn(10) * 3).sum().item()
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(str(path))
    trace = json.loads(path.read_text())["traceEvents"]
    assert trace and all(e["ph"] == "X" and e["dur"] >= 0 for e in trace)
    assert {"lazytorch::realize"} <= {e["name"] for e in trace}


def test_one_profile_at_a_time_and_the_autograd_alias():
    with profile():
        with pytest.raises(RuntimeError, match="already enabled"):
            with profile():
                pass
    assert torch.autograd.profiler.profile is profile
    assert torch.autograd.profiler.record_function is record_function

    @record_function("decorated")
    def f(t):
        return (t * 2).sum().item()

    with profile() as prof:
        assert f(torch.ones(3)) == 6.0
    assert [e.name for e in prof.events()].count("decorated") == 1


def test_lazytorch_profile_prints_the_table_at_exit():
    """... and a user's profile inside the whole-run one records too (both see its kernels)."""
    code = ("import lazytorch as torch\n"
            "x = torch.randn(100)\n"
            "for i in range(3):\n"
            "    (x * 2 + 1).relu().sum().item()\n"
            "with torch.profiler.profile() as p:\n"
            "    x.exp().sum().item()\n"
            "print('user:', sorted({e.name for e in p.events() if 'kernel' in e.name}))\n")
    env = dict(os.environ, LAZYTORCH_PROFILE="1", PYTHONPATH=ROOT)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "lazytorch profile (LAZYTORCH_PROFILE)" in r.stderr
    assert "Self CPU time total" in r.stderr and "<string>:4" in r.stderr
    assert "relu" in r.stderr
    assert "user: ['kernel exp+sum']" in r.stdout, r.stdout
    assert "kernel exp+sum" in r.stderr


def test_a_scheduled_profile_keeps_its_last_window_and_a_failing_schedule_starts_nothing(
        tmp_path):
    x = torch.randn(8, 8)
    traces = []
    with profile(schedule=schedule(wait=0, warmup=0, active=2),
                 on_trace_ready=lambda p: p.export_chrome_trace(
                     str(tmp_path / f"t{len(traces)}.json")) or traces.append(1)) as p:
        for i in range(3):
            (x @ x + i).sum().item()
            p.step()
    # the handler saw its window's events, and after the block the results are the last window's
    assert traces and json.loads((tmp_path / "t0.json").read_text())["traceEvents"]
    assert [e.name for e in p.events()].count("lazytorch::realize") >= 1
    with profile(schedule=schedule(wait=0, warmup=0, active=2)) as q:   # no handler
        for i in range(2):
            (x @ x - i).sum().item()
            q.step()
    assert [e.name for e in q.events()].count("lazytorch::realize") == 2
    with pytest.raises(ZeroDivisionError):
        profile(schedule=lambda step: 1 / 0).start()
    with profile():          # the failed start left no profile running
        pass
