"""Render ``lilypad_module.json.tmpl``: the subset of Go ``text/template`` that
public Lilypad modules use.

Supported constructs (anything else raises :class:`TemplateError` naming the
construct and its 1-based line; the renderer never evaluates code):

``{{.Name}}`` / ``{{ .Name }}``
    The input's value, JSON-encoded (``Message=moo`` renders ``"moo"``, quotes
    included), as the original does: templates write ``["cowsay", {{.Message}}]``.
    A missing input renders as the empty string.
``{{if .X}}A{{else if .Y}}B{{else}}C{{end}}``
    Nested freely. A condition is true when the input is *set*: because values
    are JSON-encoded before rendering, an input given with an empty value
    (``-i X=``) is the two characters ``""``, a non-empty string, and Go's
    ``if`` treats it as true. Only a missing input is false. This is real Go
    behaviour for the original's JSON-encoded map and we keep it.
``{{ subst "FORMAT" .A .B ... }}``
    Each argument is an input (JSON-decoded, i.e. its original value), formatted
    with a Go ``Sprintf`` subset: ``%s``, ``%v``, ``%d`` (the value must be an
    integer) and ``%%``. Unlike the original, every substituted value is
    JSON-string-escaped (without surrounding quotes), so
    ``"M={{ subst "%s" .Message }}"`` and ``{{ subst "\\"M=%s\\"" .Message }}``
    both stay valid JSON whatever the value holds. The format itself is
    inserted as written. A missing input is an error (the original panics).
``{{ .X | js }}`` / ``{{ js .X }}``
    Go's ``JSEscapeString`` of the JSON-encoded value (used by official modules
    as ``"PROMPT={{ .prompt | js }}"``), except that ``'`` becomes ``\\u0027``
    instead of Go's ``\\'`` (not a valid JSON escape), so the result is always
    valid inside a JSON string.
``{{- ... -}}``
    Trim markers with Go semantics: all adjacent spaces, tabs, CRs and
    newlines of the neighbouring text are removed. The marker needs a
    whitespace character between it and the action (``{{- .X -}}``).
``{{/* ... */}}`` / ``{{- /* ... */ -}}``
    Comments, which may span lines; as in Go, ``/*`` must follow the
    delimiter (and its trim marker) directly and ``*/`` must precede it.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Union

from lilypad.exceptions import TemplateError

__all__ = [
    "TEMPLATE_FILENAME",
    "Template",
    "encode_input_value",
    "parse_template",
    "render_template",
]

TEMPLATE_FILENAME = "lilypad_module.json.tmpl"

_SPACE = " \t\r\n"
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FIELD_RE = re.compile(r"\.[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_NUMBER_RE = re.compile(r"[+-]?(?:0[xXoObB][0-9A-Fa-f_]+|[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+)i?")
_VERB_RE = re.compile(r"%(?P<flags>[-+# 0]*)(?P<width>[0-9*]*)(?:\.(?P<prec>[0-9*]*))?(?P<verb>.?)", re.S)
_INTEGER_RE = re.compile(r"[+-]?[0-9]+")
_SPACED_COMMENT_RE = re.compile(r"[ \t\r\n]+/\*")

_GO_KEYWORDS = frozenset({"range", "with", "define", "template", "block", "break", "continue"})
_GO_BUILTINS = frozenset(
    {"and", "or", "not", "call", "html", "index", "slice", "len", "print", "printf", "println",
     "urlquery", "eq", "ne", "lt", "le", "gt", "ge"}
)
_GO_CONSTANTS = frozenset({"true", "false", "nil"})
_GO_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"'}
_JS_ESCAPES = {"\\": "\\\\", '"': '\\"', "'": "\\u0027", "<": "\\u003C", ">": "\\u003E", "&": "\\u0026", "=": "\\u003D"}


# --------------------------------------------------------------------------
# Value encodings
# --------------------------------------------------------------------------


def _scrub(value: str) -> str:
    """Replace lone surrogates (undecodable bytes) by U+FFFD, as Go does for invalid UTF-8."""
    if not re.search("[\ud800-\udfff]", value):
        return value
    return re.sub("[\ud800-\udfff]", "\ufffd", value)


def encode_input_value(value: str) -> str:
    """JSON-encode ``value`` the way Go's ``json.Marshal`` does: a quoted JSON
    string, non-ASCII kept as is, ``<``, ``>``, ``&``, U+2028 and U+2029 escaped."""
    text = json.dumps(_scrub(value), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def _json_escape(value: str) -> str:
    """``value`` escaped to sit inside a JSON string (no surrounding quotes)."""
    return json.dumps(_scrub(value), ensure_ascii=False)[1:-1]


def _js_escape(value: str) -> str:
    """Go's ``template.JSEscapeString``, with ``'`` as ``\\u0027`` so it is valid JSON."""
    out: list[str] = []
    for char in value:
        if char in _JS_ESCAPES:
            out.append(_JS_ESCAPES[char])
        elif char < " ":
            out.append(f"\\u{ord(char):04X}")
        elif char >= "\x80" and not char.isprintable():
            code = ord(char)
            if code > 0xFFFF:  # a UTF-16 surrogate pair, the only JSON spelling
                code -= 0x10000
                out.append(f"\\u{0xD800 + (code >> 10):04X}\\u{0xDC00 + (code & 0x3FF):04X}")
            else:
                out.append(f"\\u{code:04X}")
        else:
            out.append(char)
    return "".join(out)


# --------------------------------------------------------------------------
# Syntax tree
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Text:
    text: str


@dataclass(frozen=True)
class _Field:
    name: str
    line: int
    js: bool = False


@dataclass(frozen=True)
class _Subst:
    parts: tuple[str, ...]  # literal text and verbs ("%s", "%v", "%d") in order
    args: tuple[str, ...]  # input names, one per verb
    line: int


@dataclass(frozen=True)
class _If:
    branches: tuple[tuple[str, tuple["_Node", ...]], ...]  # (condition input, body)
    otherwise: tuple["_Node", ...]
    line: int


_Node = Union[_Text, _Field, _Subst, _If]


@dataclass
class _Token:
    kind: str  # field dot ident string number char var pipe lparen rparen assign comma
    value: str
    line: int


@dataclass
class _Action:
    tokens: list[_Token]
    line: int
    source: str  # the action's text, for messages


# --------------------------------------------------------------------------
# Lexer
# --------------------------------------------------------------------------


class _Lexer:
    """Split a template into text and actions, applying trim markers."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._newlines = [i for i, char in enumerate(text) if char == "\n"]

    def line_at(self, pos: int) -> int:
        return bisect.bisect_left(self._newlines, pos) + 1

    def run(self) -> list[str | _Action]:
        text = self.text
        pieces: list[str | _Action] = []
        pos, trim_next = 0, False
        while True:
            start = text.find("{{", pos)
            chunk = text[pos:] if start < 0 else text[pos:start]
            if trim_next:
                chunk = chunk.lstrip(_SPACE)
            if start < 0:
                pieces.append(chunk)
                return pieces
            line = self.line_at(start)
            pos = start + 2
            if text.startswith("-", pos) and pos + 1 < len(text) and text[pos + 1] in _SPACE:
                chunk = chunk.rstrip(_SPACE)
                pos += 2
            pieces.append(chunk)
            if text.startswith("/*", pos):
                pos, trim_next = self._comment(pos, line)
                continue
            if _SPACED_COMMENT_RE.match(text, pos):
                raise TemplateError("/*", line, "a comment must start right after '{{' or '{{- ' (Go rejects '{{ /*')")
            action, pos, trim_next = self._action(start, pos, line)
            pieces.append(action)

    def _right_delim(self, pos: int) -> tuple[int, bool] | None:
        """At ``pos``: ``(end, trim)`` if a closing ``}}`` or `` -}}`` starts here."""
        text = self.text
        if text.startswith("}}", pos):
            return pos + 2, False
        if pos < len(text) and text[pos] in _SPACE and text.startswith("-}}", pos + 1):
            return pos + 4, True
        return None

    def _comment(self, pos: int, line: int) -> tuple[int, bool]:
        end = self.text.find("*/", pos + 2)
        if end < 0:
            raise TemplateError("/*", line, "unclosed comment")
        delim = self._right_delim(end + 2)
        if delim is None:
            raise TemplateError("/*", line, "comment ends before the closing '}}' (write '*/}}' or '*/ -}}')")
        return delim

    def _action(self, start: int, pos: int, line: int) -> tuple[_Action, int, bool]:
        text = self.text
        tokens: list[_Token] = []
        while True:
            delim = self._right_delim(pos)
            if delim is not None:
                end, trim = delim
                return _Action(tokens, line, text[start:end]), end, trim
            if pos >= len(text):
                raise TemplateError(text[start:start + 20], line, "unclosed action: missing '}}'")
            char = text[pos]
            tok_line = self.line_at(pos)
            if char in _SPACE:
                pos += 1
                continue
            if char == '"':
                end = pos + 1
                while end < len(text) and text[end] not in '"\n':
                    end += 2 if text[end] == "\\" else 1
                if end >= len(text) or text[end] != '"':
                    raise TemplateError(text[pos:pos + 20], tok_line, "unterminated quoted string")
                tokens.append(_Token("string", _unquote(text[pos + 1:end], tok_line), tok_line))
                pos = end + 1
            elif char == "`":
                end = text.find("`", pos + 1)
                if end < 0:
                    raise TemplateError(text[pos:pos + 20], tok_line, "unterminated raw string")
                tokens.append(_Token("string", text[pos + 1:end], tok_line))
                pos = end + 1
            elif char == "." and (m := _FIELD_RE.match(text, pos)):
                tokens.append(_Token("field", m.group()[1:], tok_line))
                pos = m.end()
            elif (m := _NUMBER_RE.match(text, pos)) and (char.isdigit() or text[pos + 1:pos + 2].isdigit()):
                tokens.append(_Token("number", m.group(), tok_line))
                pos = m.end()
            elif char == ".":
                tokens.append(_Token("dot", ".", tok_line))
                pos += 1
            elif m := _IDENT_RE.match(text, pos):
                tokens.append(_Token("ident", m.group(), tok_line))
                pos = m.end()
            elif char == "$":
                m = _IDENT_RE.match(text, pos + 1)
                name = "$" + (m.group() if m else "")
                tokens.append(_Token("var", name, tok_line))
                pos += len(name)
            elif char in "|(),'" or text.startswith(":=", pos) or char == "=":
                kind = {"|": "pipe", "(": "lparen", ")": "rparen", ",": "comma", "'": "char"}.get(char, "assign")
                value = ":=" if text.startswith(":=", pos) else char
                tokens.append(_Token(kind, value, tok_line))
                pos += len(value)
            else:
                raise TemplateError(char, tok_line, f"unexpected character {char!r} in action")


