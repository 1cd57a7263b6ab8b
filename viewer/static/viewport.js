// Viewport shows one stack (the frames of a series) on a canvas: images
// are frames rendered by the server with the viewport's window, drawn
// fit-to-size with zoom and pan. Overlays are HTML over the canvas, so the
// canvas holds only image pixels.
import * as dw from './dicomweb.js';

export const PRESETS = [
  { key: '1', id: 'soft', label: 'Soft tissue', window: [40, 400] },
  { key: '2', id: 'lung', label: 'Lung', window: [-600, 1500] },
  { key: '3', id: 'bone', label: 'Bone', window: [300, 1500] },
  { key: '4', id: 'brain', label: 'Brain', window: [40, 80] },
];

// CT_DEFAULT_WINDOW is the window of a CT image whose metadata has none:
// soft tissue (center 40 HU, width 400 HU).
export const CT_DEFAULT_WINDOW = PRESETS[0].window;

let nextID = 1;

export class Viewport {
  constructor(el, { loader, format = 'jpeg', study, onActivate, onChange } = {}) {
    this.id = nextID++;
    this.el = el;
    this.loader = loader;
    this.format = format;
    this.study = study; // QIDO study attributes, for the overlay
    this.onActivate = onActivate || (() => {});
    this.onChange = onChange || (() => {});
    this.stack = null;
    this.index = 0;
    this.window = null; // [center, width] set by the user; null: each image's default
    this.zoom = 1;
    this.pan = [0, 0];
    this.tool = 'scroll';
    this.shown = null; // { url, bitmap } on the canvas
    this.cineTimer = null;
    this.stats = {};
    this.generation = 0;

    el.classList.add('viewport');
    el.tabIndex = -1;
    el.innerHTML = `
      <canvas></canvas>
      <div class="ov tl"></div><div class="ov tr"></div>
      <div class="ov bl"></div><div class="ov br"></div>
      <div class="vp-msg"></div>`;
    this.canvas = el.querySelector('canvas');
    this.ctx = this.canvas.getContext('2d');
    this.ov = {
      tl: el.querySelector('.tl'), tr: el.querySelector('.tr'),
      bl: el.querySelector('.bl'), br: el.querySelector('.br'),
    };
    this.msg = el.querySelector('.vp-msg');
    this.resizeObs = new ResizeObserver(() => this.resize());
    this.resizeObs.observe(el);
    this.bindPointer();
  }

  destroy() {
    this.stopCine();
    this.resizeObs.disconnect();
    this.loader.cancel(this);
  }

  // --- stack and images -------------------------------------------------------

  setStack(stack) {
    this.stopCine();
    this.loader.cancel(this);
    this.stack = stack;
    this.index = 0;
    this.window = null;
    this.zoom = 1;
    this.pan = [0, 0];
    this.shown = null;
    this.generation++;
    this.stats = { start: performance.now() };
    this.el.dataset.series = stack ? stack.series : '';
    this.paint();
    this.update();
  }

  get length() {
    return this.stack ? this.stack.images.length : 0;
  }

  get image() {
    return this.stack && this.stack.images[this.index];
  }

  // effectiveWindow is the window the image is rendered with: the user's,
  // else the image's own (metadata; soft tissue for a CT without one), else
  // null (the server's default).
  effectiveWindow(img = this.image) {
    return this.window || (img && img.window) || null;
  }

  urlOf(img, format = this.format) {
    const s = this.stack;
    return dw.renderedURL(s.study, s.series, img.sop, img.frame, this.effectiveWindow(img), format);
  }

  currentURL(format = this.format) {
    return this.image ? this.urlOf(this.image, format) : '';
  }

  scrollTo(i) {
    if (!this.stack) return;
    const n = this.length;
    i = Math.max(0, Math.min(n - 1, Math.round(i)));
    if (i === this.index && this.shown) return;
    this.index = i;
    this.update();
  }

  scrollBy(d) {
    this.scrollTo(this.index + d);
  }

  setWindow(w) {
    this.window = w ? [w[0], Math.max(1, w[1])] : null;
    this.update();
  }

  reset() {
    this.window = null;
    this.zoom = 1;
    this.pan = [0, 0];
    this.update();
  }

