"""Files written whole or not at all."""
from __future__ import annotations

import os
import tempfile


def atomic_write(path: str, data: bytes, suffix: str = "") -> None:
    """Write data to path through a temporary file in the same folder, renamed into place, so
    that readers see the old file or the new one, never a partial one; the temporary file is
    removed if the write fails."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
