"""Parsing module references (pure: no file system or git involved)."""

from __future__ import annotations

import os

import pytest

from lilypad.exceptions import ModuleError, ModuleRefError, ModuleResolutionError
from lilypad.modules.reference import (
    ModuleRef,
    canonical_repo_url,
    is_commit_prefix,
    is_full_commit,
    lilypad_module_url,
    parse_module_ref,
    repo_identity,
    validate_revision,
)

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    ("text", "location", "ref"),
    [
        ("cowsay:v0.0.1", "cowsay", "v0.0.1"),
        ("cowsay", "cowsay", None),
        ("sdxl-pipeline:main", "sdxl-pipeline", "main"),
        ("my_mod.v2:1.0+build", "my_mod.v2", "1.0+build"),
        (f"cowsay:{SHA}", "cowsay", SHA),
    ],
)
def test_names(text: str, location: str, ref: str | None) -> None:
    module = parse_module_ref(text)
    assert module == ModuleRef(text=text, kind="name", location=location, ref=ref)
    assert module.github_url == f"https://github.com/Lilypad-Tech/lilypad-module-{location}"
    assert module.revision == (ref or "HEAD")
    assert ModuleRef.parse(text) == module


@pytest.mark.parametrize(
    ("text", "location", "ref"),
    [
        ("github.com/foo/bar:v1", "https://github.com/foo/bar", "v1"),
        ("GitHub.com/Foo/Bar:v1", "https://github.com/Foo/Bar", "v1"),
        ("https://github.com/foo/bar:v1", "https://github.com/foo/bar", "v1"),
        ("https://github.com/foo/bar", "https://github.com/foo/bar", None),
        ("github.com/foo/bar", "https://github.com/foo/bar", None),
        ("gitlab.example.org/group/sub/repo.git:main", "https://gitlab.example.org/group/sub/repo.git", "main"),
        ("https://git.example.org:8443/o/r:v2", "https://git.example.org:8443/o/r", "v2"),
        ("git.example.org:8443/o/r:v2", "https://git.example.org:8443/o/r", "v2"),
        ("HTTPS://github.com/foo/bar/:abc1234", "https://github.com/foo/bar", "abc1234"),
    ],
)
def test_urls(text: str, location: str, ref: str | None) -> None:
    module = parse_module_ref(text)
    assert (module.kind, module.location, module.ref) == ("url", location, ref)
    assert module.github_url == location


@pytest.mark.parametrize(
    ("text", "path", "ref"),
    [
        ("/srv/mymodule:v1.2.0", "/srv/mymodule", "v1.2.0"),
        ("/srv/mymodule", "/srv/mymodule", None),
        ("/srv/my:module/dir", "/srv/my:module/dir", None),  # the last ':' is followed by a '/'
        ("/srv/mod/../mod2/:main", "/srv/mod2", "main"),
    ],
)
def test_absolute_paths(text: str, path: str, ref: str | None) -> None:
    module = parse_module_ref(text)
    assert (module.kind, module.location, module.ref) == ("path", path, ref)
    assert module.identity == path


