package pgindex

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/cloudpacs/pacs/internal/storage"
	"github.com/cloudpacs/pacs/internal/storage/sqlindex"
)

var (
	_ storage.Index          = (*Index)(nil)
	_ storage.MetadataLister = (*Index)(nil)
)

//go:embed migrations/*.sql
var migrations embed.FS

// Index is a storage.Index on PostgreSQL. Any number of Index values, in
// any number of processes, may share one database: every invariant is
// kept by transactions, row locks and unique constraints.
type Index struct {
	// Reads are the lookups written once in sqlindex (Instance,
	// LocateInstance, Instances, LocateInstances, StudyVersion,
	// CachedMetadata, HasBlob, ListInstances).
	sqlindex.Reads
	pool *pgxpool.Pool
	// Now stamps rows and study versions; time.Now when nil.
	Now func() time.Time
}

// Open connects to the database named by dsn (a postgres:// URL or a
// key=value string, as pgx accepts; pool settings such as pool_max_conns
// may be given there), applies the migrations and returns the index.
func Open(ctx context.Context, dsn string) (*Index, error) {
	if err := Migrate(ctx, dsn); err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgindex: open: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgindex: open: %w", err)
	}
	x := &Index{pool: pool}
	x.Reads = sqlindex.Reads{Core: core, Name: "pgindex", Lookup: x.read, Read: x.read}
	if err := x.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return x, nil
}

// Migrate applies the embedded migrations to the database named by dsn
// (for `pacs migrate`; Open calls it too). Replicas starting together
// serialise on a PostgreSQL advisory lock held for the duration.
func Migrate(ctx context.Context, dsn string) error {
	cfg, err := pgxpool.ParseConfig(dsn) // accepts (and drops) the pool_* settings
	if err != nil {
		return fmt.Errorf("pgindex: migrate: %w", err)
	}
	db := stdlib.OpenDB(*cfg.ConnConfig)
	defer db.Close()
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("pgindex: migrations: %w", err)
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("pgindex: migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub,
		goose.WithDisableGlobalRegistry(true), goose.WithSessionLocker(locker),
		goose.WithGoMigrations(nameWordsMigration))
	if err != nil {
		return fmt.Errorf("pgindex: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("pgindex: migrate: %w", err)
	}
	return nil
}

// Close closes the connection pool.
func (x *Index) Close() error {
	x.pool.Close()
	return nil
}

// Ping checks that the database answers.
func (x *Index) Ping(ctx context.Context) error {
	if err := x.pool.Ping(ctx); err != nil {
		return fmt.Errorf("pgindex: ping: %w: %w", storage.ErrUnavailable, err)
	}
	return nil
}

func (x *Index) now() time.Time {
	if x.Now != nil {
		return x.Now()
	}
	return time.Now()
}

// maxAttempts bounds the retries of a write transaction that failed with
// a serialization failure, a deadlock, or lost a race that the
// transaction detects itself (errRetry).
const maxAttempts = 8

// errRetry asks inTx to run the transaction again: a concurrent
// transaction changed what this one read (e.g. inserted the same SOP
// instance first).
var errRetry = sqlindex.ErrRetry

func retryable(err error) bool {
	if errors.Is(err, errRetry) {
		return true
	}
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

// inTx runs fn in a READ COMMITTED transaction, again (after a short
// random pause) when it fails with a retryable error.
func (x *Index) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := pgx.BeginTxFunc(ctx, x.pool, pgx.TxOptions{}, fn)
		if err == nil || attempt == maxAttempts || !retryable(err) {
			return err
		}
		d := time.Duration(attempt) * time.Millisecond
		time.Sleep(d/2 + rand.N(d))
	}
}

// compress is the shared metadata document codec.
var compress = storage.CompressDoc

// isNumber is the *_int column of an IS attribute: NULL when empty, the
// value when it is an integer, 0 otherwise (as SQLite's CAST would give).
func isNumber(s string) *int64 {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	n, err := strconv.ParseInt(strings.TrimPrefix(s, "+"), 10, 64)
	if err != nil {
		n = 0
	}
	return &n
}

// The instance columns, their FROM clause and scan, and the orders of
// series and instances are sqlindex's (core).
var (
	instanceCols  = core.InstanceCols
	seriesOrder   = core.SeriesOrder
	instanceOrder = core.InstanceOrder
)

