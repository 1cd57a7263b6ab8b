-- +goose Up
-- Where each bulk value lies in the stored object (storage.EncodeBulk),
-- so BulkDataURIs are served by ranged reads. NULL: not recorded (rows
-- indexed before the column existed); an empty table: no bulk values.
ALTER TABLE instances ADD COLUMN bulk BYTEA;

-- +goose Down
ALTER TABLE instances DROP COLUMN bulk;
