"""What every ``lilypad`` command shares: the click classes that turn a
:class:`~lilypad.exceptions.LilypadError` into a one-line ``Error: ...`` (exit
status 1) in one place, the invocation's settings, and running a daemon until
SIGINT/SIGTERM.

The root group is a :class:`LilypadGroup`; its subcommands and subgroups are
:class:`LilypadCommand` and :class:`LilypadGroup` too, so a command invoked on its
own (``python -m lilypad.cli.run``, a test's ``CliRunner``) reports errors the
same way as under ``lilypad``.

The settings (:class:`~lilypad.settings.LilypadSettings`) are built once per
invocation, the first time a command asks (:func:`pass_settings`), and kept as
the root context's ``obj``; a caller may put its own there
(``main(obj=LilypadSettings(...))``). Only click is imported here: ``lilypad
--help`` stays instant.
"""

from __future__ import annotations

import functools
import logging
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from lilypad.settings import LilypadSettings

__all__ = ["LilypadCommand", "LilypadGroup", "cli_settings", "lilypad_errors", "pass_settings", "serve"]


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


def cli_settings(ctx: click.Context | None = None) -> LilypadSettings:
    """This invocation's settings (``ctx``: the current context), built from the
    environment on first use and kept in the root context; a
    :class:`~lilypad.exceptions.SettingsError` names the variables that are wrong."""
    from lilypad.settings import LilypadSettings, get_settings

    root = (ctx or click.get_current_context()).find_root()
    if not isinstance(root.obj, LilypadSettings):
        root.obj = get_settings()
    return root.obj


def pass_settings(f: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a command to get this invocation's settings as its first argument."""

    def new_func(*args: Any, **kwargs: Any) -> Any:
        return f(cli_settings(), *args, **kwargs)

    return functools.update_wrapper(new_func, f)


def serve(daemon: Any) -> None:
    """Run ``daemon`` (``run()`` blocks until ``stop()``) until SIGINT/SIGTERM, logging at INFO."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: daemon.stop())
    daemon.run()
