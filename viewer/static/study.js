// The study view: series strip, viewport grid (1x1, 1x2, 2x2), toolbar,
// keyboard shortcuts and the reports panel.
import * as dw from './dicomweb.js';
import { Loader } from './loader.js';
import { Viewport, PRESETS, CT_DEFAULT_WINDOW } from './viewport.js';
import { mountReports } from './reports.js';

const LAYOUTS = { '1x1': [1, 1], '1x2': [1, 2], '2x2': [2, 2] };

const SHORTCUTS = [
  ['↑ ↓ / ← →, wheel', 'previous / next image'],
  ['PgUp PgDn, Home End', '±10 images, first / last'],
  ['drag (Scroll tool)', 'scroll the stack'],
  ['right-drag, W', 'window/level (W: left-drag tool)'],
  ['Z, P, S', 'zoom, pan, scroll tools; Ctrl+wheel or pinch zooms'],
  ['1 2 3 4, 0', 'presets: soft tissue, lung, bone, brain; 0 default'],
  ['+ / −', 'zoom in / out'],
  ['R', 'reset window, zoom and pan'],
  ['C', 'cine on/off'],
  ['L', 'next layout (1×1, 1×2, 2×2)'],
  ['[ ]', 'previous / next series in the viewport'],
  ['Tab', 'next viewport'],
  ['D', 'reports panel'],
  ['?', 'this help'],
];

export async function mountStudy(el, studyUID, opts) {
  const format = opts.format === 'png' ? 'png' : 'jpeg';
  el.innerHTML = `
    <header class="study-bar">
      <a href="/" class="back" title="Study list">&larr; Studies</a>
      <div class="study-title" id="study-title"></div>
      <div class="toolbar" role="toolbar">
        <div class="group" id="tools">
          <button data-tool="scroll" title="Scroll (S)">Scroll</button>
          <button data-tool="wl" title="Window/level (W)">W/L</button>
          <button data-tool="zoom" title="Zoom (Z)">Zoom</button>
          <button data-tool="pan" title="Pan (P)">Pan</button>
        </div>
        <div class="group" id="presets">
          ${PRESETS.map((p) => `<button data-preset="${p.id}" title="${p.label} ${p.window[1]}/${p.window[0]} (${p.key})">${p.label}</button>`).join('')}
        </div>
        <div class="group">
          <button id="reset" title="Reset (R)">Reset</button>
          <button id="cine" title="Cine (C)">Cine</button>
        </div>
        <div class="group" id="layouts">
          ${Object.keys(LAYOUTS).map((l) => `<button data-layout="${l}" title="Layout ${l}">${l.replace('x', '×')}</button>`).join('')}
        </div>
        <div class="group">
          <button id="toggle-reports" title="Reports (D)">Reports</button>
          <button id="help-btn" title="Shortcuts (?)">?</button>
        </div>
      </div>
    </header>
    <div class="study-body">
      <nav class="series-strip" id="series-strip" aria-label="Series"></nav>
      <main class="grid" id="grid"></main>
      <aside class="reports" id="reports" hidden></aside>
    </div>
    <div class="help" id="help" hidden>
      <div class="help-box"><h2>Keyboard and mouse</h2>
      <table>${SHORTCUTS.map(([k, v]) => `<tr><th>${k}</th><td>${v}</td></tr>`).join('')}</table>
      <button id="help-close">Close</button></div>
    </div>`;

  const grid = el.querySelector('#grid');
  const strip = el.querySelector('#series-strip');
  const reportsEl = el.querySelector('#reports');
  const loader = new Loader({ maxActive: 6 });
  const app = { loader, viewports: [], active: null, stacks: [], tool: 'scroll', layout: '1x1', stats: {} };
  window.pacsViewer = app;
  app.stats.start = 0; // performance.now() counts from navigation start

  // --- data ------------------------------------------------------------------
  const [studyAttrs] = await dw.searchStudies({
    StudyInstanceUID: studyUID,
    includefield: 'StudyDescription,AccessionNumber,PatientBirthDate,PatientSex,ModalitiesInStudy,SOPClassesInStudy',
  });
  if (!studyAttrs) {
    grid.innerHTML = `<p class="error pad">Study ${studyUID} not found.</p>`;
    return app;
  }
  app.study = studyAttrs;
  el.querySelector('#study-title').textContent = [
    dw.formatName(dw.str(studyAttrs, dw.T.PatientName)),
    dw.str(studyAttrs, dw.T.StudyDescription),
    dw.formatDate(dw.str(studyAttrs, dw.T.StudyDate)),
  ].filter(Boolean).join(' · ');
  document.title = `${dw.formatName(dw.str(studyAttrs, dw.T.PatientName))} – PACS viewer`;

  const series = await dw.searchSeries(studyUID, { includefield: 'SeriesDescription,Modality,SeriesNumber' });
  const imageSeries = series.filter((s) => !['SR', 'DOC', 'KO', 'PR'].includes(dw.str(s, dw.T.Modality)));

  // Stacks: from series metadata, loaded for the first series first (the
  // first image waits for it only).
  const stackPromises = new Map();
  const stackOf = (s) => {
    const uid = dw.str(s, dw.T.SeriesInstanceUID);
    if (!stackPromises.has(uid)) stackPromises.set(uid, loadStack(studyUID, s));
    return stackPromises.get(uid);
  };

  // --- layout and viewports ------------------------------------------------------
  const activate = (vp) => {
    app.active = vp;
    for (const v of app.viewports) v.el.classList.toggle('active', v === vp);
    syncToolbar();
  };

  function setLayout(name) {
    const [rows, cols] = LAYOUTS[name];
    app.layout = name;
    grid.style.gridTemplateRows = `repeat(${rows}, minmax(0, 1fr))`;
    grid.style.gridTemplateColumns = `repeat(${cols}, minmax(0, 1fr))`;
    const want = rows * cols;
    while (app.viewports.length > want) {
      const vp = app.viewports.pop();
      vp.destroy();
      vp.el.remove();
    }
    while (app.viewports.length < want) {
      const div = document.createElement('div');
      grid.appendChild(div);
      const vp = new Viewport(div, { loader, format, study: studyAttrs, onActivate: activate, onChange: syncToolbar });
      vp.tool = app.tool;
      app.viewports.push(vp);
      // Fill a new viewport with the next series not shown yet.
      const shown = new Set(app.viewports.map((v) => v.stack && v.stack.series));
      const next = imageSeries.find((s) => !shown.has(dw.str(s, dw.T.SeriesInstanceUID))) || imageSeries[0];
      if (next) showSeries(vp, next);
    }
    if (!app.viewports.includes(app.active)) activate(app.viewports[0]);
    syncToolbar();
  }

  async function showSeries(vp, s) {
    vp.setStack(null);
    vp.msg.textContent = 'Loading…';
    vp.msg.hidden = false;
    try {
      const stack = await stackOf(s);
      vp.setStack(stack);
      if (!stack.images.length) {
        vp.msg.textContent = 'No images in this series.';
        vp.msg.hidden = false;
      }
    } catch (err) {
      vp.fail(err);
    }
    markStrip();
  }

  // --- series strip ------------------------------------------------------------
  function markStrip() {
    const active = app.active && app.active.stack && app.active.stack.series;
    for (const b of strip.querySelectorAll('.series')) b.classList.toggle('active', b.dataset.series === active);
  }

  for (const s of imageSeries) {
    const uid = dw.str(s, dw.T.SeriesInstanceUID);
    const b = document.createElement('button');
    b.className = 'series';
    b.dataset.series = uid;
    b.draggable = true;
    b.innerHTML = `<img alt="" loading="lazy" src="${dw.thumbnailURL(studyUID, uid)}">
      <span class="label"><b>${dw.str(s, dw.T.Modality)} ${dw.str(s, dw.T.SeriesNumber)}</b>
      ${escapeHTML(dw.str(s, dw.T.SeriesDescription))}<br>
      <span class="muted">${dw.num(s, dw.T.NumberOfSeriesRelatedInstances, 0)} images</span></span>`;
    b.addEventListener('click', () => showSeries(app.active || app.viewports[0], s));
    b.addEventListener('dragstart', (e) => e.dataTransfer.setData('text/x-series', uid));
    strip.appendChild(b);
  }
  grid.addEventListener('dragover', (e) => e.preventDefault());
  grid.addEventListener('drop', (e) => {
    e.preventDefault();
    const uid = e.dataTransfer.getData('text/x-series');
    const vp = app.viewports.find((v) => v.el.contains(e.target));
    const s = imageSeries.find((x) => dw.str(x, dw.T.SeriesInstanceUID) === uid);
    if (vp && s) { activate(vp); showSeries(vp, s); }
  });

  // --- toolbar -------------------------------------------------------------------
  function syncToolbar() {
    for (const b of el.querySelectorAll('[data-tool]')) b.classList.toggle('on', b.dataset.tool === app.tool);
    for (const b of el.querySelectorAll('[data-layout]')) b.classList.toggle('on', b.dataset.layout === app.layout);
    const vp = app.active;
    const w = vp && vp.window;
    for (const b of el.querySelectorAll('[data-preset]')) {
      const p = PRESETS.find((x) => x.id === b.dataset.preset);
      b.classList.toggle('on', !!w && w[0] === p.window[0] && w[1] === p.window[1]);
    }
    el.querySelector('#cine').classList.toggle('on', !!(vp && vp.cineTimer));
    el.querySelector('#toggle-reports').classList.toggle('on', !reportsEl.hidden);
    markStrip();
    const first = app.viewports[0];
    if (first && first.stats.first) app.stats.firstImage = first.stats.first;
    if (first && first.stats.allLoaded) app.stats.allLoaded = first.stats.allLoaded;
  }
  const setTool = (t) => {
    app.tool = t;
    app.viewports.forEach((v) => { v.tool = t; });
    syncToolbar();
  };
  const preset = (id) => {
    const p = PRESETS.find((x) => x.id === id);
    if (app.active) app.active.setWindow(p ? [...p.window] : null);
  };
  const toggleReports = () => {
    reportsEl.hidden = !reportsEl.hidden;
    if (!reportsEl.hidden && !reportsEl.dataset.mounted) {
      reportsEl.dataset.mounted = '1';
      mountReports(reportsEl, studyUID, studyAttrs);
    }
    syncToolbar();
  };
  const help = el.querySelector('#help');
  el.querySelector('#tools').addEventListener('click', (e) => e.target.dataset.tool && setTool(e.target.dataset.tool));
  el.querySelector('#presets').addEventListener('click', (e) => e.target.dataset.preset && preset(e.target.dataset.preset));
  el.querySelector('#layouts').addEventListener('click', (e) => e.target.dataset.layout && setLayout(e.target.dataset.layout));
  el.querySelector('#reset').addEventListener('click', () => app.active && app.active.reset());
  el.querySelector('#cine').addEventListener('click', () => { app.active && app.active.toggleCine(); syncToolbar(); });
  el.querySelector('#toggle-reports').addEventListener('click', toggleReports);
  el.querySelector('#help-btn').addEventListener('click', () => { help.hidden = false; });
  el.querySelector('#help-close').addEventListener('click', () => { help.hidden = true; });

  // --- keyboard --------------------------------------------------------------
  document.addEventListener('keydown', (e) => {
    if (e.target.closest && e.target.closest('input, select, textarea')) return;
    if (e.altKey || e.metaKey || (e.ctrlKey && e.key !== 'Tab')) return;
    const vp = app.active;
    const k = e.key;
    let handled = true;
    if (k === 'ArrowUp' || k === 'ArrowLeft') vp && vp.scrollBy(-1);
    else if (k === 'ArrowDown' || k === 'ArrowRight') vp && vp.scrollBy(1);
    else if (k === 'PageUp') vp && vp.scrollBy(-10);
    else if (k === 'PageDown') vp && vp.scrollBy(10);
    else if (k === 'Home') vp && vp.scrollTo(0);
    else if (k === 'End') vp && vp.scrollTo(vp.length - 1);
    else if (PRESETS.some((p) => p.key === k)) preset(PRESETS.find((p) => p.key === k).id);
    else if (k === '0') preset(null);
    else if (k === 'r' || k === 'R') vp && vp.reset();
    else if (k === 'c' || k === 'C') { vp && vp.toggleCine(); syncToolbar(); }
    else if (k === 'w' || k === 'W') setTool('wl');
    else if (k === 's' || k === 'S') setTool('scroll');
    else if (k === 'z' || k === 'Z') setTool('zoom');
    else if (k === 'p' || k === 'P') setTool('pan');
    else if (k === '+' || k === '=') vp && zoomBy(vp, 1.25);
    else if (k === '-' || k === '_') vp && zoomBy(vp, 0.8);
    else if (k === 'l' || k === 'L') {
      const names = Object.keys(LAYOUTS);
      setLayout(names[(names.indexOf(app.layout) + 1) % names.length]);
    } else if (k === '[' || k === ']') {
      if (vp && vp.stack) {
        const i = imageSeries.findIndex((s) => dw.str(s, dw.T.SeriesInstanceUID) === vp.stack.series);
        const n = imageSeries.length;
        showSeries(vp, imageSeries[(i + (k === ']' ? 1 : n - 1)) % n]);
      }
    } else if (k === 'Tab') {
      const i = app.viewports.indexOf(vp);
      activate(app.viewports[(i + (e.shiftKey ? app.viewports.length - 1 : 1)) % app.viewports.length]);
    } else if (k === 'd' || k === 'D') toggleReports();
    else if (k === '?') help.hidden = !help.hidden;
    else if (k === 'Escape') help.hidden = true;
    else handled = false;
    if (handled) e.preventDefault();
  });

  const hasReports = dw.values(studyAttrs, dw.T.SOPClassesInStudy).some(dw.isReportClass);
  setLayout(opts.layout in LAYOUTS ? opts.layout : '1x1');
  if (hasReports || opts.reports) toggleReports();
  if (!imageSeries.length) grid.innerHTML = '<p class="muted pad">No image series in this study.</p>';
  return app;
}

