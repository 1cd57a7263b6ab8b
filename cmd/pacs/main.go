// Command pacs is the cloud PACS server: a DICOMweb archive in one binary.
//
//	pacs serve [flags]   run the server (flags below, each with an env fallback)
//	pacs version         print the version
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

	"github.com/cloudpacs/pacs/internal/dicomweb"
	"github.com/cloudpacs/pacs/internal/storage"
	"github.com/cloudpacs/pacs/internal/storage/fsblob"
	"github.com/cloudpacs/pacs/internal/storage/sqliteindex"
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
  version   print the version
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

// serveConfig is the configuration of `pacs serve`: env first, then flags.
type serveConfig struct {
	Listen         string
	Data           string
	Blob           string
	Index          string
	AllowedOrigins []string
	MaxUpload      int64
	OnConflict     string
	PublicURL      string
	ShutdownWait   time.Duration
}

func parseServeFlags(args []string, getenv func(string) string, stderr io.Writer) (serveConfig, error) {
	env := func(k, def string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return def
	}
	var cfg serveConfig
	var origins, maxUpload string
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Listen, "listen", env("PACS_LISTEN", ":8080"), "address to listen on (PACS_LISTEN)")
	fs.StringVar(&cfg.Data, "data", env("PACS_DATA", "./data"), "data directory for the embedded defaults (PACS_DATA)")
	fs.StringVar(&cfg.Blob, "blob", getenv("PACS_BLOB"), "blob store URL, default file://<data>/blobs (PACS_BLOB)")
	fs.StringVar(&cfg.Index, "index", getenv("PACS_INDEX"), "index URL, default sqlite://<data>/index.db (PACS_INDEX)")
	fs.StringVar(&origins, "allowed-origins", env("PACS_ALLOWED_ORIGINS", "*"), "comma-separated CORS origins (PACS_ALLOWED_ORIGINS)")
	fs.StringVar(&maxUpload, "max-upload", env("PACS_MAX_UPLOAD", strconv.FormatInt(dicomweb.DefaultMaxUploadBytes, 10)), "largest STOW-RS request body in bytes (PACS_MAX_UPLOAD)")
	fs.StringVar(&cfg.OnConflict, "on-conflict", env("PACS_ON_CONFLICT", "reject"), "different bytes under a known SOP Instance UID: reject|replace (PACS_ON_CONFLICT)")
	fs.StringVar(&cfg.PublicURL, "public-url", getenv("PACS_PUBLIC_URL"), "external base URL for RetrieveURL/BulkDataURI, default from each request (PACS_PUBLIC_URL)")
	fs.DurationVar(&cfg.ShutdownWait, "shutdown-timeout", 30*time.Second, "how long in-flight requests may run on shutdown")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("serve: unexpected arguments %q", fs.Args())
	}
	if cfg.Blob == "" {
		cfg.Blob = "file://" + filepath.Join(cfg.Data, "blobs")
	}
	if cfg.Index == "" {
		cfg.Index = "sqlite://" + filepath.Join(cfg.Data, "index.db")
	}
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
	if cfg.OnConflict != "reject" && cfg.OnConflict != "replace" {
		return cfg, fmt.Errorf("serve: --on-conflict %q: want reject or replace", cfg.OnConflict)
	}
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return cfg, fmt.Errorf("serve: --public-url %q: want http(s)://host[/prefix]", cfg.PublicURL)
		}
	}
	return cfg, nil
}

// splitURL splits "scheme://rest" into the scheme and the path part.
func splitURL(s string) (scheme, rest string) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return "", s
	}
	return strings.ToLower(scheme), rest
}

// openBlobs picks the blob store by URL scheme.
func openBlobs(u string) (storage.BlobStore, error) {
	switch scheme, rest := splitURL(u); scheme {
	case "file":
		if rest == "" {
			return nil, fmt.Errorf("blob URL %q: missing directory", u)
		}
		return fsblob.New(rest)
	case "s3":
		return nil, fmt.Errorf("blob URL %q: s3:// is not supported in this build yet", u)
	default:
		return nil, fmt.Errorf("blob URL %q: unknown scheme; want file://DIR", u)
	}
}

// openIndex picks the index by URL scheme.
func openIndex(ctx context.Context, u string) (storage.Index, error) {
	switch scheme, rest := splitURL(u); scheme {
	case "sqlite":
		if rest == "" {
			return nil, fmt.Errorf("index URL %q: missing file", u)
		}
		if dir := filepath.Dir(rest); dir != "" {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return nil, fmt.Errorf("index: %w", err)
			}
		}
		return sqliteindex.Open(ctx, rest)
	case "postgres", "postgresql":
		return nil, fmt.Errorf("index URL: postgres:// is not supported in this build yet")
	default:
		return nil, fmt.Errorf("index URL %q: unknown scheme; want sqlite://FILE", u)
	}
}

func serve(ctx context.Context, cfg serveConfig, log *slog.Logger) error {
	blobs, err := openBlobs(cfg.Blob)
	if err != nil {
		return err
	}
	index, err := openIndex(ctx, cfg.Index)
	if err != nil {
		return err
	}
	defer func() {
		if err := index.Close(); err != nil {
			log.Error("closing the index", "err", err)
		}
	}()
	archive := &storage.Archive{Blobs: blobs, Index: index, ReplaceOnConflict: cfg.OnConflict == "replace", Logger: log}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Use(requestLogger(log))
	dicomweb.New(dicomweb.Config{
		Archive:        archive,
		Index:          index,
		Logger:         log,
		AllowedOrigins: cfg.AllowedOrigins,
		MaxUploadBytes: cfg.MaxUpload,
		PublicBaseURL:  cfg.PublicURL,
	}).Register(e)
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

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           e,
		ReadHeaderTimeout: 10 * time.Second, // not ReadTimeout: STOW bodies may take long
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	log.Info("listening", "addr", ln.Addr().String(), "blob", cfg.Blob, "index", cfg.Index, "version", version)
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

// requestLogger logs one line per request: method, path (never the query
// string, which can carry patient names), status, bytes, duration. A
// client that hung up is logged as 499.
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
			if req.Context().Err() != nil && errors.Is(req.Context().Err(), context.Canceled) {
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
			)
			return nil
		}
	}
}
