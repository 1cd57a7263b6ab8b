package s3blob

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/cloudpacs/pacs/internal/storage"
	"github.com/cloudpacs/pacs/internal/storage/storagetest"
)

// The tests against a real server run when PACS_TEST_S3_ENDPOINT is set
// (scripts/s3.sh start prints it, with the credentials). Without it they
// skip, unless the run requires its services (PACS_TEST_REQUIRE_SERVICES=1,
// PACS_TEST_REQUIRE_TOOLS=1 as `make test` sets, or CI=true): then they
// fail, so a missing server never passes silently.

var (
	bucketOnce sync.Once
	bucketName string
	bucketErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if bucketName != "" && bucketErr == nil {
		if err := removeBucket(context.Background(), os.Getenv("PACS_TEST_S3_ENDPOINT"), bucketName); err != nil {
			fmt.Fprintf(os.Stderr, "s3blob: removing test bucket %s: %v\n", bucketName, err)
		}
	}
	os.Exit(code)
}

func requireServices() bool {
	return os.Getenv("PACS_TEST_REQUIRE_SERVICES") == "1" ||
		os.Getenv("PACS_TEST_REQUIRE_TOOLS") == "1" ||
		os.Getenv("CI") == "true"
}

// endpoint returns the test server's URL, or skips (fails when services
// are required).
func endpoint(tb testing.TB) string {
	tb.Helper()
	ep := os.Getenv("PACS_TEST_S3_ENDPOINT")
	if ep == "" {
		const msg = "PACS_TEST_S3_ENDPOINT not set; start a server with: eval \"$(scripts/s3.sh start)\""
		if requireServices() {
			tb.Fatal(msg + " (services are required in this run)")
		}
		tb.Skip(msg)
	}
	return ep
}

// testBucket creates one bucket for the whole run; each store gets a
// fresh prefix in it.
func testBucket(tb testing.TB, ep string) string {
	tb.Helper()
	bucketOnce.Do(func() {
		name := "pacs-test-" + randHex(6)
		s, err := New(context.Background(), Config{Bucket: name, Endpoint: ep, PathStyle: true})
		if err != nil {
			bucketErr = err
			return
		}
		_, bucketErr = s.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &name})
		bucketName = name
	})
	if bucketErr != nil {
		tb.Fatalf("creating the test bucket: %v", bucketErr)
	}
	return bucketName
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newTestStore returns a store on a fresh prefix of the test bucket; its
// objects and uploads are removed at the end of the test.
func newTestStore(tb testing.TB, mod func(*Config)) *Store {
	tb.Helper()
	ep := endpoint(tb)
	cfg := Config{
		Bucket:    testBucket(tb, ep),
		Prefix:    "t-" + randHex(8),
		Endpoint:  ep,
		PathStyle: true,
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx := context.WithoutCancel(context.Background())
		_ = s.List(ctx, "", func(bi storage.BlobInfo) error { return s.Delete(ctx, bi.Key) })
		for _, u := range uploads(tb, s) {
			_, _ = s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.bucket, Key: u.Key, UploadId: u.UploadId})
		}
	})
	return s
}

func removeBucket(ctx context.Context, ep, name string) error {
	s, err := New(ctx, Config{Bucket: name, Endpoint: ep, PathStyle: true})
	if err != nil {
		return err
	}
	if err := s.List(ctx, "", func(bi storage.BlobInfo) error { return s.Delete(ctx, bi.Key) }); err != nil {
		return err
	}
	_, err = s.client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &name})
	return err
}

// uploads lists the multipart uploads in progress under the store's prefix.
func uploads(tb testing.TB, s *Store) []types.MultipartUpload {
	tb.Helper()
	out, err := s.client.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{
		Bucket: &s.bucket,
		Prefix: aws.String(s.prefix),
	})
	if err != nil {
		tb.Errorf("ListMultipartUploads: %v", err)
		return nil
	}
	return out.Uploads
}

// uploadGone reports whether the server no longer knows uploadID.
func uploadGone(t *testing.T, s *Store, key, uploadID string) bool {
	t.Helper()
	_, err := s.client.ListParts(context.Background(), &s3.ListPartsInput{
		Bucket: &s.bucket, Key: aws.String(s.prefix + key), UploadId: &uploadID,
	})
	if err == nil {
		return false
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "NoSuchUpload" {
		return true
	}
	t.Fatalf("ListParts: %v", err)
	return false
}

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	_, _ = mrand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 0x53}).Read(b)
	return b
}

