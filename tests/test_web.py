"""The web page: colorize_upload directly, then the real server in a headless Chromium."""
import copy
import logging
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import rasterio

from conftest import COAST, EXAMPLES, FIELDS, read_all, run_cli
from test_reference import scene_with_cloudy_reference, scene_with_reference
from test_cli import tiled_example

gradio = pytest.importorskip("gradio", reason="the web extra (gradio) is not installed")

from sarcolor.confidence import legend_rgb  # noqa: E402
from sarcolor.errors import SarcolorError  # noqa: E402
from sarcolor.web import (  # noqa: E402
    DEFAULT_MODEL, Cancelled, ServeOptions, WorkFolders, colorize_upload, markdown_text, public_message,
)
from sarcolor.serve_process import start_serve  # noqa: E402

UPLOAD_LIMIT_MB = 2


@pytest.fixture(scope="module")
def options(model):
    return ServeOptions({DEFAULT_MODEL: model}, max_upload_mb=UPLOAD_LIMIT_MB)


def test_upload_is_colourised_like_the_cli(options, tmp_path, coast_rgb):
    progress = []
    result = colorize_upload(options, WorkFolders(tmp_path), str(COAST), DEFAULT_MODEL, 1, "auto", on_progress=lambda d, t: progress.append((d, t)))
    tiff, png, confidence = map(Path, result.files)
    assert tiff.suffix == ".tif" and png.suffix == ".png" and tiff.parent == Path(result.work_dir)
    assert confidence.name == f"{tiff.stem}_confidence.tif"
    web_rgb, web_profile = read_all(tiff)
    cli_rgb, _ = read_all(coast_rgb)
    np.testing.assert_array_equal(web_rgb, cli_rgb)
    with rasterio.open(COAST) as src:
        assert web_profile["crs"] == src.crs and web_profile["transform"] == src.transform
    png_rgb, _ = read_all(png)
    np.testing.assert_array_equal(png_rgb, cli_rgb)
    sar, rgb = result.previews
    assert sar.shape == rgb.shape == (512, 512, 3) and sar.dtype == rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb, np.moveaxis(cli_rgb, 0, -1))
    assert progress and progress[-1][0] == progress[-1][1]
    # The confidence map: same grid as the colours, shown as a picture, brighter where less sure.
    error, error_profile = read_all(confidence)
    assert error_profile["transform"] == web_profile["transform"] and error.dtype == np.float32
    assert result.confidence.shape == (512, 512, 3) and result.confidence.dtype == np.uint8
    brightness = result.confidence.mean(-1)
    assert np.corrcoef(brightness.ravel(), np.clip(error[0] / 25, 0, 1).ravel())[0, 1] > 0.9
    np.testing.assert_array_equal(result.confidence, legend_rgb(error[0]))  # the legend QGIS gets too
    assert "512 × 512 px" in result.summary and "normalized" in result.summary


def test_a_reference_upload_colours_as_the_cli_s_reference(options, tmp_path):
    """An optical reference uploaded beside the SAR: the CLI's --reference colours, and the summary names it."""
    sar, reference = scene_with_reference(tmp_path)
    result = colorize_upload(options, WorkFolders(tmp_path), str(sar), DEFAULT_MODEL, 1, "auto", reference=str(reference))
    run_cli("colorize", sar, "-o", tmp_path / "cli.tif", "--reference", reference, check=True)
    np.testing.assert_array_equal(read_all(Path(result.files[0]))[0], read_all(tmp_path / "cli.tif")[0])
    assert "Colours fitted on the reference **optical\\.tif**" in result.summary and "clear places" in result.summary
    with pytest.raises(SarcolorError, match=r"^notes\.txt: not a supported image type"):
        colorize_upload(options, WorkFolders(tmp_path), str(sar), DEFAULT_MODEL, 1, "auto",
                        reference=str(Path(shutil.copy(sar, tmp_path / "notes.txt"))))


def test_fill_ticked_fills_the_reference_gaps_as_the_cli_s_fill(options, tmp_path):
    """The 'Fill cloud gaps' box ticked: the CLI's --reference --fill pixels, and the summary says so; ticked without
    a reference, the error names the page's controls."""
    sar, reference = scene_with_cloudy_reference(tmp_path)
    result = colorize_upload(options, WorkFolders(tmp_path), str(sar), DEFAULT_MODEL, 1, "auto", reference=str(reference),
                             fill=True)
    run_cli("colorize", sar, "-o", tmp_path / "cli.tif", "--reference", reference, "--fill", check=True)
    np.testing.assert_array_equal(read_all(Path(result.files[0]))[0], read_all(tmp_path / "cli.tif")[0])
    assert "Its clear pixels are kept as they are" in result.summary
    with pytest.raises(SarcolorError, match=r"^'Fill cloud gaps' ticked needs 'Optical reference': "):
        colorize_upload(options, WorkFolders(tmp_path), str(sar), DEFAULT_MODEL, 1, "auto", fill=True)