  // update draws the current image (or keeps the previous one until it
  // arrives) and re-queues the prefetch around it.
  update() {
    this.overlay();
    const img = this.image;
    if (!img) return;
    const url = this.urlOf(img);
    const have = this.loader.peek(url);
    this.loader.cancel(this);
    if (have) this.draw(url, have);
    else {
      const gen = this.generation;
      this.loader.get(url, { priority: -1, owner: this }).then((bm) => {
        if (gen === this.generation && this.image && this.urlOf(this.image) === url) this.draw(url, bm);
      }, (err) => this.fail(err));
    }
    this.prefetch();
    this.onChange(this);
  }

  // prefetch queues every frame of the stack, nearest first, with the
  // current window; the stats record when the whole stack is loaded.
  prefetch() {
    if (!this.stack) return;
    const gen = this.generation;
    const n = this.length;
    const win = this.window ? this.window.join(',') : 'default';
    const key = `${gen}|${win}`;
    if (this.prefetchKey !== key) {
      this.prefetchKey = key;
      this.loaded = new Set();
    }
    const order = [];
    for (let d = 0; d < n; d++) {
      if (this.index + d < n) order.push(this.index + d);
      if (d && this.index - d >= 0) order.push(this.index - d);
    }
    order.forEach((i, rank) => {
      const url = this.urlOf(this.stack.images[i]);
      this.loader.get(url, { priority: rank, owner: this }).then(() => {
        if (this.prefetchKey !== key) return;
        this.loaded.add(i);
        if (this.loaded.size === n && gen === this.generation && !this.stats.allLoaded) {
          this.stats.allLoaded = performance.now();
          this.el.dataset.allLoaded = '1';
          this.onChange(this);
        }
      }, () => {});
    });
  }

  fail(err) {
    if (err && err.name === 'AbortError') return;
    this.msg.textContent = `Image failed to load: ${err.message || err}`;
    this.msg.hidden = false;
  }

  // --- drawing ---------------------------------------------------------------

