"""Resolve module references to a commit and a checkout of the module's files.

:class:`ModuleResolver` turns a reference (:mod:`lilypad.modules.reference`) into a
:class:`ResolvedModule` (full commit hash + a directory of the files at that commit)
with the ``git`` CLI (no shell, ``GIT_TERMINAL_PROMPT=0``, a timeout). Cache layout,
``<key>`` being a slug plus a SHA-256 prefix of the repository's URL or path::

    repos/<key>.git              bare mirror, one per repository
    checkouts/<key>/<commit>/    the files at one commit; complete and immutable
    locks/<key>.lock             flock()ed while the mirror or checkouts change

Checkouts are built in a temporary directory and ``os.rename``-d into place. Branches
and "no ref" (``HEAD``) always fetch; a tag or commit already mirrored does not (tags
count as immutable). Fetches are retried ``retries`` times with exponential backoff
unless git's error is permanent (unknown ref, no such repository, auth needed).

A **built-in module** (``modules/<name>/``) is imported into a cache repository as a
root commit with a fixed author, committer, date (2000-01-01T00:00:00Z) and message,
with the user's git configuration shut out, and tagged with its ``VERSION``: the hash
depends only on files, name and version (:func:`builtin_commit_hash`). A **plain
directory**'s "commit" is its :func:`directory_tree_hash`; its files are snapshotted
into the cache. Both leave out ``.git``, ``__pycache__``, ``.DS_Store`` and ignore
``.gitignore`` (nothing outside the directory can change the result).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import lilypad
from lilypad.exceptions import (
    ModuleCacheError,
    ModuleFetchError,
    ModuleRefError,
    ModuleSourceError,
    UnknownRevisionError,
)
from lilypad.modules.reference import (
    TEMPLATE_FILE,
    ModuleRef,
    is_commit_prefix,
    is_full_commit,
    parse_module_ref,
    validate_revision,
)
from lilypad.modules.spec import ModuleSpec, render_spec
from lilypad.protocol.allowlist import Allowlist

__all__ = [
    "BUILTIN_AUTHOR_EMAIL", "BUILTIN_AUTHOR_NAME", "BUILTIN_DATE", "ModuleResolver", "ResolvedModule",
    "SourceKind", "builtin_commit_hash", "default_builtin_dir", "directory_tree_hash",
]

SourceKind = Literal["git", "builtin", "directory"]

BUILTIN_AUTHOR_NAME = "Lilypad built-in modules"
BUILTIN_AUTHOR_EMAIL = "builtin-modules@lilypad.invalid"
BUILTIN_DATE = "946684800 +0000"  # git's internal format for 2000-01-01T00:00:00Z

_EXCLUDED = frozenset({".git", "__pycache__", ".DS_Store"})
_HEAD_REF = "refs/lilypad/head"
# Variables pointing git at another repository, index or config (set inside git hooks).
_REPO_ENV = (
    "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE", "GIT_PREFIX", "GIT_SHALLOW_FILE",
    "GIT_GRAFT_FILE", "GIT_IMPLICIT_WORK_TREE", "GIT_CONFIG", "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT", "GIT_INTERNAL_SUPER_PREFIX", "GIT_REPLACE_REF_BASE", "GIT_NO_REPLACE_OBJECTS",
)
# No user or system configuration (signing, templates, object format, encoding)
# and a fixed identity and date: what makes built-in commits reproducible.
_ISOLATED_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull} | {
    f"GIT_{who}_{what}": value for who in ("AUTHOR", "COMMITTER")
    for what, value in (("NAME", BUILTIN_AUTHOR_NAME), ("EMAIL", BUILTIN_AUTHOR_EMAIL), ("DATE", BUILTIN_DATE))
}
_PERMANENT = re.compile(
    r"couldn't find remote ref|not our ref|unknown revision|invalid refspec|bad object"
    r"|does not appear to be a git repository|repository '.*' not found|repository not found"
    r"|authentication failed|could not read (username|password)|terminal prompts disabled"
    r"|permission denied \(publickey|dubious ownership|mismatched algorithms"
    r"|returned error: 4(?!08|29)[0-9][0-9]",  # HTTP 4xx but timeouts and rate limits
    re.IGNORECASE,
)


#: Where built-in modules come from instead of the repository's ``modules/`` (tests: a
#: directory with extra modules, e.g. a long-running one for the fault tests).
BUILTIN_DIR_ENV = "LILYPAD_BUILTIN_MODULES_DIR"


def default_builtin_dir() -> Path:
    """``modules/`` at the root of the repository lilypad runs from (or ``$LILYPAD_BUILTIN_MODULES_DIR``)."""
    from lilypad.settings import get_settings

    override = get_settings().builtin_modules_dir
    if override is not None:
        return override
    return Path(lilypad.__file__).resolve().parents[1] / "modules"


# --------------------------------------------------------------------------
# Content hashes (pure Python, identical to git's object hashes)
# --------------------------------------------------------------------------


def _object_hash(kind: bytes, data: bytes) -> bytes:
    return hashlib.sha1(b"%s %d\0" % (kind, len(data)) + data).digest()


def _file_blob_hash(path: str) -> bytes:
    with open(path, "rb") as fh:
        digest = hashlib.sha1(b"blob %d\0" % os.fstat(fh.fileno()).st_size)
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.digest()


def _tree_hash(directory: str) -> bytes | None:
    """git's tree object hash of ``directory`` (``None`` when it holds no files)."""
    entries: list[tuple[bytes, bytes, bytes, bytes]] = []
    with os.scandir(directory) as scan:
        for entry in scan:
            if entry.name in _EXCLUDED:
                continue
            name = os.fsencode(entry.name)
            if entry.is_symlink():
                entries.append((name, b"120000", name, _object_hash(b"blob", os.fsencode(os.readlink(entry.path)))))
            elif entry.is_dir():
                sub = _tree_hash(entry.path)
                if sub is not None:  # git does not record empty directories
                    entries.append((name + b"/", b"40000", name, sub))  # trees sort as "name/"
            elif entry.is_file():  # not sockets, FIFOs, devices
                mode = b"100755" if entry.stat().st_mode & stat.S_IXUSR else b"100644"
                entries.append((name, mode, name, _file_blob_hash(entry.path)))
    if not entries:
        return None
    entries.sort()
    body = b"".join(mode + b" " + name + b"\0" + digest for _, mode, name, digest in entries)
    return _object_hash(b"tree", body)