def test_a_stack_upload_with_the_band_left_empty_is_colourised_from_its_vh_band(options, tmp_path, bigearthnet_pair):
    from test_readers import write_stack

    vv, vh = bigearthnet_pair
    stack = write_stack(tmp_path / "dual.tif", vv, vh, ("VV", "VH"))
    result = colorize_upload(options, WorkFolders(tmp_path), str(stack), DEFAULT_MODEL, 0, "auto")  # the page's default
    cli_out = tmp_path / "vh.tif"
    run_cli("colorize", vh, "-o", cli_out, check=True)
    np.testing.assert_array_equal(read_all(Path(result.files[0]))[0], read_all(cli_out)[0])
    assert "band 2," in result.summary
    with rasterio.open(vh) as src:
        np.testing.assert_array_equal(result.previews[0][..., 0], _preview_of(src))


def test_an_upload_is_read_once_for_its_colours_and_its_preview(options, tmp_path, caplog):
    """The preview of the input comes from colorize's own reader: one scaling pass, one band-choice log line."""
    with caplog.at_level(logging.INFO, logger="sarcolor"):
        result = colorize_upload(options, WorkFolders(tmp_path), str(COAST), DEFAULT_MODEL, 1, "auto")
    with rasterio.open(COAST) as src:
        np.testing.assert_array_equal(result.previews[0][..., 0], _preview_of(src))
    scale_lines = [r.getMessage() for r in caplog.records if "input scale" in r.getMessage()]
    assert len(scale_lines) == 1, scale_lines


def _preview_of(src) -> np.ndarray:
    from sarcolor.readers.raster import SarReader

    return SarReader(src).preview(1024)


@pytest.mark.parametrize(
    "content, name, message",
    [
        (b"not an image at all", "junk.tif", "cannot read .* as an image"),
        (b"hello", "notes.txt", "not a supported image type"),
        (None, "empty.tif", "upload a SAR image first"),
        (os.urandom(3 * 2**20), "big.tif", f"the upload limit is {UPLOAD_LIMIT_MB} MB"),
    ],
)
def test_bad_uploads_give_a_message_and_leave_nothing(options, tmp_path, content, name, message):
    work_root = tmp_path / "work"
    work_root.mkdir()
    path = None
    if content is not None:
        path = tmp_path / name
        path.write_bytes(content)
    with pytest.raises(SarcolorError, match=message):
        colorize_upload(options, WorkFolders(work_root), str(path) if path else None, DEFAULT_MODEL, 1, "auto")
    assert list(work_root.iterdir()) == []


def test_an_uncalibrated_confidence_map_says_so_in_the_summary(model, tmp_path):
    """A fine-tuned model whose val pairs were too few to calibrate its map (sarcolor.export): no CIEDE2000 claim."""
    uncalibrated = copy.copy(model)
    uncalibrated.error_calibration, uncalibrated.error_uncalibrated = None, "1 val pair(s), too few to say"
    options = ServeOptions({"mine": uncalibrated}, max_upload_mb=UPLOAD_LIMIT_MB)
    summary = colorize_upload(options, WorkFolders(tmp_path), str(FIELDS), "mine", 1, "auto").summary
    assert "Confidence map **uncalibrated**" in summary and "too few to say" in summary and "not CIEDE2000" in summary
    assert "uncalibrated" not in colorize_upload(ServeOptions({"x": model}), WorkFolders(tmp_path), str(FIELDS), "x", 1, "auto").summary


def test_uploaded_file_name_is_shown_as_text_not_markdown(options, tmp_path):
    upload = tmp_path / "[x](javascript:alert(1))<b>_a_.tif"
    upload.write_bytes(FIELDS.read_bytes())
    (tmp_path / "work").mkdir()
    summary = colorize_upload(options, WorkFolders(tmp_path / "work"), str(upload), DEFAULT_MODEL, 1, "auto").summary
    assert "](" not in summary and "<b>" not in summary
    assert summary.startswith(r"**\[x\]\(javascript:alert\(1\)\)\<b\>\_a\_\.tif**")


