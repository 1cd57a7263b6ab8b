-- +goose Up
-- The computed QIDO attributes, kept on the study and series rows by
-- every put, replace and delete in the same transaction (pgindex.go;
-- every writer of a study holds its row lock), so that a study search
-- reads them from the row instead of counting per result:
--   studies.num_series, num_instances  NumberOfStudyRelatedSeries/Instances
--   studies.modalities                 ModalitiesInStudy: the distinct
--                                      non-empty series modalities, sorted
--   studies.sop_classes                SOPClassesInStudy, likewise
--   series.num_instances               NumberOfSeriesRelatedInstances
ALTER TABLE studies
    ADD COLUMN num_series    INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN num_instances INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN modalities    TEXT[] COLLATE "C" NOT NULL DEFAULT '{}',
    ADD COLUMN sop_classes   TEXT[] COLLATE "C" NOT NULL DEFAULT '{}';
ALTER TABLE series ADD COLUMN num_instances INTEGER NOT NULL DEFAULT 0;

-- Backfill the rows indexed before.
UPDATE series se SET num_instances = c.n
    FROM (SELECT series_pk, count(*) AS n FROM instances GROUP BY series_pk) c
    WHERE c.series_pk = se.series_pk;
UPDATE studies st SET
    num_series = (SELECT count(*) FROM series c WHERE c.study_pk = st.study_pk),
    num_instances = (SELECT count(*) FROM instances c WHERE c.study_pk = st.study_pk),
    modalities = ARRAY(SELECT DISTINCT c.modality FROM series c
        WHERE c.study_pk = st.study_pk AND c.modality <> '' ORDER BY 1),
    sop_classes = ARRAY(SELECT DISTINCT c.sop_class_uid FROM instances c
        WHERE c.study_pk = st.study_pk AND c.sop_class_uid <> '' ORDER BY 1);

-- +goose Down
ALTER TABLE series DROP COLUMN num_instances;
ALTER TABLE studies DROP COLUMN num_series, DROP COLUMN num_instances,
    DROP COLUMN modalities, DROP COLUMN sop_classes;
