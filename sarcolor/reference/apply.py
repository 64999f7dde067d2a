"""A reference image put to use for one SAR scene: opened on its grid, the colours fitted, the output's tags."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterator

from sarcolor.readers import name_time
from sarcolor.reference.fit import HeadFit, fit_head
from sarcolor.reference.image import ReferenceImage


@dataclass
class FittedReference:
    image: ReferenceImage
    fit: HeadFit
    model: object  # the model with the fitted colour head

    @property
    def date(self) -> datetime | None:
        return self.image.taken or name_time(self.image.path.name)  # Sentinel-2 names carry their sensing time

    def tags(self, fill: bool) -> dict[str, str]:
        taken = self.date
        return {
            "SARCOLOR_REFERENCE": self.image.path.name,
            **({"SARCOLOR_REFERENCE_DATE": taken.strftime("%Y-%m-%dT%H:%M:%SZ")} if taken else {}),
            "SARCOLOR_REFERENCE_CLEAR": f"{100 * self.image.clear_share:.1f} %",
            "SARCOLOR_REFERENCE_STRETCH": self.image.stretch,
            "SARCOLOR_REFERENCE_FIT": f"{self.fit.form}, on {self.fit.places} clear places "
                                      f"(held-out RMS error {self.fit.held_out_error:.1f} levels)",
            "SARCOLOR_REFERENCE_FILL": "clear reference pixels kept, SAR colours in its gaps" if fill else "no",
        }


@contextmanager
def fitted_reference(path: str | Path, sar_src, model, read_sar, plan, overlap: int,
                     bands: tuple[int, ...] | None = None) -> Iterator[FittedReference]:
    """``path`` opened on ``sar_src``'s grid and ``model``'s colours fitted on it (``read_sar``: the scene's reader,
    ``plan``: its tiles); the reference stays open for ``--fill`` while in the block."""
    with ReferenceImage.open(path, sar_src, bands) as image:
        fit = fit_head(model, read_sar, image, plan, overlap)
        yield FittedReference(image, fit, model.with_head_change(*fit.head_change(model.head)))
