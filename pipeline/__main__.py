"""``python -m pipeline`` is the ``hera`` command."""

from pipeline.cli import main

main()
