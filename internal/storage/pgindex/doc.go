// Package pgindex is a storage.Index on PostgreSQL (pgx/v5, pgxpool),
// the index of the scale-out deployment: any number of `pacs serve`
// replicas share one database.
//
// # Schema and migrations
//
// Migrations are embedded (migrations/*.sql, and the Go migration 00005
// in namewords.go) and applied with goose
// (postgres dialect) on Open, or alone by Migrate (`pacs migrate`).
// goose's PostgreSQL session locker (an advisory lock) serialises
// replicas that start together. The first migration creates the pg_trgm
// extension (trusted since PostgreSQL 13: the database owner may create
// it; managed services ship it). The tables mirror sqliteindex: studies,
// series, instances, metadata_cache; attributes are UTF-8 text, empty when
// absent, in the "C" collation (byte order: date/time ranges compare as
// strings, plain btree indexes serve prefix LIKE in any database locale).
// IS attributes (SeriesNumber, InstanceNumber) have integer twins for
// matching and ordering. Study and series attributes: the first instance
// to create the row wins, as in sqliteindex. The computed QIDO attributes
// (counts, ModalitiesInStudy, SOPClassesInStudy) are columns of the study
// and series rows (migrations/00003_counts.sql), kept in the transaction
// of every put (incremented under the study row lock the put already
// holds; the lists recomputed only for a new series or a SOP class new to
// the study), replace and delete (recomputed from the rows). Searches
// read the representative metadata document only when
// storage.Query.OmitMetadata is false. pgx's default statement cache
// (QueryExecModeCacheStatement) prepares each statement text once per
// connection, except study searches with a fuzzy ReferringPhysicianName
// or ModalitiesInStudy, planned with their values (QueryExecModeDescribeExec,
// see customPlan in search.go). A study search cuts its page as keys from
// an index first (migrations/00004_qido_plans.sql). Frame tables use storage.EncodeFrames; metadata and
// cached documents are zstd-compressed.
//
// # Concurrency
//
// Correctness across replicas comes from transactions and constraints,
// not from locks in the process. A put upserts the study row first
// (INSERT ... ON CONFLICT (study_uid) DO UPDATE, which also bumps the
// study version): two replicas creating the same study end with one row,
// and the puts and deletes of one study are serialised on that row's lock
// for the length of a short transaction. The series row is upserted the
// same way; an instance row is inserted with ON CONFLICT DO NOTHING, and
// a put that finds the SOP Instance UID taken by a transaction that
// committed meanwhile runs again and answers Duplicate (or ErrExists, or
// replaces). Delete locks the study rows concerned (SELECT ... FOR
// UPDATE) before deleting, so a racing put commits entirely before or
// after it. Lock order is always study, then its rows. Serialization
// failures and deadlocks (SQLSTATE 40001, 40P01) are retried up to 8
// times with a short random back-off.
//
// The study version changes in the transaction of every put, replace and
// delete, and cached metadata is keyed by version: a document cached by
// one replica is never served by another after a change committed.
//
// # QIDO matching
//
// storage.ParseConds defines the semantics; this package translates them
// as sqliteindex does: single values compare exactly (case-sensitive;
// person names compare the upper-cased *_key columns), wildcards become
// LIKE patterns (`*` -> %, `?` -> _, literal %, _ and \ escaped), date
// and time ranges compare strings (the upper bound cut to its length,
// written as `col < succ(bound)` so that an index serves it), a
// wildcard's literal start ("SMI*") is also written as a range
// (col >= 'SMI' AND col < 'SMJ'), which a btree serves in the generic
// plan of a cached prepared statement, where LIKE $n cannot; lists use
// = ANY. Ordering: study date and time descending, then insertion order;
// series and instances by number (empty last), then insertion order.
// Limit: 1000 when 0, at most 10000.
//
// Fuzzy person-name matching (fuzzymatching=true) is the same as
// sqliteindex's (storage/phonetic.go says why): every query word (split on ^ = space and comma,
// case-insensitive) must either start a component of the name (family,
// given, middle, ... split the same way; "jo" finds JOHN and JO, "smi"
// finds SMITH and SMITHERS, "ohn" finds nothing) or have the same
// phonetic key as a whole component (storage.PhoneticKey: "smyth" finds SMITH,
// "mayer" finds MEIER, "carl" finds KARL; "john" does not find JON or
// JANE). For PatientName, the components are rows of study_name_words
// (migration 00005, namewords.go: one row per study and word, with the
// word's phonetic key and the study's sort key, written with the study
// row and deleted with it): a query word is the index range word >= w
// AND word < PrefixEnd(w) UNION ALL the index range phon = key, both
// index-only; a study search takes its page keys from one word's rows
// (the longest word), the other words and keys filtering them. For
// ReferringPhysicianName, component prefixes use a pg_trgm GIN index on
// the *_words column (LIKE '% WORD%'), phonetic keys a GIN index on the
// *_phon array (@>), combined in one BitmapOr.
package pgindex