def test_all_nodata_upload_gives_a_message(options, tmp_path):
    work_root = tmp_path / "work"
    work_root.mkdir()
    path = tmp_path / "nan.tif"
    with rasterio.open(COAST) as src:
        profile = {**src.profile, "dtype": "float32"}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.full((1, 512, 512), np.nan, np.float32))
    with pytest.raises(SarcolorError, match="no valid pixels"):
        colorize_upload(options, WorkFolders(work_root), str(path), DEFAULT_MODEL, 1, "auto")
    assert list(work_root.iterdir()) == []


def header_only_tiff(path: Path, width: int, height: int) -> Path:
    """A tiny sparse GeoTIFF whose header claims ``width`` × ``height`` px (a few KB on disk)."""
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=1, dtype="uint16",
                       tiled=True, blockxsize=512, blockysize=512, SPARSE_OK=True, BIGTIFF="YES") as dst:
        dst.write(np.ones((1, 512, 512), np.uint16), window=rasterio.windows.Window(0, 0, 512, 512))
    return path


def test_huge_header_is_refused_before_any_work(options, tmp_path):
    """Issue 14: a 1.7 MB file whose header said 100000 x 100000 px held a slot for 46 minutes."""
    huge = header_only_tiff(tmp_path / "huge.tif", 100_000, 100_000)
    assert huge.stat().st_size < 2**20
    (tmp_path / "work").mkdir()
    started = time.perf_counter()
    with pytest.raises(SarcolorError, match=r"huge.tif is 100000 × 100000 px; this server takes images up to 64 megapixels"):
        colorize_upload(options, WorkFolders(tmp_path / "work"), str(huge), DEFAULT_MODEL, 1, "auto")
    assert time.perf_counter() - started < 5
    assert list((tmp_path / "work").iterdir()) == []


def test_a_running_large_image_leaves_room_for_small_ones(options, tmp_path):
    large = header_only_tiff(tmp_path / "large.tif", 5000, 4000)  # 20 MP: large, within the limit
    work = WorkFolders(tmp_path / "work")
    work.root.mkdir()
    assert options.large_job.acquire(blocking=False)  # as if another large image were running
    try:
        with pytest.raises(SarcolorError, match="busy with another large image; send large.tif again"):
            colorize_upload(options, work, str(large), DEFAULT_MODEL, 1, "auto")
        assert "512 × 512 px" in colorize_upload(options, work, str(COAST), DEFAULT_MODEL, 1, "auto").summary
    finally:
        options.large_job.release()


def test_cancel_stops_the_run_and_leaves_nothing(options, tmp_path):
    work = WorkFolders(tmp_path / "work")
    work.root.mkdir()
    calls = []

    def cancel_after_first(done, total):
        calls.append(done)
        raise Cancelled("cancelled")

    with pytest.raises(Cancelled):
        colorize_upload(options, work, str(COAST), DEFAULT_MODEL, 1, "auto", on_progress=cancel_after_first)
    assert len(calls) == 1 and list(work.root.iterdir()) == []


def test_work_folders_of_finished_requests_are_swept_by_age(tmp_path):
    work = WorkFolders(tmp_path, max_age_s=60)
    finished, running, young = work.new(), work.new(), work.new()
    work.finished(finished)
    work.finished(young)
    for folder in (finished, running):
        os.utime(folder, (time.time() - 120, time.time() - 120))
    work.sweep()
    assert sorted(tmp_path.iterdir()) == sorted([running, young])


# -- the real server in a real browser ------------------------------------------------------


def chromium_path() -> str:
    """Debian's chromium; the test setup installs it where it can (root with apt-get, as in CI)."""
    found = shutil.which("chromium")
    failure = ""
    if found is None and shutil.which("apt-get") and os.geteuid() == 0:
        for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
            done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
            if done.returncode != 0:
                failure = f"; '{' '.join(command)}' failed: {(done.stderr.strip().splitlines() or ['no message'])[-1]}"
                break
        found = shutil.which("chromium")
    if found is None:
        pytest.skip(f"no chromium browser for the browser test (apt-get install chromium){failure}")
    return found