def _unquote(body: str, line: int) -> str:
    """Decode the escapes of a Go interpreted string literal (without its quotes)."""
    out, i = [], 0
    while i < len(body):
        char = body[i]
        if char != "\\":
            out.append(char)
            i += 1
            continue
        esc = body[i + 1:i + 2]
        if esc in _GO_ESCAPES:
            out.append(_GO_ESCAPES[esc])
            i += 2
            continue
        digits = {"x": 2, "u": 4, "U": 8}.get(esc)
        base, width, skip = (16, digits, 2) if digits else (8, 3, 1)
        chunk = body[i + skip:i + skip + width]
        allowed = "0123456789abcdefABCDEF" if base == 16 else "01234567"
        code = int(chunk, base) if len(chunk) == width and all(c in allowed for c in chunk) else -1
        if code < 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF or (base == 8 or esc == "x") and code > 0x7F:
            raise TemplateError("\\" + esc, line, "invalid or unsupported escape in string literal")
        out.append(chr(code))
        i += skip + width
    return "".join(out)


# --------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------


def _parse_format(fmt: str, line: int) -> tuple[list[str], int]:
    """Split a ``subst`` format into literal parts and verbs; return them and the verb count."""
    parts: list[str] = []
    literal: list[str] = []
    verbs, pos = 0, 0
    while pos < len(fmt):
        if fmt[pos] != "%":
            literal.append(fmt[pos])
            pos += 1
            continue
        m = _VERB_RE.match(fmt, pos)
        assert m is not None  # the pattern always matches at a '%'
        spec = m.group()
        if spec == "%%":
            literal.append("%")
        elif spec in ("%s", "%v", "%d"):
            parts.append("".join(literal))
            literal = []
            parts.append(spec)
            verbs += 1
        else:
            raise TemplateError("subst", line, f"unsupported format verb {spec!r} (only %s, %v, %d and %% are)")
        pos = m.end()
    parts.append("".join(literal))
    return parts, verbs


