package sqlindex

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cloudpacs/pacs/internal/storage"
)

// ErrRetry asks a backend to run a write transaction again: a
// concurrent transaction changed the rows it read (PostgreSQL; SQLite's
// single writer never sees one).
var ErrRetry = errors.New("concurrent change, retry")

// Tx is the part of a backend's write transaction the core uses.
type Tx interface {
	Query(ctx context.Context, sql string, args ...any) (Rows, error)
	// Exec runs a statement and returns the number of rows it changed.
	Exec(ctx context.Context, sql string, args ...any) (int64, error)
}

// Writer is a backend's write transaction (Tx) with what it writes its
// own way in a put: the study and
// series upserts and the instance row (the columns differ: integer,
// word and phonetic columns, arrays or text), the counts, the version.
// vals is what the backend computed from the instance before the
// transaction (InstanceValues), passed through unchanged.
type Writer interface {
	Tx
	// UpsertStudy creates the study row or keeps the existing one (the
	// first instance's attributes win) and returns its key and its
	// instance count before this put (0: created now).
	UpsertStudy(ctx context.Context, inst *storage.Instance, now time.Time) (pk, count int64, err error)
	// InsertNameWords records the words of a new study's PatientName in
	// study_name_words.
	InsertNameWords(ctx context.Context, studyPK int64, s *storage.StudyAttrs) error
	// UpsertSeries is UpsertStudy for the series; studyPK is the study
	// the existing row belongs to.
	UpsertSeries(ctx context.Context, studyPK int64, inst *storage.Instance) (pk, seriesStudyPK, count int64, err error)
	// InsertInstance adds the instance row; false: a concurrent put of
	// the same SOP Instance UID committed first.
	InsertInstance(ctx context.Context, seriesPK, studyPK int64, vals []any) (bool, error)
	// UpdateInstance replaces row pk if its SHA-256 is still oldSHA;
	// false: it changed meanwhile.
	UpdateInstance(ctx context.Context, pk int64, oldSHA string, vals []any) (bool, error)
	// Count adds one instance to the computed attributes of its series
	// and study (newSeries: the series was created by this put).
	Count(ctx context.Context, seriesPK, studyPK int64, newSeries bool, sopClass string) error
	// Recount recomputes the computed attributes of a study and its
	// series from the rows (after a replace or a delete).
	Recount(ctx context.Context, studyPK int64) error
	// BumpVersion advances the study's version and drops its cached
	// metadata documents.
	BumpVersion(ctx context.Context, studyPK int64, studyUID string, now time.Time) error
	// DeleteCache drops the study's cached metadata documents.
	DeleteCache(ctx context.Context, studyUID string) error
}