def directory_tree_hash(directory: Path | str) -> str:
    """The git tree hash of ``directory`` (40 hex digits): what ``git add -A && git
    write-tree`` gives in a repository holding exactly these files, except that
    ``.gitignore`` is not applied and ``.git``/``__pycache__``/``.DS_Store`` are
    left out. Modes follow git: ``100755`` when the owner may execute, symlinks
    as links, empty directories ignored."""
    digest = _tree_hash(os.fspath(directory))
    return (digest or _object_hash(b"tree", b"")).hex()


def _builtin_message(name: str, version: str) -> str:
    return f"lilypad built-in module {name} {version}\n"


def builtin_commit_hash(directory: Path | str, name: str, version: str) -> str:
    """The commit hash a built-in module's import gets, computed without git."""
    tree = directory_tree_hash(directory)
    ident = f"{BUILTIN_AUTHOR_NAME} <{BUILTIN_AUTHOR_EMAIL}> {BUILTIN_DATE}"
    body = f"tree {tree}\nauthor {ident}\ncommitter {ident}\n\n{_builtin_message(name, version)}"
    return _object_hash(b"commit", body.encode()).hex()


# --------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedModule:
    """A module reference resolved to one commit and a checkout of it.

    ``ref`` is what the user typed; ``repo`` the canonical repository URL, local
    path, or ``builtin:<name>``; ``commit`` the full 40-hex commit (for a plain
    directory, its tree hash); ``path`` a directory with the module's files at
    that commit (do not modify it: it is shared); ``kind`` the kind of source.
    """

    ref: str
    repo: str
    commit: str
    path: Path
    kind: SourceKind = "git"

    @property
    def canonical(self) -> str:
        """``repo@commit``, to record in deals."""
        return f"{self.repo}@{self.commit}"

    @property
    def template_path(self) -> Path:
        return self.path / TEMPLATE_FILE

    def template_text(self) -> str:
        """The module's ``lilypad_module.json.tmpl``."""
        return self.template_path.read_text(encoding="utf-8")

    def render(self, inputs: Mapping[str, str]) -> ModuleSpec:
        """Render the template with ``inputs`` (see :func:`lilypad.modules.spec.render_spec`)."""
        return render_spec(self.template_text(), inputs)


# --------------------------------------------------------------------------
# Running git
# --------------------------------------------------------------------------