  resize() {
    const r = this.el.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(r.width * dpr)), h = Math.max(1, Math.round(r.height * dpr));
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w;
      this.canvas.height = h;
      this.paint();
    }
  }

  draw(url, bitmap) {
    this.shown = { url, bitmap };
    this.msg.hidden = true;
    this.paint();
    if (!this.stats.first) {
      this.stats.first = performance.now();
      this.el.dataset.firstImage = '1';
    }
    this.el.dataset.shown = url;
  }

  // transform maps the bitmap into the canvas: fit, then zoom and pan
  // (pan in CSS pixels).
  transform(bw, bh, cw = this.canvas.width, ch = this.canvas.height) {
    const dpr = window.devicePixelRatio || 1;
    const s = Math.min(cw / bw, ch / bh) * this.zoom;
    const x = (cw - bw * s) / 2 + this.pan[0] * dpr;
    const y = (ch - bh * s) / 2 + this.pan[1] * dpr;
    return { s, x, y };
  }

  // paintInto draws bitmap into ctx as the viewport shows it; the tests
  // use it to draw the server's reference image the same way.
  paintInto(ctx, bitmap) {
    const { width: cw, height: ch } = ctx.canvas;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, cw, ch);
    if (!bitmap) return;
    const { s, x, y } = this.transform(bitmap.width, bitmap.height, cw, ch);
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(bitmap, x, y, bitmap.width * s, bitmap.height * s);
  }

  paint() {
    this.paintInto(this.ctx, this.shown && this.shown.bitmap);
  }

  overlay() {
    const st = this.study || {};
    const s = this.stack;
    const esc = (t) => String(t).replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
    const lines = (...l) => l.filter(Boolean).map((x) => `<div>${esc(x)}</div>`).join('');
    this.ov.tl.innerHTML = lines(
      dw.formatName(dw.str(st, dw.T.PatientName)),
      dw.str(st, dw.T.PatientID) && `ID ${dw.str(st, dw.T.PatientID)}`,
      [dw.formatDate(dw.str(st, dw.T.PatientBirthDate)), dw.str(st, dw.T.PatientSex)].filter(Boolean).join(' '),
    );
    this.ov.tr.innerHTML = lines(
      dw.str(st, dw.T.StudyDescription),
      dw.formatDate(dw.str(st, dw.T.StudyDate)),
      dw.str(st, dw.T.AccessionNumber) && `Acc ${dw.str(st, dw.T.AccessionNumber)}`,
    );
    if (!s) {
      this.ov.bl.innerHTML = '';
      this.ov.br.innerHTML = '';
      return;
    }
    const img = this.image;
    const win = this.effectiveWindow();
    this.ov.bl.innerHTML = lines(
      `Se ${s.number ?? ''} ${s.modality || ''} ${s.description || ''}`.trim(),
      img && `Im ${this.index + 1}/${this.length}` + (img.frames > 1 ? ` (frame ${img.frame}/${img.frames})` : ''),
      img && Number.isFinite(img.location) && `Loc ${img.location.toFixed(1)} mm`,
      img && Number.isFinite(img.thickness) && `Thk ${img.thickness} mm`,
    );
    this.ov.br.innerHTML = lines(
      win ? `W ${Math.round(win[1])} L ${Math.round(win[0])}` : 'W/L auto',
      `Zoom ${Math.round(this.zoom * 100)}%`,
      this.cineTimer ? `Cine ${this.fps} fps` : '',
    );
    this.el.dataset.index = String(this.index);
  }

  // --- cine ------------------------------------------------------------------

  toggleCine(fps) {
    if (this.cineTimer) this.stopCine();
    else this.startCine(fps);
  }

  startCine(fps) {
    if (!this.stack || this.length < 2) return;
    this.fps = fps || this.stack.fps || 10;
    this.cineTimer = setInterval(() => {
      // Advance only once the current frame is on screen, so slow
      // networks slow the loop down instead of skipping frames.
      if (this.shown && this.shown.url !== this.currentURL()) return;
      this.index = (this.index + 1) % this.length;
      this.update();
    }, 1000 / this.fps);
    this.overlay();
    this.onChange(this);
  }

  stopCine() {
    if (this.cineTimer) clearInterval(this.cineTimer);
    this.cineTimer = null;
    if (this.stack) this.overlay();
  }

  // --- pointer interaction -----------------------------------------------------

  bindPointer() {
    const el = this.el;
    const pointers = new Map();
    let drag = null;
    let wheelAcc = 0;

    el.addEventListener('contextmenu', (e) => e.preventDefault());
    el.addEventListener('pointerdown', (e) => {
      this.onActivate(this);
      el.focus({ preventScroll: true });
      pointers.set(e.pointerId, [e.clientX, e.clientY]);
      el.setPointerCapture(e.pointerId);
      if (pointers.size === 2) {
        const [a, b] = [...pointers.values()];
        drag = { mode: 'pinch', dist: Math.hypot(a[0] - b[0], a[1] - b[1]), zoom: this.zoom };
        return;
      }
      const mode = e.button === 2 ? 'wl' : e.button === 1 ? 'pan' : this.tool;
      drag = { mode, x: e.clientX, y: e.clientY, index: this.index, zoom: this.zoom, pan: [...this.pan], acc: 0 };
      if (mode === 'wl') this.startWL(drag);
      e.preventDefault();
    });
    el.addEventListener('pointermove', (e) => {
      if (!pointers.has(e.pointerId)) return;
      pointers.set(e.pointerId, [e.clientX, e.clientY]);
      if (!drag) return;
      if (drag.mode === 'pinch') {
        if (pointers.size < 2) return;
        const [a, b] = [...pointers.values()];
        this.zoom = clampZoom(drag.zoom * Math.hypot(a[0] - b[0], a[1] - b[1]) / drag.dist);
        this.paint();
        this.overlay();
        return;
      }
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      switch (drag.mode) {
        case 'scroll': {
          const h = el.clientHeight || 400;
          const step = Math.max(2, Math.min(12, h / Math.max(1, this.length)));
          this.scrollTo(drag.index + Math.trunc(dy / step));
          break;
        }
        case 'wl':
          drag.dx = dx;
          drag.dy = dy;
          this.applyWL(drag);
          break;
        case 'zoom':
          this.zoom = clampZoom(drag.zoom * Math.exp(-dy / 200));
          this.paint();
          this.overlay();
          break;
        case 'pan':
          this.pan = [drag.pan[0] + dx, drag.pan[1] + dy];
          this.paint();
          break;
      }
    });
    const up = (e) => {
      pointers.delete(e.pointerId);
      if (pointers.size === 0) drag = null;
    };
    el.addEventListener('pointerup', up);
    el.addEventListener('pointercancel', up);
    el.addEventListener('wheel', (e) => {
      e.preventDefault();
      this.onActivate(this);
      if (e.ctrlKey) {
        this.zoom = clampZoom(this.zoom * Math.exp(-e.deltaY / 300));
        this.paint();
        this.overlay();
        return;
      }
      // One slice per notch; trackpads send small deltas that add up.
      wheelAcc += e.deltaMode === 1 ? e.deltaY * 33 : e.deltaY;
      const steps = Math.trunc(wheelAcc / 50) || (Math.abs(wheelAcc) >= 1 && Math.abs(e.deltaY) >= 50 ? Math.sign(wheelAcc) : 0);
      if (steps) {
        wheelAcc = 0;
        this.scrollBy(steps);
      }
    }, { passive: false });
  }

  // startWL fixes the window a drag starts from: the current one, else
  // one estimated from the frame's pixel values.
  startWL(drag) {
    const w = this.effectiveWindow();
    if (w) {
      drag.win = [...w];
      return;
    }
    const img = this.image;
    if (!img) return;
    estimateWindow(this.stack, img).then((est) => {
      drag.win = est;
      this.applyWL(drag); // the moves made while the estimate loaded
    });
  }

  // applyWL sets the window from the drag: horizontal widens, vertical
  // moves the level, in steps that scale with the width.
  applyWL(drag) {
    if (!drag.win || (!drag.dx && !drag.dy)) return;
    const k = Math.max(0.5, drag.win[1] / 300);
    this.setWindow([drag.win[0] + drag.dy * k, Math.max(1, drag.win[1] + drag.dx * k)]);
  }
}

