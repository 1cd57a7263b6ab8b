// Package s3blob is a storage.BlobStore on S3-compatible object storage
// (AWS S3, Ceph RGW, SeaweedFS, versitygw, MinIO) through
// github.com/aws/aws-sdk-go-v2, using the plain S3 API only.
//
// # Configuration
//
// A store is named by a URL (the --blob flag / PACS_BLOB):
//
//	s3://BUCKET/PREFIX?endpoint=http://127.0.0.1:9000&region=us-east-1&path_style=true
//
// Every object key is PREFIX/ + the blob key; PREFIX may be empty. Query
// parameters (all optional; an unknown one is an error, so typos show):
//
//	endpoint        S3 endpoint URL. Empty: AWS (or AWS_ENDPOINT_URL[_S3]).
//	region          signing region. Empty: the AWS chain (AWS_REGION,
//	                shared config), else us-east-1.
//	path_style      true: http://host/BUCKET/key (Ceph, SeaweedFS, MinIO,
//	                versitygw); false: virtual-hosted style (AWS). Default:
//	                true when endpoint is set, false otherwise.
//	sse             server-side encryption: AES256 (SSE-S3) or aws:kms
//	                (SSE-KMS).
//	sse_kms_key_id  KMS key id or ARN for sse=aws:kms (empty: the bucket's
//	                default key).
//	sse_c_key       SSE-C: the customer key, base64 of exactly 32 bytes.
//	                The server encrypts with it and keeps only its MD5;
//	                every read sends it again, so a lost key is lost data.
//	                Excludes sse. Needs TLS on AWS.
//	part_size       multipart part size, e.g. 8MiB (default), at least
//	                5MiB (the S3 minimum). Objects up to one part go in one
//	                PUT; larger ones in parts. S3 allows 10,000 parts, so
//	                the largest object is part_size × 10,000 (78 GiB at
//	                8 MiB).
//	concurrency     parts uploaded at once per object (default 4).
//	max_attempts    tries per request, with exponential backoff and jitter
//	                (default 5).
//
// Credentials come from the standard AWS chain (config.LoadDefaultConfig):
// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN), shared
// config and credentials files (AWS_PROFILE), web identity, ECS and EC2
// instance roles. AWS_CA_BUNDLE is honoured.
//
// # Writes
//
// A writer buffers up to one part. If Commit comes first, the object goes
// in one PutObject from that buffer (a seekable body, so retries resend
// it). Otherwise the writer starts a multipart upload and sends each part
// as it fills, at most `concurrency` at a time, so an upload holds at most
// part_size × (concurrency+1) bytes whatever the object size, and parts
// flow while the body is still arriving. Commit completes the upload;
// Abort, a failed part or a cancelled ctx aborts it on the server
// (AbortMultipartUpload, with a context that outlives the cancelled one,
// repeated up to 5 times until ListParts no longer finds the upload: a
// part still in flight can land after an abort, as AWS documents), so no
// orphaned upload is left behind. A crash of the process can still
// leave one: give production buckets a lifecycle rule
// AbortIncompleteMultipartUpload (1 day).
//
// Writes are unconditional (no If-None-Match): the BlobStore contract lets
// a Create replace an object (thumbnails are rewritten), and instance keys
// are 128-bit random, so a collision does not happen in practice.
//
// # Integrity
//
// Every PUT and every part carries its SHA-256 (x-amz-checksum-sha256),
// which the server checks before it accepts the bytes; the same hash
// signs the request, so each byte is hashed once on the client. A
// single-PUT object also carries the SHA-256 of the whole object as user
// metadata x-amz-meta-sha256 (lower-case hex). A multipart object cannot:
// metadata is fixed when the upload starts, before the bytes are known,
// and the server's own checksum of a multipart object is a composite
// "<base64>-N" of the part hashes, not a whole-object hash. For every
// object the whole-object SHA-256 lives in the index (Instance.SHA256);
// the verify path re-reads the object and rehashes (see SHA256Metadata).
//
// Responses are not checksum-validated on read (ResponseChecksumValidation
// WhenRequired): frames are ranged reads, which carry no checksum, and a
// whole-object check at the end of a stream comes after the bytes are
// sent. Verification is the verify path's job.
//
// # Faults
//
// Each request is tried up to max_attempts times with exponential backoff
// (at most 2 s between tries) on connection errors, timeouts, 5xx and
// throttling (503 SlowDown). Connections time out after 5 s, response
// headers after 30 s, a stalled read of a body after 60 s; there is no
// overall deadline (a multi-GB stream takes what it takes): the caller's
// ctx bounds a request. Connection failures and 5xx after the last try
// wrap storage.ErrUnavailable; NoSuchKey and 404 are storage.ErrNotFound;
// a missing bucket is ErrUnavailable (a misconfiguration, not a missing
// object) where the server says so in a body: a HEAD (Stat) has no body,
// so there a missing bucket reads as ErrNotFound; Ping (HeadBucket, what
// /readyz calls) reports it as ErrUnavailable. Retried non-idempotent
// calls are harmless here: a lost CreateMultipartUpload answer leaves an
// upload that the lifecycle rule removes.
//
// # Servers
//
// Tested against versitygw v1.8.0 (scripts/s3.sh). It accepts the SSE-C
// headers but stores the object unencrypted and serves it without the
// key, so SSE-C is untested here: check it on the real target (AWS, Ceph
// RGW) before relying on it.
package s3blob
