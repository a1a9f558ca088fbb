"""One exception hierarchy for every user-facing failure.

Everything a user can cause (bad package, bad config, unreachable storage) raises a subclass of
:class:`PrepgenError`, which click prints as one ``Error: ...`` line and exits 1. Messages name the
file/row/member, say what is wrong and what to do about it.
"""

from __future__ import annotations

import click


class PrepgenError(click.ClickException):
    """Base of every error prepgen reports to a user (exit code 1)."""

    exit_code = 1


class PackageError(PrepgenError):
    """A PREP package cannot be read: wrong layout, bad cell, truncated zip, hostile archive."""


class ConfigError(PrepgenError):
    """prepgen.toml or an option has a value prepgen cannot use."""


class BuildError(PrepgenError):
    """The site cannot be built from a package that was read fine (e.g. a vote column left unassigned)."""


class PublishError(PrepgenError):
    """The target storage refused or failed; the previous corte stays live."""