const instanceFrom = sqlindex.InstanceFrom

func scanInstance(s pgx.Row) (*storage.Instance, error) { return sqlindex.ScanInstance(s) }

// PutInstance records inst in one transaction (see storage.Index).
//
// Concurrency: the study row is upserted first (INSERT ... ON CONFLICT
// DO UPDATE, which also bumps its version), so every writer of a study
// holds that row's lock until it commits: puts and deletes of one study
// run one after the other, in every process, and two replicas creating
// the same new study end with one row. The instance row is inserted with
// ON CONFLICT DO NOTHING; a writer that finds the SOP Instance UID taken
// by a transaction that committed meanwhile rolls back and runs again,
// and then sees the committed row (Duplicate, ErrExists or replace).
//
// Once ctx is checked, the transaction runs without cancellation: it is
// short, and a commit that succeeds after the caller gave up would
// otherwise be reported as failed, and the caller would delete the blob
// of a committed row.
func (x *Index) PutInstance(ctx context.Context, inst *storage.Instance, replace bool) (storage.PutResult, error) {
	if inst == nil || inst.StudyInstanceUID == "" || inst.SeriesInstanceUID == "" || inst.SOPInstanceUID == "" || inst.BlobKey == "" {
		return storage.PutResult{}, errors.New("pgindex: put: instance without UIDs or blob key")
	}
	if err := ctx.Err(); err != nil {
		return storage.PutResult{}, fmt.Errorf("pgindex: put %s: %w", inst.SOPInstanceUID, err)
	}
	ctx = context.WithoutCancel(ctx)
	in := *inst
	if in.Created.IsZero() {
		in.Created = x.now()
	}
	var res storage.PutResult
	err := x.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		res, err = x.put(ctx, tx, &in, replace)
		return err
	})
	if err != nil {
		return storage.PutResult{}, fmt.Errorf("pgindex: put %s: %w", inst.SOPInstanceUID, err)
	}
	return res, nil
}

func (x *Index) put(ctx context.Context, tx pgx.Tx, inst *storage.Instance, replace bool) (storage.PutResult, error) {
	return core.Put(ctx, putTx{tx}, inst, instanceValues(inst), replace, x.now())
}

// putTx writes the rows of a put the PostgreSQL way (sqlindex.Writer):
// upserts that take the study row's lock first, arrays, the *_int,
// *_words and *_phon columns.
type putTx struct{ tx pgx.Tx }

func (t putTx) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	tag, err := t.tx.Exec(ctx, q, args...)
	return tag.RowsAffected(), err
}

func (t putTx) Query(ctx context.Context, q string, args ...any) (sqlindex.Rows, error) {
	rows, err := t.tx.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return pgRows{rows}, nil
}

// UpsertStudy: ON CONFLICT DO UPDATE also bumps the version, and so
// takes the study row's lock (see PutInstance).
func (t putTx) UpsertStudy(ctx context.Context, inst *storage.Instance, now time.Time) (pk, count int64, err error) {
	s := &inst.Study
	err = t.tx.QueryRow(ctx, `INSERT INTO studies (study_uid,
		patient_name, patient_name_key, patient_name_words, patient_name_phon,
		patient_id, issuer_of_patient_id, patient_birth_date,
		patient_sex, study_date, study_time, accession_number, study_id,
		referring_physician_name, referring_physician_key, referring_physician_words, referring_physician_phon,
		study_description, specific_character_set, timezone_offset_from_utc, version, created)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $21)
		ON CONFLICT (study_uid) DO UPDATE SET version = GREATEST(studies.version + 1, EXCLUDED.version)
		RETURNING study_pk, num_instances`,
		inst.StudyInstanceUID,
		s.PatientName, storage.NameKey(s.PatientName), nameWords(s.PatientName), storage.PhoneticKeys(s.PatientName),
		s.PatientID, s.IssuerOfPatientID, s.PatientBirthDate,
		s.PatientSex, s.StudyDate, s.StudyTime, s.AccessionNumber, s.StudyID,
		s.ReferringPhysicianName, storage.NameKey(s.ReferringPhysicianName),
		nameWords(s.ReferringPhysicianName), storage.PhoneticKeys(s.ReferringPhysicianName),
		s.StudyDescription, s.SpecificCharacterSet, s.TimezoneOffsetFromUTC, now.UnixNano(),
	).Scan(&pk, &count)
	return pk, count, err
}

