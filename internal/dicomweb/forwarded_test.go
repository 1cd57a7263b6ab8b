package dicomweb

import (
	"crypto/tls"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/labstack/echo/v4"
)

// Forwarding headers change the base URL only when the direct peer is
// a trusted proxy.
func TestBaseURL_trustedProxies(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
	fwd := map[string]string{"X-Forwarded-Host": "pacs.example.org", "X-Forwarded-Proto": "https"}
	for _, c := range []struct {
		name    string
		trusted []netip.Prefix
		peer    string
		tls     bool
		hdr     map[string]string
		want    string
	}{
		{"no proxies trusted", nil, "10.1.2.3:5000", false, fwd, "http://pacs.internal:8080/dicom-web"},
		{"untrusted peer", proxies, "203.0.113.9:5000", false, fwd, "http://pacs.internal:8080/dicom-web"},
		{"untrusted peer over TLS", proxies, "203.0.113.9:5000", true, map[string]string{"X-Forwarded-Proto": "http"}, "https://pacs.internal:8080/dicom-web"},
		{"loopback is not trusted by default", proxies, "127.0.0.1:5000", false, fwd, "http://pacs.internal:8080/dicom-web"},
		{"trusted proxy", proxies, "10.1.2.3:5000", false, fwd, "https://pacs.example.org/dicom-web"},
		{"trusted IPv6 proxy", proxies, "[2001:db8::7]:5000", false, fwd, "https://pacs.example.org/dicom-web"},
		{"IPv4-mapped peer", proxies, "[::ffff:10.1.2.3]:5000", false, fwd, "https://pacs.example.org/dicom-web"},
		{"the nearest proxy's value counts", proxies, "10.1.2.3:5000", false,
			map[string]string{"X-Forwarded-Host": "evil.example, pacs.example.org", "X-Forwarded-Proto": "http, https"}, "https://pacs.example.org/dicom-web"},
		{"Forwarded", proxies, "10.1.2.3:5000", false,
			map[string]string{"Forwarded": `for=198.51.100.4;host="pacs.example.org:8443";proto=https`}, "https://pacs.example.org:8443/dicom-web"},
		{"X-Forwarded-Host before Forwarded", proxies, "10.1.2.3:5000", false,
			map[string]string{"X-Forwarded-Host": "a.example", "Forwarded": "host=b.example;proto=https"}, "https://a.example/dicom-web"},
		{"invalid forwarded values are ignored", proxies, "10.1.2.3:5000", false,
			map[string]string{"X-Forwarded-Host": "bad host/x", "X-Forwarded-Proto": "gopher"}, "http://pacs.internal:8080/dicom-web"},
	} {
		h := New(Config{TrustedProxies: c.trusted})
		req := httptest.NewRequest("GET", "/dicom-web/studies", nil)
		req.Host, req.RemoteAddr = "pacs.internal:8080", c.peer
		if c.tls {
			req.TLS = &tls.ConnectionState{}
		}
		for k, v := range c.hdr {
			req.Header.Set(k, v)
		}
		if got := h.baseURL(echo.New().NewContext(req, httptest.NewRecorder())); got != c.want {
			t.Errorf("%s: baseURL = %q, want %q", c.name, got, c.want)
		}
	}
}
