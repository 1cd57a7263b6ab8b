package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

const (
	acceptFrame    = `multipart/related; type="application/octet-stream"; transfer-syntax=*`
	acceptInstance = `multipart/related; type="application/dicom"; transfer-syntax=*`
	acceptJSON     = `application/dicom+json`
)

// bench holds what the phases share.
type bench struct {
	root   string // DICOMweb root without trailing slash
	client *http.Client
	ds     *dataset
	cfg    config
	log    *slog.Logger
}

// pick maps request number i (negative for warm-ups) to one of n choices,
// spread so that consecutive requests hit different objects.
func pick(i, n int) int {
	x := uint64(int64(i)) * 0x9E3779B97F4A7C15
	x ^= x >> 29
	return int(x % uint64(n))
}

// do sends req and reads the whole body; lat runs to the last byte. The
// body is read into a pooled buffer: the caller hands it back with
// release once done with it, so that the client's own garbage collection
// stays out of the latencies it measures.
//
// The request asks for gzip itself, so that Go's transport does not
// inflate the body while it is read: the clock stops when the last byte
// has arrived, and a gzip body is inflated afterwards, for the checks
// only. (Inflating an 11 MB series metadata document in Go took about as
// long as the server took to send it, and counted as server time.)
func (b *bench) do(req *http.Request) (status int, body []byte, lat time.Duration, err error) {
	if req.Header.Get("Accept-Encoding") == "" {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	start := time.Now()
	resp, err := b.client.Do(req)
	if err != nil {
		return 0, nil, time.Since(start), err
	}
	defer resp.Body.Close()
	body, err = readAll(*bodyBufs.Get().(*[]byte), resp.Body)
	lat = time.Since(start)
	if err == nil && strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		body, err = gunzip(body)
	}
	return resp.StatusCode, body, lat, err
}

// gunzip inflates the gzip data in z into a pooled buffer and returns z's
// buffer to the pool.
func gunzip(z []byte) ([]byte, error) {
	defer release(z)
	zr, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		return nil, fmt.Errorf("gzip body: %w", err)
	}
	body, err := readAll(*bodyBufs.Get().(*[]byte), zr)
	if err != nil {
		return body, fmt.Errorf("gzip body: %w", err)
	}
	return body, nil
}

var bodyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// release returns a body from do to the pool.
func release(body []byte) {
	if c := cap(body); c > 0 && c <= 16<<20 {
		body = body[:0]
		bodyBufs.Put(&body)
	}
}

// readAll appends all of r to buf[:0], growing it as needed.
func readAll(buf []byte, r io.Reader) ([]byte, error) {
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

func (b *bench) get(ctx context.Context, path, accept string) (int, []byte, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.root+path, nil)
	if err != nil {
		return 0, nil, 0, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	return b.do(req)
}

func statusErr(path string, status int, body []byte) error {
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return fmt.Errorf("GET %s: HTTP %d: %s", path, status, s)
}

// stored lists the indexes of instances the STOW phase stored.
func (b *bench) stored(large bool) []int {
	var out []int
	for i, in := range b.ds.insts {
		if in.Stored && in.Large == large {
			out = append(out, i)
		}
	}
	return out
}

// phaseSTOW stores every instance of the data set, K per request.
func (b *bench) phaseSTOW(ctx context.Context) result {
	k := max(b.cfg.PerRequest, 1)
	n := len(b.ds.insts)
	// The large series goes first, so that a STOW phase cut by its time
	// limit still leaves the metadata phase something to measure.
	order := make([]int, 0, n)
	for _, large := range []bool{true, false} {
		for i, in := range b.ds.insts {
			if in.Large == large {
				order = append(order, i)
			}
		}
	}
	reqs := (n + k - 1) / k
	boundary := randomBoundary()
	ctype := `multipart/related; type="application/dicom"; boundary=` + boundary
	do := func(ctx context.Context, i int) (time.Duration, int64, int, error) {
		if i < 0 {
			return 0, 0, 0, nil // no warm-up: every instance is stored once
		}
		lo, hi := i*k, min((i+1)*k, n)
		var body bytes.Buffer
		for _, j := range order[lo:hi] {
			fmt.Fprintf(&body, "--%s\r\nContent-Type: application/dicom\r\n\r\n", boundary)
			body.Write(b.ds.bytes(j))
			body.WriteString("\r\n")
		}
		fmt.Fprintf(&body, "--%s--\r\n", boundary)
		size := int64(body.Len())
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.root+"/studies", &body)
		if err != nil {
			return 0, 0, 0, err
		}
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("Accept", acceptJSON)
		status, resp, lat, err := b.do(req)
		defer release(resp)
		if err != nil {
			return lat, 0, 0, err
		}
		if status != http.StatusOK {
			return lat, 0, 0, fmt.Errorf("POST /studies: HTTP %d: %.200s", status, resp)
		}
		for _, j := range order[lo:hi] {
			b.ds.insts[j].Stored = true
		}
		return lat, size, hi - lo, nil
	}
	s := runLoad(ctx, b.cfg.STOWConcurrency, limits{Count: reqs, Duration: b.cfg.STOWMaxDuration}, do)
	r := s.result(fmt.Sprintf("stow (%d/req)", k), b.cfg.STOWConcurrency)
	r.Note = fmt.Sprintf("%d instances of %d bytes", n, len(b.ds.tpl.data))
	return r
}

