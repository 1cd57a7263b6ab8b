// Entry point: / is the study list, /viewer?StudyInstanceUIDs=<uid> the
// study view (the URL form OHIF uses, so links work in both viewers).
import { mountList } from './list.js';
import { mountStudy } from './study.js';

const app = document.getElementById('app');
const params = new URLSearchParams(location.search);
const study = (params.get('StudyInstanceUIDs') || params.get('StudyInstanceUID') || '').split(',')[0].trim();

if (location.pathname.startsWith('/viewer') && study) {
  document.body.classList.add('study-page');
  mountStudy(app, study, {
    format: params.get('render') || 'jpeg',
    layout: params.get('layout') || '1x1',
    reports: params.has('reports'),
  }).catch((err) => {
    app.innerHTML = `<p class="error pad">Could not open the study: ${String(err.message || err).replace(/</g, '&lt;')}</p>`;
  });
} else {
  document.body.classList.add('list-page');
  app.innerHTML = '<header class="list-bar"><h1>Studies</h1></header><section id="list"></section>';
  mountList(app.querySelector('#list'));
}
