"""Where lilypad finds the Go programs that the Makefile builds: kubo's ``ipfs`` and ``bacalhau``.

``scripts/_toolchain/build-go-tools.sh`` (``make kubo``, ``make bacalhau``) builds them
from the Go module proxy into one directory outside the source tree, and this module
looks in the same place:

    ``$LILYPAD_BIN_DIR``, else ``${XDG_CACHE_HOME:-~/.cache}/lilypad/bin``

(an empty variable counts as unset, as in the script's ``${VAR:-default}``).
"""

from __future__ import annotations

import os
from pathlib import Path

from lilypad.exceptions import GoToolMissingError

__all__ = ["GO_TOOL_MAKE_TARGETS", "find_go_tool", "go_tool_path", "go_tools_dir"]

GO_TOOL_MAKE_TARGETS = {"ipfs": "kubo", "bacalhau": "bacalhau"}
"""Each Go-built program and the ``make`` target that builds it."""


def go_tools_dir() -> Path:
    """The directory the Go-built programs are installed in (it may not exist yet)."""
    if explicit := os.environ.get("LILYPAD_BIN_DIR"):
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(cache) / "lilypad" / "bin"


def go_tool_path(name: str) -> Path:
    """Where the program ``name`` (``"ipfs"`` or ``"bacalhau"``) is, or would be, installed."""
    if name not in GO_TOOL_MAKE_TARGETS:
        raise ValueError(f"unknown Go-built program {name!r} (known: {', '.join(GO_TOOL_MAKE_TARGETS)})")
    return go_tools_dir() / name


def find_go_tool(name: str) -> Path:
    """The installed program ``name``; :class:`GoToolMissingError` if it is not built."""
    path = go_tool_path(name)
    if not os.access(path, os.X_OK) or not path.is_file():
        raise GoToolMissingError(name, str(path), GO_TOOL_MAKE_TARGETS[name])
    return path