def start_server(tmp: Path, upload_limit_mb: int = UPLOAD_LIMIT_MB) -> tuple[str, subprocess.Popen]:
    env = {**os.environ, "TMPDIR": str(tmp), "GRADIO_TEMP_DIR": str(tmp / "gradio"), "GRADIO_ANALYTICS_ENABLED": "False"}
    with open(tmp / "server.log", "w") as log_file:
        try:
            return start_serve(["--max-upload-mb", str(upload_limit_mb), "--examples", str(EXAMPLES)], env, log_file)
        except RuntimeError as exc:
            pytest.fail(f"{exc}: {(tmp / 'server.log').read_text()[-2000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("playwright", reason="playwright is not installed")
    tmp = tmp_path_factory.mktemp("server")
    url, process = start_server(tmp)
    yield url, tmp
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(120_000)
    page.goto(server[0])
    yield page
    context.close()


def choose_file(page, path: Path) -> None:
    clear = page.locator('#upload button[aria-label="Clear"]')  # a previous upload hides the file input
    if clear.count():
        clear.first.click()
    page.set_input_files("#upload input[type=file]", str(path))


def upload_and_colourise(page, path: Path) -> None:
    choose_file(page, path)
    page.locator(f'#upload [aria-label="{path.name}"]').first.wait_for()
    page.click("#colorize")


def test_browser_colourises_and_downloads_a_georeferenced_geotiff(page, server, tmp_path):
    upload_and_colourise(page, FIELDS)
    page.locator("#result img").first.wait_for(state="visible")
    page.locator("#summary").get_by_text("512 × 512 px").wait_for()
    page.get_by_text("How sure is the model?").click()  # the confidence map, in its panel
    page.locator("#confidence img").first.wait_for(state="visible")
    assert page.locator('#downloads a[download$="_confidence.tif"]').count() == 1
    link = page.locator('#downloads a[download$="_sarcolor.tif"]').first
    with page.expect_download() as download:
        link.click()
    target = tmp_path / "download.tif"
    download.value.save_as(target)
    rgb, profile = read_all(target)
    with rasterio.open(FIELDS) as src:
        assert profile["crs"] == src.crs and profile["crs"].to_epsg() == 3395
        assert profile["transform"] == src.transform
    assert rgb.shape == (3, 512, 512)
    page.screenshot(path=str(server[1] / "page.png"), full_page=True)
    # The request's work folder is gone once the page has its files; the server keeps none.
    work_roots = list(server[1].glob("sarcolor-serve-*"))
    assert len(work_roots) == 1
    deadline = time.time() + 10
    while any(work_roots[0].iterdir()) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(work_roots[0].iterdir())


def test_browser_shows_a_message_for_junk_and_keeps_serving(page, tmp_path):
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"this is not a GeoTIFF")
    upload_and_colourise(page, junk)
    message = page.get_by_text("cannot read junk.tif as an image").first
    message.wait_for(state="visible")
    assert "/tmp" not in message.inner_text()  # the user sees their file's name, not the server's paths
    big = tmp_path / "big.tif"
    big.write_bytes(os.urandom((UPLOAD_LIMIT_MB + 1) * 2**20))
    choose_file(page, big)
    page.get_by_text(f"exceed the maximum allowed size of {UPLOAD_LIMIT_MB}").first.wait_for(state="visible")
    upload_and_colourise(page, COAST)
    page.locator("#summary").get_by_text("s1_vh_coast_california.tif").wait_for()


def test_browser_example_gallery_runs_in_one_click(page):
    """Issue 12: the examples are thumbnails of their SAR, not a table of file names; one click colourises one."""
    thumbnails = page.locator("#examples img")
    thumbnails.first.wait_for(state="visible")
    assert thumbnails.count() == len(list(EXAMPLES.glob("*.tif")))
    assert page.locator("#examples").get_by_text(FIELDS.name).count() >= 1  # captioned with the file name
    assert page.locator("#examples table").count() == 0
    page.locator("#examples button").filter(has_text=FIELDS.name).first.click()
    page.locator("#summary").get_by_text(FIELDS.name).wait_for()
    page.locator("#result img").first.wait_for(state="visible")  # the summary can render a moment before the image


def test_two_users_at_once_get_their_own_results(server):
    from gradio_client import Client, handle_file

    client = Client(server[0], verbose=False)
    # One documented endpoint; the page's helper events (model -> detail, cancel, clean-up) are not API.
    assert list(client.view_api(return_format="dict", print_info=False)["named_endpoints"]) == ["/colorize"]

    def colourise(path: Path):
        return client.predict(handle_file(str(path)), DEFAULT_MODEL, 1, "auto", 1.0, api_name="/colorize")

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(colourise, [COAST, FIELDS]))
    for (_, _, files, summary), source in zip(results, [COAST, FIELDS]):
        assert markdown_text(source.name) in summary
        tiff = next(Path(f) for f in files if str(f).endswith("_sarcolor.tif"))
        assert tiff.name == f"{source.stem}_sarcolor.tif"
        with rasterio.open(tiff) as dst, rasterio.open(source) as src:
            assert dst.crs == src.crs and dst.transform == src.transform


