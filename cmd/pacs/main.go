// Command pacs is the cloud PACS server: a DICOMweb archive in one binary.
//
//	pacs serve [flags]   run the server (flags below, each with an env fallback)
//	pacs verify [flags]  re-hash every stored instance; exit 1 on any problem
//	pacs sweep [flags]   remove orphan blobs and stale temporary files
//	pacs version         print the version
//
// verify and sweep take the storage flags of serve (--data, --blob,
// --index and their PACS_* variables).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/cloudpacs/pacs/internal/dicomweb"
	"github.com/cloudpacs/pacs/internal/httpserver"
	"github.com/cloudpacs/pacs/internal/storage"
	"github.com/cloudpacs/pacs/internal/storage/fsblob"
	"github.com/cloudpacs/pacs/internal/storage/pgindex"
	"github.com/cloudpacs/pacs/internal/storage/s3blob"
	"github.com/cloudpacs/pacs/internal/storage/sqliteindex"
	"github.com/cloudpacs/pacs/viewer"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "pacs:", err)
		os.Exit(1)
	}
}

const usage = `usage: pacs <command> [flags]

commands:
  serve     run the DICOMweb server
  verify    re-hash every stored instance against its recorded SHA-256; exit 1 on problems
  sweep     remove orphan blobs (no index row) and temporary files older than --older-than
  migrate   apply the index schema migrations and exit (serve also applies them on start)
  version   print the version

Run "pacs <command> -h" for the flags of a command.
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("missing command")
	}
	switch args[0] {
	case "serve":
		cfg, err := parseServeFlags(args[1:], getenv, stderr)
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
		return serve(ctx, cfg, slog.New(slog.NewJSONHandler(stderr, nil)))
	case "migrate":
		cfg, err := parseToolFlags(args[0], args[1:], getenv, stderr)
		if err != nil {
			return err
		}
		index, err := openIndex(ctx, cfg.Index)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, "index schema up to date")
		return index.Close()
	case "verify", "sweep":
		cfg, err := parseToolFlags(args[0], args[1:], getenv, stderr)
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
		log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		if args[0] == "verify" {
			return verify(ctx, cfg, stdout, stderr, log) // verify.go
		}
		return sweep(ctx, cfg, stdout, log)
	case "version":
		v := version
		if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		fmt.Fprintln(stdout, "pacs", v)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// storeConfig locates the blob store and the index: env first, then
// flags; shared by serve, verify and sweep.
type storeConfig struct {
	Data  string
	Blob  string
	Index string
}

func addStoreFlags(fs *flag.FlagSet, cfg *storeConfig, getenv func(string) string) {
	data := getenv("PACS_DATA")
	if data == "" {
		data = "./data"
	}
	fs.StringVar(&cfg.Data, "data", data, "data directory for the embedded defaults (PACS_DATA)")
	// The URLs can hold a password or a key: usage text shows their
	// env defaults redacted.
	cfg.Blob, cfg.Index = getenv("PACS_BLOB"), getenv("PACS_INDEX")
	fs.Var(secretURL{&cfg.Blob}, "blob", "blob store `URL`, default file://<data>/blobs (PACS_BLOB)")
	fs.Var(secretURL{&cfg.Index}, "index", "index `URL`, default sqlite://<data>/index.db (PACS_INDEX)")
}

// defaults fills Blob and Index from Data.
func (cfg *storeConfig) defaults() {
	if cfg.Blob == "" {
		cfg.Blob = "file://" + filepath.Join(cfg.Data, "blobs")
	}
	if cfg.Index == "" {
		cfg.Index = "sqlite://" + filepath.Join(cfg.Data, "index.db")
	}
}

// toolConfig is the configuration of `pacs verify` and `pacs sweep`.
type toolConfig struct {
	storeConfig
	OlderThan time.Duration // sweep only
}

func parseToolFlags(name string, args []string, getenv func(string) string, stderr io.Writer) (toolConfig, error) {
	var cfg toolConfig
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	addStoreFlags(fs, &cfg.storeConfig, getenv)
	if name == "sweep" {
		fs.DurationVar(&cfg.OlderThan, "older-than", time.Hour, "remove only orphans and temporary files older than this; must exceed the longest upload")
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("%s: unexpected arguments %q", name, fs.Args())
	}
	if name == "sweep" && cfg.OlderThan <= 0 {
		return cfg, fmt.Errorf("sweep: --older-than %v: want a positive duration", cfg.OlderThan)
	}
	cfg.defaults()
	return cfg, nil
}

// serveConfig is the configuration of `pacs serve`: env first, then flags.
type serveConfig struct {
	storeConfig
	Listen         string
	AllowedOrigins []string
	MaxUpload      int64
	OnConflict     string
	PublicURL      string
	ShutdownWait   time.Duration
	Ingest         ingestFlags
	// Bounds against slow and hostile clients (docs/deploy.md).
	UploadIdle     time.Duration // a request body read that delivers nothing this long fails; 0: none
	WriteTimeout   time.Duration // each write to a connection must finish within it; 0: none
	MaxConns       int           // connections beyond it are answered 503 (health checks excepted); 0: no cap
	TrustedProxies []netip.Prefix
}

func parseServeFlags(args []string, getenv func(string) string, stderr io.Writer) (serveConfig, error) {
	env := func(k, def string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return def
	}
	var cfg serveConfig
	var origins, maxUpload, uploadIdle, writeTimeout, maxConns, proxies string
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Listen, "listen", env("PACS_LISTEN", ":8080"), "address to listen on (PACS_LISTEN)")
	addStoreFlags(fs, &cfg.storeConfig, getenv)
	fs.StringVar(&origins, "allowed-origins", env("PACS_ALLOWED_ORIGINS", "*"), "comma-separated CORS origins (PACS_ALLOWED_ORIGINS)")
	fs.StringVar(&maxUpload, "max-upload", env("PACS_MAX_UPLOAD", strconv.FormatInt(dicomweb.DefaultMaxUploadBytes, 10)), "largest STOW-RS request body in bytes (PACS_MAX_UPLOAD)")
	fs.StringVar(&cfg.OnConflict, "on-conflict", env("PACS_ON_CONFLICT", "reject"), "different bytes under a known SOP Instance UID: reject|replace (PACS_ON_CONFLICT)")
	fs.StringVar(&cfg.PublicURL, "public-url", getenv("PACS_PUBLIC_URL"), "external base URL for RetrieveURL/BulkDataURI, default from each request (PACS_PUBLIC_URL)")
	fs.DurationVar(&cfg.ShutdownWait, "shutdown-timeout", 30*time.Second, "how long in-flight requests may run on shutdown")
	fs.StringVar(&uploadIdle, "upload-idle-timeout", env("PACS_UPLOAD_IDLE_TIMEOUT", "60s"), "cut a request whose body delivers no byte for this long; 0: never (PACS_UPLOAD_IDLE_TIMEOUT)")
	fs.StringVar(&writeTimeout, "write-timeout", env("PACS_WRITE_TIMEOUT", "60s"), "cut a connection when one write to it (at most 64 KiB) takes longer; 0: never (PACS_WRITE_TIMEOUT)")
	fs.StringVar(&maxConns, "max-conns", env("PACS_MAX_CONNS", strconv.Itoa(defaultMaxConns)), "open connections served; beyond, 503 but for /healthz and /readyz; 0: no cap (PACS_MAX_CONNS)")
	fs.StringVar(&proxies, "trusted-proxies", getenv("PACS_TRUSTED_PROXIES"), "comma-separated CIDRs or IPs of proxies whose X-Forwarded-*/Forwarded headers are honoured; default none (PACS_TRUSTED_PROXIES)")
	addIngestFlags(fs, &cfg.Ingest, env)
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("serve: unexpected arguments %q", fs.Args())
	}
	cfg.defaults()
	for o := range strings.SplitSeq(origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			cfg.AllowedOrigins = append(cfg.AllowedOrigins, o)
		}
	}
	n, err := strconv.ParseInt(maxUpload, 10, 64)
	if err != nil || n <= 0 {
		return cfg, fmt.Errorf("serve: --max-upload %q: want a positive number of bytes", maxUpload)
	}
	cfg.MaxUpload = n
	if err := cfg.Ingest.resolve(); err != nil {
		return cfg, err
	}
	if cfg.OnConflict != "reject" && cfg.OnConflict != "replace" {
		return cfg, fmt.Errorf("serve: --on-conflict %q: want reject or replace", cfg.OnConflict)
	}
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return cfg, fmt.Errorf("serve: --public-url %q: want http(s)://host[/prefix]", redactURL(cfg.PublicURL))
		}
	}
	for _, d := range []struct {
		name, v string
		dst     *time.Duration
	}{{"upload-idle-timeout", uploadIdle, &cfg.UploadIdle}, {"write-timeout", writeTimeout, &cfg.WriteTimeout}} {
		t, err := time.ParseDuration(d.v)
		if err != nil || t < 0 {
			return cfg, fmt.Errorf("serve: --%s %q: want a duration such as 60s (0: none)", d.name, d.v)
		}
		*d.dst = t
	}
	if cfg.MaxConns, err = strconv.Atoi(maxConns); err != nil || cfg.MaxConns < 0 {
		return cfg, fmt.Errorf("serve: --max-conns %q: want a number of connections (0: no cap)", maxConns)
	}
	if cfg.TrustedProxies, err = parseTrustedProxies(proxies); err != nil {
		return cfg, fmt.Errorf("serve: --trusted-proxies: %w", err)
	}
	return cfg, nil
}

// defaultMaxConns: each open connection costs a goroutine, a file
// descriptor and its buffers (a few KiB idle, 64 KiB and up while
// streaming); a thousand fit a 2-core, 4 GB machine, and far fewer
// clients than that (viewers, modalities, routers) keep one open.
const defaultMaxConns = 1024

// parseTrustedProxies parses "10.0.0.0/8, 192.168.1.7": CIDRs, or single
// addresses (a /32 or /128).
func parseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, fmt.Errorf("%q: want a CIDR such as 10.0.0.0/8 or an address", f)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%q: want a CIDR such as 10.0.0.0/8 or an address", f)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// splitURL splits "scheme://rest" into the scheme and the path part.
func splitURL(s string) (scheme, rest string) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return "", s
	}
	return strings.ToLower(scheme), rest
}

// openBlobs picks the blob store by URL scheme. Its errors never show
// the URL's secrets (redactURL, scrubSecrets).
func openBlobs(ctx context.Context, u string) (storage.BlobStore, error) {
	switch scheme, rest := splitURL(u); scheme {
	case "file":
		if rest == "" {
			return nil, fmt.Errorf("blob URL %q: missing directory", redactURL(u))
		}
		return fsblob.New(rest)
	case "s3":
		s, err := s3blob.FromURL(ctx, u)
		if err != nil {
			return nil, scrubSecrets(err, u)
		}
		return s, nil
	default:
		return nil, fmt.Errorf("blob URL %q: unknown scheme; want file://DIR or s3://BUCKET/PREFIX", redactURL(u))
	}
}

// openIndex picks the index by URL scheme. Its errors never show the
// URL's secrets (redactURL, scrubSecrets).
func openIndex(ctx context.Context, u string) (storage.Index, error) {
	switch scheme, rest := splitURL(u); scheme {
	case "sqlite":
		if rest == "" {
			return nil, fmt.Errorf("index URL %q: missing file", redactURL(u))
		}
		if dir := filepath.Dir(rest); dir != "" {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return nil, fmt.Errorf("index: %w", err)
			}
		}
		return sqliteindex.Open(ctx, rest)
	case "postgres", "postgresql":
		ix, err := pgindex.Open(ctx, u)
		if err != nil {
			return nil, scrubSecrets(err, u)
		}
		return ix, nil
	default:
		return nil, fmt.Errorf("index URL %q: unknown scheme; want sqlite://FILE or postgres://…", redactURL(u))
	}
}

// openArchive opens the blob store and the index of cfg; close the
// index when done.
func openArchive(ctx context.Context, cfg storeConfig, log *slog.Logger) (*storage.Archive, error) {
	blobs, err := openBlobs(ctx, cfg.Blob)
	if err != nil {
		return nil, err
	}
	index, err := openIndex(ctx, cfg.Index)
	if err != nil {
		return nil, err
	}
	return &storage.Archive{Blobs: blobs, Index: index, Logger: log}, nil
}

// tempSweeper is a blob store that leaves temporary files behind when a
// writer dies (fsblob); Sweep removes those older than olderThan.
type tempSweeper interface {
	Sweep(ctx context.Context, olderThan time.Duration) (int, error)
}

// startupTempAge: temporary files older than this are removed when serve
// starts (they outlived any upload; other processes sharing the folder
// may still be writing younger ones).
const startupTempAge = time.Hour

// sweep removes orphan instance blobs and stale temporary files.
func sweep(ctx context.Context, cfg toolConfig, stdout io.Writer, log *slog.Logger) error {
	a, err := openArchive(ctx, cfg.storeConfig, log)
	if err != nil {
		return err
	}
	defer a.Index.Close()
	n, err := a.Sweep(ctx, cfg.OlderThan)
	if err != nil {
		return err
	}
	tmp := 0
	if ts, ok := a.Blobs.(tempSweeper); ok {
		if tmp, err = ts.Sweep(ctx, cfg.OlderThan); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "sweep: removed %d orphan blob(s) and %d temporary file(s) older than %v\n", n, tmp, cfg.OlderThan)
	return nil
}

// serveGCPercent is the collector's target when GOGC is not set: a heap
// may grow to 5× what is live before a collection, against Go's 2×. The
// server's live heap is small (tens of MB) and its garbage is mostly
// per-request buffers, so at the default a collection ran every few
// hundred requests and showed in the p99 of small GETs (docs/benchmarks.md).
// GOGC and GOMEMLIMIT still apply when set.
const serveGCPercent = 400

func serve(ctx context.Context, cfg serveConfig, log *slog.Logger) error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(serveGCPercent)
	}
	archive, err := openArchive(ctx, cfg.storeConfig, log)
	if err != nil {
		return err
	}
	blobs, index := archive.Blobs, archive.Index
	defer func() {
		if err := index.Close(); err != nil {
			log.Error("closing the index", "err", err)
		}
	}()
	archive.ReplaceOnConflict = cfg.OnConflict == "replace"
	archive.Limits = cfg.Ingest.limits
	if strings.HasPrefix(cfg.Index, "sqlite:") {
		// One process writes the embedded index, through this archive.
		archive.LocationCache = storage.DefaultLocationCache
	}
	if ts, ok := blobs.(tempSweeper); ok {
		if n, err := ts.Sweep(ctx, startupTempAge); err != nil {
			log.Warn("startup: sweeping temporary blob files", "err", err)
		} else if n > 0 {
			log.Info("startup: removed stale temporary blob files", "count", n)
		}
	}

	e := newEcho(log, cfg.TrustedProxies)
	dw := dicomweb.New(dicomweb.Config{
		Archive:        archive,
		Logger:         log,
		AllowedOrigins: cfg.AllowedOrigins,
		MaxUploadBytes: cfg.MaxUpload,
		PublicBaseURL:  cfg.PublicURL,
		TrustedProxies: cfg.TrustedProxies,
	})
	// Deferred after the index's Close, so run before it, once the server
	// has stopped: the archive's background metadata rebuilds end first.
	defer archive.Close()
	defer dw.Close()
	dw.Register(e)
	viewer.Register(e)
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	e.GET("/readyz", func(c echo.Context) error {
		rctx, cancel := context.WithTimeout(c.Request().Context(), 5*time.Second)
		defer cancel()
		if err := blobs.Ping(rctx); err != nil {
			log.Warn("readyz: blob store", "err", err)
			return c.String(http.StatusServiceUnavailable, "blob store unavailable")
		}
		if err := index.Ping(rctx); err != nil {
			log.Warn("readyz: index", "err", err)
			return c.String(http.StatusServiceUnavailable, "index unavailable")
		}
		return c.String(http.StatusOK, "ok")
	})

	tcp, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	ln := httpserver.NewListener(tcp, cfg.MaxConns, cfg.WriteTimeout)
	srv := &http.Server{
		Handler: httpserver.Wrap(e, cfg.UploadIdle),
		// Not ReadTimeout: a STOW body may take hours. A stalled one
		// is cut by --upload-idle-timeout (Wrap), a reader that stopped
		// by --write-timeout (the listener).
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		ConnContext:       ln.ConnContext,
	}
	log.Info("listening", "addr", ln.Addr().String(), "blob", redactURL(cfg.Blob), "index", redactURL(cfg.Index), "version", version,
		"max_conns", cfg.MaxConns, "upload_idle_timeout", cfg.UploadIdle.String(), "write_timeout", cfg.WriteTimeout.String(),
		"trusted_proxies", len(cfg.TrustedProxies))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: waiting for in-flight requests", "timeout", cfg.ShutdownWait.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownWait)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Error("shutdown", "err", err)
		return err
	}
	log.Info("stopped")
	return nil
}

// newEcho is the HTTP router with the server's middleware: a request log
// line for every request; recovery from a panic in a handler (a decoder
// meeting input nobody foresaw): the request answers 500, the panic is
// logged with its stack, and the server keeps serving; and the answer to
// requests on connections over --max-conns (shedOverCap).
//
// Client addresses and schemes come from forwarding headers only when
// the direct peer is one of trusted (--trusted-proxies); with none,
// from the connection.
func newEcho(log *slog.Logger, trusted []netip.Prefix) *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.IPExtractor, e.SchemeExtractor = echo.ExtractIPDirect(), echo.ExtractSchemeDirect()
	if len(trusted) > 0 {
		trust := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
		for _, p := range trusted {
			trust = append(trust, echo.TrustIPRange(&net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}))
		}
		e.IPExtractor, e.SchemeExtractor = echo.ExtractIPFromXFFHeader(trust...), echo.ExtractSchemeFromHeaders(trust...)
	}
	e.Use(requestLogger(log))
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			log.Error("request panicked", "method", c.Request().Method, "path", c.Request().URL.Path,
				"request_id", httpserver.RequestID(c.Response().Header()), "err", err, "stack", string(stack))
			return err
		},
	}))
	e.Use(shedOverCap)
	return e
}

// requestLogger logs one line per request: method, path (never the query
// string, which can carry patient names), status, bytes, duration, the
// client's address and the request ID (the error handler's line about
// the same request carries the same ID). A client that hung up is logged
// as 499, an upload cut by --upload-idle-timeout as 408.
func requestLogger(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			req := c.Request()
			status := c.Response().Status
			switch {
			case httpserver.UploadStalled(req.Context()):
				status = http.StatusRequestTimeout
			case req.Context().Err() != nil && errors.Is(req.Context().Err(), context.Canceled):
				status = dicomweb.StatusClientClosedRequest
			}
			lvl := slog.LevelInfo
			if status >= 500 {
				lvl = slog.LevelWarn
			}
			log.LogAttrs(req.Context(), lvl, "request",
				slog.String("method", req.Method),
				slog.String("path", req.URL.Path),
				slog.Int("status", status),
				slog.Int64("bytes", c.Response().Size),
				slog.Duration("duration", time.Since(start)),
				slog.String("client", c.RealIP()),
				slog.String("request_id", httpserver.RequestID(c.Response().Header())),
			)
			return nil
		}
	}
}

// shedOverCap answers a request on a connection accepted beyond
// --max-conns with 503, Retry-After and Connection: close, so that the
// client comes back on a new connection when others have closed. The
// health routes are answered as usual (a load balancer must never take
// an overloaded replica for a dead one), and close their connection too.
func shedOverCap(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !httpserver.OverCap(c.Request().Context()) {
			return next(c)
		}
		h := c.Response().Header()
		h.Set(echo.HeaderConnection, "close")
		if p := c.Request().URL.Path; p == "/healthz" || p == "/readyz" {
			return next(c)
		}
		h.Set(echo.HeaderRetryAfter, "1")
		b := []byte(`{"error":"too many open connections, retry later","request_id":"` + httpserver.RequestID(h) + "\"}\n")
		return c.Blob(http.StatusServiceUnavailable, echo.MIMEApplicationJSON, b)
	}
}
