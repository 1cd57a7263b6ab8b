package indexgen_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cloudpacs/pacs/internal/storage"
	"github.com/cloudpacs/pacs/internal/storage/indexgen"
	"github.com/cloudpacs/pacs/internal/storage/pgindex"
	"github.com/cloudpacs/pacs/internal/storage/sqliteindex"
)

// Benchmark size: PACS_BENCH_INSTANCES (default 20,000; the documented
// run uses 1,000,000). Filled archives are kept for the next run: SQLite
// files under PACS_BENCH_DIR (default $TMPDIR/pacs-indexgen), PostgreSQL
// schemas bench_<instances> in PACS_TEST_POSTGRES_DSN's database.
func benchConfig(tb testing.TB) indexgen.Config {
	n := 20000
	if v := os.Getenv("PACS_BENCH_INSTANCES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			tb.Fatalf("PACS_BENCH_INSTANCES=%q", v)
		}
	}
	return indexgen.Config{Instances: n}
}

func benchDir(tb testing.TB) string {
	d := os.Getenv("PACS_BENCH_DIR")
	if d == "" {
		d = filepath.Join(os.TempDir(), "pacs-indexgen")
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		tb.Fatal(err)
	}
	return d
}

func logProgress(tb testing.TB, name string, total int) func(int) {
	start := time.Now()
	return func(n int) {
		if n%100000 == 0 {
			tb.Logf("%s: %d/%d instances, %.0f/s", name, n, total, float64(n)/time.Since(start).Seconds())
		}
	}
}

var (
	sqliteOnce sync.Once
	sqliteX    *sqliteindex.Index
	sqliteS    *indexgen.Sample
	pgOnce     sync.Once
	pgX        *pgindex.Index
	pgS        *indexgen.Sample
)

func openSQLite(b *testing.B, cfg indexgen.Config) (*sqliteindex.Index, *indexgen.Sample) {
	sqliteOnce.Do(func() {
		ctx := context.Background()
		path := filepath.Join(benchDir(b), fmt.Sprintf("sqlite-%d.db", cfg.Instances))
		done := path + ".done"
		if _, err := os.Stat(done); err != nil {
			for _, p := range []string{path, path + "-wal", path + "-shm"} {
				os.Remove(p)
			}
		}
		x, err := sqliteindex.Open(ctx, "file:"+path+"?_pragma=synchronous(OFF)")
		if err != nil {
			b.Fatal(err)
		}
		var s *indexgen.Sample
		if _, err := os.Stat(done); err == nil {
			s, err = indexgen.Generate(cfg, func(*storage.Instance) error { return nil })
			if err != nil {
				b.Fatal(err)
			}
		} else {
			start := time.Now()
			if s, err = indexgen.Fill(ctx, x, cfg, 1, logProgress(b, "sqlite", cfg.Instances)); err != nil {
				b.Fatal(err)
			}
			b.Logf("sqlite: filled %d instances in %v", s.Instances, time.Since(start))
			os.WriteFile(done, nil, 0o644)
		}
		sqliteX, sqliteS = x, s
	})
	if sqliteX == nil {
		b.Fatal("sqlite setup failed")
	}
	return sqliteX, sqliteS
}

