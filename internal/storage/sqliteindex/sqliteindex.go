package sqliteindex

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers driver "sqlite"

	"github.com/cloudpacs/pacs/internal/storage"
	"github.com/cloudpacs/pacs/internal/storage/sqlindex"
)

var _ storage.Index = (*Index)(nil)

//go:embed migrations/*.sql
var migrations embed.FS

// Index is a storage.Index on one SQLite database file.
type Index struct {
	// Reads are the lookups written once in sqlindex (Instance,
	// LocateInstance, Instances, LocateInstances, StudyVersion,
	// CachedMetadata, HasBlob, ListInstances).
	sqlindex.Reads
	w  *sql.DB // exactly one connection: every write, used by wr only
	r  *sql.DB // read pool (the same as w for in-memory databases)
	wr *writer // group commit of all writes (writer.go)
	// stmts are prepared on w (Open), used by the writer only.
	stmts map[string]*sql.Stmt
	// rstmts caches statements prepared on the read pool (query.go).
	rstmts stmtCache
	// gate orders the read calls on r (query.go).
	gate readGate
	// Now stamps rows and study versions; time.Now when nil.
	Now func() time.Time
}

const readConns = 4

// Open opens (creating if needed) the database at dsnOrPath and applies
// the migrations. dsnOrPath is a file path, a "file:" URI (its query
// parameters are kept, e.g. _pragma=...), or ":memory:" for a private
// in-memory database (one connection for reads and writes).
func Open(ctx context.Context, dsnOrPath string) (*Index, error) {
	memory := dsnOrPath == ":memory:" || dsnOrPath == ""
	base, query := "file::memory:", url.Values{}
	if !memory {
		base = dsnOrPath
		if strings.HasPrefix(dsnOrPath, "file:") {
			if b, q, ok := strings.Cut(dsnOrPath, "?"); ok {
				base = b
				var err error
				if query, err = url.ParseQuery(q); err != nil {
					return nil, fmt.Errorf("sqliteindex: open: bad DSN: %w", err)
				}
			}
		} else {
			base = "file:" + dsnOrPath
		}
	}
	pragmas := []string{"busy_timeout(10000)", "foreign_keys(1)"}
	if !memory {
		pragmas = append(pragmas, "journal_mode(WAL)")
	}
	if !hasPragma(query, "synchronous") {
		pragmas = append(pragmas, "synchronous(FULL)")
	}
	dsn := func(extra url.Values) string {
		q := url.Values{}
		for k, v := range query {
			q[k] = append([]string(nil), v...)
		}
		for _, p := range pragmas {
			q.Add("_pragma", p)
		}
		for k, v := range extra {
			q[k] = append(q[k], v...)
		}
		return base + "?" + q.Encode()
	}

	w, err := sql.Open("sqlite", dsn(url.Values{"_txlock": {"immediate"}}))
	if err != nil {
		return nil, fmt.Errorf("sqliteindex: open: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	x := &Index{w: w, r: w}
	x.Reads = sqlindex.Reads{Core: core, Name: "sqliteindex", Lookup: x.lookup, Read: x.read}
	if err := x.migrate(ctx); err != nil {
		w.Close()
		return nil, err
	}
	if !memory {
		r, err := sql.Open("sqlite", dsn(url.Values{"_pragma": {"query_only(1)"}}))
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("sqliteindex: open: %w", err)
		}
		r.SetMaxOpenConns(readConns)
		r.SetMaxIdleConns(readConns)
		x.r = r
		x.gate = make(readGate, readConns)
	}
	if err := x.prepare(ctx); err != nil {
		x.Close()
		return nil, err
	}
	x.wr = newWriter(w)
	if err := x.Ping(ctx); err != nil {
		x.Close()
		return nil, err
	}
	return x, nil
}

func hasPragma(q url.Values, name string) bool {
	for _, p := range q["_pragma"] {
		if strings.HasPrefix(strings.ToLower(strings.TrimSpace(p)), name) {
			return true
		}
	}
	return false
}

func (x *Index) migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("sqliteindex: migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, x.w, sub, goose.WithDisableGlobalRegistry(true),
		goose.WithGoMigrations(nameWordsMigration, phoneticMigration))
	if err != nil {
		return fmt.Errorf("sqliteindex: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("sqliteindex: migrate: %w", err)
	}
	return nil
}

// Close waits for the write batch in progress, then closes the
// database. Writes after Close fail with storage.ErrUnavailable.
func (x *Index) Close() error {
	if x.wr != nil {
		x.wr.close()
	}
	err := x.rstmts.close()
	for _, st := range x.stmts {
		err = errors.Join(err, st.Close())
	}
	err = errors.Join(err, x.w.Close())
	if x.r != x.w {
		err = errors.Join(err, x.r.Close())
	}
	return err
}

// Ping checks both connection pools.
func (x *Index) Ping(ctx context.Context) error {
	for _, db := range []*sql.DB{x.w, x.r} {
		if err := db.PingContext(ctx); err != nil {
			return fmt.Errorf("sqliteindex: ping: %w: %w", storage.ErrUnavailable, err)
		}
	}
	return nil
}

func (x *Index) now() time.Time {
	if x.Now != nil {
		return x.Now()
	}
	return time.Now()
}

// compress is the shared metadata document codec.
var compress = storage.CompressDoc

// The instance columns, their FROM clause and scan, and the orders of
// series and instances are sqlindex's (core).
var (
	instanceCols  = core.InstanceCols
	seriesOrder   = core.SeriesOrder
	instanceOrder = core.InstanceOrder
	scanInstance  = sqlindex.ScanInstance
)

const instanceFrom = sqlindex.InstanceFrom

// PutInstance records inst (see storage.Index). It runs in a savepoint
// of the writer's next group-commit transaction and returns once that
// transaction committed (writer.go).
//
// A ctx cancelled before the writer takes the request drops it; once
// taken, it runs and commits without cancellation: a commit that
// succeeds after the caller gave up would otherwise be reported as
// failed, and the caller would delete the blob of a committed row.
func (x *Index) PutInstance(ctx context.Context, inst *storage.Instance, replace bool) (storage.PutResult, error) {
	if inst == nil || inst.StudyInstanceUID == "" || inst.SeriesInstanceUID == "" || inst.SOPInstanceUID == "" || inst.BlobKey == "" {
		return storage.PutResult{}, errors.New("sqliteindex: put: instance without UIDs or blob key")
	}
	// Everything that needs no database is done here, beside the
	// writer, not in its transaction: the writer is the serial part.
	in := *inst
	now := x.now()
	if in.Created.IsZero() {
		in.Created = now
	}
	vals := instanceValues(&in) // encodes frames and bulk, compresses metadata
	var res storage.PutResult
	err := x.wr.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		res, err = x.put(ctx, tx, &in, vals, replace, now)
		return err
	})
	if err != nil {
		return storage.PutResult{}, fmt.Errorf("sqliteindex: put %s: %w", inst.SOPInstanceUID, err)
	}
	return res, nil
}

