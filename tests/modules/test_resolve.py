"""Resolving module references with real git, on repositories made in tmp_path.

Only faults are injected (a `git` wrapper first on PATH that fails some
fetches); every repository, fetch and checkout is real git.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import time
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from lilypad.exceptions import (
    ModuleFetchError,
    ModuleNotAllowedError,
    ModuleRefError,
    ModuleSourceError,
    UnknownRevisionError,
)
from lilypad.modules.resolve import (
    BUILTIN_AUTHOR_EMAIL,
    BUILTIN_AUTHOR_NAME,
    ModuleResolver,
    ResolvedModule,
    builtin_commit_hash,
    default_builtin_dir,
    directory_tree_hash,
)
from lilypad.protocol.allowlist import Allowlist

REPO_ROOT = Path(__file__).resolve().parents[2]
COWSAY_TEMPLATE = (
    '{"machine": {"gpu": 0, "cpu": 1000, "ram": 100}, "job": {"APIVersion": "V1beta1", "Spec": '
    '{"Deal": {"Concurrency": 1}, "Docker": {"Entrypoint": ["cowsay", {{.Message}}], '
    '"Image": "lilypad/cowsay:v0.0.1"}, "Engine": "Docker", "Network": {"Type": "None"}, '
    '"Outputs": [{"Name": "outputs", "Path": "/outputs"}], "PublisherSpec": {"Type": "ipfs"}, '
    '"Resources": {"GPU": ""}, "Timeout": 600, "Verifier": "Noop"}}}'
)
_REPO_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _REPO_ENV}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, GIT_AUTHOR_NAME="Test",
               GIT_AUTHOR_EMAIL="test@example.invalid", GIT_COMMITTER_NAME="Test",
               GIT_COMMITTER_EMAIL="test@example.invalid")
    return env


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, env=_env(), capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def commit_files(repo: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


class Repo:
    """A module repository: v0.0.1 (annotated) and v0.0.2 tags on main, a dev branch."""

    def __init__(self, path: Path) -> None:
        path.mkdir()
        git(path, "init", "-q", "-b", "main")
        self.path = path
        files = {"lilypad_module.json.tmpl": COWSAY_TEMPLATE, "Dockerfile": "FROM cowsay\n", "README.md": "one\n"}
        self.c1 = commit_files(path, files, "first")
        git(path, "tag", "-a", "v0.0.1", "-m", "release 0.0.1")
        self.c2 = commit_files(path, {"README.md": "two\n"}, "second")
        git(path, "tag", "v0.0.2")
        git(path, "checkout", "-q", "-b", "dev")
        self.c3 = commit_files(path, {"Dockerfile": "FROM cowsay:dev\n"}, "dev work")
        git(path, "checkout", "-q", "main")

    def ref(self, revision: str | None = None) -> str:
        return str(self.path) if revision is None else f"{self.path}:{revision}"


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path / "cowsay-repo")


@pytest.fixture
def resolver(tmp_path: Path) -> ModuleResolver:
    return ModuleResolver(tmp_path / "cache", builtin_dir=tmp_path / "no-builtins", backoff=0.0)


class FakeGit:
    """A `git` first on PATH that logs each subcommand (and its args) and fails
    the first `fail` fetches with `message` (optionally after sleeping)."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        real = shutil.which("git")
        assert real is not None
        bin_dir = tmp_path / "fake-bin"
        bin_dir.mkdir()
        self.log = tmp_path / "git.log"
        self.counter = tmp_path / "fetch-failures"
        self.config = tmp_path / "fault"
        self.set(0)
        script = bin_dir / "git"
        script.write_text(f"""#!/bin/bash
sub=""; skip=""
for a in "$@"; do
  if [ -n "$skip" ]; then skip=""; continue; fi
  case "$a" in -c) skip=1 ;; -*) ;; *) sub="$a"; break ;; esac
done
echo "$sub $*" >> "{self.log}"
if [ "$sub" = fetch ]; then
  . "{self.config}"
  n=$(cat "{self.counter}" 2>/dev/null || echo 0)
  if [ "$n" -lt "$FAIL" ]; then
    echo $((n + 1)) > "{self.counter}"
    [ -n "$HANG" ] && sleep "$HANG"
    echo "$MESSAGE" >&2
    exit 128
  fi
fi
exec "{real}" "$@"
""")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    def set(self, fail: int, message: str = "fatal: unable to access 'x': Could not resolve host: x", hang: str = "") -> None:
        self.config.write_text(f"FAIL={fail}\nMESSAGE={json.dumps(message)}\nHANG={hang}\n")
        self.counter.unlink(missing_ok=True)

    def calls(self, sub: str) -> list[str]:
        if not self.log.exists():
            return []
        return [line for line in self.log.read_text().splitlines() if line.split(" ", 1)[0] == sub]


