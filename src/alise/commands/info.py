"""``alise info MODEL_DIR``: what a model directory holds."""

from __future__ import annotations

import argparse
import json

HELP = "show a model's configuration, per-block parameter counts and normalisation statistics"
DESCRIPTION = """\
Show what a model directory (config.json + model.safetensors) holds: the architecture
(paper names: d_model, n_q, t_w, ...), the number of parameters of every block (the paper's
configuration has a 1,110,336-parameter encoder) and the per-band normalisation statistics
(digital numbers, reflectance x 10000) that inputs must be normalised with.

The weights are verified (checksum, tensor names and shapes) as any command would load them.

example:
  alise info runs/pretrain/model
  alise info runs/pretrain/model --json > model-info.json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="model directory (config.json + model.safetensors) or "
                                                       "built-in model name (alise models)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON instead of text")


def run(args: argparse.Namespace) -> int:
    from alise.model import builtin as models
    from alise.model.directory import read_metadata
    from alise.model.io import load

    if args.model in models.names():
        args.model = str(models.path(args.model))
    meta = read_metadata(args.model)
    model = load(args.model)
    counts = model.param_counts()
    info = {
        "model": str(args.model),
        "format_version": meta.get("format_version"),
        "alise_version": meta.get("alise_version"),
        "date_origin": meta.get("date_origin"),
        "architecture": model.config.to_dict(),
        "parameters": counts,
        "normalisation": model.norm.to_dict(),
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"model        {args.model}")
    print(f"format       {info['format_version']} (written by alise {info['alise_version']}), "
          f"dates as days since {info['date_origin']}")
    print("\narchitecture")
    for k, v in info["architecture"].items():
        print(f"  {k:<16}{', '.join(map(str, v)) if isinstance(v, list) else v}")
    print("\nparameters")
    for k, v in counts.items():
        print(f"  {k:<18}{v:>12,}")
    norm = model.norm
    print("\nnormalisation (digital numbers): x' = (clip(x, q05, q95) - median) / (q95 - q05)")
    print(f"  {'band':<6}{'median':>10}{'q05':>10}{'q95':>10}")
    for band, med, lo, hi in zip(norm.bands, norm.median, norm.qmin, norm.qmax):
        print(f"  {band:<6}{med:>10g}{lo:>10g}{hi:>10g}")
    return 0
