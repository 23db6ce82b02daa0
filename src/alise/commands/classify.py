"""``alise classify EMB --head PROBE_DIR --out classes.tif``: a fitted linear probe over a whole embedding raster."""

from __future__ import annotations

import argparse

HELP = "class map of a whole embedding raster with the linear probe alise probe fitted (head.safetensors)"
DESCRIPTION = """\
Apply the linear head that 'alise probe --mode lp' fitted (PROBE_DIR/head.safetensors: the
feature standardisation, the weights, the classes seen in training) to every pixel of an
embedding written by 'alise encode' (COG .tif or .zarr; float32, float16 or int8): of the
labelled series itself, or of any other place or year encoded with the same model. Block by
block, so a raster of any size takes one block of memory.

Writes a GeoTIFF on the embedding's grid: class ids (uint8, or uint16 with 255 classes or more),
nodata 255 (65535) where a pixel had no clear observation; the class names and the head's model
are in its tags.

example:
  alise probe ../shared/data/worldcereal-flanders-2018 --out probe          # fits probe/head.safetensors
  alise encode ../shared/data/worldcereal-flanders-2018 --out emb.tif
  alise classify emb.tif --head probe --out classes.tif
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("embedding", metavar="EMB", help="embedding output of alise encode (.tif COG or .zarr)")
    p.add_argument("--head", required=True, metavar="PROBE_DIR",
                   help="output folder of alise probe --mode lp (or its head.safetensors)")
    p.add_argument("--out", required=True, metavar="OUT.tif", help="class map (GeoTIFF)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from alise.downstream.classify import classify_raster, load_head
    from alise.encode.readers import open_embedding

    head, meta = load_head(args.head)
    emb = open_embedding(args.embedding)
    names = meta["class_names"]
    tags = {"classes": ",".join(names), "ALISE_HEAD_MODEL": meta.get("model", ""),
            "ALISE_EMBEDDING_MODEL": str(emb.attrs.get("ALISE_MODEL", ""))}
    info = classify_raster(emb, head, args.out, tags=tags, overwrite=args.overwrite, progress=not args.no_progress)
    h, w = info["size"]
    total = max(1, h * w - info["nodata"])
    top = sorted(((n, i) for i, n in enumerate(info["counts"]) if n), reverse=True)[:5]
    shares = ", ".join(f"{names[i] if i < len(names) else i} {100 * n / total:.1f} %" for n, i in top)
    print(f"wrote {args.out} ({h}×{w} px, {info['nodata']} without a clear observation; {shares})")
    return 0
