package s3blob

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/cloudpacs/pacs/internal/storage"
)

var _ storage.BlobStore = (*Store)(nil)

const (
	// MinPartSize is the smallest part S3 accepts (all parts but the last).
	MinPartSize = 5 << 20
	// DefaultPartSize is the part size when Config.PartSize is 0.
	DefaultPartSize = 8 << 20
	// DefaultConcurrency is the number of parts in flight per upload.
	DefaultConcurrency = 4
	// DefaultMaxAttempts is the number of tries per request.
	DefaultMaxAttempts = 5
	// maxParts is the S3 limit of parts per multipart upload.
	maxParts = 10_000
	// cleanupTimeout bounds an abort that runs after the caller's ctx is gone.
	cleanupTimeout = 30 * time.Second
	// metaSHA256 is the user metadata key (x-amz-meta-sha256) holding the
	// lower-case hex SHA-256 of a single-PUT object.
	metaSHA256 = "sha256"
)

// Server-side encryption modes for Config.SSE.
const (
	SSES3  = "AES256"
	SSEKMS = "aws:kms"
)

// Config configures a Store. Only Bucket is required; see the package doc
// for what each field means and its default.
type Config struct {
	Bucket string
	Prefix string // key prefix; a trailing "/" is added when missing

	Endpoint  string // empty: AWS, or AWS_ENDPOINT_URL[_S3]
	Region    string // empty: the AWS chain, else us-east-1
	PathStyle bool

	SSE            string // "", SSES3 or SSEKMS
	SSEKMSKeyID    string
	SSECustomerKey []byte // 32 bytes: SSE-C; excludes SSE

	// Credentials overrides the AWS credential chain (nil: the chain).
	Credentials aws.CredentialsProvider

	PartSize    int64 // 0: DefaultPartSize; at least MinPartSize
	Concurrency int   // 0: DefaultConcurrency
	MaxAttempts int   // 0: DefaultMaxAttempts
}

// Store is a storage.BlobStore on one bucket (and key prefix).
type Store struct {
	client   *s3.Client
	bucket   string
	prefix   string
	partSize int64
	conc     int
	sse      types.ServerSideEncryption
	kmsKeyID *string
	// SSE-C: algorithm, base64 key and base64 MD5 of the key, sent on
	// every request that touches object data.
	ssecAlg, ssecKey, ssecMD5 *string
	// partBufs recycles part buffers of multipart uploads.
	partBufs chan []byte
}

// New returns a store for cfg. It does not contact the server; call Ping
// to check it is reachable.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3blob: no bucket")
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = DefaultPartSize
	}
	if cfg.PartSize < MinPartSize {
		return nil, fmt.Errorf("s3blob: part size %d below the S3 minimum of %d", cfg.PartSize, MinPartSize)
	}
	if cfg.PartSize > 1<<30 {
		return nil, fmt.Errorf("s3blob: part size %d above 1 GiB", cfg.PartSize)
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Concurrency < 1 || cfg.Concurrency > 64 {
		return nil, fmt.Errorf("s3blob: concurrency %d not in 1..64", cfg.Concurrency)
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.MaxAttempts < 1 {
		return nil, fmt.Errorf("s3blob: max attempts %d below 1", cfg.MaxAttempts)
	}
	s := &Store{
		bucket:   cfg.Bucket,
		prefix:   cfg.Prefix,
		partSize: cfg.PartSize,
		conc:     cfg.Concurrency,
		partBufs: make(chan []byte, cfg.Concurrency+1),
	}
	if s.prefix != "" && !strings.HasSuffix(s.prefix, "/") {
		s.prefix += "/"
	}
	if s.prefix != "" {
		if err := storage.CheckKey(strings.TrimSuffix(s.prefix, "/")); err != nil {
			return nil, fmt.Errorf("s3blob: prefix: %w", err)
		}
	}
	switch cfg.SSE {
	case "":
	case SSES3:
		s.sse = types.ServerSideEncryptionAes256
	case SSEKMS:
		s.sse = types.ServerSideEncryptionAwsKms
		if cfg.SSEKMSKeyID != "" {
			s.kmsKeyID = aws.String(cfg.SSEKMSKeyID)
		}
	default:
		return nil, fmt.Errorf("s3blob: sse %q: want %s or %s", cfg.SSE, SSES3, SSEKMS)
	}
	if cfg.SSEKMSKeyID != "" && cfg.SSE != SSEKMS {
		return nil, errors.New("s3blob: sse_kms_key_id needs sse=aws:kms")
	}
	if cfg.SSECustomerKey != nil {
		if len(cfg.SSECustomerKey) != 32 {
			return nil, fmt.Errorf("s3blob: SSE-C key has %d bytes, want 32", len(cfg.SSECustomerKey))
		}
		if cfg.SSE != "" {
			return nil, errors.New("s3blob: SSE-C excludes sse")
		}
		sum := md5.Sum(cfg.SSECustomerKey)
		s.ssecAlg = aws.String("AES256")
		s.ssecKey = aws.String(base64.StdEncoding.EncodeToString(cfg.SSECustomerKey))
		s.ssecMD5 = aws.String(base64.StdEncoding.EncodeToString(sum[:]))
	}

	// The HTTP client goes through config.WithHTTPClient as a
	// BuildableClient, so that LoadDefaultConfig can still add
	// AWS_CA_BUNDLE to it (a plain *http.Client makes that fail).
	httpClient := awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) {
			d.Timeout = 5 * time.Second
			d.KeepAlive = 30 * time.Second
		}).
		WithTransportOptions(func(tr *http.Transport) {
			tr.MaxIdleConns = 256
			tr.MaxIdleConnsPerHost = 256 // many small PUTs at once reuse connections
			tr.IdleConnTimeout = 90 * time.Second
			tr.ResponseHeaderTimeout = 30 * time.Second
		}).
		WithReadTimeout(60 * time.Second)
	opts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(httpClient),
		config.WithLogger(logging.Nop{}),
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(cfg.Credentials))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3blob: aws config: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	s.client = s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		o.Logger = logging.Nop{} // "Response has no supported checksum" on every ranged GET otherwise
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		o.ContinueHeaderThresholdBytes = -1 // no Expect: 100-continue round trip per part
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = cfg.MaxAttempts
			so.MaxBackoff = 2 * time.Second
			// Each request gets its own bounded tries; a shared retry
			// quota would make one bad minute fail unrelated requests.
			so.RateLimiter = ratelimit.None
		})
	})
	return s, nil
}

