"""Presto encoder (Tseng et al., "Lightweight, Pre-trained Transformers for Remote Sensing
Timeseries", arXiv:2304.14065) with its published pre-trained weights (MIT license).

ALISE's Presto baselines ([P] §IV-C-1 item 1, Table II): monthly median composites of clear
pixels (``alise.baselines.composites``) → this encoder → the pooled 128-d embedding → a linear
layer (``PrestoLP``, 2.5K parameters) or the whole encoder fine-tuned (404K parameters).

The encoder is rebuilt from the architecture facts in ``resources/presto/README.md``; its
tensors load from the vendored ``resources/presto/presto.safetensors`` (encoder only, no pickle):

* one token per (band group, month): each of the 9 band groups of the normalised 17-channel input
  has its own Linear(|group| → 128); SRTM is static (one token), Dynamic World is an
  Embedding(10, 128) (class 9 = missing), and a lat/lon token (unit vector → Linear(3 → 128)) is
  placed first, never masked and gets no encoding;
* added to every other token: [month sinusoid (32) | channel embedding (32) | position
  sinusoid (64, base 1000, position = month index in the series)];
* a (group, month) token is dropped if any band of the group is missing there; dropped tokens are
  never attended to (key-padding mask, as Presto's HEAD code; the published single-file code
  removes them instead, which gives the same result);
* 2 pre-norm ViT blocks (width 128, 8 heads, MLP 512, exact GELU), then the pooled embedding used
  for every downstream task: LayerNorm(mean over kept tokens, lat/lon token included).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from alise.errors import AliseError

#: Vendored encoder weights (MIT, see resources/presto/LICENSE).
PRESTO_WEIGHTS = Path(__file__).resolve().parents[1] / "resources" / "presto" / "presto.safetensors"

#: Presto's 17 normalised input channels, grouped into tokens; dict order = channel-embedding row.
BAND_GROUPS: dict[str, tuple[int, ...]] = {
    "S1": (0, 1), "S2_RGB": (2, 3, 4), "S2_Red_Edge": (5, 6, 7), "S2_NIR_10m": (8,),
    "S2_NIR_20m": (9,), "S2_SWIR": (10, 11), "ERA5": (12, 13), "SRTM": (14, 15), "NDVI": (16,),
}
GROUP_ROW = {name: i for i, name in enumerate(BAND_GROUPS)}
DYNAMIC_WORLD_ROW = len(BAND_GROUPS)
DYNAMIC_WORLD_MISSING = 9
#: Groups an S2-only input can fill (our 10 bands B02..B12 are Presto channels 2..11, + NDVI).
S2_GROUPS = ("S2_RGB", "S2_Red_Edge", "S2_NIR_10m", "S2_NIR_20m", "S2_SWIR", "NDVI")
S2_DIVIDE = 10000.0          # Presto normalisation of S2 digital numbers: x / 10000, no shift
MAX_MONTHS = 24              # rows of the position table


def month_encoding_table(d: int = 32) -> torch.Tensor:
    """(12, d): d/2 copies of sin(2π·m/12) then d/2 copies of cos(2π·m/12), m = 0 (January)…11."""
    angle = 2 * math.pi * torch.arange(12, dtype=torch.float64) / 12
    return torch.cat([angle.sin()[:, None].repeat(1, d // 2), angle.cos()[:, None].repeat(1, d // 2)], 1).float()


def position_encoding_table(n: int = MAX_MONTHS, d: int = 64) -> torch.Tensor:
    """(1, n, d): dim 2i = sin(t / 1000^(2i/d)), dim 2i+1 = cos(t / 1000^(2i/d)), t = 0…n−1."""
    t = torch.arange(n, dtype=torch.float64)[:, None]
    j = torch.arange(d, dtype=torch.float64)
    angle = t / 1000 ** (2 * torch.div(j, 2, rounding_mode="floor") / d)
    return torch.where(j % 2 == 0, angle.sin(), angle.cos()).float()[None]


class Attention(nn.Module):
    """Multi-head self-attention (qkv one Linear), x (N, L, 128), keep (N, L) True = attendable."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        q, k, v = rearrange(self.qkv(x), "n l (s g d) -> s n g l d", s=3, g=self.num_heads)
        # SDPA's boolean attn_mask means True = attend: the same polarity as ``keep``.
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep[:, None, None, :])
        return self.proj(rearrange(out, "n g l d -> n l (g d)"))


