"""``alise reconstruct``: cloud-free images at any dates from the decoder (gap-filling, [P] Eq. 8–9)."""

from __future__ import annotations

import argparse

from alise.commands._inputs import input_options, input_paths, require_inputs
from alise.commands._model import (add_raster_pass_arguments, check_min_clear,
                                   input_min_clear, raster_pass_options, resolve_model_argument)

HELP = "gap-filled (cloud-free) images at requested dates, decoded from the embedding"
DESCRIPTION = """\
Encode the series PATH (its dates at least --min-clear clear, as the model was trained) and decode
cloud-free reflectance at the requested dates with the model's decoder ([P] Eq. 8-9). Writes
OUT/s2/YYYY-MM-DD.tif in the input layout: 10 bands B02..B12, uint16 digital numbers (reflectance
x 10000), the input's grid. A target date outside the encoded dates is an extrapolation: it is
reported, and refused more than 366 days away from them.

Whole rasters in bounded memory: the series is encoded tile by tile as 'alise encode' does, into
OUT.parts/ (resume state: a run that is stopped keeps its finished tiles, and the same command
run again encodes only the missing ones), then decoded block by block. Pixels without any clear
observation in the encoded dates are nodata (0).

example:
  alise reconstruct my-model /data/worldcereal-flanders-2018 --dates 2018-05-01,2018-06-15 --out gapfilled
"""


#: Targets further than this from the first / last encoded date are refused.


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", nargs="?", default=None,
                   help="model directory or built-in model name (default: the built-in model)")
    p.add_argument("path", metavar="PATH", nargs="?", default=None,
                   help="the series to reconstruct (site folder, .SAFE products, LIST.csv, PASTIS patch, cube; "
                        "or --files LIST.csv)")
    p.add_argument("--dates", required=True, metavar="D1,D2,...", help="target dates, YYYY-MM-DD (comma-separated)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (gets s2/YYYY-MM-DD.tif)")
    p.add_argument("--start", default=None, metavar="DATE", help="first input date to encode")
    p.add_argument("--end", default=None, metavar="DATE", help="last input date to encode")
    add_raster_pass_arguments(p, "an existing OUT")


def run(args: argparse.Namespace) -> int:
    import sys

    from alise.dates import days_since_origin, parse_date
    from alise.errors import AliseError
    from alise.outputs import atomic_dir, check_output

    texts = [t.strip() for t in str(args.dates).split(",") if t.strip()]
    if not texts:
        raise AliseError("--dates is empty: give target dates like 2018-05-01,2018-06-15")
    dates = sorted({parse_date(t, where="--dates") for t in texts})

    model_arg, rest = resolve_model_argument(args.model, input_paths(args, args.path), max_data=1)
    require_inputs(rest, args.model, most=1)
    check_min_clear(args)
    from pathlib import Path

    if Path(args.out).suffix.lower() in (".tif", ".tiff", ".zarr", ".nc", ".npy"):
        raise AliseError(f"--out {args.out}: OUT is a folder that gets s2/YYYY-MM-DD.tif (the input layout); "
                         f"give a folder name such as {Path(args.out).stem}")
    check_output(args.out, args.overwrite)

    from alise.downstream import open_inputs
    from alise.model.io import load_model

    model, info = load_model(model_arg)
    sources = open_inputs(rest[0], start=args.start, end=args.end, model=model, **input_options(args))
    if len(sources) != 1:
        raise AliseError(f"{args.path} holds {len(sources)} series: give exactly one")
    from alise.data.subset import clear_dates

    mc = input_min_clear(args, model)
    src = clear_dates(sources[0], mc)
    from alise.downstream.reconstruct import extrapolation

    note = extrapolation(dates, src.dates, "--dates")
    if note:
        print(f"alise reconstruct: warning: {note}", file=sys.stderr)
    print(f"alise reconstruct: encoding {src.name} ({src.n_dates} dates, {src.grid.describe()}) with model "
          f"{info['name']}", file=sys.stderr)

    from contextlib import ExitStack

    from rasterio.windows import Window

    from alise.downstream.raster import embed, reconstruct_blocks, remove_work, work_dir
    from alise.downstream.reconstruct import to_uint16
    from alise.outputs import open_geotiff

    work = work_dir(args.out)
    store = embed(model, src, work / "embedding.zarr",
                  raster_pass_options(args, info["name"]))
    g = src.grid
    with atomic_dir(args.out, overwrite=args.overwrite) as tmp, ExitStack() as files:
        (tmp / "s2").mkdir()
        dst = [files.enter_context(open_geotiff(
            tmp / "s2" / f"{d.isoformat()}.tif", g.height, g.width, len(model.norm.bands), "uint16", g, nodata=0,
            descriptions=list(model.norm.bands),
            tags={"DATE": d.isoformat(), "SOURCE": "alise reconstruct (decoder)", "INPUT": src.name,
                  "ALISE_MODEL": info["name"], "ALISE_MODEL_SHA256": info["sha256"] or ""})) for d in dates]
        for r0, r1, dn in reconstruct_blocks(model, store, days_since_origin(dates), g.height, g.width):
            for f, img in zip(dst, dn):  # (C, rows, W) per target date
                f.write(to_uint16(img), window=Window(0, r0, g.width, r1 - r0))
    remove_work(work)
    print(f"alise reconstruct: wrote {len(dates)} image(s) to {args.out}/s2", file=sys.stderr)
    return 0
