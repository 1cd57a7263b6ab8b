// Command pacsbench is an HTTP load benchmark for any DICOMweb server on
// this machine: it stores generated instances with STOW-RS, then measures
// QIDO-RS searches, WADO-RS frames, series metadata and instance
// retrieval, and prints throughput and latency percentiles.
//
//	pacsbench run --url http://127.0.0.1:8080/dicom-web --label pacs --out pacs.json
//	pacsbench compare orthanc.json pacs.json     # side by side, with ratios
//	pacsbench flood --url … --pid PID            # 32 × 200 MB + 1,000 small STOWs at once; the server's peak RSS
//
// Every loop is bounded in count and in time, and it talks only to the
// loopback URL it is given. See docs/benchmarks.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// config is every knob of a run; it is written into the JSON report.
type config struct {
	URL               string        `json:"url"`
	Label             string        `json:"label"`
	Template          string        `json:"template"`
	Seed              uint64        `json:"seed"`
	Studies           int           `json:"studies"`
	SeriesPerStudy    int           `json:"series_per_study"`
	InstPerSeries     int           `json:"instances_per_series"`
	StudiesPerPatient int           `json:"studies_per_patient"`
	LargeSeries       int           `json:"large_series"`
	PerRequest        int           `json:"instances_per_stow_request"`
	STOWConcurrency   int           `json:"stow_concurrency"`
	Concurrency       []int         `json:"concurrency"`
	Requests          int           `json:"requests"`
	MetadataRequests  int           `json:"metadata_requests"`
	Warmup            int           `json:"warmup"`
	MaxDuration       time.Duration `json:"max_duration_ns"`
	STOWMaxDuration   time.Duration `json:"stow_max_duration_ns"`
	MaxTotal          time.Duration `json:"max_total_ns"`
	Timeout           time.Duration `json:"request_timeout_ns"`
	Phases            []string      `json:"phases"`
	PID               int           `json:"pid,omitempty"`           // the server's process, for its CPU time per request
	StaticFrames      bool          `json:"static_frames,omitempty"` // also serve the frames as files (static.go)
}

// report is the JSON output of a run.
type report struct {
	Label     string   `json:"label"`
	Started   string   `json:"started"`
	Machine   machine  `json:"machine"`
	Config    config   `json:"config"`
	Instances int      `json:"instances"` // generated
	Stored    int      `json:"stored"`    // stored by the STOW phase (or assumed stored without it)
	Results   []result `json:"results"`
}

type machine struct {
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go"`
}

var allPhases = []string{"stow", "qido", "frames", "metadata", "instance"}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	args := os.Args[1:]
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "run":
		err = cmdRun(args, os.Stdout, log)
	case "compare":
		err = cmdCompare(args, os.Stdout)
	case "flood":
		err = cmdFlood(args, os.Stdout)
	case "static":
		err = cmdStatic(args, os.Stdout)
	case "help":
		fmt.Fprintln(os.Stderr, "usage: pacsbench [run] --url URL [flags] | pacsbench compare BASE.json NEW.json | pacsbench flood --url URL --pid PID [flags]")
	default:
		err = fmt.Errorf("unknown command %q (want run, compare or flood)", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pacsbench:", err)
		os.Exit(1)
	}
}

