"""The QGIS plugin (issue 22): its zip, its two ways to sarcolor, and a real QGIS running it headless.

The QGIS tests use Debian's qgis / python3-qgis (3.22); the session fixture installs them with apt-get when it
runs as root and QGIS is missing (as in CI), and the tests skip, saying why, where it cannot.
"""
from __future__ import annotations

import configparser
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio

from conftest import COAST, FIELDS, ROOT, read_all, run_cli
from test_reference import scene_with_cloudy_reference, scene_with_reference

sys.path.insert(0, str(ROOT / "qgis_plugin"))
sys.path.insert(0, str(ROOT / "scripts"))
from sarcolor_qgis import runner  # noqa: E402  (the plugin's QGIS-free part)

import build_qgis_plugin  # noqa: E402

PLUGIN = "sarcolor_qgis"
QGIS_PROCESS = "qgis_process.bin"  # Debian's qgis_process wrapper adds --noversioncheck, which 3.22 rejects
QGIS_INSTALL_SECONDS = 900
SARCOLOR = Path(sys.executable).with_name("sarcolor")


class Feedback:
    """A QgsProcessingFeedback stand-in that cancels once progress passes ``cancel_at`` percent."""

    def __init__(self, cancel_at: float | None = None):
        self.cancel_at, self.progress, self.info, self.cancelled = cancel_at, [], [], False

    def setProgress(self, percent: float) -> None:  # noqa: N802
        self.progress.append(percent)
        if self.cancel_at is not None and percent > self.cancel_at:
            self.cancelled = True

    def isCanceled(self) -> bool:  # noqa: N802
        return self.cancelled

    def pushInfo(self, text: str) -> None:  # noqa: N802
        self.info.append(text)


def big_scene(folder: Path, repeat: int = 4) -> Path:
    """The coast example tiled ``repeat`` x ``repeat`` on its grid: enough tiles for a cancel to land mid-run."""
    with rasterio.open(COAST) as src:
        values, profile = np.tile(src.read(), (1, repeat, repeat)), src.profile
        tags = src.tags()
    profile.update(height=values.shape[1], width=values.shape[2])
    path = folder / "big_coast.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values)
        dst.update_tags(**tags)
    return path


def vv_vh_stack(folder: Path) -> Path:
    """A two-band raster that says which band is which (descriptions VV, VH), the coast example as its VH band:
    the band the plugin must colour, given as 2 or left to sarcolor's automatic choice."""
    with rasterio.open(FIELDS) as other, rasterio.open(COAST) as src:
        values, profile, tags = np.stack([other.read(1), src.read(1)]), src.profile, src.tags()
    profile.update(count=2)
    path = folder / "vv_vh_stack.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values)
        dst.update_tags(**tags)
        for band, polarisation in enumerate(("VV", "VH"), 1):
            dst.set_band_description(band, polarisation)
    return path


def assert_nothing_written(folder: Path) -> None:
    assert sorted(p.name for p in folder.iterdir()) == [], "a cancelled run left files behind"


# -- the plugin's files --------------------------------------------------------------------------


def test_plugin_mirrors_the_library_choices():
    """The dialog lists bundled models and input scales before it knows where sarcolor is: they must match."""
    from sarcolor.backends import BUNDLED_MODELS
    from sarcolor.infer import confidence_path
    from sarcolor.scale import INPUT_SCALES
    from sarcolor.option_names import ENVIRONMENT_VARIABLE

    assert runner.OPTION_NAMES_VARIABLE == ENVIRONMENT_VARIABLE
    assert runner.BUNDLED_MODELS == tuple(BUNDLED_MODELS)
    assert runner.INPUT_SCALES == tuple(INPUT_SCALES)
    assert runner.confidence_output("/a/b/scene.tif") == confidence_path(Path("/a/b/scene.tif"))


def test_zip_has_the_plugin_folder_at_its_top_and_the_metadata_qgis_requires(tmp_path):
    import sarcolor

    built = build_qgis_plugin.build_zip(tmp_path)
    assert built.name == f"{PLUGIN}-{sarcolor.__version__}.zip"
    with zipfile.ZipFile(built) as archive:
        names = archive.namelist()
        metadata = configparser.ConfigParser()
        metadata.read_string(archive.read(f"{PLUGIN}/metadata.txt").decode())
    assert {f"{PLUGIN}/{name}" for name in ("__init__.py", "metadata.txt", "provider.py", "algorithm.py", "icon.png")} <= set(names)
    assert all(name.startswith(f"{PLUGIN}/") and "__pycache__" not in name for name in names)
    general = metadata["general"]
    for key in ("name", "qgisMinimumVersion", "description", "about", "version", "author", "email", "repository"):
        assert general.get(key), key
    assert general["qgisMinimumVersion"] == "3.22" and general["hasProcessingProvider"] == "yes"
    assert f"{PLUGIN}/{general['icon']}" in names


