package main

import (
	"io"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// The flags of the bounds against slow clients and of trusted proxies:
// defaults, the environment, flags over the environment, bad values.
func TestParseServeFlags_limitsAndProxies(t *testing.T) {
	none := func(string) string { return "" }
	cfg, err := parseServeFlags(nil, none, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.UploadIdle != time.Minute || cfg.WriteTimeout != time.Minute || cfg.MaxConns != defaultMaxConns || len(cfg.TrustedProxies) != 0 {
		t.Errorf("defaults: idle %v, write %v, max-conns %d, proxies %v", cfg.UploadIdle, cfg.WriteTimeout, cfg.MaxConns, cfg.TrustedProxies)
	}
	env := map[string]string{
		"PACS_UPLOAD_IDLE_TIMEOUT": "90s", "PACS_WRITE_TIMEOUT": "2m", "PACS_MAX_CONNS": "64",
		"PACS_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7 ,fd00::/8,::ffff:172.16.0.1",
	}
	cfg, err = parseServeFlags([]string{"--max-conns", "0", "--write-timeout", "0"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32"), netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("172.16.0.1/32")}
	if cfg.UploadIdle != 90*time.Second || cfg.WriteTimeout != 0 || cfg.MaxConns != 0 || !slices.Equal(cfg.TrustedProxies, want) {
		t.Errorf("env and flags: idle %v, write %v, max-conns %d, proxies %v", cfg.UploadIdle, cfg.WriteTimeout, cfg.MaxConns, cfg.TrustedProxies)
	}
	for _, args := range [][]string{
		{"--upload-idle-timeout", "soon"}, {"--upload-idle-timeout", "-1s"}, {"--write-timeout", "60"},
		{"--max-conns", "-1"}, {"--max-conns", "many"},
		{"--trusted-proxies", "10.0.0.0/33"}, {"--trusted-proxies", "proxy.internal"},
	} {
		if _, err := parseServeFlags(args, none, io.Discard); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
