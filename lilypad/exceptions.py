"""Every exception that lilypad raises on purpose.

One module, in the style of ``ape.exceptions``: a single base class,
:class:`LilypadError`, and one subclass per kind of failure. Each subclass
builds its message in ``__init__`` from its inputs and keeps those inputs as
attributes, so callers (the CLI, the daemons, tests) can report or branch on
them without parsing the message.

Keep this file tidy when adding classes: group them under the section comment
of the subsystem that raises them, give each a docstring, and list it in
``__all__``.
"""

from __future__ import annotations

__all__ = [
    "LilypadError",
    # modules
    "ModuleError",
    "TemplateError",
    "InputError",
    "SpecError",
    "SpecJSONError",
    # results
    "ResultsError",
    "CIDError",
    # protocol (contracts, deployments, accounts)
    "ProtocolError",
    "DeploymentNotFoundError",
    "DeploymentError",
    "InvalidPrivateKeyError",
    "NoAccountError",
]


def _shorten(text: str, limit: int = 60) -> str:
    """``text`` on one line and at most ``limit`` characters, for messages."""
    flat = text.replace("\r", "\\r").replace("\n", "\\n")
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class LilypadError(Exception):
    """Base class of every error lilypad raises on purpose."""


# --------------------------------------------------------------------------
# Modules: templates, inputs and module specs (lilypad.modules)
# --------------------------------------------------------------------------


class ModuleError(LilypadError):
    """Base class of errors about a module: its template, inputs or spec."""


class TemplateError(ModuleError):
    """A module template uses something the renderer does not support, or is
    malformed.

    ``construct`` names the offending construct (``range``, ``|``, ``if``,
    ``{{``, ...), ``line`` is the 1-based line where it starts and ``reason``
    says what is wrong.
    """

    def __init__(self, construct: str, line: int, reason: str) -> None:
        self.construct = construct
        self.line = line
        self.reason = reason
        super().__init__(f"template line {line}: {_shorten(construct)!r}: {reason}")


class InputError(ModuleError):
    """A job input (``-i KEY=VALUE``) is malformed or over a limit.

    ``key`` is the input's key when it is known, else ``None``.
    """

    def __init__(self, reason: str, key: str | None = None) -> None:
        self.reason = reason
        self.key = key
        where = f"input {_shorten(key)!r}" if key is not None else "inputs"
        super().__init__(f"invalid {where}: {reason}")


class SpecError(ModuleError):
    """A rendered module spec is invalid.

    ``path`` is the dotted path of the offending field, e.g.
    ``job.Spec.Resources.CPU`` or ``machine.gpus[0].vram`` (empty for the
    document as a whole).
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        where = f" at {path}" if path else ""
        super().__init__(f"invalid module spec{where}: {reason}")


class SpecJSONError(SpecError):
    """A module spec (usually a rendered template) is not valid JSON.

    ``line`` and ``column`` are 1-based positions in the rendered text;
    ``excerpt`` is the rendered line they point into.
    """

    def __init__(self, line: int, column: int, reason: str, excerpt: str = "") -> None:
        self.line = line
        self.column = column
        self.excerpt = excerpt
        detail = f"not valid JSON: {reason} (line {line}, column {column})"
        if excerpt:
            detail += f": {_shorten(excerpt.strip(), 80)!r}"
        super().__init__("", detail)


# --------------------------------------------------------------------------
# Results (lilypad.results)
# --------------------------------------------------------------------------


class ResultsError(LilypadError):
    """Base class of errors about job results."""


class CIDError(ResultsError):
    """The IPFS CID of a result path cannot be computed.

    ``path`` is the file system path concerned and ``reason`` says why.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"cannot compute the CID of {path!r}: {reason}")


# --------------------------------------------------------------------------
# Protocol: contracts, deployments and accounts (lilypad.protocol)
# --------------------------------------------------------------------------


class ProtocolError(LilypadError):
    """Base class of errors about the on-chain protocol."""


class DeploymentNotFoundError(ProtocolError):
    """No deployments file for a network. ``path`` is where it was looked for."""

    def __init__(self, path: object) -> None:
        self.path = path
        super().__init__(
            f"no deployments file at {path}: deploy first with "
            "`ape run deploy --network ECOSYSTEM:NETWORK:PROVIDER`"
        )


class DeploymentError(ProtocolError):
    """A deployed system is not fully wired. ``problems`` lists what is wrong."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("deployment is not usable: " + "; ".join(self.problems))


class InvalidPrivateKeyError(ProtocolError):
    """A private key could not be parsed. ``source`` names where it came from
    (never the key itself)."""

    def __init__(self, source: str) -> None:
        self.source = source
        super().__init__(f"{source} is not a valid private key (expected 32 bytes of hex)")


class NoAccountError(ProtocolError):
    """No signing account was given for a non-local network."""

    def __init__(self) -> None:
        super().__init__("no account: pass --account ALIAS (an ape account) or set WEB3_PRIVATE_KEY")
