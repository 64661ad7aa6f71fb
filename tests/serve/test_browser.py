"""The page of ``moodscope serve`` in a real headless Chromium (Debian's ``chromium`` and ``chromedriver``, driven by
Selenium; nothing is downloaded: Selenium Manager is kept offline and both binaries are given by path).

The main test runs ``moodscope serve --port 0`` (the real default model) and does what a person does: upload a
generated clip through the page, look at the plots, play, seek by clicking the curves, download JSON and CSV, then
upload a file that is not audio. A second test serves the same page from a small stand-in server whose canned
answers are the contract's other cases (a static-only model, missing values, a full queue, a refused size), which
the real default model never gives. Screenshots go to each test's ``tmp_path``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from moodscope.inference.predictor import Result
from tools import chromium_paths, needs

CHROMIUM, CHROMEDRIVER = chromium_paths()
pytestmark = needs("chromium")  # CI installs Chromium and its driver

STATIC_DIR = Path(__file__).resolve().parents[2] / "src" / "moodscope" / "serve" / "static"
CLIP_S = 8.0

#: pixels of a canvas within `tol` of a colour (a custom property of the page), and pixels drawn at all
COUNT_COLOUR = """
const [id, prop, tol] = arguments;
const c = document.getElementById(id);
const hex = getComputedStyle(document.documentElement).getPropertyValue(prop).trim();
const rgb = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
let near = 0, drawn = 0;
for (let i = 0; i < d.length; i += 4) {
  if (d[i + 3] > 0) drawn++;
  if (d[i + 3] > 200 && Math.abs(d[i] - rgb[0]) <= tol && Math.abs(d[i + 1] - rgb[1]) <= tol
      && Math.abs(d[i + 2] - rgb[2]) <= tol) near++;
}
return [near, drawn];
"""


# ----------------------------------------------------------------------------------------------------- helpers


def body_state(driver) -> str:
    return driver.find_element(By.TAG_NAME, "body").get_attribute("data-state")


def wait_state(driver, *states: str, timeout: float = 60.0) -> str:
    try:
        WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: body_state(d) in states)
    except TimeoutException:
        pytest.fail(f"the page stayed in state {body_state(driver)!r}, not {states}, for {timeout} s")
    return body_state(driver)


def player(driver, prop: str):
    return driver.execute_script(f"return document.getElementById('player').{prop}")


def colour_pixels(driver, canvas: str, prop: str, tol: int = 40) -> tuple[int, int]:
    near, drawn = driver.execute_script(COUNT_COLOUR, canvas, prop, tol)
    return near, drawn


def upload(driver, path: Path) -> None:
    driver.find_element(By.ID, "file-input").send_keys(str(path))


def downloads_to(driver, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(folder)})


def downloaded(folder: Path, name: str, timeout: float = 10.0) -> str:
    path = folder / name
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and not list(folder.glob("*.crdownload")):
            return path.read_text(encoding="utf-8")
        time.sleep(0.1)
    pytest.fail(f"{name} was not downloaded into {folder}: {sorted(p.name for p in folder.iterdir())}")


def page_errors(driver) -> list[str]:
    """The page's JavaScript errors; the browser's own line for each failed HTTP request is not one."""
    return [
        e["message"]
        for e in driver.get_log("browser")
        if e["level"] == "SEVERE" and "Failed to load resource" not in e["message"]
    ]


def click_curves_at(driver, seconds: float, duration: float) -> None:
    """A mouse click on #curves where its time axis reads `seconds`."""
    curves = driver.find_element(By.ID, "curves")
    x0 = float(curves.get_attribute("data-plot-x0"))
    x1 = float(curves.get_attribute("data-plot-x1"))
    rect = driver.execute_script("return document.getElementById('curves').getBoundingClientRect().toJSON()")
    x = x0 + seconds / duration * (x1 - x0)
    # Selenium 4 offsets are from the element's centre
    ActionChains(driver).move_to_element_with_offset(
        curves, round(x - rect["width"] / 2), 0
    ).click().perform()


# ----------------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def driver():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SE_OFFLINE", "true")  # Selenium Manager: never download a driver or a browser
        d = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=chromium_options())
    d.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1200, "height": 900, "deviceScaleFactor": 1, "mobile": False},
    )
    d.execute_cdp_cmd(
        "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "light"}]}
    )
    yield d
    d.quit()


