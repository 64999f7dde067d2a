"""Evaluation report folder: metrics.csv, metrics.json, report.md, report.html, bar charts and strips."""
from __future__ import annotations

import csv
import html
import json
from pathlib import Path

import numpy as np

from sarcolor.data import Pair
from sarcolor.evaluate import Evaluation
from sarcolor.figures import labelled_strip, metric_bars
from sarcolor.metrics import METRICS

COLUMNS = [
    ("psnr", "PSNR (dB) ↑", "{:.2f}"), ("ssim", "SSIM ↑", "{:.3f}"), ("mse", "MSE ↓", "{:.4f}"),
    ("delta_e00", "ΔE00 ↓", "{:.2f}"), ("colourfulness_ratio", "colourfulness ratio (→1)", "{:.2f}"),
    ("sharpness_ratio", "sharpness ratio (→1)", "{:.2f}"), ("colour_swd", "colour SWD (Lab) ↓", "{:.2f}"),
    ("grid_4px", "4-px grid (≈1)", "{:.1f}"),
]
STRIP_SIDE = 256  # panel size in the per-image strips


def table_rows(evaluation: Evaluation) -> list[list[str]]:
    return [[method] + [fmt.format(m[key]) for key, _, fmt in COLUMNS] for method, m in evaluation.means().items()]


def markdown_table(evaluation: Evaluation) -> str:
    lines = ["| method | " + " | ".join(title for _, title, _ in COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(evaluation)]
    return "\n".join(lines)


def html_table(evaluation: Evaluation) -> str:
    head = "".join(f"<th>{html.escape(t)}</th>" for t in ["method", *(title for _, title, _ in COLUMNS)])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table_rows(evaluation))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_metrics_csv(evaluation: Evaluation, path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["method", "id", *METRICS])
        writer.writeheader()
        for row in evaluation.rows:
            writer.writerow({k: (f"{v:.5f}" if isinstance(v, float) else v) for k, v in row.items()})


def write_json(evaluation: Evaluation, path: Path) -> None:
    path.write_text(json.dumps({"split": evaluation.split, "mean": evaluation.means(), "images": evaluation.rows}, indent=1))


def _thumb(image: np.ndarray) -> np.ndarray:
    step = max(1, image.shape[-1] // STRIP_SIDE)
    return image[..., ::step, ::step]


def write_strips(pairs: list[Pair], predictions: dict[str, dict[str, np.ndarray]], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for pair in pairs:
        panels = [_thumb(pair.sar)] + [_thumb(predictions[m][pair.id]) for m in predictions] + [_thumb(pair.opt)]
        labels = ["SAR (VH)", *predictions, "optical (Sentinel-2)"]
        path = folder / f"{pair.id}.png"
        labelled_strip(panels, labels, path)
        paths.append(path)
    return paths


def write_report(evaluation: Evaluation, pairs: list[Pair], predictions: dict, out: Path, title: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_metrics_csv(evaluation, out / "metrics.csv")
    write_json(evaluation, out / "metrics.json")
    metric_bars(evaluation.means(), list(METRICS), out / "metrics.png")
    strips = [p.relative_to(out) for p in write_strips(pairs, predictions, out / "strips")]
    notes = (
        "Scores are on the 8-bit images sarcolor writes. Ratios are prediction / real (1 is ideal). "
        "LPIPS and FID are not reported: their backbone weights do not ship inside a pip package and "
        "cannot be downloaded here; no stand-in is reported under their names."
    )
    md = [f"# {title}", "", markdown_table(evaluation), "", notes, "", "![metrics](metrics.png)", ""]
    md += [f"![{s.stem}]({s.as_posix()})" for s in strips]
    (out / "report.md").write_text("\n".join(md) + "\n")
    images = "".join(f'<figure><img src="{s.as_posix()}" alt="{s.stem}"><figcaption>{s.stem}</figcaption></figure>' for s in strips)
    (out / "report.html").write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>" + html.escape(title) + "</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child{text-align:left}"
        "img{max-width:100%}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{html_table(evaluation)}<p>{html.escape(notes)}</p>"
        f"<img src='metrics.png' alt='metrics'>{images}</body></html>"
    )