func cmdRun(args []string, stdout io.Writer, log *slog.Logger) error {
	fset := flag.NewFlagSet("run", flag.ContinueOnError)
	var c config
	var conc, phases, out string
	var asJSON bool
	fset.StringVar(&c.URL, "url", "", "DICOMweb root on loopback, e.g. http://127.0.0.1:8080/dicom-web (required)")
	fset.StringVar(&c.Label, "label", "", "name of the server in the report (pacs, orthanc, ...)")
	fset.StringVar(&c.Template, "template", filepath.Join("testdata", "dicom", "study", "s02_ct", "ct_0001.dcm"),
		"Explicit VR LE Part 10 file (or a folder: its first such file) to generate instances from")
	fset.Uint64Var(&c.Seed, "seed", 0, "fixes every generated UID and value (0: random); same seed, same load")
	fset.IntVar(&c.Studies, "studies", 10, "studies to generate (besides the large series' study)")
	fset.IntVar(&c.SeriesPerStudy, "series", 2, "series per study")
	fset.IntVar(&c.InstPerSeries, "instances", 20, "instances per series")
	fset.IntVar(&c.StudiesPerPatient, "studies-per-patient", 2, "studies per patient")
	fset.IntVar(&c.LargeSeries, "large-series", 1000, "instances in one extra large series for the metadata phase (0: none)")
	fset.IntVar(&c.PerRequest, "per-request", 1, "instances per STOW-RS request")
	fset.IntVar(&c.STOWConcurrency, "stow-concurrency", 4, "concurrent STOW-RS requests")
	fset.StringVar(&conc, "concurrency", "1,16", "concurrency levels of the read phases")
	fset.IntVar(&c.Requests, "requests", 1000, "requests per read measurement (QIDO, frames, instance); a p99 rests on the slowest 1%, 10 requests at 1000")
	fset.IntVar(&c.MetadataRequests, "metadata-requests", 30, "requests per series metadata measurement")
	fset.IntVar(&c.Warmup, "warmup", 10, "uncounted warm-up requests before each read measurement")
	fset.DurationVar(&c.MaxDuration, "max-duration", 20*time.Second, "time limit of each read measurement")
	fset.DurationVar(&c.STOWMaxDuration, "stow-max-duration", 20*time.Minute, "time limit of the STOW-RS phase")
	fset.DurationVar(&c.MaxTotal, "max-total", 45*time.Minute, "time limit of the whole run")
	fset.DurationVar(&c.Timeout, "timeout", time.Minute, "time limit of one request")
	fset.StringVar(&phases, "phases", strings.Join(allPhases, ","), "phases to run; without stow, the data of the same --seed must be stored already")
	fset.IntVar(&c.PID, "pid", 0, "process ID of the server on this machine: report its CPU time per request (Linux /proc)")
	fset.BoolVar(&c.StaticFrames, "static-frames", false,
		"after the frame phase, save the frames the server sent as files and run the same phase against http.FileServer serving them (its CPU per request too)")
	fset.BoolVar(&asJSON, "json", false, "print the JSON report on stdout instead of the table")
	fset.StringVar(&out, "out", "", "also write the JSON report to this file")
	if err := fset.Parse(args); err != nil {
		return err
	}
	if fset.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fset.Args())
	}
	root, err := checkURL(c.URL)
	if err != nil {
		return err
	}
	c.URL = root
	if c.Label == "" {
		c.Label = "server"
	}
	for _, f := range strings.Split(conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 256 {
			return fmt.Errorf("--concurrency: bad level %q (1..256)", f)
		}
		c.Concurrency = append(c.Concurrency, n)
	}
	for _, p := range strings.Split(phases, ",") {
		p = strings.TrimSpace(p)
		if !slices.Contains(allPhases, p) {
			return fmt.Errorf("--phases: unknown phase %q (have %s)", p, strings.Join(allPhases, ","))
		}
		c.Phases = append(c.Phases, p)
	}
	if c.Studies < 0 || c.SeriesPerStudy < 1 || c.InstPerSeries < 1 || c.LargeSeries < 0 || c.PerRequest < 1 ||
		c.STOWConcurrency < 1 || c.Requests < 1 || c.MetadataRequests < 1 || c.Warmup < 0 {
		return errors.New("counts must be positive")
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
	tplPath, tpl, err := findTemplate(c.Template)
	if err != nil {
		return err
	}
	c.Template = tplPath
	ds, err := newDataset(tpl, layout{
		Studies: c.Studies, SeriesPerStudy: c.SeriesPerStudy, InstPerSeries: c.InstPerSeries,
		StudiesPerPatient: c.StudiesPerPatient, LargeSeries: c.LargeSeries,
	}, c.Seed)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, c.MaxTotal)
	defer cancel()

	maxConc := slices.Max(append(slices.Clone(c.Concurrency), c.STOWConcurrency))
	b := &bench{
		root: root,
		client: &http.Client{
			Timeout: c.Timeout,
			Transport: &http.Transport{
				Proxy:               nil, // never through a proxy: loopback only
				DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
				MaxIdleConns:        2 * maxConc,
				MaxIdleConnsPerHost: 2 * maxConc,
				IdleConnTimeout:     30 * time.Second,
			},
			CheckRedirect: func(req *http.Request, _ []*http.Request) error {
				if _, err := checkURL(req.URL.String()); err != nil {
					return err
				}
				return nil
			},
		},
		ds:  ds,
		cfg: c,
		log: log,
	}
	rep := report{
		Label:     c.Label,
		Started:   time.Now().UTC().Format(time.RFC3339),
		Machine:   machine{OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), GoVersion: runtime.Version()},
		Config:    c,
		Instances: len(ds.insts),
	}
	has := func(p string) bool { return slices.Contains(c.Phases, p) }
	add := func(rs ...result) {
		for _, r := range rs {
			log.Info("measured", "label", c.Label, "phase", r.Phase, "c", r.Concurrency, "n", r.Requests,
				"errors", r.Errors, "p50_ms", r.P50ms, "p99_ms", r.P99ms, "req_per_s", round1(r.ReqPerSec))
			if r.FirstError != "" {
				log.Warn("first error", "phase", r.Phase, "err", r.FirstError)
			}
		}
		rep.Results = append(rep.Results, rs...)
	}
	if has("stow") {
		log.Info("storing", "label", c.Label, "instances", len(ds.insts), "per_request", c.PerRequest, "c", c.STOWConcurrency)
		add(b.phaseSTOW(ctx))
	} else {
		for i := range ds.insts {
			ds.insts[i].Stored = true
		}
	}
	for _, n := range c.Concurrency {
		if has("qido") && ctx.Err() == nil {
			add(b.phaseQIDO(ctx, n)...)
		}
	}
	for _, n := range c.Concurrency {
		if has("frames") && ctx.Err() == nil {
			add(b.phaseFrames(ctx, n))
		}
	}
	if c.StaticFrames && has("frames") && ctx.Err() == nil {
		rs, err := b.phaseStaticFrames(ctx)
		if err != nil {
			log.Warn("static frame server", "err", err)
			rs = append(rs, result{Phase: staticPhase, Note: "skipped: " + err.Error()})
		}
		add(rs...)
	}
	for _, n := range c.Concurrency {
		if has("metadata") && ctx.Err() == nil {
			add(b.phaseMetadata(ctx, n))
		}
	}
	for _, n := range c.Concurrency {
		if has("instance") && ctx.Err() == nil {
			add(b.phaseInstance(ctx, n))
		}
	}
	for _, in := range ds.insts {
		if in.Stored {
			rep.Stored++
		}
	}
	// Group the table by phase, concurrency levels side by side.
	slices.SortStableFunc(rep.Results, func(a, b result) int { return phaseOrder(a.Phase) - phaseOrder(b.Phase) })

	if out != "" {
		if err := writeJSON(out, rep); err != nil {
			return err
		}
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printTable(stdout, rep)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("stopped early: %w", context.Cause(ctx))
	}
	return nil
}

