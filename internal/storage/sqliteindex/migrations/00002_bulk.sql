-- +goose Up
-- Where each bulk value lies in the stored object (storage.EncodeBulk),
-- so BulkDataURIs are served by ranged reads. NULL for rows indexed
-- before this column existed: those fall back to re-reading the header.
ALTER TABLE instances ADD COLUMN bulk BLOB;

-- +goose Down
ALTER TABLE instances DROP COLUMN bulk;