func writeChunks(t *testing.T, w io.Writer, data []byte, chunk int) {
	t.Helper()
	for p := data; len(p) > 0; {
		n := min(len(p), chunk)
		if _, err := w.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
}

func readAll(t *testing.T, s *Store, key string, off, n int64) []byte {
	t.Helper()
	r, err := s.Open(t.Context(), key, off, n)
	if err != nil {
		t.Fatalf("Open(%q, %d, %d): %v", key, off, n, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformance(t *testing.T) {
	endpoint(t)
	storagetest.TestBlobStore(t, func(t *testing.T) storage.BlobStore { return newTestStore(t, nil) })
}

// smallParts is the smallest legal part size, to keep multipart tests quick.
func smallParts(c *Config) { c.PartSize = MinPartSize; c.Concurrency = 2 }

func TestMultipart_roundTrip(t *testing.T) {
	s := newTestStore(t, smallParts)
	data := randomBytes(3*MinPartSize+12345, 1) // 4 parts, the last short
	w, err := s.Create(t.Context(), "instances/ab/cd/big.dcm")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	writeChunks(t, w, data, 64<<10)
	if w.(*writer).uploadID == nil {
		t.Fatal("no multipart upload started for an object of 3+ parts")
	}
	info, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(len(data)) {
		t.Fatalf("Commit size = %d, want %d", info.Size, len(data))
	}
	got := readAll(t, s, "instances/ab/cd/big.dcm", 0, -1)
	if !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, differ from the %d written", len(got), len(data))
	}
	// Ranges across part boundaries.
	for _, r := range [][2]int64{
		{MinPartSize - 10, 20},
		{2*MinPartSize - 1, MinPartSize + 2},
		{3*MinPartSize + 12000, 1000}, // cut at the end
		{0, 1},
		{int64(len(data)) - 1, -1},
	} {
		end := min(int64(len(data)), r[0]+r[1])
		if r[1] < 0 {
			end = int64(len(data))
		}
		if got := readAll(t, s, "instances/ab/cd/big.dcm", r[0], r[1]); !bytes.Equal(got, data[r[0]:end]) {
			t.Errorf("Open(%d, %d): %d bytes, want data[%d:%d]", r[0], r[1], len(got), r[0], end)
		}
	}
	if u := uploads(t, s); len(u) != 0 {
		t.Errorf("uploads left after Commit: %d", len(u))
	}
	// Multipart objects carry no whole-object hash (see the package doc).
	if h, err := s.SHA256Metadata(t.Context(), "instances/ab/cd/big.dcm"); err != nil || h != "" {
		t.Errorf("SHA256Metadata(multipart) = %q, %v; want none", h, err)
	}
}

func TestSinglePut_sha256Metadata(t *testing.T) {
	s := newTestStore(t, nil)
	data := randomBytes(40_000, 2)
	w, err := s.Create(t.Context(), "instances/00/11/small.dcm")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	writeChunks(t, w, data, 4096)
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	h, err := s.SHA256Metadata(t.Context(), "instances/00/11/small.dcm")
	if err != nil || h != hex.EncodeToString(sum[:]) {
		t.Fatalf("SHA256Metadata = %q, %v; want %x", h, err, sum)
	}
}

func TestMultipart_abortLeavesNoUpload(t *testing.T) {
	s := newTestStore(t, smallParts)
	w, err := s.Create(t.Context(), "instances/ab/cd/aborted.dcm")
	if err != nil {
		t.Fatal(err)
	}
	writeChunks(t, w, randomBytes(2*MinPartSize+100, 3), 1<<20)
	id := aws.ToString(w.(*writer).uploadID)
	if id == "" {
		t.Fatal("no multipart upload started")
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if !uploadGone(t, s, "instances/ab/cd/aborted.dcm", id) {
		t.Error("the upload is still on the server after Abort")
	}
	if u := uploads(t, s); len(u) != 0 {
		t.Errorf("ListMultipartUploads after Abort: %d uploads", len(u))
	}
	if _, err := s.Stat(t.Context(), "instances/ab/cd/aborted.dcm"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat after Abort = %v, want ErrNotFound", err)
	}
}

func TestMultipart_cancelMidStreamAborts(t *testing.T) {
	s := newTestStore(t, smallParts)
	ctx, cancel := context.WithCancel(t.Context())
	w, err := s.Create(ctx, "instances/ab/cd/cancelled.dcm")
	if err != nil {
		t.Fatal(err)
	}
	writeChunks(t, w, randomBytes(2*MinPartSize+100, 4), 1<<20)
	id := aws.ToString(w.(*writer).uploadID)
	if id == "" {
		t.Fatal("no multipart upload started")
	}
	cancel() // the client went away; nobody calls Abort yet
	deadline := time.Now().Add(10 * time.Second)
	for !uploadGone(t, s, "instances/ab/cd/cancelled.dcm", id) {
		if time.Now().After(deadline) {
			t.Fatal("upload not aborted 10 s after ctx cancel")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := w.Write([]byte("more")); err == nil {
		t.Error("Write after cancel succeeded")
	}
	if _, err := w.Commit(); err == nil {
		t.Error("Commit after cancel succeeded")
	}
	if err := w.Abort(); err != nil {
		t.Errorf("Abort after cancel = %v", err)
	}
	if _, err := s.Stat(t.Context(), "instances/ab/cd/cancelled.dcm"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat after cancel = %v, want ErrNotFound", err)
	}
}

func TestOpen_invalidKey(t *testing.T) {
	s, err := New(t.Context(), Config{Bucket: "b", Endpoint: "http://127.0.0.1:1", PathStyle: true, Credentials: fakeCreds})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"", "/abs", "a/../b", "a//b", `a\b`} {
		if _, err := s.Open(t.Context(), k, 0, -1); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Open(%q) = %v, want ErrInvalidKey", k, err)
		}
		if _, err := s.Create(t.Context(), k); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Create(%q) = %v, want ErrInvalidKey", k, err)
		}
	}
}

// fakeCreds keeps tests against fake servers off the AWS credential chain.
var fakeCreds = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test", Source: "test"}, nil
})

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestServerDown_unavailable(t *testing.T) {
	s, err := New(t.Context(), Config{Bucket: "down", Endpoint: "http://" + closedPort(t), PathStyle: true, Credentials: fakeCreds})
	if err != nil {
		t.Fatal(err)
	}
	const bound = 15 * time.Second // 5 tries, at most 2 s apart
	check := func(op string, f func() error) {
		t.Helper()
		start := time.Now()
		err := f()
		if !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("%s = %v, want ErrUnavailable", op, err)
		}
		if d := time.Since(start); d > bound {
			t.Errorf("%s took %v, want under %v", op, d, bound)
		}
	}
	ctx := t.Context()
	var wg sync.WaitGroup
	for _, tc := range []struct {
		op string
		f  func() error
	}{
		{"Ping", func() error { return s.Ping(ctx) }},
		{"Stat", func() error { _, err := s.Stat(ctx, "instances/a/b.dcm"); return err }},
		{"Open", func() error { _, err := s.Open(ctx, "instances/a/b.dcm", 10, 10); return err }},
		{"Delete", func() error { return s.Delete(ctx, "instances/a/b.dcm") }},
		{"List", func() error { return s.List(ctx, "", func(storage.BlobInfo) error { return nil }) }},
		{"Commit", func() error {
			w, err := s.Create(ctx, "instances/a/b.dcm")
			if err != nil {
				return err
			}
			defer w.Abort()
			if _, err := w.Write([]byte("x")); err != nil {
				return err
			}
			_, err = w.Commit()
			return err
		}},
	} {
		wg.Go(func() { check(tc.op, tc.f) })
	}
	wg.Wait()
}

