"""``python -m builder.cli``: the same program as the ``bale`` command."""

from builder.cli.entry import run

run()