def api_colourise(url: str, path: Path):
    from gradio_client import Client, handle_file

    return Client(url, verbose=False).predict(handle_file(str(path)), DEFAULT_MODEL, 1, "auto", 1.0, api_name="/colorize")


def test_huge_uploads_do_not_block_small_ones(server, tmp_path):
    """Issue 14: two small files whose headers claim 100000 x 100000 px filled both slots for 46 min."""
    from gradio_client.exceptions import AppError

    huge = [header_only_tiff(tmp_path / f"huge{i}.tif", 100_000, 100_000) for i in range(2)]
    started = time.perf_counter()
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(api_colourise, server[0], path) for path in [*huge, COAST]]
        for future in futures[:2]:
            with pytest.raises(AppError, match="this server takes images up to 64 megapixels"):
                future.result()
        _, _, files, summary = futures[2].result()
    assert "512 × 512 px" in summary and len(files) == 3  # GeoTIFF, PNG, confidence map
    assert time.perf_counter() - started < 120


def test_sigterm_removes_the_work_folders(tmp_path):
    """Issue 14: SIGTERM left the whole work root (API calls never run the page's clean-up step)."""
    pytest.importorskip("gradio_client")
    url, process = start_server(tmp_path)
    try:
        api_colourise(url, FIELDS)
        roots = list(tmp_path.glob("sarcolor-serve-*"))
        assert len(roots) == 1 and len(list(roots[0].iterdir())) == 1  # the API call's folder, kept for its age limit
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert process.returncode is not None
    assert not list(tmp_path.glob("sarcolor-serve-*"))


def test_error_messages_name_files_not_server_paths(tmp_path):
    work = WorkFolders(tmp_path / "work")
    upload = "/tmp/gradio/0123abcd/scene.tif"
    folder = work.root / "9f86d081884c7d659a2feaa0c55ad015"
    message = public_message(f"cannot write {folder}/scene_sarcolor.tif: no space left on device ({upload})", upload, work.root)
    assert message == "cannot write scene_sarcolor.tif: no space left on device (scene.tif)"


# -- issue 24: an API client's cancel, or its disconnection, stops the run ----------------------------


@pytest.fixture(scope="module")
def roomy_server(tmp_path_factory):
    """A server taking a 6144² scene (25 MB): a run of several seconds, long enough to stop half-way."""
    pytest.importorskip("gradio_client")
    tmp = tmp_path_factory.mktemp("roomy")
    scene = tiled_example(tmp / "big.tif", repeat=12)
    url, process = start_server(tmp, upload_limit_mb=100)
    yield url, tmp, scene
    process.terminate()
    process.wait(timeout=30)


def running_request_folder(tmp: Path, seconds: float = 120) -> Path:
    """The work folder of the request now writing its output (its temporary GeoTIFF exists)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        for temp in tmp.glob("sarcolor-serve-*/*/.big_sarcolor.tif.*.tif"):
            return temp.parent
        time.sleep(0.05)
    pytest.fail("no run started writing its output")


def assert_run_stops_and_leaves_nothing(folder: Path, seconds: float = 60) -> None:
    """A run that goes on to the end writes big_sarcolor.tif/.png and keeps its folder (for its age limit);
    a stopped one removes the folder without writing them."""
    deadline = time.time() + seconds
    while folder.exists() and time.time() < deadline:
        assert not list(folder.glob("big_sarcolor*")), "the run wrote its outputs after the client stopped it"
        time.sleep(0.1)
    assert not folder.exists()


def test_api_cancel_stops_the_run(roomy_server):
    """Issue 24: Job.cancel() showed CANCELLED while the server finished the job and wrote every output."""
    from gradio_client import Client, handle_file

    url, tmp, scene = roomy_server
    job = Client(url, verbose=False).submit(handle_file(str(scene)), DEFAULT_MODEL, 1, "auto", 1.0, api_name="/colorize")
    folder = running_request_folder(tmp)
    job.cancel()
    assert_run_stops_and_leaves_nothing(folder)


def test_a_client_that_disconnects_stops_its_run(roomy_server):
    url, tmp, scene = roomy_server
    client = (
        "import time; from gradio_client import Client, handle_file; "
        f"Client({url!r}, verbose=False).submit(handle_file({str(scene)!r}), {DEFAULT_MODEL!r}, 1, 'auto', 1.0, api_name='/colorize'); "
        "time.sleep(600)"
    )
    process = subprocess.Popen([sys.executable, "-c", client])
    try:
        folder = running_request_folder(tmp)
    finally:
        process.kill()
        process.wait()
    assert_run_stops_and_leaves_nothing(folder)
