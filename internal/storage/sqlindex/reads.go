package sqlindex

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cloudpacs/pacs/internal/storage"
)

// Query runs a read statement (already in the dialect's placeholders)
// on a backend's read connections; the core closes the rows.
type Query func(ctx context.Context, sql string, args ...any) (Rows, error)

// Cols chooses the instance columns of a lookup.
type Cols int

const (
	Whole      Cols = iota // InstanceCols: the whole row
	Locate                 // LocateCols: without metadata and bulk
	LocateBulk             // LocateBulkCols: without metadata
)

func (c *Core) cols(w Cols) string {
	switch w {
	case Locate:
		return c.LocateCols
	case LocateBulk:
		return c.LocateBulkCols
	}
	return c.InstanceCols
}

// Scope is the WHERE condition on the non-empty UIDs (`?`
// placeholders) and its arguments; "" when all are empty.
func Scope(study, series, sop string) (string, []any) {
	var (
		where []string
		args  []any
	)
	for _, u := range []struct{ col, v string }{
		{"st.study_uid", study}, {"se.series_uid", series}, {"i.sop_instance_uid", sop},
	} {
		if u.v != "" {
			where, args = append(where, u.col+" = ?"), append(args, u.v)
		}
	}
	return strings.Join(where, " AND "), args
}

// Instance returns one instance by SOP Instance UID, checked against
// the study and series UIDs that are not empty (storage.Index.Instance,
// InstanceLocator.LocateInstance).
func (c *Core) Instance(ctx context.Context, q Query, w Cols, study, series, sop string) (*storage.Instance, error) {
	if sop == "" {
		return nil, fmt.Errorf("instance: %w", storage.ErrNotFound)
	}
	where, args := Scope(study, series, sop)
	rows, err := q(ctx, Bind(c.d, `SELECT `+c.cols(w)+InstanceFrom+` WHERE `+where), args...)
	if err != nil {
		return nil, fmt.Errorf("instance %s: %w", sop, err)
	}
	var inst *storage.Instance
	if rows.Next() {
		inst, err = ScanInstance(rows)
	}
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		return nil, fmt.Errorf("instance %s: %w", sop, err)
	case inst == nil:
		return nil, fmt.Errorf("instance %s: %w", sop, storage.ErrNotFound)
	}
	return inst, nil
}

// Instances lists the instances of a study (series "": all series) in
// series, instance number, SOP Instance UID order (storage.Index.Instances,
// InstanceLocator.LocateInstances). None: ErrNotFound (studies and
// series never stay empty).
func (c *Core) Instances(ctx context.Context, q Query, w Cols, study, series string) ([]*storage.Instance, error) {
	if study == "" {
		return nil, fmt.Errorf("instances: %w", storage.ErrNotFound)
	}
	where, args := Scope(study, series, "")
	rows, err := q(ctx, Bind(c.d, `SELECT `+c.cols(w)+InstanceFrom+` WHERE `+where+`
		ORDER BY `+c.SeriesOrder+`, `+c.InstanceOrder), args...)
	if err != nil {
		return nil, fmt.Errorf("instances: %w", err)
	}
	var out []*storage.Instance
	for rows.Next() {
		inst, serr := ScanInstance(rows)
		if serr != nil {
			err = serr
			break
		}
		out = append(out, inst)
	}
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		return nil, fmt.Errorf("instances: %w", err)
	case len(out) == 0:
		return nil, fmt.Errorf("instances of %s %s: %w", study, series, storage.ErrNotFound)
	}
	return out, nil
}

// one reads the single row of a lookup into dest; no row: ErrNotFound.
func one(ctx context.Context, q Query, sql string, args []any, dest ...any) error {
	rows, err := q(ctx, sql, args...)
	if err != nil {
		return err
	}
	found := rows.Next()
	if found {
		err = rows.Scan(dest...)
	}
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	if err == nil && !found {
		err = storage.ErrNotFound
	}
	return err
}

// StudyVersion is storage.Index.StudyVersion.
func (c *Core) StudyVersion(ctx context.Context, q Query, study string) (int64, error) {
	var v int64
	if err := one(ctx, q, Bind(c.d, `SELECT version FROM studies WHERE study_uid = ?`), []any{study}, &v); err != nil {
		return 0, fmt.Errorf("study version %s: %w", study, err)
	}
	return v, nil
}

// CachedMetadata is storage.Index.CachedMetadata: the document only if
// it was built from the study's current version.
func (c *Core) CachedMetadata(ctx context.Context, q Query, study, key string, version int64) ([]byte, error) {
	var doc []byte
	err := one(ctx, q, Bind(c.d, `SELECT c.doc FROM metadata_cache c
		JOIN studies st ON st.study_uid = c.study_uid AND st.version = c.version
		WHERE c.study_uid = ? AND c.key = ? AND c.version = ?`), []any{study, key, version}, &doc)
	if err != nil {
		return nil, fmt.Errorf("cached metadata %s: %w", key, err)
	}
	return storage.DecompressDoc(nil, doc)
}

