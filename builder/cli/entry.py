"""The ``bale`` program's entry point: signals first, then a no-change rebuild, then the rest.

Importing the builder takes a few hundred milliseconds. The first thing this
module does is hold SIGINT and SIGTERM (note them, act later); ``run`` installs
the real handlers inside its ``try``, so a Ctrl-C or SIGTERM at any moment
from here on ends in one line and exit 130 or 143, never a traceback. (What
comes before this module, the interpreter's start-up and the console script's
own imports, is out of its reach: see docs/reliability.md.)

``builder.rebuild`` imports only the standard library; when its record of this
exact command still matches the stat data of every input and output, the
recorded output is printed and the process ends.
Anything else goes to the full program (``builder.cli.main``).
"""

from builder.cli import signals

signals.hold()

import os  # noqa: E402 - after the signals are held
import sys  # noqa: E402


def run() -> None:
    """``bale``: main() in a process that exits as soon as it is done (see ``main.run``)."""
    try:
        signals.install()
        _replay()
        from builder.cli.main import run as run_main

        signals.check()
        run_main()
    except BaseException as exc:
        interrupt = signals.interrupt_in(exc)
        if interrupt is None:
            raise
        signals.ignore()
        line, code = signals.report(interrupt)
        try:
            sys.stderr.write(line)
            sys.stderr.flush()
        finally:
            os._exit(code)


def _replay() -> None:
    """Answer a no-change rebuild from its record, and exit; else return."""
    argv = sys.argv[1:]
    if argv[:1] == ["build"] and "--no-cache" not in argv:
        from builder.rebuild import replay

        found = replay(argv, os.getcwd(), os.environ)
        if found is not None:
            signals.check()
            sys.stderr.write(found[1])
            sys.stdout.write(found[0])
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)


if __name__ == "__main__":
    run()