class Mlp(nn.Module):
    """fc1 → GELU (exact) → fc2, (N, L, 128) → (N, L, 128)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm Transformer block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, dim: int = 128, num_heads: int = 8, mlp_ratio: int = 4):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, dim * mlp_ratio)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), keep)
        return x + self.mlp(self.norm2(x))


class PrestoEncoder(nn.Module):
    """Presto's pre-trained encoder; 404,160 parameters of which 402,240 trainable.

    ``forward(x (N, M, 17) normalised, dynamic_world (N, M) int 0–9, latlons (N, 2) degrees or
    None, valid (N, M, 17) bool True = usable, month (N, M) int 0–11) -> (N, 128)``;
    ``encode_s2`` is the Sentinel-2-only entry point.
    """

    def __init__(self, dim: int = 128, depth: int = 2, num_heads: int = 8, mlp_ratio: int = 4):
        super().__init__()
        self.dim = dim
        self.eo_patch_embed = nn.ModuleDict({g: nn.Linear(len(c), dim) for g, c in BAND_GROUPS.items()})
        self.dw_embed = nn.Embedding(DYNAMIC_WORLD_MISSING + 1, dim)
        self.latlon_embed = nn.Linear(3, dim)
        self.blocks = nn.ModuleList(Block(dim, num_heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        # [month 1/4 | channel 1/4 | position 1/2] of the token encoding; the sinusoids are fixed.
        self.pos_embed = nn.Parameter(position_encoding_table(MAX_MONTHS, dim // 2), requires_grad=False)
        self.month_embed = nn.Embedding.from_pretrained(month_encoding_table(dim // 4), freeze=True)
        self.channel_embed = nn.Embedding(DYNAMIC_WORLD_ROW + 1, dim // 4)

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None) -> "PrestoEncoder":
        """The published Presto encoder, in eval mode, from the vendored safetensors (no pickle)."""
        from safetensors.torch import load_file

        path = Path(path) if path is not None else PRESTO_WEIGHTS
        if not path.is_file():
            raise AliseError(f"Presto weights not found at {path}: reinstall alise or pass the path of presto.safetensors")
        state = load_file(str(path))
        state = {k.removeprefix("encoder."): v for k, v in state.items() if not k.startswith("decoder.")}
        model = cls()
        model.load_state_dict(state, strict=True)
        return model.eval()

    def _encoding(self, row: int, month: torch.Tensor, static: bool = False) -> torch.Tensor:
        """[month | channel | position] vector, (N, M) months → (N, M, 128), or (N, 1, 128) if static."""
        n, m = month.shape
        channel = self.channel_embed.weight[row].expand(n, 1 if static else m, -1)
        if static:   # SRTM: channel part only
            return torch.cat([torch.zeros_like(channel), channel, channel.new_zeros(n, 1, self.dim // 2)], -1)
        position = self.pos_embed[:, :m].expand(n, -1, -1)
        return torch.cat([self.month_embed(month), channel, position], -1)

    def _tokens(self, x: torch.Tensor, valid: torch.Tensor, month: torch.Tensor, groups) -> tuple:
        """Tokens and keep-mask of the listed band groups: (N, L, 128), (N, L) bool."""
        tokens, keep = [], []
        for name in groups:                                  # loop over ≤ 9 band groups
            idx = list(BAND_GROUPS[name])
            static = name == "SRTM"
            sel = slice(0, 1) if static else slice(None)
            tokens.append(self.eo_patch_embed[name](x[:, sel, idx]) + self._encoding(GROUP_ROW[name], month, static))
            keep.append(valid[:, sel, idx].all(dim=-1))      # dropped if any band is missing
        return torch.cat(tokens, 1), torch.cat(keep, 1)

    def _pool(self, tokens: torch.Tensor, keep: torch.Tensor, latlons: torch.Tensor | None) -> torch.Tensor:
        """Lat/lon token first, Transformer blocks, masked mean, final LayerNorm → (N, 128)."""
        n = tokens.shape[0]
        if latlons is not None:
            lat, lon = torch.deg2rad(latlons.to(tokens.dtype)).unbind(-1)
            xyz = torch.stack([lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()], -1)
            tokens = torch.cat([self.latlon_embed(xyz)[:, None], tokens], 1)
            keep = torch.cat([keep.new_ones(n, 1), keep], 1)
        for block in self.blocks:
            tokens = block(tokens, keep)
        summed = torch.where(keep[..., None], tokens, 0.0).sum(1)
        return self.norm(summed / keep.sum(1, keepdim=True).clamp(min=1))

    @staticmethod
    def _check(month: torch.Tensor, where: str) -> None:
        if month.shape[1] > MAX_MONTHS or month.shape[1] < 1:
            raise AliseError(f"Presto {where}: {month.shape[1]} months given, it accepts 1 to {MAX_MONTHS}")
        if month.numel() and (int(month.min()) < 0 or int(month.max()) > 11):
            raise AliseError(f"Presto {where}: month must be an integer 0 (January) to 11 (December)")

    def forward(self, x: torch.Tensor, dynamic_world: torch.Tensor, latlons: torch.Tensor | None,
                valid: torch.Tensor, month: torch.Tensor) -> torch.Tensor:
        self._check(month, "forward")
        valid = valid.bool()
        x = torch.where(valid, x, 0.0)                       # missing values may hold NaN
        month = month.long()
        tokens, keep = self._tokens(x, valid, month, BAND_GROUPS)
        dw = self.dw_embed(dynamic_world.long()) + self._encoding(DYNAMIC_WORLD_ROW, month)
        tokens = torch.cat([tokens, dw], 1)
        keep = torch.cat([keep, dynamic_world != DYNAMIC_WORLD_MISSING], 1)
        return self._pool(tokens, keep, latlons)

    def encode_s2(self, dn: torch.Tensor, month: torch.Tensor, mask: torch.Tensor,
                  latlon: torch.Tensor | None = None) -> torch.Tensor:
        """Sentinel-2-only embedding, as Presto's ``construct_single_presto_input(s2=...)``.

        dn (N, M, 10) S2 L2A digital numbers (reflectance × 10,000) in our band order B02, B03,
        B04, B05, B06, B07, B08, B8A, B11, B12; month (N, M) int 0–11 (0 = January); mask (N, M)
        bool True = a clear composite for that month; latlon (N, 2) degrees or None (then the
        lat/lon token is left out) → (N, 128). S1, ERA5, SRTM and Dynamic World are missing, so
        their tokens are dropped; NDVI is computed from B08 and B04.
        """
        if dn.ndim != 3 or dn.shape[-1] != 10:
            raise AliseError(f"Presto encode_s2 expects dn of shape (N, M, 10) bands B02..B12, got {tuple(dn.shape)}")
        self._check(month, "encode_s2")
        mask = mask.bool()
        s2 = torch.where(mask[..., None], dn.to(self.norm.weight.dtype), 0.0) / S2_DIVIDE
        red, nir = s2[..., 2], s2[..., 6]
        total = nir + red
        ndvi = torch.where(total > 0, (nir - red) / torch.where(total > 0, total, 1.0), 0.0)
        x = torch.cat([s2.new_zeros(*s2.shape[:2], 2), s2, s2.new_zeros(*s2.shape[:2], 4), ndvi[..., None]], -1)
        valid = mask[..., None].expand(-1, -1, 17)
        tokens, keep = self._tokens(x, valid, month.long(), S2_GROUPS)   # the other groups are all dropped
        return self._pool(tokens, keep, latlon)

    def encode_image(self, comp: torch.Tensor, month: torch.Tensor, comp_valid: torch.Tensor,
                     latlon: torch.Tensor | None = None, chunk: int = 1024) -> torch.Tensor:
        """Embedding map of one image's monthly composites, (M, 10, H, W) → (128, H, W).

        month (M,) int 0–11, comp_valid (M, H, W) True = clear composite, latlon (2,) degrees of
        the image centre or None. Pixels are encoded ``chunk`` at a time to bound memory.
        """
        m, _, h, w = comp.shape
        dn = rearrange(comp, "m c h w -> (h w) m c")
        mask = rearrange(comp_valid, "m h w -> (h w) m")
        months = month.long()[None].expand(h * w, -1)
        ll = None if latlon is None else torch.as_tensor(latlon, dtype=torch.float32)[None].expand(h * w, -1)
        out = [self.encode_s2(dn[i:i + chunk], months[i:i + chunk], mask[i:i + chunk],
                              None if ll is None else ll[i:i + chunk])
               for i in range(0, h * w, chunk)]              # memory-bounding chunks of pixels
        return rearrange(torch.cat(out), "(h w) d -> d h w", h=h, w=w)


class PrestoLP(nn.Module):
    """Presto^LP head: Linear(128 → K); 128·K + K parameters (2,451 for K = 19, [P] Table II).

    ``forward(z (B, 128, H, W) -> (B, K, H, W))`` or ``(N, 128) -> (N, K)``.
    """

    def __init__(self, num_classes: int, dim: int = 128):
        super().__init__()
        self.linear = nn.Linear(dim, num_classes)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim == 4:
            return rearrange(self.linear(rearrange(z, "b d h w -> b h w d")), "b h w k -> b k h w")
        return self.linear(z)
