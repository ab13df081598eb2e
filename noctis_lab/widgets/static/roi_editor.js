// Noctis Lab ROI editor: the front end of noctis_lab.widgets.RoiEditor (anywidget).
// Hand-written ES module, no build step. All numbers come from Python: this file only
// draws the windowed slice (uint8 bytes), the ROI circles and the table, and sends
// the ROI geometry back when the user drags (move) or drags the rim (resize).

const SEND_EVERY_MS = 60; // throttle of geometry updates while dragging
const RIM_PX = 6; // grab distance from the circle's rim that means "resize"
const MAX_CANVAS_PX = 560;

function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function bytesOf(value) {
  if (!value) return new Uint8Array(0);
  if (value instanceof Uint8Array) return value;
  if (value instanceof DataView) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (value.buffer instanceof ArrayBuffer) return new Uint8Array(value.buffer, value.byteOffset || 0, value.byteLength);
  return new Uint8Array(0);
}

function fmt(v, digits = 1) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  return Number(v).toFixed(digits);
}

function slider(label, cls, min, max, step) {
  const input = el("input", { type: "range", class: cls, min: String(min), max: String(max), step: String(step) });
  const out = el("span", { class: "noctis-roi-value" });
  const wrap = el("label", { class: "noctis-roi-control" }, [el("span", { text: label }), input, out]);
  return { wrap, input, out };
}