// Client is the underlying S3 client (tests, tools).
func (s *Store) Client() *s3.Client { return s.client }

// Bucket is the store's bucket.
func (s *Store) Bucket() string { return s.bucket }

// Prefix is the key prefix of every object ("" or ending in "/").
func (s *Store) Prefix() string { return s.prefix }

func (s *Store) objectKey(key string) (*string, error) {
	if err := storage.CheckKey(key); err != nil {
		return nil, err
	}
	return aws.String(s.prefix + key), nil
}

// classify returns the storage sentinel err stands for, or nil.
func classify(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		// The caller's ctx ended; our own timeouts are transport timeouts
		// (net.Error) and land below.
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return nil
		}
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchBucket":
			return storage.ErrUnavailable // misconfigured, not a missing object
		case "NoSuchKey", "NotFound":
			return storage.ErrNotFound
		case "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "RequestTimeTooSkewed":
			return storage.ErrUnavailable
		}
	}
	// No answer at all (refused, reset, timed out): the SDK reports it
	// as a ResponseError with status 0 around a RequestSendError.
	var se *smithyhttp.RequestSendError
	var ne net.Error
	if errors.As(err, &se) || errors.As(err, &ne) {
		return storage.ErrUnavailable
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		switch code := re.HTTPStatusCode(); {
		case code == http.StatusNotFound:
			// HEAD has no body, so a missing bucket looks like this too;
			// Ping (HeadBucket) tells them apart.
			return storage.ErrNotFound
		case code >= 500:
			return storage.ErrUnavailable
		}
	}
	return nil
}

// wrap makes err "s3blob: op key: [sentinel: ]err".
func wrap(op, key string, err error) error {
	if sentinel := classify(err); sentinel != nil {
		return fmt.Errorf("s3blob: %s %q: %w: %w", op, key, sentinel, err)
	}
	return fmt.Errorf("s3blob: %s %q: %w", op, key, err)
}

func isStatus(err error, code int) bool {
	var re *smithyhttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == code
}

// withPayloadSHA256 hands the SHA-256 we already computed to the SigV4
// signer, so the SDK does not hash the body again to sign it.
func withPayloadSHA256(sum []byte) func(*s3.Options) {
	h := hex.EncodeToString(sum)
	return func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(middleware.InitializeMiddlewareFunc("pacsPayloadSHA256",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (
					middleware.InitializeOutput, middleware.Metadata, error,
				) {
					return next.HandleInitialize(v4.SetPayloadHash(ctx, h), in)
				}), middleware.After)
		})
	}
}

