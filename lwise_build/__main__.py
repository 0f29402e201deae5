"""``python -m lwise_build`` is the ``lwise-build`` CLI."""

from .cli import main

main()
