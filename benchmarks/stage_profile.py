"""Where a scene's colourisation time goes, stage by stage, beside GDAL's own read and write of the same scene.

The scene is a uint16 GeoTIFF of GRD-like amplitude DNs tiled from the real example (colorize_speed.make_scene;
default a full 25,000 x 17,000 Sentinel-1 IW scene). Three parts, one command:

1. Stages, one after the other in this process (no overlap, so each is its own): open and the quantile pass
   (a decimated read), the out-of-domain statistics, the strip reads (scaled to model input), the model, the
   Hann blend, the conversion to 8 bits, the GeoTIFF writes, closing (the rest of the DEFLATE compression),
   and the decode check. Wall seconds and CPU seconds (all threads of the process).
2. The physical floor: GDAL reading every strip of the input (no scaling), and GDAL copying the written RGB
   output with the same creation options (a decode and a DEFLATE write of exactly the output's bytes).
3. End to end: ``colorize_file`` in a fresh process (reads, model and writes overlapped in threads), with and
   without the confidence map: seconds and peak RSS.

    python benchmarks/stage_profile.py [--size 25000x17000] [--tile 512] [--overlap 32] [--batch 2] [--skip-stages]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.windows import Window

sys.path.insert(0, str(Path(__file__).resolve().parent))
from colorize_speed import machine, make_scene, measure, parse_size  # noqa: E402

from sarcolor.backends import load_model  # noqa: E402
from sarcolor.infer import (  # noqa: E402
    GDAL_CACHE_BYTES, ColorizeOptions, channels_needed, tile_plan, to_uint8, writing_cache_bytes,
)
from sarcolor.io import RasterWriter, check_tiff_complete, geotiff_profile, writing_together  # noqa: E402
from sarcolor.novelty import scene_statistics  # noqa: E402
from sarcolor.readers import open_input  # noqa: E402
from sarcolor.tiling import StripBlender  # noqa: E402


class StageClock:
    """Wall and CPU seconds summed per stage name, in the order the stages first ran."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str):
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        self.wall[stage] = self.wall.get(stage, 0.0) + time.perf_counter() - wall
        self.cpu[stage] = self.cpu.get(stage, 0.0) + time.process_time() - cpu


def profile_stages(scene: Path, out: Path, model, tile: int, overlap: int, batch: int, clock: StageClock) -> None:
    """Colourise ``scene`` into ``out`` with every stage run on its own, timed by ``clock``."""
    net = channels_needed(model, ColorizeOptions())
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):
        with clock("open + quantile pass (decimated read)"):
            context = open_input(scene, 1, "auto", model.convention["quantile"])
            opened = context.__enter__()
        reader = opened.reader
        values, valid = reader._decimated_values()
        model_input = reader.scaling.apply(values[valid], reader.value_dtype)
        with clock("out-of-domain statistics"):  # opening computed them once already: taken out of its time below
            scene_statistics(model_input)
            reader.scene_warning(model.training_scenes)
        for times in (clock.wall, clock.cpu):
            times["open + quantile pass (decimated read)"] -= times["out-of-domain statistics"]
        plan = tile_plan(reader, tile, overlap, model)
        rows, cols = plan.rows, plan.cols
        span = cols.offsets[-1] + cols.tile - cols.offsets[0]
        margin = -cols.offsets[0]
        writer = RasterWriter(out, opened.src, reader.may_have_invalid)
        with rasterio.Env(GDAL_CACHEMAX=writing_cache_bytes(reader.width, rows.tile, False)), writing_together(writer):
            blender = None
            for i, y in enumerate(rows.offsets):
                with clock("read strips (scaled to model input)"):
                    strip, strip_valid = reader.read(Window(cols.offsets[0], y, span, rows.tile))
                starts = [x - cols.offsets[0] for x in cols.offsets]
                for b in range(0, len(starts), batch):
                    with clock("model"):
                        preds = net(np.stack([strip[:, s : s + tile] for s in starts[b : b + batch]])[:, None])
                    with clock("blend"):
                        for s, pred in zip(starts[b : b + batch], preds):
                            blender = blender or StripBlender(plan, pred.shape[0])
                            blender.add(s, pred)
                with clock("blend"):
                    done, values = blender.final_rows(i)
                if values is None:
                    continue
                row_valid = strip_valid[done, margin : margin + cols.length]
                with clock("to 8 bits"):
                    rgb = to_uint8(values, row_valid)
                with clock("write (GeoTIFF blocks, DEFLATE)"):
                    writer.write(y + done.start, rgb, row_valid)
            with clock("close (rest of DEFLATE)"):
                writer.close()
            with clock("decode check"):
                check_tiff_complete(writer._tiff_path)
            with clock("floor: GDAL copy of the output (decode + DEFLATE write)"):
                copy_like_output(writer._tiff_path, out.with_name("copy.tif"), opened.src)
        context.__exit__(None, None, None)
    with clock("floor: GDAL read of the input strips"):
        read_raw_strips(scene, rows.offsets, rows.tile)


