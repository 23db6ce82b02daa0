"""``alise pretrain`` end to end: outputs, bad options, SIGKILL + --resume, DDP on CPU."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from alise.cli import main

from .conftest import TINY_ARGS

EPOCHS = 5


@pytest.fixture(scope="module")
def reference(flanders, tmp_path_factory) -> Path:
    """An uninterrupted tiny run (in-process): 5 epochs × 2 steps on the shipped real patch."""
    out = tmp_path_factory.mktemp("pretrain") / "run"
    assert main(["pretrain", str(flanders), "--out", str(out), *TINY_ARGS, "--max-epochs", str(EPOCHS)]) == 0
    return out


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def test_run_exports_model_curves_and_records(reference):
    from alise import load

    record = json.loads((reference / "run.json").read_text())
    job = json.loads((reference / "job.json").read_text())
    model = load(reference / "model")
    assert model.config.n_q == 4 and model.config.n_dates == 20
    assert model.norm.to_dict() == job["normalisation"] == record["normalisation"]
    assert record["overrides"]["d_model"] == 16 and record["job"]["seed"] == 0 and record["job"]["crop"] == 16
    assert record["steps_done"] == 2 * EPOCHS and record["epochs_done"] == EPOCHS
    assert set(record["versions"]) >= {"alise", "torch", "lightning"} and record["duration_s"] > 0
    base = record["baseline"]
    assert base["band_mean_rec"] > 0 and base["val_rec"] == record["best"]["val/rec"]
    assert record["selected_epoch"] == record["best"]["epoch"]
    assert "band's mean" in (reference / "README.md").read_text()
    assert (reference / "loss.png").stat().st_size > 1000
    header = (reference / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train/loss", "train/rec", "train/inv", "train/cov", "train/lr", "val/loss", "val/rec_baseline"} <= set(header)
    with open(reference / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    val = [float(r["val/rec"]) for r in rows if r["val/rec"]]
    train = [float(r["train/rec"]) for r in rows if r["train/rec"]]
    assert len(val) == EPOCHS and val[-1] < 0.85 * val[0]  # held-out reconstruction improves
    assert sum(train[-4:]) < 0.85 * sum(train[:4])
    ckpts = {p.name for p in (reference / "checkpoints").iterdir()}
    assert {"last.ckpt", "best.ckpt", f"epoch{EPOCHS - 1:04d}.ckpt"} <= ckpts and not any(".tmp" in c for c in ckpts)


def test_existing_run_is_refused_without_resume_or_overwrite(reference, flanders, capsys):
    assert main(["pretrain", str(flanders), "--out", str(reference), *TINY_ARGS]) == 2
    assert "--resume" in capsys.readouterr().err


@pytest.mark.parametrize("bad, message", [
    (["--set", "no_such_key=1"], "unknown model configuration key 'no_such_key'"),
    (["--set", "t_w=11"], "t_w (11) must be ≤ n_dates/2"),
    (["--set", "n_q=0"], "n_q must be > 0"),
    (["--crop", "12"], "must be a multiple of 8"),
    (["--precision", "64"], "invalid choice"),
])
def test_bad_options_fail_in_one_line_before_any_work(bad, message, flanders, tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) if bad[0] == "--precision" else _nothing():
        code = main(["pretrain", str(flanders), "--out", str(out), *TINY_ARGS, *bad])
        assert code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and (bad[0] == "--precision" or len(err.splitlines()) == 1)
    assert not out.exists()


def test_missing_data_path_is_a_one_line_error(tmp_path, capsys):
    assert main(["pretrain", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0]
    assert not (tmp_path / "run").exists()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _cli(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "alise.cli", "pretrain", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_sigkill_then_resume_ends_with_the_uninterrupted_weights(reference, flanders, tmp_path, cpu_env):
    out = tmp_path / "run"
    args = [str(flanders), "--out", str(out), *TINY_ARGS, "--max-epochs", str(EPOCHS)]
    proc = _cli(args, cpu_env)
    last = out / "checkpoints" / "last.ckpt"
    deadline = time.time() + 240
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed:\n" + proc.communicate()[0][-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = torch.load(last, weights_only=True)["global_step"]  # loads: never a torn file
    assert killed_at < 2 * EPOCHS

    resumed = _cli([*args, "--resume"], cpu_env)
    log = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0, log[-3000:]
    with open(out / "logs" / "version_1" / "metrics.csv", newline="") as f:
        steps = [int(row["step"]) for row in csv.DictReader(f)]
    assert min(steps) >= killed_at  # work before the checkpoint was not redone
    ref, got = _weights(reference), _weights(out)
    assert ref.keys() == got.keys()
    assert max((ref[k].double() - got[k].double()).abs().max().item() for k in ref) <= 1e-6
    assert json.loads((out / "run.json").read_text())["steps_done"] == 2 * EPOCHS


@pytest.mark.slow
def test_ddp_two_cpu_processes(flanders, tmp_path, cpu_env):
    out = tmp_path / "ddp"
    proc = _cli([str(flanders), "--out", str(out), *TINY_ARGS, "--max-epochs", "2", "--devices", "2",
                 "--strategy", "ddp", "--accelerator", "cpu"], cpu_env)
    log = proc.communicate(timeout=400)[0]
    assert proc.returncode == 0, log[-3000:]
    record = json.loads((out / "run.json").read_text())
    assert record["job"]["devices"] == 2
    assert record["steps_done"] == 2  # 4 samples per epoch / 2 processes / batch 2 = 1 step per epoch
    assert (out / "model" / "model.safetensors").is_file()