def test_cli_reports_progress_as_json_lines(tmp_path):
    done = run_cli("-q", "colorize", COAST, "-o", tmp_path / "out.tif", "--progress-json", check=True)
    steps = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert steps[0]["completed"] == 0 and steps[-1]["completed"] == steps[-1]["total"] > 1
    assert all(step["task"] == COAST.name for step in steps)


# -- the runner, both ways to sarcolor, outside QGIS ---------------------------------------------


@pytest.mark.parametrize("executable", ["", str(SARCOLOR)], ids=["library", "subprocess"])
def test_runner_colours_like_the_cli(tmp_path, executable):
    stack, reference = vv_vh_stack(tmp_path), tmp_path / "cli.tif"
    run_cli("-q", "colorize", stack, "-o", reference, "--band", "2", "--detail", "0.5", "--confidence", check=True)
    request = runner.Request(str(stack), str(tmp_path / "plugin.tif"), band=2, detail=0.5, confidence=True)
    feedback = Feedback()
    used = runner.colorize(request, feedback, executable)
    assert ("library" in used) == (not executable)
    assert feedback.progress[-1] == 100.0
    assert np.array_equal(read_all(tmp_path / "plugin.tif")[0], read_all(reference)[0])
    assert np.allclose(read_all(tmp_path / "plugin_confidence.tif")[0], read_all(tmp_path / "cli_confidence.tif")[0], equal_nan=True)


@pytest.mark.parametrize("executable", ["", str(SARCOLOR)], ids=["library", "subprocess"])
def test_runner_passes_the_reference_as_the_cli_takes_it(tmp_path, executable):
    sar, reference = scene_with_reference(tmp_path)
    run_cli("-q", "colorize", sar, "-o", tmp_path / "cli.tif", "--reference", reference, check=True)
    run_cli("-q", "colorize", sar, "-o", tmp_path / "plain.tif", check=True)
    runner.colorize(runner.Request(str(sar), str(tmp_path / "plugin.tif"), reference=str(reference)), Feedback(), executable)
    colours = read_all(tmp_path / "plugin.tif")[0]
    assert np.array_equal(colours, read_all(tmp_path / "cli.tif")[0])
    assert np.abs(colours.astype(int) - read_all(tmp_path / "plain.tif")[0]).mean() > 10  # the reference changed them
    with rasterio.open(tmp_path / "plugin.tif") as src:
        assert src.tags()["SARCOLOR_REFERENCE"] == "optical.tif"


@pytest.mark.parametrize("executable", ["", str(SARCOLOR)], ids=["library", "subprocess"])
def test_runner_passes_fill_as_the_cli_takes_it(tmp_path, executable):
    """fill=True: the CLI's --fill pixels, the reference's clear half kept as it is."""
    sar, reference = scene_with_cloudy_reference(tmp_path)
    run_cli("-q", "colorize", sar, "-o", tmp_path / "cli.tif", "--reference", reference, "--fill", check=True)
    run_cli("-q", "colorize", sar, "-o", tmp_path / "fitted.tif", "--reference", reference, check=True)
    runner.colorize(runner.Request(str(sar), str(tmp_path / "plugin.tif"), reference=str(reference), fill=True),
                    Feedback(), executable)
    colours, cloudy = read_all(tmp_path / "plugin.tif")[0], read_all(reference)[0]
    assert np.array_equal(colours, read_all(tmp_path / "cli.tif")[0])
    assert 0.4 < (colours == cloudy).all(0).mean() < 0.6  # the clear half as it was, the rest filled
    assert not np.array_equal(colours, read_all(tmp_path / "fitted.tif")[0])