func openPG(b *testing.B, cfg indexgen.Config) (*pgindex.Index, *indexgen.Sample) {
	dsn := os.Getenv("PACS_TEST_POSTGRES_DSN")
	if dsn == "" {
		b.Skip("PACS_TEST_POSTGRES_DSN not set (eval \"$(scripts/postgres.sh env)\")")
	}
	pgOnce.Do(func() {
		ctx := context.Background()
		schema := fmt.Sprintf("bench_%d", cfg.Instances)
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(ctx)
		var done bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = 'bench_done')`, schema).Scan(&done); err != nil {
			b.Fatal(err)
		}
		if !done {
			if _, err := conn.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;
				DROP SCHEMA IF EXISTS `+schema+` CASCADE; CREATE SCHEMA `+schema); err != nil {
				b.Fatal(err)
			}
		}
		u, err := url.Parse(dsn)
		if err != nil {
			b.Fatal(err)
		}
		q := u.Query()
		q.Set("search_path", schema+",public")
		q.Set("pool_max_conns", "20")
		u.RawQuery = q.Encode()
		x, err := pgindex.Open(ctx, u.String())
		if err != nil {
			b.Fatal(err)
		}
		var s *indexgen.Sample
		if done {
			s, err = indexgen.Generate(cfg, func(*storage.Instance) error { return nil })
		} else {
			start := time.Now()
			s, err = indexgen.Fill(ctx, x, cfg, 4, logProgress(b, "postgres", cfg.Instances))
			if err == nil {
				b.Logf("postgres: filled %d instances in %v", s.Instances, time.Since(start))
				for _, stmt := range []string{`SET search_path = ` + schema, `VACUUM ANALYZE`, `CREATE TABLE bench_done ()`} {
					if err == nil {
						_, err = conn.Exec(ctx, stmt)
					}
				}
			}
		}
		if err != nil {
			b.Fatal(err)
		}
		pgX, pgS = x, s
	})
	if pgX == nil {
		b.Fatal("postgres setup failed")
	}
	return pgX, pgS
}

type form struct {
	name string
	// query returns the i-th query of the form (values rotate through
	// the sample so caches see a realistic spread).
	query func(s *indexgen.Sample, i int) storage.Query
}

// QIDO forms as viewers and RIS send them; study-level searches carry
// limit=100 (OHIF asks for 101).
var forms = []form{
	{"PatientNamePrefix", func(s *indexgen.Sample, i int) storage.Query {
		name := indexgen.FamilyNames[i%len(indexgen.FamilyNames)]
		return storage.Query{Level: storage.LevelStudy, Limit: 100, Matches: []storage.Match{{Tag: storage.TagPatientName, Value: string([]rune(name)[:3]) + "*"}}}
	}},
	{"PatientNameFuzzy", func(s *indexgen.Sample, i int) storage.Query {
		name := indexgen.FamilyNames[i%len(indexgen.FamilyNames)]
		return storage.Query{Level: storage.LevelStudy, Limit: 100, FuzzyMatching: true, Matches: []storage.Match{{Tag: storage.TagPatientName, Value: strings.ToLower(name)}}}
	}},
	{"PatientID", func(s *indexgen.Sample, i int) storage.Query {
		return storage.Query{Level: storage.LevelStudy, Limit: 100, Matches: []storage.Match{{Tag: storage.TagPatientID, Value: s.PatientIDs[i%len(s.PatientIDs)]}}}
	}},
	{"StudyDateRange", func(s *indexgen.Sample, i int) storage.Query {
		d := time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, i%119, 0)
		return storage.Query{Level: storage.LevelStudy, Limit: 100, Matches: []storage.Match{{Tag: storage.TagStudyDate,
			Value: d.Format("20060102") + "-" + d.AddDate(0, 1, -1).Format("20060102")}}}
	}},
	{"ModalitiesInStudy", func(s *indexgen.Sample, i int) storage.Query {
		mods := []string{"CT", "MR", "CR", "US", "DX", "PT"}
		return storage.Query{Level: storage.LevelStudy, Limit: 100, Matches: []storage.Match{{Tag: storage.TagModalitiesInStudy, Value: mods[i%len(mods)]}}}
	}},
	{"ModalityAndDate", func(s *indexgen.Sample, i int) storage.Query {
		d := time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, i%119, 0)
		return storage.Query{Level: storage.LevelStudy, Limit: 100, Matches: []storage.Match{
			{Tag: storage.TagModalitiesInStudy, Value: "PT"},
			{Tag: storage.TagStudyDate, Value: d.Format("20060102") + "-" + d.AddDate(0, 1, -1).Format("20060102")}}}
	}},
	{"AccessionNumber", func(s *indexgen.Sample, i int) storage.Query {
		return storage.Query{Level: storage.LevelStudy, Limit: 100, Matches: []storage.Match{{Tag: storage.TagAccessionNumber, Value: s.AccessionNumbers[i%len(s.AccessionNumbers)]}}}
	}},
	{"SeriesInStudy", func(s *indexgen.Sample, i int) storage.Query {
		return storage.Query{Level: storage.LevelSeries, StudyInstanceUID: s.Studies[i%len(s.Studies)]}
	}},
	{"InstancesInSeries", func(s *indexgen.Sample, i int) storage.Query {
		se := s.Series[i%len(s.Series)]
		return storage.Query{Level: storage.LevelInstance, StudyInstanceUID: se[0], SeriesInstanceUID: se[1]}
	}},
}