func (t putTx) InsertNameWords(ctx context.Context, studyPK int64, s *storage.StudyAttrs) error {
	return insertNameWords(ctx, t.tx, studyPK, s)
}

func (t putTx) DeleteCache(ctx context.Context, studyUID string) error {
	_, err := t.tx.Exec(ctx, `DELETE FROM metadata_cache WHERE study_uid = $1`, studyUID)
	return err
}

func (t putTx) UpsertSeries(ctx context.Context, studyPK int64, inst *storage.Instance) (pk, seriesStudyPK, count int64, err error) {
	se := &inst.Series
	err = t.tx.QueryRow(ctx, `INSERT INTO series (study_pk, series_uid,
		modality, series_number, series_number_int, series_description, series_date, series_time,
		body_part_examined, performed_procedure_step_start_date, performed_procedure_step_start_time,
		scheduled_procedure_step_id, requested_procedure_id, institution_name, station_name, manufacturer)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
		ON CONFLICT (series_uid) DO UPDATE SET series_uid = EXCLUDED.series_uid
		RETURNING series_pk, study_pk, num_instances`,
		studyPK, inst.SeriesInstanceUID,
		se.Modality, se.SeriesNumber, isNumber(se.SeriesNumber), se.SeriesDescription, se.SeriesDate, se.SeriesTime,
		se.BodyPartExamined, se.PerformedProcedureStepStartDate, se.PerformedProcedureStepStartTime,
		se.ScheduledProcedureStepID, se.RequestedProcedureID, se.InstitutionName, se.StationName, se.Manufacturer,
	).Scan(&pk, &seriesStudyPK, &count)
	return pk, seriesStudyPK, count, err
}