function zoomBy(vp, f) {
  vp.zoom = Math.max(0.1, Math.min(20, vp.zoom * f));
  vp.paint();
  vp.overlay();
}

function escapeHTML(t) {
  return String(t).replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

// loadStack reads the series metadata and lists its frames in order
// (Instance Number, then frame number).
export async function loadStack(study, s) {
  const series = dw.str(s, dw.T.SeriesInstanceUID);
  const md = await dw.seriesMetadata(study, series);
  const images = [];
  let fps = 0;
  for (const ds of md) {
    if (!dw.num(ds, dw.T.Rows, 0) || dw.isReportClass(dw.str(ds, dw.T.SOPClassUID))) continue;
    const frames = dw.num(ds, dw.T.NumberOfFrames, 1) || 1;
    const wc = dw.num(ds, dw.T.WindowCenter), ww = dw.num(ds, dw.T.WindowWidth);
    let window = Number.isFinite(wc) && Number.isFinite(ww) && ww > 0 ? [wc, ww] : null;
    // A CT without a window in its metadata opens at soft tissue, as a
    // radiologist expects, not at the server's min/max of the pixel data.
    const modality = dw.str(ds, dw.T.Modality) || dw.str(s, dw.T.Modality);
    if (!window && modality === 'CT') window = [...CT_DEFAULT_WINDOW];
    const base = {
      sop: dw.str(ds, dw.T.SOPInstanceUID),
      number: dw.num(ds, dw.T.InstanceNumber, 0),
      frames,
      window,
      location: dw.num(ds, dw.T.SliceLocation),
      thickness: dw.num(ds, dw.T.SliceThickness),
      slope: dw.num(ds, dw.T.RescaleSlope, 1),
      intercept: dw.num(ds, dw.T.RescaleIntercept, 0),
      bitsAllocated: dw.num(ds, '00280100', 16),
      signed: dw.num(ds, '00280103', 0) === 1,
    };
    const ft = dw.num(ds, '00181063'); // Frame Time (ms)
    if (frames > 1 && ft > 0) fps = Math.round(1000 / ft);
    for (let f = 1; f <= frames; f++) images.push({ ...base, frame: f });
  }
  images.sort((a, b) => a.number - b.number || a.frame - b.frame);
  return {
    study,
    series,
    number: dw.str(s, dw.T.SeriesNumber),
    modality: dw.str(s, dw.T.Modality),
    description: dw.str(s, dw.T.SeriesDescription),
    images,
    fps: fps || 10,
  };
}