@pytest.mark.parametrize("executable", ["", str(SARCOLOR)], ids=["library", "subprocess"])
def test_runner_passes_the_reference_date_sar_as_the_cli_takes_it(tmp_path, executable):
    """reference_sar: the colours fitted on another SAR scene (here the input's left-right mirror), as --reference-sar."""
    sar, reference = scene_with_reference(tmp_path)
    with rasterio.open(sar) as src:
        profile, pixels = src.profile, src.read()
    other = tmp_path / "other_date.tif"
    with rasterio.open(other, "w", **profile) as dst:
        dst.write(pixels[:, :, ::-1])
    run_cli("-q", "colorize", sar, "-o", tmp_path / "cli.tif", "--reference", reference, "--reference-sar", other, check=True)
    run_cli("-q", "colorize", sar, "-o", tmp_path / "own.tif", "--reference", reference, check=True)
    runner.colorize(runner.Request(str(sar), str(tmp_path / "plugin.tif"), reference=str(reference),
                                   reference_sar=str(other)), Feedback(), executable)
    colours = read_all(tmp_path / "plugin.tif")[0]
    assert np.array_equal(colours, read_all(tmp_path / "cli.tif")[0])
    assert not np.array_equal(colours, read_all(tmp_path / "own.tif")[0])
    with rasterio.open(tmp_path / "plugin.tif") as src:
        assert src.tags()["SARCOLOR_REFERENCE_SAR"] == "other_date.tif"


# What the algorithm hands the runner: sarcolor's flags as the dialog's labels.
DIALOG_NAMES = json.dumps({"names": {"--band": "'Band (empty: automatic)'", "--allow-co-pol": "'Allow a VV (HH) band' ticked"},
                           "style": "label"})


@pytest.mark.parametrize("executable", ["", str(SARCOLOR)], ids=["library", "subprocess"])
def test_runner_colours_a_vv_only_layer_only_when_allowed(tmp_path, executable, bigearthnet_pair):
    vv = shutil.copy(bigearthnet_pair[0], tmp_path / "scene_VV.tif")  # alone: no VH file beside it
    request = runner.Request(str(vv), str(tmp_path / "refused.tif"), option_names=DIALOG_NAMES)
    with pytest.raises(runner.RunError, match="the models expect VH") as refused:
        runner.colorize(request, Feedback(), executable)
    assert str(refused.value).endswith("or 'Allow a VV (HH) band' ticked to colourise VV anyway")
    request = runner.Request(str(COAST), str(tmp_path / "refused.tif"), band=3, option_names=DIALOG_NAMES)
    with pytest.raises(runner.RunError, match=r"has 1 band\(s\); 'Band \(empty: automatic\)' = 3 is out of range$"):
        runner.colorize(request, Feedback(), executable)
    assert not (tmp_path / "refused.tif").exists()
    run_cli("-q", "colorize", vv, "-o", tmp_path / "cli.tif", "--allow-co-pol", check=True)
    runner.colorize(runner.Request(str(vv), str(tmp_path / "plugin.tif"), allow_co_pol=True), Feedback(), executable)
    assert np.array_equal(read_all(tmp_path / "plugin.tif")[0], read_all(tmp_path / "cli.tif")[0])


@pytest.mark.parametrize("executable", ["", str(SARCOLOR)], ids=["library", "subprocess"])
def test_runner_cancel_stops_and_leaves_no_output(tmp_path, executable):
    scene = big_scene(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    feedback = Feedback(cancel_at=0)
    with pytest.raises(runner.Cancelled):
        runner.colorize(runner.Request(str(scene), str(out / "plugin.tif"), confidence=True), feedback, executable)
    assert max(feedback.progress) < 100
    assert_nothing_written(out)


@pytest.mark.parametrize("executable", ["", f"{sys.executable} -m sarcolor"], ids=["library", "subprocess-python-m"])
def test_runner_errors_are_sarcolor_one_line_message(tmp_path, executable):
    bad_model = tmp_path / "bad.onnx"
    bad_model.write_text("not a model")
    with pytest.raises(runner.RunError) as caught:
        runner.colorize(runner.Request(str(COAST), str(tmp_path / "out.tif"), model=str(bad_model)), Feedback(), executable)
    message = str(caught.value)
    assert message.startswith(f"cannot load model {bad_model}") and "\n" not in message
    assert not (tmp_path / "out.tif").exists()


def test_runner_says_how_to_configure_a_missing_executable(tmp_path):
    with pytest.raises(runner.RunError, match="SARCOLOR_EXECUTABLE"):
        runner.colorize(runner.Request(str(COAST), str(tmp_path / "out.tif")), Feedback(), str(tmp_path / "no-sarcolor"))


# -- a real QGIS, headless -----------------------------------------------------------------------


def install_qgis() -> str:
    """QGIS's qgis_process, installed with apt-get where the tests run as root (CI); '' with the reason otherwise."""
    if shutil.which(QGIS_PROCESS):
        return ""
    if not (shutil.which("apt-get") and os.geteuid() == 0):
        return "QGIS is not installed and cannot be (needs root and apt-get: apt-get install qgis python3-qgis)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "qgis", "python3-qgis"]):
        try:
            done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=QGIS_INSTALL_SECONDS)
        except subprocess.TimeoutExpired:
            return f"'{' '.join(command)}' took over {QGIS_INSTALL_SECONDS} s"
        if done.returncode != 0:
            return f"'{' '.join(command)}' failed: {(done.stderr.strip().splitlines() or ['no message'])[-1]}"
    return "" if shutil.which(QGIS_PROCESS) else "apt-get installed qgis but there is no qgis_process.bin"


