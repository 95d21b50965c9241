"""Render ``lilypad_module.json.tmpl`` with Go's own ``text/template``, as the
original Lilypad does.

The whole template language and every built-in function are Go's, because Go
renders: :func:`render_template` hands the template and the inputs to the Go
template helper (:mod:`lilypad.modules.gotemplate_helper`, source in
``lilypad/modules/gotemplate/main.go``) and returns what it wrote. As in the
original, each input value is JSON-encoded (Go's ``json.Marshal``) before
rendering, so ``{{.Message}}`` with ``Message=moo`` renders ``"moo"``, quotes
included, and the one custom function ``subst FORMAT ARGS...`` JSON-decodes its
arguments and ``Sprintf``-s them.

Three deliberate differences from the original, each for a reason given in
``docs/modules.md``:

* ``subst`` JSON-string-escapes every value it substitutes (no quotes added),
  so an input cannot break or inject JSON; the format is inserted as written;
* a missing input is the empty string (``missingkey=zero``): ``{{.Missing}}``
  renders nothing rather than ``<no value>``;
* ``js`` writes ``'`` as ``\\u0027`` (valid inside a JSON string) rather than
  ``\\'``.

Everything else renders byte for byte as Go does; ``tests/modules`` holds a
differential test against plain Go. Errors are Go's, with the line Go reports,
raised as :class:`~lilypad.exceptions.TemplateError`. Rendering is bounded:
templates of at most :data:`MAX_TEMPLATE_BYTES`, output of at most
:data:`MAX_OUTPUT_BYTES`, :data:`RENDER_TIMEOUT_S` seconds of execution (a
``range`` that never ends is stopped, not waited for).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Mapping
from typing import Any

from lilypad.exceptions import TemplateError, TemplateHelperError
from lilypad.modules.gotemplate_helper import helper_path

__all__ = [
    "MAX_OUTPUT_BYTES",
    "MAX_TEMPLATE_BYTES",
    "RENDER_TIMEOUT_S",
    "TEMPLATE_FILENAME",
    "Template",
    "parse_template",
    "render_template",
]

TEMPLATE_FILENAME = "lilypad_module.json.tmpl"
MAX_TEMPLATE_BYTES = 1 << 20
MAX_OUTPUT_BYTES = 4 << 20
RENDER_TIMEOUT_S = 2.0

_PROTOCOL = 1  # lilypad/modules/gotemplate/main.go: Protocol
_PROCESS_TIMEOUT_S = 60.0  # a backstop: the helper stops itself after RENDER_TIMEOUT_S
_FUNCTION_RE = re.compile(r'function "([^"]+)"')
_HELPER_ENV = {"GOMAXPROCS": "2"}  # nothing of ours (keys, RPC URLs) reaches the helper


def _text_bytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _construct(failure: Mapping[str, Any], template: str) -> str:
    """What a Go error is about: the action it names, a function, or the line's text."""
    context = str(failure.get("context") or "")
    if context:
        return context.removeprefix("<").removesuffix(">")
    function = _FUNCTION_RE.search(str(failure.get("message", "")))
    if function:
        return function.group(1)
    line = int(failure.get("line") or 0)
    lines = template.splitlines()
    return lines[line - 1].strip() if 0 < line <= len(lines) else "{{"


def _run_helper(template: str, inputs: Mapping[str, str], *, parse_only: bool) -> bytes:
    if _text_bytes(template) > MAX_TEMPLATE_BYTES:
        raise TemplateError("{{", 0, f"the template is larger than {MAX_TEMPLATE_BYTES} bytes")
    request = json.dumps({
        "protocol": _PROTOCOL, "template": template, "inputs": dict(inputs), "parse_only": parse_only,
        "max_output_bytes": MAX_OUTPUT_BYTES, "timeout_ms": int(RENDER_TIMEOUT_S * 1000),
    }).encode()  # ASCII: undecodable characters travel as \\u escapes; Go reads them as U+FFFD
    helper = helper_path()
    try:
        proc = subprocess.run([str(helper)], input=request, capture_output=True, env=_HELPER_ENV,
                              timeout=_PROCESS_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise TemplateHelperError(str(helper), f"no answer within {_PROCESS_TIMEOUT_S:g}s") from None
    except OSError as exc:
        raise TemplateHelperError(str(helper), f"cannot run it ({exc}); rebuild it with `make setup`") from None
    if proc.returncode == 0:
        return proc.stdout
    try:
        failure = json.loads(proc.stdout) if proc.returncode == 1 else None
    except ValueError:
        failure = None
    if not isinstance(failure, dict) or failure.get("kind") not in ("parse", "exec", "limit"):
        detail = (failure or {}).get("message") if isinstance(failure, dict) else None
        detail = detail or proc.stderr.decode(errors="replace").strip()[-300:] or f"exit status {proc.returncode}"
        raise TemplateHelperError(str(helper), f"failed: {detail}; rebuild it with `make setup`")
    raise TemplateError(_construct(failure, template), int(failure.get("line") or 0), str(failure["message"]))


class Template:
    """A module template whose syntax Go accepted; render it with :meth:`render`."""

    def __init__(self, text: str) -> None:
        self.text = text

    def render(self, inputs: Mapping[str, str]) -> str:
        """Render with ``inputs`` (raw values; the helper JSON-encodes them)."""
        return render_template(self.text, inputs)


def parse_template(text: str) -> Template:
    """Check ``text`` with Go's parser (no rendering); raise :class:`TemplateError`
    with Go's message and line when it does not parse."""
    _run_helper(text, {}, parse_only=True)
    return Template(text)


def render_template(text: str, inputs: Mapping[str, str]) -> str:
    """Render ``text`` with ``inputs`` (see the module docstring). Raises
    :class:`TemplateError`, or :class:`~lilypad.exceptions.TemplateHelperError`
    when the helper is missing or broken (a problem of this machine, not of
    the module). Bytes that are not UTF-8 become U+FFFD, as Go's JSON decoder
    makes them."""
    return _run_helper(text, inputs, parse_only=False).decode("utf-8", errors="replace")
