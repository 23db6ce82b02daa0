"""Model directories: ``config.json`` + ``model.safetensors``, never pickles (DESIGN §6).

``config.json``::

    {"format": "alise-model", "format_version": 1, "alise_version": "0.1.0",
     "architecture": {...ALISEConfig.to_dict()...},
     "normalisation": {...NormStats.to_dict()...},
     "bands": ["B02", ...], "date_origin": "2014-03-03", "input": {"min_clear": 0.5},
     "weights": {"file": "model.safetensors", "sha256": "..."},
     "config_sha256": "..."}

``model.safetensors`` holds every parameter *and* buffer (BatchNorm running statistics). The
directory is written under a temporary name and renamed at the end, so a crash never leaves a
half model. Loading checks the weights' sha256, the config keys, every tensor name and shape, and
refuses files that are symlinks out of the directory; every problem is an :class:`AliseError`
naming the file.

``config_sha256`` is the sha256 of the canonical JSON (:func:`config_digest`) of the sections
that change what the weights compute — ``architecture``, ``normalisation``, ``bands``,
``date_origin`` and ``input`` — so that an edit of ``config.json`` after saving (a statistic, the
dropout, ``input.min_clear``) is refused on load instead of silently giving other embeddings.
It is checked after every other test (their messages are more specific); ``weights.sha256``
covers ``model.safetensors``. Directories saved before the field existed load unchecked. Like the
weights' checksum it protects against accidents, not against someone who rewrites both
(docs/reliability.md); an intended edit is recorded with :func:`reseal`.
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
from alise.outputs import atomic_dir, atomic_file, check_output

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


#: The sections of config.json that ``config_sha256`` covers (see the module docstring).
CHECKED_SECTIONS = ("architecture", "normalisation", "bands", "date_origin", "input")


def config_digest(meta: dict) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces) of the :data:`CHECKED_SECTIONS` of
    ``meta`` (a ``config.json`` dict); a missing section counts as ``null``."""
    covered = {k: meta.get(k) for k in CHECKED_SECTIONS}
    text = json.dumps(covered, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def model_metadata(model) -> dict:
    """The ``config.json`` content of ``model`` (without the weights' checksum), JSON types only
    (tuples as lists), with its ``config_sha256``."""
    from alise import __version__

    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "alise_version": __version__,
        "architecture": model.config.to_dict(),
        "normalisation": model.norm.to_dict(),
        "bands": list(model.norm.bands),
        "date_origin": DATE_ORIGIN.isoformat(),
        "input": {"min_clear": float(getattr(model, "input_min_clear", 0.0))},
    }
    meta = json.loads(json.dumps(meta))  # exactly what config.json will read back as
    meta["config_sha256"] = config_digest(meta)
    return meta


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
        digest = meta.pop("config_sha256")
        meta["weights"] = {"file": WEIGHTS_FILE, "sha256": _sha256(tmp / WEIGHTS_FILE)}
        meta["config_sha256"] = digest
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
                         f"intended, record it with alise.model_io.reseal('{cfg_path.parent}')")


def _load(directory: str | os.PathLike, map_location: str | torch.device, check_config: bool):
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
