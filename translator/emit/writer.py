"""Atomic file writes: a reader never sees a half-written output, even after Ctrl-C or SIGTERM.

The text goes to a temporary file beside the target, which then replaces it in one
rename. Interrupting signals are held back for those few system calls (delivered
right after), so an interruption never leaves a temporary file behind.
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
from pathlib import Path

_HELD = {signal.SIGINT, signal.SIGTERM}


def _file_mode() -> int:
    """The mode a new file gets under the process's umask (0644 under 022), as ``open`` would give it."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_atomic(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    held = threading.current_thread() is threading.main_thread()
    if held:
        signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            os.fchmod(fd, _file_mode())  # mkstemp makes it private (0600); an output is an ordinary file
            if isinstance(text, bytes):
                with os.fdopen(fd, "wb") as raw:
                    raw.write(text)
            else:
                with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
                    fh.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    finally:
        if held:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)
