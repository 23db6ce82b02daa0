"""The models of `alise compare`: parameter counts, U-BARN pre-training, adapters of the probe."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alise.baselines.ubarn import UBARN, is_ubarn_dir, load_ubarn, pretrain_ubarn
from alise.batch import SITSBatch
from alise.compare import human_count, trainable_parameter_counts
from alise.baselines import UBarnFeatureHead
from alise.compare.runners import REGISTRY, UBarnSegmenter, _UTAEForward, build_utae, gf_grid
from alise.model.config import ALISEConfig, parse_overrides
from alise.downstream.features import FeatureTable
from alise.downstream.heads import count_parameters
from alise.errors import AliseError

from .conftest import TINY

TINY_CFG = ALISEConfig().replace(**parse_overrides(TINY))

# [P] Table II, trainable parameters on PASTIS (K = 19).
PAPER = {"alise-lp": 12.2e3, "alise-ft": 1.1e6, "alise-fs": 1.1e6, "ubarn-fr": 13.8e3, "ubarn-ft": 1.1e6,
         "ubarn-fs": 1.1e6, "utae": 1.1e6, "presto-lp": 2.5e3}


def test_trainable_parameters_match_the_paper_for_19_classes():
    counts = trainable_parameter_counts(19)
    for kind, paper in PAPER.items():
        assert abs(counts[kind] - paper) / paper < 0.03, (kind, counts[kind], paper)
        assert human_count(counts[kind]) == human_count(paper)
    assert counts["alise-lp"] == 640 * 19 + 19 == 12_179
    assert counts["alise-ft"] == 1_110_336 + 12_179
    assert counts["ubarn-fr"] == 13_779
    assert counts["ubarn-ft"] == 1_007_552 + 100_416 + 13_779  # U-Net + Transformer + SC, no projector
    assert counts["utae"] == 1_086_969
    assert counts["presto-lp"] == 2_451
    assert counts["gf-lp"] == 73 * 10 * 19 + 19
    assert counts["median-lp"] == 12 * 10 * 19 + 19


def _batch(b=2, t=6, h=16, pad_last=2) -> SITSBatch:
    g = torch.Generator().manual_seed(0)
    valid = torch.ones(b, t, dtype=torch.bool)
    valid[-1, t - pad_last:] = False
    return SITSBatch(x=torch.randn(b, t, 10, h, h, generator=g) * valid[:, :, None, None, None],
                     days=torch.arange(t, dtype=torch.float32).repeat(b, 1) * 10 * valid,
                     valid_dates=valid, valid_pixels=valid[:, :, None, None].expand(b, t, h, h).clone())


def test_ubarn_corruption_masks_only_real_dates_and_keeps_one():
    model = UBARN(TINY_CFG, mask_ratio=0.5)
    batch = _batch()
    x, masked = model.corrupt(batch, torch.Generator().manual_seed(1))
    assert not (masked & ~batch.valid_dates).any()
    assert masked.sum(1).tolist() == [3, 2]  # round(0.5 · 6), round(0.5 · 4)
    assert (x[masked] == 0).all() and torch.equal(x[~masked], batch.x[~masked])
    one = _batch(b=1, t=2, pad_last=0)
    _, m = UBARN(TINY_CFG, mask_ratio=0.9).corrupt(one)
    assert m.sum() == 1  # at least one date is left to reconstruct from


def test_ubarn_loss_only_sees_corrupted_dates():
    torch.manual_seed(0)
    model = UBARN(TINY_CFG).eval()
    batch = _batch()
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    _, masked = model.corrupt(batch, g())
    loss = model.pretrain_step(batch, g())["loss"]
    x_in, _ = model.corrupt(batch, g())
    x_hat = model.reconstruct(x_in, batch.days, batch.valid_dates)
    from alise.model.losses import reconstruction_loss

    assert torch.allclose(loss, reconstruction_loss(batch.x, x_hat, batch.valid_pixels, masked))
    assert not torch.allclose(loss, reconstruction_loss(batch.x, x_hat, batch.valid_pixels, batch.valid_dates))


def test_ubarn_export_is_an_alise_directory(tmp_path):
    from alise.model.io import load

    model = UBARN(TINY_CFG, mask_ratio=0.4)
    with torch.no_grad():
        model.head.weight.add_(1.0)
    model.save(tmp_path / "ub", record={"steps": 3})
    assert is_ubarn_dir(tmp_path / "ub") and (tmp_path / "ub" / "model.safetensors").is_file()
    back = load_ubarn(tmp_path / "ub")
    assert back.mask_ratio == 0.4 and torch.equal(back.head.weight, model.head.weight)
    batch = _batch()
    model.eval()
    assert torch.allclose(back.sste(batch.x, batch.days, batch.valid_dates),
                          model.sste(batch.x, batch.days, batch.valid_dates), atol=1e-6)
    plain = load(tmp_path / "ub")  # an ordinary ALISE directory too
    plain.save(tmp_path / "plain")
    with pytest.raises(AliseError, match="not a U-BARN"):
        load_ubarn(tmp_path / "plain")


def test_ubarn_pretraining_reduces_the_loss_and_keeps_the_best(synth_root):
    from alise.data import open_sources, sample_clear_pixels
    from alise.normalise import NormStats

    sources = open_sources(synth_root)
    norm = NormStats.from_samples(sample_clear_pixels(sources, 5000, 0))
    model, rec = pretrain_ubarn(sources, norm, TINY_CFG, steps=12, crop=16, samples_per_epoch=4, lr=3e-3)
    vals = [h["val_loss"] for h in rec["history"] if "val_loss" in h]
    assert rec["steps"] == 12 and len(vals) == rec["epochs"] == 6
    assert rec["best_val_loss"] == min(vals) < vals[0]
    assert not model.training


def test_shallow_head_on_cached_features_ignores_padding():
    torch.manual_seed(0)
    d, k, t = 8, 5, 4
    head = UBarnFeatureHead(d, k).eval()
    feats = torch.randn(3, t, d)  # 3 pixels, 4 real dates
    short = torch.cat([torch.ones(3, t, 1), feats], -1).flatten(1)  # (N, T·(1+D)), flag 1 = real date
    garbage = torch.cat([torch.zeros(3, 2, 1), 100 * torch.randn(3, 2, d)], -1).flatten(1)  # 2 padded dates
    padded = torch.cat([short, garbage], 1)
    assert torch.allclose(head.forward_flat(short), head.forward_flat(padded), atol=1e-6)
    img = padded.T.reshape(1, -1, 3, 1)  # the same pixels as a (1, F, 3, 1) map
    assert torch.allclose(head(img)[0, :, :, 0].T, head.forward_flat(padded), atol=1e-6)
    assert count_parameters(head) == d + 3 * (d * d + d) + d * k + k


def test_shallow_head_standardises_real_dates_only():
    torch.manual_seed(0)
    head = UBarnFeatureHead(4, 3)
    feats = 5 + 2 * torch.randn(50, 3, 4)
    flags = torch.ones(50, 3, 1)
    flags[:, 2] = 0
    feats[:, 2] = 1000.0  # padding: must not enter the statistics
    head.fit_standardisation(torch.cat([flags, feats], -1).flatten(1))
    real = feats[:, :2].reshape(-1, 4)
    assert torch.allclose(head.mean, real.mean(0), atol=1e-5) and torch.allclose(head.scale, real.std(0, unbiased=False), atol=1e-5)


@pytest.mark.parametrize("make", [lambda: _UTAEForward(build_utae(TINY_CFG, 7)),
                                  lambda: UBarnSegmenter(UBARN(TINY_CFG), 7)])
def test_end_to_end_networks_give_per_pixel_logits_from_real_dates_only(make):
    torch.manual_seed(0)
    net = make().eval()
    batch = _batch()
    y = net(batch.x, batch.days, batch.valid_dates)
    assert y.shape == (2, 7, 16, 16)
    trainable = {id(p) for p in (net.trainable_parameters() if hasattr(net, "trainable_parameters") else net.parameters())}
    y.square().mean().backward()
    reached = {id(p) for p in net.parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert reached <= trainable and len(reached) > 0
    # only real dates matter: garbage at padded dates changes nothing
    x2 = batch.x.clone()
    x2[~batch.valid_dates] = 7.0
    assert torch.allclose(net(x2, batch.days, batch.valid_dates), y, atol=1e-5)


def test_every_registry_entry_builds_parts_its_mode_can_train(synth_root):
    """One entry per kind: frozen kinds give features + head, the others a network + its store."""
    from alise.commands.probe import build_runs
    from alise.compare.runners import Task
    from alise.data import open_sources, sample_clear_pixels
    from alise.downstream.probe import LabelSpace, ProbeConfig
    from alise.model.network import ALISE
    from alise.normalise import NormStats

    sources = open_sources(synth_root)
    norm = NormStats.from_samples(sample_clear_pixels(sources, 5000, 0))
    labels = LabelSpace.read(sources)
    task = Task(sources, labels, build_runs(sources, "blocks", block=8), ProbeConfig(), norm, TINY_CFG,
                alise=ALISE(TINY_CFG, norm), ubarn=UBARN(TINY_CFG, norm))
    for name, entry in REGISTRY.items():
        if name == "presto-lp":
            continue  # needs 10-band composites of real size; covered by tests/baselines/test_baseline_presto.py
        parts = entry.build(task)
        assert parts.frozen == (entry.mode == "lp"), name
        if parts.frozen:
            f = parts.features.get(0)
            assert f.shape[1:] == (sources[0].grid.height, sources[0].grid.width)
            pixels = torch.from_numpy(np.asarray(f[:, 0, :3], dtype=np.float32)).T  # 3 pixels (3, F)
            assert parts.head.forward_flat(pixels).shape == (3, labels.num_classes)


def test_feature_table_computes_each_source_once():
    calls = []

    def fn(i):
        calls.append(i)
        return np.arange(2 * 4 * 5, dtype=np.float64).reshape(2, 4, 5) + i

    table = FeatureTable(fn)
    w = table.window(1, (1, 2, 2, 3))
    assert w.dtype == torch.float32 and w.shape == (2, 2, 3) and float(w[0, 0, 0]) == 1 * 5 + 2 + 1
    table.window(1, (0, 0, 4, 5))
    assert calls == [1] and table.n_encoded == 1


def test_gf_grid_spans_the_data_every_five_days(synth_root):
    from alise.data import open_sources

    sources = open_sources(synth_root)
    grid = gf_grid(sources)
    assert np.allclose(np.diff(grid), 5.0)
    assert grid[0] == min(s.days[0] for s in sources) and grid[-1] <= max(s.days[-1] for s in sources) < grid[-1] + 5


def test_each_kind_reads_the_dates_it_was_trained_for(synth_root):
    """Pre-trained models read their model's clear dates (U-BARN FR features hold only those);
    models trained from scratch read the task's ``min_clear`` dates."""
    from alise.commands.probe import build_runs
    from alise.compare.runners import Task, ubarn_features
    from alise.data import open_sources, sample_clear_pixels
    from alise.downstream.probe import LabelSpace, ProbeConfig
    from alise.normalise import NormStats

    sources = open_sources(synth_root)
    norm = NormStats.from_samples(sample_clear_pixels(sources, 5000, 0))
    ub = UBARN(TINY_CFG, norm)
    ub.alise.input_min_clear = 0.9
    task = Task(sources, LabelSpace.read(sources), build_runs(sources, "blocks", block=8), ProbeConfig(), norm,
                TINY_CFG, ubarn=ub, min_clear=0.7)
    n_all = [s.n_dates for s in sources]
    n09 = [task.store(norm).clear_dates(0.9).n_dates(i) for i in range(len(sources))]
    n07 = [task.store(norm).clear_dates(0.7).n_dates(i) for i in range(len(sources))]
    assert max(n09) < max(n_all) and n07 != n_all  # the synthetic sites have cloudy dates
    fn, t_max = ubarn_features(ub, task.store(norm))
    assert t_max == max(n09) and fn(0).shape[0] == t_max * (1 + TINY_CFG.d_model)
    assert REGISTRY["ubarn-ft"].build(task).store.n_dates(0) == n09[0]
    assert REGISTRY["ubarn-fs"].build(task).store.n_dates(0) == n07[0]
    assert REGISTRY["utae"].build(task).store.n_dates(0) == n07[0]
