-- +goose Up
-- Studies, series and instances of the archive. Attribute columns hold
-- the index attributes as UTF-8 text ('' when absent, never NULL, so
-- matching needs no NULL cases). *_key columns hold person names upper-
-- cased (Unicode) for case-insensitive PN matching.
CREATE TABLE studies (
    study_pk                  INTEGER PRIMARY KEY,
    study_uid                 TEXT    NOT NULL UNIQUE,
    patient_name              TEXT    NOT NULL DEFAULT '',
    patient_name_key          TEXT    NOT NULL DEFAULT '',
    patient_id                TEXT    NOT NULL DEFAULT '',
    issuer_of_patient_id      TEXT    NOT NULL DEFAULT '',
    patient_birth_date        TEXT    NOT NULL DEFAULT '',
    patient_sex               TEXT    NOT NULL DEFAULT '',
    study_date                TEXT    NOT NULL DEFAULT '',
    study_time                TEXT    NOT NULL DEFAULT '',
    accession_number          TEXT    NOT NULL DEFAULT '',
    study_id                  TEXT    NOT NULL DEFAULT '',
    referring_physician_name  TEXT    NOT NULL DEFAULT '',
    referring_physician_key   TEXT    NOT NULL DEFAULT '',
    study_description         TEXT    NOT NULL DEFAULT '',
    specific_character_set    TEXT    NOT NULL DEFAULT '',
    timezone_offset_from_utc  TEXT    NOT NULL DEFAULT '',
    -- Changes with every put, replace or delete of an instance of the study.
    version                   INTEGER NOT NULL,
    created                   INTEGER NOT NULL -- Unix nanoseconds
);
CREATE INDEX studies_patient_name_key ON studies (patient_name_key);
CREATE INDEX studies_patient_id ON studies (patient_id);
CREATE INDEX studies_study_date ON studies (study_date DESC, study_time DESC, study_pk);
CREATE INDEX studies_accession_number ON studies (accession_number);
CREATE INDEX studies_referring_physician_key ON studies (referring_physician_key);
CREATE INDEX studies_patient_birth_date ON studies (patient_birth_date);
CREATE INDEX studies_study_id ON studies (study_id);

CREATE TABLE series (
    series_pk                          INTEGER PRIMARY KEY,
    study_pk                           INTEGER NOT NULL REFERENCES studies (study_pk) ON DELETE CASCADE,
    series_uid                         TEXT    NOT NULL UNIQUE,
    modality                           TEXT    NOT NULL DEFAULT '',
    series_number                      TEXT    NOT NULL DEFAULT '',
    series_description                 TEXT    NOT NULL DEFAULT '',
    series_date                        TEXT    NOT NULL DEFAULT '',
    series_time                        TEXT    NOT NULL DEFAULT '',
    body_part_examined                 TEXT    NOT NULL DEFAULT '',
    performed_procedure_step_start_date TEXT   NOT NULL DEFAULT '',
    performed_procedure_step_start_time TEXT   NOT NULL DEFAULT '',
    scheduled_procedure_step_id        TEXT    NOT NULL DEFAULT '',
    requested_procedure_id             TEXT    NOT NULL DEFAULT '',
    institution_name                   TEXT    NOT NULL DEFAULT '',
    station_name                       TEXT    NOT NULL DEFAULT '',
    manufacturer                       TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX series_study_pk ON series (study_pk);
CREATE INDEX series_modality ON series (modality, study_pk);

CREATE TABLE instances (
    instance_pk          INTEGER PRIMARY KEY,
    series_pk            INTEGER NOT NULL REFERENCES series (series_pk) ON DELETE CASCADE,
    study_pk             INTEGER NOT NULL REFERENCES studies (study_pk) ON DELETE CASCADE,
    sop_instance_uid     TEXT    NOT NULL UNIQUE,
    sop_class_uid        TEXT    NOT NULL DEFAULT '',
    transfer_syntax_uid  TEXT    NOT NULL DEFAULT '',
    blob_key             TEXT    NOT NULL,
    size                 INTEGER NOT NULL,
    sha256               TEXT    NOT NULL,
    created              INTEGER NOT NULL, -- Unix nanoseconds
    frames               BLOB,             -- storage.EncodeFrames
    encapsulated         INTEGER NOT NULL DEFAULT 0,
    deflated             INTEGER NOT NULL DEFAULT 0,
    big_endian           INTEGER NOT NULL DEFAULT 0,
    data_set_offset      INTEGER NOT NULL DEFAULT 0,
    instance_number      TEXT    NOT NULL DEFAULT '',
    rows                 INTEGER NOT NULL DEFAULT 0,
    columns              INTEGER NOT NULL DEFAULT 0,
    bits_allocated       INTEGER NOT NULL DEFAULT 0,
    number_of_frames     INTEGER NOT NULL DEFAULT 0,
    content_date         TEXT    NOT NULL DEFAULT '',
    content_time         TEXT    NOT NULL DEFAULT '',
    acquisition_date     TEXT    NOT NULL DEFAULT '',
    metadata             BLOB            -- DICOM JSON, zstd-compressed
);
CREATE INDEX instances_series_pk ON instances (series_pk);
CREATE INDEX instances_study_pk ON instances (study_pk, sop_class_uid);
CREATE INDEX instances_blob_key ON instances (blob_key);

-- Precomputed metadata documents (zstd-compressed), valid while version
-- equals studies.version.
CREATE TABLE metadata_cache (
    study_uid TEXT    NOT NULL,
    key       TEXT    NOT NULL,
    version   INTEGER NOT NULL,
    doc       BLOB    NOT NULL,
    PRIMARY KEY (study_uid, key)
) WITHOUT ROWID;

-- +goose Down
DROP TABLE metadata_cache;
DROP TABLE instances;
DROP TABLE series;
DROP TABLE studies;
