// The reports panel: Structured Reports (text read from the instance
// metadata's content tree) and encapsulated PDF documents (from their bulk
// data) of the study, and of the patient's other studies.
import * as dw from './dicomweb.js';

const esc = (t) => String(t ?? '').replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

// findReports lists the report instances of the study, then those of the
// patient's other studies.
export async function findReports(study, studyAttrs) {
  const out = [];
  const add = async (uid, attrs, other) => {
    const insts = await dw.studyInstances(uid, {
      includefield: 'SOPClassUID,ContentDate,ContentTime,DocumentTitle,SeriesDescription,Modality',
    });
    for (const i of insts) {
      const cls = dw.str(i, dw.T.SOPClassUID);
      if (!dw.isReportClass(cls)) continue;
      out.push({
        study: uid,
        series: dw.str(i, dw.T.SeriesInstanceUID),
        sop: dw.str(i, dw.T.SOPInstanceUID),
        kind: dw.REPORT_CLASSES.pdf(cls) ? 'pdf' : 'sr',
        date: dw.str(i, dw.T.ContentDate) || dw.str(attrs, dw.T.StudyDate),
        title: dw.str(i, dw.T.DocumentTitle) || dw.str(i, dw.T.SeriesDescription),
        studyDescription: dw.str(attrs, dw.T.StudyDescription),
        other,
      });
    }
  };
  await add(study, studyAttrs, false);
  const pid = dw.str(studyAttrs, dw.T.PatientID);
  if (pid) {
    const others = await dw.searchStudies({ PatientID: pid, includefield: 'StudyDescription,SOPClassesInStudy' });
    for (const s of others) {
      const uid = dw.str(s, dw.T.StudyInstanceUID);
      if (uid === study) continue;
      const classes = dw.values(s, dw.T.SOPClassesInStudy);
      if (classes.length && !classes.some(dw.isReportClass)) continue;
      await add(uid, s, true);
    }
  }
  return out;
}

export function mountReports(el, study, studyAttrs) {
  el.innerHTML = `<h2>Reports</h2><div class="report-list" role="list"><p class="muted">Looking for reports…</p></div>
    <div class="report-view" id="report-view"></div>`;
  const list = el.querySelector('.report-list');
  const view = el.querySelector('.report-view');
  let urls = [];

  const open = async (r, item) => {
    for (const x of list.querySelectorAll('.report-item')) x.classList.toggle('active', x === item);
    urls.forEach(URL.revokeObjectURL);
    urls = [];
    view.innerHTML = '<p class="muted">Loading…</p>';
    view.dataset.kind = r.kind;
    try {
      const [ds] = await dw.instanceMetadata(r.study, r.series, r.sop);
      if (r.kind === 'sr') view.innerHTML = renderSR(ds);
      else {
        const { html, url } = await renderPDF(r, ds);
        urls.push(url);
        view.innerHTML = html;
      }
      view.dataset.sop = r.sop;
    } catch (err) {
      view.innerHTML = `<p class="error">Could not load the report: ${esc(err.message)}</p>`;
    }
  };

  findReports(study, studyAttrs).then((reports) => {
    if (!reports.length) {
      list.innerHTML = '<p class="muted">No reports for this patient.</p>';
      return;
    }
    list.innerHTML = '';
    let lastOther = null;
    for (const r of reports) {
      if (r.other !== lastOther) {
        const h = document.createElement('h3');
        h.textContent = r.other ? 'Other studies of this patient' : 'This study';
        list.appendChild(h);
        lastOther = r.other;
      }
      const item = document.createElement('button');
      item.className = 'report-item';
      item.setAttribute('role', 'listitem');
      item.dataset.kind = r.kind;
      item.dataset.sop = r.sop;
      item.innerHTML = `<span class="badge ${r.kind}">${r.kind === 'pdf' ? 'PDF' : 'SR'}</span>
        <span class="title">${esc(r.title || (r.kind === 'pdf' ? 'PDF document' : 'Structured report'))}</span>
        <span class="date">${esc(dw.formatDate(r.date))}${r.other ? ' · ' + esc(r.studyDescription) : ''}</span>`;
      item.addEventListener('click', () => open(r, item));
      list.appendChild(item);
    }
    const first = list.querySelector('.report-item');
    if (first) first.click();
  }, (err) => {
    list.innerHTML = `<p class="error">Could not list reports: ${esc(err.message)}</p>`;
  });
}

