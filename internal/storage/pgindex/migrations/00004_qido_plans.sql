-- +goose Up
-- Bounded work per study search at scale (docs/benchmarks.md, "QIDO at
-- scale"). A study search selects the page's study_pk from an index
-- alone (search.go: the keys are cut first, then joined to the rows), so:
--   studies_patient_name_key_date  PatientName exact/prefix/wildcard: the
--       name range read from the index with the sort key, top-N sort of
--       index tuples, no heap row read for a non-returned study
--   studies_study_date             the date walk also carries the fuzzy
--       name columns and ModalitiesInStudy, so "newest first, filtered"
--       is an index-only scan (fuzzy PatientName, ModalitiesInStudy)
--   studies_modalities             GIN (array containment) for
--       ModalitiesInStudy values too rare for the date walk
DROP INDEX studies_patient_name_key;
CREATE INDEX studies_patient_name_key_date ON studies (patient_name_key, study_date DESC, study_time DESC, study_pk);
DROP INDEX studies_study_date;
CREATE INDEX studies_study_date ON studies (study_date DESC, study_time DESC, study_pk)
    INCLUDE (patient_name_words, patient_name_phon, modalities);
CREATE INDEX studies_modalities ON studies USING gin (modalities);
ANALYZE studies;

-- +goose Down
DROP INDEX studies_modalities;
DROP INDEX studies_study_date;
CREATE INDEX studies_study_date ON studies (study_date DESC, study_time DESC, study_pk);
DROP INDEX studies_patient_name_key_date;
CREATE INDEX studies_patient_name_key ON studies (patient_name_key);
