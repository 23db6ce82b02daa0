"""``alise change``: unsupervised change map between two SITS of the same place ([P] Eq. 12, Table IV)."""

from __future__ import annotations

import argparse

from alise.commands._inputs import input_options, input_paths, require_inputs
from alise.commands._model import (add_raster_pass_arguments, check_min_clear,
                                   input_min_clear, raster_pass_options, resolve_model_argument)

HELP = "change map between two series of one place: embedding distance (Eq. 12) or gap-filling baseline"
DESCRIPTION = """\
Encode two series of the same place (e.g. two years) with the frozen encoder and write the change
score of every pixel, the mean squared difference of the two aligned embeddings over the
n_q*d_model features ([P] Eq. 12), as a float32 GeoTIFF on the input grid. --method gf uses the
gap-filling baseline instead (clear observations linearly interpolated on a 5-day day-of-year grid).

A and B are two site folders; or one multi-year folder with --years Y1,Y2 (each year's dates);
or one RotCrop sample (.pt) holding both years. With a change truth (--truth RASTER: 1 changed,
0 unchanged, 255 excluded; or the folder's change/Y1_Y2.tif, or the RotCrop labels) the ROC-AUC
goes to MAP-stem.metrics.json and the ROC curve to MAP-stem.roc.png, next to MAP (so several
maps can share a folder).

Whole rasters in bounded memory: each series is encoded tile by tile as 'alise encode' does,
into MAP.parts/ (resume state: a run that is stopped keeps its finished tiles, and the same
command run again encodes only the missing ones), then compared block by block; the GF baseline
reads both series window by window. Pixels without a clear observation in a series are NaN.

example:
  alise change my-model site_000 --years 2018,2019 --out change.tif
  alise change my-model site_2018 site_2019 --method gf --truth change.tif --out gf.tif
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", nargs="?", default=None,
                   help="model directory or built-in model name (default: the built-in model)")
    p.add_argument("a", metavar="A", nargs="?", default=None,
                   help="first series (folder), a multi-year folder with --years, or a RotCrop .pt (or --files LIST.csv)")
    p.add_argument("b", metavar="B", nargs="?", default=None, help="second series (folder)")
    p.add_argument("--out", required=True, metavar="MAP", help="output GeoTIFF (float32 change score)")
    p.add_argument("--method", default="alise", metavar="alise|gf", help="alise (Eq. 12, default) or gf")
    p.add_argument("--years", default=None, metavar="Y1,Y2", help="compare these two years of the folder A")
    p.add_argument("--truth", default=None, metavar="RASTER", help="change truth: 1 changed, 0 unchanged, 255 excluded")
    add_raster_pass_arguments(p, "existing outputs")


def run(args: argparse.Namespace) -> int:
    import json
    import sys
    from pathlib import Path

    from alise.downstream.change import METHODS, evaluate_change
    from alise.errors import AliseError
    from alise.outputs import check_output

    model_arg, rest = resolve_model_argument(args.model, input_paths(args, args.a, args.b), max_data=2)
    require_inputs(rest, args.model, most=2)
    check_min_clear(args)
    args.a, args.b = rest[0], (rest[1] if len(rest) > 1 else None)
    method = str(args.method).lower()
    if method not in METHODS:
        raise AliseError(f"unknown --method {args.method!r}: choose alise or gf")
    years = _years(args.years)
    if years is not None and args.b is not None:
        raise AliseError("give either two series A B, or one folder A with --years Y1,Y2, not both")
    out = Path(args.out)
    from alise.encode.writers import format_of

    if format_of(out) != "cog":
        raise AliseError(f"--out {out}: the change map is a GeoTIFF; name it {out.stem}.tif")
    check_output(out, args.overwrite)
    metrics_path, roc_path = sidecars(out)
    if args.truth is not None or years is not None or Path(args.a).suffix == ".pt":
        check_output(metrics_path, args.overwrite)
        check_output(roc_path, args.overwrite)
    if args.truth is not None and not Path(args.truth).is_file():
        raise AliseError(f"--truth {args.truth}: no such file")

    from alise.model.io import load_model

    model, info = load_model(model_arg)
    a, b, truth = _pair(args.a, args.b, years, **input_options(args))
    if not a.grid.overlays(b.grid):
        raise AliseError(f"{a.path} and {b.path} are not on the same grid ({a.grid.describe()} vs "
                         f"{b.grid.describe()}): resample one onto the other first")
    if args.truth is not None:
        truth = _read_truth(args.truth, a.grid)
    from alise.downstream import check_compatible

    check_compatible(model, [a, b])
    if method == "alise":
        from alise.data.subset import clear_dates

        mc = input_min_clear(args, model)
        a, b = clear_dates(a, mc), clear_dates(b, mc)

    model_text = f", model {info['name']}" if method == "alise" else ""
    name_a, name_b = (a.name, b.name) if years is None else (f"{a.name} {years[0]}", f"{b.name} {years[1]}")
    print(f"alise change: {method} on {name_a} ({a.n_dates} dates) vs {name_b} ({b.n_dates} dates)"
          f"{model_text}", file=sys.stderr)
    from alise.downstream import raster
    from alise.outputs import atomic_path

    g, work = a.grid, raster.work_dir(out)
    if method == "alise":
        opts = raster_pass_options(args, info["name"])
        za, zb = (raster.embed(model, s, work / f"{k}.zarr", opts) for k, s in (("a", a), ("b", b)))
        blocks = raster.change_blocks(za, zb, model.config.n_q, model.config.d_model, g.height, g.width)
    else:
        from alise.downstream.features import SITSStore

        blocks = raster.gf_change_blocks(SITSStore([a, b], model.norm), g.height, g.width,
                                         max(a.n_dates, b.n_dates), model.config.in_channels)
    with atomic_path(out) as tmp:
        score = raster.write_blocks(
            tmp, blocks, g, dtype="float32", nodata=float("nan"), descriptions=[f"change score ({method})"],
            tags={"method": method, "a": a.name, "b": b.name, "a_dates": _span(a), "b_dates": _span(b),
                  **({"ALISE_MODEL": info["name"], "ALISE_MODEL_SHA256": info["sha256"] or ""}
                     if method == "alise" else {})})
    raster.remove_work(work)
    if truth is not None:
        m = evaluate_change(score, truth)
        report = {"task": "change", "method": method, "model": info["name"] if method == "alise" else None,
                  "model_sha256": info["sha256"] if method == "alise" else None, "a": str(a.path), "b": str(b.path),
                  "a_name": a.name, "b_name": b.name, "auc": m["auc"], **{k: v for k, v in m.items() if k != "auc"}}
        from alise.outputs import atomic_file, atomic_path
        from alise.plots import plot_roc

        with atomic_file(metrics_path, "w") as f:
            f.write(json.dumps(report, indent=2) + "\n")
        with atomic_path(roc_path) as tmp:
            plot_roc({method.upper() if method == "gf" else "ALISE": (m["fpr"], m["tpr"], m["auc"])}, tmp)
        print(f"alise change: AUC {m['auc']:.4f} on {m['n_pixels']} pixels → {metrics_path}", file=sys.stderr)
    print(f"alise change: wrote {out}", file=sys.stderr)
    return 0


def _span(src) -> str:
    return f"{src.dates[0].isoformat()}/{src.dates[-1].isoformat()} ({src.n_dates} dates)"


def sidecars(out):
    """``MAP.tif`` → ``(MAP.metrics.json, MAP.roc.png)`` beside it: one pair per map."""
    return out.with_name(f"{out.stem}.metrics.json"), out.with_name(f"{out.stem}.roc.png")


def _years(text):
    from alise.errors import AliseError

    if text is None:
        return None
    parts = [t.strip() for t in str(text).split(",")]
    if len(parts) != 2 or not all(p.isdigit() and len(p) == 4 for p in parts) or parts[0] == parts[1]:
        raise AliseError(f"--years {text!r}: expected two different years, e.g. 2018,2019")
    return int(parts[0]), int(parts[1])


def _pair(a, b, years, date_pattern=None):
    """(source A, source B, truth or None) from the command-line inputs (``date_pattern``: ``--date-pattern``)."""
    from pathlib import Path

    from alise.data import open_source
    from alise.data.rotcrop import is_rotcrop, open_rotcrop
    from alise.errors import AliseError

    if is_rotcrop(Path(a)):
        if b is not None or years is not None:
            raise AliseError(f"{a} is a RotCrop sample holding both years: give it alone")
        pair = open_rotcrop(a)
        return pair.a, pair.b, pair.truth
    if years is not None:
        y1, y2 = years
        sa = open_source(a, start=f"{y1}-01-01", end=f"{y1}-12-31", date_pattern=date_pattern)
        sb = open_source(a, start=f"{y2}-01-01", end=f"{y2}-12-31", date_pattern=date_pattern)
        truth = sa.change_mask(y1, y2) if hasattr(sa, "change_mask") else None
        return sa, sb, truth
    if b is None:
        raise AliseError("give two series A B, one multi-year folder with --years Y1,Y2, or one RotCrop .pt sample")
    return open_source(a, date_pattern=date_pattern), open_source(b, date_pattern=date_pattern), None


def _read_truth(path, grid):
    import numpy as np

    from alise.data.folder import grid_of, open_raster
    from alise.errors import AliseError

    with open_raster(path, "change truth") as src:
        g = grid_of(src)
        t = src.read(1)
    if not g.overlays(grid):
        raise AliseError(f"--truth {path}: grid {g.describe()} differs from the series' grid {grid.describe()}")
    return np.asarray(t)