class _GitFailed(Exception):
    def __init__(self, reason: str, *, timed_out: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = not timed_out and _PERMANENT.search(reason) is not None


def _git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _REPO_ENV}
    env.update(GIT_TERMINAL_PROMPT="0", GCM_INTERACTIVE="never", LC_ALL="C", LANGUAGE="C")
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    if extra:
        env.update(extra)
    return env


def _slug(text: str) -> str:
    tail = text.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    return re.sub(r"[^A-Za-z0-9._-]+", "-", tail).strip(".-")[:40] or "repo"


def _repo_key(source: str) -> str:
    return f"{_slug(source)}-{hashlib.sha256(source.encode()).hexdigest()[:16]}"


def _is_git_repo(path: Path) -> bool:
    """A work tree (``.git`` directory or file) or a bare repository."""
    return (path / ".git").exists() or all((path / n).exists() for n in ("HEAD", "objects", "refs"))


def _walk(directory: str, prefix: str = "") -> Iterator[tuple[str, str, bool]]:
    """``(relative path, full path, is_symlink)`` of every file under ``directory``
    that a tree hash counts, symlinks (to files or directories) included."""
    with os.scandir(directory) as scan:
        entries = sorted(scan, key=lambda e: e.name)
    for entry in entries:
        if entry.name in _EXCLUDED:
            continue
        rel = prefix + entry.name
        if entry.is_symlink():
            yield rel, entry.path, True
        elif entry.is_dir():
            yield from _walk(entry.path, rel + "/")
        elif entry.is_file():
            yield rel, entry.path, False


def _ignore_excluded(directory: str, names: list[str]) -> set[str]:
    """For ``shutil.copytree``: what a tree hash leaves out (and FIFOs, sockets, devices)."""
    kept = (os.path.islink, os.path.isdir, os.path.isfile)
    return {n for n in names if n in _EXCLUDED or not any(ok(os.path.join(directory, n)) for ok in kept)}


# --------------------------------------------------------------------------
# The resolver
# --------------------------------------------------------------------------


