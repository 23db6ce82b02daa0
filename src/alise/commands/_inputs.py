"""The input options shared by every command that reads data: ``--date-pattern`` and ``--files``.

``--files LIST.csv`` is one more DATA path: a CSV file with header ``path,date[,mask]`` listing
the images of one series (``alise.data.filelist``); passing ``LIST.csv`` as DATA does the same.
``--date-pattern REGEX`` replaces the built-in rules that read dates from file and folder names
(``alise.dates.date_from_name``). See ``docs/data-formats.md`` "Layouts".
"""

from __future__ import annotations

import argparse

DATE_PATTERN_HELP = ("regular expression that finds the date in file/folder names, with named groups "
                     "(?P<year>..)(?P<month>..)(?P<day>..) or one (?P<date>..) holding YYYYMMDD or YYYY-MM-DD; "
                     "replaces the built-in rules (YYYY-MM-DD, YYYYMMDD, YYYY_MM_DD, ESA product names)")
FILES_HELP = "a CSV file with header path,date[,mask] listing the images of one series (same as giving it as DATA)"


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--date-pattern REGEX`` and ``--files LIST.csv``."""
    parser.add_argument("--date-pattern", default=None, metavar="REGEX", help=DATE_PATTERN_HELP)
    parser.add_argument("--files", default=None, metavar="LIST.csv", help=FILES_HELP)


def input_options(args: argparse.Namespace) -> dict:
    """Keyword arguments for ``open_sources`` / ``open_source`` (and ``PretrainJob``): ``date_pattern``.

    The pattern is validated here, before anything is loaded.
    """
    pattern = getattr(args, "date_pattern", None)
    if pattern is not None:
        from alise.dates import compile_date_pattern

        compile_date_pattern(pattern)
    return {"date_pattern": pattern}


def input_paths(args: argparse.Namespace, *positional) -> list[str]:
    """The DATA paths of a command: the positional ones given (None left out), then ``--files``."""
    paths = [str(p) for p in positional if p is not None]
    if getattr(args, "files", None):
        paths.append(str(args.files))
    return paths


def require_inputs(paths: list, first_positional: str | None = None, most: int | None = None) -> None:
    """Refuse a command line without any DATA path (``first_positional``: what the user typed first,
    named if it does not exist, as the readers would have), or with more than ``most``."""
    from pathlib import Path

    from alise.model import builtin as models
    from alise.errors import AliseError

    if most is not None and len(paths) > most:
        raise AliseError(f"{len(paths)} inputs ({', '.join(map(str, paths))}) where this command takes "
                         f"{'one' if most == 1 else most}: give the series as DATA or with --files, not both")
    if paths:
        return

    if first_positional is not None and not Path(first_positional).exists() and first_positional not in models.names():
        raise AliseError(f"{first_positional}: no such file or folder")
    raise AliseError("no input series: give a DATA path (site folder, .SAFE products, cube …) or --files LIST.csv")
