package storage

// The SQL backends (sqliteindex, pgindex) share one schema shape: these
// column lists, in the order of the attribute structs, and the scan
// destinations that go with them, are written once here.

// StudyAttrColumns are the study row's attribute columns (table alias
// st), in the order of StudyAttrs and StudyAttrDest.
const StudyAttrColumns = `st.patient_name, st.patient_id, st.issuer_of_patient_id, st.patient_birth_date,
	st.patient_sex, st.study_date, st.study_time, st.accession_number, st.study_id,
	st.referring_physician_name, st.study_description, st.specific_character_set,
	st.timezone_offset_from_utc`

// StudyAttrDest are scan destinations for StudyAttrColumns.
func StudyAttrDest(a *StudyAttrs) []any {
	return []any{&a.PatientName, &a.PatientID, &a.IssuerOfPatientID, &a.PatientBirthDate,
		&a.PatientSex, &a.StudyDate, &a.StudyTime, &a.AccessionNumber, &a.StudyID,
		&a.ReferringPhysicianName, &a.StudyDescription, &a.SpecificCharacterSet,
		&a.TimezoneOffsetFromUTC}
}

// SeriesAttrColumns are the series row's attribute columns (table alias
// se), in the order of SeriesAttrs and SeriesAttrDest.
const SeriesAttrColumns = `se.modality, se.series_number, se.series_description, se.series_date,
	se.series_time, se.body_part_examined, se.performed_procedure_step_start_date,
	se.performed_procedure_step_start_time, se.scheduled_procedure_step_id,
	se.requested_procedure_id, se.institution_name, se.station_name, se.manufacturer`

// SeriesAttrDest are scan destinations for SeriesAttrColumns.
func SeriesAttrDest(a *SeriesAttrs) []any {
	return []any{&a.Modality, &a.SeriesNumber, &a.SeriesDescription, &a.SeriesDate,
		&a.SeriesTime, &a.BodyPartExamined, &a.PerformedProcedureStepStartDate,
		&a.PerformedProcedureStepStartTime, &a.ScheduledProcedureStepID,
		&a.RequestedProcedureID, &a.InstitutionName, &a.StationName, &a.Manufacturer}
}

// InstanceHeadColumns are an instance row's columns before its metadata
// and bulk documents (tables st, se, i).
const InstanceHeadColumns = `st.study_uid, se.series_uid, i.sop_instance_uid, i.sop_class_uid,
	i.transfer_syntax_uid, i.blob_key, i.size, i.sha256, i.created, i.frames,
	i.encapsulated, i.deflated, i.big_endian, i.data_set_offset,
	i.instance_number, i.rows, i.columns, i.bits_allocated, i.number_of_frames,
	i.content_date, i.content_time, i.acquisition_date, `

// ListInstancesSQL is the statement of Index.ListInstances, with
// placeholders ph1 (the UID to start after) and ph2 (the limit): a range
// of the unique SOP Instance UID index read in its order and cut at the
// limit, the study and series UIDs looked up per row by primary key
// (scalar subqueries, so that no plan joins whole tables for a page).
func ListInstancesSQL(ph1, ph2 string) string {
	return `SELECT (SELECT st.study_uid FROM studies st WHERE st.study_pk = i.study_pk),
	(SELECT se.series_uid FROM series se WHERE se.series_pk = i.series_pk),
	i.sop_instance_uid, i.sop_class_uid, i.transfer_syntax_uid, i.blob_key, i.size, i.sha256, i.created
	FROM instances i WHERE i.sop_instance_uid > ` + ph1 + ` ORDER BY i.sop_instance_uid LIMIT ` + ph2
}

// ListInstancesDest are scan destinations for ListInstancesSQL; created
// receives the Unix nanoseconds of Instance.Created.
func ListInstancesDest(inst *Instance, created *int64) []any {
	return []any{&inst.StudyInstanceUID, &inst.SeriesInstanceUID, &inst.SOPInstanceUID, &inst.SOPClassUID,
		&inst.TransferSyntaxUID, &inst.BlobKey, &inst.Size, &inst.SHA256, created}
}
