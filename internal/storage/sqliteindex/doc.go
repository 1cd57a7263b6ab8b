// Package sqliteindex is a storage.Index on SQLite (modernc.org/sqlite,
// pure Go), the default index of the embedded deployment.
//
// # Connections and durability
//
// The database runs in WAL mode. All writes go through one connection,
// owned by the writer goroutine (see Group commit): SQLite serialises
// writers anyway; one connection in Go avoids SQLITE_BUSY between our
// own writers and makes every write transaction a short BEGIN IMMEDIATE.
// Reads use a separate pool of 4 query-only connections, which WAL lets
// run beside the writer; read calls enter it in arrival order (readGate:
// database/sql alone gives a freed connection to a random waiter, which
// more than doubled the p99 of 16 concurrent searches).
//
// synchronous=FULL, not NORMAL: in WAL mode NORMAL survives an
// application crash but may lose the last transactions on power loss or
// an OS crash. The index row is the commit point of an ingest: once
// PutInstance returns, the client is told the instance is stored, and an
// index row lost after that would turn its blob into an orphan that the
// sweep deletes. FULL costs one fsync of the WAL per write transaction,
// the same order as the blob's own fsync; group commit shares it among
// the writes of a batch. A DSN given as "file:...?..."
// may override it with _pragma=synchronous(NORMAL) where that trade-off
// is acceptable (tests, benchmarks).
//
// # Group commit
//
// Writes (PutInstance, Delete, PutCachedMetadata) are not run by their
// callers: each is handed to one writer goroutine (writer.go), which
// takes every request queued at that moment (at most 256; it never
// waits for more, so an idle index adds no latency), runs each in its
// own SAVEPOINT of one BEGIN IMMEDIATE transaction, commits once and
// then answers them all. Under load, one WAL fsync covers a whole batch.
//
// Isolation between the requests of a batch: a request's logical
// failure (ErrExists, ErrConflict, ErrNotFound, decided by our code after
// its statements ran) is rolled back to its savepoint and reported to it
// alone; the others commit. Any other failure inside a request (an SQL
// error, after which SQLite may have rolled back the whole transaction)
// rolls the whole transaction back: that request gets its error, and
// every other request of the batch runs again, each in a transaction of
// its own. A failed BEGIN or COMMIT fails all the requests it held,
// none of which then wrote anything. Later requests of a batch see the
// writes of earlier ones, as they would had they run one after the
// other: two concurrent puts of the same instance yield one stored and
// one Duplicate, as before.
//
// Cancellation: a request whose ctx ends while it waits for the writer
// is dropped (ctx's error, nothing written); once the writer took it, it
// runs and its outcome is reported whatever ctx does.
//
// Crash safety. A caller learns its request's outcome only after the
// COMMIT of the transaction that holds it returned, and with
// synchronous=FULL that COMMIT returns only after the WAL (the commit
// record included) is fsynced. So:
//   - "PutInstance returned nil" still implies "the row survives a
//     crash or power loss", as with one transaction per call;
//   - a crash before or during the COMMIT loses the whole batch
//     atomically (SQLite's commit record), and no caller in it was told
//     its instance is stored. The blobs of those instances are already
//     durable (the blob is committed before the row; see
//     storage.Archive), so they become orphans, which Archive.Sweep
//     removes: never a row without its blob;
//   - a batch holds many instances, but it is atomic, so recovery never
//     sees part of one. Grouping changes only which instances a crash
//     loses (all the unanswered ones in flight, up to one batch),
//     never what a caller was told.
//
// # Schema and policies
//
// Migrations are embedded (migrations/*.sql, and the Go migration
// 00005 in namewords.go) and applied with goose on Open. Study and series attributes: the first instance to create the
// row wins; later instances do not change them (a study's attributes do
// not flip with the arrival order of its instances' corrections; a
// replace rewrites the instance row only). NumberOfStudyRelatedSeries/
// Instances, NumberOfSeriesRelatedInstances, ModalitiesInStudy and
// SOPClassesInStudy are columns of the study and series rows
// (migrations/00003_counts.sql), kept by every put (incremented; the
// lists recomputed only for a new series or a SOP class new to the
// study), replace and delete (recomputed from the rows) in the same
// transaction, so a study search reads them instead of counting per
// result. Searches read the representative metadata document only when
// storage.Query.OmitMetadata is false. Frame tables use storage.EncodeFrames; metadata and
// cached documents are stored zstd-compressed.
//
// # QIDO matching
//
// storage.ParseConds defines the semantics; this package translates them:
// single values compare exactly (case-sensitive; person names compare
// their upper-cased _key columns), wildcards use GLOB (case-sensitive,
// so `*` and `?` keep DICOM meaning and only `[` needs escaping), date
// and time ranges compare strings, the upper bound as col < PrefixEnd(hi)
// and a wildcard's literal start ("SMI*") also as a range
// (storage.PrefixEnd), so that an index serves them in a prepared
// statement too (StudyDate and StudyTime in one query
// are matched independently, not as one combined date-time range). Fuzzy
// person name matching, the same as pgindex's (storage/phonetic.go says
// why): every query word must start some component of the name (family,
// given, middle... split on ^, =, spaces and commas: storage.NameWords),
// case-insensitively, or have the same storage.PhoneticKey as a whole
// component ("smyth" finds SMITH, "mayer" MEIER; "john" not JON). For
// PatientName the components are rows of study_name_words (migrations
// 00005 and 00006, namewords.go: one row per study and word with the
// word's phonetic key and the study's sort key, written with the study
// row, deleted with it), so a word is the index range word >= w AND
// word < PrefixEnd(w) UNION ALL the range phon = key, both covering; a
// study search takes its page keys from one word's rows (the longest
// word), the other words and keys filtering them. ReferringPhysicianName
// is matched with GLOB on the name key, or its key in
// referring_physician_phon.
// Limit: 1000 when 0, at most 10000.
//
// # Prepared statements
//
// modernc.org/sqlite parses and plans a statement on every unprepared
// query. The write statements of a put are prepared once on the write
// connection; read statements (lookups, and each QIDO form, whose values
// are arguments) are prepared once on the read pool and kept (query.go,
// at most 256), each pool connection preparing its own copy on first
// use. LocateInstance(s) (storage.InstanceLocator) read instance rows
// without the metadata document for the retrieve paths.
package sqliteindex
