"""Module references: the text users type to name a module, parsed (no I/O).

Forms, tried in this order:

* **a local path** - starts with ``/``, ``./``, ``../`` or ``~`` (or is ``.``
  or ``..``): ``/srv/mymodule``, ``./mod:main``, ``~/mod:v1.2.0``. The path
  is made absolute (against the current directory) and ``~`` is expanded. The
  resolver decides whether it is a git repository (the ref is then a tag,
  branch or commit of it; none means ``HEAD``) or a plain directory holding a
  ``lilypad_module.json.tmpl`` (no ref allowed).
* **a git URL** - ``host/owner/repo:ref`` (``https://`` implied) or
  ``https://host/owner/repo:ref``; at least ``owner/repo`` after the host.
* **a name** - ``name:ref`` with no ``/`` in ``name``: a built-in module
  (``modules/<name>/`` in this repository) if there is one, otherwise Lilypad's
  convention ``github.com/Lilypad-Tech/lilypad-module-<name>``.

The ref is split off at the **last** colon, and only when what follows has no
``/`` (so ``https://`` and a path such as ``/srv/a:b/c`` keep their colons);
branch names containing ``/`` therefore cannot be named. A ref is a tag, a
branch or an (abbreviated or full) commit hash; a missing ref means the
default branch (``HEAD``). Malformed references raise
:class:`~lilypad.exceptions.ModuleRefError`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Literal

from lilypad.exceptions import ModuleRefError

__all__ = [
    "LILYPAD_GITHUB_ORG",
    "MODULE_REPO_PREFIX",
    "TEMPLATE_FILE",
    "ModuleRef",
    "RefKind",
    "canonical_repo_url",
    "is_commit_prefix",
    "is_full_commit",
    "lilypad_module_url",
    "parse_module_ref",
    "repo_identity",
    "validate_revision",
]

#: The template every module keeps at its repository root.
TEMPLATE_FILE = "lilypad_module.json.tmpl"
#: Where bare module names live on GitHub (Lilypad's convention).
LILYPAD_GITHUB_ORG = "github.com/Lilypad-Tech"
MODULE_REPO_PREFIX = "lilypad-module-"

RefKind = Literal["name", "url", "path"]

_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_REVISION_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+-]*")
_HOST_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?")
_SEGMENT_RE = re.compile(r"[A-Za-z0-9._~-]+")
_HEX_RE = re.compile(r"[0-9a-fA-F]+")
_MAX_REF_CHARS = 1024


def is_full_commit(text: str) -> bool:
    """Whether ``text`` is a full (40 hex digit) SHA-1 commit hash."""
    return len(text) == 40 and _HEX_RE.fullmatch(text) is not None


def is_commit_prefix(text: str) -> bool:
    """Whether ``text`` could be an abbreviated or full commit hash (4 to 40 hex digits)."""
    return 4 <= len(text) <= 40 and _HEX_RE.fullmatch(text) is not None


def validate_revision(revision: str, ref_text: str | None = None) -> str:
    """Check a tag/branch/commit name; return it. Raises :class:`ModuleRefError`.

    Allowed: letters, digits and ``._+-``, not starting with ``.``, ``+`` or
    ``-`` (so it can never be read as a git option), without ``..`` and not
    ending with ``.`` or ``.lock`` (git refuses those ref names).
    """
    where = revision if ref_text is None else ref_text
    if not revision:
        raise ModuleRefError(where, "the ref after ':' is empty")
    if _REVISION_RE.fullmatch(revision) is None:
        raise ModuleRefError(
            where,
            f"ref {revision!r} may only contain letters, digits and '._+-' (and must not start with '.', '+' or '-')",
        )
    if ".." in revision or revision.endswith((".", ".lock")):
        raise ModuleRefError(where, f"ref {revision!r} is not a valid git ref name")
    return revision


def lilypad_module_url(name: str) -> str:
    """The GitHub repository Lilypad's convention gives a bare module name."""
    return f"https://{LILYPAD_GITHUB_ORG}/{MODULE_REPO_PREFIX}{name}"


def _check_url_body(body: str, ref_text: str) -> tuple[str, tuple[str, ...]]:
    """Split ``host[:port]/seg/seg...`` into host and path segments, checked."""
    host, _, path = body.partition("/")
    if _HOST_RE.fullmatch(host) is None:
        raise ModuleRefError(ref_text, f"{host!r} is not a valid host name")
    segments = tuple(s for s in path.rstrip("/").split("/"))
    if len(segments) < 2 or any(not s for s in segments):
        raise ModuleRefError(ref_text, "a repository must be given as host/owner/repo")
    for segment in segments:
        if _SEGMENT_RE.fullmatch(segment) is None or segment in (".", ".."):
            raise ModuleRefError(ref_text, f"{segment!r} is not a valid repository path segment")
    return host.lower(), segments


def canonical_repo_url(url: str, ref_text: str | None = None) -> str:
    """``https://host/owner/repo`` with the host lower-cased and trailing ``/``
    removed (``https://`` added when missing). Raises :class:`ModuleRefError`
    (about ``ref_text`` when given)."""
    body = url[len("https://"):] if url.lower().startswith("https://") else url
    host, segments = _check_url_body(body, url if ref_text is None else ref_text)
    return f"https://{host}/" + "/".join(segments)


def repo_identity(url: str) -> str:
    """The key two repository URLs are compared by: :func:`canonical_repo_url`
    minus a trailing ``.git``, and, for ``github.com`` (case-insensitive), all
    lower case."""
    canonical = canonical_repo_url(url)
    canonical = canonical.removesuffix(".git")
    if canonical.startswith("https://github.com/"):
        canonical = canonical.lower()
    return canonical


