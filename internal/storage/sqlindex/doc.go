// Package sqlindex is the SQL core of the storage.Index backends
// (sqliteindex, pgindex): what both do the same way is written here once,
// and each backend supplies a Dialect for what its database spells or
// plans differently.
//
// The core owns the QIDO search: the WHERE clause of every kind of
// matching key (single value, wildcard, list, range, prefix, fuzzy person
// names through study_name_words), the three search statements with
// their order and page (the study page is cut as keys first, then the
// rows and the representative metadata are read for the page only), and
// the scan of their rows (search.go, names.go); the lookups by UID, the
// study version, the cached documents and the instance walk (reads.go,
// embedded in each backend's Index as Reads); and the decision of a put
// (writes.go: duplicate, conflict, ErrExists or replace, new study and
// series, counts), whose rows a backend writes through a Writer.
//
// A dialect says how to write a placeholder, a list or array test, a
// wildcard (GLOB or LIKE), an integer view of an IS column (CAST of the
// text or a maintained *_int column), the modality tests, the
// referring-physician fuzzy test. The backend runs the statements (Run,
// Query: the SQLite read gate and prepared-statement cache; pgx with a
// custom plan where a generic one is known to be wrong) and writes the
// rows of a put (Writer). Migrations, the writers, the pools and the
// plan choices verified with EXPLAIN stay in the backends.
//
// The core emits `?` placeholders and collects arguments in the order of
// the text; a dialect with numbered placeholders gets them renumbered
// (Bind) once the statement is complete.
//
// Dependencies point inward: sqlindex imports storage, and only the
// backends import sqlindex.
package sqlindex