def _describe(token: _Token) -> str:
    return "." + token.value if token.kind == "field" else token.value


def _classify(action: _Action) -> tuple[str, object]:
    """Turn an action's tokens into one of: field, subst, if, elif, else, end."""
    tokens, line, src = action.tokens, action.line, action.source
    if not tokens:
        raise TemplateError(src, line, "empty action")
    first, rest = tokens[0], tokens[1:]
    for tok in tokens:
        if tok.kind == "pipe":
            if (len(tokens) == 3 and first.kind == "field" and tokens[2].kind == "ident"
                    and tokens[2].value == "js"):
                return "field", _Field(_field_name(first), line, js=True)
            raise TemplateError("|", tok.line, f"pipelines are not supported (only '.Name | js') in {src}")
    if first.kind == "field":
        if rest:
            raise TemplateError(_describe(rest[0]), rest[0].line, f"unexpected argument after .{first.value} in {src}")
        return "field", _Field(_field_name(first), line)
    if first.kind == "ident":
        word = first.value
        if word == "if":
            return "if", _condition("if", rest, line, src)
        if word == "else":
            if not rest:
                return "else", None
            if rest[0].kind == "ident" and rest[0].value == "if":
                return "elif", _condition("else if", rest[1:], line, src)
            raise TemplateError(f"else {_describe(rest[0])}", line, f"only '{{{{else}}}}' and '{{{{else if .Name}}}}' are supported, not {src}")
        if word == "end":
            if rest:
                raise TemplateError("end", line, f"unexpected argument to end in {src}")
            return "end", None
        if word == "subst":
            return "subst", _subst(rest, line, src)
        if word == "js":
            if len(rest) == 1 and rest[0].kind == "field":
                return "field", _Field(_field_name(rest[0]), line, js=True)
            raise TemplateError("js", line, f"js takes exactly one input (.Name) in {src}")
        if word in _GO_KEYWORDS:
            raise TemplateError(word, line, f"unsupported construct {{{{{word}}}}} in {src}")
        if word in _GO_BUILTINS:
            raise TemplateError(word, line, f"unsupported function {word!r} (only subst and js are) in {src}")
        if word in _GO_CONSTANTS:
            raise TemplateError(word, line, f"unsupported constant in {src}")
        raise TemplateError(word, line, f"unknown function {word!r} (only subst and js are) in {src}")
    what = {"dot": "'.' (the whole input map)", "var": "variables", "lparen": "parenthesised pipelines",
            "string": "constants", "number": "constants", "char": "constants"}.get(first.kind, "this")
    raise TemplateError(_describe(first), first.line, f"{what} not supported in {src}")