// countJSON is the number of objects in a DICOM JSON array.
func countJSON(body []byte) (int, error) {
	var arr []json.RawMessage
	if len(bytes.TrimSpace(body)) == 0 {
		return 0, nil // 204 No Content or an empty 200
	}
	if err := json.Unmarshal(body, &arr); err != nil {
		return 0, fmt.Errorf("response is not a JSON array: %w", err)
	}
	return len(arr), nil
}

// query is one QIDO request and the number of matches it must find:
// exactly want when exact, at least want otherwise (a server may hold
// other data too).
type query struct {
	path  string
	want  int
	exact bool
}

// qido runs the query gen(i) at concurrency conc.
func (b *bench) qido(ctx context.Context, name string, conc int, gen func(i int) query) result {
	do := func(ctx context.Context, i int) (time.Duration, int64, int, error) {
		q := gen(i)
		status, body, lat, err := b.get(ctx, q.path, acceptJSON)
		defer release(body)
		if err != nil {
			return lat, 0, 0, err
		}
		if status != http.StatusOK && status != http.StatusNoContent {
			return lat, 0, 0, statusErr(q.path, status, body)
		}
		got, err := countJSON(body)
		if err != nil {
			return lat, 0, 0, fmt.Errorf("GET %s: %w", q.path, err)
		}
		if (q.exact && got != q.want) || got < q.want {
			return lat, 0, 0, fmt.Errorf("GET %s: %d results, want %d", q.path, got, q.want)
		}
		return lat, int64(len(body)), 0, nil
	}
	s := runLoad(ctx, conc, b.readLimits(b.cfg.Requests), do)
	return s.result(name, conc)
}

func (b *bench) readLimits(count int) limits {
	return limits{Count: count, Duration: b.cfg.MaxDuration, Warmup: min(b.cfg.Warmup, count), PID: b.cfg.PID}
}

// normal lists the stored studies outside the large series, with the
// number of their stored instances per series.
func (b *bench) normalStudies() []studyInfo {
	var out []studyInfo
	for _, st := range b.ds.studies {
		if !st.Large && b.ds.insts[st.FirstInst].Stored {
			out = append(out, st)
		}
	}
	return out
}

func (b *bench) phaseQIDO(ctx context.Context, conc int) []result {
	studies := b.normalStudies()
	if len(studies) == 0 {
		return []result{{Phase: "qido", Concurrency: conc, Note: "skipped: no stored study"}}
	}
	ds := b.ds
	// Expected matches per patient, per date and per name prefix, from
	// what was stored.
	perPatient := map[string]int{}
	for _, st := range ds.studies {
		if ds.insts[st.FirstInst].Stored {
			perPatient[st.PatientID]++
		}
	}
	var out []result

	out = append(out, b.qido(ctx, "qido /studies?PatientID=", conc, func(i int) query {
		st := studies[pick(i, len(studies))]
		return query{"/studies?PatientID=" + queryEscape(st.PatientID), perPatient[st.PatientID], true}
	}))

	// A date range of about a tenth of the span, anchored on a study so
	// that it matches at least that one.
	window := max(ds.dateDays/10, 1)
	out = append(out, b.qido(ctx, "qido /studies?StudyDate=range", conc, func(i int) query {
		st := studies[pick(i, len(studies))]
		d, _ := time.Parse("20060102", st.Date)
		from := d.AddDate(0, 0, -window/2)
		to := from.AddDate(0, 0, window)
		return query{"/studies?StudyDate=" + from.Format("20060102") + "-" + to.Format("20060102"), 1, false}
	}))

	// Name prefix: the name without its last digit, so up to ten patients.
	out = append(out, b.qido(ctx, "qido /studies?PatientName=prefix*", conc, func(i int) query {
		st := studies[pick(i, len(studies))]
		prefix := strings.TrimRight(st.Name, " ")
		prefix = prefix[:len(prefix)-1] + "*"
		return query{"/studies?PatientName=" + queryEscape(prefix), 1, false}
	}))

	seriesCount := func(st studyInfo) int {
		n := 0
		for _, in := range ds.insts[st.FirstInst : st.FirstInst+len(st.Series)*ds.lay.InstPerSeries] {
			if in.Stored && in.InSeries == 0 {
				n++
			}
		}
		return n
	}
	out = append(out, b.qido(ctx, "qido /studies/{s}/series", conc, func(i int) query {
		st := studies[pick(i, len(studies))]
		return query{"/studies/" + st.UID + "/series", seriesCount(st), true}
	}))

	stored := b.stored(false)
	perSeries := map[string]int{}
	for _, i := range stored {
		perSeries[ds.insts[i].Series]++
	}
	out = append(out, b.qido(ctx, "qido /studies/{s}/series/{r}/instances", conc, func(i int) query {
		in := ds.insts[stored[pick(i, len(stored))]]
		return query{"/studies/" + in.Study + "/series/" + in.Series + "/instances", perSeries[in.Series], true}
	}))
	return out
}

