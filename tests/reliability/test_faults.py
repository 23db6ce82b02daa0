"""Faults during writes: a SIGKILL or a crash at any moment never leaves a corrupt file under a final name.

Every output of alise goes through :mod:`alise.outputs` (``atomic_file``, ``atomic_path``,
``atomic_dir``). Here a child process is killed with SIGKILL while it is half-way through a write
(it signals "half written" through a file, then waits to be killed), and in-process crashes are
simulated with exceptions. The kill-and-resume tests of ``encode`` live in
``tests/encode/test_cli.py`` (SIGKILL, rerun, bit-identical output) and
``tests/encode/test_runner.py`` (interruption, resume); they are not repeated here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from alise.outputs import atomic_dir, atomic_file, atomic_path

from .conftest import leftovers

CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from alise.outputs import atomic_dir, atomic_file, atomic_path
    kind, dest, ready = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    half = b"x" * 100_000

    def wait():
        ready.touch()
        time.sleep(120)  # killed here, half-way through the write

    if kind == "file":
        with atomic_file(dest) as f:
            f.write(half); f.flush(); wait(); f.write(half)
    elif kind == "path":
        with atomic_path(dest) as tmp:
            tmp.write_bytes(half); wait()
    else:
        with atomic_dir(dest, overwrite=True) as tmp:
            (tmp / "a.bin").write_bytes(half); wait(); (tmp / "b.bin").write_bytes(half)
""")


def _kill_mid_write(kind: str, dest: Path, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, kind, str(dest), str(ready)],
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ready.exists(), proc.stderr.read() if proc.poll() is not None else "child never got half-way"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


def _hidden_temps(parent: Path, keep: set[str]) -> list[str]:
    left = leftovers(parent, keep | {"ready"})
    assert all(n.startswith(".") for n in left), f"visible leftovers {left}"
    return left


@pytest.mark.parametrize("kind, name", [("file", "out.npy"), ("path", "out.tif"), ("dir", "out.zarr")])
@pytest.mark.parametrize("existing", [False, True], ids=["new", "replacing"])
def test_sigkill_mid_write_leaves_old_state_or_nothing(kind, name, existing, tmp_path):
    parent = tmp_path / "outputs"
    parent.mkdir()
    dest = parent / name
    if existing:
        if kind == "dir":
            dest.mkdir()
            (dest / "old.bin").write_bytes(b"old")
        else:
            dest.write_bytes(b"old")
    _kill_mid_write(kind, dest, tmp_path)
    if existing:  # the previous, complete version is untouched
        assert (dest / "old.bin" if kind == "dir" else dest).read_bytes() == b"old"
        assert kind != "dir" or os.listdir(dest) == ["old.bin"]
    else:
        assert not dest.exists()
    # what a kill leaves is only hidden temporaries (".out.npy.XXXX.tmp"), never a visible file
    left = _hidden_temps(parent, {name})
    assert left and all(n.startswith(f".{name}.") and n.endswith((".tmp", Path(name).suffix)) for n in left)


@pytest.mark.parametrize("kind", ["file", "path", "dir"])
def test_crash_inside_a_write_cleans_up(kind, tmp_path):
    dest = tmp_path / ("out" if kind == "dir" else "out.bin")

    class Crash(Exception):
        pass

    with pytest.raises(Crash):
        if kind == "file":
            with atomic_file(dest) as f:
                f.write(b"half")
                raise Crash
        elif kind == "path":
            with atomic_path(dest) as tmp:
                tmp.write_bytes(b"half")
                raise Crash
        else:
            with atomic_dir(dest) as tmp:
                (tmp / "a").write_bytes(b"half")
                raise Crash
    assert os.listdir(tmp_path) == []


def test_keyboard_interrupt_inside_a_write_cleans_up(tmp_path):
    dest = tmp_path / "out.bin"
    dest.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_file(dest) as f:
            f.write(b"new but incomplete")
            raise KeyboardInterrupt
    assert dest.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.bin"]


def test_successful_writes_are_complete_and_leave_nothing_else(tmp_path):
    with atomic_file(tmp_path / "a.bin") as f:
        f.write(b"a" * 10)
    with atomic_path(tmp_path / "b.tif") as p:
        p.write_bytes(b"b" * 10)
    with atomic_dir(tmp_path / "c") as d:
        (d / "x").write_bytes(b"c")
    (tmp_path / "d").mkdir()
    with atomic_dir(tmp_path / "d", overwrite=True) as d:
        (d / "y").write_bytes(b"d")
    assert sorted(os.listdir(tmp_path)) == ["a.bin", "b.tif", "c", "d"]
    assert os.listdir(tmp_path / "d") == ["y"]


def test_atomic_dir_refuses_an_output_that_appeared_meanwhile(tmp_path):
    """Another process created the output while we worked: it is kept, ours is discarded."""
    from alise.errors import AliseError

    dest = tmp_path / "out"
    with pytest.raises(AliseError, match="exists"):
        with atomic_dir(dest) as d:
            (d / "ours").write_bytes(b"1")
            dest.mkdir()
            (dest / "theirs").write_bytes(b"2")
    assert os.listdir(dest) == ["theirs"] and os.listdir(tmp_path) == ["out"]


@pytest.mark.slow
def test_sigkill_during_synth_leaves_no_output(tmp_path):
    """A real command killed while it builds its output directory: no half dataset under OUT."""
    out = tmp_path / "synth"
    proc = subprocess.Popen([sys.executable, "-m", "alise.cli", "synth", str(out), "--size", "64", "--sites", "6",
                             "--years", "2018"], env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    temp = None
    while proc.poll() is None and time.monotonic() < deadline:
        temp = next((p for p in tmp_path.iterdir() if p.name.startswith(".synth.")), None)
        if temp is not None and any(temp.rglob("*.tif")):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "synth finished before it could be killed"
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == [temp.name]  # only the hidden temporary remains