def qgis_environment(profiles: Path, library: bool) -> dict[str, str]:
    """QGIS headless in a throw-away profile. This venv stays off the PATH (QGIS's embedded Python would take
    its python3 for its own and fail to load); sarcolor is reached as its executable, or (``library``) is put on
    QGIS's Python path."""
    venv_bin = str(Path(sys.executable).parent)
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH")}
    env.update(
        QT_QPA_PLATFORM="offscreen", QGIS_CUSTOM_CONFIG_PATH=str(profiles), XDG_RUNTIME_DIR=str(profiles / "runtime"),
        PATH=os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != venv_bin),
    )
    if library:
        site_packages = next(Path(sys.prefix).glob("lib/python3*/site-packages"))
        env["PYTHONPATH"] = os.pathsep.join([str(site_packages), str(ROOT)])
    else:
        env[runner.EXECUTABLE_VARIABLE] = str(SARCOLOR)
    return env


@pytest.fixture(scope="session")
def qgis_profiles(tmp_path_factory) -> Path:
    """A QGIS profile folder with the built zip installed and enabled, as "Install from ZIP" leaves it."""
    started = time.monotonic()
    reason = install_qgis()
    if reason:
        pytest.skip(reason)
    print(f"QGIS ready in {time.monotonic() - started:.0f} s")
    profiles = tmp_path_factory.mktemp("qgis_profiles")
    (profiles / "runtime").mkdir(mode=0o700)
    plugins = profiles / "profiles" / "default" / "python" / "plugins"
    plugins.mkdir(parents=True)
    with zipfile.ZipFile(build_qgis_plugin.build_zip(tmp_path_factory.mktemp("dist"))) as archive:
        archive.extractall(plugins)
    enabled = subprocess.run([QGIS_PROCESS, "plugins", "enable", PLUGIN], capture_output=True, text=True,
                             env=qgis_environment(profiles, library=False), timeout=120)
    assert enabled.returncode == 0, enabled.stdout + enabled.stderr
    return profiles


def qgis_run(profiles: Path, library: bool, **parameters) -> subprocess.CompletedProcess:
    arguments = [f"--{name}={value}" for name, value in parameters.items()]
    return subprocess.run([QGIS_PROCESS, "run", "sarcolor:colorize", *arguments], capture_output=True, text=True,
                          env=qgis_environment(profiles, library), timeout=300)


@pytest.mark.parametrize("library, band, model", [(False, {}, 1), (True, {"BAND": 2}, "smooth")],
                         ids=["sarcolor-executable-band-automatic-model-by-number", "library-in-qgis-python-band-2"])
