"""Run documents' Python blocks as `python - <<EOF` would, without an interpreter start and an
`import lazytorch` per block: a server process imports lazytorch once and forks a child per
block, which starts from the state a fresh `python -` has after that import (no buffer made,
no graph recorded, nothing compiled in the process). Where there is no fork, each block runs
in a process of its own."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

_SERVER = r"""
import json, os, signal, sys, tempfile, traceback
import lazytorch  # noqa: F401  (imported once, before the forks)
sys.argv = ["-"]
for line in sys.stdin:
    req = json.loads(line)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        pid = os.fork()
        if pid == 0:
            rc = 0
            try:
                signal.alarm(req["timeout"])
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
                os.chdir(req["cwd"])
                exec(compile(req["src"], "<stdin>", "exec"), {"__name__": "__main__"})
            except SystemExit as e:
                rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            except BaseException:
                traceback.print_exc()
                rc = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(rc)
        status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        out.seek(0)
        err.seek(0)
        print(json.dumps({"rc": status, "out": out.read().decode(errors="replace"),
                          "err": err.read().decode(errors="replace")}), flush=True)
"""


class BlockRunner:
    """Runs Python sources as `python -` in a given directory: (returncode, stdout, stderr)."""

    def __init__(self, env: dict):
        self.env = env
        self.server = None
        if hasattr(os, "fork"):
            self.server = subprocess.Popen([sys.executable, "-c", _SERVER], env=env,
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                           text=True)

    def run(self, src: str, cwd: Path, timeout: int = 300) -> tuple[int, str, str]:
        if self.server is None:
            r = subprocess.run([sys.executable, "-"], input=src, cwd=cwd, env=self.env,
                               capture_output=True, text=True, timeout=timeout)
            return r.returncode, r.stdout, r.stderr
        self.server.stdin.write(json.dumps({"src": src, "cwd": str(cwd),
                                            "timeout": timeout}) + "\n")
        self.server.stdin.flush()
        line = self.server.stdout.readline()
        if not line:
            raise RuntimeError("the block server died")
        got = json.loads(line)
        return got["rc"], got["out"], got["err"]

    def close(self) -> None:
        if self.server is not None:
            self.server.stdin.close()
            self.server.wait(timeout=60)
