"""`alise compare` end to end on synthetic and real data (tiny configurations), and its errors."""

from __future__ import annotations

import json

import pytest

from alise.cli import main
from alise.compare import KINDS

from .conftest import TINY


def test_unknown_model_and_bad_model_dir_are_user_errors(synth_root, tmp_path, capsys):
    assert main(["compare", str(synth_root), "--models", "alise-lp,bert", "--out", str(tmp_path / "a")]) == 2
    assert "unknown model 'bert'" in capsys.readouterr().err
    assert main(["compare", str(synth_root), "--model-dir", "alise", "--out", str(tmp_path / "b")]) == 2
    assert "expected alise=DIR, alise=builtin or ubarn=DIR" in capsys.readouterr().err
    assert main(["compare", str(synth_root), "--epochs", "0", "--out", str(tmp_path / "c")]) == 2
    assert "--epochs must be > 0" in capsys.readouterr().err
    # Pre-training here needs an explicit budget: one step is timed, then a one-line refusal.
    assert main(["compare", str(synth_root), "--models", "alise-lp", "--set", *TINY, "--crop", "16",
                 "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "give --pretrain-steps N" in err[0] and "one step measured" in err[0]
    (tmp_path / "d").mkdir()
    assert main(["compare", str(synth_root), "--models", "gf-lp", "--out", str(tmp_path / "d")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert not any((tmp_path / n).exists() for n in "abce")


@pytest.mark.slow
def test_compare_every_model_on_synthetic_data(synth_root, tmp_path):
    out = tmp_path / "cmp"
    rc = main(["compare", str(synth_root), "--out", str(out), "--set", *TINY, "--crop", "16", "--pretrain-steps", "2",
               "--samples-per-epoch", "2", "--epochs", "1", "--min-steps-per-epoch", "2", "--repeats", "1"])
    assert rc == 0
    report = json.loads((out / "comparison.json").read_text())
    assert [m["kind"] for m in report["models"]] == list(KINDS)
    assert report["n_series"] == 2 and report["split"]["method"] == "spatial_block"
    for m in report["models"]:
        detail = json.loads((out / m["metrics_file"]).read_text())
        assert detail["trainable_parameters"] == m["trainable_parameters"] > 0
        assert 0.0 <= m["macro_f1"]["mean"] <= 1.0 and m["macro_f1"]["n"] == 1
        assert detail["runs"][0]["n_pixels"] > 0
        assert detail["runs"][0]["stopped"] in ("converged", "budget", "early_stop") and detail["runs"][0]["history"]
    by = {m["kind"]: m for m in report["models"]}
    k = report["num_classes"]
    assert by["alise-lp"]["trainable_parameters"] == 4 * 16 * k + k  # n_q·D → K
    assert by["presto-lp"]["trainable_parameters"] == 128 * k + k
    assert by["ubarn-fr"]["trainable_parameters"] == 16 + 3 * (16 * 16 + 16) + 16 * k + k
    assert by["alise-lp"]["pretraining"].startswith("pre-trained here for 2 steps")
    assert by["ubarn-fr"]["pretraining"].startswith("pre-trained here for 2 steps")
    assert by["utae"]["pretraining"] == "✗"
    assert (out / "pretrain" / "ubarn" / "model" / "ubarn.json").is_file()
    assert (out / "pretrain" / "alise" / "model" / "config.json").is_file()
    md = (out / "comparison.md").read_text()
    assert "| U-BARN^FR |" in md and "pre-trained here for 2 steps on" in md


@pytest.mark.slow
def test_compare_on_the_real_folder_with_a_given_ubarn(flanders, tmp_path):
    from alise.baselines.ubarn import UBARN
    from alise.model.config import ALISEConfig, parse_overrides

    UBARN(ALISEConfig().replace(**parse_overrides(TINY))).save(tmp_path / "ub")
    out = tmp_path / "cmp"
    rc = main(["compare", str(flanders), "--models", "ubarn-fr,presto-lp,gf-lp", "--model-dir", f"ubarn={tmp_path / 'ub'}",
               "--out", str(out), "--crop", "32", "--epochs", "1", "--block", "16", "--start", "2018-05-01",
               "--end", "2018-07-15", "--repeats", "1", "--steps", "300", "--patience-steps", "100"])
    assert rc == 0
    report = json.loads((out / "comparison.json").read_text())
    by = {m["kind"]: m for m in report["models"]}
    assert by["ubarn-fr"]["pretraining"] == f"given: {tmp_path / 'ub'}"
    assert not (out / "pretrain").exists()
    assert report["num_classes"] == 10 and report["ignore"] == [0]
    n_dates = len([d for d in (flanders / "s2").iterdir() if "2018-05-01" <= d.stem <= "2018-07-15"])
    assert by["ubarn-fr"]["details"]["features"].startswith(f"{n_dates} dates")
    assert by["gf-lp"]["details"]["features"].startswith("16 dates")  # 2018-05-01 + 0, 5, …, 75 days


def test_a_preset_sets_the_budget_and_options_given_win(synth_root, tmp_path):
    out = tmp_path / "cmp"
    rc = main(["compare", str(synth_root), "--models", "gf-lp,utae", "--preset", "tiny", "--epochs", "1",
               "--repeats", "1", "--out", str(out)])
    assert rc == 0
    report = json.loads((out / "comparison.json").read_text())
    assert report["preset"] == "tiny"
    proto = report["protocol"]
    assert (proto["crop"], proto["patience"], proto["min_steps_per_epoch"], proto["epochs"]) == (16, 1, 2, 1)
    assert proto["min_clear_from_scratch"] == 0.0
    assert "preset tiny" in (out / "comparison.md").read_text()
    assert main(["compare", str(synth_root), "--preset", "huge", "--out", str(tmp_path / "x")]) == 2
    assert main(["compare", str(synth_root), "--min-clear", "2", "--out", str(tmp_path / "y")]) == 2
