package pgindex_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cloudpacs/pacs/internal/storage/pgindex"
)

// TestListInstances_plan: on 100,000 instances, a page of the walk is a
// scan of the SOP Instance UID's unique index in its order, stopped at
// the limit, with the study and series found by primary key per row: no
// sort and no scan of a table, from the start and from the middle, so
// that a walk of the whole index is linear in its size.
func TestListInstances_plan(t *testing.T) {
	dsn := schemaDSN(t)
	open(t, dsn) // migrations
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{
		`INSERT INTO studies (study_uid, version, created) SELECT '1.2.' || g, 1, 0 FROM generate_series(1, 1000) g`,
		`INSERT INTO series (study_pk, series_uid) SELECT study_pk, study_uid || '.1' FROM studies`,
		`INSERT INTO instances (series_pk, study_pk, sop_instance_uid, blob_key, size, sha256, created)
			SELECT se.series_pk, se.study_pk, se.series_uid || '.' || g, 'instances/00/00/' || se.series_pk || '-' || g, 1, '00', 0
			FROM series se, generate_series(1, 100) g`,
		`ANALYZE`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for _, after := range []string{"", "1.2.500.1.50"} {
		rows, err := conn.Query(ctx, `EXPLAIN (COSTS OFF) `+pgindex.SQLListInstances, after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		plan := strings.Join(lines, "\n")
		t.Logf("after %q:\n%s", after, plan)
		for _, bad := range []string{"Sort", "Seq Scan", "Hash", "Bitmap"} {
			if strings.Contains(plan, bad) {
				t.Errorf("after %q: plan has %q:\n%s", after, bad, plan)
			}
		}
		for _, want := range []string{"Limit", "Index Scan using instances_sop_instance_uid_key on instances i",
			"Index Scan using studies_pkey on studies st", "Index Scan using series_pkey on series se"} {
			if !strings.Contains(plan, want) {
				t.Errorf("after %q: plan lacks %q:\n%s", after, want, plan)
			}
		}
	}
}