// Put records inst within w's transaction, which the caller commits (the decision
// storage.Index.PutInstance documents): the same SHA-256 under the same
// UIDs is a duplicate, another SHA-256 ErrExists or, with replace, a
// replace; other UIDs are ErrConflict. It may run more than once for
// one request (ErrRetry, or SQLite's batch rerun) and changes neither
// inst nor vals.
func (c *Core) Put(ctx context.Context, w Writer, inst *storage.Instance, vals []any, replace bool, now time.Time) (storage.PutResult, error) {
	var (
		pk, existingStudyPK int64
		studyUID, seriesUID string
		oldSHA, oldKey      string
	)
	err := one(ctx, w.Query, c.lookupSQL, []any{inst.SOPInstanceUID},
		&pk, &studyUID, &seriesUID, &oldSHA, &oldKey, &existingStudyPK)
	switch {
	case err == nil:
		if studyUID != inst.StudyInstanceUID || seriesUID != inst.SeriesInstanceUID {
			return storage.PutResult{}, fmt.Errorf("%w: SOP instance already stored under study %s series %s",
				storage.ErrConflict, studyUID, seriesUID)
		}
		if oldSHA == inst.SHA256 {
			var stored *storage.Instance
			rows, err := w.Query(ctx, c.byPKSQL, pk)
			if err != nil {
				return storage.PutResult{}, err
			}
			if rows.Next() {
				stored, err = ScanInstance(rows)
			}
			if cerr := rows.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return storage.PutResult{}, err
			}
			if stored == nil { // deleted meanwhile
				return storage.PutResult{}, ErrRetry
			}
			return storage.PutResult{Stored: *stored, Duplicate: true}, nil
		}
		if !replace {
			return storage.PutResult{}, fmt.Errorf("%w: SHA-256 %s differs from the stored %s", storage.ErrExists, inst.SHA256, oldSHA)
		}
		// Study row first (lock order: study, then its rows), then the
		// instance, only if it is still the row read.
		if err := w.BumpVersion(ctx, existingStudyPK, inst.StudyInstanceUID, now); err != nil {
			return storage.PutResult{}, err
		}
		ok, err := w.UpdateInstance(ctx, pk, oldSHA, vals)
		if err != nil {
			return storage.PutResult{}, err
		}
		if !ok {
			return storage.PutResult{}, ErrRetry
		}
		if err := w.Recount(ctx, existingStudyPK); err != nil { // the SOP class may have changed
			return storage.PutResult{}, err
		}
		res := storage.PutResult{Stored: *inst, ReplacedSHA256: oldSHA}
		if oldKey != inst.BlobKey {
			res.ReplacedBlobKey = oldKey
		}
		return res, nil
	case !errors.Is(err, storage.ErrNotFound):
		return storage.PutResult{}, err
	}

	// New instance: upsert study and series (first writer's attributes
	// win), then insert.
	studyPK, studyCount, err := w.UpsertStudy(ctx, inst, now)
	if err != nil {
		return storage.PutResult{}, err
	}
	// A study row never stays without instances: a count of 0 is a study
	// this transaction created (its attributes are final; on PostgreSQL
	// a racing creator waits on its row lock and then sees the count),
	// so its name words go in now (migration 00005).
	if studyCount == 0 {
		if err := w.InsertNameWords(ctx, studyPK, &inst.Study); err != nil {
			return storage.PutResult{}, err
		}
	}
	if err := w.DeleteCache(ctx, inst.StudyInstanceUID); err != nil {
		return storage.PutResult{}, err
	}
	seriesPK, seriesStudyPK, seriesCount, err := w.UpsertSeries(ctx, studyPK, inst)
	if err != nil {
		return storage.PutResult{}, err
	}
	if seriesStudyPK != studyPK {
		return storage.PutResult{}, fmt.Errorf("%w: series %s belongs to another study", storage.ErrConflict, inst.SeriesInstanceUID)
	}
	ok, err := w.InsertInstance(ctx, seriesPK, studyPK, vals)
	if err != nil {
		return storage.PutResult{}, err
	}
	if !ok { // a concurrent put of the same SOP instance committed first
		return storage.PutResult{}, ErrRetry
	}
	// A series row never stays without instances: a count of 0 is a
	// series this put created.
	if err := w.Count(ctx, seriesPK, studyPK, seriesCount == 0, inst.SOPClassUID); err != nil {
		return storage.PutResult{}, err
	}
	return storage.PutResult{Stored: *inst}, nil
}

// Tidy ends a delete in one study (storage.Index.Delete), once the
// instance rows are gone: it removes the study's series left without
// instances, then the study if it has no series left (and its cached
// documents); a study that stays gets a new version and its computed
// attributes recounted.
func (c *Core) Tidy(ctx context.Context, w Writer, studyPK int64, studyUID string, now time.Time) error {
	if _, err := w.Exec(ctx, c.deleteEmptySeriesSQL, studyPK); err != nil {
		return err
	}
	n, err := w.Exec(ctx, c.deleteEmptyStudySQL, studyPK)
	if err != nil {
		return err
	}
	if n != 0 {
		return w.DeleteCache(ctx, studyUID)
	}
	if err := w.BumpVersion(ctx, studyPK, studyUID, now); err != nil {
		return err
	}
	return w.Recount(ctx, studyPK)
}
