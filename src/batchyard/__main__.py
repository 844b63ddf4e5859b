"""``python -m batchyard`` works like the ``batchyard`` command."""

from batchyard.cli.main import run

run()