def chromium_options() -> webdriver.ChromeOptions:
    """Headless Chromium that plays audio without a gesture (muted) and keeps the page's console log."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required",
        "--mute-audio",
        "--force-device-scale-factor=1",
        "--window-size=1200,900",
        "--lang=en-US",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return options


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``moodscope serve --port 0`` (the default model) and the URL it prints when it is ready."""
    folder = tmp_path_factory.mktemp("serve")
    exe = Path(sys.executable).with_name("moodscope")
    cmd = (
        [str(exe)]
        if exe.exists()
        else [sys.executable, "-c", "import sys; from moodscope.cli import main; sys.exit(main())"]
    )
    env = {**os.environ, "MOODSCOPE_CACHE": str(folder / "cache")}
    log = (folder / "stderr.txt").open("w")
    proc = subprocess.Popen(
        [*cmd, "serve", "--port", "0", "--model", "default"],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=env,
    )
    first: list[str] = []
    reader = threading.Thread(target=lambda: first.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout=120)
    match = re.search(r"open (http://\S+)", first[0] if first else "")
    try:
        if match is None:
            proc.kill()
            proc.wait()
            log.close()
            pytest.fail(
                f"moodscope serve did not start: {first} {(folder / 'stderr.txt').read_text()[-2000:]}"
            )
        yield match.group(1)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


@pytest.fixture
def clip(tmp_path) -> Path:
    """8 s of a chord whose loudness and brightness change, so that the curves move."""
    sr = 22050
    t = np.arange(int(CLIP_S * sr)) / sr
    swell = 0.25 + 0.2 * np.sin(2 * np.pi * t / CLIP_S)
    y = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6, 440.0 * (1 + t / CLIP_S)))
    path = tmp_path / "chord clip.wav"
    sf.write(path, (swell * y / 4).astype(np.float32), sr)
    return path


# ----------------------------------------------------------------------------------------------------- the real server


def test_page_with_the_real_server(driver, server, clip, tmp_path):
    driver.get(server)
    assert body_state(driver) == "idle"
    assert driver.find_element(By.ID, "drop-zone").is_displayed()
    assert not driver.find_element(By.ID, "result").is_displayed()
    # everything the page loaded came from this server: no CDN, no fonts, no analytics
    origin = server.rstrip("/")
    loaded = driver.execute_script("return performance.getEntriesByType('resource').map((e) => e.name)")
    assert loaded and all(u.startswith(origin + "/") for u in loaded), loaded

    # upload through the page; the plots are drawn when it says done
    t0 = time.monotonic()
    upload(driver, clip)
    assert wait_state(driver, "done", "error") == "done", driver.find_element(By.ID, "error").text
    analysed_s = time.monotonic() - t0
    assert driver.find_element(By.ID, "result-file").text == clip.name
    assert driver.find_element(By.ID, "result-duration").text == "0:08"
    assert re.fullmatch(r"[+−]\d\.\d\d", driver.find_element(By.ID, "static-valence").text)
    assert re.fullmatch(r"[+−]\d\.\d\d", driver.find_element(By.ID, "static-arousal").text)
    assert driver.find_element(By.ID, "quadrant").text.lower() in {"happy", "angry", "sad", "calm"}
    assert driver.find_elements(By.CSS_SELECTOR, "#tags li"), "the default model's tags are not shown"
    valence_px, _ = colour_pixels(driver, "curves", "--valence")
    arousal_px, _ = colour_pixels(driver, "curves", "--arousal")
    assert valence_px > 100 and arousal_px > 100, (valence_px, arousal_px)
    path_px, plane_px = colour_pixels(driver, "plane", "--trajectory", tol=60)
    assert path_px > 20 and plane_px > 10_000, (path_px, plane_px)
    assert float(driver.find_element(By.ID, "curves").get_attribute("data-cursor-time")) == 0.0

    # the downloads: JSON as received, CSV as `moodscope predict --format csv` writes it
    folder = tmp_path / "downloads"
    downloads_to(driver, folder)
    driver.find_element(By.ID, "download-json").click()
    driver.find_element(By.ID, "download-csv").click()
    got = json.loads(downloaded(folder, "chord clip.json"))
    assert got["file"] == clip.name and len(got["dynamic"]["times_s"]) == int(
        CLIP_S / got["dynamic"]["hop_s"]
    )
    assert downloaded(folder, "chord clip.csv") == Result.from_dict(got).to_csv()
    assert driver.find_element(By.ID, "static-valence").text == f"{got['static']['valence']:+.2f}".replace(
        "-", "−"
    )

    # play: the cursor follows the audio, on the curves and on the plane
    WebDriverWait(driver, 10).until(lambda d: player(d, "readyState") >= 2)
    driver.find_element(By.ID, "play-button").click()
    time.sleep(1.5)
    cursor = float(driver.find_element(By.ID, "curves").get_attribute("data-cursor-time"))
    now = player(driver, "currentTime")
    assert not player(driver, "paused")
    assert now > 0.8 and cursor > 0.5, (now, cursor)
    assert abs(now - cursor) < 0.3, (now, cursor)
    now_px, _ = colour_pixels(driver, "plane", "--cursor")
    assert now_px > 30, now_px
    driver.save_screenshot(str(tmp_path / "page-playing.png"))

    # pause, then click the curves at 4 s: the audio seeks there and the cursor with it
    driver.find_element(By.ID, "play-button").click()
    WebDriverWait(driver, 5).until(lambda d: player(d, "paused"))
    click_curves_at(driver, 4.0, CLIP_S)
    WebDriverWait(driver, 5).until(lambda d: not player(d, "seeking"))
    assert abs(player(driver, "currentTime") - 4.0) < 0.25, player(driver, "currentTime")
    assert abs(float(driver.find_element(By.ID, "curves").get_attribute("data-cursor-time")) - 4.0) < 0.25
    driver.save_screenshot(str(tmp_path / "page-done.png"))

    # a file that is not audio: the server's one line, naming the file, in the page's message box
    bad = tmp_path / "noise.wav"
    bad.write_bytes(np.random.default_rng(0).bytes(20_000))
    upload(driver, bad)
    assert wait_state(driver, "done", "error") == "error"
    box = driver.find_element(By.ID, "error")
    assert box.is_displayed() and not driver.find_element(By.ID, "result").is_displayed()
    assert driver.find_element(By.ID, "error-title").text == "This file could not be analysed"
    message = driver.find_element(By.ID, "error-message").text
    assert message.startswith("noise.wav: ") and len(message.splitlines()) == 1, message
    driver.save_screenshot(str(tmp_path / "page-error.png"))
    assert page_errors(driver) == []
    assert analysed_s < 30, f"the 8 s clip took {analysed_s:.1f} s"


