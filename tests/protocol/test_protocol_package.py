"""lilypad.protocol as a package: its lazy re-exports, and that it needs no server."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import lilypad.protocol as protocol

SUBMODULES = sorted(m.name for m in pkgutil.iter_modules(protocol.__path__))


def test_every_public_name_of_the_submodules_is_re_exported_and_the_same_object() -> None:
    expected: dict[str, str] = {}
    for name in SUBMODULES:
        module = importlib.import_module(f"lilypad.protocol.{name}")
        for public in module.__all__:
            assert public not in expected, f"{public} is public in both {expected[public]} and {name}"
            expected[public] = name
    assert sorted(protocol.__all__) == sorted(expected)
    assert expected == protocol._WHERE
    for public, name in expected.items():
        assert getattr(protocol, public) is getattr(importlib.import_module(f"lilypad.protocol.{name}"), public)


def test_the_protocol_loads_nothing_of_the_solver() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {SUBMODULES!r}:\n"
        "    importlib.import_module('lilypad.protocol.' + name)\n"
        "import lilypad.protocol as p\n"
        "[getattr(p, n) for n in p.__all__]\n"
        "print(','.join(sorted(m for m in sys.modules if m.startswith('lilypad.'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    loaded = out.strip().split(",")
    assert {f"lilypad.protocol.{name}" for name in SUBMODULES} <= set(loaded)
    assert [m for m in loaded if m == "lilypad.solver" or m.startswith("lilypad.solver.")] == []


def test_importing_one_submodule_imports_no_other() -> None:
    code = (
        "import sys\n"
        "import lilypad.protocol.deal\n"
        "print(','.join(sorted(m for m in sys.modules if m.startswith('lilypad.protocol'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip().split(",") == ["lilypad.protocol", "lilypad.protocol.deal", "lilypad.protocol.fields"]