@pytest.fixture
def fake_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeGit:
    return FakeGit(tmp_path, monkeypatch)


# --------------------------------------------------------------------------
# Git repositories
# --------------------------------------------------------------------------


def test_tags_resolve_to_their_commit(repo: Repo, resolver: ModuleResolver) -> None:
    annotated = resolver.resolve(repo.ref("v0.0.1"))
    assert annotated.commit == repo.c1  # the commit, not the annotated tag object
    assert (annotated.repo, annotated.kind, annotated.ref) == (str(repo.path), "git", repo.ref("v0.0.1"))
    assert annotated.canonical == f"{repo.path}@{repo.c1}"
    assert (annotated.path / "README.md").read_text() == "one\n"
    assert annotated.path == resolver.cache_dir / "checkouts" / annotated.path.parent.name / repo.c1
    assert not (annotated.path / ".git").exists()
    light = resolver.resolve(repo.ref("v0.0.2"))
    assert light.commit == repo.c2 and (light.path / "README.md").read_text() == "two\n"
    assert light.path.parent == annotated.path.parent  # one cache entry per repository


def test_module_helpers(repo: Repo, resolver: ModuleResolver) -> None:
    module = resolver.resolve(repo.ref("v0.0.1"))
    assert module.template_text() == COWSAY_TEMPLATE
    spec = module.render({"Message": "moo"})
    assert spec.docker.entrypoint == ("cowsay", "moo")
    assert spec.docker.image == "lilypad/cowsay:v0.0.1"
    with pytest.raises(FrozenInstanceError):
        module.commit = "0" * 40  # type: ignore[misc]
    assert isinstance(module, ResolvedModule)


def test_commits_full_abbreviated_and_upper_case(repo: Repo, resolver: ModuleResolver) -> None:
    assert resolver.resolve(repo.ref(repo.c1)).commit == repo.c1
    assert resolver.resolve(repo.ref(repo.c3[:7])).commit == repo.c3
    upper = resolver.resolve(repo.ref(repo.c2.upper()))
    assert upper.commit == repo.c2 and upper.path.name == repo.c2


def test_branch_follows_new_commits(repo: Repo, resolver: ModuleResolver) -> None:
    first = resolver.resolve(repo.ref("dev"))
    assert first.commit == repo.c3
    git(repo.path, "checkout", "-q", "dev")
    c4 = commit_files(repo.path, {"README.md": "moved\n"}, "dev moves")
    moved = resolver.resolve(repo.ref("dev"))
    assert moved.commit == c4 and moved.path != first.path
    assert (moved.path / "README.md").read_text() == "moved\n"
    assert (first.path / "README.md").read_text() == "two\n"  # old checkouts are kept as they were
    git(repo.path, "reset", "-q", "--hard", repo.c1)  # even a force-push is followed
    assert resolver.resolve(repo.ref("dev")).commit == repo.c1


def test_no_ref_means_head(repo: Repo, resolver: ModuleResolver, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolver.resolve(repo.ref()).commit == repo.c2
    assert resolver.resolve(repo.ref("HEAD")).commit == repo.c2
    git(repo.path, "checkout", "-q", "dev")
    assert resolver.resolve(repo.ref()).commit == repo.c3
    monkeypatch.chdir(repo.path.parent)
    relative = resolver.resolve(f"./{repo.path.name}:v0.0.1")
    assert (relative.commit, relative.repo) == (repo.c1, str(repo.path))


def test_bare_repository_path(repo: Repo, resolver: ModuleResolver, tmp_path: Path) -> None:
    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo.path), str(bare))
    assert resolver.resolve(f"{bare}:v0.0.2").commit == repo.c2


def test_commit_on_no_branch_or_tag_is_fetched_by_hash(repo: Repo, resolver: ModuleResolver) -> None:
    git(repo.path, "checkout", "-q", "-b", "pr")
    hidden = commit_files(repo.path, {"README.md": "pull request\n"}, "pr")
    git(repo.path, "update-ref", "refs/pull/1/head", hidden)
    git(repo.path, "checkout", "-q", "main")
    git(repo.path, "branch", "-q", "-D", "pr")
    module = resolver.resolve(repo.ref(hidden))
    assert module.commit == hidden and (module.path / "README.md").read_text() == "pull request\n"