// renderSR turns the SR content tree into nested HTML: each item's concept
// name as a heading or label, its value (text, code, number, date,
// person, UID) as text.
export function renderSR(ds) {
  const title = codeMeaning(ds, dw.T.ConceptNameCodeSequence) || 'Structured report';
  const flags = [dw.str(ds, dw.T.CompletionFlag), dw.str(ds, dw.T.VerificationFlag)].filter(Boolean).join(' · ');
  return `<article class="sr">
    <h3 class="sr-title">${esc(title)}</h3>
    ${flags ? `<p class="muted">${esc(flags)}</p>` : ''}
    ${renderItems(dw.values(ds, dw.T.ContentSequence), 0)}
  </article>`;
}

function codeMeaning(ds, seqTag) {
  const item = dw.values(ds, seqTag)[0];
  return item ? dw.str(item, dw.T.CodeMeaning) || dw.str(item, dw.T.CodeValue) : '';
}

function itemValue(item) {
  switch (dw.str(item, dw.T.ValueType)) {
    case 'TEXT': return dw.str(item, dw.T.TextValue);
    case 'CODE': return codeMeaning(item, dw.T.ConceptCodeSequence);
    case 'NUM': {
      const mv = dw.values(item, dw.T.MeasuredValueSequence)[0];
      if (!mv) return '';
      const unit = codeMeaning(mv, dw.T.MeasurementUnitsCodeSequence);
      return `${dw.str(mv, dw.T.NumericValue)} ${unit}`.trim();
    }
    case 'DATE': return dw.formatDate(dw.str(item, dw.T.DateValue));
    case 'TIME': return dw.formatTime(dw.str(item, dw.T.TimeValue));
    case 'DATETIME': return dw.str(item, dw.T.DateTimeValue);
    case 'PNAME': return dw.formatName(dw.str(item, dw.T.PersonName));
    case 'UIDREF': return dw.str(item, dw.T.UIDValue);
    case 'IMAGE': case 'COMPOSITE': case 'WAVEFORM': {
      const ref = dw.values(item, dw.T.ReferencedSOPSequence)[0];
      return ref ? `reference to ${dw.str(ref, dw.T.ReferencedSOPInstanceUID)}` : 'reference';
    }
    default: return dw.str(item, dw.T.TextValue);
  }
}

function renderItems(items, depth) {
  if (!items.length) return '';
  const parts = items.map((item) => {
    const name = codeMeaning(item, dw.T.ConceptNameCodeSequence);
    const type = dw.str(item, dw.T.ValueType);
    const children = renderItems(dw.values(item, dw.T.ContentSequence), depth + 1);
    if (type === 'CONTAINER') {
      const h = Math.min(6, depth + 4);
      return `<section class="sr-container"><h${h}>${esc(name)}</h${h}>${children}</section>`;
    }
    const value = itemValue(item);
    const cls = type === 'TEXT' ? 'sr-text' : 'sr-value';
    return `<div class="sr-item" data-type="${esc(type)}">
      ${name ? `<span class="sr-name">${esc(name)}:</span> ` : ''}<span class="${cls}">${esc(value)}</span>
      ${children}</div>`;
  });
  return `<div class="sr-items depth-${depth}">${parts.join('')}</div>`;
}

async function renderPDF(r, ds) {
  const uri = dw.bulkURI(ds, dw.T.EncapsulatedDocument);
  let bytes;
  if (uri) bytes = await dw.fetchBulk(uri, 'application/pdf');
  else {
    const inline = ds[dw.T.EncapsulatedDocument] && ds[dw.T.EncapsulatedDocument].InlineBinary;
    if (!inline) throw new Error('the instance has no Encapsulated Document');
    bytes = Uint8Array.from(atob(inline), (c) => c.charCodeAt(0)).buffer;
  }
  // The value is padded to an even length; a trailing NUL is harmless.
  const type = dw.str(ds, dw.T.MIMETypeOfEncapsulatedDocument) || 'application/pdf';
  const url = URL.createObjectURL(new Blob([bytes], { type }));
  const title = dw.str(ds, dw.T.DocumentTitle) || 'PDF document';
  return {
    url,
    html: `<h3>${esc(title)}</h3>
      <p><a class="pdf-open" href="${url}" target="_blank" rel="noopener">Open in a new tab</a>
      · <a href="${url}" download="${esc(title)}.pdf">Download</a> · ${bytes.byteLength} bytes</p>
      <iframe class="pdf" title="${esc(title)}" src="${url}"></iframe>`,
  };
}
