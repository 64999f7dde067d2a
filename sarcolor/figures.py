"""Pictures for people: SAR | prediction | optical strips, metric bar charts, loss curves."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

GAP = 8  # white pixels between panels


def _rgb(panel: np.ndarray) -> np.ndarray:
    """(H, W) grey or (3, H, W) RGB uint8 -> (H, W, 3)."""
    return np.repeat(panel[..., None], 3, -1) if panel.ndim == 2 else np.moveaxis(panel, 0, -1)


def _join(images: list[np.ndarray], axis: int) -> np.ndarray:
    """(H, W, 3) images joined along ``axis`` (0: down, 1: across) with white gaps between them."""
    gap_shape = list(images[0].shape)
    gap_shape[axis] = GAP
    gap = np.full(gap_shape, 255, np.uint8)
    out = [images[0]]
    for image in images[1:]:
        out += [gap, image]
    return np.concatenate(out, axis=axis)


def strip(panels: list[np.ndarray]) -> np.ndarray:
    """Panels side by side with white gaps, as an (H, W, 3) uint8 image."""
    return _join([_rgb(p) for p in panels], axis=1)


def grid(rows: list[np.ndarray]) -> np.ndarray:
    """Strips stacked top to bottom with white gaps."""
    return _join(rows, axis=0)


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(image: np.ndarray, path: Path) -> None:
    from skimage.io import imsave

    imsave(path, image, check_contrast=False)


def labelled_strip(panels: list[np.ndarray], labels: list[str], path: Path) -> None:
    """A strip with a caption over each panel, saved with matplotlib."""
    plt = _pyplot()
    h, w = panels[0].shape[-2:]
    fig, axes = plt.subplots(1, len(panels), figsize=(len(panels) * 3.2, 3.5 * h / w), dpi=100)
    for ax, panel, label in zip(np.atleast_1d(axes), panels, labels):
        ax.imshow(_rgb(panel), interpolation="nearest")
        ax.set_title(label, fontsize=10)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def metric_bars(means: dict[str, dict[str, float]], metrics: list[str], path: Path) -> None:
    """One bar chart per metric, methods side by side."""
    plt = _pyplot()
    methods = list(means)
    cols = 4
    rows = int(np.ceil(len(metrics) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 3.4, rows * 3.0), dpi=100)
    colours = plt.cm.tab10(np.arange(len(methods)))
    for ax, metric in zip(axes.ravel(), metrics):
        values = [means[m][metric] for m in methods]
        ax.bar(range(len(methods)), values, color=colours)
        ax.set_xticks(range(len(methods)), methods, rotation=30, ha="right", fontsize=8)
        ax.set_title(metric, fontsize=10)
        if metric.endswith("_ratio"):
            ax.axhline(1.0, color="k", lw=0.8, ls="--")
    for ax in axes.ravel()[len(metrics):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def loss_curves(log_csv: Path, path: Path) -> None:
    """Plot every column of a training loss log against the step."""
    plt = _pyplot()
    with open(log_csv) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    terms = [k for k in rows[0] if k not in ("step", "seconds")]
    fig, axes = plt.subplots(1, len(terms), figsize=(len(terms) * 2.8, 2.6), dpi=100)
    for ax, term in zip(np.atleast_1d(axes), terms):
        points = [(int(r["step"]), float(r[term])) for r in rows if r.get(term) not in ("", None)]
        if points:
            steps, values = zip(*points)
            ax.plot(steps, values, lw=0.8)
        ax.set_title(term, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def reliability_plot(bins: list[dict[str, float]], path: Path) -> None:
    """Mean actual vs mean expected CIEDE2000 per bin of blocks, against the diagonal of perfect calibration."""
    plt = _pyplot()
    expected = [b["expected"] for b in bins]
    actual = [b["actual"] for b in bins]
    fig, ax = plt.subplots(figsize=(4, 4))
    top = max(max(expected), max(actual)) * 1.1
    ax.plot([0, top], [0, top], color="0.7", linestyle="--", label="perfect calibration")
    ax.plot(expected, actual, marker="o", label="blocks of 32x32 px, binned")
    ax.set_xlabel("expected CIEDE2000 (confidence map)")
    ax.set_ylabel("actual CIEDE2000")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
