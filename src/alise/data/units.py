"""Units of the digital numbers: the +1000 offset of processing baseline 04.00 and 0–1 reflectance.

ALISE's normalisation statistics (docs/reference.md §1.2) are in Sen2Cor L2A digital numbers,
``DN = 10 000 · reflectance``. Two things break that silently:

* **Processing baseline ≥ 04.00** (products from 2022-01-25 on, and reprocessed archives) stores
  ``DN = 10 000 · reflectance + 1000`` and says so in the product metadata
  (``BOA_ADD_OFFSET = −1000``). We subtract the offset so every date is on the same scale.
* **Float reflectance in 0–1** (some cube exports apply the 1e-4 scale factor). We refuse it
  rather than guessing: the fix (multiply by 10 000) is one line for the user and explicit.

Decision per *regime* (dates before 2022-01-25, dates from 2022-01-25), because a single date's
statistics are unreliable (a hazy date whose haze is labelled clear has no dark pixel):

1. a ``BOA_ADD_OFFSET`` tag on a file is authoritative for that date (values that contradict it
   are an error);
2. otherwise the *dark-pixel test*: the 1st percentile of clear B02 over all dates of the regime.
   Clear dark vegetation/water has B02 reflectance ≈ 0.01–0.05, i.e. a few hundred DN without the
   offset and > 1000 with it, so ``p1 ≥ 1000`` means "offset present";
3. from 2022-01-25 with offset-like values → subtract 1000 (reported); without → not corrected
   (reported as a warning: a harmonised product, e.g. Earth Engine ``S2_SR_HARMONIZED``);
   before 2022-01-25 with offset-like values → :class:`AliseError` (dates and values disagree;
   tag the files or pass an explicit offset if the archive was reprocessed);
4. too few clear pixels to test → the date rule (1000 from 2022-01-25, else 0), with a warning.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import numpy as np

from alise.errors import AliseError

#: First acquisitions processed with baseline 04.00 (BOA_ADD_OFFSET = −1000).
OFFSET_START = dt.date(2022, 1, 25)
#: The offset baseline ≥ 04.00 adds to L2A digital numbers.
S2_OFFSET = 1000.0
#: 1st percentile of clear B02 (DN) at or above which values are taken to carry the offset.
DARK_THRESHOLD = 1000.0
#: Fewest clear B02 values needed for the dark-pixel test.
MIN_DARK_PIXELS = 100
#: Largest plausible value of reflectance stored in 0–1 units (clouds reach ≈ 1.5).
MAX_UNIT_REFLECTANCE = 2.0


@dataclass(frozen=True)
class OffsetDecision:
    """What was decided for one regime of dates.

    Attributes:
        regime: ``"before 2022-01-25"`` or ``"from 2022-01-25"``.
        n_dates: dates in the regime.
        offset: DN subtracted from every band (0 or 1000 normally).
        how: ``"tag"``, ``"values"``, ``"date rule"`` or ``"user"``.
        dark_p1: 1st percentile of clear B02 in DN (None if too few clear pixels).
        warning: a sentence for ``alise check`` when something deserves attention.
    """

    regime: str
    n_dates: int
    offset: float
    how: str
    dark_p1: float | None
    warning: str | None = None

    def describe(self) -> str:
        p1 = "n/a" if self.dark_p1 is None else f"{self.dark_p1:.0f}"
        return f"{self.regime}: {self.n_dates} dates, offset {self.offset:g} DN subtracted ({self.how}; clear B02 p1 = {p1} DN)"


def tag_offset(tags: dict) -> float | None:
    """Offset to subtract from a file's tags: ``BOA_ADD_OFFSET = −1000`` → 1000; None if untagged."""
    for key, value in tags.items():
        if "BOA_ADD_OFFSET" in str(key).upper():
            try:
                return -float(value)
            except (TypeError, ValueError):
                raise AliseError(f"tag {key}={value!r} is not a number") from None
    return None


def check_not_unit_reflectance(b02: np.ndarray, where: str) -> None:
    """Raise if float values look like reflectance in 0–1 instead of DN (reflectance × 10 000)."""
    finite = b02[np.isfinite(b02)]
    if finite.size and float(np.max(finite)) <= MAX_UNIT_REFLECTANCE:
        raise AliseError(
            f"{where}: values look like reflectance in 0–1 (max B02 {float(np.max(finite)):.3g}); "
            "alise expects L2A digital numbers = reflectance × 10000: multiply the data by 10000"
        )