def test_unknown_refs(repo: Repo, resolver: ModuleResolver) -> None:
    with pytest.raises(UnknownRevisionError) as info:
        resolver.resolve(repo.ref("v9.9.9"))
    err = info.value
    assert (err.ref, err.repo, err.revision) == (repo.ref("v9.9.9"), str(repo.path), "v9.9.9")
    assert err.available == ("v0.0.2", "v0.0.1", "dev", "main")
    assert "no tag, branch or commit 'v9.9.9'" in str(err) and "v0.0.2, v0.0.1, dev, main" in str(err)
    with pytest.raises(UnknownRevisionError):
        resolver.resolve(repo.ref("f" * 40))
    with pytest.raises(UnknownRevisionError):
        resolver.resolve(repo.ref("deadbeef"))


def test_commit_without_template_is_an_error(repo: Repo, resolver: ModuleResolver) -> None:
    git(repo.path, "rm", "-q", "lilypad_module.json.tmpl")
    git(repo.path, "commit", "-q", "-m", "oops")
    git(repo.path, "tag", "broken")
    with pytest.raises(ModuleSourceError, match="no lilypad_module.json.tmpl at the repository root"):
        resolver.resolve(repo.ref("broken"))


def test_path_errors(tmp_path: Path, resolver: ModuleResolver) -> None:
    with pytest.raises(ModuleSourceError, match="no such directory"):
        resolver.resolve(f"{tmp_path}/missing:v1")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModuleSourceError, match="not a directory"):
        resolver.resolve(str(tmp_path / "file"))
    with pytest.raises(ModuleRefError):
        resolver.resolve("cowsay:v1:v2")


# --------------------------------------------------------------------------
# Fetching: once, cached, retried
# --------------------------------------------------------------------------


def test_fetches_only_when_needed(repo: Repo, resolver: ModuleResolver, fake_git: FakeGit) -> None:
    resolver.resolve(repo.ref("v0.0.1"))
    assert len(fake_git.calls("fetch")) == 1
    for ref in ("v0.0.1", "v0.0.2", repo.c1, repo.c2[:10]):  # tags and commits in the mirror: no fetch
        resolver.resolve(repo.ref(ref))
    assert len(fake_git.calls("fetch")) == 1
    calls_before = len(fake_git.log.read_text().splitlines())
    resolver.resolve(repo.ref(repo.c1))  # a cached full commit does not even touch the mirror
    assert len(fake_git.log.read_text().splitlines()) == calls_before
    resolver.resolve(repo.ref("dev"))  # branches move: always fetched
    resolver.resolve(repo.ref("dev"))
    resolver.resolve(repo.ref())  # so does HEAD
    assert len(fake_git.calls("fetch")) == 4
    assert len(list((resolver.cache_dir / "repos").iterdir())) == 1  # one mirror


def test_transient_fetch_failures_are_retried_with_backoff(
    repo: Repo, tmp_path: Path, fake_git: FakeGit
) -> None:
    sleeps: list[float] = []
    resolver = ModuleResolver(tmp_path / "cache", builtin_dir=tmp_path, retries=3, backoff=0.25, sleep=sleeps.append)
    fake_git.set(fail=2)
    assert resolver.resolve(repo.ref("v0.0.1")).commit == repo.c1
    assert len(fake_git.calls("fetch")) == 3
    assert sleeps == [0.25, 0.5]


def test_retries_give_up(repo: Repo, tmp_path: Path, fake_git: FakeGit) -> None:
    sleeps: list[float] = []
    resolver = ModuleResolver(tmp_path / "cache", builtin_dir=tmp_path, retries=2, backoff=0.1, sleep=sleeps.append)
    fake_git.set(fail=100)
    with pytest.raises(ModuleFetchError) as info:
        resolver.resolve(repo.ref("v0.0.1"))
    assert info.value.attempts == 3 and info.value.repo == str(repo.path)
    assert "Could not resolve host" in info.value.reason and "after 3 attempts" in str(info.value)
    assert sleeps == [0.1, 0.2]
    fake_git.set(fail=0)  # the network is back: the same cache works
    assert resolver.resolve(repo.ref("v0.0.1")).commit == repo.c1


