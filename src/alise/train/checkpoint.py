"""Checkpoints that survive SIGKILL, and the random state that makes a resumed run exact.

Three pieces, all used by :mod:`alise.train.run`:

* :class:`AtomicCheckpointIO` — a Lightning ``CheckpointIO`` plugin. A checkpoint is serialised
  in memory, written to a temporary file *beside* its destination, flushed and ``fsync``-ed, then
  renamed onto the final name (``os.replace`` is atomic on POSIX) and the directory is
  ``fsync``-ed. A kill at any moment leaves either the previous checkpoint or the complete new
  one, never a truncated file under a ``.ckpt`` name (Lightning's own ``_atomic_save`` goes
  through an fsspec transaction without ``fsync``).
* :func:`derive_seed` — every random draw of pre-training (data order, crops, date windows, views,
  dropout) is seeded by a pure function of ``(seed, epoch, step, rank, ...)``; resuming from any
  checkpoint therefore replays exactly the draws an uninterrupted run would have made.
* :func:`collect_rng_state` / :func:`restore_rng_state` — the global torch / numpy / Python
  generators are also stored in every checkpoint (belt and braces for code outside our control
  that draws from them between steps), as plain lists and tensors so that the checkpoint loads
  with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import io
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from alise.errors import AliseError
from alise.outputs import atomic_file

#: Where a run keeps its checkpoints, relative to the run folder.
CHECKPOINT_DIR = "checkpoints"
#: The checkpoint ``--resume`` continues from.
LAST = "last.ckpt"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint IO with temp-file + fsync + rename writes and safe (weights-only) loads."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)  # serialise first: the file is open only for the raw write
        with atomic_file(path, "wb") as f:
            f.write(buffer.getbuffer())

    def load_checkpoint(self, path, map_location: Any = lambda storage, loc: storage, weights_only: bool | None = None) -> dict[str, Any]:
        path = Path(path)
        if not path.is_file():
            raise AliseError(f"checkpoint {path} does not exist")
        # Our checkpoints hold only tensors and primitive containers: never unpickle code.
        try:
            return torch.load(path, map_location=map_location, weights_only=True)  # whatever the caller asks
        except (RuntimeError, EOFError, ValueError) as e:
            raise AliseError(f"checkpoint {path} cannot be read ({e.__class__.__name__}); delete it to resume from an earlier one") from None

    def remove_checkpoint(self, path) -> None:
        Path(path).unlink(missing_ok=True)


def derive_seed(seed: int, *keys: int) -> int:
    """A 63-bit seed that is a pure function of ``seed`` and the integer ``keys`` (epoch, step, ...).

    Uses numpy's ``SeedSequence`` (a hash designed for this), so nearby keys give unrelated streams.
    """
    words = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *[int(k) & 0xFFFFFFFF for k in keys]]).generate_state(2, dtype=np.uint32)
    return int((int(words[0]) << 31) ^ int(words[1])) & ((1 << 63) - 1)


def generator_for(seed: int, *keys: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with :func:`derive_seed` ``(seed, *keys)``."""
    g = torch.Generator()
    g.manual_seed(derive_seed(seed, *keys))
    return g


def seed_everything_for(seed: int, *keys: int) -> None:
    """Seed the global torch (CPU and CUDA), numpy and Python generators from ``(seed, *keys)``.

    Called before every training step so that dropout and anything else drawing from the global
    generators is a function of (seed, epoch, step, rank) only.
    """
    s = derive_seed(seed, *keys)
    torch.manual_seed(s)
    np.random.seed(s & 0xFFFFFFFF)
    random.seed(s)


def collect_rng_state() -> dict[str, Any]:
    """The state of the global torch / numpy / Python generators, as tensors and plain lists."""
    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": {"version": int(py_version), "internal": list(py_internal), "gauss": py_gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`collect_rng_state`."""
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def resume_checkpoint(run_dir: str | os.PathLike) -> Path:
    """The checkpoint ``--resume`` continues from (``RUN/checkpoints/last.ckpt``), or an AliseError."""
    path = Path(run_dir) / CHECKPOINT_DIR / LAST
    if not path.is_file():
        raise AliseError(
            f"--resume: no checkpoint {path}; the run stopped before its first epoch ended —"
            " start it again with --overwrite"
        )
    return path
