package dicomweb

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/cloudpacs/pacs/internal/dcm"
	"github.com/cloudpacs/pacs/internal/storage"
)

// Computed and response-only tags of the QIDO-RS result tables
// (PS3.18 Table 10.6.3-3/-4/-5).
const (
	tagNumberOfStudyRelatedSeries     dcm.Tag = 0x00201206
	tagNumberOfStudyRelatedInstances  dcm.Tag = 0x00201208
	tagNumberOfSeriesRelatedInstances dcm.Tag = 0x00201209
	tagAcquisitionTime                dcm.Tag = 0x00080032
	tagAcquisitionDateTime            dcm.Tag = 0x0008002A
	tagPixelData                      dcm.Tag = 0x7FE00010
)

func (h *Handler) searchStudies(c echo.Context) error {
	return h.search(c, storage.LevelStudy)
}
func (h *Handler) searchSeries(c echo.Context) error {
	return h.search(c, storage.LevelSeries)
}
func (h *Handler) searchInstances(c echo.Context) error {
	return h.search(c, storage.LevelInstance)
}

// search is QIDO-RS at one level; the path may scope it to a study or a
// series. The answer is a DICOM JSON array, empty (200) when nothing
// matches; a study or series in the path that does not exist is 404.
func (h *Handler) search(c echo.Context, level storage.Level) error {
	study, series, _, err := pathUIDs(c)
	if err != nil {
		return err
	}
	if !acceptsJSON(acceptRanges(c)) {
		return notAcceptablef("QIDO-RS answers application/dicom+json (or application/json)")
	}
	qq, err := parseQIDOQuery(c.QueryParams(), level)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	results, err := h.index.Search(ctx, storage.Query{
		Level:             level,
		StudyInstanceUID:  study,
		SeriesInstanceUID: series,
		Matches:           qq.Matches,
		FuzzyMatching:     qq.Fuzzy,
		Limit:             qq.Limit,
		Offset:            qq.Offset,
		OmitMetadata:      !qq.needsMetadata(level, study, series),
	})
	if err != nil {
		if errors.Is(err, storage.ErrUnsupportedMatch) || errors.Is(err, storage.ErrBadQuery) {
			return fmt.Errorf("%w: %w", errBadRequest, err)
		}
		return err
	}
	if len(results) == 0 && study != "" {
		if err := h.scopeExists(c, study, series); err != nil {
			return err
		}
	}
	for _, w := range qq.warnings() {
		c.Response().Header().Add("Warning", w)
	}
	w := qidoWriter{base: h.baseURL(c), q: &qq, level: level, study: study, series: series}
	buf := make([]byte, 0, 1024*len(results)+2)
	buf = append(buf, '[')
	for i := range results {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = w.appendResult(buf, &results[i])
	}
	buf = append(buf, ']')
	return c.Blob(http.StatusOK, mtDICOMJSON, buf)
}

// scopeExists checks the study (and series) of the path.
func (h *Handler) scopeExists(c echo.Context, study, series string) error {
	ctx := c.Request().Context()
	if series == "" {
		_, err := h.index.StudyVersion(ctx, study)
		return err
	}
	r, err := h.index.Search(ctx, storage.Query{Level: storage.LevelSeries, StudyInstanceUID: study, SeriesInstanceUID: series, Limit: 1})
	if err != nil {
		return err
	}
	if len(r) == 0 {
		return notFoundf("series not found")
	}
	return nil
}

type qidoWriter struct {
	base          string
	q             *qidoQuery
	level         storage.Level
	study, series string // path scope
	ds            dataset
}