def test_permanent_fetch_errors_are_not_retried(repo: Repo, tmp_path: Path, fake_git: FakeGit) -> None:
    sleeps: list[float] = []
    resolver = ModuleResolver(tmp_path / "cache", builtin_dir=tmp_path, retries=5, sleep=sleeps.append)
    fake_git.set(fail=100, message="fatal: repository 'https://example.invalid/x/y/' not found")
    with pytest.raises(ModuleFetchError) as info:
        resolver.resolve(repo.ref("v0.0.1"))
    assert info.value.attempts == 1 and sleeps == []
    assert len(fake_git.calls("fetch")) == 1


def test_fetch_timeouts_are_transient(repo: Repo, tmp_path: Path, fake_git: FakeGit) -> None:
    resolver = ModuleResolver(tmp_path / "cache", builtin_dir=tmp_path, retries=1, backoff=0.0, git_timeout=0.3)
    fake_git.set(fail=1, hang="5")
    assert resolver.resolve(repo.ref("v0.0.2")).commit == repo.c2
    assert len(fake_git.calls("fetch")) == 2


def test_unknown_names_fall_back_to_lilypad_github(tmp_path: Path, fake_git: FakeGit) -> None:
    fake_git.set(fail=100, message="fatal: repository 'https://github.com/x/' not found")  # no network needed
    resolver = ModuleResolver(tmp_path / "cache", builtin_dir=tmp_path / "builtin", sleep=lambda _: None)
    with pytest.raises(ModuleFetchError) as info:
        resolver.resolve("lilypad-no-such-module:v1")
    url = "https://github.com/Lilypad-Tech/lilypad-module-lilypad-no-such-module"
    assert info.value.repo == url and info.value.attempts == 1
    assert url in fake_git.calls("fetch")[0]


# --------------------------------------------------------------------------
# Plain directories
# --------------------------------------------------------------------------


def _module_dir(path: Path) -> Path:
    (path / "sub").mkdir(parents=True)
    (path / "lilypad_module.json.tmpl").write_text(COWSAY_TEMPLATE)
    (path / "Dockerfile").write_text("FROM cowsay\n")
    (path / "run.sh").write_text("#!/bin/sh\n")
    (path / "run.sh").chmod(0o755)
    (path / "sub" / "data.txt").write_text("data\n")
    (path / "empty").mkdir()
    return path


def test_directory_hash_is_the_git_tree_hash(tmp_path: Path) -> None:
    module = _module_dir(tmp_path / "mod")
    os.symlink("sub/data.txt", module / "link")
    copy = tmp_path / "copy"
    shutil.copytree(module, copy, symlinks=True)
    git(copy, "init", "-q")
    git(copy, "add", "-A")
    assert directory_tree_hash(module) == git(copy, "write-tree")
    (module / "__pycache__").mkdir()
    (module / "__pycache__" / "x.pyc").write_bytes(b"junk")
    assert directory_tree_hash(module) == git(copy, "write-tree")
    assert directory_tree_hash(tmp_path / "mod" / "empty") == "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


def test_local_directory(tmp_path: Path, resolver: ModuleResolver) -> None:
    module = _module_dir(tmp_path / "mod")
    first = resolver.resolve(str(module))
    assert (first.kind, first.repo, first.commit) == ("directory", str(module), directory_tree_hash(module))
    assert first.path != module and first.template_text() == COWSAY_TEMPLATE
    assert os.access(first.path / "run.sh", os.X_OK)
    assert resolver.resolve(str(module)) == first  # stable
    other = ModuleResolver(tmp_path / "cache2", builtin_dir=tmp_path).resolve(str(module))
    assert other.commit == first.commit and other.path != first.path

    (module / "Dockerfile").write_text("FROM cowsay:2\n")
    changed = resolver.resolve(str(module))
    assert changed.commit != first.commit and (changed.path / "Dockerfile").read_text() == "FROM cowsay:2\n"
    assert (first.path / "Dockerfile").read_text() == "FROM cowsay\n"  # a snapshot, not the live directory
    (module / "Dockerfile").chmod(0o755)
    assert resolver.resolve(str(module)).commit not in (first.commit, changed.commit)


def test_local_directory_errors(tmp_path: Path, resolver: ModuleResolver) -> None:
    module = _module_dir(tmp_path / "mod")
    with pytest.raises(ModuleSourceError, match="not a git repository"):
        resolver.resolve(f"{module}:v1")
    (module / "lilypad_module.json.tmpl").unlink()
    with pytest.raises(ModuleSourceError, match="no lilypad_module.json.tmpl"):
        resolver.resolve(str(module))


# --------------------------------------------------------------------------
# Built-in modules
# --------------------------------------------------------------------------


