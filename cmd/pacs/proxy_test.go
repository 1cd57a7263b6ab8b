package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// --trusted-proxies: forwarding headers from a trusted peer name the
// client's address (in the log) and the host and scheme of the URLs in
// responses; from any other peer, the default, they change nothing.
func TestServe_trustedProxies(t *testing.T) {
	file := corpus(t, "study/s02_ct/*.dcm")[0]
	for _, c := range []struct {
		name         string
		args         []string
		wantBase     func(s *server) string
		wantClientIP string
	}{
		{"untrusted by default", nil, func(s *server) string { return s.base + "/dicom-web/" }, "127.0.0.1"},
		{"other proxies trusted", []string{"--trusted-proxies", "10.0.0.0/8"}, func(s *server) string { return s.base + "/dicom-web/" }, "127.0.0.1"},
		{"loopback trusted", []string{"--trusted-proxies", "10.0.0.0/8, 127.0.0.1"}, func(*server) string { return "https://pacs.example.org/dicom-web/" }, "203.0.113.7"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := startServer(t, nil, append([]string{"--data", t.TempDir()}, c.args...)...)
			body, ctype := stowBody(t, file)
			req, _ := http.NewRequest("POST", srv.base+"/dicom-web/studies", bytes.NewReader(body))
			req.Header.Set("Content-Type", ctype)
			req.Header.Set("X-Forwarded-Host", "pacs.example.org")
			req.Header.Set("X-Forwarded-Proto", "https")
			req.Header.Set("X-Forwarded-For", "203.0.113.7")
			req.Header.Set("X-Request-ID", "proxy-test-1")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			var resp map[string]map[string]any
			if res.StatusCode != 200 || json.Unmarshal(b, &resp) != nil {
				t.Fatalf("STOW: %d %s", res.StatusCode, b)
			}
			url, _ := resp["00081190"]["Value"].([]any)[0].(string)
			if want := c.wantBase(srv); !strings.HasPrefix(url, want) {
				t.Errorf("RetrieveURL %q, want it under %q", url, want)
			}
			srv.stop(t)
			client := ""
			for line := range strings.SplitSeq(srv.logText(), "\n") {
				var l struct {
					Msg, Client string
					ID          string `json:"request_id"`
				}
				if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "request" && l.ID == "proxy-test-1" {
					client = l.Client
				}
			}
			if client != c.wantClientIP {
				t.Errorf("request logged with client %q, want %q", client, c.wantClientIP)
			}
		})
	}
}
