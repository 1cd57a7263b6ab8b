package s3blob

import "testing"

// FuzzParseURL: any blob URL gives a configuration or an error, never a
// panic; an accepted URL names a bucket.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"s3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1&path_style=true",
		"s3://b?sse=aws:kms&sse_kms_key_id=k&part_size=8MiB&concurrency=4&max_attempts=5",
		"s3://b?sse_c_key=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"s3://", "s3://b?part_size=1", "s3://user:pass@b/p", "s3://b?nonsense=1", "%zz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := ParseURL(s)
		if err == nil && cfg.Bucket == "" {
			t.Fatalf("%q: accepted without a bucket", s)
		}
	})
}