def test_qgis_process_colours_like_the_cli(qgis_profiles, tmp_path, library, band, model):
    """The VH band of a VV+VH stack, chosen by sarcolor (band left empty) or given, coloured as the CLI does; the
    model by name, or by its number as qgis_process help says ("Number of selected option")."""
    stack, reference = vv_vh_stack(tmp_path), tmp_path / "cli.tif"
    run_cli("-q", "colorize", stack, "-o", reference, "--band", "2", "--model", "smooth", "--confidence", check=True)
    started = time.monotonic()
    done = qgis_run(qgis_profiles, library, INPUT=stack, **band, MODEL=model, CONFIDENCE="true", OUTPUT=tmp_path / "qgis.tif")
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    assert ("the sarcolor library in QGIS's Python" in done.stdout) == library
    assert f"CONFIDENCE_MAP:\t{tmp_path / 'qgis_confidence.tif'}" in done.stdout
    (colours, profile), (expected, _) = read_all(tmp_path / "qgis.tif"), read_all(reference)
    difference = np.abs(colours.astype(np.int16) - expected).mean()
    with rasterio.open(stack) as src:
        same_grid = profile["crs"] == src.crs and profile["transform"] == src.transform
    confidence_equal = np.allclose(read_all(tmp_path / "qgis_confidence.tif")[0], read_all(tmp_path / "cli_confidence.tif")[0], equal_nan=True)
    print(f"qgis_process ({'library' if library else 'executable'}): {seconds:.1f} s, mean |QGIS - CLI| {difference:.4f} "
          f"levels, CRS and transform kept: {same_grid}, confidence map equal: {confidence_equal}")
    assert difference == 0 and same_grid and confidence_equal  # the same calls as the CLI's: the same pixels


def test_qgis_process_takes_an_optical_reference_layer(qgis_profiles, tmp_path):
    sar, reference = scene_with_reference(tmp_path)
    run_cli("-q", "colorize", sar, "-o", tmp_path / "cli.tif", "--reference", reference, check=True)
    done = qgis_run(qgis_profiles, True, INPUT=sar, REFERENCE=reference, OUTPUT=tmp_path / "qgis.tif")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reference optical.tif:" in done.stdout  # sarcolor's log of the clear share, in the Processing log
    assert np.array_equal(read_all(tmp_path / "qgis.tif")[0], read_all(tmp_path / "cli.tif")[0])


def test_qgis_process_fills_the_reference_gaps_when_ticked(qgis_profiles, tmp_path):
    """FILL ticked: the CLI's --fill pixels; ticked without a reference: sarcolor's error in the dialog's words."""
    sar, reference = scene_with_cloudy_reference(tmp_path)
    run_cli("-q", "colorize", sar, "-o", tmp_path / "cli.tif", "--reference", reference, "--fill", check=True)
    done = qgis_run(qgis_profiles, True, INPUT=sar, REFERENCE=reference, FILL="true", OUTPUT=tmp_path / "qgis.tif")
    assert done.returncode == 0, done.stdout + done.stderr
    assert np.array_equal(read_all(tmp_path / "qgis.tif")[0], read_all(tmp_path / "cli.tif")[0])
    alone = qgis_run(qgis_profiles, False, INPUT=sar, FILL="true", OUTPUT=tmp_path / "alone.tif")
    assert alone.returncode != 0
    assert ("'Fill cloud gaps in the reference (keep its clear pixels, SAR colours under its clouds)' ticked needs "
            "'Optical reference image of the same place (optional)'") in alone.stdout + alone.stderr


def test_qgis_process_error_is_sarcolor_one_line_message(qgis_profiles, tmp_path):
    bad_model = tmp_path / "bad.onnx"
    bad_model.write_text("not a model")
    done = qgis_run(qgis_profiles, False, INPUT=COAST, MODEL_FILE=bad_model, OUTPUT=tmp_path / "qgis.tif")
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert f"ERROR:\tcannot load model {bad_model}: " in output and "Traceback" not in output
    assert not (tmp_path / "qgis.tif").exists()


def test_qgis_process_errors_name_the_dialog_s_parameters(qgis_profiles, tmp_path, bigearthnet_pair):
    vv = shutil.copy(bigearthnet_pair[0], tmp_path / "scene_VV.tif")  # alone: no VH file beside it
    done = qgis_run(qgis_profiles, True, INPUT=vv, INPUT_SCALE=4, OUTPUT=tmp_path / "qgis.tif")
    output = done.stdout + done.stderr
    assert "or 'Allow a VV (HH) band (the models expect VH)' ticked to colourise VV anyway" in output, output
    assert "--" not in output.split("ERROR:")[1]


QGIS_PYTHON_PROLOGUE = """
import sys
from qgis.core import QgsApplication, QgsProcessingException, QgsProcessingFeedback, QgsProject
from qgis.PyQt.QtCore import QCoreApplication

QCoreApplication.setOrganizationName("QGIS")  # settings go where QGIS and qgis_process keep theirs
QCoreApplication.setApplicationName("QGIS3")
app = QgsApplication([], False)
app.initQgis()
sys.path[:0] = ["/usr/share/qgis/python/plugins", {plugins!r}]
import processing
from processing.core.Processing import Processing
import {plugin}

Processing.initialize()
plugin_object = {plugin}.classFactory(None)  # kept: the provider's Python half lives as long as it does
plugin_object.initProcessing()
"""


