"""The Python API: ``model.encode`` takes numpy or torch and records no graph in eval mode, warns
once about digital numbers and day-of-year dates, and ``alise.encode_array`` goes from digital
numbers and dates to what ``alise encode`` writes."""

from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import pytest
import rasterio
import torch

import alise
import alise.model.network as alise_model
from alise.cli import main
from alise.errors import AliseError, AliseInputWarning
from alise.model.network import ALISE
from tests.fakes import tiny_config

TINY = tiny_config(n_layers=3, n_q=2, proj_d_k=4, d_emb=8, d_proj_hidden=8)


def tiny(seed: int = 0) -> ALISE:
    torch.manual_seed(seed)
    return ALISE(TINY).eval()


def inputs(b: int = 2, t: int = 4, hw: int = 16, seed: int = 0):
    """Normalised ``x (B, T, 10, hw, hw)`` and days since 2014-03-03 ``(B, T)`` (2018 dates), numpy."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-0.5, 0.5, (b, t, 10, hw, hw)).astype(np.float32)
    days = np.sort(rng.integers(1400, 1760, (b, t)), axis=1).astype(np.float32)
    return x, days


@pytest.fixture
def fresh_warnings(monkeypatch):
    """Forget which warnings this process already issued; record every warning."""
    monkeypatch.setattr(alise_model, "_WARNED", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def _ours(caught) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, AliseInputWarning)]


# ------------------------------------------------------------------------------ numpy / torch, defaults
def test_numpy_in_gives_the_torch_result_and_valid_dates_default_to_all():
    model = tiny()
    x, days = inputs()
    ref = model.encode(torch.from_numpy(x), torch.from_numpy(days), torch.ones(2, 4, dtype=torch.bool))
    y = model.encode(x, days)  # numpy, float32 tensors on the model's device, every date valid
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float32 and y.shape == (2, 2, 16, 16, 16)
    assert torch.equal(y, ref)
    # float64 / integer numpy, days as a list, (T,) days shared by the series
    one = model.encode(x[:1].astype(np.float64), days[0].tolist(), np.ones(4, bool))
    torch.testing.assert_close(one, ref[:1])
    assert torch.equal(model.sste(x, days), model.sste(torch.from_numpy(x), torch.from_numpy(days)))
    y_hat = model.decode(y.numpy(), days[0])
    assert isinstance(y_hat, torch.Tensor) and y_hat.shape == (2, 4, 10, 16, 16) and not y_hat.requires_grad
    torch.testing.assert_close(y_hat, model.decode(y, torch.from_numpy(days[0]).expand(2, 4)))


def test_integer_digital_numbers_are_accepted_as_float():
    model = tiny()
    dn = np.random.default_rng(1).integers(300, 4000, (1, 3, 10, 16, 16)).astype(np.uint16)
    days = np.array([1500.0, 1510.0, 1520.0])
    x = model.norm.apply(dn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AliseInputWarning)
        assert torch.equal(model.encode(torch.from_numpy(dn.astype(np.int64)), days), model.encode(dn, days))
    assert model.encode(x, days).shape == (1, 2, 16, 16, 16)


# ------------------------------------------------------------------------------ autograd
def test_eval_mode_records_no_graph_by_default():
    model = tiny()
    x, days = inputs()
    assert all(p.requires_grad for p in model.parameters())
    y = model.encode(x, days)
    assert not y.requires_grad and y.grad_fn is None
    assert not model.decode(y, days).requires_grad
    # the result is an ordinary tensor (not an inference tensor): it can train a head
    head = torch.nn.Linear(16, 3)
    head(y.movedim(2, -1)).sum().backward()
    assert head.weight.grad is not None
    # grad=True: PyTorch's grad mode decides (fine-tuning an encoder kept in eval mode)
    y = model.encode(x, days, grad=True)
    assert y.requires_grad
    y.square().mean().backward()
    assert all(p.grad is not None for p in model.unet.parameters())
    with torch.no_grad():
        assert not model.encode(x, days, grad=True).requires_grad
    # an input that requires grad: gradients reach it (saliency) in eval mode too
    xt = torch.from_numpy(x).requires_grad_()
    model.encode(xt, days).sum().backward()
    assert xt.grad is not None and xt.grad.abs().sum() > 0
    # sste, the building block fine-tuned networks (U-BARN) call in eval mode, follows grad mode
    assert model.sste(x, days).requires_grad and not model.sste(x, days, grad=False).requires_grad


def test_train_mode_trains_through_encode_and_grad_false_never_records():
    model = tiny().train()
    x, days = inputs()
    y = model.encode(x, days)
    assert y.requires_grad
    y.square().mean().backward()
    enc = [n for n, p in model.named_parameters() if n.startswith(("unet.", "transformer.", "projector."))]
    grads = dict(model.named_parameters())
    assert all(grads[n].grad is not None for n in enc)
    assert not model.encode(x, days, grad=False).requires_grad


def test_fine_tuning_a_segmentation_model_still_gets_gradients():
    from alise.downstream.heads import LinearProbe, SegmentationModel

    net = SegmentationModel(tiny(), LinearProbe(TINY.n_q, TINY.d_model, 4)).train()
    x, days = inputs()
    logits = net(torch.from_numpy(x), torch.from_numpy(days), torch.ones(2, 4, dtype=torch.bool))
    logits.logsumexp(1).mean().backward()
    assert all(p.grad is not None for p in net.trainable_parameters())


# ------------------------------------------------------------------------------ warnings
def test_digital_numbers_warn_once_and_normalised_input_not(fresh_warnings):
    model = tiny()
    x, days = inputs()
    model.encode(x, days)
    model.encode(torch.from_numpy(x), torch.from_numpy(days))
    assert _ours(fresh_warnings) == []
    dn = np.random.default_rng(0).integers(200, 5000, x.shape).astype(np.float32)
    model.encode(dn, days)
    model.encode(dn * 2, days)
    msgs = _ours(fresh_warnings)
    assert len(msgs) == 1 and "digital numbers" in msgs[0] and "model.norm.apply(dn)" in msgs[0]
    assert fresh_warnings[-1].filename == __file__  # points at the caller's line


def test_day_of_year_and_epoch_days_warn_once(fresh_warnings):
    model = tiny()
    x, _ = inputs(t=3)
    doy = np.array([[12.0, 80.0, 200.0], [15.0, 100.0, 300.0]])
    model.encode(x, doy)
    model.encode(x, doy + 1)
    model.decode(model.encode(x, doy + 1400), doy)  # decode's target dates: same kind, already said
    msgs = _ours(fresh_warnings)
    assert len(msgs) == 1 and "day-of-year" in msgs[0] and "alise.days_since_origin(dates)" in msgs[0]
    unix = doy + 17532  # 2018 in days since 1970-01-01
    model.encode(x, unix)
    msgs = _ours(fresh_warnings)
    assert len(msgs) == 2 and "1970-01-01" in msgs[1]


def test_padded_dates_do_not_count_and_training_mode_is_not_checked(fresh_warnings):
    model = tiny()
    x, days = inputs(t=3)
    days[:, 2] = 0.0  # padding: any date and any values, as the model ignores them
    x[:, 2] = 5000.0
    model.encode(x, days, np.array([True, True, False]))
    assert _ours(fresh_warnings) == []
    model.train()
    model.encode(x * 1000, days * 0 + 5)
    assert _ours(fresh_warnings) == []


# ------------------------------------------------------------------------------ alise.encode_array
START, END = "2018-05-01", "2018-06-30"


@pytest.fixture(scope="module")
def cli_embedding(flanders, tmp_path_factory):
    """``alise encode`` of the real patch, May–June 2018, built-in model: ``(Q·D, 64, 64)``."""
    out = tmp_path_factory.mktemp("api") / "emb.tif"
    assert main(["encode", str(flanders), "--out", str(out), "--start", START, "--end", END, "--no-progress"]) == 0
    with rasterio.open(out) as f:
        return f.read()


@pytest.fixture(scope="module")
def flanders_raw(flanders):
    from alise.data import open_source

    src = open_source(flanders, start=START, end=END)
    return src.read(), src.dates


def test_encode_array_matches_alise_encode(cli_embedding, flanders_raw):
    raw, dates = flanders_raw
    model, _ = alise.load_model()
    assert model.input_min_clear == 0.5 and 0 < (raw.valid.mean(axis=(1, 2)) < 0.5).sum() < len(dates)
    emb = alise.encode_array(raw.dn, dates, raw.valid)  # the built-in model, its date selection
    q, d = model.config.n_q, model.config.d_model
    assert emb.shape == (q, d, 64, 64) and emb.dtype == np.float32
    ref = cli_embedding.reshape(q, d, 64, 64)
    ok = ~np.isnan(ref)
    assert np.array_equal(ok, ~np.isnan(emb)) and ok.mean() > 0.9
    np.testing.assert_allclose(emb[ok], ref[ok], rtol=1e-5, atol=1e-5)
    # every date kept: something else
    every = alise.encode_array(raw.dn, dates, raw.valid, min_clear=0)
    assert np.nanmax(np.abs(every - emb)) > 1e-2


def test_encode_array_input_forms_agree(flanders_raw):
    raw, dates = flanders_raw
    dn, valid = raw.dn[..., :32, :32], raw.valid[..., :32, :32]
    ref = alise.encode_array(dn, dates, valid)
    iso = [d.isoformat() for d in dates]
    same = [
        alise.encode_array(torch.from_numpy(dn), iso, torch.from_numpy(valid)),
        alise.encode_array(dn, alise.days_since_origin(dates), valid, model="alise-s2-small"),
        alise.encode_array(dn, np.array(iso, dtype="datetime64[D]"), valid),
        alise.encode_array(dn[::-1], dates[::-1], valid[::-1]),  # unsorted: sorted with the images
    ]
    for other in same:
        np.testing.assert_allclose(other, ref, rtol=1e-6, atol=1e-6)
    batch = alise.encode_array(np.stack([dn, dn[..., ::-1, :]]), dates, np.stack([valid, valid[..., ::-1, :]]))
    assert batch.shape == (2, *ref.shape)
    np.testing.assert_allclose(batch[0], ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(batch[1], alise.encode_array(dn[..., ::-1, :], dates, valid[..., ::-1, :]),
                               rtol=1e-6, atol=1e-6)


def test_encode_array_mistakes_are_alise_errors(flanders_raw, fresh_warnings):
    raw, dates = flanders_raw
    dn, valid = raw.dn[..., :16, :16], raw.valid[..., :16, :16]
    model, _ = alise.load_model()
    with pytest.raises(AliseError, match="already normalised.*model.encode"):
        alise.encode_array(model.norm.apply(dn).numpy(), dates, valid)
    with pytest.raises(AliseError, match="0–1.*10000"):
        alise.encode_array(np.nan_to_num(dn) / 10000, dates, valid)
    with pytest.raises(AliseError, match="bands"):
        alise.encode_array(dn[:, :4], dates, valid)
    with pytest.raises(AliseError, match="appears twice"):
        alise.encode_array(dn[:2], [dates[0], dates[0]], valid[:2])
    with pytest.raises(AliseError, match="dates for the"):
        alise.encode_array(dn, dates[:-1], valid)
    with pytest.raises(AliseError, match="valid must be"):
        alise.encode_array(dn, dates, valid[:, :8])
    with pytest.raises(AliseError, match="no date is at least"):
        alise.encode_array(dn, dates, np.zeros_like(valid))
    # day-of-year numbers as dates: the warning points at the caller
    doy = [d.timetuple().tm_yday for d in dates]
    alise.encode_array(dn, doy, valid, min_clear=0)
    msgs = _ours(fresh_warnings)
    assert len(msgs) == 1 and "day-of-year" in msgs[0] and fresh_warnings[-1].filename == __file__


def test_encode_array_every_pixel_clear_without_a_mask():
    rng = np.random.default_rng(0)
    dn = rng.integers(300, 4000, (3, 10, 16, 24)).astype(np.uint16)
    emb = alise.encode_array(dn, [dt.date(2019, 4, 1), dt.date(2019, 5, 1), dt.date(2019, 6, 1)])
    assert emb.shape == (10, 32, 16, 24) and np.isfinite(emb).all()


def test_dir_lists_the_public_names():
    names = dir(alise)
    for name in ("encode_array", "load", "load_model", "days_since_origin", "ALISE", "AliseInputWarning",
                 "__version__"):
        assert name in names
    assert set(alise.__all__) <= set(names) and "importlib" not in names
    assert alise.encode_array.__module__ == "alise.api"
