"""``alise import-onnx``: bring the authors' published ONNX encoders into our model format."""

from __future__ import annotations

HELP = "import an ALISE-family ONNX encoder (authors' export) as an alise model directory"
DESCRIPTION = """\
Read the weights of an ONNX encoder exported from the ALISE authors' code (the MALICE Sentinel-2
export, or the paper's own encoder from its data record), undo the exporter's rewrites (folded
BatchNorm, split attention projections, transposed MatMul weights), infer the architecture variant
and write MODEL_DIR/config.json + model.safetensors, usable by every alise command.

No onnxruntime is needed. The decoder and latent projector are not part of an encoder export: they
are freshly initialised (so 'alise reconstruct' needs fine-tuning/pre-training first).

Normalisation: the export expects inputs normalised with the authors' statistics; by default the
paper's (docs/reference.md §1.2); give the authors' dataset_s2.csv with --stats to use another set.

Example:
  alise import-onnx ../shared/weights/alise/malice_s2.onnx --out models/malice-s2
  alise info models/malice-s2
"""


def add_arguments(p) -> None:
    p.add_argument("onnx", metavar="FILE.onnx", help="ONNX encoder with inputs sits, tpe, padd_mask")
    p.add_argument("--out", required=True, metavar="MODEL_DIR", help="model directory to write")
    p.add_argument("--stats", metavar="CSV", help="normalisation statistics CSV (rows med, qmin, qmax; one column per band)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing MODEL_DIR")


def run(args) -> int:
    from alise.outputs import check_output
    from alise.weights.published import import_onnx, read_stats_csv

    check_output(args.out, overwrite=args.overwrite)
    norm = read_stats_csv(args.stats) if args.stats else None
    model, facts = import_onnx(args.onnx, norm=norm)
    model.save(args.out, overwrite=args.overwrite)
    counts = model.param_counts()
    print(f"imported {facts['source']} ({facts['producer']}, opset {facts['opset']}) -> {args.out}")
    print(f"variant: {facts['variant']}")
    print(f"encoder parameters: {counts['encoder_total']:,}")
    return 0
