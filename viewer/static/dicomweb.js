// A small DICOMweb client: QIDO-RS, WADO-RS metadata, rendered frames,
// thumbnails and bulk data, plus helpers to read DICOM JSON.

const meta = document.querySelector('meta[name="dicomweb-root"]');
export const root = (meta && meta.content) || '/dicom-web';

const JSON_TYPE = 'application/dicom+json';

export class HttpError extends Error {
  constructor(url, status, text) {
    super(`${status} ${text || ''} (${url})`.trim());
    this.status = status;
  }
}

async function getJSON(url, signal) {
  const res = await fetch(url, { headers: { Accept: JSON_TYPE }, signal });
  if (!res.ok) throw new HttpError(url, res.status, await res.text().catch(() => ''));
  if (res.status === 204) return [];
  return res.json();
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
    else q.append(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

export const searchStudies = (params, signal) => getJSON(`${root}/studies${query(params)}`, signal);
export const searchSeries = (study, params, signal) =>
  getJSON(`${root}/studies/${study}/series${query(params)}`, signal);
export const searchInstances = (params, signal) => getJSON(`${root}/instances${query(params)}`, signal);
export const studyInstances = (study, params, signal) =>
  getJSON(`${root}/studies/${study}/instances${query(params)}`, signal);
export const seriesMetadata = (study, series, signal) =>
  getJSON(`${root}/studies/${study}/series/${series}/metadata`, signal);
export const instanceMetadata = (study, series, sop, signal) =>
  getJSON(`${root}/studies/${study}/series/${series}/instances/${sop}/metadata`, signal);

export const seriesURL = (study, series) => `${root}/studies/${study}/series/${series}`;
export const instanceURL = (study, series, sop) => `${seriesURL(study, series)}/instances/${sop}`;

export function thumbnailURL(study, series, size = 128) {
  return `${seriesURL(study, series)}/thumbnail?viewport=${size},${size}`;
}

// renderedURL is the server-rendered frame: window is [center, width] or
// null (the server's default window), format 'jpeg' or 'png'.
export function renderedURL(study, series, sop, frame, window, format = 'jpeg') {
  const q = [];
  if (window) q.push(`window=${round(window[0])},${round(window[1])}`);
  q.push(format === 'png' ? 'accept=image/png' : 'quality=90');
  return `${instanceURL(study, series, sop)}/frames/${frame}/rendered?${q.join('&')}`;
}

const round = (x) => Math.round(x * 100) / 100;

// fetchBulk reads a BulkDataURI (absolute or relative to the root).
export async function fetchBulk(uri, type = 'application/octet-stream') {
  const url = /^https?:|^\//.test(uri) ? uri : `${root}/${uri}`;
  const res = await fetch(url, { headers: { Accept: `${type}, application/octet-stream;q=0.9, */*;q=0.5` } });
  if (!res.ok) throw new HttpError(url, res.status, '');
  return res.arrayBuffer();
}

// --- DICOM JSON helpers ------------------------------------------------------

export const T = {
  SpecificCharacterSet: '00080005',
  StudyDate: '00080020',
  StudyTime: '00080030',
  SeriesDate: '00080021',
  ContentDate: '00080023',
  AccessionNumber: '00080050',
  Modality: '00080060',
  ModalitiesInStudy: '00080061',
  SOPClassUID: '00080016',
  SOPInstanceUID: '00080018',
  StudyDescription: '00081030',
  SeriesDescription: '0008103E',
  PatientName: '00100010',
  PatientID: '00100020',
  PatientBirthDate: '00100030',
  PatientSex: '00100040',
  StudyInstanceUID: '0020000D',
  SeriesInstanceUID: '0020000E',
  StudyID: '00200010',
  SeriesNumber: '00200011',
  InstanceNumber: '00200013',
  ImagePositionPatient: '00200032',
  ImageOrientationPatient: '00200037',
  SliceLocation: '00201041',
  NumberOfStudyRelatedSeries: '00201206',
  NumberOfStudyRelatedInstances: '00201208',
  NumberOfSeriesRelatedInstances: '00201209',
  SOPClassesInStudy: '00080062',
  NumberOfFrames: '00280008',
  Rows: '00280010',
  Columns: '00280011',
  PixelSpacing: '00280030',
  WindowCenter: '00281050',
  WindowWidth: '00281051',
  RescaleIntercept: '00281052',
  RescaleSlope: '00281053',
  SliceThickness: '00180050',
  // SR
  ValueType: '0040A040',
  ConceptNameCodeSequence: '0040A043',
  ConceptCodeSequence: '0040A168',
  ContentSequence: '0040A730',
  TextValue: '0040A160',
  RelationshipType: '0040A010',
  MeasuredValueSequence: '0040A300',
  NumericValue: '0040A30A',
  MeasurementUnitsCodeSequence: '004008EA',
  DateValue: '0040A121',
  TimeValue: '0040A122',
  DateTimeValue: '0040A120',
  PersonName: '0040A123',
  UIDValue: '0040A124',
  CodeMeaning: '00080104',
  CodeValue: '00080100',
  CompletionFlag: '0040A491',
  VerificationFlag: '0040A493',
  ReferencedSOPSequence: '00081199',
  ReferencedSOPInstanceUID: '00081155',
  ReferencedSOPClassUID: '00081150',
  // Encapsulated document
  DocumentTitle: '00420010',
  EncapsulatedDocument: '00420011',
  MIMETypeOfEncapsulatedDocument: '00420012',
};

export function values(ds, tag) {
  const el = ds && ds[tag];
  return (el && el.Value) || [];
}

// str returns the first value as text (person names: the alphabetic form).
export function str(ds, tag, dflt = '') {
  const v = values(ds, tag)[0];
  if (v === undefined || v === null) return dflt;
  if (typeof v === 'object') return v.Alphabetic || v.Ideographic || v.Phonetic || dflt;
  return String(v);
}

export function num(ds, tag, dflt = NaN) {
  const v = values(ds, tag)[0];
  const n = typeof v === 'number' ? v : parseFloat(v);
  return Number.isFinite(n) ? n : dflt;
}

export function bulkURI(ds, tag) {
  const el = ds && ds[tag];
  return el && el.BulkDataURI;
}

// formatName turns DOE^JANE^^DR into "DOE, JANE DR".
export function formatName(pn) {
  if (!pn) return '';
  const [fam = '', given = '', middle = '', prefix = '', suffix = ''] = pn.split('=')[0].split('^');
  const rest = [prefix, given, middle, suffix].filter(Boolean).join(' ');
  return fam && rest ? `${fam}, ${rest}` : fam || rest;
}

// formatDate turns 20240131 into 2024-01-31.
export function formatDate(d) {
  return /^\d{8}$/.test(d || '') ? `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}` : d || '';
}

export function formatTime(t) {
  const m = /^(\d\d)(\d\d)?(\d\d)?/.exec(t || '');
  return m ? [m[1], m[2] || '00'].join(':') : '';
}

export const REPORT_CLASSES = {
  sr: (c) => c.startsWith('1.2.840.10008.5.1.4.1.1.88.'),
  pdf: (c) => c === '1.2.840.10008.5.1.4.1.1.104.1',
};
export const isReportClass = (c) => REPORT_CLASSES.sr(c) || REPORT_CLASSES.pdf(c);
