"""``alise models``: the pre-trained models shipped inside the package."""

from __future__ import annotations

import argparse

HELP = "list the built-in pre-trained models (used when a command is given no MODEL)"
DESCRIPTION = """\
List the ALISE encoders shipped inside the package: name, version, sha256 of the weights and the
first line of the model card. Commands that take a MODEL (encode, probe, change, reconstruct)
use the default one when MODEL is omitted and say which model they used; a built-in model can
also be named instead of a directory (alise encode alise-s2-small DATA --out emb.tif), and
'alise info NAME' shows its configuration. Each model's card (training data, steps,
configuration, normalisation, measured results with their commands, licences) is
MODEL_CARD.md in the directory printed here.

example:
  alise models
  alise models --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable JSON")


def run(args: argparse.Namespace) -> int:
    import json

    from alise.model import builtin as models

    rows = [models.describe(n) for n in models.names()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no built-in model in this installation")
        return 0
    for r in rows:
        print(f"{r['name']}{'  (default)' if r['default'] else ''}")
        print(f"  {r['summary']}")
        print(f"  version {r['version']}, weights sha256 {r['sha256']}")
        print(f"  {r['path']}")
    return 0