def copy_like_output(tiff: Path, target: Path, src) -> None:
    """GDAL's own copy of an RGB output with the output's creation options."""
    options = {k: v for k, v in geotiff_profile(src).items()
               if k not in ("driver", "count", "dtype", "width", "height", "crs", "transform")}
    rasterio.shutil.copy(tiff, target, driver="GTiff", **options)
    target.unlink()


def read_raw_strips(scene: Path, row_offsets: list[int], tile: int) -> None:
    """The input's values and mask, strip by strip as the pipeline reads them, without scaling."""
    with rasterio.open(scene) as src:
        for y in row_offsets:
            window = Window(0, max(y, 0), src.width, min(y + tile, src.height) - max(y, 0))
            src.read(1, window=window)
            src.read_masks(1, window=window)


def print_stage_table(clock: StageClock, pixels: int) -> None:
    pipeline = [s for s in clock.wall if not s.startswith("floor")]
    total_wall, total_cpu = sum(clock.wall[s] for s in pipeline), sum(clock.cpu[s] for s in pipeline)
    print("| stage | seconds | CPU seconds | share of the stages' wall time | MP/s |")
    print("|---|---|---|---|---|")
    for stage in clock.wall:
        share = "" if stage.startswith("floor") else f"{clock.wall[stage] / total_wall:.0%}"
        rate = pixels / 1e6 / clock.wall[stage] if clock.wall[stage] > 0 else float("inf")
        print(f"| {stage} | {clock.wall[stage]:.1f} | {clock.cpu[stage]:.1f} | {share} | {rate:.1f} |")
    print(f"| **stages one after another** | **{total_wall:.1f}** | **{total_cpu:.1f}** | 100% | {pixels / 1e6 / total_wall:.1f} |")
    print()


def load_average() -> str:
    return " / ".join(f"{v:.1f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("25000x17000"), help="N or WxH")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--batch", type=int, default=2, help="tiles per model call in the stage profile")
    parser.add_argument("--skip-stages", action="store_true", help="only the end-to-end runs")
    parser.add_argument("--skip-end-to-end", action="store_true", help="only the stage profile")
    args = parser.parse_args()
    width, height = args.size
    print(f"machine: {machine()}\nscene: {width}x{height} uint16 (GRD-like DNs), tile {args.tile}, overlap {args.overlap}\n")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        scene = tmp / "scene.tif"
        make_scene(width, height, scene, dtype="uint16")
        if not args.skip_stages:
            clock = StageClock()
            print(f"load average before the stages: {load_average()}")
            profile_stages(scene, tmp / "stages.tif", load_model("default", "cpu"), args.tile, args.overlap, args.batch, clock)
            print(f"load average after: {load_average()}\n")
            print_stage_table(clock, width * height)
        if not args.skip_end_to_end:
            print("| end to end (fresh process) | seconds | MP/s | peak RSS (MB) | load average before |")
            print("|---|---|---|---|---|")
            for model in ("default", "default+confidence"):
                load = load_average()
                result = measure(model, scene, tmp / "out.tif", args.tile, args.overlap)
                print(f"| {model} | {result['seconds']:.1f} | {width * height / 1e6 / result['seconds']:.2f} "
                      f"| {result['peak_rss_mb']:.0f} | {load} |")
                sys.stdout.flush()


if __name__ == "__main__":
    main()
