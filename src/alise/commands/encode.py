"""``alise encode MODEL PATH --out OUT``: a whole raster → its aligned-embedding raster."""

from __future__ import annotations

import argparse

from alise.commands._inputs import add_input_arguments, input_options, input_paths, require_inputs
from alise.commands._model import add_min_clear_argument, check_min_clear, input_min_clear, resolve_model_argument

INTERRUPTED_HINT = "rerun the same command to resume: finished tiles in OUT.parts/ are kept"
HELP = "encode a whole raster time series into a georeferenced embedding raster (COG or zarr)"
DESCRIPTION = """\
Encode every pixel of a Sentinel-2 time series (a folder of dates, a cube or a PASTIS patch) into
its aligned ALISE representation: n_q x d_model bands named q03_d17 (query 3, channel 17), on the
input's grid (CRS, transform), NaN where a pixel had no clear observation in the period. A COG
output gets a sidecar OUT-stem.n_clear.tif with the number of clear observations per pixel; a
zarr store holds it as the variable n_clear.

The raster is cut into overlapping tiles (--tile, --overlap, multiples of 8) whose outputs are
blended with a raised-cosine window, so seams vanish and memory depends on the tile, not on the
raster. The paper's UNet uses GroupNorm, which normalises by the statistics of the image it sees:
by default (--group-norm raster) those statistics are estimated once over the raster (on
--stats-windows windows) and shared by every tile, so the result does not depend on where tiles fall;
--group-norm tile normalises each tile by itself (the model's behaviour on a patch; visible seams).

Finished tiles are kept in OUT.parts/: rerunning the same command after an interruption does only
what is missing. --shard I/N splits the tiles between N independent processes or nodes sharing
OUT.parts/; run the command once with --prepare first (it writes the plan and the shared GroupNorm
statistics), then the shards, then 'alise encode-merge OUT' (see docs/encode.md). --dask local:N or
--dask ADDRESS runs the tiles on a Dask cluster and writes the output region by region (its zarr
chunks) as their tiles finish; a rerun skips the finished regions.

The output records the model (name, sha256, configuration digest), the alise version, the dates
and bands encoded, the input normalisation and the value layout as GeoTIFF tags (gdalinfo, rasterio
.tags()) or zarr attributes. The zarr store is zarr format 2 with embedding (query, feature, y, x):
xr.open_zarr(OUT) and GDAL (rasterio.open('ZARR:"OUT.zarr":/embedding')) both read it.

example:
  alise encode data/site_000 --out emb.tif                      # the built-in model
  alise encode runs/pretrain/model data/site_000 --out emb.tif
  alise encode model site --out emb.zarr --dtype float16 --start 2018-01-01 --end 2018-12-31
  alise encode model site --out emb.tif --dtype int8            # a quarter of the float32 size
  alise encode model site --out emb.tif --prepare     # once, then on 4 nodes:
  alise encode model site --out emb.tif --shard 0/4   # ... --shard 3/4, then: alise encode-merge emb.tif
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", nargs="?", default=None,
                        help="model directory (config.json + model.safetensors) or built-in model name "
                             "(alise models); default: the built-in model")
    parser.add_argument("path", metavar="PATH", nargs="?", default=None,
                        help="input series: site folder (s2/DATE.tif or dated images), .SAFE products, LIST.csv, "
                             "cube, PASTIS patch (or --files LIST.csv)")
    parser.add_argument("--out", required=True, help="output: a .tif/.tiff (COG) or a .zarr directory; the suffix picks the format")
    parser.add_argument("--tile", type=int, default=None,
                        help="tile size in pixels, a multiple of 8 (default 256, lowered for long series so that "
                             "a tile's features stay under 1 GiB: 192 for 100 dates, 128 for 256)")
    parser.add_argument("--overlap", type=int, default=32, help="overlap of neighbouring tiles in pixels (default 32)")
    parser.add_argument("--start", help="first date to use, YYYY-MM-DD (default: the first)")
    parser.add_argument("--end", help="last date to use, YYYY-MM-DD (default: the last)")
    parser.add_argument("--format", dest="fmt", choices=("cog", "zarr"), default=None,
                        help="output format; it follows OUT's suffix (.tif/.tiff: cog, .zarr: zarr), "
                             "this only checks it")
    parser.add_argument("--dtype", choices=("float32", "float16", "int8"), default="float32",
                        help="stored values: float32, float16 (half the size) or int8 (a quarter: quantised "
                             "with one scale and offset per band from its value range, nodata -128; COG: GDAL band "
                             "scale/offset; zarr: value = embedding * embedding_scale + embedding_offset)")
    add_min_clear_argument(parser)
    add_input_arguments(parser)
    parser.add_argument("--shard", default="0/1", metavar="I/N", help="do only shard I of N (0-based), then merge")
    parser.add_argument("--batch-tiles", type=int, default=1, metavar="K", help="tiles per model call (default 1)")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="model arithmetic")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto", help="where the model runs")
    parser.add_argument("--workers", type=int, default=1, metavar="N", help="reading threads (default 1)")
    parser.add_argument("--chunk-pixels", type=int, default=None, metavar="P",
                        help="pixel sequences per Transformer call (default: about 8k pixel·dates per call "
                             "on CPU, which keeps activations in cache; about 256 MB per activation on GPU)")
    parser.add_argument("--group-norm", choices=("raster", "tile"), default="raster",
                        help="GroupNorm statistics: estimated once over the raster and shared by every tile "
                             "(seamless, default) or each tile's own (the paper's per-patch behaviour)")
    parser.add_argument("--stats-windows", type=int, default=16, metavar="N",
                        help="64x64-px windows, spread over the raster, the shared GroupNorm statistics are "
                             "estimated on (default 16); a raster smaller than N windows is used whole")
    parser.add_argument("--dask", default=None, metavar="local:N|ADDRESS",
                        help="encode on a Dask cluster: local:N starts N worker processes, ADDRESS joins a running "
                             "scheduler (tcp://host:8786); the output is written region by region as tiles finish, and "
                             "a rerun skips the finished regions (docs/encode.md)")
    parser.add_argument("--prepare", action="store_true",
                        help="only write OUT.parts/ (plan and shared statistics); run once before --shard jobs")
    parser.add_argument("--keep-parts", action="store_true", help="keep OUT.parts/ after merging")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output or stale OUT.parts/")


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from alise.dates import parse_date
    from alise.encode.runner import EncodeOptions, encode, parse_shard, parts_dir

    out = Path(args.out)
    from alise.encode.writers import format_of

    fmt = format_of(out, args.fmt)
    start = parse_date(args.start, "--start") if args.start else None
    end = parse_date(args.end, "--end") if args.end else None
    if start and end and end < start:
        from alise.errors import AliseError

        raise AliseError(f"--end {end} is before --start {start}")
    opts = EncodeOptions(tile=args.tile, overlap=args.overlap, fmt=fmt, dtype=args.dtype,
                         batch_tiles=args.batch_tiles, precision=args.precision, device=args.device,
                         workers=args.workers, chunk_pixels=args.chunk_pixels, shard=parse_shard(args.shard),
                         group_norm=args.group_norm, stats_windows=args.stats_windows, prepare_only=args.prepare,
                         overwrite=args.overwrite, keep_parts=args.keep_parts,
                         progress=not args.no_progress).validate()

    from dataclasses import replace

    from alise.data import open_source
    from alise.model.io import load_model

    model_arg, rest = resolve_model_argument(args.model, input_paths(args, args.path), max_data=1)
    require_inputs(rest, args.model, most=1)
    check_min_clear(args)
    source = open_source(rest[0], start=start, end=end, **input_options(args))
    model, info = load_model(model_arg)
    from alise.data.subset import clear_dates

    source = clear_dates(source, input_min_clear(args, model))
    opts = replace(opts, model_name=info["name"])
    from alise.errors import AliseError

    if args.dask is not None:
        from alise.encode.distributed import encode_on_dask, parse_dask

        if opts.shard != (0, 1) or opts.prepare_only:
            raise AliseError("--dask runs every shard itself: leave out --shard and --prepare")
        parse_dask(args.dask)
        res = encode_on_dask(model, source, out, opts, args.dask, threads=max(1, args.workers))
        print(f"wrote {out} ({res['tiles_total']} tiles, {res['tiles_done']} encoded now; {res['regions_done']} of "
              f"{res['regions_total']} regions written now, on {res['workers']} Dask worker(s); {source.n_dates} dates, "
              f"model {info['name']})", file=sys.stderr)
        return 0
    try:
        report = encode(model, source, out, opts)
    except AliseError as e:
        parts = parts_dir(out)
        if not parts.is_dir():
            raise
        from alise.encode.groupstats import STATS_FILE

        if not any((parts / "tiles").glob("*.npy")) and not (parts / STATS_FILE).is_file():  # nothing worth keeping
            import shutil

            shutil.rmtree(parts, ignore_errors=True)
            raise
        raise AliseError(f"{e} — {out} was not written; the tiles finished so far are kept in {parts} (resume "
                         "state): fix the input and rerun the same command to resume, or delete that folder") from None
    if opts.prepare_only:
        print(f"prepared {parts_dir(out)} ({report.tiles_total} tiles): now run the same command with "
              f"--shard I/N instead of --prepare on every node, then: alise encode-merge {out}", file=sys.stderr)
    elif report.merged:
        print(f"wrote {out} ({report.tiles_total} tiles of {report.tile} px, {report.tiles_done} encoded now, "
              f"{source.n_dates} dates, {source.grid.height}×{source.grid.width} px, model {info['name']})",
              file=sys.stderr)
    else:
        i, n = opts.shard
        print(f"shard {i}/{n}: {report.tiles_done} tiles encoded into {parts_dir(out)}; once every shard "
              f"has finished run: alise encode-merge {out}", file=sys.stderr)
    return 0
