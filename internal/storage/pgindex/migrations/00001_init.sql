-- +goose Up
-- Studies, series and instances of the archive, as in sqliteindex. Text
-- columns hold the index attributes as UTF-8 ('' when absent, never NULL)
-- and use the "C" collation: byte order, so date/time ranges compare as
-- strings and plain btree indexes serve LIKE 'prefix%' whatever the
-- database's default locale.
--
-- Person names (PatientName, ReferringPhysicianName) have three derived
-- columns, all computed in Go (storage.NameKey and pgindex/names.go):
--   *_key    the name upper-cased (Unicode): exact, wildcard matching
--   *_words  ' ' + the upper-cased components (split on ^ = space ,)
--            joined by ' ': fuzzy component-prefix matching, GIN trigram
--            index (pg_trgm) for LIKE '% WORD%'
--   *_phon   the phonetic keys of the components (pgindex.PhoneticKey):
--            fuzzy near-spelling matching, GIN array index for @>
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE studies (
    study_pk                  BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    study_uid                 TEXT    COLLATE "C" NOT NULL UNIQUE,
    patient_name              TEXT    NOT NULL DEFAULT '',
    patient_name_key          TEXT    COLLATE "C" NOT NULL DEFAULT '',
    patient_name_words        TEXT    COLLATE "C" NOT NULL DEFAULT '',
    patient_name_phon         TEXT[]  NOT NULL DEFAULT '{}',
    patient_id                TEXT    COLLATE "C" NOT NULL DEFAULT '',
    issuer_of_patient_id      TEXT    COLLATE "C" NOT NULL DEFAULT '',
    patient_birth_date        TEXT    COLLATE "C" NOT NULL DEFAULT '',
    patient_sex               TEXT    COLLATE "C" NOT NULL DEFAULT '',
    study_date                TEXT    COLLATE "C" NOT NULL DEFAULT '',
    study_time                TEXT    COLLATE "C" NOT NULL DEFAULT '',
    accession_number          TEXT    COLLATE "C" NOT NULL DEFAULT '',
    study_id                  TEXT    COLLATE "C" NOT NULL DEFAULT '',
    referring_physician_name  TEXT    NOT NULL DEFAULT '',
    referring_physician_key   TEXT    COLLATE "C" NOT NULL DEFAULT '',
    referring_physician_words TEXT    COLLATE "C" NOT NULL DEFAULT '',
    referring_physician_phon  TEXT[]  NOT NULL DEFAULT '{}',
    study_description         TEXT    COLLATE "C" NOT NULL DEFAULT '',
    specific_character_set    TEXT    NOT NULL DEFAULT '',
    timezone_offset_from_utc  TEXT    NOT NULL DEFAULT '',
    -- Changes with every put, replace or delete of an instance of the study.
    version                   BIGINT  NOT NULL,
    created                   BIGINT  NOT NULL -- Unix nanoseconds
);
CREATE INDEX studies_patient_name_key ON studies (patient_name_key);
CREATE INDEX studies_patient_name_words ON studies USING gin (patient_name_words gin_trgm_ops);
CREATE INDEX studies_patient_name_phon ON studies USING gin (patient_name_phon);
CREATE INDEX studies_patient_id ON studies (patient_id);
CREATE INDEX studies_study_date ON studies (study_date DESC, study_time DESC, study_pk);
CREATE INDEX studies_accession_number ON studies (accession_number);
CREATE INDEX studies_referring_physician_key ON studies (referring_physician_key);
CREATE INDEX studies_referring_physician_words ON studies USING gin (referring_physician_words gin_trgm_ops);
CREATE INDEX studies_referring_physician_phon ON studies USING gin (referring_physician_phon);
CREATE INDEX studies_patient_birth_date ON studies (patient_birth_date);
CREATE INDEX studies_study_id ON studies (study_id);