// BenchmarkQIDO runs every form at concurrency 1 and 16 and reports the
// latency percentiles (p50-ms, p99-ms) and queries/s besides ns/op.
func BenchmarkQIDO(b *testing.B) {
	cfg := benchConfig(b)
	for _, backend := range []struct {
		name string
		open func(*testing.B) (storage.Index, *indexgen.Sample)
	}{
		{"sqlite", func(b *testing.B) (storage.Index, *indexgen.Sample) { return openSQLite(b, cfg) }},
		{"postgres", func(b *testing.B) (storage.Index, *indexgen.Sample) { return openPG(b, cfg) }},
	} {
		b.Run(backend.name, func(b *testing.B) {
			x, s := backend.open(b)
			for _, f := range forms {
				for _, conc := range []int{1, 16} {
					b.Run(fmt.Sprintf("%s/c%d", f.name, conc), func(b *testing.B) { runForm(b, x, s, f, conc) })
				}
			}
		})
	}
}

func runForm(b *testing.B, x storage.Index, s *indexgen.Sample, f form, conc int) {
	ctx := context.Background()
	// The QIDO-RS layer omits the representative metadata unless an
	// includefield needs it; PACS_BENCH_QIDO_METADATA=1 asks for it.
	omit := os.Getenv("PACS_BENCH_QIDO_METADATA") != "1"
	var (
		mu   sync.Mutex
		lat  []time.Duration
		next atomic.Int64
		rows atomic.Int64
	)
	do := func(local *[]time.Duration) {
		i := int(next.Add(1))
		q := f.query(s, i)
		q.OmitMetadata = omit
		start := time.Now()
		res, err := x.Search(ctx, q)
		if err != nil {
			b.Error(err)
			return
		}
		*local = append(*local, time.Since(start))
		rows.Add(int64(len(res)))
	}
	start := time.Now()
	if conc == 1 {
		for b.Loop() {
			do(&lat)
		}
	} else {
		b.SetParallelism((conc + 1) / 2) // × GOMAXPROCS (2 here) goroutines
		b.RunParallel(func(pb *testing.PB) {
			var local []time.Duration
			for pb.Next() {
				do(&local)
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		})
	}
	elapsed := time.Since(start)
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / 1e6
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "q/s")
	b.ReportMetric(float64(rows.Load())/float64(len(lat)), "rows/op")
}

// TestExplain prints PostgreSQL's plans of the benchmark forms on the
// benchmark archive (go test -run TestExplain -v with
// PACS_TEST_POSTGRES_DSN and PACS_BENCH_EXPLAIN=1).
func TestExplain(t *testing.T) {
	if os.Getenv("PACS_BENCH_EXPLAIN") != "1" {
		t.Skip("set PACS_BENCH_EXPLAIN=1")
	}
	dsn := os.Getenv("PACS_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("PACS_TEST_POSTGRES_DSN not set")
	}
	cfg := benchConfig(t)
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	var done bool
	err = conn.QueryRow(t.Context(), `SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = 'bench_done')`,
		fmt.Sprintf("bench_%d", cfg.Instances)).Scan(&done)
	conn.Close(t.Context())
	if err != nil || !done {
		t.Skipf("no filled benchmark archive of %d instances (run BenchmarkQIDO first): %v", cfg.Instances, err)
	}
	u, _ := url.Parse(dsn)
	q := u.Query()
	q.Set("search_path", fmt.Sprintf("bench_%d,public", cfg.Instances))
	u.RawQuery = q.Encode()
	x, err := pgindex.Open(t.Context(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	s, err := indexgen.Generate(cfg, func(*storage.Instance) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range forms {
		q := f.query(s, 0)
		q.OmitMetadata = os.Getenv("PACS_BENCH_QIDO_METADATA") != "1"
		plan, err := x.Explain(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("=== %s\n%s", f.name, plan)
	}
}
