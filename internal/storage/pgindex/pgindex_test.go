package pgindex_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cloudpacs/pacs/internal/storage"
	"github.com/cloudpacs/pacs/internal/storage/pgindex"
	"github.com/cloudpacs/pacs/internal/storage/storagetest"
	"github.com/cloudpacs/pacs/internal/testenv"
)

// baseDSN returns PACS_TEST_POSTGRES_DSN, or skips (fails when the run
// requires its services, testenv.Missing: make test's
// PACS_TEST_REQUIRE_TOOLS=1, PACS_TEST_REQUIRE_SERVICES=1 or CI=true).
// scripts/postgres.sh starts a server: eval "$(scripts/postgres.sh env)".
func baseDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("PACS_TEST_POSTGRES_DSN")
	if dsn == "" {
		testenv.Missing(t, "PACS_TEST_POSTGRES_DSN not set (eval \"$(scripts/postgres.sh env)\" starts a server)")
	}
	return dsn
}

var extOnce sync.Once

// schemaDSN creates a fresh schema for one test and returns a DSN whose
// search_path starts with it; the schema is dropped at clean-up. pg_trgm
// is created once, in public, which stays on the search path.
func schemaDSN(t testing.TB) string {
	t.Helper()
	dsn := baseDSN(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var extErr error
	extOnce.Do(func() {
		_, extErr = conn.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public`)
	})
	if extErr != nil {
		t.Fatal(extErr)
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Error(err)
		}
	})
	return withSearchPath(t, dsn, schema+",public")
}

func withSearchPath(t testing.TB, dsn, path string) string {
	if strings.Contains(dsn, "://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("search_path", path)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " search_path=" + path
}

func open(t testing.TB, dsn string) *pgindex.Index {
	t.Helper()
	x, err := pgindex.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

func TestConformance(t *testing.T) {
	baseDSN(t)
	storagetest.TestIndex(t, func(t *testing.T) storage.Index { return open(t, schemaDSN(t)) })
}

func TestMigrate_idempotent(t *testing.T) {
	dsn := schemaDSN(t)
	x := open(t, dsn)
	inst := storagetest.NewTestInstance("1.2", "1.2.3", "1.2.3.4")
	if _, err := x.PutInstance(t.Context(), inst, false); err != nil {
		t.Fatal(err)
	}
	if err := pgindex.Migrate(t.Context(), dsn); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	y := open(t, dsn) // a second replica: migrations are a no-op
	if _, err := y.Instance(t.Context(), "1.2", "", "1.2.3.4"); err != nil {
		t.Fatal(err)
	}
}

// TestTwoReplicas: two pools (two replicas) ingest the same new study
// and the same instances at once.
func TestTwoReplicas(t *testing.T) {
	dsn := schemaDSN(t)
	a, b := open(t, dsn), open(t, dsn)
	replicas := []*pgindex.Index{a, b}
	const perReplica, instances = 4, 20
	var (
		wg         sync.WaitGroup
		mu         sync.Mutex
		stored     = map[string]int{}
		duplicates int
		errs       []error
	)
	for r, x := range replicas {
		for w := range perReplica {
			wg.Go(func() {
				// Every worker of both replicas puts every instance; the
				// order differs per worker.
				for k := range instances {
					i := (k + w*5 + r*3) % instances
					sop := fmt.Sprintf("6.1.%d.%d", i%3, i)
					res, err := x.PutInstance(t.Context(), storagetest.NewTestInstance("6.1", fmt.Sprintf("6.1.%d", i%3), sop), false)
					mu.Lock()
					switch {
					case err != nil:
						errs = append(errs, err)
					case res.Duplicate:
						duplicates++
					default:
						stored[sop]++
					}
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
	total := 2 * perReplica * instances
	if len(stored) != instances || duplicates != total-instances {
		t.Errorf("stored %d distinct, duplicates %d; want %d, %d", len(stored), duplicates, instances, total-instances)
	}
	for sop, n := range stored {
		if n != 1 {
			t.Errorf("%s stored %d times", sop, n)
		}
	}
	for _, x := range replicas {
		res, err := x.Search(t.Context(), storage.Query{Level: storage.LevelStudy})
		if err != nil || len(res) != 1 {
			t.Fatalf("Search = %d studies, %v; want 1", len(res), err)
		}
		if s := res[0].Study; s.NumberOfSeries != 3 || s.NumberOfInstances != instances {
			t.Errorf("counts = %d series, %d instances; want 3, %d", s.NumberOfSeries, s.NumberOfInstances, instances)
		}
	}

	// Cached metadata: a document cached through b is invalidated by a
	// put through a, before a's PutInstance returns.
	v, err := b.StudyVersion(t.Context(), "6.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.PutCachedMetadata(t.Context(), "6.1", "study", v, []byte("[]")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.PutInstance(t.Context(), storagetest.NewTestInstance("6.1", "6.1.0", "6.1.0.99"), false); err != nil {
		t.Fatal(err)
	}
	if _, err := b.CachedMetadata(t.Context(), "6.1", "study", v); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("replica b served a stale document: %v", err)
	}
	if v2, _ := b.StudyVersion(t.Context(), "6.1"); v2 == v {
		t.Error("replica b sees the old study version")
	}
}

// TestDeleteRacingPuts: replica a puts instances of one study while
// replica b deletes the study again and again. Every instance whose put
// succeeded is either still indexed or was returned by exactly one
// delete; nothing else is indexed.
func TestDeleteRacingPuts(t *testing.T) {
	dsn := schemaDSN(t)
	a, b := open(t, dsn), open(t, dsn)
	const n = 60
	var (
		wg      sync.WaitGroup
		put     = map[string]bool{}
		deleted = map[string]int{}
		done    = make(chan struct{})
	)
	wg.Go(func() {
		defer close(done)
		for i := range n {
			inst := storagetest.NewTestInstance("7.1", fmt.Sprintf("7.1.%d", i%2), fmt.Sprintf("7.1.%d.%d", i%2, i))
			if _, err := a.PutInstance(t.Context(), inst, false); err != nil {
				t.Error(err)
				return
			}
			put[inst.BlobKey] = true
		}
	})
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			keys, err := b.Delete(t.Context(), "7.1", "", "")
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				t.Error(err)
				return
			}
			for _, k := range keys {
				deleted[k]++
			}
			// Reads racing with the deletes never fail otherwise.
			if _, err := b.Instances(t.Context(), "7.1", ""); err != nil && !errors.Is(err, storage.ErrNotFound) {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	left, err := a.Instances(t.Context(), "7.1", "")
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		t.Fatal(err)
	}
	remaining := map[string]bool{}
	for _, inst := range left {
		remaining[inst.BlobKey] = true
	}
	for k := range put {
		if remaining[k] == (deleted[k] == 1) {
			t.Errorf("%s: remaining %v, deleted %d times", k, remaining[k], deleted[k])
		}
	}
	for k, c := range deleted {
		if !put[k] || c != 1 {
			t.Errorf("deleted %s %d times (put: %v)", k, c, put[k])
		}
	}
	if len(remaining) > 0 {
		res, err := a.Search(t.Context(), storage.Query{Level: storage.LevelStudy})
		if err != nil || len(res) != 1 || res[0].Study.NumberOfInstances != len(remaining) {
			t.Errorf("study after the race: %+v, %v; want %d instances", res, err, len(remaining))
		}
	}
	t.Logf("%d puts, %d deleted, %d left", len(put), len(deleted), len(remaining))
}
