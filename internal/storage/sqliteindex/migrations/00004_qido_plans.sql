-- +goose Up
-- Bounded work per study search at scale (docs/benchmarks.md, "QIDO at
-- scale"). A study search selects the page's study_pk from an index
-- alone (search.go: the keys are cut first, then joined to the rows), so:
--   studies_patient_name_key_date  PatientName exact/prefix/wildcard: the
--       name range read from the index with the sort key, sorted there,
--       no table row read for a study that is not returned
--   studies_study_date             the date walk also carries the name
--       key and ModalitiesInStudy, so "newest first, filtered" (fuzzy
--       PatientName, ModalitiesInStudy) reads the index alone
DROP INDEX studies_patient_name_key;
CREATE INDEX studies_patient_name_key_date ON studies (patient_name_key, study_date DESC, study_time DESC, study_pk);
DROP INDEX studies_study_date;
CREATE INDEX studies_study_date ON studies (study_date DESC, study_time DESC, study_pk, patient_name_key, modalities);

-- +goose Down
DROP INDEX studies_study_date;
CREATE INDEX studies_study_date ON studies (study_date DESC, study_time DESC, study_pk);
DROP INDEX studies_patient_name_key_date;
CREATE INDEX studies_patient_name_key ON studies (patient_name_key);