// A server that answers 503 SlowDown to everything: bounded retries, then
// ErrUnavailable.
func TestSlowDown_boundedRetries(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`)
	}))
	defer srv.Close()
	s, err := New(t.Context(), Config{Bucket: "b", Endpoint: srv.URL, PathStyle: true, MaxAttempts: 3, Credentials: fakeCreds})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Open(t.Context(), "instances/a/b.dcm", 0, 100)
	if err == nil {
		r.Close()
	}
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("Open = %v, want ErrUnavailable", err)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("server saw %d requests, want 3 (MaxAttempts)", n)
	}
}

func TestNoSuchBucket_unavailable(t *testing.T) {
	s, err := New(t.Context(), Config{Bucket: "pacs-missing-" + randHex(6), Endpoint: endpoint(t), PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	// GET has an error body naming NoSuchBucket (HEAD has not: Stat
	// cannot tell a missing bucket from a missing key).
	if _, err := s.Open(t.Context(), "instances/a/b.dcm", 0, -1); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Open in a missing bucket = %v, want ErrUnavailable", err)
	}
	if err := s.Ping(t.Context()); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Ping(missing bucket) = %v, want ErrUnavailable", err)
	}
}

// SSE-C: every request that writes or reads an object carries the
// customer key headers (checked in a proxy in front of the real server:
// this is what pacs controls), and the objects read back, whole and in
// ranges, small (one PUT) and multipart. Whether the server encrypts is
// the server's part: the test S3 server of make test (versitygw) accepts
// the headers and stores plaintext, which the test logs; against one that
// encrypts, the object must not read back without the key.
func TestSSEC_roundTrip(t *testing.T) {
	ep := endpoint(t)
	target, err := url.Parse(ep)
	if err != nil {
		t.Fatal(err)
	}
	key := randomBytes(32, 9)
	sum := md5.Sum(key)
	wantHdr := map[string]string{
		"X-Amz-Server-Side-Encryption-Customer-Algorithm": "AES256",
		"X-Amz-Server-Side-Encryption-Customer-Key":       base64.StdEncoding.EncodeToString(key),
		"X-Amz-Server-Side-Encryption-Customer-Key-Md5":   base64.StdEncoding.EncodeToString(sum[:]),
	}
	var (
		mu      sync.Mutex
		checked []string
		missing []string
	)
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/ssec-") && r.Method != http.MethodDelete {
			op := r.Method
			for _, q := range []string{"uploads", "uploadId", "partNumber"} {
				if r.URL.Query().Has(q) {
					op += " ?" + q
				}
			}
			mu.Lock()
			checked = append(checked, op)
			for h, v := range wantHdr {
				if r.Header.Get(h) != v {
					missing = append(missing, op+" "+r.URL.Path+": "+h)
				}
			}
			mu.Unlock()
		}
		proxy.ServeHTTP(w, r)
	}))
	defer srv.Close()
	base := newTestStore(t, nil) // bucket, prefix and clean-up
	s, err := New(t.Context(), Config{Bucket: base.bucket, Prefix: base.prefix, Endpoint: srv.URL, PathStyle: true,
		SSECustomerKey: key, PartSize: MinPartSize, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	objects := map[string][]byte{
		"instances/ab/cd/ssec-small.dcm": randomBytes(10_000, 5),
		"instances/ab/cd/ssec-large.dcm": randomBytes(2*MinPartSize+1, 6),
	}
	for k, data := range objects {
		w, err := s.Create(t.Context(), k)
		if err != nil {
			t.Fatal(err)
		}
		writeChunks(t, w, data, 64<<10)
		if _, err := w.Commit(); err != nil {
			w.Abort()
			var ae smithy.APIError
			if errors.As(err, &ae) && (ae.ErrorCode() == "NotImplemented" || strings.Contains(ae.ErrorMessage(), "not implemented")) {
				t.Logf("the server refuses SSE-C (%v); checked the headers of %q", err, checked)
				break
			}
			t.Fatal(err)
		}
		if got := readAll(t, s, k, 100, 50); !bytes.Equal(got, data[100:150]) {
			t.Fatalf("%s: SSE-C ranged read differs", k)
		}
		if got := readAll(t, s, k, 0, -1); !bytes.Equal(got, data) {
			t.Fatalf("%s: SSE-C read differs", k)
		}
		if bi, err := s.Stat(t.Context(), k); err != nil || bi.Size != int64(len(data)) {
			t.Fatalf("%s: Stat = %+v, %v", k, bi, err)
		}
		plain, err := New(t.Context(), Config{Bucket: base.bucket, Prefix: base.prefix, Endpoint: ep, PathStyle: true})
		if err != nil {
			t.Fatal(err)
		}
		if r, err := plain.Open(t.Context(), k, 0, -1); err == nil {
			b, _ := io.ReadAll(r)
			r.Close()
			if bytes.Equal(b, data) {
				t.Logf("%s: the server stores SSE-C objects in plaintext (it does not implement SSE-C)", k)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, op := range []string{"PUT", "POST ?uploads", "PUT ?uploadId ?partNumber", "POST ?uploadId", "GET", "HEAD"} {
		if !slices.Contains(checked, op) {
			t.Errorf("no %s request seen (seen: %q)", op, checked)
		}
	}
	if len(missing) > 0 {
		t.Errorf("requests without the SSE-C headers: %q", missing)
	}
}

func TestParseURL(t *testing.T) {
	key32 := "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" // bytes 0..31
	for _, tc := range []struct {
		url     string
		want    Config
		wantErr string
	}{
		{url: "s3://bucket", want: Config{Bucket: "bucket"}},
		{url: "s3://bucket/pacs/prod/", want: Config{Bucket: "bucket", Prefix: "pacs/prod"}},
		{
			url:  "s3://b/p?endpoint=http://127.0.0.1:9000&region=eu-west-1",
			want: Config{Bucket: "b", Prefix: "p", Endpoint: "http://127.0.0.1:9000", Region: "eu-west-1", PathStyle: true},
		},
		{
			url:  "s3://b?endpoint=https://s3.example.org&path_style=false",
			want: Config{Bucket: "b", Endpoint: "https://s3.example.org"},
		},
		{url: "s3://b?path_style=true", want: Config{Bucket: "b", PathStyle: true}},
		{url: "s3://b?sse=AES256", want: Config{Bucket: "b", SSE: "AES256"}},
		{url: "s3://b?sse=aws:kms&sse_kms_key_id=alias/pacs", want: Config{Bucket: "b", SSE: "aws:kms", SSEKMSKeyID: "alias/pacs"}},
		{url: "s3://b?sse_c_key=" + strings.ReplaceAll(key32, "+", "%2B"), want: Config{Bucket: "b", SSECustomerKey: seq(32)}},
		{url: "s3://b?sse_c_key=" + key32, want: Config{Bucket: "b", SSECustomerKey: seq(32)}}, // "+" read as a space
		{url: "s3://b?part_size=16MiB&concurrency=8&max_attempts=3", want: Config{Bucket: "b", PartSize: 16 << 20, Concurrency: 8, MaxAttempts: 3}},
		{url: "s3://b?part_size=5242880", want: Config{Bucket: "b", PartSize: 5 << 20}},
		{url: "file:///tmp", wantErr: "scheme"},
		{url: "s3:///prefix", wantErr: "no bucket"},
		{url: "s3://k:secret@b", wantErr: "credentials"},
		{url: "s3://b?endpint=x", wantErr: "unknown parameter"},
		{url: "s3://b?endpoint=127.0.0.1:9000", wantErr: "endpoint"},
		{url: "s3://b?path_style=maybe", wantErr: "path_style"},
		{url: "s3://b?sse_c_key=c2hvcnQ=", wantErr: "32"},
		{url: "s3://b?sse_c_key=!!!", wantErr: "base64"},
		{url: "s3://b?part_size=lots", wantErr: "part_size"},
		{url: "s3://b?concurrency=0", wantErr: "concurrency"},
		{url: "s3://b?region=a&region=b", wantErr: "2 times"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			got, err := ParseURL(tc.url)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseURL error = %v, want one mentioning %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("error leaks the URL's secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tc.want) {
				t.Errorf("ParseURL =\n %+v, want\n %+v", got, tc.want)
			}
		})
	}
}

func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func TestNew_invalidConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no bucket", Config{}},
		{"small parts", Config{Bucket: "b", PartSize: 1 << 20}},
		{"bad sse", Config{Bucket: "b", SSE: "rot13"}},
		{"kms key without kms", Config{Bucket: "b", SSEKMSKeyID: "k"}},
		{"short ssec key", Config{Bucket: "b", SSECustomerKey: []byte("short")}},
		{"ssec and sse", Config{Bucket: "b", SSE: SSES3, SSECustomerKey: seq(32)}},
		{"bad prefix", Config{Bucket: "b", Prefix: "../x"}},
	} {
		if _, err := New(t.Context(), tc.cfg); err == nil {
			t.Errorf("%s: New succeeded", tc.name)
		}
	}
}

// The write path makes no needless round trips: one PUT for a small
// object; create + one request per part + complete for a large one; one
// GET per read. (Many small instances must not be slow through S3.)
func TestRequestCounts(t *testing.T) {
	ep := endpoint(t)
	target, err := url.Parse(ep)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var reqs []string
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := r.Method
		for _, q := range []string{"uploads", "uploadId", "partNumber"} {
			if r.URL.Query().Has(q) {
				op += " ?" + q
			}
		}
		mu.Lock()
		reqs = append(reqs, op)
		mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	defer srv.Close()
	s := newTestStore(t, func(c *Config) { smallParts(c) })
	// The same bucket and prefix, through the counting proxy.
	sc, err := New(t.Context(), Config{Bucket: s.bucket, Prefix: s.prefix, Endpoint: srv.URL, PathStyle: true, PartSize: MinPartSize, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	count := func(f func()) []string {
		mu.Lock()
		reqs = nil
		mu.Unlock()
		f()
		mu.Lock()
		defer mu.Unlock()
		return slices.Sorted(slices.Values(reqs))
	}
	put := func(key string, data []byte) {
		w, err := sc.Create(t.Context(), key)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Abort()
		writeChunks(t, w, data, 32<<10)
		if _, err := w.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := count(func() { put("instances/aa/bb/small.dcm", randomBytes(40_000, 1)) }), []string{"PUT"}; !slices.Equal(got, want) {
		t.Errorf("small object: requests %q, want %q", got, want)
	}
	got := count(func() { put("instances/aa/bb/large.dcm", randomBytes(2*MinPartSize+1, 2)) })
	want := []string{"POST ?uploadId", "POST ?uploads", "PUT ?uploadId ?partNumber", "PUT ?uploadId ?partNumber", "PUT ?uploadId ?partNumber"}
	if !slices.Equal(got, want) {
		t.Errorf("3-part object: requests %q, want %q", got, want)
	}
	got = count(func() {
		r, err := sc.Open(t.Context(), "instances/aa/bb/large.dcm", 1000, 100)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, r)
		r.Close()
	})
	if want := []string{"GET"}; !slices.Equal(got, want) {
		t.Errorf("ranged read: requests %q, want %q", got, want)
	}
}

// An abort that leaves the upload behind (here: the first
// AbortMultipartUpload answered 204 but never reaches the server, as when
// a part the client gave up on lands after the abort) is noticed through
// ListParts and the abort repeated, so Abort returns with the upload
// gone.
func TestMultipart_abortRepeatedUntilGone(t *testing.T) {
	target, err := url.Parse(endpoint(t))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	aborts, swallowed := 0, 0
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete && r.URL.Query().Has("uploadId") {
			mu.Lock()
			aborts++
			first := aborts == 1
			if first {
				swallowed++
			}
			mu.Unlock()
			if first {
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	defer srv.Close()
	s := newTestStore(t, smallParts)
	sc, err := New(t.Context(), Config{Bucket: s.bucket, Prefix: s.prefix, Endpoint: srv.URL, PathStyle: true, PartSize: MinPartSize, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	w, err := sc.Create(t.Context(), "instances/ab/cd/twice.dcm")
	if err != nil {
		t.Fatal(err)
	}
	writeChunks(t, w, randomBytes(2*MinPartSize+100, 5), 1<<20)
	id := aws.ToString(w.(*writer).uploadID)
	if id == "" {
		t.Fatal("no multipart upload started")
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	n, sw := aborts, swallowed
	mu.Unlock()
	if sw != 1 || n < 2 {
		t.Errorf("%d abort requests (%d swallowed), want a second one after the first was lost", n, sw)
	}
	if !uploadGone(t, s, "instances/ab/cd/twice.dcm", id) {
		t.Error("the upload is still on the server after Abort")
	}
}