def run_in_qgis_python(profiles: Path, library: bool, script: str, **values) -> subprocess.CompletedProcess:
    """``script`` after QGIS and the installed plugin are loaded, in QGIS's Python (standalone, no GUI)."""
    plugins = str(profiles / "profiles" / "default" / "python" / "plugins")
    source = QGIS_PYTHON_PROLOGUE.format(plugins=plugins, plugin=PLUGIN) + textwrap.dedent(script).format(**values)
    return subprocess.run(["/usr/bin/python3", "-c", source], capture_output=True, text=True,
                          env=qgis_environment(profiles, library), timeout=300)


def test_qgis_loads_the_image_and_its_confidence_map_named_after_the_input_and_in_the_legend(qgis_profiles):
    """The confidence map in the web page's legend (sarcolor.confidence's), on its fixed range."""
    from sarcolor.confidence import legend_stops

    done = run_in_qgis_python(qgis_profiles, True, """
        processing.runAndLoadResults("sarcolor:colorize", {{"INPUT": {input!r}, "CONFIDENCE": True, "OUTPUT": "TEMPORARY_OUTPUT"}})
        for layer in QgsProject.instance().mapLayers().values():
            print("layer:", layer.name(), layer.bandCount(), layer.crs().authid(), layer.renderer().type())
            if layer.bandCount() == 1:
                ramp = layer.renderer().shader().rasterShaderFunction()
                print("ramp:", [(item.value, item.color.name()) for item in ramp.colorRampItemList()])
    """, input=str(COAST))
    assert sorted(line for line in done.stdout.splitlines() if line.startswith("layer:")) == [
        "layer: s1_vh_coast_california colourised 3 EPSG:3395 multibandcolor",
        "layer: s1_vh_coast_california confidence map 1 EPSG:3395 singlebandpseudocolor"], done.stdout + done.stderr
    assert f"ramp: {legend_stops()}" in done.stdout


def test_qgis_uses_the_executable_set_in_the_processing_options(qgis_profiles, tmp_path):
    """Set as the options dialog sets it (saved in the profile), a later qgis_process run uses it, even where
    QGIS's Python has the library."""
    profiles = tmp_path / "profiles"
    shutil.copytree(qgis_profiles, profiles)
    missing = str(tmp_path / "elsewhere" / "sarcolor")
    configured = run_in_qgis_python(profiles, True, """
        from processing.core.ProcessingConfig import ProcessingConfig
        ProcessingConfig.setSettingValue("SARCOLOR_EXECUTABLE", {missing!r})
    """, missing=missing)
    assert configured.returncode == 0, configured.stderr
    done = qgis_run(profiles, True, INPUT=COAST, OUTPUT=tmp_path / "qgis.tif")
    assert f"ERROR:\tcannot run {missing!r} (No such file or directory)" in done.stdout + done.stderr


@pytest.mark.parametrize("library", [False, True], ids=["sarcolor-executable", "library-in-qgis-python"])
def test_qgis_cancel_stops_the_run_and_leaves_no_output(qgis_profiles, tmp_path, library):
    """QGIS's own Python API: a QgsProcessingFeedback cancelled after the first tiles."""
    out = tmp_path / "out"
    out.mkdir()
    done = run_in_qgis_python(qgis_profiles, library, """
        feedback = QgsProcessingFeedback()
        progress = []
        feedback.progressChanged.connect(lambda percent: (progress.append(percent), percent > 0 and feedback.cancel()))
        try:
            processing.run("sarcolor:colorize", {{"INPUT": {input!r}, "CONFIDENCE": True, "OUTPUT": {output!r}}}, feedback=feedback)
            print("finished")
        except QgsProcessingException as exc:
            print("error:", exc)
        print("progress:", max(progress))
    """, input=str(big_scene(tmp_path)), output=str(out / "qgis.tif"))
    assert "error: cancelled: no output written" in done.stdout, done.stdout + done.stderr
    assert float(done.stdout.split("progress:")[1]) < 100
    assert_nothing_written(out)