const clampZoom = (z) => Math.max(0.1, Math.min(20, z));

// estimateWindow reads the native frame (WADO-RS frames) and returns the
// window spanning its modality values, the same default the server uses.
export async function estimateWindow(stack, img) {
  const url = `${dw.instanceURL(stack.study, stack.series, img.sop)}/frames/${img.frame}`;
  try {
    const res = await fetch(url, { headers: { Accept: 'multipart/related; type="application/octet-stream"' } });
    if (!res.ok) throw new Error(String(res.status));
    const body = new Uint8Array(await res.arrayBuffer());
    const data = multipartFirst(res.headers.get('Content-Type') || '', body);
    const bits = img.bitsAllocated || 16;
    const px = bits === 8 ? data : new (img.signed ? Int16Array : Uint16Array)(data.buffer, data.byteOffset, Math.floor(data.byteLength / 2));
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < px.length; i++) {
      const v = px[i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    const m = img.slope || 1, b = img.intercept || 0;
    lo = lo * m + b;
    hi = hi * m + b;
    return [(lo + hi) / 2, Math.max(1, hi - lo)];
  } catch {
    return [img.signed ? 0 : 2048, 4096];
  }
}

// multipartFirst returns the body of the first part of a multipart/related
// response (or the whole body when it is not multipart).
function multipartFirst(type, body) {
  const m = /boundary="?([^";]+)"?/i.exec(type);
  if (!/^multipart\//i.test(type) || !m) return body;
  const enc = new TextEncoder();
  const find = (needle, from) => {
    outer: for (let i = from; i <= body.length - needle.length; i++) {
      for (let j = 0; j < needle.length; j++) if (body[i + j] !== needle[j]) continue outer;
      return i;
    }
    return -1;
  };
  const start = find(enc.encode(`--${m[1]}`), 0);
  const hdrEnd = find(enc.encode('\r\n\r\n'), start);
  const end = find(enc.encode(`\r\n--${m[1]}`), hdrEnd + 4);
  const slice = body.slice(hdrEnd + 4, end < 0 ? body.length : end);
  return slice;
}