def _field_name(token: _Token) -> str:
    if "." in token.value:
        raise TemplateError("." + token.value, token.line, "nested fields are not supported (inputs are strings)")
    return token.value


def _condition(keyword: str, rest: list[_Token], line: int, src: str) -> str:
    if not rest:
        raise TemplateError(keyword, line, f"missing condition in {src}")
    if len(rest) == 1 and rest[0].kind == "field":
        return _field_name(rest[0])
    raise TemplateError(keyword, line, f"only a single input is supported as condition ({{{{{keyword} .Name}}}}), not {src}")


def _subst(rest: list[_Token], line: int, src: str) -> _Subst:
    if not rest or rest[0].kind != "string":
        raise TemplateError("subst", line, f"the first argument of subst must be a quoted format string in {src}")
    args = rest[1:]
    for arg in args:
        if arg.kind != "field":
            raise TemplateError("subst", arg.line, f"subst arguments must be inputs (.Name), not {_describe(arg)!r} in {src}")
    parts, verbs = _parse_format(rest[0].value, line)
    if verbs != len(args):
        raise TemplateError("subst", line, f"format has {verbs} verb(s) but {len(args)} argument(s) were given in {src}")
    return _Subst(tuple(parts), tuple(_field_name(arg) for arg in args), line)


@dataclass
class _OpenIf:
    line: int
    branches: list[tuple[str, list[_Node]]]
    otherwise: list[_Node] | None = None

    def body(self) -> list[_Node]:
        return self.otherwise if self.otherwise is not None else self.branches[-1][1]


