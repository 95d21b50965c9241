"""The Go template helper: the small program that renders module templates with
Go's own ``text/template``, where it lives and how it is built.

Its source is ``lilypad/modules/gotemplate/`` (``main.go`` and ``go.mod``,
standard library only). ``make setup`` builds it (``python -m
lilypad.modules.gotemplate_helper``) into a cache outside the source tree::

    ${XDG_CACHE_HOME:-~/.cache}/lilypad/bin/lilypad-gotemplate-<hash of its source>

The name carries a hash of the source, so a changed helper is rebuilt once and
an old binary is never run by newer code; Go's own build cache (``GOCACHE``)
is reused, so a rebuild takes about a second once the standard library is
compiled. :func:`helper_path` finds it: ``LILYPAD_GOTEMPLATE`` (a path to a
helper binary) when set, else the cached build; if that is missing and a ``go`` command exists, it builds it there first
(under a lock, atomically); otherwise it raises
:class:`~lilypad.exceptions.TemplateHelperError` saying to run ``make setup``.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

from lilypad.exceptions import TemplateHelperError

__all__ = [
    "HELPER_ENV",
    "HELPER_SOURCE_DIR",
    "build_helper",
    "default_helper_path",
    "find_go",
    "helper_cache_dir",
    "helper_override",
    "helper_path",
    "helper_source_hash",
]

HELPER_ENV = "LILYPAD_GOTEMPLATE"
"""Environment variable naming a helper binary to use instead of the cached build."""
HELPER_SOURCE_DIR = Path(__file__).resolve().with_name("gotemplate")
_SOURCE_FILES = ("go.mod", "main.go")
_GO_CANDIDATES = ("/usr/local/go/bin/go", "/usr/lib/go/bin/go")
_BUILD_TIMEOUT_S = 1800.0  # a cold build compiles the standard library: minutes on a busy machine
_SETUP_HINT = ("run `make setup` (it needs Go: `apt-get install golang-go`), "
               "or point LILYPAD_GOTEMPLATE at a built helper")


@lru_cache(maxsize=1)
def helper_source_hash() -> str:
    """16 hex digits of SHA-256 over the helper's source files (name and content)."""
    digest = hashlib.sha256()
    for name in _SOURCE_FILES:
        try:
            content = (HELPER_SOURCE_DIR / name).read_bytes()
        except OSError as exc:
            raise TemplateHelperError(str(HELPER_SOURCE_DIR), f"its source is missing ({exc})") from None
        digest.update(name.encode() + b"\0" + content + b"\0")
    return digest.hexdigest()[:16]


def _user_cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"))


def helper_cache_dir() -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/lilypad/bin``."""
    return _user_cache_root() / "lilypad" / "bin"


def default_helper_path() -> Path:
    """Where ``make setup`` puts the helper built from this source."""
    return helper_cache_dir() / f"lilypad-gotemplate-{helper_source_hash()}"


def find_go() -> str | None:
    """The ``go`` command: on ``PATH``, else where Go's and Debian's installs put it."""
    found = shutil.which("go")
    if found:
        return found
    return next((c for c in _GO_CANDIDATES if os.access(c, os.X_OK)), None)


def helper_override() -> Path | None:
    """``LILYPAD_GOTEMPLATE`` as a path (``None`` when unset or empty). Read here,
    on every render, rather than through :mod:`lilypad.settings`, whose model
    costs milliseconds to build."""
    value = os.environ.get(HELPER_ENV)
    return Path(value) if value else None


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _go_env() -> dict[str, str]:
    """The environment of ``go build``: the user's, made offline, local-toolchain
    and cgo-free (a static binary; no C compiler needed)."""
    env = dict(os.environ)
    env.update(GOTOOLCHAIN="local", CGO_ENABLED="0", GOFLAGS="", GOWORK="off", GOPROXY="off", GO111MODULE="on")
    if not (os.environ.get("HOME") or os.environ.get("XDG_CACHE_HOME")):  # go needs somewhere to cache
        env.setdefault("GOCACHE", str(helper_cache_dir().parent / "go-build"))
        env.setdefault("GOPATH", str(helper_cache_dir().parent / "gopath"))
    return env


def build_helper(target: Path | None = None, *, go: str | None = None, timeout: float = _BUILD_TIMEOUT_S) -> Path:
    """Build the helper into ``target`` (default :func:`default_helper_path`)
    unless it is already there; return its path. Concurrent builders wait for
    one another (``flock``); the binary appears atomically."""
    target = Path(target).absolute() if target is not None else default_helper_path()
    go = go or find_go()
    if go is None:
        raise TemplateHelperError(str(target), f"it is not built and no `go` command was found: {_SETUP_HINT}")
    helper_source_hash()  # the source must be there
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        lock = os.open(target.parent / ".lilypad-gotemplate.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise TemplateHelperError(str(target), f"cannot create its directory ({exc}): {_SETUP_HINT}") from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _executable(target):
            return target
        partial = target.with_name(f".tmp-{target.name}-{os.getpid()}")
        command = [go, "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", str(partial), "."]
        try:
            proc = subprocess.run(command, cwd=HELPER_SOURCE_DIR, env=_go_env(), capture_output=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise TemplateHelperError(str(target), f"`go build` took longer than {timeout:g}s") from None
        if proc.returncode != 0:
            partial.unlink(missing_ok=True)
            lines = proc.stderr.decode(errors="replace").strip().splitlines()
            raise TemplateHelperError(str(target), "`go build` failed: " + " | ".join(lines[-5:]))
        os.replace(partial, target)
        return target
    finally:
        os.close(lock)


def helper_path(*, build: bool = True) -> Path:
    """The helper to run: ``LILYPAD_GOTEMPLATE`` if set, else the cached build
    (built now when missing, ``build`` is true and Go is installed)."""
    override = helper_override()
    if override is not None:
        if not _executable(override):
            raise TemplateHelperError(str(override), f"{HELPER_ENV} names no executable file: {_SETUP_HINT}")
        return override
    target = default_helper_path()
    if _executable(target):
        return target
    if not build or find_go() is None:
        raise TemplateHelperError(str(target), f"the Go template helper is not built: {_SETUP_HINT}")
    return build_helper(target)


def _main(args: list[str]) -> int:
    """``python -m lilypad.modules.gotemplate_helper``: build the helper if
    needed (``make setup``) and print its path; with ``--check``, only say (exit
    status 0 or 1) whether it is built."""
    try:
        target = default_helper_path()
        if args == ["--check"]:
            return 0 if _executable(target) else 1
        if not _executable(target):
            print(f"setup: building the Go template helper into {target}", file=sys.stderr)
        print(build_helper(target))
    except TemplateHelperError as exc:
        print(f"setup: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
