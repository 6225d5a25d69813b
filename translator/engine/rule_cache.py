"""Parsed Sigma rule files kept between runs, keyed by the file's bytes.

Reading a rule file is YAML plus pySigma's model (about 1.4 s for SigmaHQ's 2,407 Windows
rules, a quarter of an `eval` run); the pickled collection loads in a third of that. The key is
a SHA-256 over the file's bytes and the versions of Python, pySigma and this tool, so an edited
file or an upgrade never reads a stale entry. Entries are written atomically; one that cannot be
read is treated as missing. The folder is the user's own cache (``$XDG_CACHE_HOME/translator``
or ``~/.cache/translator``): pickles are only loaded from there or from a folder the user names.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import platform
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from sigma.collection import SigmaCollection

from translator import __version__
from translator.emit.writer import write_atomic


def default_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "translator" / "rules"


_SALT = f"{platform.python_version()}|{metadata.version('pysigma')}|{__version__}".encode()


def load(path: Path, folder: Path | None, parse: Callable[[bytes], SigmaCollection]) -> SigmaCollection:
    """The collection in ``path``: from the cache when it holds these bytes, else parsed (and kept)."""
    data = path.read_bytes()
    if folder is None:
        return parse(data)
    key = hashlib.sha256(_SALT + b"\0" + data).hexdigest()
    entry = folder / key[:2] / f"{key}.pickle"
    try:
        cached = pickle.loads(entry.read_bytes())
        if isinstance(cached, SigmaCollection):
            return cached
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError):
        pass  # missing or unreadable: parse again
    collection = parse(data)
    # a cache that cannot be written costs speed, never the run
    with contextlib.suppress(OSError, pickle.PicklingError, TypeError, AttributeError, RecursionError):
        write_atomic(entry, pickle.dumps(collection, protocol=pickle.HIGHEST_PROTOCOL))
    return collection
