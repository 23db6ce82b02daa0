"""``alise synth OUT``: write realistic synthetic Sentinel-2 time series in the folder layout."""

from __future__ import annotations

import argparse

HELP = "write realistic synthetic Sentinel-2 time series (parcels, crop phenology, rotations, clouds, labels, change)"

DESCRIPTION = """\
Write synthetic multi-year Sentinel-2 L2A image time series, one folder per site, in the same
layout as the shipped real data: s2/YYYY-MM-DD.tif (10 bands, uint16 reflectance x 10000),
scl/YYYY-MM-DD.tif (Sen2Cor SCL), labels/YYYY.tif + labels.tif + classes.csv (13 land-cover
classes, 8 of them crops), change/YYYY_YYYY.tif (1 = class changed between the two years).

Fields are Voronoi polygons with crop rotations and forest clear-cuts; reflectance mixes soil,
green and dry vegetation, water and built-up spectra following class-specific phenology;
acquisition dates are irregular (about every --revisit days, with gaps) and differ per site;
clouds are spatially correlated, with shadows displaced away from the sun, cirrus, and fully
cloudy dates. The same options and --seed give identical files. See docs/synthetic-data.md.

example:
  alise synth synthetic --sites 2 --size 64 --years 2018,2019 --seed 0
  alise synth big --sites 8 --size 256 --years 2018-2020 --cloudiness 0.5
  alise synth short --start 2019-03-01 --end 2019-10-31 --revisit 10 --overwrite
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", help="output folder (refused if it exists, unless --overwrite)")
    parser.add_argument("--size", type=int, default=64, help="tile height = width in 10 m pixels (default 64)")
    parser.add_argument("--sites", type=int, default=2, help="number of sites, each its own SITS (default 2)")
    parser.add_argument("--years", default=None, metavar="LIST",
                        help="label years, e.g. 2018,2019 or 2018-2020 (default 2018,2019); all their dates are simulated")
    parser.add_argument("--start", default=None, metavar="DATE", help="first day to simulate (YYYY-MM-DD); with --end, instead of --years")
    parser.add_argument("--end", default=None, metavar="DATE", help="last day to simulate (YYYY-MM-DD)")
    parser.add_argument("--cloudiness", type=float, default=0.3,
                        help="mean cloud fraction over all dates, 0 to 1 (default 0.3)")
    parser.add_argument("--revisit", type=int, default=5, help="nominal revisit in days (default 5, S2A+S2B)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; same seed, same files (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")


def parse_years(text: str | None) -> tuple[int, ...] | None:
    """``"2018,2019"`` or ``"2018-2020"`` → ``(2018, 2019[, 2020])``; None stays None."""
    from alise.errors import AliseError

    if text is None:
        return None
    years: list[int] = []
    try:
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                continue
            if "-" in part:
                a, b = (int(v) for v in part.split("-", 1))
                if b < a:
                    raise ValueError
                years.extend(range(a, b + 1))
            else:
                years.append(int(part))
    except ValueError:
        raise AliseError(f"--years {text!r}: expected years like 2018,2019 or a range like 2018-2020") from None
    if not years:
        raise AliseError(f"--years {text!r}: no year given")
    return tuple(sorted(set(years)))


def run(args: argparse.Namespace) -> int:
    import sys

    from alise.dates import parse_date
    from alise.synth import write_synthetic

    start = parse_date(args.start, "--start") if args.start else None
    end = parse_date(args.end, "--end") if args.end else None
    out = write_synthetic(args.out, size=args.size, sites=args.sites, years=parse_years(args.years), start=start,
                          end=end, cloudiness=args.cloudiness, revisit=args.revisit, seed=args.seed,
                          overwrite=args.overwrite, progress=True)
    print(f"wrote {args.sites} synthetic site(s) of {args.size}x{args.size} px to {out}", file=sys.stderr)
    return 0
