"""Help tables that read naturally: ``--help`` and flags show no ``<bool>``, arguments show
their name (``QUERY``), not ``<str>``. Every command and group of the CLI uses these classes."""

from __future__ import annotations

import click
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption


class _ReadableHelp:
    """Shows ``--help`` and other flags as the flags they are, and an argument by its metavar
    alone."""

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.metavar = ""
        return option

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
                param.metavar = ""
            if isinstance(param, TyperArgument) and param.metavar:
                param.display_type_rich = _no_type  # type: ignore[method-assign]
        return params


def _no_type(ctx: click.Context) -> None:
    return None


class Command(_ReadableHelp, TyperCommand):
    pass


class Group(_ReadableHelp, TyperGroup):
    pass