def resolve_offsets(
    dates: list[dt.date],
    tags: list[float | None],
    dark_b02: dict[bool, np.ndarray],
    where: str,
    override: float | None = None,
) -> tuple[np.ndarray, list[OffsetDecision]]:
    """Decide the offset of every date (see the module docstring for the rules).

    Args:
        dates: (T) acquisition dates.
        tags: (T) offset read from each date's metadata (:func:`tag_offset`) or None.
        dark_b02: regime (``date >= 2022-01-25``) → 1-D sample of clear, finite B02 DN of that regime.
        where: the source, for messages.
        override: a user-given offset for every date (skips the tests).

    Returns:
        ``offsets`` (T,) float32 DN to subtract, and one :class:`OffsetDecision` per regime present.
    """
    after = np.array([d >= OFFSET_START for d in dates], dtype=bool)
    offsets = np.zeros(len(dates), dtype=np.float32)
    decisions = []
    for regime in (False, True):
        sel = np.flatnonzero(after == regime)
        if sel.size == 0:
            continue
        name = f"{'from' if regime else 'before'} {OFFSET_START}"
        vals = dark_b02.get(regime, np.empty(0, np.float32))
        p1 = float(np.percentile(vals, 1)) if vals.size >= MIN_DARK_PIXELS else None
        looks = p1 is not None and p1 >= DARK_THRESHOLD
        if override is not None:
            offsets[sel] = override
            decisions.append(OffsetDecision(name, sel.size, float(override), "user", p1))
            continue
        tagged = [i for i in sel if tags[i] is not None]
        for i in tagged:
            offsets[i] = tags[i]
        if tagged:
            tag_vals = {tags[i] for i in tagged}
            first = dates[tagged[0]]
            if p1 is not None and len(tagged) == sel.size and len(tag_vals) == 1:
                says = next(iter(tag_vals)) > 0
                if says != looks:
                    raise AliseError(
                        f"{where}: date {first} is tagged BOA_ADD_OFFSET={-next(iter(tag_vals)):g} but the darkest clear "
                        f"B02 values (1st percentile {p1:.0f} DN) say {'no ' if says else 'a +1000 '}offset: "
                        "fix the tag or the data"
                    )
        untagged = np.array([i for i in sel if tags[i] is None], dtype=int)
        if untagged.size == 0:
            vals = sorted({tags[i] for i in tagged})
            how = "tag" if len(vals) == 1 else "per-date tags: " + ", ".join(
                f"{v:g} DN on {sum(tags[i] == v for i in tagged)}" for v in vals)
            decisions.append(OffsetDecision(name, sel.size, float(offsets[sel].max()), how, p1))
            continue
        first = dates[untagged[0]]
        if p1 is None:
            value = S2_OFFSET if regime else 0.0
            warn = (f"too few clear pixels to verify the offset of dates {name}; assumed {value:g} DN from the date"
                    if regime else None)
            offsets[untagged] = value
            decisions.append(OffsetDecision(name, sel.size, value, "date rule", p1, warn))
        elif regime and looks:
            offsets[untagged] = S2_OFFSET
            decisions.append(OffsetDecision(name, sel.size, S2_OFFSET, "values", p1,
                                            "dates from 2022-01-25 carry the +1000 offset of baseline 04.00: subtracted"))
        elif regime:
            decisions.append(OffsetDecision(
                name, sel.size, 0.0, "values", p1,
                f"dates from 2022-01-25 show no +1000 offset (clear B02 p1 {p1:.0f} DN < 1000): "
                "not corrected (harmonised product?)"))
        elif looks:
            raise AliseError(
                f"{where}: dates before 2022-01-25 (e.g. {first}) have values with a +1000 offset "
                f"(1st percentile of clear B02 = {p1:.0f} DN ≥ 1000), which only baseline ≥ 04.00 adds: "
                "if the archive was reprocessed, tag the files BOA_ADD_OFFSET=-1000 (or pass offset=1000); "
                "otherwise check the units and the cloud mask"
            )
        else:
            decisions.append(OffsetDecision(name, sel.size, 0.0, "values", p1))
        if tagged:  # some dates tagged, the others decided above: say both
            d = decisions[-1]
            tagged_text = ", ".join(f"{v:g}" for v in sorted({tags[i] for i in tagged}))
            decisions[-1] = replace(d, how=f"{d.how} for {untagged.size} untagged date(s); {len(tagged)} date(s) "
                                           f"tagged BOA_ADD_OFFSET: {tagged_text} DN subtracted there")
    return offsets, decisions
