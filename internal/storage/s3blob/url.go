package s3blob

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/dustin/go-humanize"
)

// FromURL returns a store for a URL of the form
// s3://BUCKET/PREFIX?endpoint=…&region=…&path_style=true&… (see the
// package doc for every parameter).
func FromURL(ctx context.Context, rawURL string) (*Store, error) {
	cfg, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	return New(ctx, cfg)
}

// ParseURL turns a store URL into a Config without contacting anything.
func ParseURL(rawURL string) (Config, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return Config{}, fmt.Errorf("s3blob: url: %w", err)
	}
	if u.Scheme != "s3" {
		return Config{}, fmt.Errorf("s3blob: url %q: scheme must be s3", redact(u))
	}
	if u.Host == "" {
		return Config{}, fmt.Errorf("s3blob: url %q: no bucket", redact(u))
	}
	if u.User != nil {
		return Config{}, fmt.Errorf("s3blob: url %q: credentials do not go in the URL; use the AWS chain (AWS_ACCESS_KEY_ID, profiles, roles)", redact(u))
	}
	cfg := Config{
		Bucket: u.Host,
		Prefix: strings.Trim(u.Path, "/"),
	}
	pathStyle := ""
	for name, vals := range u.Query() {
		if len(vals) != 1 {
			return Config{}, fmt.Errorf("s3blob: url: parameter %s given %d times", name, len(vals))
		}
		v := vals[0]
		switch name {
		case "endpoint":
			eu, err := url.Parse(v)
			if err != nil || (eu.Scheme != "http" && eu.Scheme != "https") || eu.Host == "" {
				return Config{}, fmt.Errorf("s3blob: url: endpoint %q: want http(s)://host[:port]", v)
			}
			cfg.Endpoint = v
		case "region":
			cfg.Region = v
		case "path_style":
			pathStyle = v
		case "sse":
			cfg.SSE = v
		case "sse_kms_key_id":
			cfg.SSEKMSKeyID = v
		case "sse_c_key":
			key, err := decodeKey(v)
			if err != nil {
				// Do not echo the key.
				return Config{}, fmt.Errorf("s3blob: url: sse_c_key is not valid base64")
			}
			if len(key) != 32 {
				return Config{}, fmt.Errorf("s3blob: url: sse_c_key has %d bytes, want 32", len(key))
			}
			cfg.SSECustomerKey = key
		case "part_size":
			n, err := humanize.ParseBytes(v)
			if err != nil {
				return Config{}, fmt.Errorf("s3blob: url: part_size %q: %w", v, err)
			}
			if n == 0 || n > 1<<30 {
				return Config{}, fmt.Errorf("s3blob: url: part_size %q: want 5MiB..1GiB", v)
			}
			cfg.PartSize = int64(n)
		case "concurrency":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return Config{}, fmt.Errorf("s3blob: url: concurrency %q: want a positive integer", v)
			}
			cfg.Concurrency = n
		case "max_attempts":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return Config{}, fmt.Errorf("s3blob: url: max_attempts %q: want a positive integer", v)
			}
			cfg.MaxAttempts = n
		default:
			return Config{}, fmt.Errorf("s3blob: url: unknown parameter %q", name)
		}
	}
	switch pathStyle {
	case "":
		cfg.PathStyle = cfg.Endpoint != ""
	default:
		b, err := strconv.ParseBool(pathStyle)
		if err != nil {
			return Config{}, fmt.Errorf("s3blob: url: path_style %q: want true or false", pathStyle)
		}
		cfg.PathStyle = b
	}
	return cfg, nil
}

// redact drops user info and the query (which may hold an SSE-C key) from
// a URL for error messages.
func redact(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	return c.String()
}

// decodeKey accepts standard and URL-safe base64, padded or not, and a
// "+" that URL query decoding turned into a space.
func decodeKey(v string) ([]byte, error) {
	v = strings.ReplaceAll(v, " ", "+")
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		var b []byte
		if b, err = enc.DecodeString(v); err == nil {
			return b, nil
		}
	}
	return nil, err
}