// InsertInstance: ON CONFLICT DO NOTHING, so that a put racing with
// another of the same SOP Instance UID runs again and sees its row.
func (t putTx) InsertInstance(ctx context.Context, seriesPK, studyPK int64, vals []any) (bool, error) {
	var pk int64
	err := t.tx.QueryRow(ctx, `INSERT INTO instances (series_pk, study_pk, sop_instance_uid,
		sop_class_uid, transfer_syntax_uid, blob_key, size, sha256, created,
		frames, encapsulated, deflated, big_endian, data_set_offset,
		instance_number, instance_number_int, rows, columns, bits_allocated,
		number_of_frames, content_date, content_time, acquisition_date, metadata, bulk)
		VALUES ($24, $25, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
		$13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)
		ON CONFLICT (sop_instance_uid) DO NOTHING
		RETURNING instance_pk`,
		append(vals[:len(vals):len(vals)], seriesPK, studyPK)...).Scan(&pk)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func (t putTx) UpdateInstance(ctx context.Context, pk int64, oldSHA string, vals []any) (bool, error) {
	tag, err := t.tx.Exec(ctx, `UPDATE instances SET
		sop_class_uid = $2, transfer_syntax_uid = $3, blob_key = $4, size = $5, sha256 = $6, created = $7,
		frames = $8, encapsulated = $9, deflated = $10, big_endian = $11, data_set_offset = $12,
		instance_number = $13, instance_number_int = $14, rows = $15, columns = $16, bits_allocated = $17,
		number_of_frames = $18, content_date = $19, content_time = $20, acquisition_date = $21, metadata = $22, bulk = $23
		WHERE instance_pk = $24 AND sha256 = $25 AND sop_instance_uid = $1`, append(vals[:len(vals):len(vals)], pk, oldSHA)...)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// Count maintains the computed attributes (migrations/00003_counts.sql).
// ModalitiesInStudy changes only with a new series (a series keeps its
// first instance's modality), SOPClassesInStudy only with a class the
// study does not list yet; both are then recomputed from the rows,
// which include the new ones. The transaction holds the study row's
// lock since its upsert.
func (t putTx) Count(ctx context.Context, seriesPK, studyPK int64, newSeries bool, sopClass string) error {
	n := 0
	if newSeries {
		n = 1
	}
	if _, err := t.tx.Exec(ctx, `UPDATE series SET num_instances = num_instances + 1 WHERE series_pk = $1`, seriesPK); err != nil {
		return err
	}
	_, err := t.tx.Exec(ctx, `UPDATE studies st SET num_instances = num_instances + 1, num_series = num_series + $1,
		modalities = CASE WHEN $1 = 0 THEN modalities ELSE `+modalitiesOf+` END,
		sop_classes = CASE WHEN $2 = '' OR $2 = ANY(sop_classes) THEN sop_classes ELSE `+sopClassesOf+` END
		WHERE study_pk = $3`, n, sopClass, studyPK)
	return err
}

func (t putTx) Recount(ctx context.Context, studyPK int64) error { return recount(ctx, t.tx, studyPK) }

func (t putTx) BumpVersion(ctx context.Context, studyPK int64, studyUID string, now time.Time) error {
	return bumpVersion(ctx, t.tx, studyPK, studyUID, now)
}

// modalitiesOf and sopClassesOf compute studies.modalities and
// sop_classes of the study row st.
const (
	modalitiesOf = `ARRAY(SELECT DISTINCT c.modality FROM series c
		WHERE c.study_pk = st.study_pk AND c.modality <> '' ORDER BY 1)`
	sopClassesOf = `ARRAY(SELECT DISTINCT c.sop_class_uid FROM instances c
		WHERE c.study_pk = st.study_pk AND c.sop_class_uid <> '' ORDER BY 1)`
)

// recount recomputes the computed attributes of a study and its series
// from the rows (after a replace or a delete).
func recount(ctx context.Context, tx pgx.Tx, studyPK int64) error {
	if _, err := tx.Exec(ctx, `UPDATE series se SET num_instances =
		(SELECT count(*) FROM instances i WHERE i.series_pk = se.series_pk) WHERE se.study_pk = $1`, studyPK); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `UPDATE studies st SET
		num_series = (SELECT count(*) FROM series c WHERE c.study_pk = st.study_pk),
		num_instances = (SELECT count(*) FROM instances c WHERE c.study_pk = st.study_pk),
		modalities = `+modalitiesOf+`, sop_classes = `+sopClassesOf+`
		WHERE st.study_pk = $1`, studyPK)
	return err
}

// instanceValues lists sop_instance_uid .. bulk ($1 .. $23).
func instanceValues(inst *storage.Instance) []any {
	a := &inst.Instance
	return []any{inst.SOPInstanceUID,
		inst.SOPClassUID, inst.TransferSyntaxUID, inst.BlobKey, inst.Size, inst.SHA256, inst.Created.UnixNano(),
		storage.EncodeFrames(nil, inst.Frames), inst.Encapsulated, inst.Deflated, inst.BigEndian, inst.DataSetOffset,
		a.InstanceNumber, isNumber(a.InstanceNumber), a.Rows, a.Columns, a.BitsAllocated, a.NumberOfFrames,
		a.ContentDate, a.ContentTime, a.AcquisitionDate, compress(inst.Metadata), storage.EncodeBulk(nil, inst.Bulk)}
}

func bumpVersion(ctx context.Context, tx pgx.Tx, studyPK int64, studyUID string, now time.Time) error {
	if _, err := tx.Exec(ctx, `UPDATE studies SET version = GREATEST(version + 1, $1) WHERE study_pk = $2`, now.UnixNano(), studyPK); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `DELETE FROM metadata_cache WHERE study_uid = $1`, studyUID)
	return err
}

// scope builds the WHERE conditions for the non-empty UIDs.
func scope(study, series, sop string) (string, []any) {
	where, args := sqlindex.Scope(study, series, sop)
	if where == "" {
		return "true", nil
	}
	return sqlindex.Bind(dialect{}, where), args
}

var _ storage.InstanceLocator = (*Index)(nil)

// read runs a statement of the core on the pool.
func (x *Index) read(ctx context.Context, q string, args ...any) (sqlindex.Rows, error) {
	rows, err := x.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return pgRows{rows}, nil
}

