"""The ``hera`` command line, and the composition root: the one place that puts the agents, the
product's packages and the developer tooling together (``tests/unit/test_layers.py``).

``app`` holds the command group and what every command shares (JSON on stdout, one-line errors:
``errors``); each other module registers its commands on that group when imported here, and
imports only ``app``, never this package, so there is no cycle between the group and its commands.
"""

from pipeline.cli import books, ops, pipeline_commands, review, security, web  # noqa: F401  (register commands)
from pipeline.cli.app import main

__all__ = ["main"]
