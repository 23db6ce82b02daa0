"""The MODEL argument of the commands that use a model: a directory, a built-in name, or nothing.

``alise encode DATA --out x`` and ``alise encode MODEL DATA --out x`` both work. The first
positional argument is the model when every data slot of the command is filled by the others,
when it names a built-in model or holds a ``config.json``; it is data (and the built-in default
model, :data:`alise.model.builtin.DEFAULT`, is used) when it is an input the readers recognise. Anything
else is handed to the model loader, whose message says what is wrong with it.
"""

from __future__ import annotations


def resolve_model_argument(model: str | None, data: list[str], max_data: int | None = None) -> tuple[str | None, list[str]]:
    """``(model directory or built-in name or None, data paths)`` from the positional arguments.

    ``max_data``: how many data paths the command takes at most (None: any number).
    """
    from pathlib import Path

    from alise.model import builtin as models

    if model is None:
        return None, list(data)
    every_slot_filled = max_data is not None and len(data) >= max_data
    if every_slot_filled or model in models.names() or (Path(model) / "config.json").is_file():
        return model, list(data)
    if _looks_like_data(Path(model)):
        return None, [model, *data]
    return model, list(data)


def add_min_clear_argument(parser) -> None:
    """``--min-clear F`` of the commands that feed a model (encode, probe, change, reconstruct)."""
    parser.add_argument("--min-clear", type=float, default=None, metavar="F",
                        help="leave out dates whose clear fraction over the input is below F (default: the model's "
                             "own, the filter of its pre-training data, 0.5 for the built-in model; 0 = every date)")


def check_min_clear(args) -> None:
    """Refuse a ``--min-clear`` outside [0, 1] (before anything is loaded)."""
    from alise.errors import AliseError

    if args.min_clear is not None and not 0.0 <= args.min_clear <= 1.0:
        raise AliseError(f"--min-clear must be in [0, 1] (got {args.min_clear})")


def input_min_clear(args, model) -> float:
    """The clear fraction below which dates are left out: ``--min-clear``, else the model's own."""
    check_min_clear(args)
    return model.input_min_clear if args.min_clear is None else args.min_clear


def _looks_like_data(p) -> bool:
    from alise.data.discover import _walk, detect_layout
    from alise.data.hints import misplaced

    if not p.exists():
        return False
    if detect_layout(p) is not None or misplaced(p, detect_layout) is not None:  # data, or inside data (its hint is shown)
        return True
    return p.is_dir() and next(iter(_walk(p, 3)), None) is not None


def add_raster_pass_arguments(parser, replaced: str) -> None:
    """The options reconstruct and change share: ``--min-clear``, the input options (``--files``,
    ``--date-pattern`` …), ``--overwrite`` (replacing ``replaced`` and stale resume state), and
    ``--tile``, ``--overlap``, ``--no-progress`` of their tiled encoding pass (:mod:`alise.downstream.raster`)."""
    from alise.commands._inputs import add_input_arguments

    add_min_clear_argument(parser)
    add_input_arguments(parser)
    parser.add_argument("--overwrite", action="store_true", help=f"replace {replaced} (and stale resume state)")
    parser.add_argument("--tile", type=int, default=None,
                        help="tile side of the encoding pass, px (default: as alise encode)")
    parser.add_argument("--overlap", type=int, default=32, help="tile overlap of the encoding pass, px (32)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def raster_pass_options(args, model_name: str):
    """The validated :class:`~alise.encode.EncodeOptions` of :func:`add_raster_pass_arguments`."""
    from alise.encode import EncodeOptions

    return EncodeOptions(model_name=model_name, overwrite=args.overwrite, progress=not args.no_progress,
                         tile=args.tile, overlap=args.overlap).validate()
