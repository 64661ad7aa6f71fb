"""Remake docs/serve.png, the README's screenshot of the page of ``moodscope serve`` with a real song analysed.

Starts ``moodscope serve --port 0`` (the default model, CPU), opens its page in headless Chromium (Debian's
``chromium`` and ``chromedriver``, driven by Selenium; nothing is downloaded), uploads the song through the page,
waits for the analysis, seeks to a point of the song, plays a few seconds and saves the window as an optimised PNG
(a 256-colour palette: the page is flat colours and text).

    .venv/bin/python tools/screenshot_serve.py                       # a Debian game's music track, docs/serve.png
    .venv/bin/python tools/screenshot_serve.py song.ogg --out /tmp/page.png --seek 0.3 --play 4 --dark

Needs ``apt-get install chromium chromium-driver`` and, for the default song, a music package such as
``wesnoth-1.16-music`` or ``singularity-music``.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: songs of Debian packages, the first one present is used when none is given
SONGS = [
    "/usr/share/games/wesnoth/1.16/data/core/music/love_theme.ogg",  # 1:35, a path through three quadrants
    "/usr/share/games/wesnoth/1.16/data/core/music/transience.ogg",
    "/usr/share/games/singularity/music/A New Journey.ogg",
]
MAX_BYTES = 200_000


def start_server(model: str) -> tuple[subprocess.Popen, str]:
    """``moodscope serve --port 0`` and the URL it prints once the model is loaded."""
    exe = Path(sys.executable).with_name("moodscope")
    cmd = (
        [str(exe)]
        if exe.exists()
        else [sys.executable, "-c", "import sys; from moodscope.cli import main; sys.exit(main())"]
    )
    proc = subprocess.Popen(
        [*cmd, "serve", "--port", "0", "--model", model],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()  # "moodscope serve: open http://127.0.0.1:PORT/  (model ...)"
    if "open http" not in line:
        proc.kill()
        raise SystemExit(f"screenshot_serve: moodscope serve did not start: {line.strip() or 'no output'}")
    return proc, line.split("open ", 1)[1].split()[0]


def browser(width: int, height: int):
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not download a driver or a browser
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        raise SystemExit(
            "screenshot_serve: needs chromium and chromedriver (apt-get install chromium chromium-driver)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required",
        "--mute-audio",
        "--force-device-scale-factor=1",
        "--hide-scrollbars",
        f"--window-size={width},{height}",
        "--force-color-profile=srgb",
        "--lang=en-US",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def optimise(png: bytes) -> bytes:
    """The screenshot as a palette PNG (256 colours, no dithering: crisp text), smaller than the original."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    small = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    out = io.BytesIO()
    small.save(out, format="PNG", optimize=True)
    return min(out.getvalue(), png, key=len)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "song",
        nargs="?",
        help="audio file (default: the first of a few Debian music tracks present: Wesnoth's love_theme.ogg, ...)",
    )
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "serve.png")
    p.add_argument("--model", default="default")
    p.add_argument("--width", type=int, default=1200)
    p.add_argument("--height", type=int, default=800)
    p.add_argument("--seek", type=float, default=0.42, help="where to start playing, a fraction of the song")
    p.add_argument("--play", type=float, default=3.0, help="seconds to play before the screenshot")
    p.add_argument("--dark", action="store_true", help="the dark colour scheme (default: light)")
    p.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for the analysis")
    a = p.parse_args(argv)

    song = a.song or next((s for s in SONGS if Path(s).is_file()), None)
    if song is None or not Path(song).is_file():
        raise SystemExit(f"screenshot_serve: no song: {song or 'none of ' + ', '.join(SONGS)}")
    song = str(Path(song).resolve())

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from moodscope.fileio import write_atomic

    proc, url = start_server(a.model)
    driver = None
    try:
        driver = browser(a.width, a.height)
        # the page's viewport exactly width x height (the window size includes what the browser draws around it)
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": a.width, "height": a.height, "deviceScaleFactor": 1, "mobile": False},
        )
        scheme = {"name": "prefers-color-scheme", "value": "dark" if a.dark else "light"}
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [scheme]})
        driver.get(url)
        driver.find_element(By.ID, "file-input").send_keys(song)
        t0 = time.monotonic()
        WebDriverWait(driver, a.timeout, poll_frequency=0.2).until(
            lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") in ("done", "error")
        )
        if driver.find_element(By.TAG_NAME, "body").get_attribute("data-state") != "done":
            raise SystemExit(f"screenshot_serve: {driver.find_element(By.ID, 'error').text}")
        print(f"analysed {Path(song).name} in {time.monotonic() - t0:.1f} s")
        # wait until the browser can play it, seek, play, pause
        WebDriverWait(driver, 20).until(
            lambda d: d.execute_script("return document.getElementById('player').readyState >= 2")
        )
        driver.execute_script(
            "const p = document.getElementById('player'); p.currentTime = arguments[0] * p.duration;", a.seek
        )
        driver.find_element(By.ID, "play-button").click()
        time.sleep(a.play)
        driver.find_element(By.ID, "play-button").click()
        driver.execute_script("document.activeElement && document.activeElement.blur()")
        time.sleep(0.3)
        png = optimise(driver.get_screenshot_as_png())
    finally:
        if driver is not None:
            driver.quit()
        proc.terminate()
        proc.wait(timeout=20)
    write_atomic(a.out, png)
    print(
        f"{a.out}: {len(png) / 1000:.0f} kB"
        + ("" if len(png) <= MAX_BYTES else f" (over {MAX_BYTES // 1000} kB!)")
    )
    return 0 if len(png) <= MAX_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())