// queryEscape escapes a QIDO value but leaves the wildcards * and ? as
// they are, the way viewers send them (Orthanc, for one, matches a
// literal "%2A" as a star character, not as a wildcard).
func queryEscape(s string) string {
	s = url.QueryEscape(s)
	return strings.NewReplacer("%2A", "*", "%3F", "?").Replace(s)
}

func instancePath(in instance) string {
	return "/studies/" + in.Study + "/series/" + in.Series + "/instances/" + in.SOP
}

func (b *bench) phaseFrames(ctx context.Context, conc int) result {
	return b.retrieve(ctx, conc, "wado frame /frames/1", "/frames/1", acceptFrame, b.ds.tpl.frameBytes)
}

func (b *bench) phaseInstance(ctx context.Context, conc int) result {
	return b.retrieve(ctx, conc, "wado instance", "", acceptInstance, len(b.ds.tpl.data))
}

// retrieve GETs instancePath+suffix of stored instances with accept; an
// answer must be 200 with a body of at least want bytes.
func (b *bench) retrieve(ctx context.Context, conc int, name, suffix, accept string, want int) result {
	stored := b.stored(false)
	if len(stored) == 0 {
		return result{Phase: name, Concurrency: conc, Note: "skipped: nothing stored"}
	}
	do := func(ctx context.Context, i int) (time.Duration, int64, int, error) {
		path := instancePath(b.ds.insts[stored[pick(i, len(stored))]]) + suffix
		status, body, lat, err := b.get(ctx, path, accept)
		defer release(body)
		if err != nil {
			return lat, 0, 0, err
		}
		if status != http.StatusOK {
			return lat, 0, 0, statusErr(path, status, body)
		}
		if len(body) < want {
			return lat, 0, 0, fmt.Errorf("GET %s: %d bytes, want at least %d", path, len(body), want)
		}
		return lat, int64(len(body)), 0, nil
	}
	return runLoad(ctx, conc, b.readLimits(b.cfg.Requests), do).result(name, conc)
}

func (b *bench) phaseMetadata(ctx context.Context, conc int) result {
	stored := b.stored(true)
	name := fmt.Sprintf("series metadata (%d inst)", len(stored))
	if len(stored) == 0 {
		return result{Phase: "series metadata", Concurrency: conc, Note: "skipped: no large series stored"}
	}
	in := b.ds.insts[stored[0]]
	path := "/studies/" + in.Study + "/series/" + in.Series + "/metadata"
	do := func(ctx context.Context, i int) (time.Duration, int64, int, error) {
		status, body, lat, err := b.get(ctx, path, acceptJSON)
		defer release(body)
		if err != nil {
			return lat, 0, 0, err
		}
		if status != http.StatusOK {
			return lat, 0, 0, statusErr(path, status, body)
		}
		got, err := countJSON(body)
		if err != nil {
			return lat, 0, 0, fmt.Errorf("GET %s: %w", path, err)
		}
		if got != len(stored) {
			return lat, 0, 0, fmt.Errorf("GET %s: %d instances, want %d", path, got, len(stored))
		}
		return lat, int64(len(body)), 0, nil
	}
	lim := b.readLimits(b.cfg.MetadataRequests)
	lim.Warmup = min(lim.Warmup, 2)
	return runLoad(ctx, conc, lim, do).result(name, conc)
}

func randomBoundary() string {
	var buf [16]byte
	if _, err := rand.Read(buf[:]); err != nil {
		panic(err)
	}
	return "pacsbench-" + hex.EncodeToString(buf[:])
}

var errNotLoopback = errors.New("only loopback URLs are allowed (127.0.0.0/8, ::1, localhost)")