// phaseOrder ranks phases for the table: store, search, then read.
func phaseOrder(name string) int {
	ranks := []struct {
		prefix string
		rank   int
	}{
		{"stow", 0},
		{"qido /studies?PatientID", 1},
		{"qido /studies?StudyDate", 2},
		{"qido /studies?PatientName", 3},
		{"qido /studies/{s}/series/{r}", 5}, // before the shorter prefix below
		{"qido /studies/{s}/series", 4},
		{"wado frame", 6},
		{"static frame", 6},
		{"series metadata", 7},
		{"wado instance", 8},
	}
	for _, r := range ranks {
		if strings.HasPrefix(name, r.prefix) {
			return r.rank
		}
	}
	return 100
}

// checkURL accepts http(s) URLs on loopback only and returns the root
// without a trailing slash.
func checkURL(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("--url is required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("--url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("--url %q: want http or https", raw)
	}
	host := u.Hostname()
	if host != "localhost" {
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			return "", fmt.Errorf("--url %q: %w", raw, errNotLoopback)
		}
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// findTemplate loads path, or when it is a folder, the first file in it
// (in name order) that the generator can use.
func findTemplate(path string) (string, *template, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", nil, err
	}
	if !st.IsDir() {
		t, err := loadTemplate(path)
		return path, t, err
	}
	var found string
	var tpl *template
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || found != "" {
			return err
		}
		if t, err := loadTemplate(p); err == nil && t.frameBytes > 0 {
			found, tpl = p, t
			return filepath.SkipAll
		}
		return nil
	})
	if err != nil {
		return "", nil, err
	}
	if tpl == nil {
		return "", nil, fmt.Errorf("%s: no Explicit VR Little Endian image file with the needed attributes", path)
	}
	return found, tpl, nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }
