package dicomweb

import (
	"net/http"
	"net/netip"
	"strings"
)

// Forwarding headers name the host and scheme a client used in front of
// a proxy. Anyone can send them, so they count only from a direct peer
// in Config.TrustedProxies; a trusted proxy must set (or strip) them,
// not pass on a client's.

// fromTrustedProxy reports whether the direct peer of r is in
// h.trusted.
func (h *Handler) fromTrustedProxy(r *http.Request) bool {
	if len(h.trusted) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap()
	for _, p := range h.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwardedHostProto is the host and scheme of a trusted proxy's
// forwarding headers: X-Forwarded-Host and X-Forwarded-Proto, else the
// host= and proto= of Forwarded (RFC 7239). With several values (a
// chain of proxies, or a client's value the proxy appended to) the last
// counts: the one the nearest proxy, the trusted one, added. Empty when
// absent; the caller validates.
func forwardedHostProto(hdr http.Header) (host, proto string) {
	host = lastValue(hdr.Values("X-Forwarded-Host"))
	proto = strings.ToLower(lastValue(hdr.Values("X-Forwarded-Proto")))
	if host != "" && proto != "" {
		return host, proto
	}
	if fw := lastValue(hdr.Values("Forwarded")); fw != "" {
		for pair := range strings.SplitSeq(fw, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(pair), "=")
			v = strings.Trim(v, `"`)
			switch strings.ToLower(k) {
			case "host":
				if host == "" {
					host = v
				}
			case "proto":
				if proto == "" {
					proto = strings.ToLower(v)
				}
			}
		}
	}
	return host, proto
}

// lastValue is the last comma-separated element of a header's values.
func lastValue(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	v := vs[len(vs)-1]
	if i := strings.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return strings.TrimSpace(v)
}
