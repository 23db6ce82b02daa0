"""View generation (Eq. 3–4): consecutive selection, alternating windows, partition, determinism."""

from __future__ import annotations

import pytest
import torch

from alise.batch import SITS
from alise.errors import AliseError
from alise.train.views import collate_views, make_views, view_indices


@pytest.mark.parametrize("total, n_dates, t_w", [(100, 60, 2), (100, 60, 5), (45, 60, 2), (61, 60, 1), (30, 10, 3)])
def test_views_partition_a_consecutive_window(total, n_dates, t_w):
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        a, b = view_indices(total, n_dates, t_w, g)
        both = torch.sort(torch.cat([a, b])).values
        keep = min(total, n_dates)
        assert len(both) == keep and len(set(both.tolist())) == keep  # A ∪ B = window, A ∩ B = ∅
        assert bool((both[1:] - both[:-1] == 1).all()) and 0 <= both[0] <= total - keep  # consecutive
        start = int(both[0])
        for i in a.tolist():
            assert ((i - start) // t_w) % 2 == 0  # Eq. 4a: even windows
        for i in b.tolist():
            assert ((i - start) // t_w) % 2 == 1  # Eq. 4b: odd windows


def test_paper_views_have_30_dates_each():
    a, b = view_indices(200, 60, 2, torch.Generator().manual_seed(3))
    assert len(a) == len(b) == 30
    assert (b[:2] - a[:2]).tolist() == [2, 2]  # windows of 2 alternate: a a b b a a ...


def test_start_is_random_and_seeded():
    starts = {int(view_indices(100, 60, 2, torch.Generator().manual_seed(s))[0][0]) for s in range(20)}
    assert len(starts) > 5
    same = [view_indices(100, 60, 2, torch.Generator().manual_seed(7)) for _ in range(2)]
    assert torch.equal(same[0][0], same[1][0]) and torch.equal(same[0][1], same[1][1])


def _sits(t, hw=4):
    return SITS(x=torch.randn(t, 3, hw, hw), days=torch.arange(t).float() * 5 + 1000,
                valid_pixels=torch.ones(t, hw, hw, dtype=torch.bool))


def test_make_views_selects_matching_dates():
    s = _sits(20)
    a, b = make_views(s, torch.Generator().manual_seed(0), n_dates=8, t_w=2)
    assert a.n_dates == b.n_dates == 4
    for v in (a, b):
        idx = ((v.days - 1000) / 5).long()
        assert torch.equal(v.x, s.x[idx]) and torch.equal(v.valid_pixels, s.valid_pixels[idx])


def test_collate_views_pads_each_view():
    ba, bb = collate_views([_sits(20), _sits(5)], torch.Generator().manual_seed(0), n_dates=8, t_w=2)
    assert ba.x.shape == (2, 4, 3, 4, 4) and bb.x.shape[0] == 2
    assert ba.valid_dates.sum().item() == 4 + 3 and bb.valid_dates.sum().item() == 4 + 2  # 5 dates: a a b b a


def test_too_short_or_unsorted_series_are_user_errors():
    with pytest.raises(AliseError, match="t_w=2"):
        make_views(_sits(2), torch.Generator(), n_dates=60, t_w=2)
    s = _sits(6)
    s.days = s.days.flip(0)
    with pytest.raises(AliseError, match="increasing"):
        make_views(s, torch.Generator())


def test_translated_views_are_windows_of_one_crop_and_the_losses_align_them():
    """view_shift: each view is a window of the (H + s)² sample at its own offset; on their overlap
    (model._overlap) both show the same place, so a time-invariant scene reconstructs exactly."""
    from alise.model.network import _overlap

    s, h = 5, 16
    rows = torch.arange(h + s, dtype=torch.float32)
    place = (rows[:, None] * 100 + rows[None, :])  # a value per geographic pixel
    sample = SITS(x=place.expand(12, 2, h + s, h + s).clone(), days=torch.arange(12.0) * 5,
                  valid_pixels=torch.ones(12, h + s, h + s, dtype=torch.bool))
    seen = set()
    for seed in range(20):
        a, b = collate_views([sample], torch.Generator().manual_seed(seed), n_dates=12, t_w=2, shift=s)
        assert a.x.shape[-2:] == b.x.shape[-2:] == (h, h)
        assert all(0 <= o <= s for o in a.origin + b.origin)
        assert torch.equal(a.x[0, 0, 0], place[a.origin[0]:a.origin[0] + h, a.origin[1]:a.origin[1] + h])
        oa, ob = _overlap(a.origin, b.origin, h, h)
        assert torch.equal(a.x[..., oa[0], oa[1]][:, :1], b.x[..., ob[0], ob[1]][:, :1])
        seen.add((b.origin[0] - a.origin[0], b.origin[1] - a.origin[1]))
    assert len(seen) > 10  # the translation really varies
    a0, b0 = collate_views([sample], torch.Generator().manual_seed(0), n_dates=12, t_w=2)
    assert a0.origin == b0.origin == (0, 0) and a0.x.shape[-1] == h + s  # paper views: same pixels
