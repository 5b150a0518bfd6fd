/* blurtools report: table sorting, the synchronised side-by-side viewer, the video players.
   Reads the page's data from <script type="application/json" id="report-data">; no network, no library. */
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("report-data").textContent);
  var state = { sample: -1, scale: 1, tx: 0, ty: 0, error: false, fitted: true };
  window.blurReport = { state: state, data: DATA };

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }
  function fmt(v, key) {
    if (v === null || v === undefined) { return "\u2013"; }
    if (typeof v === "string") { return v === "inf" ? "\u221e" : v; }   /* identical images: PSNR inf */
    return key === "psnr" || key.indexOf("psnr") >= 0 ? v.toFixed(2) : v.toFixed(4);
  }

  /* ---------------------------------------------------------------- sortable tables */
  function sortTable(table, col, dir) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var th = table.tHead.rows[0].cells[col];
    var numeric = th.getAttribute("data-type") !== "text";
    rows.sort(function (a, b) {
      var x = a.cells[col].getAttribute("data-v"), y = b.cells[col].getAttribute("data-v");
      if (numeric) {
        var fx = x === "" || x === null ? NaN : parseFloat(x), fy = y === "" || y === null ? NaN : parseFloat(y);
        if (isNaN(fx) && isNaN(fy)) { return 0; }
        if (isNaN(fx)) { return 1; }   /* missing values last in either direction */
        if (isNaN(fy)) { return -1; }
        return dir * (fx - fy);
      }
      return dir * String(x).localeCompare(String(y), undefined, { numeric: true });
    });
    rows.forEach(function (r) { body.appendChild(r); });
    $all("th", table.tHead).forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
  }
  $all("table.sortable").forEach(function (table) {
    $all("th", table.tHead).forEach(function (th, col) {
      if (th.getAttribute("data-type") === "none") { return; }
      th.addEventListener("click", function () {
        var dir = th.getAttribute("aria-sort") === "descending" ? 1 : (th.getAttribute("aria-sort") === "ascending" ? -1 : parseInt(th.getAttribute("data-first") || "-1", 10));
        sortTable(table, col, dir);
      });
    });
  });

  /* ---------------------------------------------------------------- the viewer */
  var viewer = $("#viewer");
  function panes() { return $all(".pane", viewer); }
  function current() { return DATA.samples[state.sample]; }

  function apply() {
    var s = current();
    if (!s) { return; }
    panes().forEach(function (pane) {
      var img = $("img", pane);
      img.style.width = s.width + "px";
      img.style.height = s.height + "px";
      img.style.transform = "translate(" + state.tx + "px," + state.ty + "px) scale(" + state.scale + ")";
      img.classList.toggle("pixelated", state.scale >= 2);
    });
    $("#zoom-level").textContent = Math.round(state.scale * 100) + "%";
    $("#error-toggle").setAttribute("aria-pressed", state.error ? "true" : "false");
    viewer.classList.toggle("showing-error", state.error);
  }

  function fit() {
    var s = current(), vp = $(".vp", viewer);
    if (!s || !vp) { return; }
    var w = vp.clientWidth, h = vp.clientHeight;
    state.scale = Math.min(w / s.width, h / s.height);
    state.tx = (w - s.width * state.scale) / 2;
    state.ty = (h - s.height * state.scale) / 2;
    state.fitted = true;
    apply();
  }

  function zoomAt(factor, cx, cy) {
    var next = Math.max(0.05, Math.min(64, state.scale * factor));
    state.tx = cx - (cx - state.tx) * (next / state.scale);
    state.ty = cy - (cy - state.ty) * (next / state.scale);
    state.scale = next;
    state.fitted = false;
    apply();
  }

  function zoomTo(scale) {
    var vp = $(".vp", viewer);
    zoomAt(scale / state.scale, vp.clientWidth / 2, vp.clientHeight / 2);
  }

  function source(panel) {
    if (state.error && panel.err) { return panel.err; }
    if (state.error && panel.err_thumb) { return panel.err_thumb; }
    return panel.full || panel.thumb;
  }

  function showSources() {
    var s = current();
    panes().forEach(function (pane, i) {
      var panel = s.panels[i], img = $("img", pane), want = source(panel);
      if (img.getAttribute("data-src") === want) { return; }
      img.setAttribute("data-src", want);
      /* the thumbnail (or error thumbnail) shows at once; the full-size file replaces it when loaded */
      img.src = state.error ? (panel.err_thumb || panel.thumb) : panel.thumb;
      if (want !== img.src) {
        var full = new Image();
        full.onload = function () { if (img.getAttribute("data-src") === want) { img.src = want; } };
        full.src = want;
      }
    });
  }

  /* the column count that shows the panes' images largest: wide images stack in rows, tall ones side by side */
  function bestColumns(n, w, h, gw, gh) {
    var best = n, bestScale = 0;
    for (var cols = 1; cols <= n; cols++) {
      var rows = Math.ceil(n / cols);
      var scale = Math.min((gw / cols - 8) / w, (gh / rows - 28) / h);
      if (scale > bestScale * 1.0001) { best = cols; bestScale = scale; }
    }
    return best;
  }

  function buildPanes(s) {
    var grid = $("#panes");
    grid.innerHTML = "";
    var cols = bestColumns(s.panels.length, s.width, s.height, grid.clientWidth, grid.clientHeight);
    grid.style.gridTemplateColumns = "repeat(" + cols + ", minmax(0, 1fr))";
    grid.style.gridTemplateRows = "repeat(" + Math.ceil(s.panels.length / cols) + ", minmax(0, 1fr))";
    s.panels.forEach(function (panel) {
      var pane = document.createElement("figure");
      pane.className = "pane " + panel.kind;
      var cap = document.createElement("figcaption");
      var scores = "";
      DATA.metrics.forEach(function (k) {
        if (panel[k] !== undefined && panel[k] !== null) { scores += "<span>" + k.toUpperCase() + " " + fmt(panel[k], k) + "</span>"; }
      });
      cap.innerHTML = "<b></b>" + scores;
      $("b", cap).textContent = panel.label;
      var vp = document.createElement("div");
      vp.className = "vp";
      var img = document.createElement("img");
      img.alt = panel.label + " " + s.name;
      img.draggable = false;
      vp.appendChild(img);
      pane.appendChild(vp);
      pane.appendChild(cap);
      grid.appendChild(pane);
    });
    panes().forEach(function (pane) { wire($(".vp", pane)); });
  }

  function open(index) {
    if (index < 0 || index >= DATA.samples.length) { return; }
    var keep = state.sample >= 0 && !state.fitted && viewer.classList.contains("open");
    state.sample = index;
    var s = current();
    viewer.classList.add("open");
    document.body.classList.add("viewing");
    $("#viewer-title").textContent = s.name + "  (" + (index + 1) + " / " + DATA.samples.length + ")";
    buildPanes(s);
    showSources();
    if (keep) { apply(); } else { fit(); }
  }
  window.blurReport.open = open;

  /* previous / next follow the table as it is sorted now, so one can step through the worst cases */
  function step(delta) {
    var order = $all("#samples tbody tr").map(function (r) { return parseInt(r.getAttribute("data-sample"), 10); });
    var pos = order.indexOf(state.sample);
    if (pos < 0) { open(state.sample + delta); return; }
    if (pos + delta >= 0 && pos + delta < order.length) { open(order[pos + delta]); }
  }

  function close() {
    viewer.classList.remove("open");
    document.body.classList.remove("viewing");
  }

  var drag = null;
  function wire(vp) {
    vp.addEventListener("wheel", function (e) {
      e.preventDefault();
      var r = vp.getBoundingClientRect();
      zoomAt(e.deltaY < 0 ? 1.25 : 0.8, e.clientX - r.left, e.clientY - r.top);
    }, { passive: false });
    vp.addEventListener("mousedown", function (e) {
      drag = { x: e.clientX, y: e.clientY, tx: state.tx, ty: state.ty };
      e.preventDefault();
    });
    vp.addEventListener("dblclick", function () { fit(); });
  }
  window.addEventListener("mousemove", function (e) {
    if (!drag) { return; }
    state.tx = drag.tx + e.clientX - drag.x;
    state.ty = drag.ty + e.clientY - drag.y;
    state.fitted = false;
    apply();
  });
  window.addEventListener("mouseup", function () { drag = null; });
  window.addEventListener("resize", function () { if (viewer && viewer.classList.contains("open") && state.fitted) { fit(); } });

  function toggleError() {
    state.error = !state.error;
    showSources();
    apply();
  }

  if (viewer) {
    $("#viewer-close").addEventListener("click", close);
    $("#viewer-prev").addEventListener("click", function () { step(-1); });
    $("#viewer-next").addEventListener("click", function () { step(1); });
    $("#error-toggle").addEventListener("click", toggleError);
    $("#zoom-fit").addEventListener("click", fit);
    $all("[data-zoom]").forEach(function (b) {
      b.addEventListener("click", function () { zoomTo(parseFloat(b.getAttribute("data-zoom"))); });
    });
    document.addEventListener("keydown", function (e) {
      if (!viewer.classList.contains("open")) { return; }
      if (e.key === "Escape") { close(); }
      else if (e.key === "ArrowLeft") { step(-1); }
      else if (e.key === "ArrowRight") { step(1); }
      else if (e.key === "e" || e.key === "E") { toggleError(); }
      else if (e.key === "0") { fit(); }
      else if (e.key === "1") { zoomTo(1); }
      else if (e.key === "+" || e.key === "=") { zoomTo(state.scale * 2); }
      else if (e.key === "-") { zoomTo(state.scale / 2); }
    });
  }
  $all("[data-sample]").forEach(function (el) {
    el.addEventListener("click", function () { open(parseInt(el.getAttribute("data-sample"), 10)); });
  });

  /* ---------------------------------------------------------------- video players */
  $all(".player").forEach(function (player) {
    var spec = DATA.videos[parseInt(player.getAttribute("data-video"), 10)];
    var slider = $("input[type=range]", player), button = $("button.play", player);
    var imgs = $all("img.frame", player), readouts = $all(".frame-score", player);
    var frame = 0, timer = null;
    function show(i) {
      frame = (i + spec.frames) % spec.frames;
      imgs.forEach(function (img, k) { img.src = spec.panels[k].frames[frame]; });
      readouts.forEach(function (el, k) {
        var v = spec.panels[k].frame_psnr;
        el.textContent = v ? "frame " + (frame + 1) + ": " + fmt(v[frame], "psnr") + " dB" : "frame " + (frame + 1);
      });
      slider.value = frame;
    }
    slider.max = spec.frames - 1;
    slider.addEventListener("input", function () { show(parseInt(slider.value, 10)); });
    button.addEventListener("click", function () {
      if (timer) { clearInterval(timer); timer = null; button.textContent = "\u25B6 play"; return; }
      button.textContent = "\u275A\u275A pause";
      timer = setInterval(function () { show(frame + 1); }, 1000 / (spec.fps || 6));
    });
    show(0);
  });
})();