class ModuleResolver:
    """Resolve module references into ``cache_dir`` (see the module docstring).

    ``builtin_dir`` holds the built-in modules (default: :func:`default_builtin_dir`);
    ``allowlist`` is checked before anything else; ``retries``/``backoff`` govern
    fetch retries; ``git_timeout`` bounds each git command and ``lock_timeout``
    the wait for another process's lock (seconds). ``sleep`` is what waits
    between retries. Safe to share between threads and processes.
    """

    def __init__(
        self,
        cache_dir: Path | str,
        *,
        builtin_dir: Path | str | None = None,
        allowlist: Allowlist | None = None,
        retries: int = 3,
        backoff: float = 0.5,
        git_timeout: float = 300.0,
        lock_timeout: float = 1800.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if retries < 0 or backoff < 0:
            raise ValueError("retries and backoff must not be negative")
        self.cache_dir = Path(cache_dir).expanduser().absolute()
        self.builtin_dir = Path(builtin_dir) if builtin_dir is not None else default_builtin_dir()
        self.allowlist = allowlist
        self.retries, self.backoff, self._sleep = retries, backoff, sleep
        self.git_timeout, self.lock_timeout = git_timeout, lock_timeout

    def resolve(self, ref: str) -> ResolvedModule:
        """Resolve ``ref`` to a commit and a checkout. A local path is a git repository
        when it holds ``.git`` or is a bare repository (a repository's subdirectory is a
        plain directory). Raises ``ModuleNotAllowedError`` (before any I/O),
        ``ModuleRefError``, ``UnknownRevisionError``, ``ModuleSourceError``,
        ``ModuleFetchError`` or ``ModuleCacheError`` (all in :mod:`lilypad.exceptions`)."""
        module = self.allowlist.check(ref) if self.allowlist is not None else parse_module_ref(ref)
        if module.kind == "name":
            builtin = self.builtin_path(module.location)
            if builtin is not None:
                return self._resolve_builtin(module, builtin)
            return self._resolve_git(module, module.github_url)
        if module.kind == "url":
            return self._resolve_git(module, module.location)
        path = Path(module.location)
        if not path.is_dir():
            reason = "not a directory" if path.exists() else "no such directory"
            raise ModuleSourceError(module.text, str(path), reason)
        if _is_git_repo(path):
            return self._resolve_git(module, str(path))
        if module.ref is not None:
            raise ModuleSourceError(module.text, str(path), f"not a git repository, so it has no ref {module.ref!r}")
        return self._resolve_directory(module, path)

    def builtin_path(self, name: str) -> Path | None:
        """The built-in module directory ``name`` stands for, if there is one."""
        candidate = self.builtin_dir / name
        return candidate if (candidate / TEMPLATE_FILE).is_file() else None

    def _resolve_git(self, module: ModuleRef, url: str) -> ResolvedModule:
        key = _repo_key(url)
        if module.ref is not None and is_full_commit(module.ref):
            done = self.cache_dir / "checkouts" / key / module.ref.lower()
            if done.is_dir():  # complete checkouts are immutable: no lock, no fetch
                return self._result(module, url, module.ref.lower(), done, "git")
        with self._locked(key):
            mirror = self._ensure_mirror(key)
            commit = self._find_commit(module, mirror, url)
            path = self._checkout(mirror, key, commit)
        return self._result(module, url, commit, path, "git")

    def _resolve_builtin(self, module: ModuleRef, source: Path) -> ResolvedModule:
        name, label = module.location, f"builtin:{module.location}"
        try:
            version = (source / "VERSION").read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ModuleSourceError(module.text, str(source), f"cannot read VERSION: {exc}") from None
        try:
            validate_revision(version)
        except ModuleRefError:
            raise ModuleSourceError(module.text, str(source), f"VERSION {version!r} is not a valid tag") from None
        key = _repo_key("builtin:" + str(source.resolve()))
        with self._locked(key):
            mirror = self._ensure_mirror(key)
            head = self._import_builtin(mirror, source, name, version)
            commit = head if module.revision == "HEAD" else self._lookup(mirror, module.revision)
            if commit is None:
                raise UnknownRevisionError(module.text, label, module.revision, [version])
            path = self._checkout(mirror, key, commit)
        return self._result(module, label, commit, path, "builtin")

    def _resolve_directory(self, module: ModuleRef, source: Path) -> ResolvedModule:
        if not (source / TEMPLATE_FILE).is_file():
            raise ModuleSourceError(module.text, str(source), f"no {TEMPLATE_FILE} in this directory")
        key = _repo_key("dir:" + str(source))
        root = self.cache_dir / "checkouts" / key
        digest = directory_tree_hash(source)
        if (root / digest).is_dir():
            return self._result(module, str(source), digest, root / digest, "directory")
        with self._locked(key):
            root.mkdir(parents=True, exist_ok=True)
            self._sweep(root)
            work = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
            try:
                tree = work / "tree"
                shutil.copytree(source, tree, symlinks=True, ignore=_ignore_excluded)
                digest = directory_tree_hash(tree)  # what was copied is what counts
                final = self._install(tree, root / digest)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        return self._result(module, str(source), digest, final, "directory")

    def _result(self, module: ModuleRef, repo: str, commit: str, path: Path, kind: SourceKind) -> ResolvedModule:
        if not (path / TEMPLATE_FILE).is_file():
            raise ModuleSourceError(module.text, f"{repo}@{commit}", f"no {TEMPLATE_FILE} at the repository root")
        return ResolvedModule(ref=module.text, repo=repo, commit=commit, path=path, kind=kind)

    def _find_commit(self, module: ModuleRef, mirror: Path, url: str) -> str:
        """The commit ``module.ref`` names in ``url``, fetching into ``mirror`` as needed."""
        revision = module.revision
        if revision == "HEAD":
            self._fetch(mirror, url, with_head=True)
            commit = self._rev_parse(mirror, _HEAD_REF)
        else:
            commit = self._lookup(mirror, revision, branches=False)
            if commit is None:
                self._fetch(mirror, url)
                commit = self._lookup(mirror, revision)
            if commit is None and is_full_commit(revision) and self._fetch_commit(mirror, url, revision.lower()):
                commit = self._lookup(mirror, revision)
        if commit is None:
            raise UnknownRevisionError(module.text, url, revision, self._available(mirror))
        return commit

    def _lookup(self, mirror: Path, revision: str, *, branches: bool = True) -> str | None:
        """Tag, then branch, then commit hash (prefix); ``branches=False`` skips
        branches and hashes that are also branch names (they must be fetched)."""
        commit = self._rev_parse(mirror, f"refs/tags/{revision}^{{commit}}")
        if commit is not None:
            return commit
        branch = self._rev_parse(mirror, f"refs/heads/{revision}^{{commit}}")
        if branch is not None:
            return branch if branches else None
        if is_commit_prefix(revision):
            return self._rev_parse(mirror, f"{revision.lower()}^{{commit}}")
        return None

    def _rev_parse(self, mirror: Path, expr: str) -> str | None:
        try:
            out = self._git(["rev-parse", "--verify", "--quiet", expr], git_dir=mirror)
        except _GitFailed:
            return None
        commit = out.decode().strip()
        return commit if is_full_commit(commit) else None

    def _available(self, mirror: Path) -> list[str]:
        """Tags (newest version first), then branches."""
        refs = self._plumbing(["for-each-ref", "--sort=-v:refname", "--format=%(refname)", "refs/tags", "refs/heads"],
                              mirror).decode().split()
        tags = [ref.removeprefix("refs/tags/") for ref in refs if ref.startswith("refs/tags/")]
        return tags + sorted(ref.removeprefix("refs/heads/") for ref in refs if ref.startswith("refs/heads/"))

    def _fetch(self, mirror: Path, url: str, *, with_head: bool = False) -> None:
        refspecs = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"]
        if with_head:
            refspecs.append(f"+HEAD:{_HEAD_REF}")
        self._retrying(url, ["fetch", "--prune", "--quiet", "--no-write-fetch-head", "--", url, *refspecs], mirror)

    def _fetch_commit(self, mirror: Path, url: str, commit: str) -> bool:
        """Fetch a commit no branch or tag holds (servers may refuse); False if refused."""
        args = ["fetch", "--quiet", "--no-write-fetch-head", "--", url, f"+{commit}:refs/lilypad/commits/{commit}"]
        return self._retrying(url, args, mirror, refused_ok=True)

    def _retrying(self, label: str, args: list[str], mirror: Path, *, refused_ok: bool = False) -> bool:
        """Run a fetch, retrying transient failures; a permanent failure raises
        :class:`ModuleFetchError`, or returns False when ``refused_ok``."""
        attempt = 0
        while True:
            attempt += 1
            try:
                self._git(args, git_dir=mirror)
                return True
            except _GitFailed as exc:
                if exc.permanent and refused_ok:
                    return False
                if exc.permanent or attempt > self.retries:
                    raise ModuleFetchError(label, exc.reason, attempt) from None
            self._sleep(self.backoff * 2 ** (attempt - 1))

    def _git(self, args: Sequence[str], *, git_dir: Path | None = None, stdin: bytes | None = None,
             env: Mapping[str, str] | None = None) -> bytes:
        """Run ``git [--git-dir=...] args``; stdout, or :class:`_GitFailed`."""
        command = ["git", "-c", "core.autocrlf=false", *([f"--git-dir={git_dir}"] if git_dir else []), *args]
        try:
            proc = subprocess.run(command, input=stdin, capture_output=True, env=_git_env(env),
                                  timeout=self.git_timeout, check=False)
        except subprocess.TimeoutExpired:
            raise _GitFailed(f"git {args[0]} timed out after {self.git_timeout:g}s", timed_out=True) from None
        except FileNotFoundError:
            raise ModuleCacheError(str(self.cache_dir), "the git command is not installed") from None
        if proc.returncode != 0:
            lines = proc.stderr.decode(errors="replace").strip().splitlines()
            reason = " ".join(lines[-3:]) or f"git {args[0]} exited with status {proc.returncode}"
            raise _GitFailed(reason)
        return proc.stdout

    def _plumbing(self, args: Sequence[str], mirror: Path | None, *, stdin: bytes | None = None,
                  env: Mapping[str, str] | None = None) -> bytes:
        """:meth:`_git` for local commands whose failure means a broken cache."""
        try:
            return self._git(args, git_dir=mirror, stdin=stdin, env=env)
        except _GitFailed as exc:
            raise ModuleCacheError(str(mirror or self.cache_dir), f"git {args[0]} failed: {exc.reason}") from None

    def _import_builtin(self, mirror: Path, source: Path, name: str, version: str) -> str:
        """Commit ``source`` into ``mirror`` deterministically; tag it ``version``."""
        expected = builtin_commit_hash(source, name, version)
        tagged = self._rev_parse(mirror, f"refs/tags/{version}^{{commit}}")
        if tagged == expected and not self._other_tags(mirror, version):
            return expected  # already imported
        env = dict(_ISOLATED_ENV)
        files: list[tuple[str, str]] = []  # (relative path, full path) of regular files
        links: list[tuple[str, bytes]] = []  # (relative path, link target)
        for rel, full, is_link in _walk(str(source)):
            if "\n" in full:
                raise ModuleSourceError(name, str(source), f"file name {rel!r} contains a newline")
            if is_link:
                links.append((rel, os.fsencode(os.readlink(full))))
            else:
                files.append((rel, full))
        index: list[bytes] = []
        if files:
            out = self._plumbing(["hash-object", "-w", "--no-filters", "--stdin-paths"], mirror,
                                 stdin="".join(f"{full}\n" for _, full in files).encode(), env=env)
            for (rel, full), sha in zip(files, out.decode().split(), strict=False):
                mode = "100755" if os.stat(full).st_mode & stat.S_IXUSR else "100644"
                index.append(f"{mode} {sha}\t{rel}".encode() + b"\0")
        for rel, target in links:
            sha = self._plumbing(["hash-object", "-w", "--stdin"], mirror, stdin=target, env=env).decode().strip()
            index.append(f"120000 {sha}\t{rel}".encode() + b"\0")
        with tempfile.TemporaryDirectory(prefix=".index-", dir=mirror) as tmp:
            env["GIT_INDEX_FILE"] = os.path.join(tmp, "index")
            self._plumbing(["update-index", "-z", "--add", "--index-info"], mirror, stdin=b"".join(index), env=env)
            tree = self._plumbing(["write-tree"], mirror, env=env).decode().strip()
        commit = self._plumbing(["commit-tree", "--no-gpg-sign", "-m", _builtin_message(name, version).rstrip("\n"),
                                 tree], mirror, env=env).decode().strip()
        updates = [f"update refs/tags/{version} {commit}", f"update {_HEAD_REF} {commit}"]
        updates += [f"delete refs/tags/{tag}" for tag in self._other_tags(mirror, version)]
        self._plumbing(["update-ref", "--stdin"], mirror, stdin=("\n".join(updates) + "\n").encode(), env=env)
        return commit

    def _other_tags(self, mirror: Path, version: str) -> list[str]:
        out = self._plumbing(["for-each-ref", "--format=%(refname:lstrip=2)", "refs/tags"], mirror)
        return [tag for tag in out.decode().split() if tag != version]

    def _ensure_mirror(self, key: str) -> Path:
        mirror = self.cache_dir / "repos" / f"{key}.git"
        if (mirror / "HEAD").is_file():
            return mirror
        mirror.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(mirror, ignore_errors=True)  # a leftover without HEAD is not a repository
        for leftover in mirror.parent.glob(f".tmp-{key}-*"):  # lock held: nobody else builds it
            shutil.rmtree(leftover, ignore_errors=True)
        work = Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=mirror.parent))
        try:
            self._plumbing(["init", "--bare", "--quiet", "--template=", "--object-format=sha1", "--", str(work)],
                           None, env={"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull})
            os.rename(work, mirror)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return mirror

    def _checkout(self, mirror: Path, key: str, commit: str) -> Path:
        """The files of ``commit``, built once (called with the repository's lock held)."""
        root = self.cache_dir / "checkouts" / key
        final = root / commit
        if final.is_dir():
            return final
        root.mkdir(parents=True, exist_ok=True)
        self._sweep(root)
        work = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
        try:
            tree = work / "tree"
            tree.mkdir()
            env = {"GIT_INDEX_FILE": str(work / "index")}
            self._plumbing([f"--work-tree={tree}", "read-tree", commit], mirror, env=env)
            self._plumbing([f"--work-tree={tree}", "checkout-index", "--all", "--force"], mirror, env=env)
            return self._install(tree, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    @staticmethod
    def _install(tree: Path, final: Path) -> Path:
        """Move a finished ``tree`` to ``final`` atomically; if ``final`` exists, keep it."""
        try:
            os.rename(tree, final)
        except OSError:
            if not final.is_dir():
                raise
        return final

    @staticmethod
    def _sweep(root: Path) -> None:
        """Remove temporary directories left by an interrupted build (lock held)."""
        for leftover in root.glob(".tmp-*"):
            shutil.rmtree(leftover, ignore_errors=True)

    @staticmethod
    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    @contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        """An exclusive ``flock`` on ``locks/<key>.lock`` (per open file, so it
        also excludes other threads of this process)."""
        path = self.cache_dir / "locks" / f"{key}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline, delay = time.monotonic() + self.lock_timeout, 0.005
            while not self._try_lock(fd):
                if time.monotonic() >= deadline:
                    raise ModuleCacheError(str(path), "timed out waiting for the lock")
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
            yield
        finally:
            os.close(fd)
