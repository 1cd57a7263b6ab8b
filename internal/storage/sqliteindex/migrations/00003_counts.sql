-- +goose Up
-- The computed QIDO attributes, kept on the study and series rows by
-- every put, replace and delete in the same transaction (sqliteindex.go),
-- so that a study search reads them from the row instead of counting the
-- study's series and instances per result:
--   studies.num_series, num_instances  NumberOfStudyRelatedSeries/Instances
--   studies.modalities                 ModalitiesInStudy, distinct non-empty
--                                      series modalities joined by ','
--   studies.sop_classes                SOPClassesInStudy, likewise
--   series.num_instances               NumberOfSeriesRelatedInstances
ALTER TABLE studies ADD COLUMN num_series INTEGER NOT NULL DEFAULT 0;
ALTER TABLE studies ADD COLUMN num_instances INTEGER NOT NULL DEFAULT 0;
ALTER TABLE studies ADD COLUMN modalities TEXT NOT NULL DEFAULT '';
ALTER TABLE studies ADD COLUMN sop_classes TEXT NOT NULL DEFAULT '';
ALTER TABLE series ADD COLUMN num_instances INTEGER NOT NULL DEFAULT 0;

-- Backfill the rows indexed before.
UPDATE series SET num_instances = (SELECT count(*) FROM instances i WHERE i.series_pk = series.series_pk);
UPDATE studies SET
    num_series = (SELECT count(*) FROM series c WHERE c.study_pk = studies.study_pk),
    num_instances = (SELECT count(*) FROM instances c WHERE c.study_pk = studies.study_pk),
    modalities = coalesce((SELECT group_concat(DISTINCT c.modality) FROM series c
        WHERE c.study_pk = studies.study_pk AND c.modality <> ''), ''),
    sop_classes = coalesce((SELECT group_concat(DISTINCT c.sop_class_uid) FROM instances c
        WHERE c.study_pk = studies.study_pk AND c.sop_class_uid <> ''), '');

-- +goose Down
ALTER TABLE series DROP COLUMN num_instances;
ALTER TABLE studies DROP COLUMN sop_classes;
ALTER TABLE studies DROP COLUMN modalities;
ALTER TABLE studies DROP COLUMN num_instances;
ALTER TABLE studies DROP COLUMN num_series;