function render({ model, el: root }) {
  root.classList.add("noctis-roi-editor");

  // -- layout -------------------------------------------------------------------------
  const sliceCtl = slider("Slice", "noctis-roi-slice", 0, 0, 1);
  const windowCtl = slider("Window", "noctis-roi-window", 1, 4000, 1);
  const levelCtl = slider("Level", "noctis-roi-level", -1000, 1000, 1);
  const resetBtn = el("button", { class: "noctis-roi-reset", type: "button", text: "Reset ROIs" });
  const toolbar = el("div", { class: "noctis-roi-toolbar" }, [sliceCtl.wrap, windowCtl.wrap, levelCtl.wrap, resetBtn]);

  const canvas = el("canvas", { class: "noctis-roi-canvas", tabindex: "0" });
  const hint = el("div", { class: "noctis-roi-hint", text: "Drag a circle to move it; drag its rim to resize it." });
  const left = el("div", { class: "noctis-roi-left" }, [canvas, hint]);

  const statusBadge = el("span", { class: "noctis-roi-status" });
  const table = el("table", { class: "noctis-roi-table" });
  // why some ROIs read "not checked" (the profile has no criterion for them)
  const profileNote = el("div", { class: "noctis-roi-profile-note" });
  const checks = el("ul", { class: "noctis-roi-checks" });
  const recs = el("ul", { class: "noctis-roi-recs" });
  const right = el("div", { class: "noctis-roi-right" }, [
    el("div", { class: "noctis-roi-heading" }, [el("span", { text: "Overall: " }), statusBadge]),
    table,
    profileNote,
    el("div", { class: "noctis-roi-subheading", text: "Checks not passed" }),
    checks,
    el("div", { class: "noctis-roi-subheading", text: "Recommendations" }),
    recs,
  ]);

  const operator = el("input", { type: "text", class: "noctis-roi-operator", placeholder: "operator name" });
  const recordBtn = el("button", { class: "noctis-roi-record", type: "button", text: "Record calibration" });
  const message = el("span", { class: "noctis-roi-message" });
  const footer = el("div", { class: "noctis-roi-footer" }, [
    el("span", { text: "Operator: " }), operator, recordBtn, message,
  ]);

  root.append(toolbar, el("div", { class: "noctis-roi-main" }, [left, right]), footer);

  // -- state --------------------------------------------------------------------------
  const offscreen = document.createElement("canvas");
  let rois = (model.get("rois") || []).map((r) => ({ ...r }));
  let drag = null; // {key, mode, dx, dy}
  let lastSent = 0;
  let pending = null;
  let view = { sx: 1, sy: 1, w: 0, h: 0 };

  function statusOf(key) {
    const rows = model.get("rows") || [];
    for (const row of rows) if (row.key === key) return row.status;
    return "not_checked";
  }
  function colour(status) {
    const colours = model.get("status_colours") || {};
    return colours[status] || "#9e9e9e";
  }

  function updateImage() {
    const [ny, nx] = model.get("image_shape") || [0, 0];
    const px = bytesOf(model.get("image"));
    if (!nx || !ny || px.length < nx * ny) return;
    offscreen.width = nx;
    offscreen.height = ny;
    const ctx = offscreen.getContext("2d");
    const img = ctx.createImageData(nx, ny);
    const d = img.data;
    for (let i = 0, j = 0; i < nx * ny; i++, j += 4) {
      const v = px[i];
      d[j] = v; d[j + 1] = v; d[j + 2] = v; d[j + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    const [dy, dx] = model.get("pixel_mm") || [1, 1];
    const sx = MAX_CANVAS_PX / Math.max(nx, (ny * dy) / dx);
    view = { sx, sy: sx * dy / dx, w: Math.round(nx * sx), h: Math.round(ny * sx * dy / dx) };
    canvas.width = view.w;
    canvas.height = view.h;
    draw();
  }

  function screenOf(r) {
    const [dy, dx] = model.get("pixel_mm") || [1, 1];
    return {
      cx: (r.x_mm / dx + 0.5) * view.sx,
      cy: (r.y_mm / dy + 0.5) * view.sy,
      rad: (r.radius_mm / dx) * view.sx,
    };
  }

  function visible(r) {
    return (r.slices || []).includes(model.get("slice_index"));
  }

  function draw() {
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingEnabled = true;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(offscreen, 0, 0, view.w, view.h);
    const selected = model.get("selected");
    const screen = {};
    for (const r of rois) {
      if (!visible(r)) continue;
      const s = screenOf(r);
      screen[r.key] = [s.cx, s.cy, s.rad];
      ctx.beginPath();
      ctx.arc(s.cx, s.cy, Math.max(s.rad, 1.5), 0, 2 * Math.PI);
      ctx.lineWidth = r.key === selected ? 3 : 2;
      ctx.strokeStyle = colour(statusOf(r.key));
      ctx.stroke();
      ctx.font = "11px sans-serif";
      ctx.fillStyle = colour(statusOf(r.key));
      ctx.fillText(r.name, s.cx + s.rad + 3, s.cy - s.rad);
    }
    // for people and for browser tests: where each visible ROI is, in CSS pixels
    canvas.dataset.rois = JSON.stringify(screen);
  }

  function renderTable() {
    const rows = model.get("rows") || [];
    const onSlice = new Set(rois.filter(visible).map((r) => r.key));
    table.replaceChildren();
    const head = el("tr", {}, ["Material", "ROI", "Mean", "SD", "Nom.", "Dev.", "Verdict"].map((t) => el("th", { text: t })));
    table.append(el("thead", {}, [head]));
    const body = el("tbody");
    for (const row of rows) {
      const verdict = el("td", { class: `noctis-roi-verdict noctis-${row.status}`, text: row.status.replace("_", " ") });
      verdict.style.color = colour(row.status);
      const tr = el("tr", { "data-key": row.key }, [
        el("td", { text: row.material }),
        el("td", { text: row.name, title: `${row.module}/${row.name}` }),
        el("td", { class: "noctis-roi-mean", text: fmt(row.mean) }),
        el("td", { text: fmt(row.sd) }),
        el("td", { text: fmt(row.nominal, 0) }),
        el("td", { text: fmt(row.deviation) }),
        verdict,
      ]);
      if (onSlice.has(row.key)) tr.classList.add("noctis-roi-onslice");
      if (row.key === model.get("selected")) tr.classList.add("noctis-roi-selected");
      tr.addEventListener("click", () => selectRoi(row.key));
      body.append(tr);
    }
    table.append(body);
    const st = model.get("status") || "";
    statusBadge.textContent = st;
    statusBadge.style.background = colour(st);
  }

  function renderChecks() {
    checks.replaceChildren();
    for (const c of model.get("checks") || []) {
      const li = el("li", { text: `${c.target}: ${fmt(c.measured)} ${c.unit} (${c.tolerance})` });
      li.style.color = colour(c.status);
      checks.append(li);
    }
    if (!checks.childElementCount) checks.append(el("li", { text: "none" }));
    recs.replaceChildren();
    for (const r of model.get("recommendations") || []) recs.append(el("li", { text: r }));
    if (!recs.childElementCount) recs.append(el("li", { text: "none" }));
  }

  function syncControls() {
    const n = model.get("n_slices") || 1;
    sliceCtl.input.max = String(n - 1);
    sliceCtl.input.value = String(model.get("slice_index"));
    sliceCtl.out.textContent = `${model.get("slice_index")} / ${n - 1}`;
    windowCtl.input.value = String(model.get("window"));
    windowCtl.out.textContent = fmt(model.get("window"), 0);
    levelCtl.input.value = String(model.get("level"));
    levelCtl.out.textContent = fmt(model.get("level"), 0);
    if (document.activeElement !== operator) operator.value = model.get("operator") || "";
    message.textContent = model.get("message") || "";
    profileNote.textContent = model.get("profile_note") || "";
  }

  function selectRoi(key) {
    model.set("selected", key);
    model.save_changes();
  }

  // -- sending geometry ---------------------------------------------------------------
  function send(force) {
    const now = performance.now();
    if (!force && now - lastSent < SEND_EVERY_MS) {
      if (!pending) pending = setTimeout(() => { pending = null; send(true); }, SEND_EVERY_MS);
      return;
    }
    lastSent = now;
    model.set("rois", rois.map((r) => ({ ...r })));
    model.save_changes();
  }

  function pointerPos(ev) {
    const box = canvas.getBoundingClientRect();
    return { x: (ev.clientX - box.left) * (canvas.width / box.width), y: (ev.clientY - box.top) * (canvas.height / box.height) };
  }

  function hit(p) {
    let best = null;
    for (const r of rois) {
      if (!visible(r)) continue;
      const s = screenOf(r);
      const d = Math.hypot(p.x - s.cx, p.y - s.cy);
      const rad = Math.max(s.rad, 3);
      if (Math.abs(d - rad) <= RIM_PX && d > rad * 0.6) return { r, s, mode: "resize" };
      if (d < rad && (!best || d < best.d)) best = { r, s, d, mode: "move" };
    }
    return best;
  }

  canvas.addEventListener("pointerdown", (ev) => {
    const p = pointerPos(ev);
    const h = hit(p);
    if (!h) return;
    ev.preventDefault();
    canvas.setPointerCapture(ev.pointerId);
    drag = { key: h.r.key, mode: h.mode, dx: p.x - h.s.cx, dy: p.y - h.s.cy };
    selectRoi(h.r.key);
  });
  canvas.addEventListener("pointermove", (ev) => {
    const p = pointerPos(ev);
    if (!drag) {
      const h = hit(p);
      canvas.style.cursor = h ? (h.mode === "resize" ? "nwse-resize" : "move") : "default";
      return;
    }
    const r = rois.find((q) => q.key === drag.key);
    if (!r) return;
    const [dy, dx] = model.get("pixel_mm") || [1, 1];
    if (drag.mode === "move") {
      r.x_mm = ((p.x - drag.dx) / view.sx - 0.5) * dx;
      r.y_mm = ((p.y - drag.dy) / view.sy - 0.5) * dy;
    } else {
      const s = screenOf(r);
      r.radius_mm = Math.max(0.5 * dx, (Math.hypot(p.x - s.cx, p.y - s.cy) / view.sx) * dx);
    }
    draw();
    send(false);
  });
  const endDrag = (ev) => {
    if (!drag) return;
    drag = null;
    if (canvas.hasPointerCapture(ev.pointerId)) canvas.releasePointerCapture(ev.pointerId);
    if (pending) { clearTimeout(pending); pending = null; }
    send(true);
  };
  canvas.addEventListener("pointerup", endDrag);
  canvas.addEventListener("pointercancel", endDrag);
  canvas.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const n = model.get("n_slices") || 1;
    const next = Math.min(n - 1, Math.max(0, model.get("slice_index") + (ev.deltaY > 0 ? 1 : -1)));
    model.set("slice_index", next);
    model.save_changes();
  }, { passive: false });

  // -- controls -----------------------------------------------------------------------
  sliceCtl.input.addEventListener("input", () => { model.set("slice_index", Number(sliceCtl.input.value)); model.save_changes(); });
  windowCtl.input.addEventListener("input", () => { model.set("window", Number(windowCtl.input.value)); model.save_changes(); });
  levelCtl.input.addEventListener("input", () => { model.set("level", Number(levelCtl.input.value)); model.save_changes(); });
  resetBtn.addEventListener("click", () => model.send({ event: "reset" }));
  operator.addEventListener("change", () => { model.set("operator", operator.value); model.save_changes(); });
  recordBtn.addEventListener("click", () => {
    model.set("operator", operator.value);
    model.save_changes();
    model.send({ event: "record", operator: operator.value });
  });

  // -- model events -------------------------------------------------------------------
  const onRois = () => {
    if (drag) return; // the user's hand wins while dragging
    rois = (model.get("rois") || []).map((r) => ({ ...r }));
    draw();
    renderTable();
  };
  const onImage = () => { updateImage(); syncControls(); renderTable(); };
  const onTable = () => { draw(); renderTable(); };
  const onSelected = () => { draw(); renderTable(); };
  // One table of trait -> handler, so subscribing and unsubscribing cannot drift apart.
  const handlers = [
    ["rois", onRois],
    ["image", onImage],
    ["image_shape", onImage],
    ["rows", onTable],
    ["status", onTable],
    ["selected", onSelected],
    ["checks", renderChecks],
    ["recommendations", renderChecks],
    ...["slice_index", "window", "level", "operator", "message", "n_slices", "profile_note"].map(
      (name) => [name, syncControls],
    ),
  ];
  for (const [name, fn] of handlers) model.on(`change:${name}`, fn);

  updateImage();
  syncControls();
  renderTable();
  renderChecks();

  return () => {
    if (pending) clearTimeout(pending);
    for (const [name, fn] of handlers) model.off(`change:${name}`, fn);
  };
}

export default { render };
