"""The compile cache holds code we execute: it is used only if the current user wrote it, its
entries are checked before they are loaded (a damaged one is rebuilt, never crashes us), it is
keyed on the processor -march=native resolved to, it has a size limit, and an unwritable one
falls back to a private directory."""
from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import lazytorch as torch
from lazytorch import debug
from lazytorch.runtime import cache, cpu, native
from lazytorch.runtime.cpu import elf, scratch, toolchain
from lazytorch.runtime.native import sources
from tests.test_native_choice import NO_EXTENSION

ROOT = Path(__file__).resolve().parents[1]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
OTHER_UID = 4321

# a fresh process realizes one small graph and reports its counters and the value
SCRIPT = """
import json
import numpy as np
import lazytorch as torch
from lazytorch import debug
x = torch.tensor(np.arange(10, dtype=np.float32) / 3)
y = ((x * 0.6875).exp() + x).sum()
debug.reset_stats()
value = y.item()
print(json.dumps({"stats": debug.stats(), "value": value}))
"""
EXPECTED = float((np.exp(np.arange(10, dtype=np.float32) / 3 * np.float32(0.6875))
                  + np.arange(10, dtype=np.float32) / 3).sum())


def _env(cache_dir: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAZYTORCH_")}
    env.update(LAZYTORCH_CACHE_DIR=str(cache_dir), LAZYTORCH_BACKEND="c", LAZYTORCH_NATIVE="0")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def _run(cache_dir: Path, script: str = SCRIPT, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script], env=_env(cache_dir, **env),
                          capture_output=True, text=True, timeout=300)


