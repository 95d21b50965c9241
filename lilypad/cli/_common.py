"""What every ``lilypad`` command shares: the click classes that turn a
:class:`~lilypad.exceptions.LilypadError` into a one-line ``Error: ...`` (exit
status 1) in one place, and running a daemon until SIGINT/SIGTERM.

The root group is a :class:`LilypadGroup`; its subcommands and subgroups are
:class:`LilypadCommand` and :class:`LilypadGroup` too, so a command invoked on its
own (``python -m lilypad.cli.run``, a test's ``CliRunner``) reports errors the
same way as under ``lilypad``. Only click is imported here: ``lilypad --help``
stays instant.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

__all__ = ["LilypadCommand", "LilypadGroup", "lilypad_errors", "serve"]


@contextmanager
def lilypad_errors() -> Iterator[None]:
    """A :class:`~lilypad.exceptions.LilypadError` raised inside becomes a
    :class:`click.ClickException` with its message (no traceback)."""
    from lilypad.exceptions import LilypadError

    try:
        yield
    except LilypadError as err:
        raise click.ClickException(str(err)) from None


class LilypadCommand(click.Command):
    """A command whose :class:`~lilypad.exceptions.LilypadError` is a clean error."""

    def invoke(self, ctx: click.Context) -> Any:
        with lilypad_errors():
            return super().invoke(ctx)


class LilypadGroup(click.Group):
    """A group whose callback's (and subcommands') :class:`~lilypad.exceptions.LilypadError`
    is a clean error; commands and groups made with its decorators are lilypad's too."""

    command_class = LilypadCommand
    group_class = type  # click: subgroups made with @group.group() are of this class

    def invoke(self, ctx: click.Context) -> Any:
        with lilypad_errors():
            return super().invoke(ctx)


def serve(daemon: Any) -> None:
    """Run ``daemon`` (``run()`` blocks until ``stop()``) until SIGINT/SIGTERM, logging at INFO."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: daemon.stop())
    daemon.run()