// Statements of put, prepared once on the write connection (Open).
const (
	// sqlLookup is the first statement of sqlindex's Put.
	sqlLookup = `SELECT i.instance_pk, st.study_uid, se.series_uid, i.sha256, i.blob_key, i.study_pk` +
		instanceFrom + ` WHERE i.sop_instance_uid = ?`
	sqlInsertStudy = `INSERT INTO studies (study_uid,
		patient_name, patient_name_key, patient_id, issuer_of_patient_id, patient_birth_date,
		patient_sex, study_date, study_time, accession_number, study_id,
		referring_physician_name, referring_physician_key, referring_physician_phon, study_description,
		specific_character_set, timezone_offset_from_utc, version, created)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (study_uid) DO UPDATE SET version = max(studies.version + 1, excluded.version)
		RETURNING study_pk, num_instances`
	sqlDeleteCache  = `DELETE FROM metadata_cache WHERE study_uid = ?`
	sqlInsertSeries = `INSERT INTO series (study_pk, series_uid,
		modality, series_number, series_description, series_date, series_time,
		body_part_examined, performed_procedure_step_start_date, performed_procedure_step_start_time,
		scheduled_procedure_step_id, requested_procedure_id, institution_name, station_name, manufacturer)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (series_uid) DO UPDATE SET series_uid = excluded.series_uid
		RETURNING series_pk, study_pk, num_instances`
	sqlInsertInstance = `INSERT INTO instances (series_pk, study_pk, sop_instance_uid,
		sop_class_uid, transfer_syntax_uid, blob_key, size, sha256, created,
		frames, encapsulated, deflated, big_endian, data_set_offset,
		instance_number, rows, columns, bits_allocated, number_of_frames,
		content_date, content_time, acquisition_date, metadata, bulk)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// The computed attributes of a new instance's series and study
	// (migrations/00003_counts.sql). Arguments: series_pk; then new
	// series (0 or 1) twice, the SOP Class UID twice, study_pk.
	// ModalitiesInStudy changes only with a new series (a series keeps
	// its first instance's modality), SOPClassesInStudy only with a
	// class the study does not list yet; both are then recomputed from
	// the rows, which include the new ones.
	sqlCountSeries = `UPDATE series SET num_instances = num_instances + 1 WHERE series_pk = ?`
	sqlCountStudy  = `UPDATE studies SET num_instances = num_instances + 1, num_series = num_series + ?,
		modalities = CASE WHEN ? = 0 THEN modalities ELSE ` + modalitiesOf + ` END,
		sop_classes = CASE WHEN ? = '' OR instr(',' || sop_classes || ',', ',' || ? || ',') > 0
			THEN sop_classes ELSE ` + sopClassesOf + ` END
		WHERE study_pk = ?`
)

// modalitiesOf and sopClassesOf compute studies.modalities and
// sop_classes of the study row being updated.
const (
	modalitiesOf = `coalesce((SELECT group_concat(DISTINCT c.modality) FROM series c
		WHERE c.study_pk = studies.study_pk AND c.modality <> ''), '')`
	sopClassesOf = `coalesce((SELECT group_concat(DISTINCT c.sop_class_uid) FROM instances c
		WHERE c.study_pk = studies.study_pk AND c.sop_class_uid <> ''), '')`
)

// recount recomputes the computed attributes of a study and its series
// from the rows (after a replace or a delete).
func recount(ctx context.Context, tx *sql.Tx, studyPK int64) error {
	if _, err := tx.ExecContext(ctx, `UPDATE series SET num_instances =
		(SELECT count(*) FROM instances i WHERE i.series_pk = series.series_pk) WHERE study_pk = ?`, studyPK); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `UPDATE studies SET
		num_series = (SELECT count(*) FROM series c WHERE c.study_pk = studies.study_pk),
		num_instances = (SELECT count(*) FROM instances c WHERE c.study_pk = studies.study_pk),
		modalities = `+modalitiesOf+`, sop_classes = `+sopClassesOf+`
		WHERE study_pk = ?`, studyPK)
	return err
}

var putStatements = []string{sqlLookup, sqlInsertStudy, sqlDeleteCache, sqlInsertSeries, sqlInsertInstance, sqlCountSeries, sqlCountStudy, sqlInsertNameWord}

// prepare prepares the hot write statements on the write connection,
// before the writer owns it.
func (x *Index) prepare(ctx context.Context) error {
	x.stmts = map[string]*sql.Stmt{}
	for _, q := range putStatements {
		st, err := x.w.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("sqliteindex: prepare: %w", err)
		}
		x.stmts[q] = st
	}
	return nil
}

// stmt returns the prepared statement q within tx: database/sql reuses
// the statement prepared on the one write connection, so SQLite does not
// parse and plan it again for every instance.
func (x *Index) stmt(ctx context.Context, tx *sql.Tx, q string) *sql.Stmt {
	return tx.StmtContext(ctx, x.stmts[q])
}

// put records inst, whose column values (instanceValues) are vals,
// within tx, which the caller commits. It may run more than once for
// the same request (writer.go) and changes neither inst nor vals.
func (x *Index) put(ctx context.Context, tx *sql.Tx, inst *storage.Instance, vals []any, replace bool, now time.Time) (storage.PutResult, error) {
	return core.Put(ctx, putTx{x, tx}, inst, vals, replace, now)
}

// putTx writes the rows of a put or a delete the SQLite way
// (sqlindex.Writer), with the statements prepared on the write connection.
type putTx struct {
	x  *Index
	tx *sql.Tx
}

// exec runs q, as its prepared statement when it has one.
func (t putTx) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if _, ok := t.x.stmts[q]; ok {
		return t.x.stmt(ctx, t.tx, q).ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, q, args...)
}

func (t putTx) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := t.exec(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (t putTx) Query(ctx context.Context, q string, args ...any) (sqlindex.Rows, error) {
	if _, ok := t.x.stmts[q]; ok {
		return t.x.stmt(ctx, t.tx, q).QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, q, args...)
}

func (t putTx) UpsertStudy(ctx context.Context, inst *storage.Instance, now time.Time) (pk, count int64, err error) {
	s := &inst.Study
	err = t.x.stmt(ctx, t.tx, sqlInsertStudy).QueryRowContext(ctx,
		inst.StudyInstanceUID,
		s.PatientName, storage.NameKey(s.PatientName), s.PatientID, s.IssuerOfPatientID, s.PatientBirthDate,
		s.PatientSex, s.StudyDate, s.StudyTime, s.AccessionNumber, s.StudyID,
		s.ReferringPhysicianName, storage.NameKey(s.ReferringPhysicianName), phoneticColumn(s.ReferringPhysicianName), s.StudyDescription,
		s.SpecificCharacterSet, s.TimezoneOffsetFromUTC, now.UnixNano(), now.UnixNano(),
	).Scan(&pk, &count)
	return pk, count, err
}

func (t putTx) InsertNameWords(ctx context.Context, studyPK int64, s *storage.StudyAttrs) error {
	return t.x.insertNameWords(ctx, t.tx, studyPK, s)
}

func (t putTx) DeleteCache(ctx context.Context, studyUID string) error {
	_, err := t.exec(ctx, sqlDeleteCache, studyUID)
	return err
}

func (t putTx) UpsertSeries(ctx context.Context, studyPK int64, inst *storage.Instance) (pk, seriesStudyPK, count int64, err error) {
	se := &inst.Series
	err = t.x.stmt(ctx, t.tx, sqlInsertSeries).QueryRowContext(ctx,
		studyPK, inst.SeriesInstanceUID,
		se.Modality, se.SeriesNumber, se.SeriesDescription, se.SeriesDate, se.SeriesTime,
		se.BodyPartExamined, se.PerformedProcedureStepStartDate, se.PerformedProcedureStepStartTime,
		se.ScheduledProcedureStepID, se.RequestedProcedureID, se.InstitutionName, se.StationName, se.Manufacturer,
	).Scan(&pk, &seriesStudyPK, &count)
	return pk, seriesStudyPK, count, err
}

// InsertInstance: the single writer looked the UID up in this
// transaction, so the insert never races.
func (t putTx) InsertInstance(ctx context.Context, seriesPK, studyPK int64, vals []any) (bool, error) {
	_, err := t.exec(ctx, sqlInsertInstance, slices.Concat([]any{seriesPK, studyPK}, vals)...)
	return err == nil, err
}

func (t putTx) UpdateInstance(ctx context.Context, pk int64, _ string, vals []any) (bool, error) {
	_, err := t.exec(ctx, `UPDATE instances SET
		sop_class_uid = ?, transfer_syntax_uid = ?, blob_key = ?, size = ?, sha256 = ?, created = ?,
		frames = ?, encapsulated = ?, deflated = ?, big_endian = ?, data_set_offset = ?,
		instance_number = ?, rows = ?, columns = ?, bits_allocated = ?, number_of_frames = ?,
		content_date = ?, content_time = ?, acquisition_date = ?, metadata = ?, bulk = ?
		WHERE instance_pk = ?`, slices.Concat(vals[1:], []any{pk})...)
	return err == nil, err
}

func (t putTx) Count(ctx context.Context, seriesPK, studyPK int64, newSeries bool, sopClass string) error {
	n := 0
	if newSeries {
		n = 1
	}
	if _, err := t.exec(ctx, sqlCountSeries, seriesPK); err != nil {
		return err
	}
	_, err := t.exec(ctx, sqlCountStudy, n, n, sopClass, sopClass, studyPK)
	return err
}

func (t putTx) Recount(ctx context.Context, studyPK int64) error { return recount(ctx, t.tx, studyPK) }

func (t putTx) BumpVersion(ctx context.Context, studyPK int64, studyUID string, now time.Time) error {
	return bumpVersion(ctx, t.tx, studyPK, studyUID, now)
}

// instanceValues lists sop_instance_uid .. bulk in column order.
func instanceValues(inst *storage.Instance) []any {
	a := &inst.Instance
	return []any{inst.SOPInstanceUID,
		inst.SOPClassUID, inst.TransferSyntaxUID, inst.BlobKey, inst.Size, inst.SHA256, inst.Created.UnixNano(),
		storage.EncodeFrames(nil, inst.Frames), inst.Encapsulated, inst.Deflated, inst.BigEndian, inst.DataSetOffset,
		a.InstanceNumber, a.Rows, a.Columns, a.BitsAllocated, a.NumberOfFrames,
		a.ContentDate, a.ContentTime, a.AcquisitionDate, compress(inst.Metadata), storage.EncodeBulk(nil, inst.Bulk)}
}

func bumpVersion(ctx context.Context, tx *sql.Tx, studyPK int64, studyUID string, now time.Time) error {
	if _, err := tx.ExecContext(ctx, `UPDATE studies SET version = max(version + 1, ?) WHERE study_pk = ?`, now.UnixNano(), studyPK); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM metadata_cache WHERE study_uid = ?`, studyUID)
	return err
}