# ----------------------------------------------------------------------------------------------------- a stand-in server


def canned(name: str) -> tuple[int, dict, dict]:
    """The stand-in's answer for an upload named `name`: (status, JSON, headers)."""
    static_only = {
        "file": name,
        "duration_s": 8.0,
        "model": "adff (static only)",
        "static": {"valence": 0.42, "arousal": -0.3},
        "quadrant": "calm (V+ A-)",
        "tags": {"calm": 0.61, "sad, slow": 0.2},
    }
    times = [i * 0.5 for i in range(16)]
    gaps = {
        "file": name,
        "duration_s": 8.0,
        "model": "valence only",
        "static": {"valence": -0.2, "arousal": None},
        "quadrant": "",
        "dynamic": {
            "hop_s": 0.5,
            "times_s": times,
            "valence": [None if 5 <= i <= 7 else round(np.sin(i / 3), 4) for i in range(16)],
            "arousal": [None] * 16,
        },
    }
    if name.startswith(("static", "slow", "dropped")):
        return 200, static_only, {}
    if name.startswith("gaps"):
        return 200, gaps, {}
    if name.startswith("busy"):
        return (
            503,
            {"error": "server busy: 8 request(s) in progress, at most 8 (--queue); retry in 7 s"},
            {"Retry-After": "7"},
        )
    return 500, {"error": "internal error"}, {}


