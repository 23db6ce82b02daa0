"""Model directories: ``config.json`` + ``model.safetensors``, never pickles (DESIGN §6).

``config.json``::

    {"format": "alise-model", "format_version": 1, "alise_version": "0.1.0",
     "architecture": {...ALISEConfig.to_dict()...},
     "normalisation": {...NormStats.to_dict()...},
     "bands": ["B02", ...], "date_origin": "2014-03-03",
     "weights": {"file": "model.safetensors", "sha256": "..."}}

``model.safetensors`` holds every parameter *and* buffer (BatchNorm running statistics). The
directory is written under a temporary name and renamed at the end, so a crash never leaves a
half model. Loading checks the weights' sha256, the config keys, every tensor name and shape, and
refuses files that are symlinks out of the directory; every problem is an :class:`AliseError`
naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from alise.config import ALISEConfig
from alise.dates import DATE_ORIGIN
from alise.errors import AliseError
from alise.normalise import NormStats
from alise.outputs import atomic_dir, check_output

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT = "alise-model"
FORMAT_VERSION = 1


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_metadata(model) -> dict:
    """The ``config.json`` content of ``model`` (without the weights' checksum)."""
    from alise import __version__

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "alise_version": __version__,
        "architecture": model.config.to_dict(),
        "normalisation": model.norm.to_dict(),
        "bands": list(model.norm.bands),
        "date_origin": DATE_ORIGIN.isoformat(),
        "input": {"min_clear": float(getattr(model, "input_min_clear", 0.0))},
    }


def save(model, directory: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``model`` (an :class:`~alise.model.ALISE`) to ``directory`` atomically; returns the path.

    Refuses an existing ``directory`` unless ``overwrite`` (then it is replaced only once the new
    one is complete).
    """
    from safetensors.torch import save_file

    dest = check_output(directory, overwrite)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    with atomic_dir(dest, overwrite=overwrite) as tmp:
        save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"format": FORMAT})
        meta = model_metadata(model)
        meta["weights"] = {"file": WEIGHTS_FILE, "sha256": _sha256(tmp / WEIGHTS_FILE)}
        (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        # Temporary files/dirs are private (0600/0700); a model is ordinary data: honour the umask.
        umask = os.umask(0)
        os.umask(umask)
        for name in (WEIGHTS_FILE, CONFIG_FILE):
            os.chmod(tmp / name, 0o666 & ~umask)
            with open(tmp / name, "rb+") as f:
                os.fsync(f.fileno())
        os.chmod(tmp, 0o777 & ~umask)
    return dest


def _inside(directory: Path, name: str) -> Path:
    """``directory/name``, refusing anything that resolves outside ``directory``."""
    path = directory / name
    if not path.is_file():
        raise AliseError(f"{path}: missing — {directory} is not an alise model directory "
                         f"(expected {CONFIG_FILE} and {WEIGHTS_FILE}; see 'alise pretrain' or 'alise import-onnx')")
    if not path.resolve().is_relative_to(directory.resolve()):
        raise AliseError(f"{path}: points outside the model directory {directory}; refusing to read it")
    return path


def read_metadata(directory: str | os.PathLike) -> dict:
    """Read and check ``directory/config.json`` (format, version, keys); returns the dict."""
    d = Path(directory)
    if not d.is_dir():
        raise AliseError(f"model directory {d} does not exist or is not a directory")
    path = _inside(d, CONFIG_FILE)
    try:
        meta = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise AliseError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise AliseError(f"{path}: not an alise model configuration (missing \"format\": \"{FORMAT}\")")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise AliseError(f"{path}: model format version {version!r} is newer than this alise supports "
                         f"({FORMAT_VERSION}); upgrade alise")
    for key in ("architecture", "normalisation"):
        if not isinstance(meta.get(key), dict):
            raise AliseError(f"{path}: missing or malformed \"{key}\" section")
    if meta.get("date_origin", DATE_ORIGIN.isoformat()) != DATE_ORIGIN.isoformat():
        raise AliseError(f"{path}: date origin {meta['date_origin']} differs from {DATE_ORIGIN}; unsupported")
    return meta


def load(directory: str | os.PathLike, map_location: str | torch.device = "cpu"):
    """Load an :class:`~alise.model.ALISE` from ``directory`` (in eval mode, on ``map_location``).

    Raises:
        AliseError: missing/truncated/tampered file, unknown config key, tensor name or shape
            mismatch — always naming the file.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from alise.model import ALISE

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
    own = model.state_dict()
    missing = sorted(own.keys() - tensors.keys())
    unexpected = sorted(tensors.keys() - own.keys())
    if missing or unexpected:
        raise AliseError(f"{weights}: tensors do not match the configuration in {CONFIG_FILE}: "
                         f"missing {missing[:5]}, unexpected {unexpected[:5]}")
    for k, v in tensors.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise AliseError(f"{weights}: tensor {k} has shape {tuple(v.shape)}, expected {tuple(own[k].shape)}")
        if v.is_floating_point() != own[k].is_floating_point():
            raise AliseError(f"{weights}: tensor {k} has dtype {v.dtype}, expected {own[k].dtype}")
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise AliseError(f"{weights}: tensor {k} holds non-finite values (NaN/inf); the model is unusable")
    model.load_state_dict(tensors, strict=True)
    min_clear = (meta.get("input") or {}).get("min_clear", 0.0)
    if not isinstance(min_clear, (int, float)) or not 0.0 <= float(min_clear) <= 1.0:
        raise AliseError(f"{cfg_path}: input.min_clear must be a number in [0, 1], got {min_clear!r}")
    model.input_min_clear = float(min_clear)
    return model.to(map_location).eval()


def load_model(name_or_dir: str | os.PathLike | None = None, map_location: str | torch.device = "cpu"):
    """A model and what identifies it: ``(model, {"name", "path", "sha256", "builtin"})``.

    ``name_or_dir``: a model directory, the name of a built-in model (``alise models``), or None
    for the built-in default (:data:`alise.models.DEFAULT`).
    """
    from alise import models

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