var _ storage.InstanceLocator = (*Index)(nil)

// read runs a statement of the core on the read pool, through the read
// gate (left when the rows are closed), as a cached prepared statement.
func (x *Index) read(ctx context.Context, q string, args ...any) (sqlindex.Rows, error) {
	return x.runSearch(ctx, sqlindex.Statement{SQL: q, Args: args})
}

// lookup is read for a point lookup (one row by a unique key, tens of
// microseconds): once the gate has checked ctx, it runs with
// context.WithoutCancel(ctx): with a cancellable context, database/sql
// and the driver each start a goroutine per query to watch it, two
// goroutine wake-ups that cost more than the lookup itself on a small
// GET.
func (x *Index) lookup(ctx context.Context, q string, args ...any) (sqlindex.Rows, error) {
	leave, err := x.gate.enter(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := x.query(context.WithoutCancel(ctx), q, args...)
	if err != nil {
		leave()
		return nil, err
	}
	return &gatedRows{Rows: rows, leave: leave}, nil
}

var _ storage.MetadataLister = (*Index)(nil)

// EachMetadata streams the metadata of a study's (or series') instances
// in Instances order. The order is taken from a query over small columns
// only, the metadata blobs read unsorted, in one read transaction (one
// snapshot): sorting rows that carry the blobs makes SQLite spill its
// sorter to disk. One buffer is reused for decompression.
func (x *Index) EachMetadata(ctx context.Context, study, series string, fn func(seriesUID, sopUID string, metadata []byte) error) error {
	leave, err := x.gate.enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	tx, err := x.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("sqliteindex: metadata: %w", err)
	}
	defer tx.Rollback()
	where := ` WHERE st.study_uid = ? AND (? = '' OR se.series_uid = ?)`
	rows, err := tx.QueryContext(ctx, `SELECT i.instance_pk`+instanceFrom+where+`
		ORDER BY `+seriesOrder+`, `+instanceOrder, study, series, series)
	if err != nil {
		return fmt.Errorf("sqliteindex: metadata: %w", err)
	}
	pos := map[int64]int{}
	for rows.Next() {
		var pk int64
		if err := rows.Scan(&pk); err != nil {
			rows.Close()
			return fmt.Errorf("sqliteindex: metadata: %w", err)
		}
		pos[pk] = len(pos)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqliteindex: metadata: %w", err)
	}
	if len(pos) == 0 {
		return fmt.Errorf("sqliteindex: metadata of %s %s: %w", study, series, storage.ErrNotFound)
	}
	type row struct {
		series, sop string
		meta        []byte
	}
	ordered := make([]row, len(pos))
	rows, err = tx.QueryContext(ctx, `SELECT i.instance_pk, se.series_uid, i.sop_instance_uid, i.metadata`+instanceFrom+where, study, series, series)
	if err != nil {
		return fmt.Errorf("sqliteindex: metadata: %w", err)
	}
	for rows.Next() {
		var (
			pk int64
			r  row
		)
		if err := rows.Scan(&pk, &r.series, &r.sop, &r.meta); err != nil {
			rows.Close()
			return fmt.Errorf("sqliteindex: metadata: %w", err)
		}
		if i, ok := pos[pk]; ok {
			ordered[i] = r
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqliteindex: metadata: %w", err)
	}
	tx.Rollback()
	var buf []byte
	for _, r := range ordered {
		buf = buf[:0]
		if len(r.meta) > 0 {
			if buf, err = storage.DecompressDoc(buf, r.meta); err != nil {
				return fmt.Errorf("sqliteindex: metadata of %s: decompress: %w", r.sop, err)
			}
		}
		if err := fn(r.series, r.sop, buf); err != nil {
			return err
		}
	}
	return nil
}

// Delete removes a study, series or instance, then the series and
// studies left empty, and returns the blob keys of the removed rows.
func (x *Index) Delete(ctx context.Context, study, series, sop string) ([]string, error) {
	if study == "" && series == "" && sop == "" {
		return nil, errors.New("sqliteindex: delete: no UID")
	}
	var keys []string
	err := x.wr.do(ctx, func(ctx context.Context, tx *sql.Tx) error { // cancellation: see PutInstance
		var err error
		keys, err = x.delete(ctx, tx, study, series, sop)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqliteindex: delete: %w", err)
	}
	return keys, nil
}

// delete removes within tx, which the caller commits.
func (x *Index) delete(ctx context.Context, tx *sql.Tx, study, series, sop string) ([]string, error) {
	where := `(? = '' OR st.study_uid = ?) AND (? = '' OR se.series_uid = ?) AND (? = '' OR i.sop_instance_uid = ?)`
	args := []any{study, study, series, series, sop, sop}
	rows, err := tx.QueryContext(ctx, `SELECT i.instance_pk, i.blob_key, i.study_pk, st.study_uid`+instanceFrom+` WHERE `+where, args...)
	if err != nil {
		return nil, err
	}
	var (
		pks     []int64
		keys    []string
		studies = map[int64]string{}
	)
	for rows.Next() {
		var pk, studyPK int64
		var key, uid string
		if err := rows.Scan(&pk, &key, &studyPK, &uid); err != nil {
			rows.Close()
			return nil, err
		}
		pks, keys = append(pks, pk), append(keys, key)
		studies[studyPK] = uid
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(pks) == 0 {
		return nil, fmt.Errorf("%s/%s/%s: %w", study, series, sop, storage.ErrNotFound)
	}
	del, err := tx.PrepareContext(ctx, `DELETE FROM instances WHERE instance_pk = ?`)
	if err != nil {
		return nil, err
	}
	defer del.Close()
	for _, pk := range pks {
		if _, err := del.ExecContext(ctx, pk); err != nil {
			return nil, err
		}
	}
	now := x.now()
	for studyPK, uid := range studies {
		if err := core.Tidy(ctx, putTx{x, tx}, studyPK, uid, now); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// PutCachedMetadata keeps doc if version is still the study's current
// version; a document built from an older version is dropped silently.
func (x *Index) PutCachedMetadata(ctx context.Context, study, key string, version int64, doc []byte) error {
	z := compress(doc) // outside the write transaction
	err := x.wr.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO metadata_cache (study_uid, key, version, doc)
			SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM studies WHERE study_uid = ? AND version = ?)
			ON CONFLICT (study_uid, key) DO UPDATE SET version = excluded.version, doc = excluded.doc`,
			study, key, version, z, study, version)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqliteindex: put cached metadata %s: %w", key, err)
	}
	return nil
}

// sqlListInstances is a page of the walk over all instances: a range of
// the SOP Instance UID's unique index (BINARY collation: byte order) cut
// at LIMIT, no sort (TestListInstances_plan).
var sqlListInstances = core.ListInstancesSQL
