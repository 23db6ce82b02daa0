"""The MODEL argument of the commands that use a model: a directory, a built-in name, or nothing.

``alise encode DATA --out x`` and ``alise encode MODEL DATA --out x`` both work. The first
positional argument is the model when every data slot of the command is filled by the others,
when it names a built-in model or holds a ``config.json``; it is data (and the built-in default
model, :data:`alise.models.DEFAULT`, is used) when it is an input the readers recognise. Anything
else is handed to the model loader, whose message says what is wrong with it.
"""

from __future__ import annotations


def resolve_model_argument(model: str | None, data: list[str], max_data: int | None = None) -> tuple[str | None, list[str]]:
    """``(model directory or built-in name or None, data paths)`` from the positional arguments.

    ``max_data``: how many data paths the command takes at most (None: any number).
    """
    from pathlib import Path

    from alise import models

    if model is None:
        return None, list(data)
    every_slot_filled = max_data is not None and len(data) >= max_data
    if every_slot_filled or model in models.names() or (Path(model) / "config.json").is_file():
        return model, list(data)
    if _looks_like_data(Path(model)):
        return None, [model, *data]
    return model, list(data)


def _looks_like_data(p) -> bool:
    from alise.data.discover import _walk, detect_layout

    if not p.exists():
        return False
    if detect_layout(p) is not None:
        return True
    return p.is_dir() and next(iter(_walk(p, 3)), None) is not None
