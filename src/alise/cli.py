"""The ``alise`` command line.

Each sub-command is one module in :mod:`alise.commands` that defines

* ``HELP``: a one-line summary shown by ``alise --help``;
* ``DESCRIPTION`` (optional): the longer text shown by ``alise CMD --help``;
* ``add_arguments(parser)``: its options;
* ``run(args) -> int``: the work (heavy imports go inside ``run`` so ``--help`` stays fast);
* ``INTERRUPTED_HINT`` (optional): how to continue after Ctrl-C / SIGTERM, appended to "interrupted".

Modules are discovered automatically. A user mistake raises :class:`alise.errors.AliseError`,
printed here as one line on stderr with exit code 2 and no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import signal
import sys

from alise._version import __version__
from alise.errors import AliseError


def _command_modules():
    import alise.commands as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        yield info.name.replace("_", "-"), importlib.import_module(f"alise.commands.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alise",
        description="ALISE: aligned per-pixel embeddings of irregular Sentinel-2 image time series.",
        epilog="Run 'alise COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"alise {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, mod in _command_modules():
        p = sub.add_parser(
            name,
            help=mod.HELP,
            description=getattr(mod, "DESCRIPTION", mod.HELP),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def _terminate(signum, frame):  # SIGTERM (e.g. a batch scheduler) unwinds like Ctrl-C, cleaning temp outputs
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminate)
    try:
        return int(args._run(args) or 0)
    except AliseError as e:
        print(f"alise {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = getattr(sys.modules.get(getattr(args._run, "__module__", "")), "INTERRUPTED_HINT", "")
        print(f"alise {args.command}: interrupted{'; ' + hint if hint else ''}", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
