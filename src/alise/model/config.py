"""The one configuration of an ALISE model: a flat frozen dataclass with the paper's names.

Defaults are the paper's ([P] Table I, Tables VIII–IX, §III; docs/reference.md §2–§6). A handful of
options exist only to reproduce the authors' published MALICE S2 export with the *same* code
path (see :mod:`alise.weights.malice`): ``down_kernel``, ``block``, ``pe_base``, ``proj_d_k``,
``encoder_norm`` and ``fold_bn``. With their defaults the model is the paper's.

=================== ======================== ====================================================
field               paper default            meaning
=================== ======================== ====================================================
in_channels         10                       C, Sentinel-2 bands (docs/reference.md §1.1)
encoder_widths      (64, 64, 64, 128)        UNet encoder widths (Table VIII)
decoder_widths      (32, 32, 64, 128)        UNet decoder widths (docs/reference.md §2)
down_kernel         4                        strided conv / transposed conv kernel (4: pad 1; 2: pad 0)
encoder_norm        "group"                  UNet encoder norm: GroupNorm(n_groups) or "batch"
n_groups            4                        GroupNorm groups
padding_mode        "reflect"                padding of the UNet's convolutions
fold_bn             False                    True: every conv layer is conv(bias)+ReLU, no norm
d_model             64                       D (Table I)
n_layers            3                        Transformer layers (Table IX)
n_heads             4                        Transformer heads (Table IX)
d_ffn               128                      Transformer hidden width d_hidden (Table IX)
dropout             0.1                      attention and residual dropout (Table IX)
block               "postnorm"               "postnorm" (PyTorch) or "double_ln" (MALICE export)
pe_base             1000.0                   base of the sinusoidal date encoding (docs/reference.md §1.5)
n_q                 10                       Q, learned queries of the temporal projector (Table I)
proj_heads          2                        temporal projector heads (App. E-2)
proj_d_k            16                       temporal projector key width per head
d_emb               128                      latent projector output width (Table I)
d_proj_hidden       64                       latent projector hidden width (Fig. 12)
t_w                 2                        view window length (Eq. 3–4, Table I)
n_dates             60                       N consecutive dates per pre-training sample (§III-C)
view_shift          0                        max translation (px) between the two views; 0 = the
                                             paper's views, on the same pixels (docs/pretraining.md)
w_rec, w_inv, w_cov 1.0, 1.0, 0.0            loss weights (Eq. 2, Table I)
=================== ======================== ====================================================
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields

from alise.errors import AliseError

_BLOCKS = ("postnorm", "double_ln")
_NORMS = ("group", "batch")
_PADDINGS = ("reflect", "zeros", "replicate", "circular")


@dataclass(frozen=True)
class ALISEConfig:
    """Architecture and pre-training hyper-parameters (see the module docstring for the table)."""

    in_channels: int = 10
    encoder_widths: tuple[int, ...] = (64, 64, 64, 128)
    decoder_widths: tuple[int, ...] = (32, 32, 64, 128)
    down_kernel: int = 4
    encoder_norm: str = "group"
    n_groups: int = 4
    padding_mode: str = "reflect"
    fold_bn: bool = False
    d_model: int = 64
    n_layers: int = 3
    n_heads: int = 4
    d_ffn: int = 128
    dropout: float = 0.1
    block: str = "postnorm"
    pe_base: float = 1000.0
    n_q: int = 10
    proj_heads: int = 2
    proj_d_k: int = 16
    d_emb: int = 128
    d_proj_hidden: int = 64
    t_w: int = 2
    n_dates: int = 60
    view_shift: int = 0
    w_rec: float = 1.0
    w_inv: float = 1.0
    w_cov: float = 0.0

    def __post_init__(self):
        # Normalise JSON-ish values (lists, ints for floats) so equal configs compare equal.
        for f in fields(self):
            object.__setattr__(self, f.name, _coerce(f.name, getattr(self, f.name)))
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> "ALISEConfig":
        """Raise :class:`AliseError` naming the first inconsistent field; return ``self``."""

        def bad(msg: str) -> None:
            raise AliseError(f"invalid model configuration: {msg}")

        for name in ("in_channels", "n_groups", "d_model", "n_layers", "n_heads", "d_ffn", "n_q",
                     "proj_heads", "proj_d_k", "d_emb", "d_proj_hidden", "t_w", "n_dates"):
            if getattr(self, name) <= 0:
                bad(f"{name} must be > 0 (got {getattr(self, name)})")
        if len(self.encoder_widths) < 2 or len(self.encoder_widths) != len(self.decoder_widths):
            bad(f"encoder_widths {self.encoder_widths} and decoder_widths {self.decoder_widths} need the same length ≥ 2")
        if min(self.encoder_widths + self.decoder_widths) <= 0:
            bad("UNet widths must be > 0")
        if self.decoder_widths[-1] != self.encoder_widths[-1]:
            bad(f"decoder_widths[-1] ({self.decoder_widths[-1]}) must equal encoder_widths[-1] ({self.encoder_widths[-1]})")
        if self.down_kernel not in (2, 4):
            bad(f"down_kernel must be 4 (paper, padding 1) or 2 (MALICE export, padding 0), got {self.down_kernel}")
        if self.encoder_norm not in _NORMS:
            bad(f"unknown encoder_norm {self.encoder_norm!r}; choose one of {', '.join(_NORMS)}")
        if self.encoder_norm == "group" and not self.fold_bn and any(w % self.n_groups for w in self.encoder_widths):
            bad(f"encoder_widths {self.encoder_widths} must be divisible by n_groups={self.n_groups}")
        if self.padding_mode not in _PADDINGS:
            bad(f"unknown padding_mode {self.padding_mode!r}; choose one of {', '.join(_PADDINGS)}")
        if self.block not in _BLOCKS:
            bad(f"unknown block {self.block!r}; choose one of {', '.join(_BLOCKS)}")
        if self.d_model % 2:
            bad(f"d_model ({self.d_model}) must be even (interleaved sin/cos date encoding)")
        if self.d_model % self.n_heads:
            bad(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if self.d_model % self.proj_heads:
            bad(f"d_model ({self.d_model}) must be divisible by proj_heads ({self.proj_heads})")
        if not 0.0 <= self.dropout < 1.0:
            bad(f"dropout must be in [0, 1) (got {self.dropout})")
        if not self.pe_base > 0:
            bad(f"pe_base must be > 0 (got {self.pe_base})")
        if self.view_shift < 0:
            bad(f"view_shift must be ≥ 0 pixels (got {self.view_shift})")
        if 2 * self.t_w > self.n_dates:
            bad(f"t_w ({self.t_w}) must be ≤ n_dates/2 ({self.n_dates / 2:g}) so that both views get dates")
        for name in ("w_rec", "w_inv", "w_cov"):
            if getattr(self, name) < 0:
                bad(f"{name} must be ≥ 0 (got {getattr(self, name)})")
        if self.w_rec + self.w_inv + self.w_cov <= 0:
            bad("at least one of w_rec, w_inv, w_cov must be > 0")
        return self

    # ------------------------------------------------------------------ derived facts
    @property
    def multiple(self) -> int:
        """Side multiple the UNet needs: it halves the resolution ``len(encoder_widths) − 1`` times
        (8 px in the paper). Every tile, crop and window side follows it."""
        return 2 ** (len(self.encoder_widths) - 1)

    @property
    def uses_group_norm(self) -> bool:
        """True when the UNet encoder has GroupNorm layers: their statistics depend on the image
        extent, so a tiled encode shares raster-wide statistics (``encode/groupstats.py``)."""
        return self.encoder_norm == "group" and not self.fold_bn

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict:
        """JSON-ready dict (tuples become lists)."""
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "ALISEConfig":
        """Inverse of :meth:`to_dict`; missing keys take the paper default, unknown keys raise."""
        if not isinstance(d, dict):
            raise AliseError(f"model configuration must be a JSON object, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        for k in d:
            if k not in known:
                raise AliseError(f"unknown model configuration key {k!r}; known keys: {', '.join(sorted(known))}")
        return cls(**d)

    def replace(self, **overrides) -> "ALISEConfig":
        """A copy with ``overrides`` applied (validated)."""
        known = {f.name for f in fields(self)}
        for k in overrides:
            if k not in known:
                raise AliseError(f"unknown model configuration key {k!r}; known keys: {', '.join(sorted(known))}")
        return dataclasses.replace(self, **overrides)


_FIELDS = {f.name: f for f in fields(ALISEConfig)}
_DEFAULTS = {f.name: f.default for f in fields(ALISEConfig)}


def _coerce(name: str, value):
    """Convert ``value`` (Python, JSON or command-line text) to the type of field ``name``."""
    default = _DEFAULTS[name]
    kind = type(default)
    try:
        if isinstance(value, str) and kind is not str:
            text = value.strip()
            if kind is tuple:
                value = [t for t in text.strip("()[]").replace(" ", "").split(",") if t]
            elif kind is bool:
                low = text.lower()
                if low not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(text)
                value = low in ("true", "1", "yes")
            else:
                value = float(text) if kind is float else int(text, 10)
        if kind is bool:
            if not isinstance(value, bool):
                raise ValueError(value)
            return value
        if kind is tuple:
            if not isinstance(value, (list, tuple)):
                raise ValueError(value)
            return tuple(_strict_int(v) for v in value)
        if kind is int:
            return _strict_int(value)
        if kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(value)
            return float(value)
        if not isinstance(value, str):
            raise ValueError(value)
        return value
    except (ValueError, TypeError):
        want = {tuple: "comma-separated integers", bool: "true/false", int: "an integer",
                float: "a number", str: "a string"}[kind]
        raise AliseError(f"model configuration {name}={value!r}: expected {want}") from None


def _strict_int(v) -> int:
    if isinstance(v, bool):
        raise ValueError(v)
    if isinstance(v, str):
        return int(v, 10)
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if not isinstance(v, int):
        raise ValueError(v)
    return v


def parse_overrides(items: list[str]) -> dict:
    """Parse command-line overrides ``["t_w=5", "w_cov=0.05"]`` into a typed dict.

    Values are coerced to the field's type (tuples as ``64,64,64,128``; booleans as true/false).
    Raises :class:`AliseError` on a malformed item, an unknown key or a bad value.
    """
    out: dict = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        key = key.strip()
        if not sep or not key:
            raise AliseError(f"configuration override {item!r} must look like KEY=VALUE (e.g. t_w=5)")
        if key not in _FIELDS:
            raise AliseError(f"unknown model configuration key {key!r}; known keys: {', '.join(sorted(_FIELDS))}")
        out[key] = _coerce(key, value)
    return out


def format_overrides(overrides: dict) -> list[str]:
    """The ``KEY=VALUE`` items that :func:`parse_overrides` reads back into ``overrides``
    (tuples and lists as ``16,16,16,32``)."""
    return [f"{k}={','.join(map(str, v)) if isinstance(v, (tuple, list)) else v}" for k, v in overrides.items()]
