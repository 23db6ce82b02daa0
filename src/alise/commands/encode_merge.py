"""``alise encode-merge OUT``: blend the tiles of a sharded ``alise encode`` into OUT."""

from __future__ import annotations

import argparse

HELP = "write the output of a sharded 'alise encode' once every shard has finished"
DESCRIPTION = """\
'alise encode ... --out OUT --shard I/N' run as N independent processes (a SLURM array, Dask or
Ray tasks) each encode their share of the tiles into OUT.parts/. When all have finished, this
command blends every tile into OUT (COG or zarr, as the shards were asked) and removes OUT.parts/.
The result is bit-identical to a single unsharded run. It refuses to run, listing the first missing
tile, while a shard is unfinished.

example:
  alise encode-merge emb.tif
  sbatch --dependency=afterok:$ARRAY_JOB_ID --wrap "alise encode-merge emb.zarr"
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", metavar="OUT", help="the --out given to the shards")
    parser.add_argument("--keep-parts", action="store_true", help="keep OUT.parts/ after merging")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT")


def run(args: argparse.Namespace) -> int:
    import sys

    from alise.encode.runner import merge

    out = merge(args.out, overwrite=args.overwrite, keep_parts=args.keep_parts, progress=not args.no_progress)
    print(f"wrote {out}", file=sys.stderr)
    return 0