func (w *qidoWriter) appendResult(dst []byte, r *storage.Result) []byte {
	ds := &w.ds
	ds.reset()
	var rep []byte
	switch w.level {
	case storage.LevelStudy:
		w.studyAttrs(r, true)
		rep = r.Study.Representative
	case storage.LevelSeries:
		w.seriesAttrs(r, true)
		w.studyAttrs(r, w.study == "")
		rep = r.Series.Representative
	case storage.LevelInstance:
		in := &r.Instance
		ds.str(storage.TagStudyInstanceUID, "UI", in.StudyInstanceUID)
		ds.str(storage.TagSeriesInstanceUID, "UI", in.SeriesInstanceUID)
		ds.str(storage.TagSOPClassUID, "UI", in.SOPClassUID)
		ds.str(storage.TagSOPInstanceUID, "UI", in.SOPInstanceUID)
		ds.str(tagInstanceAvailability, "CS", "ONLINE")
		ds.str(tagRetrieveURL, "UR", instanceURL(w.base, in.StudyInstanceUID, in.SeriesInstanceUID, in.SOPInstanceUID))
		ds.str(storage.TagInstanceNumber, "IS", in.Instance.InstanceNumber)
		if in.Instance.Rows > 0 {
			ds.num(storage.TagRows, "US", in.Instance.Rows)
			ds.num(storage.TagColumns, "US", in.Instance.Columns)
			ds.num(storage.TagBitsAllocated, "US", in.Instance.BitsAllocated)
			ds.num(storage.TagNumberOfFrames, "IS", max(in.Instance.NumberOfFrames, 1))
		}
		if in.Study.SpecificCharacterSet != "" {
			ds.str(storage.TagSpecificCharacterSet, "CS", "ISO_IR 192")
		}
		if in.Study.TimezoneOffsetFromUTC != "" {
			ds.str(storage.TagTimezoneOffsetFromUTC, "SH", in.Study.TimezoneOffsetFromUTC)
		}
		if w.series == "" {
			w.seriesAttrs(r, false)
		}
		if w.study == "" {
			w.studyAttrs(r, false)
		}
		rep = in.Metadata
	}
	w.includeFields(rep)
	return ds.appendTo(dst)
}

// studyAttrs adds the study-level attributes of Table 10.6.3-3; own is
// false when they accompany a series or instance result.
func (w *qidoWriter) studyAttrs(r *storage.Result, own bool) {
	ds := &w.ds
	s := &r.Study
	a := &s.Attrs
	uid := s.StudyInstanceUID
	if uid == "" {
		uid = r.Instance.StudyInstanceUID
		a = &r.Instance.Study
	}
	ds.str(storage.TagStudyInstanceUID, "UI", uid)
	if !own && w.study != "" {
		return
	}
	if a.SpecificCharacterSet != "" {
		ds.str(storage.TagSpecificCharacterSet, "CS", "ISO_IR 192")
	}
	ds.str(storage.TagStudyDate, "DA", a.StudyDate)
	ds.str(storage.TagStudyTime, "TM", a.StudyTime)
	ds.str(storage.TagAccessionNumber, "SH", a.AccessionNumber)
	ds.str(storage.TagReferringPhysicianName, "PN", a.ReferringPhysicianName)
	if a.TimezoneOffsetFromUTC != "" {
		ds.str(storage.TagTimezoneOffsetFromUTC, "SH", a.TimezoneOffsetFromUTC)
	}
	ds.str(storage.TagStudyDescription, "LO", a.StudyDescription)
	ds.str(storage.TagPatientName, "PN", a.PatientName)
	ds.str(storage.TagPatientID, "LO", a.PatientID)
	if a.IssuerOfPatientID != "" {
		ds.str(storage.TagIssuerOfPatientID, "LO", a.IssuerOfPatientID)
	}
	ds.str(storage.TagPatientBirthDate, "DA", a.PatientBirthDate)
	ds.str(storage.TagPatientSex, "CS", a.PatientSex)
	ds.str(storage.TagStudyID, "SH", a.StudyID)
	if own {
		ds.str(tagInstanceAvailability, "CS", "ONLINE")
		ds.str(tagRetrieveURL, "UR", w.base+"/studies/"+uid)
	}
	if own || s.NumberOfInstances > 0 {
		ds.strs(storage.TagModalitiesInStudy, "CS", s.ModalitiesInStudy)
		ds.strs(storage.TagSOPClassesInStudy, "UI", s.SOPClassesInStudy)
		ds.num(tagNumberOfStudyRelatedSeries, "IS", s.NumberOfSeries)
		ds.num(tagNumberOfStudyRelatedInstances, "IS", s.NumberOfInstances)
	}
}

