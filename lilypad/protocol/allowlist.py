"""The module allowlist: which modules a resource provider agrees to run.

One rule, used everywhere a module is judged against an allowlist: by the
solver's matcher (a resource offer's ``modules`` against a job offer's
``module.ref``, :func:`module_allowed`), by the provider before it agrees to a
deal and again by its module resolver before it fetches anything
(:meth:`Allowlist.check`), and by the mediator. Pure: it parses and compares
reference *text*, nothing is fetched or run.

Lilypad's docs configure it with ``OFFER_MODULES``, a comma-separated list of
module references (``OFFER_MODULES=cowsay:v0.0.1,github.com/foo/bar:v1``).
Empty or unset means every module is allowed.

Matching rules:

1. Each entry and the reference are parsed with
   :func:`~lilypad.modules.reference.parse_module_ref` and compared by
   :attr:`~lilypad.modules.reference.ModuleRef.identity`:

   * a bare name is the same module as its Lilypad-Tech GitHub form, so the
     entry ``cowsay`` matches ``cowsay:...`` and
     ``github.com/Lilypad-Tech/lilypad-module-cowsay:...`` and vice versa (a
     built-in module is the in-repository copy of that module);
   * URLs compare with ``https://`` implied, the host case-insensitive, a
     trailing ``/`` or ``.git`` ignored, and the whole of a ``github.com`` URL
     case-insensitive (GitHub is);
   * local paths compare as absolute, normalised paths (a relative entry is
     taken relative to the current directory when the list is parsed). A path
     never matches a name or URL.

2. An entry **with** ``:ref`` allows exactly that ref: refs compare as text
   (case-insensitively when both are hexadecimal, i.e. commit hashes). Allowing
   a tag does not allow the commit it points to spelled as a hash, nor the
   default branch (a reference without a ref).
3. An entry **without** a ref allows every ref of that module, and the default
   branch.

A malformed entry raises :class:`~lilypad.exceptions.ModuleRefError` when the
list is parsed, so a typo in ``OFFER_MODULES`` fails at start-up rather than
silently refusing every job.

An :class:`Allowlist` keeps its entries in order (for messages) and an index
from module identity to the revisions allowed, so a check is one lookup
however long the list; :func:`compile_allowlist` caches the allowlists of
resource offers for the matcher.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from lilypad.exceptions import ModuleNotAllowedError
from lilypad.modules.reference import ModuleRef, parse_module_ref

if TYPE_CHECKING:
    from lilypad.protocol.offers import JobModule

__all__ = [
    "ALLOWLIST_ENV_VAR",
    "Allowlist",
    "AllowlistEntry",
    "ModuleKey",
    "compile_allowlist",
    "module_allowed",
    "module_key",
]

#: The environment variable Lilypad's docs use; ``LILYPAD_OFFER_MODULES`` is read when it is unset.
ALLOWLIST_ENV_VAR = "OFFER_MODULES"
_ENV_FALLBACK = "LILYPAD_OFFER_MODULES"
_HEX = re.compile(r"[0-9a-fA-F]+")

#: What an allowlist compares: a module's identity and its revision (``None``
#: for the default branch), a commit hash in lower case.
ModuleKey = tuple[str, str | None]


def _key(module: ModuleRef) -> ModuleKey:
    revision = module.ref
    if revision is not None and _HEX.fullmatch(revision):
        revision = revision.lower()
    return module.identity, revision


@lru_cache(maxsize=65536)
def module_key(ref: str) -> ModuleKey:
    """The :data:`ModuleKey` of the reference text ``ref`` (cached: the
    matcher asks for the same references over and over). Raises
    :class:`~lilypad.exceptions.ModuleRefError` for a malformed reference."""
    return _key(parse_module_ref(ref))


def _index(modules: Iterable[ModuleRef]) -> dict[str, frozenset[str] | None]:
    allowed: dict[str, set[str] | None] = {}
    for module in modules:
        identity, revision = _key(module)
        if revision is None:
            allowed[identity] = None
        elif identity not in allowed or allowed[identity] is not None:
            allowed.setdefault(identity, set()).add(revision)  # type: ignore[union-attr]
    return {k: (None if v is None else frozenset(v)) for k, v in allowed.items()}


@dataclass(frozen=True)
class AllowlistEntry:
    """One allowlist entry: its text and the module reference it parses to."""

    text: str
    module: ModuleRef

    @classmethod
    def parse(cls, text: str) -> AllowlistEntry:
        text = text.strip()
        return cls(text=text, module=parse_module_ref(text))

    def allows(self, ref: ModuleRef) -> bool:
        """Whether this entry allows ``ref`` (see the module docstring)."""
        return Allowlist((self,)).allows(ref)


@dataclass(frozen=True)
class Allowlist:
    """A parsed allowlist; no entries means every module is allowed."""

    entries: tuple[AllowlistEntry, ...] = ()
    _modules: Mapping[str, frozenset[str] | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_modules", _index(entry.module for entry in self.entries))

    @classmethod
    def parse(cls, spec: str | Iterable[str] | None) -> Allowlist:
        """Parse ``"cowsay:v0.0.1,github.com/foo/bar:v1"`` (or a list of entries).

        Items are stripped and empty items skipped, so ``""``, ``None`` and
        ``" , "`` all mean "allow everything". Raises
        :class:`~lilypad.exceptions.ModuleRefError` for a malformed entry.
        """
        if spec is None:
            return cls()
        items = spec.split(",") if isinstance(spec, str) else list(spec)
        entries: list[AllowlistEntry] = []
        for item in items:
            for part in item.split(","):
                if part.strip():
                    entries.append(AllowlistEntry.parse(part))
        return cls(tuple(entries))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Allowlist:
        """The allowlist in ``OFFER_MODULES`` (or ``LILYPAD_OFFER_MODULES``) of ``environ``
        (default: :attr:`lilypad.settings.LilypadSettings.offer_modules`); empty/unset allows all."""
        if environ is None:
            from lilypad.settings import get_settings

            return cls.parse(get_settings().offer_modules)
        value = environ.get(ALLOWLIST_ENV_VAR)
        if value is None:
            value = environ.get(_ENV_FALLBACK)
        return cls.parse(value)

    @property
    def allows_all(self) -> bool:
        """True when the list is empty (every module allowed)."""
        return not self.entries

    @property
    def allowed(self) -> tuple[str, ...]:
        """The entries' texts."""
        return tuple(entry.text for entry in self.entries)

    def allows_key(self, identity: str, revision: str | None) -> bool:
        """Whether the module ``identity`` at ``revision`` (a :data:`ModuleKey`) is allowed."""
        if not self._modules:
            return True
        if identity not in self._modules:
            return False
        revisions = self._modules[identity]
        return revisions is None or (revision is not None and revision in revisions)

    def allows(self, ref: str | ModuleRef) -> bool:
        """Whether ``ref`` is allowed. Raises :class:`~lilypad.exceptions.ModuleRefError`
        when ``ref`` is a malformed string."""
        module = parse_module_ref(ref) if isinstance(ref, str) else ref
        return self.allows_key(*_key(module))

    def check(self, ref: str | ModuleRef) -> ModuleRef:
        """Return the parsed reference when it is allowed; otherwise raise
        :class:`~lilypad.exceptions.ModuleNotAllowedError` (and
        :class:`~lilypad.exceptions.ModuleRefError` when it is malformed)."""
        module = parse_module_ref(ref) if isinstance(ref, str) else ref
        if not self.allows(module):
            raise ModuleNotAllowedError(module.text, self.allowed)
        return module

    def __iter__(self) -> Iterator[AllowlistEntry]:
        return iter(self.entries)

    def __str__(self) -> str:
        return ",".join(self.allowed)


@lru_cache(maxsize=4096)
def _compile(entries: tuple[str, ...]) -> Allowlist:
    return Allowlist(tuple(AllowlistEntry(text=entry, module=parse_module_ref(entry)) for entry in entries))


def compile_allowlist(entries: Iterable[str]) -> Allowlist:
    """The :class:`Allowlist` of these entries (module references, e.g. a
    resource offer's ``modules``), built once per distinct set of entries and
    cached."""
    return _compile(tuple(sorted(set(entries))))


def module_allowed(allowlist: Allowlist | Iterable[str], module: JobModule | ModuleRef | str) -> bool:
    """Whether ``allowlist`` (an :class:`Allowlist`, or its entries) allows
    ``module`` - a job offer's module is judged on the reference the job
    creator gave (``module.ref``), exactly as the provider's resolver checks
    it before running the job."""
    compiled = allowlist if isinstance(allowlist, Allowlist) else compile_allowlist(allowlist)
    if isinstance(module, ModuleRef):
        return compiled.allows(module)
    return compiled.allows_key(*module_key(module if isinstance(module, str) else module.ref))
