// Package testenv gives tests the real services `make test` starts (an
// S3-compatible server, PostgreSQL) and the rule for what a missing one
// means: a skip on a developer's quick run, a failure when the run
// requires its services (PACS_TEST_REQUIRE_TOOLS=1 or
// PACS_TEST_REQUIRE_SERVICES=1, as `make test` sets, or CI=true), so that a
// missing service never passes silently.
//
// Only tests import this package.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"

	"github.com/cloudpacs/pacs/internal/storage"
	"github.com/cloudpacs/pacs/internal/storage/pgindex"
	"github.com/cloudpacs/pacs/internal/storage/s3blob"
)

// Required reports whether a missing tool or service fails the run.
func Required() bool {
	return os.Getenv("PACS_TEST_REQUIRE_SERVICES") == "1" ||
		os.Getenv("PACS_TEST_REQUIRE_TOOLS") == "1" ||
		os.Getenv("CI") == "true"
}

// Missing skips the test, or fails it when services are required.
func Missing(tb testing.TB, what string) {
	tb.Helper()
	if Required() {
		tb.Fatalf("%s (required in this run: `make test` starts it)", what)
	}
	tb.Skip(what)
}

// RandHex returns n random bytes in hex.
func RandHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

var (
	bucketOnce sync.Once
	bucket     string
	bucketErr  error
)

// S3Endpoint returns PACS_TEST_S3_ENDPOINT or skips/fails.
func S3Endpoint(tb testing.TB) string {
	tb.Helper()
	ep := os.Getenv("PACS_TEST_S3_ENDPOINT")
	if ep == "" {
		Missing(tb, `PACS_TEST_S3_ENDPOINT not set; start a server with: eval "$(scripts/s3.sh start)"`)
	}
	return ep
}

// S3URL returns an s3:// blob URL on a fresh prefix of a bucket created
// once per test binary; the objects under the prefix are deleted when the
// test ends (the bucket is left to the server's lifetime: the test
// server's data lives in a temporary folder).
func S3URL(tb testing.TB) string {
	tb.Helper()
	ep := S3Endpoint(tb)
	bucketOnce.Do(func() {
		name := "pacs-e2e-" + RandHex(6)
		s, err := s3blob.New(context.Background(), s3blob.Config{Bucket: name, Endpoint: ep, PathStyle: true})
		if err != nil {
			bucketErr = err
			return
		}
		_, bucketErr = s.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &name})
		bucket = name
	})
	if bucketErr != nil {
		tb.Fatalf("creating the test bucket: %v", bucketErr)
	}
	q := url.Values{"endpoint": {ep}, "path_style": {"true"}, "region": {"us-east-1"}}
	u := "s3://" + bucket + "/t" + RandHex(6) + "?" + q.Encode()
	tb.Cleanup(func() {
		ctx := context.Background()
		s, err := s3blob.FromURL(ctx, u)
		if err != nil {
			tb.Error(err)
			return
		}
		err = s.List(ctx, "", func(bi storage.BlobInfo) error { return s.Delete(ctx, bi.Key) })
		if err != nil {
			tb.Errorf("cleaning up %s: %v", u, err)
		}
	})
	return u
}

// S3Store opens a store on a fresh prefix (see S3URL).
func S3Store(tb testing.TB) *s3blob.Store {
	tb.Helper()
	s, err := s3blob.FromURL(tb.Context(), S3URL(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

var extOnce sync.Once

// PostgresDSN returns a DSN on a fresh schema of the test database
// (PACS_TEST_POSTGRES_DSN), dropped when the test ends.
func PostgresDSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv("PACS_TEST_POSTGRES_DSN")
	if dsn == "" {
		Missing(tb, `PACS_TEST_POSTGRES_DSN not set; start a server with: eval "$(scripts/postgres.sh env)"`)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	var extErr error
	extOnce.Do(func() {
		_, extErr = conn.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public`)
	})
	if extErr != nil {
		tb.Fatal(extErr)
	}
	schema := "t_" + RandHex(6)
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			tb.Error(err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			tb.Error(err)
		}
	})
	return withSearchPath(tb, dsn, schema+",public")
}

func withSearchPath(tb testing.TB, dsn, path string) string {
	if !strings.Contains(dsn, "://") {
		return dsn + " search_path=" + path
	}
	u, err := url.Parse(dsn)
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", path)
	u.RawQuery = q.Encode()
	return u.String()
}

// PostgresIndex opens a pgindex on a fresh schema.
func PostgresIndex(tb testing.TB) *pgindex.Index {
	tb.Helper()
	idx, err := pgindex.Open(tb.Context(), PostgresDSN(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { idx.Close() })
	return idx
}
