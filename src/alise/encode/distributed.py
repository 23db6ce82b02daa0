"""``alise encode --dask local:N | ADDRESS``: the tiles of one raster encoded on a Dask cluster.

The same pipeline as ``--shard I/N`` (:mod:`alise.encode.runner`), driven by a
``dask.distributed`` client instead of a batch scheduler:

1. this process writes the plan and the raster-wide GroupNorm statistics (``--prepare``);
2. the model is sent once to every worker (``Client.scatter(..., broadcast=True)``), then one task
   per shard (4 per worker, so that a slow or lost worker costs little) encodes its batches of
   tiles into ``OUT.parts/`` — tiles whose piece exists are skipped, so a run that was stopped
   resumes where it was, on any cluster;
3. this process merges the pieces into the output (bit-identical to a one-process run).

``local:N`` starts a ``LocalCluster`` of N worker processes (one thread each; torch uses
``threads`` threads per worker); any other value is the address of a running scheduler (e.g.
from dask-jobqueue on SLURM or dask-kubernetes). GPU workers: start them with
``--resources GPU=1`` and pass ``resources={"GPU": 1}``; each task then encodes on its worker's
device (``--device auto``).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from alise.errors import AliseError

#: Shard tasks per worker.
TASKS_PER_WORKER = 4


def parse_dask(text: str) -> tuple[str, int | str]:
    """``"local:4"`` → ``("local", 4)``; ``"tcp://host:8786"`` → ``("address", "tcp://host:8786")``."""
    t = str(text).strip()
    if t.startswith("local:"):
        n = t.removeprefix("local:")
        if not n.isdigit() or int(n) < 1:
            raise AliseError(f"--dask {text}: expected local:N with N ≥ 1 worker processes, or a scheduler address")
        return "local", int(n)
    if not t:
        raise AliseError("--dask: give local:N or a scheduler address such as tcp://host:8786")
    return "address", t


def _encode_shard(model, source, out: str, opts, threads: int) -> int:
    """Runs on a worker: encode the batches of shard ``opts.shard`` (finished tiles are skipped)."""
    import torch

    from alise.encode.runner import encode

    torch.set_num_threads(threads)
    return encode(model, source, out, opts).tiles_done


def encode_on_dask(model, source, out: str | Path, opts, target: str, *, threads: int = 1, resources=None,
                   client=None):
    """Encode ``source`` into ``out`` on a Dask cluster (module docstring).

    Returns ``{"out", "tiles_total", "tiles_done" (encoded by this run), "workers"}``."""
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise AliseError("--dask needs dask.distributed: pip install 'dask[distributed]'") from None
    from alise.encode.runner import encode, merge

    out = Path(out)
    own = client is None
    cluster = None
    if own:
        kind, value = parse_dask(target)
        if kind == "local":
            cluster = LocalCluster(n_workers=value, threads_per_worker=1, processes=True, dashboard_address=None)
            client = Client(cluster)
        else:
            try:
                client = Client(value, timeout=30)
            except OSError as e:
                raise AliseError(f"--dask {value}: cannot reach the scheduler ({e})") from None
    try:
        prep = encode(model, source, out, replace(opts, prepare_only=True, shard=(0, 1)))  # plan + statistics
        n_workers = max(1, len(client.scheduler_info()["workers"]))
        n = min(prep.tiles_total, TASKS_PER_WORKER * n_workers)
        shared = client.scatter(model, broadcast=True)  # once per worker, not per task
        futures = [client.submit(_encode_shard, shared, source, str(out), replace(opts, shard=(i, n), progress=False),
                                 threads, pure=False, resources=resources) for i in range(n)]
        bar = None
        if opts.progress:
            from tqdm import tqdm

            bar = tqdm(total=n, unit="shard", file=sys.stderr, desc=f"encode {out.name} on {n_workers} worker(s)")
        done = 0
        for f in as_completed(futures):
            done += f.result()
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        merge(out, overwrite=opts.overwrite, keep_parts=opts.keep_parts, progress=opts.progress)
        return {"out": out, "tiles_total": prep.tiles_total, "tiles_done": done, "workers": n_workers}
    finally:
        if own:
            client.close()
            if cluster is not None:
                cluster.close()
