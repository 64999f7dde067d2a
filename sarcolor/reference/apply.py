"""A reference image put to use for one SAR scene: opened on its grid, the colours fitted, the output's tags.

The colours are fitted on the SAR scene being coloured, or on another SAR scene of the same place taken when the
reference was (``--reference-sar``): then the reference says what colour each kind of place had on its date, and the
coloured scene's radar says where each kind of place is on its own date (a crop grown, a field flooded since). A fit
on the coloured scene itself pairs today's radar with the reference's old colours, so a reference more than
``DATE_GAP_DAYS`` away from the scene it is fitted on is said in a warning.
"""
from __future__ import annotations

import logging
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

from sarcolor.errors import SarcolorError
from sarcolor.readers import name_time
from sarcolor.reference.fit import HeadFit, fit_head
from sarcolor.reference.image import ReferenceImage
from sarcolor.tiling import TilePlan

log = logging.getLogger(__name__)

DATE_GAP_DAYS = 30  # a reference further than this from the SAR it is fitted on shows another season
# With a reference and no detail strength asked for: the fitted colours without the model's own texture. On the 8 val
# scenes' clouded pixels 17.57 dB against 16.86 at detail 1, better on all 8 (SSIM and CIEDE2000 too).
REFERENCE_DETAIL = 0.0


def check_reference_sar(reference_sar, reference) -> None:
    if reference_sar is not None and reference is None:
        raise SarcolorError("--reference-sar needs --reference: the optical image of that SAR scene's date")


def with_reference_detail(model, detail_given: float | None, reference):
    """``model`` at ``REFERENCE_DETAIL`` when a reference is given and no detail strength was, else as it is."""
    if reference is None or detail_given is not None or not getattr(model, "has_detail", False):
        return model
    return model.with_detail(REFERENCE_DETAIL)


@dataclass
class FitScene:
    """The SAR scene the colours are fitted on: its dataset (whose grid the reference is read onto), reader,
    tiles, file name and acquisition time (None where unknown)."""

    src: object
    read: Callable
    plan: TilePlan
    name: str
    taken: datetime | None


@dataclass
class FittedReference:
    image: ReferenceImage
    fit: HeadFit
    model: object  # the model with the fitted colour head
    fitted_on: FitScene
    own_scene: bool  # fitted on the scene being coloured (not on --reference-sar)

    @property
    def date(self) -> datetime | None:
        return self.image.taken or name_time(self.image.path.name, self.image.path.parent.name)  # S2 names carry it

    @property
    def date_notice(self) -> str | None:
        """A warning when the reference and the SAR it was fitted on are months apart, else None."""
        if self.date is None or self.fitted_on.taken is None:
            return None
        days = abs((self.fitted_on.taken - self.date).days)
        if days <= DATE_GAP_DAYS:
            return None
        if self.own_scene:
            return (f"the reference was taken {days} days from the SAR scene: its colours are those of its own date "
                    f"(crops grown or harvested since keep their old colours); give --reference-sar, a SAR scene of "
                    f"the reference's date, to fit the colours there")
        return (f"the --reference-sar scene {self.fitted_on.name} was taken {days} days from the reference: "
                f"give one of the reference's date (within {DATE_GAP_DAYS} days)")

    def tags(self, fill: bool) -> dict[str, str]:
        taken = self.date
        return {
            "SARCOLOR_REFERENCE": self.image.path.name,
            **({"SARCOLOR_REFERENCE_DATE": taken.strftime("%Y-%m-%dT%H:%M:%SZ")} if taken else {}),
            "SARCOLOR_REFERENCE_CLEAR": f"{100 * self.image.clear_share:.1f} %",
            "SARCOLOR_REFERENCE_STRETCH": self.image.stretch,
            "SARCOLOR_REFERENCE_FIT": f"{self.fit.form}, on {self.fit.places} clear places"
                                      + (f" of {self.fit.scenes} SAR scenes, one fit for all" if self.fit.scenes > 1 else "")
                                      + f" (held-out RMS error {self.fit.held_out_error:.1f} levels)",
            **({} if self.own_scene else {"SARCOLOR_REFERENCE_SAR": self.fitted_on.name}),
            "SARCOLOR_REFERENCE_FILL": "clear reference pixels kept, SAR colours in its gaps" if fill else "no",
            **({"SARCOLOR_REFERENCE_CONFIDENCE": self.fit.error.describe()} if self.fit.error else {}),
        }


@contextmanager
def fitted_reference(path: str | Path, sar_src, model, fit_on: FitScene, bands: tuple[int, ...] | None = None,
                     fit: HeadFit | None = None) -> Iterator[FittedReference]:
    """``path`` opened on ``sar_src``'s grid (the scene being coloured) and ``model``'s colours fitted on it as seen
    by ``fit_on`` (that scene itself, or a SAR scene of the reference's date), or given a ``fit`` made already (one
    fit shared by the scenes of a time series); the reference stays open for ``--fill`` while in the block."""
    with ExitStack() as stack:
        image = stack.enter_context(ReferenceImage.open(path, sar_src, bands))
        own_scene = fit_on.src is sar_src
        if fit is None:
            seen = image if own_scene else stack.enter_context(ReferenceImage.open(path, fit_on.src, bands))
            fit = fit_head(model, fit_on.read, seen, fit_on.plan, fit_on.plan.rows.overlap)
        calibration = fit.error.calibration if fit.error else None
        changed = model.with_head_change(*fit.head_change(model.head), calibration)
        fitted = FittedReference(image, fit, changed, fit_on, own_scene)
        if not own_scene:
            log.info("reference colours fitted on %s, the SAR scene of the reference's date", fit_on.name)
        if fitted.date_notice:
            log.warning("%s", fitted.date_notice)
        yield fitted