@dataclass(frozen=True)
class ModuleRef:
    """A parsed module reference.

    ``text`` is what the user typed; ``kind`` is ``"name"`` (``location`` is the
    bare name), ``"url"`` (``location`` is the canonical ``https://`` URL) or
    ``"path"`` (``location`` is an absolute, normalised path); ``ref`` is the
    tag, branch or commit, or ``None`` for the default branch / ``HEAD``.
    """

    text: str
    kind: RefKind
    location: str
    ref: str | None = None

    @classmethod
    def parse(cls, text: str) -> ModuleRef:
        """Same as :func:`parse_module_ref`."""
        return parse_module_ref(text)

    @property
    def github_url(self) -> str:
        """For a name, the Lilypad-Tech GitHub repository it stands for when it
        is not a built-in; for a URL, the URL itself."""
        if self.kind == "name":
            return lilypad_module_url(self.location)
        if self.kind == "url":
            return self.location
        raise ValueError("a local path has no GitHub URL")

    @property
    def identity(self) -> str:
        """What identifies the module regardless of ref and spelling: a name and
        its Lilypad-Tech GitHub form share one (see :func:`repo_identity`); a
        path is itself."""
        if self.kind == "path":
            return self.location
        return repo_identity(self.github_url)

    @property
    def revision(self) -> str:
        """The ref to resolve: :attr:`ref`, or ``"HEAD"`` (the default branch) when
        none was given; ``name:HEAD`` means the same as ``name``."""
        return self.ref if self.ref is not None else "HEAD"

    def __str__(self) -> str:
        return self.location if self.ref is None else f"{self.location}:{self.ref}"


def _split_ref(text: str) -> tuple[str, str | None]:
    """Split ``text`` at its last colon when what follows has no ``/``."""
    head, colon, tail = text.rpartition(":")
    if not colon or "/" in tail:
        return text, None
    return head, tail


def _is_path(text: str) -> bool:
    return text in (".", "..", "~") or text.startswith(("/", "./", "../", "~"))


def parse_module_ref(text: str) -> ModuleRef:
    """Parse a module reference; see the module docstring for the forms.

    Raises :class:`~lilypad.exceptions.ModuleRefError` for an empty reference,
    whitespace or control characters, an empty ref after ``:``, extra colons,
    an unsupported URL scheme, or malformed names, hosts and paths.
    """
    if not isinstance(text, str):
        raise ModuleRefError(repr(text), f"a module reference must be a string, not {type(text).__name__}")
    if not text:
        raise ModuleRefError(text, "the module reference is empty")
    if len(text) > _MAX_REF_CHARS:
        raise ModuleRefError(text, f"longer than {_MAX_REF_CHARS} characters")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise ModuleRefError(text, "must not contain spaces or control characters")

    body, revision = _split_ref(text)
    if revision is not None:
        validate_revision(revision, text)
    if not body:
        raise ModuleRefError(text, "the module name before ':' is empty")

    if _is_path(body):
        expanded = os.path.expanduser(body)
        if expanded.startswith("~"):
            raise ModuleRefError(text, "cannot expand '~' in the path (unknown user?)")
        path = os.path.normpath(os.path.abspath(expanded))
        return ModuleRef(text=text, kind="path", location=path, ref=revision)

    if ("://" in body or "/" in body) and _has_credentials(body):
        raise ModuleRefError(text, "credentials (user:password@ or token@) are not allowed in a module URL: "
                                   "the reference is signed into public offers; use a public repository")

    if "://" in body:
        scheme, _, rest = body.partition("://")
        if scheme.lower() != "https":
            raise ModuleRefError(text, f"unsupported URL scheme {scheme!r}: use https:// (or host/owner/repo)")
        if ":" in _strip_port(rest):
            raise ModuleRefError(text, "too many ':' (use URL:ref with a single ':' before the ref)")
        return ModuleRef(text=text, kind="url", location=canonical_repo_url(body, text), ref=revision)

    if "/" in body:
        if "@" in body.partition("/")[0]:
            raise ModuleRefError(text, "user@host (ssh/scp-style) addresses are not supported: use host/owner/repo")
        if ":" in _strip_port(body):
            raise ModuleRefError(text, "too many ':' (use host/owner/repo:ref with a single ':')")
        return ModuleRef(text=text, kind="url", location=canonical_repo_url(body, text), ref=revision)

    if ":" in body:
        raise ModuleRefError(text, "too many ':' (use name:ref with a single ':')")
    if _NAME_RE.fullmatch(body) is None:
        raise ModuleRefError(
            text,
            f"module name {body!r} may only contain letters, digits and '._-' (and must not start with '.' or '-')",
        )
    return ModuleRef(text=text, kind="name", location=body, ref=revision)


def _has_credentials(body: str) -> bool:
    """Whether ``[scheme://]userinfo@host/...`` carries a password or a token
    (``git@host:owner/repo``, scp-style with no password, is left to its own message)."""
    scheme, sep, rest = body.partition("://")
    if sep and scheme.lower() != "https":
        return False  # refused for its scheme
    authority = (rest if sep else body).partition("/")[0]
    if "@" not in authority:
        return False
    userinfo = authority.rpartition("@")[0]
    return bool(sep) or ":" in userinfo


def _strip_port(url_body: str) -> str:
    """``host:port/rest`` -> ``host/rest``, so that remaining colons stand out."""
    host, slash, rest = url_body.partition("/")
    name, colon, port = host.partition(":")
    if colon and port.isdigit():
        host = name
    return host + slash + rest