// seriesAttrs adds the series-level attributes of Table 10.6.3-4.
func (w *qidoWriter) seriesAttrs(r *storage.Result, own bool) {
	ds := &w.ds
	s := &r.Series
	a := &s.Attrs
	uid := s.SeriesInstanceUID
	if uid == "" {
		uid = r.Instance.SeriesInstanceUID
		a = &r.Instance.Series
	}
	study := r.Study.StudyInstanceUID
	if study == "" {
		study = r.Instance.StudyInstanceUID
	}
	ds.str(storage.TagSeriesInstanceUID, "UI", uid)
	ds.str(storage.TagModality, "CS", a.Modality)
	ds.str(storage.TagSeriesDescription, "LO", a.SeriesDescription)
	ds.str(storage.TagSeriesNumber, "IS", a.SeriesNumber)
	ds.str(storage.TagPerformedProcedureStepStartDate, "DA", a.PerformedProcedureStepStartDate)
	ds.str(storage.TagPerformedProcedureStepStartTime, "TM", a.PerformedProcedureStepStartTime)
	for _, o := range []struct {
		t      dcm.Tag
		vr, va string
	}{
		{storage.TagSeriesDate, "DA", a.SeriesDate},
		{storage.TagSeriesTime, "TM", a.SeriesTime},
		{storage.TagBodyPartExamined, "CS", a.BodyPartExamined},
		{storage.TagInstitutionName, "LO", a.InstitutionName},
		{storage.TagStationName, "SH", a.StationName},
		{storage.TagManufacturer, "LO", a.Manufacturer},
	} {
		if o.va != "" {
			ds.str(o.t, o.vr, o.va)
		}
	}
	if a.ScheduledProcedureStepID != "" || a.RequestedProcedureID != "" {
		var item dataset
		item.str(storage.TagScheduledProcedureStepID, "SH", a.ScheduledProcedureStepID)
		item.str(storage.TagRequestedProcedureID, "SH", a.RequestedProcedureID)
		ds.raw(storage.TagRequestAttributesSequence, append(item.appendTo([]byte(`{"vr":"SQ","Value":[`)), "]}"...))
	}
	if own {
		ds.str(tagInstanceAvailability, "CS", "ONLINE")
		ds.str(tagRetrieveURL, "UR", w.base+"/studies/"+study+"/series/"+uid)
	}
	if own || s.NumberOfInstances > 0 {
		ds.num(tagNumberOfSeriesRelatedInstances, "IS", s.NumberOfInstances)
	}
}

// Attributes every result carries from index columns, whatever their
// values (qidoWriter): an includefield of one of them needs no
// representative metadata document.
var (
	studyColumnTags = []dcm.Tag{storage.TagStudyInstanceUID, storage.TagStudyDate, storage.TagStudyTime,
		storage.TagAccessionNumber, storage.TagReferringPhysicianName, storage.TagStudyDescription,
		storage.TagPatientName, storage.TagPatientID, storage.TagPatientBirthDate, storage.TagPatientSex,
		storage.TagStudyID}
	studyOwnTags = []dcm.Tag{tagInstanceAvailability, tagRetrieveURL, storage.TagModalitiesInStudy,
		storage.TagSOPClassesInStudy, tagNumberOfStudyRelatedSeries, tagNumberOfStudyRelatedInstances}
	seriesColumnTags = []dcm.Tag{storage.TagSeriesInstanceUID, storage.TagModality, storage.TagSeriesDescription,
		storage.TagSeriesNumber, storage.TagPerformedProcedureStepStartDate, storage.TagPerformedProcedureStepStartTime}
	seriesOwnTags   = []dcm.Tag{tagInstanceAvailability, tagRetrieveURL, tagNumberOfSeriesRelatedInstances}
	instanceOwnTags = []dcm.Tag{storage.TagStudyInstanceUID, storage.TagSeriesInstanceUID, storage.TagSOPClassUID,
		storage.TagSOPInstanceUID, tagInstanceAvailability, tagRetrieveURL, storage.TagInstanceNumber}
)

