"""``alise check PATH``: validate an input and print what the tool will see."""

from __future__ import annotations

import argparse

from alise.commands._inputs import add_input_arguments

HELP = "validate an input (folder of dates, PASTIS, cube) and summarise dates, clouds, grid, units"

DESCRIPTION = """\
Validate a Sentinel-2 time series and print a summary: layout, grid (CRS, size, resolution),
number of dates, first/last date and span, clear fraction per date (min/median/max, fully cloudy
dates), band order, value range per band, units and the +1000 offset of processing baseline 04.00,
labels (classes present, pixel counts) and warnings (SCL 11 'snow' that is probably cloud, SCL 7
on otherwise clear dates, nodata, a single date). Any problem that would make the data unusable
is reported on one line with exit code 2. A folder holding several series (e.g. the output of
'alise synth', a PASTIS root) is checked series by series.

example:
  alise check /path/to/worldcereal-flanders-2018
  alise check data/ --json > report.json
  alise check site/ --clear-scl 4,5,6,7 --start 2018-01-01
  alise check downloads/            # a folder of S2x_MSIL2A_*.SAFE products = one series
  alise check --files list.csv      # CSV with header path,date[,mask]
  alise check site/ --date-pattern '_(?P<day>[0-9]{2})(?P<month>[0-9]{2})(?P<year>[0-9]{4})[.]tif$'
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="*", help="site folder(s) (with s2/ or dated images), .SAFE products, a "
                        "LIST.csv, PASTIS root, .zarr/.nc cube, or a folder of those")
    parser.add_argument("--json", action="store_true", help="print a machine-readable JSON summary instead")
    parser.add_argument("--clear-scl", default=None, metavar="LIST",
                        help="Sen2Cor SCL classes counted as clear (default 4,5,6)")
    parser.add_argument("--start", default=None, metavar="DATE", help="ignore dates before DATE (YYYY-MM-DD)")
    parser.add_argument("--end", default=None, metavar="DATE", help="ignore dates after DATE (YYYY-MM-DD)")
    parser.add_argument("--offset", default="auto", metavar="DN",
                        help="DN subtracted from every date: 'auto' (detect baseline 04.00 offset, default) or a number")
    add_input_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from tqdm import tqdm

    from alise.commands._inputs import input_options, input_paths, require_inputs
    from alise.data import open_sources, parse_clear_scl
    from alise.data.checks import check_source, format_summary

    paths = input_paths(args, *args.path)
    require_inputs(paths)
    sources = open_sources(paths, clear_scl=parse_clear_scl(args.clear_scl), start=args.start, end=args.end,
                           offset=args.offset, **input_options(args))
    summaries = []
    with tqdm(total=sum(s.n_dates for s in sources), desc="check", unit="date", file=sys.stderr,
              disable=None, leave=False) as bar:
        for src in sources:
            summaries.append(check_source(src, bar))
    if args.json:
        print(json.dumps({"sources": summaries}, indent=2))
    else:
        print("\n\n".join(format_summary(s) for s in summaries))
        if len(summaries) > 1:
            print(f"\n{len(summaries)} series, {sum(s['n_dates'] for s in summaries)} dates in total")
    return 0