def _report(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def filled(tmp_path_factory) -> Path:
    """A cache filled by one fresh process running SCRIPT (one kernel module)."""
    d = tmp_path_factory.mktemp("filled") / "cache"
    first = _report(_run(d))
    assert first["stats"]["compiler_runs"] == 1
    assert first["value"] == pytest.approx(EXPECTED, rel=1e-6)
    return d


@pytest.fixture
def copy(filled, tmp_path) -> Path:
    d = tmp_path / "cache"
    shutil.copytree(filled, d)
    return d


def _entry(d: Path) -> Path:
    """The one kernel module of a cache (<key[:2]>/<key>.so; the runtime's own modules sit in
    folders of their own)."""
    (so,) = [p for p in d.glob("*/*.so") if p.parent.name == p.name[:2]]
    return so


def _record(so: Path, data: bytes | None = None) -> None:
    """Rewrite an entry's recorded checksum and size to match its (damaged) content."""
    data = so.read_bytes() if data is None else data
    Path(str(so) + ".sum").write_text(f"{hashlib.sha256(data).hexdigest()} {len(data)}\n")


def _cc(tmp_path: Path, source: str, flags=("-O1", "-fPIC", "-shared")) -> bytes:
    src = tmp_path / "lib.c"
    src.write_text(source)
    out = tmp_path / "lib.so"
    subprocess.run([cpu.compiler(), *flags, "-o", str(out), str(src)], check=True)
    return out.read_bytes()


@pytest.fixture
def fresh(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "fresh"
    monkeypatch.setenv("LAZYTORCH_CACHE_DIR", str(d))
    monkeypatch.setenv("LAZYTORCH_BACKEND", "c")
    return d


# ---- trust ----

def test_the_cache_is_private(fresh):
    y = (torch.tensor([1.0, -2.0, 4.0]) * 1.8203125).abs().sum()   # a graph no other test builds
    assert y.item() == 7 * 1.8203125
    assert (fresh.stat().st_mode & 0o777) == 0o700
    assert (fresh / cache.TAG).read_bytes().startswith(b"Signature: 8a477f597d28d172789f068")
    kinds = set()
    for p in fresh.rglob("*"):
        mode = p.stat().st_mode & 0o777
        assert mode == (0o700 if p.is_dir() else 0o600), (p, oct(mode))
        kinds.add(p.suffix)
    assert {".so", ".sum", ".c"} <= kinds and (fresh / cpu.INDEX).is_dir()


@pytest.mark.parametrize("how", ["group_writable", "other_writable", "other_owner"])
def test_an_untrusted_cache_directory_is_refused(fresh, how):
    fresh.mkdir(mode=0o700)
    if how == "other_owner":
        if not IS_ROOT:
            pytest.skip("giving a directory to another user needs root")
        os.chown(fresh, OTHER_UID, -1)
        want = [f"owned by uid {OTHER_UID}", f"chown -R {os.getuid()} {fresh}"]
    else:
        fresh.chmod(0o770 if how == "group_writable" else 0o707)
        want = ["0770" if how == "group_writable" else "0707", f"chmod go-w {fresh}"]
    with pytest.raises(cache.CacheError) as e:
        cache.directory()
    for text in [str(fresh), "LAZYTORCH_CACHE_DIR", *want]:
        assert text in str(e.value)
    # a realize that needs a new kernel says the same, at the user's call
    with pytest.raises(Exception, match="refusing to use the compile cache directory"):
        (torch.tensor([3.0, 5.0]) * 1.9296875).sum().item()


@pytest.mark.parametrize("what,how", [("module", "chmod"), ("module", "chown"),
                                      ("record", "chown"), ("folder", "chmod"),
                                      ("index", "chown")])
def test_an_untrusted_entry_is_refused(copy, what, how):
    so = _entry(copy)
    target = {"module": so, "record": Path(str(so) + ".sum"), "folder": so.parent,
              "index": next((copy / cpu.INDEX).iterdir())}[what]
    if how == "chown":
        if not IS_ROOT:
            pytest.skip("giving a file to another user needs root")
        os.chown(target, OTHER_UID, -1)
    else:
        target.chmod(0o777 if target.is_dir() else 0o666)
    p = _run(copy)
    assert p.returncode != 0
    assert f"refusing to use the compile cache {'directory' if what == 'folder' else 'file'} " \
           f"{target}" in p.stderr
    assert (f"owned by uid {OTHER_UID}" if how == "chown" else "lets group or others write it") \
        in p.stderr


PLANTED = r"""
#include <stdio.h>
__attribute__((constructor)) static void planted(void) {
    FILE *f = fopen(MARKER, "w");
    if (f) { fputs("ran", f); fclose(f); }
}
void *PyInit__native(void) { return 0; }
"""


@pytest.mark.parametrize("how", ["yours", "group_writable", "other_owner"])
def test_a_planted_module_does_not_run_at_import(tmp_path, how):
    # the demonstration: a library planted in the cache ran as whoever imported
    # lazytorch next. The host-loop module is the one loaded at import.
    if how == "other_owner" and not IS_ROOT:
        pytest.skip("planting as another user needs root")
    inc = native._include()
    if inc is None:
        pytest.skip("no Python headers: the host-loop module is never loaded")
    marker = tmp_path / "marker"
    lib = _cc(tmp_path, f'#define MARKER "{marker}"\n' + PLANTED)
    d = tmp_path / "cache"
    so = d / native.FOLDER / (native._key(sources.digest(), inc) + ".so")
    so.parent.mkdir(parents=True, mode=0o700)
    d.chmod(0o700)
    so.write_bytes(lib)
    _record(so)
    so.chmod(0o600)
    if how == "group_writable":
        so.chmod(0o664)
    elif how == "other_owner":
        os.chown(so, OTHER_UID, -1)
    code = (NO_EXTENSION + "import json, warnings\nwarnings.simplefilter('ignore')\n"
            "import lazytorch\nfrom lazytorch.runtime import native\n"
            "print(json.dumps([native.origin(), native.failure()]))\n")
    origin, failure = _report(_run(d, code, LAZYTORCH_NATIVE="1"))
    if how == "yours":
        # the control: a complete library of ours with the init function is loaded (its init
        # fails, so it is rebuilt for the next process), which is why only trust keeps a plant
        # out
        assert marker.read_text() == "ran"
        assert origin is None and "rebuilt for the next process" in failure
        assert so.exists() and so.read_bytes() != lib
        assert _report(_run(d, code, LAZYTORCH_NATIVE="1"))[0] == "cache"
    else:
        assert origin is None and not marker.exists()
        assert "refusing to use the compile cache file" in failure and str(so) in failure


# ---- verification before loading ----

UNDEFINED = """
extern void lt_no_such_function(void);
void lt_calls_what_is_not_there(void) { lt_no_such_function(); }
"""


@pytest.mark.parametrize("damage", ["truncated", "random", "empty", "no_symbol", "not_loadable"])
def test_a_damaged_entry_whose_record_matches_is_rebuilt(copy, tmp_path, damage):
    so = _entry(copy)
    good = so.read_bytes()
    if damage == "truncated":
        bad = good[:len(good) // 2]
    elif damage == "random":
        bad = np.random.default_rng(0).bytes(len(good))
    elif damage == "empty":
        bad = b""
    elif damage == "no_symbol":
        bad = _cc(tmp_path, "int lt_unrelated(void) { return 7; }\n")
    else:   # defines every kernel symbol, but the loader cannot resolve one of its own calls
        bad = _cc(tmp_path, so.with_suffix(".c").read_text() + UNDEFINED,
                  [f for f in cpu.CFLAGS if f != "-w"] + ["-w"])
        assert b"lt_no_such_function" in bad
    so.write_bytes(bad)
    _record(so)
    again = _report(_run(copy))
    assert again["value"] == pytest.approx(EXPECTED, rel=1e-6)
    assert again["stats"]["compiler_runs"] == 1
    assert again["stats"]["cache_entries_discarded"] == 1
    assert so.read_bytes() != bad
    assert Path(str(so) + ".sum").read_text().split() == [
        hashlib.sha256(so.read_bytes()).hexdigest(), str(len(so.read_bytes()))]
    third = _report(_run(copy))   # the rebuilt entry is used from now on
    assert third["stats"]["compiler_runs"] == 0 and third["stats"]["compile_cache_hits"] == 1


def test_a_truncated_host_loop_module_is_rebuilt_not_loaded(tmp_path, mod):
    # loaded at import: a crash there would take every lazytorch program down with it
    inc = native._include()
    key = native._key(sources.digest(), inc)
    d = tmp_path / "cache"
    (d / native.FOLDER).mkdir(parents=True, mode=0o700)
    so = d / native.FOLDER / (key + ".so")
    good = Path(mod.__file__).read_bytes()
    so.write_bytes(good[:len(good) * 2 // 3])
    so.chmod(0o600)
    _record(so)
    code = (NO_EXTENSION + "import json\nimport lazytorch\n"
            "from lazytorch.runtime import native\nm = native.module()\n"
            "print(json.dumps([native.origin(), m and m.__file__, native.failure()]))\n")
    origin, path, failure = _report(_run(d, code, LAZYTORCH_NATIVE="1"))
    assert origin == "cache" and failure is None
    assert path == str(so) and so.read_bytes() != good[:len(good) * 2 // 3]
    elf.check(so.read_bytes(), [native._INIT])


def test_a_module_that_never_loads_is_an_error_after_one_rebuild(fresh, tmp_path, monkeypatch):
    src = "int lt_probe_never_loads(void) { return 3; }\n"
    key = cpu.cache_key(src)
    tmp = cache.new_file(key, None, ".so")
    Path(tmp).write_bytes(_cc(tmp_path, src))
    so = cache.put(tmp, key, None, ".so")   # a complete entry on disk

    def refuse(path, *a, **k):
        raise OSError(f"{path}: cannot be loaded")
    scratch.load()   # (the runtime kernel modules link against loads first: not the one refused)
    real = ctypes.CDLL
    monkeypatch.setattr(ctypes, "CDLL", refuse)
    debug.reset_stats()
    cc = cpu.CCompiler()
    with pytest.raises(cpu.CompileError, match="does not load"):
        cc.compile([src], [["lt_probe_never_loads"]])
    assert debug.stats()["compiler_runs"] == 1            # rebuilt once, not in a loop
    assert debug.stats()["cache_entries_discarded"] == 1
    monkeypatch.setattr(ctypes, "CDLL", real)
    (lib,) = cc.compile([src], [["lt_probe_never_loads"]])   # the entry the rebuild stored
    assert lib.lt_probe_never_loads() == 3 and Path(so).exists()


def test_the_structural_check_rejects_every_truncation(mod):
    data = Path(mod.__file__).read_bytes()
    elf.check(data, [native._INIT])
    for n in range(0, len(data), 61):
        with pytest.raises(elf.ElfError):
            elf.check(data[:n])
    with pytest.raises(elf.ElfError, match="does not define lt_nothing"):
        elf.check(data, [native._INIT, "lt_nothing"])
    other = bytearray(data)
    other[18] ^= 0x7f   # e_machine: another processor's library
    with pytest.raises(elf.ElfError, match="another machine"):
        elf.check(bytes(other))
    exe = bytearray(data)
    exe[16] = 2         # e_type: an executable, not a shared library
    with pytest.raises(elf.ElfError, match="not a shared library"):
        elf.check(bytes(exe))


# ---- the resolved target ----

def test_the_key_names_the_processor_native_resolves_to(monkeypatch):
    t = cpu.target()
    assert t and "-march=native" not in t
    if "gcc" in cpu.compiler_version():
        # the compiler's own report of what -march=native selects
        out = subprocess.run([cpu.compiler(), "-march=native", "-Q", "--help=target"],
                             capture_output=True, text=True).stdout
        arch = next(ln.split()[1] for ln in out.splitlines() if ln.split()[:1] == ["-march="])
        assert f"-march={arch}" in t.split()
    real = toolchain._probe(cpu.compiler())
    k = cpu.cache_key("int f(void) { return 1; }")
    k_plain = cpu.cache_key("int f(void) { return 1; }", ["-O2", "-shared"])
    monkeypatch.setattr(toolchain, "_probe", lambda cc: (real[0], "-march=some-older-cpu"))
    assert cpu.cache_key("int f(void) { return 1; }") != k   # -march=native: keyed on it
    assert cpu.cache_key("int f(void) { return 1; }", ["-O2", "-shared"]) == k_plain


def test_another_processor_does_not_use_this_ones_modules(copy):
    # the same cache seen from a machine whose -march=native resolves to another processor
    other = ("from lazytorch.runtime.cpu import toolchain\nv = toolchain.compiler_version()\n"
             "toolchain._probe = lambda cc: (v, '-march=some-older-cpu')\n" + SCRIPT)
    there = _report(_run(copy, other))
    assert there["stats"]["compiler_runs"] == 1 and there["stats"]["compile_cache_hits"] == 0
    assert there["value"] == pytest.approx(EXPECTED, rel=1e-6)
    here = _report(_run(copy))
    assert here["stats"]["compiler_runs"] == 0 and here["stats"]["compile_cache_hits"] == 1


# ---- where the cache cannot be used as asked ----

FALLBACK = """
import json, warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    import numpy as np
    import lazytorch as torch
    from lazytorch.runtime import cache
    x = torch.tensor(np.arange(5, dtype=np.float32))
    a = (x * 1.4375).sum().item()
    b = (x - 0.8125).abs().amax().item()
print(json.dumps({"warnings": [str(w.message) for w in caught
                               if issubclass(w.category, cache.CacheWarning)],
                  "values": [a, b], "dir": cache.directory()}))
"""


def test_a_read_only_cache_falls_back_to_a_private_directory(tmp_path):
    d = tmp_path / "ro"
    d.mkdir(mode=0o700)
    cmd = [sys.executable, "-c", FALLBACK]
    if IS_ROOT:   # root writes whatever a mode says: mount a read-only file system there
        if shutil.which("unshare") is None:
            pytest.skip("no unshare to mount a read-only file system")
        cmd = ["unshare", "-rm", "sh", "-c",
               f'mount -t tmpfs -o ro,mode=0700 none "{d}" && exec "$0" "$@"', *cmd]
    else:
        d.chmod(0o500)
    p = subprocess.run(cmd, env=_env(d, LAZYTORCH_NATIVE="1"), capture_output=True,
                       text=True, timeout=300)
    if IS_ROOT and p.returncode != 0 and "mount" in p.stderr + p.stdout:
        pytest.skip(f"cannot mount a read-only file system here: {p.stderr.strip()}")
    out = _report(p)
    x = np.arange(5, dtype=np.float32)
    assert out["values"] == [pytest.approx(float((x * np.float32(1.4375)).sum())), 4 - 0.8125]
    (warning,) = out["warnings"]   # one warning for the process, for the two kernels
    assert str(d) in warning and "LAZYTORCH_CACHE_DIR" in warning and out["dir"] in warning
    assert out["dir"] != str(d) and not Path(out["dir"]).exists()   # removed at exit
    assert not list(d.iterdir())


def test_a_write_that_fails_moves_the_cache_to_a_private_directory(fresh, monkeypatch):
    real = tempfile.mkstemp

    def mkstemp(*a, dir=None, **k):
        if dir is not None and str(dir).startswith(str(fresh)):
            raise OSError(errno.EROFS, "Read-only file system", dir)
        return real(*a, dir=dir, **k)
    monkeypatch.setattr(cache.tempfile, "mkstemp", mkstemp)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert (torch.tensor([2.0, 6.0]) * 1.5703125).sum().item() == 12.5625
        assert (torch.tensor([2.0, 6.0]) - 1.6796875).amin().item() == 0.3203125
    (w,) = [w for w in caught if issubclass(w.category, cache.CacheWarning)]
    assert "Read-only file system" in str(w.message) and "LAZYTORCH_CACHE_DIR" in str(w.message)
    assert cache.directory() != str(fresh) and cache.directory() in str(w.message)


@pytest.mark.parametrize("where", ["is_a_file", "under_a_file"])
def test_a_cache_path_that_is_a_file_says_so(tmp_path, monkeypatch, where):
    f = tmp_path / "file"
    f.write_text("not a directory")
    monkeypatch.setenv("LAZYTORCH_CACHE_DIR", str(f if where == "is_a_file" else f / "cache"))
    monkeypatch.setenv("LAZYTORCH_BACKEND", "c")
    want = "is a file, not a directory" if where == "is_a_file" else "part of its path is a file"
    with pytest.raises(cache.CacheError, match=want):
        cache.directory()
    with pytest.raises(Exception, match=want):
        (torch.tensor([1.0, 7.0]) * 1.7421875).sum().item()
    assert f.read_text() == "not a directory"


# ---- size limit, leftovers, clearing ----

def _fake(d: Path, key: str, size: int, age_s: float, name: str | None = None) -> Path:
    """An entry of `size` bytes (module and record) last used `age_s` ago."""
    folder = d / (name or key[:2])
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    so = folder / (key + ".so")
    so.write_bytes(b"x" * (size - 80))
    Path(str(so) + ".sum").write_bytes(b"s" * 80)
    t = time.time() - age_s
    for p in (so, Path(str(so) + ".sum")):
        os.utime(p, (t, t))
    return so


def test_size_limit_parsing(monkeypatch):
    for text, n in [("", 512 * 2**20), ("123", 123), ("4K", 4096), ("2M", 2 * 2**20),
                    ("1.5G", 3 * 2**29), ("64 MiB", 64 * 2**20), ("10kb", 10240)]:
        monkeypatch.setenv("LAZYTORCH_CACHE_SIZE", text)
        assert cache.size_limit() == n
    monkeypatch.setenv("LAZYTORCH_CACHE_SIZE", "lots")
    with pytest.raises(cache.CacheError, match="LAZYTORCH_CACHE_SIZE='lots' is not a size"):
        cache.size_limit()


def test_sweep_removes_the_least_recently_used(fresh, monkeypatch):
    cache.directory()
    keys = [cache.key(str(i)) for i in range(5)]
    sos = [_fake(fresh, k, 10_000, age_s=3600 * (10 - i)) for i, k in enumerate(keys)]
    mine = Path(cache.write(keys[0][::-1], b"x" * 1000))       # written by this process
    os.utime(mine, (0, 0))
    (fresh / "notes.txt").write_text("not ours")
    (sos[0].parent / "README").write_text("not ours either")
    monkeypatch.setattr(cache, "_in_use", {str(mine)})
    _record(sos[1])
    assert cache.get(keys[1], None, ".so") == str(sos[1])    # used now: the most recent
    cache._in_use.discard(str(sos[1]))
    one = sos[1].stat().st_size + len(Path(str(sos[1]) + ".sum").read_bytes())
    # the oldest is this process's own: kept; then 0, 2 and 3 go (down to 30,000 bytes)
    assert cache.sweep(limit=30_000) == 3 * 10_000
    assert [so.exists() for so in sos] == [False, True, False, False, True]
    assert not Path(str(sos[0]) + ".sum").exists()
    assert mine.exists() and (fresh / "notes.txt").exists()
    assert (sos[0].parent / "README").exists()
    assert cache.usage() == (3, one + 10_000 + 1000)


def _settle() -> threading.Thread | None:
    """The last background sweep, finished."""
    t = cache._sweeper
    if t is not None:
        t.join()
    return t


def test_writes_sweep_now_and_then(fresh, monkeypatch):
    monkeypatch.setenv("LAZYTORCH_CACHE_SIZE", "1M")
    # (each new constant a new kernel to store, not an input of one plan: engine/dynamic.py)
    monkeypatch.setenv("LAZYTORCH_DYNAMIC_SCALARS", "0")
    cache.directory()
    _settle()
    old = [_fake(fresh, cache.key(f"old{i}"), 2**20, age_s=86400) for i in range(2)]
    assert (torch.tensor([1.0, 2.0]) * 1.0390625).exp().sum().item() == pytest.approx(
        float(np.exp(np.float32([1.0390625, 2.078125])).sum()), rel=1e-6)
    first = _settle()
    assert not any(p.exists() for p in old)          # the first store swept (no sweep before)
    assert (fresh / cache.SWEEP_STAMP).exists()
    later = _fake(fresh, cache.key("later"), 2 * 2**20, age_s=86400)
    assert (torch.tensor([1.0, 2.0]) * 1.1796875).exp().sum().item() > 0
    assert _settle() is first and later.exists()     # swept a moment ago: not again
    os.utime(fresh / cache.SWEEP_STAMP, (0, 0))
    assert (torch.tensor([1.0, 2.0]) * 1.3046875).exp().sum().item() > 0
    assert _settle() is not first and not later.exists()   # ten minutes later: swept
    assert cache.usage()[1] <= 2**20


def test_leftover_temporary_files_are_removed_later(fresh):
    cache.directory()
    folder = Path(cache.folder("ab"))
    stale, young = folder / ".tmp-killed.so", folder / ".tmp-running.so"
    top = fresh / ".tmp-CACHEDIR.TAG-abcd1234"
    for p, age in ((stale, 2 * 3600), (young, 60), (top, 2 * 3600)):
        p.write_bytes(b"partial")
        os.utime(p, (time.time() - age,) * 2)
    cache.sweep()
    assert not stale.exists() and young.exists() and not top.exists()


def test_clear_and_the_command(copy):
    (copy / "notes.txt").write_text("not ours")
    n, size = cache.usage(str(copy))
    assert n >= 2 and size > 0
    env = _env(copy)
    info = subprocess.run([sys.executable, "-m", "lazytorch.cache"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert info.returncode == 0, info.stderr
    assert f"{copy}: {n} entries" in info.stdout and "LAZYTORCH_CACHE_SIZE" in info.stdout
    p = subprocess.run([sys.executable, "-m", "lazytorch.cache", "--clear"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert f"cleared {copy}" in p.stdout
    assert cache.usage(str(copy)) == (0, 0)
    assert sorted(x.name for x in copy.iterdir()) == [cache.TAG, "notes.txt"]
    again = _report(_run(copy))                       # an empty cache is filled again
    assert again["stats"]["compiler_runs"] == 1
    assert cache.clear(str(copy)) > 0 and cache.usage(str(copy)) == (0, 0)


# ---- a cold cache behaves as a warm one ----

COLD = NO_EXTENSION + """
import gc, json
import numpy as np
import lazytorch as torch
from lazytorch.frontend import elementwise, reduce
from lazytorch.ir import graph, sites
from lazytorch.runtime import native
x = torch.tensor(np.arange(5, dtype=np.float32))
y = (x * 3.5).exp()
n = y.node
print(json.dumps([native.origin(), gc.is_tracked(n), gc.is_tracked(sites.SITES.d[id(n)]),
                  elementwise.new_node is graph.new_node,
                  reduce.record_from is sites.record_from, y.sum().item()]))
"""


def test_a_module_built_at_import_serves_every_module(tmp_path):
    # the host loops built at the import of a process with an empty cache serve it as they do
    # one that loads them from the cache (test_native_choice.py checks every binding)
    if native._include() is None:
        pytest.skip("no Python headers: no host-loop module")
    origin, *rest = _report(_run(tmp_path / "cache", COLD, LAZYTORCH_NATIVE="1"))
    assert origin == "cache"
    assert rest[:4] == [False, False, True, True]
    assert rest[4] == pytest.approx(float(np.exp(np.arange(5, dtype=np.float32) * 3.5).sum()),
                                    rel=1e-6)