def parse_template(text: str) -> Template:
    """Parse a module template; raise :class:`TemplateError` on anything unsupported."""
    root: list[_Node] = []
    stack: list[_OpenIf] = []

    def body() -> list[_Node]:
        return stack[-1].body() if stack else root

    for piece in _Lexer(text).run():
        if isinstance(piece, str):
            if piece:
                body().append(_Text(piece))
            continue
        kind, value = _classify(piece)
        if kind in ("field", "subst"):
            body().append(value)  # type: ignore[arg-type]
        elif kind == "if":
            stack.append(_OpenIf(piece.line, [(value, [])]))  # type: ignore[list-item]
        elif not stack:
            word = "else" if kind == "elif" else kind
            raise TemplateError(word, piece.line, f"{{{{{word}}}}} without a matching {{{{if}}}}")
        elif kind in ("elif", "else") and stack[-1].otherwise is not None:
            raise TemplateError("else", piece.line, "{{else}} after the final {{else}} of this {{if}}")
        elif kind == "elif":
            stack[-1].branches.append((value, []))  # type: ignore[arg-type]
        elif kind == "else":
            stack[-1].otherwise = []
        else:  # end
            done = stack.pop()
            node = _If(tuple((cond, tuple(nodes)) for cond, nodes in done.branches),
                       tuple(done.otherwise or ()), done.line)
            body().append(node)
    if stack:
        raise TemplateError("if", stack[-1].line, "missing {{end}} for this {{if}}")
    return Template(tuple(root))


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------


class Template:
    """A parsed module template; render it with :meth:`render`."""

    def __init__(self, nodes: tuple[_Node, ...]) -> None:
        self._nodes = nodes

    @property
    def input_names(self) -> frozenset[str]:
        """Names of every input the template refers to."""
        names: set[str] = set()

        def walk(nodes: tuple[_Node, ...]) -> None:
            for node in nodes:
                if isinstance(node, _Field):
                    names.add(node.name)
                elif isinstance(node, _Subst):
                    names.update(node.args)
                elif isinstance(node, _If):
                    for cond, branch in node.branches:
                        names.add(cond)
                        walk(branch)
                    walk(node.otherwise)

        walk(self._nodes)
        return frozenset(names)

    def render(self, inputs: Mapping[str, str]) -> str:
        """Render with ``inputs`` (raw values; they are JSON-encoded here)."""
        encoded = {key: encode_input_value(value) for key, value in inputs.items()}
        out: list[str] = []
        self._render(self._nodes, inputs, encoded, out)
        return "".join(out)

    def _render(self, nodes: tuple[_Node, ...], raw: Mapping[str, str], encoded: dict[str, str],
                out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, _Text):
                out.append(node.text)
            elif isinstance(node, _Field):
                value = encoded.get(node.name, "")
                out.append(_js_escape(value) if node.js else value)
            elif isinstance(node, _Subst):
                out.append(_format(node, raw))
            else:
                for cond, branch in node.branches:
                    if encoded.get(cond, ""):  # Go: a non-empty string is true
                        self._render(branch, raw, encoded, out)
                        break
                else:
                    self._render(node.otherwise, raw, encoded, out)


def _format(node: _Subst, raw: Mapping[str, str]) -> str:
    out, args = [], iter(node.args)
    for part in node.parts:
        if part not in ("%s", "%v", "%d"):
            out.append(part)
            continue
        name = next(args)
        if name not in raw:
            raise TemplateError("subst", node.line, f"input {name!r} is not set (guard it with {{{{if .{name}}}}})")
        value = raw[name]  # == json.loads(encode_input_value(value)), up to invalid UTF-8
        if part == "%d":
            if not _INTEGER_RE.fullmatch(value):
                raise TemplateError("subst", node.line, f"%d needs an integer, but input {name!r} is {value[:40]!r}")
            out.append(str(int(value)))
        else:
            out.append(_json_escape(value))
    return "".join(out)


def render_template(text: str, inputs: Mapping[str, str]) -> str:
    """Parse ``text`` and render it with ``inputs`` (see the module docstring)."""
    return parse_template(text).render(inputs)