// needsMetadata reports whether answering q at level (scoped to the
// path's study and series) needs the representative metadata of the
// results: includefield=all, or an included attribute that the index
// columns do not give. Without it the index skips reading and
// decompressing a metadata document per result.
func (q *qidoQuery) needsMetadata(level storage.Level, study, series string) bool {
	if q.IncludeAll {
		return true
	}
	var sets [][]dcm.Tag
	switch level {
	case storage.LevelStudy:
		sets = [][]dcm.Tag{studyColumnTags, studyOwnTags}
	case storage.LevelSeries:
		sets = [][]dcm.Tag{seriesColumnTags, seriesOwnTags}
		if study == "" {
			sets = append(sets, studyColumnTags)
		}
	default:
		sets = [][]dcm.Tag{instanceOwnTags}
		if series == "" {
			sets = append(sets, seriesColumnTags)
		}
		if study == "" {
			sets = append(sets, studyColumnTags)
		}
	}
	for _, t := range q.Include {
		if !slices.ContainsFunc(sets, func(set []dcm.Tag) bool { return slices.Contains(set, t) }) {
			return true
		}
	}
	return false
}

// includeFields adds includefield attributes (and universal-matching
// keys) from the representative instance JSON of the result.
func (w *qidoWriter) includeFields(rep []byte) {
	if len(rep) == 0 || (len(w.q.Include) == 0 && !w.q.IncludeAll) {
		return
	}
	url := ""
	bulkURL := func() string {
		if url == "" {
			url = instanceURL(w.base, firstString(rep, storage.TagStudyInstanceUID),
				firstString(rep, storage.TagSeriesInstanceUID), firstString(rep, storage.TagSOPInstanceUID))
		}
		return url
	}
	add := func(t dcm.Tag, v []byte) {
		if w.ds.has(t) {
			return
		}
		if containsPlaceholder(v) {
			v = appendReplacingPlaceholder(nil, v, bulkURL())
		}
		w.ds.raw(t, v)
	}
	if w.q.IncludeAll {
		eachMember(rep, func(t dcm.Tag, v []byte) bool {
			if includeAllAt(w.level, t) {
				add(t, v)
			}
			return true
		})
	}
	for _, t := range w.q.Include {
		if v := member(rep, t); v != nil {
			add(t, v)
		}
	}
}

func containsPlaceholder(v []byte) bool {
	for _, b := range v {
		if b == storage.BulkPlaceholder[0] {
			return true
		}
	}
	return false
}

// includeAllAt decides which attributes of the representative instance
// includefield=all returns at a level: at the instance level all of them;
// at the series level all but those that differ per instance; at the
// study level the patient (0010,xxxx) and study attributes.
func includeAllAt(level storage.Level, t dcm.Tag) bool {
	switch level {
	case storage.LevelInstance:
		return true
	case storage.LevelStudy:
		if t.Group() == 0x0010 || t.Group() == 0x0032 {
			return true
		}
		switch t {
		case storage.TagStudyDate, storage.TagStudyTime, storage.TagAccessionNumber, storage.TagReferringPhysicianName,
			storage.TagStudyDescription, storage.TagStudyID, storage.TagStudyInstanceUID, storage.TagTimezoneOffsetFromUTC,
			0x00080051, 0x00081032, 0x00081048, 0x00081060, 0x00081080, 0x00080096:
			return true
		}
		return false
	}
	// series
	if t.Group() == 0x0028 || t.Group() >= 0x7FE0 || t.Group() == 0x0002 {
		return false
	}
	switch t {
	case storage.TagSOPInstanceUID, storage.TagSOPClassUID, storage.TagInstanceNumber, storage.TagContentDate,
		storage.TagContentTime, storage.TagAcquisitionDate, tagAcquisitionTime, tagAcquisitionDateTime,
		0x00200032, 0x00201041, 0x00200037, 0x00080008:
		return false
	}
	return true
}

// itoa is strconv.Itoa, named for readability at call sites.
func itoa(n int) string { return strconv.Itoa(n) }
