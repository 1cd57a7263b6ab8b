// The study list: QIDO-RS /studies with the search form, sortable
// columns (within the page: QIDO has no sort parameter; the server returns
// newest first), paging with limit/offset.
import * as dw from './dicomweb.js';

const PAGE = 25;

const COLUMNS = [
  { key: 'name', label: 'Patient', get: (s) => dw.formatName(dw.str(s, dw.T.PatientName)) },
  { key: 'pid', label: 'Patient ID', get: (s) => dw.str(s, dw.T.PatientID) },
  { key: 'date', label: 'Date', get: (s) => dw.str(s, dw.T.StudyDate) + dw.str(s, dw.T.StudyTime),
    show: (s) => `${dw.formatDate(dw.str(s, dw.T.StudyDate))} ${dw.formatTime(dw.str(s, dw.T.StudyTime))}` },
  { key: 'desc', label: 'Description', get: (s) => dw.str(s, dw.T.StudyDescription) },
  { key: 'acc', label: 'Accession', get: (s) => dw.str(s, dw.T.AccessionNumber) },
  { key: 'mod', label: 'Modalities', get: (s) => dw.values(s, dw.T.ModalitiesInStudy).join(', ') },
  { key: 'series', label: 'Series', num: true, get: (s) => dw.num(s, dw.T.NumberOfStudyRelatedSeries, 0) },
  { key: 'inst', label: 'Instances', num: true, get: (s) => dw.num(s, dw.T.NumberOfStudyRelatedInstances, 0) },
];

