package dicomweb

import (
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/labstack/echo/v4"
	"golang.org/x/sync/singleflight"

	"github.com/cloudpacs/pacs/internal/storage"
)

// Root is the path of the DICOMweb service root.
const Root = "/dicom-web"

// DefaultMaxUploadBytes bounds one STOW-RS request body when Config leaves
// MaxUploadBytes at zero.
const DefaultMaxUploadBytes int64 = 64 << 30

// Config wires the handlers.
type Config struct {
	// Archive stores, reads and deletes instances, and answers searches
	// and metadata through its index. Required.
	Archive *storage.Archive
	Logger  *slog.Logger
	// AllowedOrigins for CORS; empty: "*".
	AllowedOrigins []string
	// TrustedProxies are the direct peers (proxies, load balancers)
	// whose forwarding headers tell the host and scheme clients used
	// (X-Forwarded-Host/-Proto, else Forwarded); from any other peer
	// they are ignored. Empty: no one's.
	TrustedProxies []netip.Prefix
	// MaxUploadBytes bounds a STOW-RS request body; 0: DefaultMaxUploadBytes.
	MaxUploadBytes int64
	// PublicBaseURL is the externally visible scheme://host[/prefix] that
	// RetrieveURLs and BulkDataURIs start with (Root is appended). Empty:
	// derived from each request (Host, or a trusted proxy's forwarding
	// headers).
	PublicBaseURL string
	// MetadataCacheBytes bounds the memory cache of study and series
	// metadata documents as served (gzip, with this server's base URL
	// in): 0: DefaultMetadataCacheBytes; < 0: none (every request puts
	// the base URL into the archive's document again). The archive
	// keeps the documents current (storage.Archive.MetadataRebuildDelay).
	MetadataCacheBytes int64
}

// Handler serves the DICOMweb routes.
type Handler struct {
	archive   *storage.Archive
	index     storage.Index // archive.Index
	log       *slog.Logger
	origins   []string
	maxUpload int64
	publicURL string
	trusted   []netip.Prefix // TrustedProxies

	metaCache  *docCache          // metadata documents as served; nil: none
	metaFlight singleflight.Group // one build of a served document at a time

	metaRebases atomic.Int64 // documents given a base URL (memory cache misses)
}

// Close drops the metadata memory cache. Call it after the HTTP server
// has shut down; the archive's background work stops with
// storage.Archive.Close.
func (h *Handler) Close() error {
	h.metaCache.clear()
	return nil
}

// New returns a Handler for cfg.
func New(cfg Config) *Handler {
	h := &Handler{
		archive:   cfg.Archive,
		log:       cfg.Logger,
		origins:   cfg.AllowedOrigins,
		maxUpload: cfg.MaxUploadBytes,
		publicURL: strings.TrimRight(cfg.PublicBaseURL, "/"),
		trusted:   cfg.TrustedProxies,
	}
	if h.archive != nil {
		h.index = h.archive.Index
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	if len(h.origins) == 0 {
		h.origins = []string{"*"}
	}
	if h.maxUpload <= 0 {
		h.maxUpload = DefaultMaxUploadBytes
	}
	if n := cfg.MetadataCacheBytes; n >= 0 {
		if n == 0 {
			n = DefaultMetadataCacheBytes
		}
		h.metaCache = newDocCache(n)
	}
	return h
}

// Register adds the routes, the CORS middleware (for the DICOMweb and
// WADO-URI paths, before routing so that preflights of any route work)
// and the error handler to e.
func (h *Handler) Register(e *echo.Echo) {
	e.HTTPErrorHandler = ErrorHandler(h.log)
	e.Pre(cors(h.origins))

	get := []string{http.MethodGet, http.MethodHead}
	g := e.Group(Root)
	g.POST("/studies", h.storeInstances)
	g.POST("/studies/:study", h.storeInstances)

	g.Match(get, "/studies", h.searchStudies)
	g.Match(get, "/series", h.searchSeries)
	g.Match(get, "/instances", h.searchInstances)
	g.Match(get, "/studies/:study/series", h.searchSeries)
	g.Match(get, "/studies/:study/instances", h.searchInstances)
	g.Match(get, "/studies/:study/series/:series/instances", h.searchInstances)

	g.Match(get, "/studies/:study", h.retrieveInstances)
	g.Match(get, "/studies/:study/series/:series", h.retrieveInstances)
	g.Match(get, "/studies/:study/series/:series/instances/:instance", h.retrieveInstances)
	g.Match(get, "/studies/:study/metadata", h.retrieveMetadata)
	g.Match(get, "/studies/:study/series/:series/metadata", h.retrieveMetadata)
	g.Match(get, "/studies/:study/series/:series/instances/:instance/metadata", h.retrieveMetadata)
	g.Match(get, "/studies/:study/series/:series/instances/:instance/frames/:frames", h.retrieveFrames)
	g.Match(get, "/studies/:study/series/:series/instances/:instance/bulk/*", h.retrieveBulk)

	g.DELETE("/studies/:study", h.deleteResource)
	g.DELETE("/studies/:study/series/:series", h.deleteResource)
	g.DELETE("/studies/:study/series/:series/instances/:instance", h.deleteResource)

	e.Match(get, "/wado", h.wadoURI)
	g.Match(get, "/wado", h.wadoURI)

	registerRendered(g, h)
	registerReports(g, h)
}

// baseURL is the DICOMweb root URL as clients see it: PublicBaseURL, or
// the request's Host and scheme, which a trusted proxy's forwarding
// headers override (forwarded.go).
func (h *Handler) baseURL(c echo.Context) string {
	if h.publicURL != "" {
		return h.publicURL + Root
	}
	req := c.Request()
	host, scheme := req.Host, "http"
	if req.TLS != nil {
		scheme = "https"
	}
	if h.fromTrustedProxy(req) {
		fhost, fproto := forwardedHostProto(req.Header)
		if validHost(fhost) {
			host = fhost
		}
		if fproto == "http" || fproto == "https" {
			scheme = fproto
		}
	}
	if !validHost(host) {
		host = "localhost"
	}
	return scheme + "://" + host + Root
}

func validHost(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(".-:[]_", c) >= 0) {
			return false
		}
	}
	return true
}

// validUID reports a syntactically valid UID: digits and dots, at most 64
// characters, no empty component.
func validUID(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '.' {
			if s[i-1] == '.' {
				return false
			}
			continue
		}
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// pathUIDs returns the study, series and instance UIDs in the path (""
// when the route has none), or a 400 error for a malformed one.
func pathUIDs(c echo.Context) (study, series, sop string, err error) {
	for _, p := range []struct {
		name string
		dst  *string
	}{{"study", &study}, {"series", &series}, {"instance", &sop}} {
		v := c.Param(p.name)
		if v == "" {
			continue
		}
		if !validUID(v) {
			return "", "", "", badRequestf("malformed %s UID in the path", p.name)
		}
		*p.dst = v
	}
	return study, series, sop, nil
}

// acceptRanges returns the client's acceptable media types: the ?accept=
// query parameter (for browsers) when present, else the Accept header.
func acceptRanges(c echo.Context) []mediaRange {
	if c.Request().URL.RawQuery == "" { // no query to parse (echo would build its map)
		return parseAccept(c.Request().Header.Get(echo.HeaderAccept))
	}
	if a := c.QueryParam("accept"); a != "" {
		return parseAccept(a)
	}
	return parseAccept(c.Request().Header.Get(echo.HeaderAccept))
}

func instanceURL(base, study, series, sop string) string {
	return base + "/studies/" + study + "/series/" + series + "/instances/" + sop
}