def _builtin(root: Path, name: str = "cowsay", version: str = "v0.0.1") -> Path:
    path = root / name
    path.mkdir(parents=True)
    (path / "lilypad_module.json.tmpl").write_text(COWSAY_TEMPLATE)
    (path / "Dockerfile").write_text("FROM alpine\nRUN apk add cowsay\n")
    (path / "README.md").write_text(f"# {name}\n")
    (path / "VERSION").write_text(version + "\n")
    return path


def test_builtin_import_is_deterministic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = _builtin(tmp_path / "builtin")
    one = ModuleResolver(tmp_path / "cache1", builtin_dir=tmp_path / "builtin").resolve("cowsay:v0.0.1")
    # Another machine: the same files elsewhere, another cache, a hostile git configuration.
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Someone\n\temail = someone@example.invalid\n[commit]\n\tgpgsign = true\n"
        "[i18n]\n\tcommitEncoding = ISO-8859-1\n[init]\n\tdefaultObjectFormat = sha256\n"
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("GIT_CONFIG_GLOBAL", raising=False)
    # As if run from a git hook: variables pointing at another repository and `-c` options.
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "not-a-repo"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(tmp_path / "not-an-index"))
    monkeypatch.setenv("GIT_OBJECT_DIRECTORY", str(tmp_path / "elsewhere-objects"))
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'commit.gpgsign'='true'")
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(tmp_path / "builtin", elsewhere)
    two = ModuleResolver(tmp_path / "cache2", builtin_dir=elsewhere).resolve("cowsay:v0.0.1")
    assert not (tmp_path / "elsewhere-objects").exists() and not (tmp_path / "not-an-index").exists()
    assert one.commit == two.commit == builtin_commit_hash(source, "cowsay", "v0.0.1")
    assert (one.kind, one.repo, one.canonical) == ("builtin", "builtin:cowsay", f"builtin:cowsay@{one.commit}")
    assert one.path != two.path and one.template_text() == two.template_text() == COWSAY_TEMPLATE
    mirror = next((tmp_path / "cache1" / "repos").iterdir())
    raw = git(tmp_path, f"--git-dir={mirror}", "cat-file", "-p", one.commit)
    assert f"author {BUILTIN_AUTHOR_NAME} <{BUILTIN_AUTHOR_EMAIL}> 946684800 +0000" in raw
    assert raw.startswith(f"tree {directory_tree_hash(source)}\n") and "gpgsig" not in raw


def test_builtin_refs(tmp_path: Path) -> None:
    _builtin(tmp_path / "builtin")
    resolver = ModuleResolver(tmp_path / "cache", builtin_dir=tmp_path / "builtin")
    module = resolver.resolve("cowsay:v0.0.1")
    assert resolver.resolve("cowsay").commit == resolver.resolve("cowsay:HEAD").commit == module.commit
    assert resolver.resolve(f"cowsay:{module.commit}").path == module.path
    assert resolver.resolve(f"cowsay:{module.commit[:8]}").commit == module.commit
    assert module.render({"Message": "hello"}).docker.entrypoint == ("cowsay", "hello")
    with pytest.raises(UnknownRevisionError) as info:
        resolver.resolve("cowsay:v0.0.2")
    assert info.value.available == ("v0.0.1",) and info.value.repo == "builtin:cowsay"
    assert "available: v0.0.1" in str(info.value)


def test_builtin_changes(tmp_path: Path) -> None:
    source = _builtin(tmp_path / "builtin")
    resolver = ModuleResolver(tmp_path / "cache", builtin_dir=tmp_path / "builtin")
    first = resolver.resolve("cowsay:v0.0.1")
    (source / "README.md").write_text("# cowsay, edited\n")
    edited = resolver.resolve("cowsay:v0.0.1")  # the tag follows the directory
    assert edited.commit != first.commit and edited.commit == builtin_commit_hash(source, "cowsay", "v0.0.1")
    (source / "VERSION").write_text("v0.0.2\n")
    bumped = resolver.resolve("cowsay:v0.0.2")
    assert bumped.commit == builtin_commit_hash(source, "cowsay", "v0.0.2")
    with pytest.raises(UnknownRevisionError, match="available: v0.0.2"):
        resolver.resolve("cowsay:v0.0.1")
    assert resolver.resolve(f"cowsay:{first.commit}").commit == first.commit  # content-addressed


