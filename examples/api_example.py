"""Colourise a Sentinel-1 GeoTIFF from Python: open it with rioxarray, colourise it with sarcolor, plot
SAR | colour | confidence side by side, and write the colours as a Cloud Optimized GeoTIFF.

    pip install 'sarcolor[api]'
    python examples/api_example.py OUTPUT_FOLDER
"""
# %%
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # draw to a file, no screen needed
import matplotlib.pyplot as plt
import rioxarray

import sarcolor

examples = Path(__file__).resolve().parent
out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")

# %% [markdown]
# Open the scene as a `(band, y, x)` DataArray with its CRS and transform, and colourise it. `colorize` reads it
# exactly as `sarcolor colorize` reads the file (the same input scale decision, the same tiles on the map grid),
# so the pixels are the CLI's. `confidence=True` adds the expected colour error per pixel.

# %%
sar = rioxarray.open_rasterio(examples / "s1_vh_fields_california.tif")
result = sarcolor.colorize(sar, confidence=True)
rgb, confidence = result.rgb, result.confidence
print(rgb.dims, rgb.shape, rgb.dtype, rgb.rio.crs)
print({name: rgb.attrs[name] for name in ("model", "detail", "input_scale")})
print(confidence.attrs["units"])

# %% [markdown]
# SAR, colour and confidence side by side (brighter: a larger expected error, the model is less sure).

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 5.4), constrained_layout=True)
sar.squeeze("band").plot.imshow(ax=axes[0], cmap="gray", add_colorbar=False)
rgb.plot.imshow(ax=axes[1], rgb="band")
confidence.plot.imshow(ax=axes[2], cmap="magma", cbar_kwargs={"label": "expected CIEDE2000", "shrink": 0.8})
for ax, title in zip(axes, ("SAR (VH amplitude)", "sarcolor", "confidence: expected colour error")):
    ax.set_title(title)
    ax.set_aspect("equal")
    ax.set_axis_off()
fig.savefig(out / "api_example.png", dpi=60)

# %% [markdown]
# ![SAR, colour and confidence side by side](api_example.png)

# %% [markdown]
# Write the colours as a Cloud Optimized GeoTIFF: rioxarray passes the CRS and transform on.

# %%
rgb.rio.to_raster(out / "fields_colour.tif", driver="COG", compress="deflate")

# %% [markdown]
# A scene larger than memory: open it with Dask chunks (4096 px suit a large scene; this one is small). The result
# is lazy. Its scaling is measured once on the whole scene, then each chunk is coloured with the halo its tiles
# need, so chunks join without a seam; on a `dask.distributed` cluster each worker loads the model once.

# %%
lazy = sarcolor.colorize(rioxarray.open_rasterio(examples / "s1_vh_fields_california.tif", chunks={"x": 512, "y": 512}))
print(lazy.data)
print("same pixels as in memory:", bool((lazy == rgb).all()))

# %% [markdown]
# Colouring many scenes: load the model once and pass it (here at half detail strength). It says what it expects.

# %%
model = sarcolor.load_model("default", detail=0.5)
print(model)
print(model.expected_input, "; detail range", model.detail_range)
soft = sarcolor.colorize(sar, model)

# %% [markdown]
# ## Reference
#
# - `sarcolor.colorize(data, model="default", detail=None, confidence=False, *, band=None, input_scale="auto",
#   tile=512, overlap=32, batch_size=2, device="auto")`: `data` is a DataArray `(y, x)` or `(band, y, x)`, a NumPy
#   array (tiled from its first pixel, no georeferencing) or a path (a GeoTIFF, a Sentinel-1 GRD product). It returns
#   a DataArray `band: [red, green, blue]` (uint8) on the input's grid, with attributes `model`, `detail`,
#   `input_scale`, `input_scale_reason` and `warnings` (when the scene looks unlike the training data); an input
#   that can have nodata adds a `valid` (y, x) coordinate, False where the colours are 0 for lack of data. With
#   `confidence=True` it returns a Dataset of `rgb` and `confidence` (float32, NaN where there is no data).
# - `sarcolor.load_model(model="default", device="auto", threads=0, detail=None)` returns a `sarcolor.Model`:
#   `expected_input`, `convention` (the input scaling), `multiple` (tile sizes), `detail` and `detail_range`,
#   `has_error` and `error_calibration` (error channel to CIEDE2000), `with_detail(value)`; calling it on an
#   `(N, 1, h, w)` float32 batch of model input returns its `(N, C, h, w)` outputs.
# - Every mistake a user can make (dims, band count, no CRS for map coordinates, no valid pixel, an unknown
#   scale) raises `sarcolor.errors.SarcolorError` with a one-line message.
# - xarray and rioxarray come with `pip install 'sarcolor[api]'`; `import sarcolor` and the CLI do not need them.