CREATE TABLE series (
    series_pk                           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    study_pk                            BIGINT NOT NULL REFERENCES studies (study_pk) ON DELETE CASCADE,
    series_uid                          TEXT   COLLATE "C" NOT NULL UNIQUE,
    modality                            TEXT   COLLATE "C" NOT NULL DEFAULT '',
    series_number                       TEXT   COLLATE "C" NOT NULL DEFAULT '',
    series_number_int                   BIGINT, -- NULL when series_number is empty
    series_description                  TEXT   COLLATE "C" NOT NULL DEFAULT '',
    series_date                         TEXT   COLLATE "C" NOT NULL DEFAULT '',
    series_time                         TEXT   COLLATE "C" NOT NULL DEFAULT '',
    body_part_examined                  TEXT   COLLATE "C" NOT NULL DEFAULT '',
    performed_procedure_step_start_date TEXT   COLLATE "C" NOT NULL DEFAULT '',
    performed_procedure_step_start_time TEXT   COLLATE "C" NOT NULL DEFAULT '',
    scheduled_procedure_step_id         TEXT   NOT NULL DEFAULT '',
    requested_procedure_id              TEXT   NOT NULL DEFAULT '',
    institution_name                    TEXT   NOT NULL DEFAULT '',
    station_name                        TEXT   NOT NULL DEFAULT '',
    manufacturer                        TEXT   NOT NULL DEFAULT ''
);
CREATE INDEX series_study_pk ON series (study_pk, series_number_int);
CREATE INDEX series_modality ON series (modality, study_pk);

CREATE TABLE instances (
    instance_pk          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    series_pk            BIGINT  NOT NULL REFERENCES series (series_pk) ON DELETE CASCADE,
    study_pk             BIGINT  NOT NULL REFERENCES studies (study_pk) ON DELETE CASCADE,
    sop_instance_uid     TEXT    COLLATE "C" NOT NULL UNIQUE,
    sop_class_uid        TEXT    COLLATE "C" NOT NULL DEFAULT '',
    transfer_syntax_uid  TEXT    NOT NULL DEFAULT '',
    blob_key             TEXT    COLLATE "C" NOT NULL,
    size                 BIGINT  NOT NULL,
    sha256               TEXT    NOT NULL,
    created              BIGINT  NOT NULL, -- Unix nanoseconds
    frames               BYTEA,            -- storage.EncodeFrames
    encapsulated         BOOLEAN NOT NULL DEFAULT false,
    deflated             BOOLEAN NOT NULL DEFAULT false,
    big_endian           BOOLEAN NOT NULL DEFAULT false,
    data_set_offset      BIGINT  NOT NULL DEFAULT 0,
    instance_number      TEXT    COLLATE "C" NOT NULL DEFAULT '',
    instance_number_int  BIGINT, -- NULL when instance_number is empty
    rows                 INTEGER NOT NULL DEFAULT 0,
    columns              INTEGER NOT NULL DEFAULT 0,
    bits_allocated       INTEGER NOT NULL DEFAULT 0,
    number_of_frames     INTEGER NOT NULL DEFAULT 0,
    content_date         TEXT    COLLATE "C" NOT NULL DEFAULT '',
    content_time         TEXT    COLLATE "C" NOT NULL DEFAULT '',
    acquisition_date     TEXT    NOT NULL DEFAULT '',
    metadata             BYTEA            -- DICOM JSON, zstd-compressed
);
-- (…, instance_pk): the representative instance of a study or series is
-- its first one (ORDER BY instance_pk LIMIT 1), counts and SOP classes
-- come from the index alone.
CREATE INDEX instances_series_pk ON instances (series_pk, instance_pk);
CREATE INDEX instances_study_pk ON instances (study_pk, instance_pk) INCLUDE (sop_class_uid);
CREATE INDEX instances_sop_class_uid ON instances (sop_class_uid);
CREATE INDEX instances_blob_key ON instances (blob_key);

-- Precomputed metadata documents (zstd-compressed), valid while version
-- equals studies.version.
CREATE TABLE metadata_cache (
    study_uid TEXT   COLLATE "C" NOT NULL,
    key       TEXT   COLLATE "C" NOT NULL,
    version   BIGINT NOT NULL,
    doc       BYTEA  NOT NULL,
    PRIMARY KEY (study_uid, key)
);

-- +goose Down
DROP TABLE metadata_cache;
DROP TABLE instances;
DROP TABLE series;
DROP TABLE studies;