def test_relative_and_home_paths(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert parse_module_ref("./mod:main") == ModuleRef("./mod:main", "path", str(tmp_path / "mod"), "main")
    assert parse_module_ref("../x").location == str(tmp_path.parent / "x")
    assert parse_module_ref(".").location == str(tmp_path)
    assert parse_module_ref(".:main") == ModuleRef(".:main", "path", str(tmp_path), "main")
    assert parse_module_ref("..:v1").location == str(tmp_path.parent)
    assert parse_module_ref("~/mods/cowsay:v1").location == str(tmp_path / "home" / "mods" / "cowsay")
    with pytest.raises(ModuleRefError, match="cannot expand"):
        parse_module_ref("~no-such-user-xyz/mod")
    with pytest.raises(ValueError):
        _ = parse_module_ref("./mod").github_url


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("cow say:v1", "spaces"),
        ("cowsay:v1 ", "spaces"),
        ("cowsay:\tv1", "spaces"),
        ("cowsay:v1\n", "spaces"),
        ("cowsay:", "ref after ':' is empty"),
        (":v1", "name before ':' is empty"),
        ("cowsay:v1:v2", "too many ':'"),
        ("cow:say:v1", "too many ':'"),
        ("github.com/foo/bar:v1:v2", "too many ':'"),
        ("https://github.com/foo/bar:v1:v2", "too many ':'"),
        ("git@github.com:foo/bar", "ssh/scp-style"),
        ("http://github.com/foo/bar:v1", "unsupported URL scheme"),
        ("ssh://github.com/foo/bar:v1", "unsupported URL scheme"),
        ("github.com/foo:v1", "host/owner/repo"),
        ("github.com//bar:v1", "host/owner/repo"),
        ("github.com/foo/..:v1", "path segment"),
        ("github.com/f%20o/bar:v1", "path segment"),
        ("-github.com/foo/bar:v1", "host name"),
        ("cowsay:-v1", "must not start"),
        ("cowsay:.v1", "must not start"),
        ("cowsay:v1..2", "not a valid git ref name"),
        ("cowsay:v1.lock", "not a valid git ref name"),
        ("cowsay:v1.", "not a valid git ref name"),
        ("cowsay:v1^{commit}", "may only contain"),
        ("cowsay:HEAD~1", "may only contain"),
        ("-cowsay:v1", "module name"),
        ("cow$ay:v1", "module name"),
        ("x" * 2000, "longer than"),
    ],
)
def test_malformed(text: str, reason: str) -> None:
    with pytest.raises(ModuleRefError, match=reason) as info:
        parse_module_ref(text)
    assert info.value.ref == text
    assert isinstance(info.value, ModuleResolutionError)
    assert isinstance(info.value, ModuleError)
    assert "invalid module reference" in str(info.value)


def test_non_string_is_an_error() -> None:
    with pytest.raises(ModuleRefError, match="must be a string"):
        parse_module_ref(b"cowsay:v1")  # type: ignore[arg-type]


def test_identity_ignores_spelling_and_ref() -> None:
    named = parse_module_ref("cowsay:v0.0.1")
    spelled = [
        "github.com/Lilypad-Tech/lilypad-module-cowsay:v9",
        "https://github.com/lilypad-tech/lilypad-module-cowsay",
        "GITHUB.COM/Lilypad-Tech/lilypad-module-cowsay.git/:main",
    ]
    for text in spelled:
        assert parse_module_ref(text).identity == named.identity, text
    assert parse_module_ref("github.com/Lilypad-Tech/lilypad-module-sdxl").identity != named.identity
    # Outside github.com the path stays case-sensitive.
    assert repo_identity("git.example.org/A/b") != repo_identity("git.example.org/a/b")
    assert repo_identity("Git.Example.org/A/b.git") == repo_identity("https://git.example.org/A/b/")


def test_helpers() -> None:
    assert lilypad_module_url("cowsay") == "https://github.com/Lilypad-Tech/lilypad-module-cowsay"
    assert canonical_repo_url("GitHub.com/Foo/Bar/") == "https://github.com/Foo/Bar"
    assert is_full_commit(SHA) and is_full_commit(SHA.upper())
    assert not is_full_commit(SHA[:39]) and not is_full_commit("g" * 40)
    assert is_commit_prefix("abcd") and is_commit_prefix(SHA)
    assert not is_commit_prefix("abc") and not is_commit_prefix("v1.0")
    assert validate_revision("v0.0.1") == "v0.0.1"
    with pytest.raises(ModuleRefError):
        validate_revision("")
    assert str(parse_module_ref("github.com/foo/bar:v1")) == "https://github.com/foo/bar:v1"
    assert str(parse_module_ref("cowsay")) == "cowsay"
    assert os.path.isabs(parse_module_ref("./x").location)