@pytest.fixture(scope="module")
def standin():
    """The page's own files, /health with a 1 MiB limit, and canned /predict answers, under uvicorn in a thread."""
    app = FastAPI()
    uploads: list[str] = []

    @app.get("/")
    async def index():
        return FileResponse(STATIC_DIR / "index.html")

    @app.get("/static/{name}")
    async def static(name: str):
        if name not in {"app.js", "style.css", "index.html"}:
            return JSONResponse({"error": "no such file"}, status_code=404)
        return FileResponse(STATIC_DIR / name)

    @app.get("/health")
    async def health():
        return {"status": "ok", "queue": 0, "max_mb": 1.0, "max_bytes": 2**20}

    @app.get("/models")
    async def models():
        return {"models": [{"name": "stand-in", "file": "-", "output": "static"}], "loaded": "stand-in"}

    @app.post("/predict")
    async def predict(request: Request):
        body = await request.body()
        name = re.search(rb'filename="([^"]*)"', body).group(1).decode()
        uploads.append(name)
        if name.startswith("slow"):
            await asyncio.sleep(1.6)
        status, data, headers = canned(name)
        return JSONResponse(data, status_code=status, headers=headers)

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/", uploads
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def test_page_cases_the_default_model_never_gives(driver, standin, tmp_path):
    url, uploads = standin
    driver.get(url)
    WebDriverWait(driver, 5).until(lambda d: d.find_element(By.ID, "server-info").text == "model stand-in")
    folder = tmp_path / "downloads"
    downloads_to(driver, folder)
    audio = tmp_path / "tone.wav"
    sf.write(
        audio, (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(CLIP_S * 8000)) / 8000)).astype(np.float32), 8000
    )

    # a static-only model: no curve, the point on the plane, the static CSV
    shutil.copy(audio, tmp_path / "static one.wav")
    upload(driver, tmp_path / "static one.wav")
    assert wait_state(driver, "done", "error") == "done", driver.find_element(By.ID, "error").text
    assert not driver.find_element(By.ID, "curves").is_displayed()
    assert driver.find_element(By.ID, "no-curve").is_displayed()
    assert driver.find_element(By.ID, "static-valence").text == "+0.42"
    assert driver.find_element(By.ID, "quadrant").text.lower() == "calm"
    assert [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#tags .tag-name")] == ["calm", "sad, slow"]
    point_px, _ = colour_pixels(driver, "plane", "--ink", tol=30)
    assert point_px > 40, point_px
    driver.find_element(By.ID, "download-csv").click()
    _, data, _ = canned("static one.wav")
    assert downloaded(folder, "static one.csv") == Result.from_dict(data).to_csv()
    driver.save_screenshot(str(tmp_path / "static-only.png"))

    # missing values: a gap in the valence curve, no arousal at all; shown as dashes, "nan" in the CSV
    shutil.copy(audio, tmp_path / "gaps.wav")
    upload(driver, tmp_path / "gaps.wav")
    assert wait_state(driver, "done", "error") == "done", driver.find_element(By.ID, "error").text
    assert driver.find_element(By.ID, "static-arousal").text == "—"
    assert driver.find_element(By.ID, "quadrant").text == "—"
    valence_px, _ = colour_pixels(driver, "curves", "--valence")
    arousal_px, _ = colour_pixels(driver, "curves", "--arousal")
    assert valence_px > 100 and arousal_px == 0, (valence_px, arousal_px)
    driver.find_element(By.ID, "play-button").click()
    time.sleep(0.8)
    assert float(driver.find_element(By.ID, "curves").get_attribute("data-cursor-time")) > 0.3
    driver.find_element(By.ID, "play-button").click()
    driver.find_element(By.ID, "download-csv").click()
    csv = downloaded(folder, "gaps.csv")
    assert csv.splitlines()[0] == "time_s,valence,arousal" and csv.splitlines()[7] == "3.00,nan,nan"
    assert csv == Result.from_dict(canned("gaps.wav")[1]).to_csv()

    # a full queue: the server's line, its Retry-After, a retry button
    shutil.copy(audio, tmp_path / "busy.wav")
    upload(driver, tmp_path / "busy.wav")
    assert wait_state(driver, "done", "error") == "error"
    assert driver.find_element(By.ID, "error-title").text == "The server is busy"
    assert "retry in 7 s" in driver.find_element(By.ID, "error-message").text
    assert "7 s" in driver.find_element(By.ID, "error-hint").text
    assert driver.find_element(By.ID, "retry-button").is_displayed()
    driver.save_screenshot(str(tmp_path / "busy.png"))

    # a slow analysis: the progress bar turns indeterminate and the elapsed seconds count
    shutil.copy(audio, tmp_path / "slow.wav")
    upload(driver, tmp_path / "slow.wav")
    assert wait_state(driver, "analysing", timeout=1.5) == "analysing"
    assert driver.find_element(By.ID, "status").is_displayed()
    assert driver.find_element(By.ID, "status-text").text == "Analysing slow.wav…"
    assert driver.execute_script("return !document.getElementById('progress').hasAttribute('value')")
    WebDriverWait(driver, 2).until(lambda d: d.find_element(By.ID, "status-elapsed").text == "1 s")
    assert wait_state(driver, "done", "error") == "done"
    assert not driver.find_element(By.ID, "status").is_displayed()

    # a file dropped on the drop zone (a drop event carrying a File, as a browser makes it)
    driver.execute_script(
        """const dt = new DataTransfer();
        dt.items.add(new File([new Uint8Array(64)], "dropped.wav", {type: "audio/wav"}));
        const zone = document.getElementById("drop-zone");
        for (const type of ["dragenter", "dragover", "drop"])
          zone.dispatchEvent(new DragEvent(type, {dataTransfer: dt, bubbles: true, cancelable: true}));"""
    )
    assert wait_state(driver, "done", "error") == "done"
    assert driver.find_element(By.ID, "result-file").text == "dropped.wav" and uploads[-1] == "dropped.wav"

    # over the limit /health gives: refused in the page, never uploaded
    big = tmp_path / "big.wav"
    big.write_bytes(b"\0" * (2**20 + 1))
    n = len(uploads)
    upload(driver, big)
    assert wait_state(driver, "done", "error") == "error"
    assert driver.find_element(By.ID, "error-title").text == "The file is too large"
    assert driver.find_element(By.ID, "error-message").text.startswith("big.wav: ")
    assert len(uploads) == n
    assert page_errors(driver) == []
