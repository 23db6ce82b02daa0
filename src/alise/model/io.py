"""Models from model directories (:mod:`alise.model.directory`): :func:`load` a directory,
:func:`load_model` a directory or a built-in model by name, :func:`reseal` an intended edit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from alise.errors import AliseError
from alise.model.config import ALISEConfig
from alise.model.directory import (CHECKED_SECTIONS, CONFIG_FILE, WEIGHTS_FILE, _inside, _sha256, check_state,
                                   config_digest, read_metadata)
from alise.model.network import ALISE
from alise.normalise import NormStats
from alise.outputs import atomic_file

def load(directory: str | os.PathLike, map_location: str | torch.device = "cpu"):
    """Load an :class:`~alise.model.ALISE` from ``directory`` (in eval mode, on ``map_location``).

    Raises:
        AliseError: missing/truncated/tampered file, unknown config key, tensor name or shape
            mismatch, config.json edited after saving (``config_sha256``) — always naming the file.
    """
    return _load(directory, map_location, check_config=True)


def _check_config_digest(meta: dict, cfg_path: Path) -> None:
    recorded = meta.get("config_sha256")
    if recorded is None:
        return  # saved before the field existed
    if not isinstance(recorded, str) or len(recorded) != 64:
        raise AliseError(f"{cfg_path}: malformed \"config_sha256\" (expected 64 hexadecimal digits)")
    if config_digest(meta) != recorded.lower():
        raise AliseError(f"{cfg_path} was modified after saving (its {', '.join(CHECKED_SECTIONS)} sections no "
                         "longer match the recorded config_sha256): restore the original file, or, if the edit is "
                         f"intended, record it with alise.model.io.reseal('{cfg_path.parent}')")


def _load(directory: str | os.PathLike, map_location: str | torch.device, check_config: bool):
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    d = Path(directory)
    meta = read_metadata(d)
    cfg_path = d / CONFIG_FILE
    try:
        config = ALISEConfig.from_dict(meta["architecture"])
        norm = NormStats.from_dict(meta["normalisation"])
    except AliseError as e:
        raise AliseError(f"{cfg_path}: {e}") from None
    except TypeError as e:
        raise AliseError(f"{cfg_path}: malformed architecture ({e})") from None
    weights = _inside(d, WEIGHTS_FILE)
    expected = (meta.get("weights") or {}).get("sha256")
    if expected is not None and _sha256(weights) != expected:
        raise AliseError(f"{weights}: checksum mismatch — the file is truncated or was modified after saving")
    try:
        tensors = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise AliseError(f"{weights}: unreadable safetensors file ({e})") from None
    model = ALISE(config, norm)
    check_state(tensors, model.state_dict(), str(weights))
    model.load_state_dict(tensors, strict=True)
    min_clear = (meta.get("input") or {}).get("min_clear", 0.0)
    if not isinstance(min_clear, (int, float)) or not 0.0 <= float(min_clear) <= 1.0:
        raise AliseError(f"{cfg_path}: input.min_clear must be a number in [0, 1], got {min_clear!r}")
    model.input_min_clear = float(min_clear)
    if check_config:
        _check_config_digest(meta, cfg_path)
    return model.to(map_location).eval()


def reseal(directory: str | os.PathLike) -> Path:
    """Record the current content of ``directory/config.json`` in its ``config_sha256`` (after an
    intended edit, or to give a directory saved by an older alise the field); returns the path.

    The directory must otherwise load (the weights' checksum, every section, every tensor); only
    ``config.json`` is rewritten, atomically, its other keys and their order kept.
    """
    d = Path(directory)
    _load(d, "cpu", check_config=False)  # everything but the digest must hold
    path = _inside(d, CONFIG_FILE)
    meta = json.loads(path.read_text())
    meta["config_sha256"] = config_digest(meta)
    mode = path.stat().st_mode & 0o777
    with atomic_file(path.resolve(), "w") as f:
        f.write(json.dumps(meta, indent=2) + "\n")
    os.chmod(path.resolve(), mode)
    return path


def load_model(name_or_dir: str | os.PathLike | None = None, map_location: str | torch.device = "cpu"):
    """A model and what identifies it: ``(model, {"name", "path", "sha256", "builtin"})``.

    ``name_or_dir``: a model directory, the name of a built-in model (``alise models``), or None
    for the built-in default (:data:`alise.model.builtin.DEFAULT`).
    """
    from alise.model import builtin as models

    if name_or_dir is None or str(name_or_dir) in models.names():
        name = models.DEFAULT if name_or_dir is None else str(name_or_dir)
        d = models.path(name)
        meta = read_metadata(d)
        info = {"name": f"{name} (built-in, alise {meta.get('alise_version')})", "path": str(d), "builtin": True}
    else:
        d = Path(name_or_dir)
        meta = read_metadata(d)
        info = {"name": str(d), "path": str(d), "builtin": False}
    info["sha256"] = (meta.get("weights") or {}).get("sha256")
    return load(d, map_location), info