export function mountList(el) {
  el.innerHTML = `
    <form class="search" id="search" autocomplete="off">
      <label>Patient name<input name="name" placeholder="e.g. doe jo"></label>
      <label>Patient ID<input name="pid"></label>
      <label>Accession<input name="acc"></label>
      <label>From<input name="from" type="date"></label>
      <label>To<input name="to" type="date"></label>
      <label>Modality<select name="mod">
        <option value="">any</option>
        ${['CT', 'MR', 'PT', 'CR', 'DX', 'US', 'MG', 'NM', 'XA', 'OT', 'SR', 'DOC']
          .map((m) => `<option>${m}</option>`).join('')}
      </select></label>
      <button type="submit" class="primary">Search</button>
      <button type="reset">Clear</button>
    </form>
    <div class="status" id="list-status" role="status"></div>
    <div class="table-wrap"><table class="studies" id="studies">
      <thead><tr>${COLUMNS.map((c) => `<th data-key="${c.key}" tabindex="0" aria-sort="none">${c.label}</th>`).join('')}</tr></thead>
      <tbody></tbody>
    </table></div>
    <div class="pager">
      <button id="prev" disabled>&larr; Previous</button>
      <span id="page-info"></span>
      <button id="next" disabled>Next &rarr;</button>
    </div>`;

  const form = el.querySelector('#search');
  const tbody = el.querySelector('tbody');
  const status = el.querySelector('#list-status');
  const state = { offset: 0, rows: [], sort: null, dir: 1, more: false, ctl: null };

  // The search is kept in the URL so that back/forward and reloads keep it.
  const params = new URLSearchParams(location.search);
  for (const k of ['name', 'pid', 'acc', 'from', 'to', 'mod']) {
    if (params.has(k)) form.elements[k].value = params.get(k);
  }
  state.offset = Math.max(0, parseInt(params.get('offset') || '0', 10) || 0);

  function qidoParams() {
    const f = form.elements;
    const p = {
      limit: PAGE + 1,
      offset: state.offset,
      includefield: ['StudyDescription', 'AccessionNumber', 'ModalitiesInStudy',
        'NumberOfStudyRelatedSeries', 'NumberOfStudyRelatedInstances', 'PatientBirthDate', 'PatientSex'].join(','),
    };
    const name = f.name.value.trim();
    if (name) {
      if (/[*?]/.test(name)) p.PatientName = name;
      else { p.PatientName = name; p.fuzzymatching = 'true'; }
    }
    if (f.pid.value.trim()) p.PatientID = f.pid.value.trim();
    if (f.acc.value.trim()) p.AccessionNumber = f.acc.value.trim();
    const from = f.from.value.replaceAll('-', ''), to = f.to.value.replaceAll('-', '');
    if (from || to) p.StudyDate = from === to ? from : `${from}-${to}`;
    if (f.mod.value) p.ModalitiesInStudy = f.mod.value;
    return p;
  }

  function syncURL() {
    const f = form.elements;
    const q = new URLSearchParams();
    for (const k of ['name', 'pid', 'acc', 'from', 'to', 'mod']) if (f[k].value) q.set(k, f[k].value);
    if (state.offset) q.set('offset', state.offset);
    const s = q.toString();
    history.replaceState(null, '', s ? `/?${s}` : '/');
  }

  async function load() {
    if (state.ctl) state.ctl.abort();
    const ctl = (state.ctl = new AbortController());
    status.textContent = 'Searching…';
    status.classList.remove('error');
    syncURL();
    try {
      const rows = await dw.searchStudies(qidoParams(), ctl.signal);
      state.more = rows.length > PAGE;
      state.rows = rows.slice(0, PAGE);
      render();
      const first = state.rows.length ? state.offset + 1 : 0;
      status.textContent = state.rows.length
        ? `Studies ${first}–${state.offset + state.rows.length}${state.more ? '+' : ''}`
        : 'No studies match.';
    } catch (err) {
      if (err.name === 'AbortError') return;
      status.textContent = `Search failed: ${err.message}`;
      status.classList.add('error');
    }
  }

  function render() {
    let rows = state.rows;
    if (state.sort) {
      const col = COLUMNS.find((c) => c.key === state.sort);
      rows = [...rows].sort((a, b) => {
        const x = col.get(a), y = col.get(b);
        return (col.num ? x - y : String(x).localeCompare(String(y))) * state.dir;
      });
    }
    tbody.innerHTML = '';
    for (const s of rows) {
      const tr = document.createElement('tr');
      const uid = dw.str(s, dw.T.StudyInstanceUID);
      tr.dataset.study = uid;
      tr.tabIndex = 0;
      for (const c of COLUMNS) {
        const td = document.createElement('td');
        td.textContent = c.show ? c.show(s) : c.get(s);
        td.dataset.label = c.label;
        if (c.num) td.className = 'num';
        tr.appendChild(td);
      }
      tr.addEventListener('click', () => open(uid));
      tr.addEventListener('keydown', (e) => { if (e.key === 'Enter') open(uid); });
      tbody.appendChild(tr);
    }
    for (const th of el.querySelectorAll('th')) {
      th.setAttribute('aria-sort', th.dataset.key === state.sort ? (state.dir > 0 ? 'ascending' : 'descending') : 'none');
    }
    el.querySelector('#prev').disabled = state.offset === 0;
    el.querySelector('#next').disabled = !state.more;
    el.querySelector('#page-info').textContent = `Page ${Math.floor(state.offset / PAGE) + 1}`;
  }

  function open(uid) {
    location.href = `/viewer?StudyInstanceUIDs=${encodeURIComponent(uid)}`;
  }

  form.addEventListener('submit', (e) => { e.preventDefault(); state.offset = 0; load(); });
  form.addEventListener('reset', () => setTimeout(() => { state.offset = 0; load(); }));
  for (const th of el.querySelectorAll('th')) {
    const sort = () => {
      state.dir = state.sort === th.dataset.key ? -state.dir : 1;
      state.sort = th.dataset.key;
      render();
    };
    th.addEventListener('click', sort);
    th.addEventListener('keydown', (e) => { if (e.key === 'Enter') sort(); });
  }
  el.querySelector('#prev').addEventListener('click', () => { state.offset = Math.max(0, state.offset - PAGE); load(); });
  el.querySelector('#next').addEventListener('click', () => { state.offset += PAGE; load(); });
  load();
}
