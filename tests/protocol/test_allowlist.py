"""The module allowlist (OFFER_MODULES): one rule for the matcher, the provider and
ModuleResolver.resolve."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lilypad.exceptions import ModuleNotAllowedError, ModuleRefError, ModuleResolutionError, ModuleSourceError
from lilypad.modules.reference import parse_module_ref
from lilypad.modules.resolve import ModuleResolver
from lilypad.protocol.allowlist import Allowlist, AllowlistEntry, compile_allowlist, module_allowed
from lilypad.protocol.offers import JobModule

SHA = "0123456789abcdef0123456789abcdef01234567"


def test_parse_entries_and_whitespace() -> None:
    allow = Allowlist.parse(" cowsay:v0.0.1 , github.com/foo/bar:v1,,")
    assert allow.allowed == ("cowsay:v0.0.1", "github.com/foo/bar:v1")
    assert [entry.module.kind for entry in allow] == ["name", "url"]
    assert str(allow) == "cowsay:v0.0.1,github.com/foo/bar:v1"
    assert not allow.allows_all
    assert Allowlist.parse(["cowsay:v0.0.1", "sdxl:v1,lora:v2"]).allowed == ("cowsay:v0.0.1", "sdxl:v1", "lora:v2")


@pytest.mark.parametrize("spec", [None, "", "  ", " , ,", []])
def test_empty_allows_everything(spec: object) -> None:
    allow = Allowlist.parse(spec)  # type: ignore[arg-type]
    assert allow.allows_all
    assert allow.allowed == ()
    for ref in ("cowsay:v0.0.1", "github.com/any/thing", "/srv/mod:main"):
        assert allow.allows(ref)
        assert allow.check(ref) == parse_module_ref(ref)


def test_malformed_entry_is_rejected_at_parse_time() -> None:
    with pytest.raises(ModuleRefError, match="too many ':'"):
        Allowlist.parse("cowsay:v0.0.1,sdxl:v1:v2")
    with pytest.raises(ModuleRefError, match="spaces"):
        AllowlistEntry.parse("cow say")


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OFFER_MODULES", raising=False)
    monkeypatch.delenv("LILYPAD_OFFER_MODULES", raising=False)
    assert Allowlist.from_env().allows_all
    monkeypatch.setenv("OFFER_MODULES", "cowsay:v0.0.1,github.com/foo/bar:v1")
    assert Allowlist.from_env().allowed == ("cowsay:v0.0.1", "github.com/foo/bar:v1")
    monkeypatch.setenv("OFFER_MODULES", "")
    assert Allowlist.from_env().allows_all
    assert Allowlist.from_env({"LILYPAD_OFFER_MODULES": "sdxl:v1"}).allowed == ("sdxl:v1",)
    both = {"OFFER_MODULES": "cowsay", "LILYPAD_OFFER_MODULES": "sdxl:v1"}
    assert Allowlist.from_env(both).allowed == ("cowsay",)


def test_entry_with_ref_allows_exactly_that_ref() -> None:
    allow = Allowlist.parse("cowsay:v0.0.1")
    assert allow.allows("cowsay:v0.0.1")
    assert not allow.allows("cowsay:v0.0.2")
    assert not allow.allows("cowsay:V0.0.1")  # refs are case-sensitive text
    assert not allow.allows("cowsay")  # the default branch is not a pinned ref
    assert not allow.allows("sdxl:v0.0.1")


def test_entry_without_ref_allows_every_ref() -> None:
    allow = Allowlist.parse("github.com/foo/bar")
    for ref in ("github.com/foo/bar:v1", "github.com/foo/bar:main", f"github.com/foo/bar:{SHA}", "github.com/foo/bar"):
        assert allow.allows(ref), ref
    assert not allow.allows("github.com/foo/baz:v1")
    assert not allow.allows("gitlab.com/foo/bar:v1")


def test_names_match_their_lilypad_github_form_both_ways() -> None:
    by_name = Allowlist.parse("cowsay:v0.0.1")
    assert by_name.allows("github.com/Lilypad-Tech/lilypad-module-cowsay:v0.0.1")
    assert by_name.allows("https://github.com/lilypad-tech/lilypad-module-cowsay.git:v0.0.1")
    assert not by_name.allows("github.com/someone-else/lilypad-module-cowsay:v0.0.1")
    by_url = Allowlist.parse("github.com/Lilypad-Tech/lilypad-module-cowsay:v0.0.1")
    assert by_url.allows("cowsay:v0.0.1")
    assert not by_url.allows("cowsay:v0.0.2")


def test_url_canonicalisation() -> None:
    allow = Allowlist.parse("GitHub.com/Foo/Bar.git:v1,git.example.org/Team/Mod:v2")
    assert allow.allows("https://github.com/foo/bar:v1")
    assert allow.allows("github.com/FOO/BAR/:v1")
    assert allow.allows("https://GIT.EXAMPLE.ORG/Team/Mod.git:v2")
    assert not allow.allows("git.example.org/team/mod:v2")  # outside GitHub, paths are case-sensitive


def test_commit_hashes_compare_case_insensitively() -> None:
    allow = Allowlist.parse(f"cowsay:{SHA.upper()}")
    assert allow.allows(f"cowsay:{SHA}")
    assert not allow.allows(f"cowsay:{SHA[:12]}")  # abbreviations are different text


def test_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    allow = Allowlist.parse("./mod:v1,/srv/other")
    assert allow.allows(f"{tmp_path}/mod:v1")
    assert allow.allows("./sub/../mod:v1")
    assert not allow.allows("./mod:v2")
    assert allow.allows("/srv/other:anything") and allow.allows("/srv/other")
    assert not allow.allows("mod:v1")  # a path never matches a name


def test_check_raises_with_attributes() -> None:
    allow = Allowlist.parse("cowsay:v0.0.1,sdxl")
    assert allow.check("sdxl:v3").location == "sdxl"
    with pytest.raises(ModuleNotAllowedError) as info:
        allow.check("lora:v1")
    err = info.value
    assert err.ref == "lora:v1"
    assert err.allowed == ("cowsay:v0.0.1", "sdxl")
    assert isinstance(err, ModuleResolutionError)
    assert "'lora:v1' is not allowed" in str(err) and "cowsay:v0.0.1, sdxl" in str(err)
    with pytest.raises(ModuleRefError):
        allow.check("lora:v1:v2")


@pytest.mark.parametrize(
    ("entries", "ref", "ok"),
    [
        ((), "anything:v1", True),
        (("cowsay:v0.0.1",), "cowsay:v0.0.1", True),
        (("cowsay:v0.0.1",), "cowsay:v0.0.2", False),
        (("cowsay:v0.0.1",), "cowsay", False),  # the default branch is not that tag
        (("cowsay",), "cowsay:v9", True),
        (("cowsay",), "cowsay", True),
        (("cowsay",), "lilysay:v1", False),
        (("cowsay",), "github.com/Lilypad-Tech/lilypad-module-cowsay:v1", True),
        (("https://github.com/lilypad-tech/lilypad-module-cowsay.git:v1",), "cowsay:v1", True),
        (("github.com/foo/bar:ABCDEF12",), "github.com/foo/bar:abcdef12", True),
        (("github.com/foo/bar:Main",), "github.com/foo/bar:main", False),
        (("sdxl:v1", "cowsay:v0.0.1"), "sdxl:v1", True),
    ],
)
def test_module_allowed(entries: tuple[str, ...], ref: str, ok: bool) -> None:
    assert module_allowed(entries, ref) is ok
    assert module_allowed(compile_allowlist(entries), JobModule(ref=ref, repo="r", commit=SHA)) is ok


def test_the_matcher_and_the_provider_apply_the_same_rule() -> None:
    entries = ("cowsay:v0.0.1", "github.com/Foo/Bar", f"github.com/x/y:{SHA.upper()}", "sdxl:Main")
    refs = ("cowsay:v0.0.1", "cowsay:V0.0.1", "cowsay", "github.com/Lilypad-Tech/lilypad-module-cowsay:v0.0.1",
            "github.com/foo/bar:anything", "https://github.com/FOO/BAR.git", f"github.com/x/y:{SHA}",
            f"github.com/x/y:{SHA[:12]}", "sdxl:Main", "sdxl:main", "lora:v1")
    parsed = Allowlist.parse(",".join(entries))
    compiled = compile_allowlist(entries)
    for ref in refs:
        expected = parsed.allows(ref)  # the provider's resolver: Allowlist.check
        assert module_allowed(entries, ref) is expected, ref  # the matcher, entries of a resource offer
        assert module_allowed(compiled, JobModule(ref=ref, repo="r", commit=SHA)) is expected, ref
        assert module_allowed(parsed, parse_module_ref(ref)) is expected, ref
        assert any(entry.allows(parse_module_ref(ref)) for entry in parsed) is expected, ref
    assert compile_allowlist(reversed(entries)) is compiled  # one compiled allowlist per set of entries
    assert compiled.allowed == tuple(sorted(entries))


def _spy_git(tmp_path: Path) -> Path:
    """A `git` first on PATH that records every call and fails."""
    bin_dir = tmp_path / "spy-bin"
    bin_dir.mkdir()
    log = tmp_path / "git-calls.log"
    script = bin_dir / "git"
    script.write_text(f'#!/bin/sh\necho "$@" >> "{log}"\necho "fatal: spy" >&2\nexit 128\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return log


def test_resolver_checks_the_allowlist_before_any_io(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = _spy_git(tmp_path)
    monkeypatch.setenv("PATH", f"{tmp_path / 'spy-bin'}{os.pathsep}{os.environ['PATH']}")
    cache = tmp_path / "cache"
    builtins = tmp_path / "builtin"
    resolver = ModuleResolver(cache, builtin_dir=builtins, allowlist=Allowlist.parse("cowsay:v0.0.1"))
    missing = tmp_path / "no-such-repo"
    for ref in (f"{missing}:v1", "github.com/evil/module:v1", "cowsay:v0.0.2", "lora"):
        with pytest.raises(ModuleNotAllowedError) as info:
            resolver.resolve(ref)
        assert info.value.ref == ref
    assert not log.exists(), "git ran for a module the allowlist refuses"
    assert not cache.exists(), "the cache was touched for a module the allowlist refuses"

    # The same missing path, once allowed, gets past the allowlist (and fails on the path).
    allowed = ModuleResolver(cache, builtin_dir=builtins, allowlist=Allowlist.parse(str(missing)))
    with pytest.raises(ModuleSourceError, match="no such directory"):
        allowed.resolve(f"{missing}:v1")
    assert not log.exists()
