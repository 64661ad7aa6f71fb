// moodscope's page: upload one song to POST /predict, then show its valence and arousal over time, its path on the
// valence-arousal plane, and play it from the browser (an object URL of the chosen file: nothing is uploaded twice)
// with a cursor that follows the music. Plain ES2020, no dependencies, nothing fetched from outside this server.
//
// Hooks for tests: the ids in index.html, body[data-state] (idle | uploading | analysing | done | error), and on
// #curves data-cursor-time (the cursor's time in seconds, as drawn) plus data-plot-x0 / data-plot-x1 (the CSS-pixel
// x offsets, inside the canvas, of time 0 and of the end of the track).
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const el = {
    body: document.body,
    serverInfo: $("server-info"),
    drop: $("drop-zone"),
    input: $("file-input"),
    choose: $("choose-button"),
    status: $("status"),
    statusText: $("status-text"),
    statusElapsed: $("status-elapsed"),
    progress: $("progress"),
    cancel: $("cancel-button"),
    error: $("error"),
    errorTitle: $("error-title"),
    errorMessage: $("error-message"),
    errorHint: $("error-hint"),
    retry: $("retry-button"),
    result: $("result"),
    resultTitle: $("result-title"),
    file: $("result-file"),
    duration: $("result-duration"),
    model: $("result-model"),
    valence: $("static-valence"),
    arousal: $("static-arousal"),
    valenceMark: $("valence-mark"),
    arousalMark: $("arousal-mark"),
    quadrantCard: document.querySelector(".quadrant-card"),
    quadrant: $("quadrant"),
    quadrantCode: $("quadrant-code"),
    tagsCard: $("tags-card"),
    tags: $("tags"),
    downloadJson: $("download-json"),
    downloadCsv: $("download-csv"),
    play: $("play-button"),
    playTime: $("play-time"),
    readout: $("cursor-readout"),
    playerNote: $("player-note"),
    player: $("player"),
    curves: $("curves"),
    noCurve: $("no-curve"),
    plane: $("plane"),
  };

  const QUADRANTS = [
    // [key, label, code, x sign, y sign] in the order of moodscope.emotion.QUADRANT_NAMES
    ["happy", "happy", "V+ A+", 1, 1],
    ["angry", "angry", "V− A+", -1, 1],
    ["sad", "sad", "V− A−", -1, -1],
    ["calm", "calm", "V+ A−", 1, -1],
  ];

  const state = {
    file: null, // the File being analysed or shown
    objectUrl: null, // its object URL, for the <audio> element
    xhr: null,
    ticker: 0, // setInterval id of the elapsed-seconds display
    retryTicker: 0,
    maxBytes: 0, // the server's upload limit when /health tells it (0: unknown)
    result: null, // the parsed response
    raw: "", // the response text as received (the JSON download)
    series: null, // {times, valence, arousal, hop} or null for a static-only model
    duration: 0, // seconds: the x range of the curves
    hoverX: null, // the pointer's x over the curves (CSS px), or null
    dragging: false,
    rafId: 0,
    drawQueued: false,
  };

  // ---------------------------------------------------------------- formatting

  const isNum = (x) => typeof x === "number" && Number.isFinite(x);
  const num = (x) => (isNum(x) ? x : null);

  function fmtTime(s) {
    if (!isNum(s) || s < 0) s = 0;
    const total = Math.floor(s + 1e-6);
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    const sec = String(total % 60).padStart(2, "0");
    return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
  }

  /** +0.21 / −0.35 (a true minus sign), or an em dash for a value the model does not give. */
  function fmtSigned(v, digits = 2) {
    if (!isNum(v)) return "—";
    const s = Math.abs(v).toFixed(digits);
    if (Number(s) === 0) return s;
    return (v < 0 ? "−" : "+") + s;
  }

  /** Python's f"{v:.Nf}" for the CSV download: "nan" for a missing value, "-0.0000" for negative zero. */
  function pyFixed(v, digits) {
    if (!isNum(v)) return "nan";
    const s = v.toFixed(digits);
    return (v < 0 || Object.is(v, -0)) && !s.startsWith("-") ? "-" + s : s;
  }

  function csvField(s) {
    s = String(s);
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  }

  function fmtMB(bytes) {
    return `${(bytes / 1048576).toFixed(bytes < 10 * 1048576 ? 1 : 0)} MB`;
  }

  // ---------------------------------------------------------------- page state

  function setState(name) {
    el.body.dataset.state = name;
    el.status.hidden = !(name === "uploading" || name === "analysing");
    el.error.hidden = name !== "error";
    el.result.hidden = name !== "done";
  }

  function stopTicker() {
    clearInterval(state.ticker);
    state.ticker = 0;
  }

  function stopRetryTicker() {
    clearInterval(state.retryTicker);
    state.retryTicker = 0;
  }

  function showError(title, message, { hint = "", retryAfter = null, retry = false } = {}) {
    stopTicker();
    stopRetryTicker();
    state.xhr = null;
    el.errorTitle.textContent = title;
    el.errorMessage.textContent = message;
    el.errorHint.textContent = hint;
    el.errorHint.hidden = !hint;
    el.retry.hidden = !retry || !state.file;
    el.retry.disabled = false;
    el.retry.textContent = "Retry";
    if (retry && isNum(retryAfter) && retryAfter > 0) {
      // the button waits as long as the server asked (Retry-After), then offers itself
      const until = performance.now() + retryAfter * 1000;
      const tick = () => {
        const left = Math.ceil((until - performance.now()) / 1000);
        el.retry.disabled = left > 0;
        el.retry.textContent = left > 0 ? `Retry in ${left} s` : "Retry now";
        if (left <= 0) stopRetryTicker();
      };
      tick();
      state.retryTicker = setInterval(tick, 250);
    }
    setState("error");
  }

  // ---------------------------------------------------------------- choosing and uploading

  function chooseFile(file) {
    if (!file) return;
    if (state.maxBytes && file.size > state.maxBytes) {
      state.file = file;
      showError(
        "The file is too large",
        `${file.name}: ${fmtMB(file.size)} is over this server's upload limit of ${fmtMB(state.maxBytes)}.`,
      );
      return;
    }
    upload(file);
  }

  function upload(file) {
    if (state.xhr) state.xhr.abort();
    stopTicker();
    stopRetryTicker();
    el.player.pause();
    state.file = file;
    state.result = null;

    const xhr = new XMLHttpRequest();
    state.xhr = xhr;
    xhr.open("POST", "predict");
    xhr.responseType = "text";
    xhr.setRequestHeader("Accept", "application/json");

    el.progress.max = 100;
    el.progress.value = 0;
    el.statusText.textContent = `Uploading ${file.name}`;
    el.statusElapsed.textContent = "0 %";
    setState("uploading");

    xhr.upload.addEventListener("progress", (e) => {
      if (state.xhr !== xhr || !e.lengthComputable || !e.total) return;
      const pct = Math.min(100, Math.round((100 * e.loaded) / e.total));
      el.progress.value = pct;
      el.statusElapsed.textContent = `${pct} %`;
    });
    xhr.upload.addEventListener("load", () => {
      if (state.xhr === xhr) startAnalysing(file);
    });
    xhr.addEventListener("load", () => {
      if (state.xhr === xhr) handleResponse(xhr, file);
    });
    xhr.addEventListener("error", () => {
      if (state.xhr !== xhr) return;
      showError("The server could not be reached", `${file.name}: the upload failed (no answer from the server).`, {
        hint: "Is moodscope serve still running? Check its terminal.",
        retry: true,
      });
    });

    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  }

  function startAnalysing(file) {
    setState("analysing");
    el.progress.removeAttribute("value"); // indeterminate
    el.statusText.textContent = `Analysing ${file.name}…`;
    const t0 = performance.now();
    const tick = () => {
      el.statusElapsed.textContent = `${Math.floor((performance.now() - t0) / 1000)} s`;
    };
    tick();
    stopTicker();
    state.ticker = setInterval(tick, 250);
  }

  function retryAfterSeconds(header) {
    if (!header) return null;
    if (/^\s*\d+\s*$/.test(header)) return Number(header);
    const when = Date.parse(header);
    return Number.isNaN(when) ? null : Math.max(0, Math.round((when - Date.now()) / 1000));
  }

  function handleResponse(xhr, file) {
    stopTicker();
    state.xhr = null;
    const text = xhr.responseText || "";
    let data = null;
    try {
      data = JSON.parse(text);
    } catch {
      data = null; // not JSON: reported below by its HTTP status, never by echoing the body
    }
    if (xhr.status === 200 && data && typeof data === "object" && !Array.isArray(data) && !("error" in data)) {
      showResult(file, data, text);
      return;
    }
    const serverMessage = data && typeof data.error === "string" && data.error.trim() ? data.error.trim() : "";
    const message =
      serverMessage || `${file.name}: the server answered HTTP ${xhr.status}${xhr.statusText ? " " + xhr.statusText : ""}.`;
    switch (xhr.status) {
      case 413:
        showError("The file is too large", message);
        break;
      case 415:
        showError("The upload was refused", message);
        break;
      case 422:
        showError("This file could not be analysed", message);
        break;
      case 503: {
        const wait = retryAfterSeconds(xhr.getResponseHeader("Retry-After"));
        showError("The server is busy", message, {
          hint:
            wait === null
              ? "Its queue of analyses is full: try again in a moment."
              : `Its queue of analyses is full: try again in ${wait} s (Retry-After).`,
          retryAfter: wait,
          retry: true,
        });
        break;
      }
      case 500:
        showError("The server hit an internal error", message, {
          hint: "This is a bug in moodscope: the server's log has the details.",
        });
        break;
      default:
        showError(xhr.status === 200 ? "The server's answer could not be read" : "The analysis failed", message);
    }
  }

  // ---------------------------------------------------------------- the result

  function parseSeries(dyn) {
    if (!dyn || typeof dyn !== "object" || !Array.isArray(dyn.times_s)) return null;
    const n = dyn.times_s.length;
    const times = [];
    const valence = [];
    const arousal = [];
    const v = Array.isArray(dyn.valence) ? dyn.valence : [];
    const a = Array.isArray(dyn.arousal) ? dyn.arousal : [];
    for (let i = 0; i < n; i++) {
      const t = num(dyn.times_s[i]);
      if (t === null) continue;
      times.push(t);
      valence.push(num(v[i]));
      arousal.push(num(a[i]));
    }
    if (!times.length) return null;
    return { times, valence, arousal, hop: num(dyn.hop_s) || (times.length > 1 ? times[1] - times[0] : 0.5) };
  }

  function showResult(file, data, raw) {
    state.result = data;
    state.raw = raw;
    state.series = parseSeries(data.dynamic);
    const s = state.series;
    const lastT = s ? s.times[s.times.length - 1] + s.hop : 0;
    state.duration = num(data.duration_s) > 0 ? data.duration_s : Math.max(lastT, 1);

    const name = typeof data.file === "string" && data.file ? data.file : file.name;
    el.file.textContent = name;
    el.file.title = name;
    el.duration.textContent = fmtTime(state.duration);
    // the model's short name ("musicnn_va"); its whole description as the tooltip
    const model = typeof data.model === "string" ? data.model : "";
    el.model.textContent = model.split(" (")[0];
    el.model.title = model;

    const st = data.static && typeof data.static === "object" ? data.static : {};
    const sv = num(st.valence);
    const sa = num(st.arousal);
    el.valence.textContent = fmtSigned(sv);
    el.arousal.textContent = fmtSigned(sa);
    placeMark(el.valenceMark, sv);
    placeMark(el.arousalMark, sa);

    const quadrant = typeof data.quadrant === "string" ? data.quadrant : "";
    const q = QUADRANTS.find(([key]) => quadrant.startsWith(key));
    el.quadrantCard.dataset.quadrant = q ? q[0] : "";
    el.quadrant.textContent = q ? q[1] : quadrant || "—";
    el.quadrantCode.textContent = q ? q[2] : "";

    renderTags(data);

    // the player: the chosen file itself, through an object URL
    if (state.objectUrl) URL.revokeObjectURL(state.objectUrl);
    state.objectUrl = URL.createObjectURL(file);
    el.playerNote.hidden = true;
    el.play.disabled = false;
    el.player.src = state.objectUrl;
    el.player.load();

    el.result.dataset.curve = s ? "yes" : "none"; // style.css hides what only a curve needs
    el.noCurve.hidden = !!s;
    el.curves.hidden = !s;
    el.curves.setAttribute("aria-valuemax", String(Math.round(state.duration)));
    el.curves.dataset.cursorTime = "0.000";

    // draw before announcing "done", so that whoever waits for it finds the plots drawn
    setState("done");
    layoutPlots();
    drawNow();
    el.resultTitle.focus({ preventScroll: true });
  }

  function placeMark(mark, v) {
    mark.style.display = isNum(v) ? "block" : "none";
    if (isNum(v)) mark.style.left = `${((Math.max(-1, Math.min(1, v)) + 1) / 2) * 100}%`;
  }

  function renderTags(data) {
    el.tags.replaceChildren();
    const tags = data.tags && typeof data.tags === "object" ? data.tags : null;
    const entries = tags ? Object.entries(tags).filter(([, p]) => isNum(p)) : [];
    el.tagsCard.hidden = entries.length === 0;
    if (!entries.length) return;
    const predicted = new Set(Array.isArray(data.tags_predicted) ? data.tags_predicted : []);
    entries.sort((x, y) => y[1] - x[1]);
    for (const [name, p] of entries.slice(0, 4)) {
      const li = document.createElement("li");
      if (predicted.has(name)) li.classList.add("predicted");
      const label = document.createElement("span");
      label.className = "tag-name";
      label.textContent = predicted.has(name) ? `${name} ✓` : name;
      label.title = name;
      const bar = document.createElement("span");
      bar.className = "tag-bar";
      const fill = document.createElement("span");
      fill.style.width = `${Math.max(0, Math.min(1, p)) * 100}%`;
      bar.append(fill);
      const prob = document.createElement("span");
      prob.className = "tag-prob";
      prob.textContent = p.toFixed(p < 0.1 ? 3 : 2);
      li.append(label, bar, prob);
      el.tags.append(li);
    }
  }

  // ---------------------------------------------------------------- downloads

  function stem(name) {
    const base = String(name || "moodscope").split(/[\\/]/).pop();
    const dot = base.lastIndexOf(".");
    return (dot > 0 ? base.slice(0, dot) : base) || "moodscope";
  }

  function save(text, type, filename) {
    const url = URL.createObjectURL(new Blob([text], { type }));
    const a = document.createElement("a");
    a.href = url;
    a.download = filename;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  /** The CSV of `moodscope predict --format csv` for one track. */
  function toCsv(data, series) {
    const rows = [];
    if (series) {
      rows.push("time_s,valence,arousal");
      for (let i = 0; i < series.times.length; i++) {
        rows.push(
          `${pyFixed(series.times[i], 2)},${pyFixed(series.valence[i], 4)},${pyFixed(series.arousal[i], 4)}`,
        );
      }
    } else {
      const st = data.static || {};
      const tags = data.tags && typeof data.tags === "object" ? Object.keys(data.tags) : [];
      rows.push(["file", "valence", "arousal", "quadrant", ...tags].map(csvField).join(","));
      rows.push(
        [
          data.file ?? "",
          pyFixed(num(st.valence), 4),
          pyFixed(num(st.arousal), 4),
          data.quadrant ?? "",
          ...tags.map((t) => pyFixed(num(data.tags[t]), 4)),
        ]
          .map(csvField)
          .join(","),
      );
    }
    return rows.join("\n") + "\n";
  }

  // ---------------------------------------------------------------- plots

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  /** rgba() of a #rgb / #rrggbb colour (the custom properties of style.css) at the given opacity. */
  function withAlpha(color, alpha) {
    let hex = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(color);
    if (!hex) return color;
    hex = hex[1].length === 3 ? [...hex[1]].map((d) => d + d).join("") : hex[1];
    const [r, g, b] = [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16));
    return `rgba(${r}, ${g}, ${b}, ${alpha.toFixed(3)})`;
  }

  /** A canvas drawn as a static layer (axes, curves; redrawn on resize) under a live layer (the cursor). */
  class Plot {
    constructor(canvas) {
      this.canvas = canvas;
      this.ctx = canvas.getContext("2d");
      this.layer = document.createElement("canvas");
      this.w = 0;
      this.h = 0;
      this.dpr = 1;
    }

    resize() {
      const r = this.canvas.getBoundingClientRect();
      this.dpr = window.devicePixelRatio || 1;
      this.w = Math.max(1, Math.round(r.width));
      this.h = Math.max(1, Math.round(r.height));
      for (const c of [this.canvas, this.layer]) {
        c.width = Math.round(this.w * this.dpr);
        c.height = Math.round(this.h * this.dpr);
      }
    }

    layerContext() {
      const c = this.layer.getContext("2d");
      c.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
      c.clearRect(0, 0, this.w, this.h);
      return c;
    }

    blit() {
      const c = this.ctx;
      c.setTransform(1, 0, 0, 1, 0, 0);
      c.clearRect(0, 0, this.canvas.width, this.canvas.height);
      c.drawImage(this.layer, 0, 0);
      c.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
      return c;
    }
  }

  const curvesPlot = new Plot(el.curves);
  const planePlot = new Plot(el.plane);
  const CURVE_PAD = { left: 40, right: 14, top: 10, bottom: 26 };
  const PLANE_PAD = { left: 30, right: 10, top: 10, bottom: 28 };

  function curvesX(t) {
    const w = curvesPlot.w - CURVE_PAD.left - CURVE_PAD.right;
    return CURVE_PAD.left + (Math.max(0, Math.min(state.duration, t)) / state.duration) * w;
  }
  function curvesT(x) {
    const w = curvesPlot.w - CURVE_PAD.left - CURVE_PAD.right;
    return Math.max(0, Math.min(state.duration, ((x - CURVE_PAD.left) / w) * state.duration));
  }
  function curvesY(v) {
    const h = curvesPlot.h - CURVE_PAD.top - CURVE_PAD.bottom;
    return CURVE_PAD.top + ((1 - Math.max(-1, Math.min(1, v))) / 2) * h;
  }
  function planeXY(v, a) {
    const w = planePlot.w - PLANE_PAD.left - PLANE_PAD.right;
    const h = planePlot.h - PLANE_PAD.top - PLANE_PAD.bottom;
    const c = (x) => Math.max(-1, Math.min(1, x));
    return [PLANE_PAD.left + ((c(v) + 1) / 2) * w, PLANE_PAD.top + ((1 - c(a)) / 2) * h];
  }

  function timeStep(duration, widthPx) {
    const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
    for (const s of steps) if ((s / duration) * widthPx >= 64) return s;
    return steps[steps.length - 1];
  }

  function layoutPlots() {
    if (el.result.hidden) return;
    if (state.series) {
      curvesPlot.resize();
      drawCurvesLayer();
      el.curves.dataset.plotX0 = String(curvesX(0));
      el.curves.dataset.plotX1 = String(curvesX(state.duration));
    }
    planePlot.resize();
    drawPlaneLayer();
  }

  function drawCurvesLayer() {
    const c = curvesPlot.layerContext();
    const { w, h } = curvesPlot;
    const s = state.series;
    const x0 = CURVE_PAD.left;
    const x1 = w - CURVE_PAD.right;
    const font = "12px system-ui, sans-serif";
    c.font = font;
    c.lineWidth = 1;

    // y grid: -1 .. 1 by 0.5, zero line stronger
    c.textAlign = "right";
    c.textBaseline = "middle";
    for (const v of [1, 0.5, 0, -0.5, -1]) {
      const y = Math.round(curvesY(v)) + 0.5;
      c.strokeStyle = v === 0 ? cssVar("--axis") : cssVar("--grid");
      c.lineWidth = v === 0 ? 1.2 : 1;
      c.beginPath();
      c.moveTo(x0, y);
      c.lineTo(x1, y);
      c.stroke();
      c.fillStyle = cssVar("--muted");
      c.fillText(v === 0 ? "0" : fmtSigned(v, v % 1 ? 1 : 0), x0 - 7, y);
    }

    // x ticks in m:ss
    const step = timeStep(state.duration, x1 - x0);
    c.textAlign = "center";
    c.textBaseline = "top";
    for (let t = 0; t <= state.duration + 1e-6; t += step) {
      const x = Math.round(curvesX(t)) + 0.5;
      c.strokeStyle = cssVar("--grid");
      c.beginPath();
      c.moveTo(x, CURVE_PAD.top);
      c.lineTo(x, h - CURVE_PAD.bottom);
      c.stroke();
      c.strokeStyle = cssVar("--axis");
      c.beginPath();
      c.moveTo(x, h - CURVE_PAD.bottom);
      c.lineTo(x, h - CURVE_PAD.bottom + 4);
      c.stroke();
      c.fillStyle = cssVar("--muted");
      c.fillText(fmtTime(t), Math.min(x, x1 - 12), h - CURVE_PAD.bottom + 7);
    }

    // the curves (a gap where a value is missing)
    const line = (values, color) => {
      c.strokeStyle = color;
      c.lineWidth = 2.2;
      c.lineJoin = "round";
      c.lineCap = "round";
      c.beginPath();
      let open = false;
      for (let i = 0; i < s.times.length; i++) {
        const v = values[i];
        if (v === null) {
          open = false;
          continue;
        }
        const x = curvesX(s.times[i]);
        const y = curvesY(v);
        if (open) c.lineTo(x, y);
        else c.moveTo(x, y);
        open = true;
      }
      c.stroke();
      // isolated points (a value between two gaps) as dots
      c.fillStyle = color;
      for (let i = 0; i < s.times.length; i++) {
        if (values[i] !== null && (i === 0 || values[i - 1] === null) && (i === s.times.length - 1 || values[i + 1] === null)) {
          c.beginPath();
          c.arc(curvesX(s.times[i]), curvesY(values[i]), 2.5, 0, 2 * Math.PI);
          c.fill();
        }
      }
    };
    line(s.arousal, cssVar("--arousal"));
    line(s.valence, cssVar("--valence"));
  }

  function drawPlaneLayer() {
    const c = planePlot.layerContext();
    const { w, h } = planePlot;
    const [xm, ym] = planeXY(0, 0);
    const [xl, yt] = planeXY(-1, 1);
    const [xr, yb] = planeXY(1, -1);
    const quadrantKey = el.quadrantCard.dataset.quadrant;

    // the four quadrants, tinted, the track's own a little more
    for (const [key, label, code, sx, sy] of QUADRANTS) {
      const color = cssVar(`--${key}`);
      const qx = sx > 0 ? xm : xl;
      const qy = sy > 0 ? yt : ym;
      c.fillStyle = withAlpha(color, key === quadrantKey ? 0.16 : 0.07);
      c.fillRect(qx, qy, sx > 0 ? xr - xm : xm - xl, sy > 0 ? ym - yt : yb - ym);
      c.textAlign = sx > 0 ? "right" : "left";
      const tx = sx > 0 ? xr - 8 : xl + 8;
      c.fillStyle = color;
      c.font = "700 14px system-ui, sans-serif";
      c.textBaseline = sy > 0 ? "top" : "bottom";
      const ty = sy > 0 ? yt + 7 : yb - 20;
      c.fillText(label, tx, ty);
      c.font = "11px system-ui, sans-serif";
      c.fillStyle = withAlpha(color, 0.85);
      c.fillText(code, tx, sy > 0 ? ty + 17 : yb - 6);
    }

    // grid, axes and ticks
    c.lineWidth = 1;
    for (const g of [-0.5, 0.5]) {
      const [gx] = planeXY(g, 0);
      const [, gy] = planeXY(0, g);
      c.strokeStyle = cssVar("--grid");
      c.beginPath();
      c.moveTo(Math.round(gx) + 0.5, yt);
      c.lineTo(Math.round(gx) + 0.5, yb);
      c.moveTo(xl, Math.round(gy) + 0.5);
      c.lineTo(xr, Math.round(gy) + 0.5);
      c.stroke();
    }
    c.strokeStyle = cssVar("--axis");
    c.strokeRect(xl + 0.5, yt + 0.5, xr - xl - 1, yb - yt - 1);
    c.beginPath();
    c.moveTo(Math.round(xm) + 0.5, yt);
    c.lineTo(Math.round(xm) + 0.5, yb);
    c.moveTo(xl, Math.round(ym) + 0.5);
    c.lineTo(xr, Math.round(ym) + 0.5);
    c.stroke();
    c.fillStyle = cssVar("--muted");
    c.font = "11px system-ui, sans-serif";
    c.textBaseline = "top";
    for (const v of [-1, 0, 1]) {
      const [x] = planeXY(v, 0);
      c.textAlign = v < 0 ? "left" : v > 0 ? "right" : "center";
      c.fillText(v === 0 ? "0" : fmtSigned(v, 0), x, yb + 4);
    }
    c.textAlign = "right";
    c.textBaseline = "middle";
    for (const v of [-1, 0, 1]) {
      const [, y] = planeXY(0, v);
      c.textBaseline = v > 0 ? "top" : v < 0 ? "bottom" : "middle";
      c.fillText(v === 0 ? "0" : fmtSigned(v, 0), xl - 5, y);
    }
    c.font = "600 12px system-ui, sans-serif";
    c.textAlign = "center";
    c.textBaseline = "bottom";
    c.fillText("valence →", (xl + xr) / 2, h - 1);
    c.save();
    c.translate(11, (yt + yb) / 2);
    c.rotate(-Math.PI / 2);
    c.textBaseline = "middle";
    c.fillText("arousal →", 0, 0);
    c.restore();

    // the trajectory, faded from start to end
    const s = state.series;
    const ink = cssVar("--trajectory");
    if (s) {
      const n = s.times.length;
      c.lineWidth = 2;
      c.lineCap = "round";
      for (let i = 0; i + 1 < n; i++) {
        if ([s.valence[i], s.arousal[i], s.valence[i + 1], s.arousal[i + 1]].includes(null)) continue;
        const [ax, ay] = planeXY(s.valence[i], s.arousal[i]);
        const [bx, by] = planeXY(s.valence[i + 1], s.arousal[i + 1]);
        c.strokeStyle = withAlpha(ink, 0.12 + 0.88 * ((i + 1) / Math.max(1, n - 1)));
        c.beginPath();
        c.moveTo(ax, ay);
        c.lineTo(bx, by);
        c.stroke();
      }
      const first = s.times.findIndex((_, i) => s.valence[i] !== null && s.arousal[i] !== null);
      let last = -1;
      for (let i = n - 1; i >= 0; i--) {
        if (s.valence[i] !== null && s.arousal[i] !== null) {
          last = i;
          break;
        }
      }
      if (first >= 0) {
        const [fx, fy] = planeXY(s.valence[first], s.arousal[first]);
        c.strokeStyle = withAlpha(ink, 0.5);
        c.fillStyle = cssVar("--card") || "#fff";
        c.lineWidth = 1.5;
        c.beginPath();
        c.arc(fx, fy, 4, 0, 2 * Math.PI);
        c.fill();
        c.stroke();
      }
      if (last >= 0 && last !== first) {
        const [lx, ly] = planeXY(s.valence[last], s.arousal[last]);
        c.fillStyle = ink;
        c.beginPath();
        c.arc(lx, ly, 3.5, 0, 2 * Math.PI);
        c.fill();
      }
    }

    // the track's static point: a diamond
    const st = (state.result && state.result.static) || {};
    const sv = num(st.valence);
    const sa = num(st.arousal);
    if (sv !== null && sa !== null) {
      const [px, py] = planeXY(sv, sa);
      c.save();
      c.translate(px, py);
      c.rotate(Math.PI / 4);
      c.fillStyle = cssVar("--ink");
      c.strokeStyle = cssVar("--card") || "#fff";
      c.lineWidth = 2;
      c.beginPath();
      c.rect(-6, -6, 12, 12);
      c.fill();
      c.stroke();
      c.restore();
    }
  }

  /** The curve's values at time t: linear between the two nearest points, null where one of them is missing. */
  function valuesAt(t) {
    const s = state.series;
    if (!s) return null;
    const T = s.times;
    if (t <= T[0]) return [s.valence[0], s.arousal[0]];
    const n = T.length;
    if (t >= T[n - 1]) return [s.valence[n - 1], s.arousal[n - 1]];
    let lo = 0;
    let hi = n - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (T[mid] <= t) lo = mid;
      else hi = mid;
    }
    const f = (t - T[lo]) / (T[hi] - T[lo] || 1);
    const lerp = (arr) => (arr[lo] === null || arr[hi] === null ? null : arr[lo] + f * (arr[hi] - arr[lo]));
    return [lerp(s.valence), lerp(s.arousal)];
  }

  function cursorTime() {
    const t = el.player.currentTime;
    return isNum(t) ? Math.min(t, state.duration) : 0;
  }

  let lastReadout = "";
  let lastAria = -1;

  function drawNow() {
    state.drawQueued = false;
    if (el.result.hidden || !state.result) return;
    const t = cursorTime();
    const va = valuesAt(t);
    const cursorColor = cssVar("--cursor");

    if (state.series) {
      const c = curvesPlot.blit();
      const { h } = curvesPlot;
      if (state.hoverX !== null && !state.dragging) {
        const hx = Math.round(Math.max(CURVE_PAD.left, Math.min(curvesPlot.w - CURVE_PAD.right, state.hoverX))) + 0.5;
        c.strokeStyle = cssVar("--axis");
        c.setLineDash([3, 3]);
        c.lineWidth = 1;
        c.beginPath();
        c.moveTo(hx, CURVE_PAD.top);
        c.lineTo(hx, h - CURVE_PAD.bottom);
        c.stroke();
        c.setLineDash([]);
        const label = fmtTime(curvesT(state.hoverX));
        c.font = "11px system-ui, sans-serif";
        const tw = c.measureText(label).width + 10;
        const lx = Math.max(CURVE_PAD.left, Math.min(curvesPlot.w - CURVE_PAD.right - tw, hx - tw / 2));
        c.fillStyle = cssVar("--card");
        c.fillRect(lx, CURVE_PAD.top, tw, 16);
        c.fillStyle = cssVar("--muted");
        c.textAlign = "left";
        c.textBaseline = "middle";
        c.fillText(label, lx + 5, CURVE_PAD.top + 8);
      }
      const x = Math.round(curvesX(t)) + 0.5;
      c.strokeStyle = cursorColor;
      c.lineWidth = 2;
      c.beginPath();
      c.moveTo(x, CURVE_PAD.top - 2);
      c.lineTo(x, h - CURVE_PAD.bottom + 2);
      c.stroke();
      const dot = (v, color) => {
        if (v === null) return;
        c.fillStyle = color;
        c.strokeStyle = cssVar("--card");
        c.lineWidth = 2;
        c.beginPath();
        c.arc(x, curvesY(v), 5, 0, 2 * Math.PI);
        c.fill();
        c.stroke();
      };
      if (va) {
        dot(va[1], cssVar("--arousal"));
        dot(va[0], cssVar("--valence"));
      }
    }

    const p = planePlot.blit();
    if (va && va[0] !== null && va[1] !== null) {
      const [px, py] = planeXY(va[0], va[1]);
      p.fillStyle = withAlpha(cursorColor, 0.22);
      p.beginPath();
      p.arc(px, py, 11, 0, 2 * Math.PI);
      p.fill();
      p.fillStyle = cursorColor;
      p.strokeStyle = cssVar("--card");
      p.lineWidth = 2;
      p.beginPath();
      p.arc(px, py, 6, 0, 2 * Math.PI);
      p.fill();
      p.stroke();
    }

    // the test hook and the text around the plots
    el.curves.dataset.cursorTime = t.toFixed(3);
    const audioDur = isNum(el.player.duration) ? el.player.duration : state.duration;
    const timeText = `${fmtTime(t)} / ${fmtTime(audioDur)}`;
    if (el.playTime.textContent !== timeText) el.playTime.textContent = timeText;
    const readout = va ? `${fmtSigned(va[0])}|${fmtSigned(va[1])}` : "";
    if (readout !== lastReadout) {
      lastReadout = readout;
      el.readout.replaceChildren();
      if (va) {
        const v = document.createElement("span");
        v.className = "v";
        v.textContent = `V ${fmtSigned(va[0])}`;
        const a = document.createElement("span");
        a.className = "a";
        a.textContent = `A ${fmtSigned(va[1])}`;
        el.readout.append("now  ", v, "  ", a);
      }
    }
    const whole = Math.floor(t);
    if (whole !== lastAria) {
      lastAria = whole;
      el.curves.setAttribute("aria-valuenow", String(whole));
      el.curves.setAttribute("aria-valuetext", fmtTime(t));
    }
  }

  function scheduleDraw() {
    if (state.drawQueued || state.rafId) return; // the playing loop draws every frame anyway
    state.drawQueued = true;
    requestAnimationFrame(drawNow);
  }

  function loop() {
    drawNow();
    state.rafId = !el.player.paused && !el.player.ended ? requestAnimationFrame(loop) : 0;
  }

  // ---------------------------------------------------------------- player

  function seek(t) {
    if (!state.result) return;
    const max = isNum(el.player.duration) ? el.player.duration : state.duration;
    el.player.currentTime = Math.max(0, Math.min(max, t));
    drawNow();
  }

  function togglePlay() {
    if (el.play.disabled) return;
    if (el.player.paused || el.player.ended) {
      el.player.play().catch((err) => {
        if (err && err.name === "AbortError") return; // a new file replaced this one
        el.playerNote.textContent = `This browser cannot play the file (${err && err.name ? err.name : "error"}).`;
        el.playerNote.hidden = false;
      });
    } else {
      el.player.pause();
    }
  }

  el.play.addEventListener("click", togglePlay);
  el.player.addEventListener("play", () => {
    el.play.classList.add("playing");
    el.play.setAttribute("aria-label", "Pause");
    if (!state.rafId) state.rafId = requestAnimationFrame(loop);
  });
  for (const type of ["pause", "ended"]) {
    el.player.addEventListener(type, () => {
      el.play.classList.remove("playing");
      el.play.setAttribute("aria-label", "Play");
      scheduleDraw();
    });
  }
  for (const type of ["seeked", "timeupdate", "loadedmetadata"]) el.player.addEventListener(type, scheduleDraw);
  el.player.addEventListener("error", () => {
    if (!state.result || !el.player.getAttribute("src")) return;
    el.play.disabled = true;
    el.playerNote.textContent = "This browser cannot play this file; the analysis is shown without playback.";
    el.playerNote.hidden = false;
  });

  // seeking on the curves: click, drag, keys
  el.curves.addEventListener("pointerdown", (e) => {
    if (e.button !== 0 || !state.series) return;
    state.dragging = true;
    el.curves.setPointerCapture(e.pointerId);
    seek(curvesT(e.clientX - el.curves.getBoundingClientRect().left));
  });
  el.curves.addEventListener("pointermove", (e) => {
    const x = e.clientX - el.curves.getBoundingClientRect().left;
    if (state.dragging) seek(curvesT(x));
    else {
      state.hoverX = x;
      scheduleDraw();
    }
  });
  const endDrag = () => {
    state.dragging = false;
  };
  el.curves.addEventListener("pointerup", endDrag);
  el.curves.addEventListener("pointercancel", endDrag);
  el.curves.addEventListener("pointerleave", () => {
    state.hoverX = null;
    scheduleDraw();
  });
  el.curves.addEventListener("keydown", (e) => {
    const t = cursorTime();
    const step = e.shiftKey ? 1 : 5;
    const keys = {
      ArrowLeft: () => seek(t - step),
      ArrowDown: () => seek(t - step),
      ArrowRight: () => seek(t + step),
      ArrowUp: () => seek(t + step),
      PageDown: () => seek(t - 30),
      PageUp: () => seek(t + 30),
      Home: () => seek(0),
      End: () => seek(state.duration),
      " ": togglePlay,
      Enter: togglePlay,
    };
    if (keys[e.key]) {
      e.preventDefault();
      keys[e.key]();
    }
  });

  // ---------------------------------------------------------------- downloads, retry, cancel

  el.downloadJson.addEventListener("click", () => {
    if (state.result) save(state.raw, "application/json", `${stem(state.result.file)}.json`);
  });
  el.downloadCsv.addEventListener("click", () => {
    if (state.result) save(toCsv(state.result, state.series), "text/csv", `${stem(state.result.file)}.csv`);
  });
  el.retry.addEventListener("click", () => {
    if (state.file) upload(state.file);
  });
  el.cancel.addEventListener("click", () => {
    const xhr = state.xhr;
    state.xhr = null;
    if (xhr) xhr.abort();
    stopTicker();
    setState(state.result ? "done" : "idle");
    if (state.result) {
      layoutPlots();
      drawNow();
    }
  });

  // ---------------------------------------------------------------- choosing a file: button, input, drag and drop

  el.choose.addEventListener("click", () => el.input.click());
  el.input.addEventListener("change", () => {
    const file = el.input.files && el.input.files[0];
    el.input.value = ""; // so that choosing the same file again is a change too
    chooseFile(file);
  });

  let dragDepth = 0;
  const hasFiles = (e) => e.dataTransfer && Array.from(e.dataTransfer.types || []).includes("Files");
  document.addEventListener("dragenter", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    dragDepth += 1;
    el.drop.classList.add("dragging");
  });
  document.addEventListener("dragover", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault(); // a drop anywhere on the page is taken, never a navigation to the file
    e.dataTransfer.dropEffect = "copy";
  });
  document.addEventListener("dragleave", () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) el.drop.classList.remove("dragging");
  });
  document.addEventListener("drop", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    dragDepth = 0;
    el.drop.classList.remove("dragging");
    chooseFile(e.dataTransfer.files[0]);
  });

  // ---------------------------------------------------------------- resizing, colour scheme, server info

  let resizeQueued = false;
  const relayout = () => {
    if (resizeQueued) return;
    resizeQueued = true;
    requestAnimationFrame(() => {
      resizeQueued = false;
      layoutPlots();
      drawNow();
    });
  };
  if ("ResizeObserver" in window) new ResizeObserver(relayout).observe(el.result);
  window.addEventListener("resize", relayout);
  const dark = window.matchMedia("(prefers-color-scheme: dark)");
  if (dark.addEventListener) dark.addEventListener("change", relayout);

  async function getJson(path) {
    const r = await fetch(path, { headers: { Accept: "application/json" } });
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
    return r.json();
  }

  // the loaded model's name in the header, and the upload limit if /health tells it; both optional
  getJson("models")
    .then((m) => {
      if (m && typeof m.loaded === "string" && m.loaded) {
        const b = document.createElement("b");
        b.textContent = m.loaded;
        el.serverInfo.replaceChildren("model ", b);
        el.serverInfo.hidden = false;
      }
    })
    .catch(() => {});
  getJson("health")
    .then((h) => {
      const bytes = h && (num(h.max_bytes) || num(h.max_mb) * 1048576);
      if (bytes > 0) state.maxBytes = bytes;
    })
    .catch(() => {});

  window.addEventListener("pagehide", () => {
    if (state.objectUrl) URL.revokeObjectURL(state.objectUrl);
  });
})();