// HasBlob is storage.Index.HasBlob.
func (c *Core) HasBlob(ctx context.Context, q Query, key string) (bool, error) {
	var ok bool
	if err := one(ctx, q, Bind(c.d, `SELECT EXISTS (SELECT 1 FROM instances WHERE blob_key = ?)`), []any{key}, &ok); err != nil {
		return false, fmt.Errorf("has blob: %w", err)
	}
	return ok, nil
}

// DefaultListLimit is the page of ListInstances when none is given.
const DefaultListLimit = 1000

// ListInstances is storage.Index.ListInstances: a range of the unique
// SOP Instance UID index (byte order in both databases) cut at the
// limit, no sort (the backends' TestListInstances_plan).
func (c *Core) ListInstances(ctx context.Context, q Query, after string, limit int) ([]*storage.Instance, error) {
	if limit <= 0 {
		limit = DefaultListLimit
	}
	rows, err := q(ctx, c.ListInstancesSQL, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	out := make([]*storage.Instance, 0, min(limit, DefaultListLimit))
	for rows.Next() {
		var (
			inst    storage.Instance
			created int64
		)
		if err = rows.Scan(storage.ListInstancesDest(&inst, &created)...); err != nil {
			break
		}
		inst.Created = time.Unix(0, created).UTC()
		out = append(out, &inst)
	}
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	return out, nil
}

// Reads gives a backend the storage.Index and storage.InstanceLocator
// reads that are the same SQL on every database, when embedded in its
// Index: Name prefixes the errors, Lookup runs the point lookups and
// Read the others (a backend may run them differently: SQLite's point
// lookups run without cancellation once admitted).
type Reads struct {
	Core         *Core
	Name         string
	Lookup, Read Query
}

func (r *Reads) wrap(err error) error { return fmt.Errorf("%s: %w", r.Name, err) }

// Instance is storage.Index.Instance.
func (r *Reads) Instance(ctx context.Context, study, series, sop string) (*storage.Instance, error) {
	inst, err := r.Core.Instance(ctx, r.Lookup, Whole, study, series, sop)
	if err != nil {
		return nil, r.wrap(err)
	}
	return inst, nil
}

// LocateInstance is Instance without the metadata document (and without
// Bulk unless withBulk): nothing to transfer or decompress on the
// retrieve paths (storage.InstanceLocator).
func (r *Reads) LocateInstance(ctx context.Context, study, series, sop string, withBulk bool) (*storage.Instance, error) {
	cols := Locate
	if withBulk {
		cols = LocateBulk
	}
	inst, err := r.Core.Instance(ctx, r.Lookup, cols, study, series, sop)
	if err != nil {
		return nil, r.wrap(err)
	}
	return inst, nil
}

// Instances is storage.Index.Instances: by series number, then instance
// number, then SOP Instance UID.
func (r *Reads) Instances(ctx context.Context, study, series string) ([]*storage.Instance, error) {
	return r.instances(ctx, Whole, study, series)
}

// LocateInstances is Instances without the metadata and bulk documents.
func (r *Reads) LocateInstances(ctx context.Context, study, series string) ([]*storage.Instance, error) {
	return r.instances(ctx, Locate, study, series)
}

func (r *Reads) instances(ctx context.Context, w Cols, study, series string) ([]*storage.Instance, error) {
	out, err := r.Core.Instances(ctx, r.Read, w, study, series)
	if err != nil {
		return nil, r.wrap(err)
	}
	return out, nil
}

// StudyVersion is storage.Index.StudyVersion.
func (r *Reads) StudyVersion(ctx context.Context, study string) (int64, error) {
	v, err := r.Core.StudyVersion(ctx, r.Lookup, study)
	if err != nil {
		return 0, r.wrap(err)
	}
	return v, nil
}

// CachedMetadata is storage.Index.CachedMetadata.
func (r *Reads) CachedMetadata(ctx context.Context, study, key string, version int64) ([]byte, error) {
	doc, err := r.Core.CachedMetadata(ctx, r.Lookup, study, key, version)
	if err != nil {
		return nil, r.wrap(err)
	}
	return doc, nil
}

// HasBlob is storage.Index.HasBlob.
func (r *Reads) HasBlob(ctx context.Context, key string) (bool, error) {
	ok, err := r.Core.HasBlob(ctx, r.Lookup, key)
	if err != nil {
		return false, r.wrap(err)
	}
	return ok, nil
}

// ListInstances is storage.Index.ListInstances.
func (r *Reads) ListInstances(ctx context.Context, after string, limit int) ([]*storage.Instance, error) {
	out, err := r.Core.ListInstances(ctx, r.Read, after, limit)
	if err != nil {
		return nil, r.wrap(err)
	}
	return out, nil
}
