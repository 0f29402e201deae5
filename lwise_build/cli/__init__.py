"""The ``lwise-build`` command line (the only place that imports click): a group
(:mod:`.group`) and its commands, each a few lines that call into the library."""

from . import hub, stages, tools  # noqa: F401  (each module adds its commands to the group)
from .group import cli, main

__all__ = ["cli", "main"]
