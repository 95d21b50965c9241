"""The module allowlist: which modules a resource provider agrees to run.

Lilypad's docs configure it with ``OFFER_MODULES``, a comma-separated list of
module references (``OFFER_MODULES=cowsay:v0.0.1,github.com/foo/bar:v1``).
Empty or unset means every module is allowed.

Matching rules (all decided on the reference *text*, before anything is
fetched or run):

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
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from lilypad.exceptions import ModuleNotAllowedError
from lilypad.modules.reference import ModuleRef, parse_module_ref

__all__ = ["ENV_VAR", "Allowlist", "AllowlistEntry"]

#: The environment variable Lilypad's docs use; ``LILYPAD_OFFER_MODULES`` is read when it is unset.
ENV_VAR = "OFFER_MODULES"
_ENV_FALLBACK = "LILYPAD_OFFER_MODULES"
_HEX = re.compile(r"[0-9a-fA-F]+")


def _same_revision(allowed: str, given: str | None) -> bool:
    if given is None:
        return False
    if _HEX.fullmatch(allowed) and _HEX.fullmatch(given):
        return allowed.lower() == given.lower()
    return allowed == given


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
        if self.module.identity != ref.identity:
            return False
        return self.module.ref is None or _same_revision(self.module.ref, ref.ref)


@dataclass(frozen=True)
class Allowlist:
    """A parsed allowlist; no entries means every module is allowed."""

    entries: tuple[AllowlistEntry, ...] = ()

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
        value = environ.get(ENV_VAR)
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

    def allows(self, ref: str | ModuleRef) -> bool:
        """Whether ``ref`` is allowed. Raises :class:`~lilypad.exceptions.ModuleRefError`
        when ``ref`` is a malformed string."""
        module = parse_module_ref(ref) if isinstance(ref, str) else ref
        return self.allows_all or any(entry.allows(module) for entry in self.entries)

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
