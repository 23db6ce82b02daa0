"""The model directory format: ``config.json`` + ``model.safetensors``, never pickles (docs/design.md §6).

Writing (:func:`save`), reading and checking (:func:`read_metadata`, :func:`check_state`) what
a directory holds, without building a model — :mod:`alise.model.io` builds models from it, and
:mod:`alise.weights` loads foreign weights through the same :func:`check_state`.

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
(docs/reliability.md); an intended edit is recorded with :func:`alise.model.io.reseal`.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from alise.dates import DATE_ORIGIN
from alise.errors import AliseError
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
    from alise._version import __version__

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


def check_state(tensors: dict, own: dict, where: str, keys: set[str] | None = None) -> None:
    """The strict check of a state dict before ``load_state_dict``: the same tensor names as
    ``own`` (or as ``keys``, a subset of it), the same shapes, float where ``own`` is float, every
    float value finite. ``where`` names the file or export in every :class:`AliseError`."""
    expected = set(own) if keys is None else set(keys)
    missing, unexpected = sorted(expected - tensors.keys()), sorted(tensors.keys() - expected)
    if missing or unexpected:
        raise AliseError(f"{where}: tensors do not match the configuration: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    for k, v in tensors.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise AliseError(f"{where}: tensor {k} has shape {tuple(v.shape)}, expected {tuple(own[k].shape)}")
        if v.is_floating_point() != own[k].is_floating_point():
            raise AliseError(f"{where}: tensor {k} has dtype {v.dtype}, expected {own[k].dtype}")
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise AliseError(f"{where}: tensor {k} holds non-finite values (NaN/inf); the model is unusable")
