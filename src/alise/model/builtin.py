"""Built-in models: pre-trained ALISE encoders shipped inside the package.

Each lives in ``alise/resources/models/<name>/`` as an ordinary model directory
(``config.json`` + ``model.safetensors``, :mod:`alise.model.io`) with a ``MODEL_CARD.md``
(training data, steps, configuration, normalisation, measured results and the commands that
measured them, licences). Commands that take a MODEL use :data:`DEFAULT` when none is given and
say which model they used; ``alise models`` lists them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from alise.errors import AliseError

#: Name of the model used when a command is given none.
DEFAULT = "alise-s2-small"
ROOT = Path(__file__).parents[1] / "resources" / "models"


def names() -> list[str]:
    """Names of the built-in models present in this installation (sorted)."""
    if not ROOT.is_dir():
        return []
    return sorted(p.name for p in ROOT.iterdir() if (p / "config.json").is_file())


def path(name: str = DEFAULT) -> Path:
    """Directory of built-in model ``name``."""
    if name not in names():
        have = ", ".join(names()) or "none"
        raise AliseError(f"no built-in model {name!r} (built-in models: {have}); give a model directory instead")
    return ROOT / name


def describe(name: str) -> dict:
    """``{"name", "path", "version", "sha256", "summary", "default"}`` of a built-in model."""
    d = path(name)
    meta = json.loads((d / "config.json").read_text())
    card = (d / "MODEL_CARD.md").read_text() if (d / "MODEL_CARD.md").is_file() else ""
    summary = next((line.strip() for line in card.splitlines()[1:] if line.strip()), "")
    return {"name": name, "path": str(d), "version": meta.get("model_version", meta.get("alise_version")),
            "sha256": (meta.get("weights") or {}).get("sha256"), "summary": summary, "default": name == DEFAULT}


def is_model_dir(p: str | os.PathLike) -> bool:
    """True if ``p`` looks like a model directory (a ``config.json`` of format ``alise-model``)."""
    cfg = Path(p) / "config.json"
    if not cfg.is_file():
        return False
    try:
        return json.loads(cfg.read_text()).get("format") == "alise-model"
    except (OSError, ValueError, AttributeError):
        return False