// Delete removes a study, series or instance, then the series and
// studies left empty, and returns the blob keys of the removed rows.
//
// It locks the rows of the studies concerned first (the lock every put
// takes too), so a put racing with the delete either commits before it
// (and its instance is deleted too, when in scope) or after it (and
// recreates what it needs); it never loses its row to a cascade.
func (x *Index) Delete(ctx context.Context, study, series, sop string) ([]string, error) {
	if study == "" && series == "" && sop == "" {
		return nil, errors.New("pgindex: delete: no UID")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ctx = context.WithoutCancel(ctx) // see PutInstance
	where, args := scope(study, series, sop)
	var keys []string
	err := x.inTx(ctx, func(tx pgx.Tx) error {
		keys = nil
		rows, err := tx.Query(ctx, `SELECT DISTINCT i.study_pk`+instanceFrom+` WHERE `+where, args...)
		if err != nil {
			return err
		}
		studyPKs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		if len(studyPKs) == 0 {
			return storage.ErrNotFound
		}
		rows, err = tx.Query(ctx, `SELECT study_pk, study_uid FROM studies
			WHERE study_pk = ANY($1) ORDER BY study_pk FOR UPDATE`, studyPKs)
		if err != nil {
			return err
		}
		type study struct {
			pk  int64
			uid string
		}
		studies, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (study, error) {
			var s study
			return s, r.Scan(&s.pk, &s.uid)
		})
		if err != nil {
			return err
		}
		// A statement after the lock sees what committed before it.
		rows, err = tx.Query(ctx, `DELETE FROM instances i USING series se, studies st
			WHERE se.series_pk = i.series_pk AND st.study_pk = i.study_pk AND `+where+`
			RETURNING i.blob_key`, args...)
		if err != nil {
			return err
		}
		if keys, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return err
		}
		if len(keys) == 0 { // a concurrent delete won
			return storage.ErrNotFound
		}
		now := x.now()
		for _, s := range studies {
			if err := core.Tidy(ctx, putTx{tx}, s.pk, s.uid, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, fmt.Errorf("pgindex: delete %s/%s/%s: %w", study, series, sop, storage.ErrNotFound)
		}
		return nil, fmt.Errorf("pgindex: delete: %w", err)
	}
	return keys, nil
}

// PutCachedMetadata keeps doc if version is still the study's current
// version; a document built from an older version is dropped silently.
// A document that races with a put is at worst stored under a version
// that is no longer current, and CachedMetadata never serves it.
func (x *Index) PutCachedMetadata(ctx context.Context, study, key string, version int64, doc []byte) error {
	_, err := x.pool.Exec(ctx, `INSERT INTO metadata_cache (study_uid, key, version, doc)
		SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM studies WHERE study_uid = $1 AND version = $3)
		ON CONFLICT (study_uid, key) DO UPDATE SET version = EXCLUDED.version, doc = EXCLUDED.doc`,
		study, key, version, compress(doc))
	if err != nil {
		return fmt.Errorf("pgindex: put cached metadata %s: %w", key, err)
	}
	return nil
}

// sqlListInstances is a page of the walk over all instances: a range
// scan of the SOP Instance UID's unique index (COLLATE "C": byte order)
// that stops after the limit, each row's study and series UIDs looked up
// by primary key; no sort (TestListInstances_plan).
var sqlListInstances = core.ListInstancesSQL

// EachMetadata streams the metadata of a study's (or series') instances
// in Instances order, from one query (one snapshot) that reads only the
// UIDs and the compressed documents; one buffer is reused for
// decompression.
func (x *Index) EachMetadata(ctx context.Context, study, series string, fn func(seriesUID, sopUID string, metadata []byte) error) error {
	if study == "" {
		return fmt.Errorf("pgindex: metadata: %w", storage.ErrNotFound)
	}
	where, args := scope(study, series, "")
	rows, err := x.pool.Query(ctx, `SELECT se.series_uid, i.sop_instance_uid, i.metadata`+instanceFrom+`
		WHERE `+where+` ORDER BY `+seriesOrder+`, `+instanceOrder, args...)
	if err != nil {
		return fmt.Errorf("pgindex: metadata: %w", err)
	}
	defer rows.Close()
	var (
		buf, meta []byte
		seUID     string
		sopUID    string
		n         int
	)
	for rows.Next() {
		if err := rows.Scan(&seUID, &sopUID, &meta); err != nil {
			return fmt.Errorf("pgindex: metadata: %w", err)
		}
		n++
		buf = buf[:0]
		if len(meta) > 0 {
			if buf, err = storage.DecompressDoc(buf, meta); err != nil {
				return fmt.Errorf("pgindex: metadata of %s: decompress: %w", sopUID, err)
			}
		}
		if err := fn(seUID, sopUID, buf); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("pgindex: metadata: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("pgindex: metadata of %s %s: %w", study, series, storage.ErrNotFound)
	}
	return nil
}