def test_builtin_errors_and_default_dir(tmp_path: Path) -> None:
    source = _builtin(tmp_path / "builtin")
    resolver = ModuleResolver(tmp_path / "cache", builtin_dir=tmp_path / "builtin")
    (source / "VERSION").write_text("not a tag!\n")
    with pytest.raises(ModuleSourceError, match="not a valid tag"):
        resolver.resolve("cowsay:v0.0.1")
    (source / "VERSION").unlink()
    with pytest.raises(ModuleSourceError, match="cannot read VERSION"):
        resolver.resolve("cowsay:v0.0.1")
    assert resolver.builtin_path("cowsay") == source and resolver.builtin_path("sdxl") is None
    assert default_builtin_dir() == REPO_ROOT / "modules"
    assert ModuleResolver(tmp_path / "c").builtin_dir == REPO_ROOT / "modules"


# --------------------------------------------------------------------------
# Concurrency and cache hygiene
# --------------------------------------------------------------------------

_CHILD = """
import json, os, sys, time
from lilypad.modules.resolve import ModuleResolver
resolver = ModuleResolver(sys.argv[1], builtin_dir=sys.argv[2])
open(sys.argv[4] + ".ready", "w").close()
while not os.path.exists(sys.argv[5]):
    time.sleep(0.001)
r = resolver.resolve(sys.argv[3])
print(json.dumps({"commit": r.commit, "path": str(r.path)}))
"""


def _race(cache: Path, builtin_dir: Path, ref: str, threads: int, processes: int) -> list[tuple[str, str]]:
    """Resolve ``ref`` from threads and processes released at the same moment."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    go = cache.parent / f"go-{cache.name}"
    marks = [cache.parent / f"child-{cache.name}-{i}" for i in range(processes)]
    children = [
        subprocess.Popen([sys.executable, "-c", _CHILD, str(cache), str(builtin_dir), ref, str(mark), str(go)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for mark in marks
    ]
    deadline = time.monotonic() + 30
    while not all(Path(f"{mark}.ready").exists() for mark in marks) and time.monotonic() < deadline:
        time.sleep(0.005)
    barrier = threading.Barrier(threads + 1)
    results: list[tuple[str, str]] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            module = ModuleResolver(cache, builtin_dir=builtin_dir).resolve(ref)
            results.append((module.commit, str(module.path)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    go.touch()
    barrier.wait()
    for worker in workers:
        worker.join(timeout=60)
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        data = json.loads(out)
        results.append((data["commit"], data["path"]))
    assert errors == []
    return results


def test_concurrent_resolution_of_a_git_ref(repo: Repo, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    results = _race(cache, tmp_path / "none", repo.ref("v0.0.1"), threads=8, processes=2)
    assert len(results) == 10 and len(set(results)) == 1 and results[0][0] == repo.c1
    path = Path(results[0][1])
    assert path.name == repo.c1 and (path / "lilypad_module.json.tmpl").read_text() == COWSAY_TEMPLATE
    assert [p.name for p in path.parent.iterdir()] == [repo.c1]  # no temporary leftovers
    (mirror,) = (cache / "repos").iterdir()
    git(tmp_path, f"--git-dir={mirror}", "fsck", "--no-progress")


def test_concurrent_resolution_of_a_builtin(tmp_path: Path) -> None:
    _builtin(tmp_path / "builtin")
    results = _race(tmp_path / "cache", tmp_path / "builtin", "cowsay:v0.0.1", threads=6, processes=1)
    assert len(results) == 7 and len(set(results)) == 1
    assert results[0][0] == builtin_commit_hash(tmp_path / "builtin" / "cowsay", "cowsay", "v0.0.1")


def test_interrupted_builds_are_swept(repo: Repo, resolver: ModuleResolver) -> None:
    first = resolver.resolve(repo.ref("v0.0.1"))
    stale = first.path.parent / ".tmp-crashed"
    (stale / "tree").mkdir(parents=True)
    resolver.resolve(repo.ref("v0.0.2"))
    assert not stale.exists()
    assert sorted(p.name for p in first.path.parent.iterdir()) == sorted([repo.c1, repo.c2])


def test_allowlist_is_checked_first(repo: Repo, tmp_path: Path, fake_git: FakeGit) -> None:
    resolver = ModuleResolver(tmp_path / "cache", builtin_dir=tmp_path, allowlist=Allowlist.parse(repo.ref("v0.0.2")))
    with pytest.raises(ModuleNotAllowedError):
        resolver.resolve(repo.ref("v0.0.1"))
    assert fake_git.calls("fetch") == [] and not (tmp_path / "cache").exists()
    assert resolver.resolve(repo.ref("v0.0.2")).commit == repo.c2
