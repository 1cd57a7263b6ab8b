// Package sqliteindex is a storage.Index on SQLite (modernc.org/sqlite,
// pure Go), the default index of the embedded deployment.
//
// # Connections and durability
//
// The database runs in WAL mode. All writes go through one connection
// (SQLite serialises writers anyway; one connection in Go avoids
// SQLITE_BUSY between our own writers and makes every write transaction
// a short BEGIN IMMEDIATE). Reads use a separate pool of query-only
// connections, which WAL lets run beside the writer.
//
// synchronous=FULL, not NORMAL: in WAL mode NORMAL survives an
// application crash but may lose the last transactions on power loss or
// an OS crash. The index row is the commit point of an ingest: once
// PutInstance returns, the client is told the instance is stored, and an
// index row lost after that would turn its blob into an orphan that the
// sweep deletes. FULL costs one fsync of the WAL per write transaction,
// the same order as the blob's own fsync. A DSN given as "file:...?..."
// may override it with _pragma=synchronous(NORMAL) where that trade-off
// is acceptable (tests, benchmarks).
//
// # Schema and policies
//
// Migrations are embedded (migrations/*.sql) and applied with goose on
// Open. Study and series attributes: the first instance to create the
// row wins; later instances do not change them (a study's attributes do
// not flip with the arrival order of its instances' corrections; a
// replace rewrites the instance row only). Counts, ModalitiesInStudy and
// SOPClassesInStudy are computed at query time from indexed columns, so
// they cannot drift. Frame tables use storage.EncodeFrames; metadata and
// cached documents are stored zstd-compressed.
//
// # QIDO matching
//
// storage.ParseConds defines the semantics; this package translates them:
// single values compare exactly (case-sensitive; person names compare
// their upper-cased _key columns), wildcards use GLOB (case-sensitive,
// so `*` and `?` keep DICOM meaning and only `[` needs escaping), date
// and time ranges compare strings (StudyDate and StudyTime in one query
// are matched independently, not as one combined date-time range). Fuzzy
// person name matching: every query word must start some component of
// the name (family, given, middle... split on ^, = and spaces),
// case-insensitively. Limit: 1000 when 0, at most 10000.
package sqliteindex
