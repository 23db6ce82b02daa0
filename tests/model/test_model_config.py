"""ALISEConfig: paper defaults, validation, (de)serialisation, command-line overrides."""

from __future__ import annotations

import json

import pytest

from alise.model.config import ALISEConfig, parse_overrides
from alise.errors import AliseError


def test_paper_defaults_table_i_viii_ix():
    c = ALISEConfig()
    assert (c.t_w, c.n_q, c.d_model, c.d_emb, c.w_rec, c.w_inv, c.w_cov) == (2, 10, 64, 128, 1.0, 1.0, 0.0)  # Table I
    assert (c.n_layers, c.n_heads, c.dropout, c.d_ffn) == (3, 4, 0.1, 128)  # Table IX
    assert c.encoder_widths == (64, 64, 64, 128) and c.decoder_widths == (32, 32, 64, 128)
    assert (c.down_kernel, c.block, c.pe_base, c.proj_heads, c.proj_d_k, c.fold_bn) == (4, "postnorm", 1000.0, 2, 16, False)
    assert c.n_dates == 60 and c.in_channels == 10


@pytest.mark.parametrize("bad", [
    dict(n_q=0), dict(t_w=31), dict(n_heads=3), dict(proj_heads=3), dict(block="prenorm"), dict(down_kernel=3),
    dict(dropout=1.0), dict(w_rec=-1.0), dict(w_rec=0.0, w_inv=0.0), dict(decoder_widths=(32, 32, 64, 64)),
    dict(encoder_norm="layer"), dict(encoder_widths=(6, 6, 6, 128)),
])
def test_validate_rejects(bad):
    with pytest.raises(AliseError, match="invalid model configuration"):
        ALISEConfig(**bad)


def test_dict_roundtrip_through_json():
    c = ALISEConfig(t_w=5, w_cov=0.05, block="double_ln", encoder_widths=(8, 8, 8, 16), decoder_widths=(8, 8, 8, 16))
    assert ALISEConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    assert ALISEConfig.from_dict({}) == ALISEConfig()


def test_unknown_key_is_named():
    with pytest.raises(AliseError, match="'n_query'"):
        ALISEConfig.from_dict({"n_query": 3})
    with pytest.raises(AliseError, match="'foo'"):
        ALISEConfig().replace(foo=1)


def test_replace_validates_and_keeps_original():
    c = ALISEConfig()
    assert c.replace(t_w=5).t_w == 5 and c.t_w == 2
    with pytest.raises(AliseError):
        c.replace(n_q=-1)


def test_parse_overrides_coerces_types():
    d = parse_overrides(["t_w=5", "w_cov=0.05", "fold_bn=true", "encoder_widths=8,8,8,16", "block=double_ln", "pe_base=10000"])
    assert d == {"t_w": 5, "w_cov": 0.05, "fold_bn": True, "encoder_widths": (8, 8, 8, 16), "block": "double_ln",
                 "pe_base": 10000.0}
    assert isinstance(d["pe_base"], float)
    assert ALISEConfig().replace(**parse_overrides(["t_w=3"])).t_w == 3


@pytest.mark.parametrize("item, match", [
    ("t_w", "KEY=VALUE"), ("tw=2", "'tw'"), ("t_w=2.5", "t_w"), ("fold_bn=maybe", "fold_bn"), ("w_cov=abc", "w_cov"),
    ("encoder_widths=8,x", "encoder_widths"),
])
def test_parse_overrides_errors(item, match):
    with pytest.raises(AliseError, match=match):
        parse_overrides([item])


def test_from_dict_rejects_wrong_types():
    with pytest.raises(AliseError, match="n_q"):
        ALISEConfig.from_dict({"n_q": "ten"})
    with pytest.raises(AliseError, match="fold_bn"):
        ALISEConfig.from_dict({"fold_bn": 1})


def test_format_overrides_is_read_back_by_parse_overrides():
    from alise.model.config import format_overrides, parse_overrides
    from alise.model.presets import CPU_SMALL_ARCH

    items = format_overrides({**CPU_SMALL_ARCH, "w_inv": 0.0, "fold_bn": False})
    assert "encoder_widths=16,16,16,32" in items and "w_inv=0.0" in items
    assert parse_overrides(items) == {**{k: tuple(v) if isinstance(v, (list, tuple)) else v
                                         for k, v in CPU_SMALL_ARCH.items()}, "w_inv": 0.0, "fold_bn": False}
