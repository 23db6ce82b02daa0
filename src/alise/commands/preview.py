"""``alise preview EMB --out OUT.png|.tif``: an embedding raster seen as colours (PCA to RGB)."""

from __future__ import annotations

import argparse

from alise.plots import PCA_FIT_PIXELS as SAMPLE
from alise.plots import PICTURE_MAX_SIDE as MAX_SIZE

HELP = "picture of an embedding raster: its first 3 principal components as RGB (PNG, or a GeoTIFF for GIS)"
DESCRIPTION = f"""\
Paint an embedding written by 'alise encode' (COG .tif or .zarr; float32, float16 or int8) with
the first three principal components of its per-pixel features as red, green and blue, each
stretched 2-98 %. Parcels, roads and water should come out as regions of one colour; a tile grid
or stripes would be a bug.

The components are fitted once on a regular subsample of about --sample pixels, then every pixel
is painted block by block with that fit, so a raster of any size takes one block of memory.

OUT.png is a picture (decimated so that its longer side is at most --max-size px, transparent
where a pixel had no clear observation). OUT.tif is a 3-band uint8 RGB GeoTIFF at full resolution
on the embedding's grid, with overviews and a transparency mask, to lay over imagery in QGIS.
--query K colours one query's features only (queries are learned temporal prototypes: they can
show different seasons).

example:
  alise encode ../shared/data/worldcereal-flanders-2018 --out emb.tif
  alise preview emb.tif --out emb.png
  alise preview emb.tif --out emb-pca.tif --query 3

defaults: --max-size {MAX_SIZE}, --sample {SAMPLE}
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("embedding", metavar="EMB", help="embedding output of alise encode (.tif COG or .zarr)")
    p.add_argument("--out", required=True, metavar="OUT", help="OUT.png (picture) or OUT.tif (georeferenced RGB)")
    p.add_argument("--query", type=int, default=None, metavar="K", help="colour query K only (default: all queries)")
    p.add_argument("--max-size", type=int, default=MAX_SIZE, metavar="PX",
                   help=f"longest side of a PNG in pixels; larger rasters are decimated (default {MAX_SIZE})")
    p.add_argument("--sample", type=int, default=SAMPLE, metavar="N",
                   help=f"about how many pixels the components are fitted on (default {SAMPLE})")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from alise.encode.preview import pca_preview
    from alise.encode.readers import open_embedding

    emb = open_embedding(args.embedding)
    info = pca_preview(emb, args.out, query=args.query, max_size=args.max_size, sample=args.sample,
                       overwrite=args.overwrite, progress=not args.no_progress)
    h, w = info["size"]
    what = "every query" if args.query is None else f"query {args.query}"
    step = "" if info["step"] == 1 else f", every {info['step']}th pixel"
    explained = " / ".join(f"{100 * v:.1f}" for v in info["explained"])
    print(f"wrote {args.out} ({h}×{w} px{step}; PCA of {what}: components explain {explained} % of the variance; "
          f"{100 * info['clear_fraction']:.1f} % of pixels clear)")
    return 0