// Open reads [off, off+n) of key with a ranged GET; the body streams
// straight from the server. A range past the end is cut at the end.
func (s *Store) Open(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	k, err := s.objectKey(key)
	if err != nil {
		return nil, fmt.Errorf("s3blob: open: %w", err)
	}
	off = max(off, 0)
	if n == 0 {
		// An empty range cannot be asked for; still report a missing key.
		if _, err := s.Stat(ctx, key); err != nil {
			return nil, err
		}
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	in := &s3.GetObjectInput{
		Bucket:               &s.bucket,
		Key:                  k,
		SSECustomerAlgorithm: s.ssecAlg,
		SSECustomerKey:       s.ssecKey,
		SSECustomerKeyMD5:    s.ssecMD5,
	}
	switch {
	case n > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	case off > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", off))
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		if isStatus(err, http.StatusRequestedRangeNotSatisfiable) {
			// The key exists (else 404) and off is at or past its end.
			return io.NopCloser(bytes.NewReader(nil)), nil
		}
		return nil, wrap("open", key, err)
	}
	return out.Body, nil
}

// Stat reports size and modification time of key (HeadObject).
func (s *Store) Stat(ctx context.Context, key string) (storage.BlobInfo, error) {
	out, err := s.head(ctx, key)
	if err != nil {
		return storage.BlobInfo{}, err
	}
	return storage.BlobInfo{Key: key, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)}, nil
}

func (s *Store) head(ctx context.Context, key string) (*s3.HeadObjectOutput, error) {
	k, err := s.objectKey(key)
	if err != nil {
		return nil, fmt.Errorf("s3blob: stat: %w", err)
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket:               &s.bucket,
		Key:                  k,
		SSECustomerAlgorithm: s.ssecAlg,
		SSECustomerKey:       s.ssecKey,
		SSECustomerKeyMD5:    s.ssecMD5,
	})
	if err != nil {
		return nil, wrap("stat", key, err)
	}
	return out, nil
}

// SHA256Metadata returns the whole-object SHA-256 (lower-case hex) stored
// with key at write time, or "" for objects that have none (multipart
// objects, objects written by other tools). It is a cheap hint for tools;
// verification re-reads the object.
func (s *Store) SHA256Metadata(ctx context.Context, key string) (string, error) {
	out, err := s.head(ctx, key)
	if err != nil {
		return "", err
	}
	return out.Metadata[metaSHA256], nil
}

// Delete removes key; a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	k, err := s.objectKey(key)
	if err != nil {
		return fmt.Errorf("s3blob: delete: %w", err)
	}
	_, err = s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: k})
	if err != nil && !errors.Is(classify(err), storage.ErrNotFound) {
		return wrap("delete", key, err)
	}
	return nil
}

// List calls fn for each key under prefix in key order (ListObjectsV2,
// 1,000 keys a page). fn may delete the keys it is given.
func (s *Store) List(ctx context.Context, prefix string, fn func(storage.BlobInfo) error) error {
	p := paginatorFor(s, prefix)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return wrap("list", prefix, err)
		}
		for _, obj := range page.Contents {
			key, ok := strings.CutPrefix(aws.ToString(obj.Key), s.prefix)
			if !ok || storage.CheckKey(key) != nil {
				continue // not ours (e.g. a "folder" marker written by another tool)
			}
			if err := fn(storage.BlobInfo{Key: key, Size: aws.ToInt64(obj.Size), ModTime: aws.ToTime(obj.LastModified)}); err != nil {
				return err
			}
		}
	}
	return nil
}

func paginatorFor(s *Store, prefix string) *s3.ListObjectsV2Paginator {
	return s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: &s.bucket,
		Prefix: aws.String(s.prefix + prefix),
	})
}

// Ping checks that the bucket is reachable with our credentials
// (HeadBucket). Any failure wraps storage.ErrUnavailable.
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket}, func(o *s3.Options) {
		o.RetryMaxAttempts = 2 // readiness wants a quick answer
	})
	if err != nil {
		return fmt.Errorf("s3blob: ping bucket %q: %w: %w", s.bucket, storage.ErrUnavailable, err)
	}
	return nil
}

// getPartBuf returns an empty buffer with capacity partSize.
func (s *Store) getPartBuf() []byte {
	select {
	case b := <-s.partBufs:
		return b[:0]
	default:
		return make([]byte, 0, s.partSize)
	}
}

// putPartBuf keeps b for reuse if it is a full-size part buffer.
func (s *Store) putPartBuf(b []byte) {
	if int64(cap(b)) != s.partSize {
		return
	}
	select {
	case s.partBufs <- b:
	default:
	}
}

func sha256Sum(b []byte) []byte {
	sum := sha256.Sum256(b)
	return sum[:]
}
