package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Tests of the bounds against slow and hostile clients
// (--upload-idle-timeout, --write-timeout, --max-conns) and of early
// refusals a client can read, on the real binary.

const (
	largeStudy  = "2.25.100200300400500600700800900"
	largeSeries = "2.25.100200300400500600700800901"
	largeSOP    = "2.25.100200300400500600700800902"
	largeFrames = 8 // of bigFrameSize bytes: 8 MiB of pixel data
)

// largeInstance is a multi-frame 8-bit grayscale instance of largeFrames
// 1 MiB frames: its response outgrows what the socket buffers of a
// client that never reads can hold.
func largeInstance() []byte {
	const sopClass = "1.2.840.10008.5.1.4.1.1.7.2" // Multi-frame Grayscale Byte SC
	var meta []byte
	meta = explicitLE(meta, 0x0002, 0x0001, "OB", []byte{0, 1})
	meta = explicitLE(meta, 0x0002, 0x0002, "UI", []byte(sopClass))
	meta = explicitLE(meta, 0x0002, 0x0003, "UI", []byte(largeSOP))
	meta = explicitLE(meta, 0x0002, 0x0010, "UI", []byte("1.2.840.10008.1.2.1"))
	b := make([]byte, 128, 1024+largeFrames*bigFrameSize)
	b = append(b, "DICM"...)
	b = explicitLE(b, 0x0002, 0x0000, "UL", binary.LittleEndian.AppendUint32(nil, uint32(len(meta))))
	b = append(b, meta...)
	for _, e := range []struct {
		g, e uint16
		vr   string
		v    []byte
	}{
		{0x0008, 0x0016, "UI", []byte(sopClass)},
		{0x0008, 0x0018, "UI", []byte(largeSOP)},
		{0x0008, 0x0060, "CS", []byte("OT")},
		{0x0010, 0x0010, "PN", []byte("Limits^Test")},
		{0x0010, 0x0020, "LO", []byte("LIM1")},
		{0x0020, 0x000D, "UI", []byte(largeStudy)},
		{0x0020, 0x000E, "UI", []byte(largeSeries)},
		{0x0020, 0x0013, "IS", []byte("1")},
		{0x0028, 0x0002, "US", us(1)},
		{0x0028, 0x0004, "CS", []byte("MONOCHROME2")},
		{0x0028, 0x0008, "IS", []byte(strconv.Itoa(largeFrames))},
		{0x0028, 0x0010, "US", us(bigRows)},
		{0x0028, 0x0011, "US", us(bigCols)},
		{0x0028, 0x0100, "US", us(8)},
		{0x0028, 0x0101, "US", us(8)},
		{0x0028, 0x0102, "US", us(7)},
		{0x0028, 0x0103, "US", us(0)},
	} {
		b = explicitLE(b, e.g, e.e, e.vr, e.v)
	}
	b = binary.LittleEndian.AppendUint16(b, 0x7FE0)
	b = binary.LittleEndian.AppendUint16(b, 0x0010)
	b = append(b, "OB\x00\x00"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(largeFrames*bigFrameSize))
	for f := range largeFrames {
		b = appendFrame(b, f)
	}
	return b
}

// dialSmall connects to the server with small socket buffers (set
// before the handshake, so the advertised window is small too).
func dialSmall(t *testing.T, s *server, bufSize int) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, bufSize); serr == nil {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, bufSize)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", strings.TrimPrefix(s.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func dial(t *testing.T, s *server) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(s.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// stowHead is the request line and header of a STOW whose body of n
// bytes follows (or never does).
func stowHead(n int, boundary string) string {
	return "POST /dicom-web/studies HTTP/1.1\r\nHost: pacs\r\n" +
		`Content-Type: multipart/related; type="application/dicom"; boundary=` + boundary + "\r\n" +
		"Content-Length: " + strconv.Itoa(n) + "\r\n\r\n"
}

// readUntilClosed reads c until the server closes it, or until the
// deadline; it returns the bytes read and the error that ended the
// reading (nil: the connection was closed).
func readUntilClosed(c net.Conn, deadline time.Time) (int64, error) {
	_ = c.SetReadDeadline(deadline)
	n, err := io.Copy(io.Discard, c)
	if err != nil && (errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed)) {
		err = nil // reset by the server: closed too
	}
	return n, err
}

// timedGet is one GET on a new connection and the time its answer took.
func timedGet(t *testing.T, url string) (int, time.Duration) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Minute}
	start := time.Now()
	res, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, time.Since(start)
}

// 200 uploads whose body never comes and 200 downloads nobody reads, all
// at once, block nothing: /healthz answers within a second, a STOW and a
// QIDO succeed; then the server cuts them all (the idle timeout and the
// write timeout), each connection closed by the server.
func TestServe_slowClientsDoNotBlock(t *testing.T) {
	const n = 200
	const timeout = 10 * time.Second
	srv := startServer(t, nil, "--data", t.TempDir(), "--upload-idle-timeout", timeout.String(), "--write-timeout", timeout.String())
	large := largeInstance()
	body, ctype := multipartOf(t, large)
	res, err := http.Post(srv.base+"/dicom-web/studies", ctype, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("STOW of the large instance: %d", res.StatusCode)
	}

	start := time.Now()
	var stalled, unread []net.Conn
	for range n { // headers sent, the body never
		c := dial(t, srv)
		if _, err := io.WriteString(c, stowHead(1<<20, "stalled")); err != nil {
			t.Fatal(err)
		}
		stalled = append(stalled, c)
	}
	get := "GET /dicom-web/studies/" + largeStudy + "/series/" + largeSeries + "/instances/" + largeSOP + " HTTP/1.1\r\n" +
		"Host: pacs\r\nAccept: application/dicom; transfer-syntax=*\r\n\r\n"
	for range n { // asked for 8 MiB, never read
		c := dialSmall(t, srv, 4096)
		if _, err := io.WriteString(c, get); err != nil {
			t.Fatal(err)
		}
		unread = append(unread, c)
	}
	time.Sleep(time.Second) // let the server take them all up and fill the unread sockets
	t.Logf("400 slow connections open after %v", time.Since(start))

	code, took := timedGet(t, srv.base+"/healthz")
	if code != 200 || took > time.Second {
		t.Errorf("/healthz among 400 slow clients: %d after %v, want 200 within a second", code, took)
	}
	t.Logf("/healthz answered in %v", took)
	if code, resp := srv.stow(t, corpus(t, "study/s02_ct/*.dcm")[0]); code != 200 || seqLen(resp, "00081199") != 1 {
		t.Errorf("STOW among 400 slow clients: %d %v", code, resp)
	}
	if code, b := srv.get(t, "/dicom-web/studies?StudyInstanceUID="+studyUID); code != 200 || !strings.Contains(string(b), studyUID) {
		t.Errorf("QIDO among 400 slow clients: %d %s", code, b)
	}
	if d := time.Since(start); d > timeout {
		t.Logf("the checks ended %v after the slow clients started, past the timeouts: they did not all run while those were held", d)
	}

	// The server cuts every one of them. The unread responses are read
	// only once their writes have surely timed out (their last write
	// began within the second after start): by then the server has
	// closed them, and what arrives is what the socket buffers held, not
	// the whole response.
	time.Sleep(time.Until(start.Add(2*timeout + time.Second)))
	deadline := time.Now().Add(2 * time.Minute)
	var wg sync.WaitGroup
	errs := make(chan string, 2*n)
	for i, c := range stalled {
		wg.Go(func() {
			if _, err := readUntilClosed(c, deadline); err != nil {
				errs <- fmt.Sprintf("stalled upload %d: not closed by the server: %v", i, err)
			}
		})
	}
	for i, c := range unread {
		wg.Go(func() {
			got, err := readUntilClosed(c, deadline)
			if err != nil || got >= int64(len(large)) {
				errs <- fmt.Sprintf("unread response %d: %d bytes of %d arrived, %v; want it cut", i, got, len(large), err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	t.Logf("all 400 cut %v after they started", time.Since(start))
	if code, took := timedGet(t, srv.base+"/healthz"); code != 200 {
		t.Errorf("/healthz afterwards: %d (%v)", code, took)
	}
}

// multipartOf is a STOW body of one part.
func multipartOf(t *testing.T, dcm []byte) ([]byte, string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "part.dcm")
	if err := os.WriteFile(f, dcm, 0o600); err != nil {
		t.Fatal(err)
	}
	return stowBody(t, f)
}

// An upload that stops sending half-way through an instance is cut after
// the idle timeout: the server closes the connection, logs 408, and
// stores nothing of it (no index row, no object).
func TestServe_stalledUploadCut(t *testing.T) {
	data := t.TempDir()
	srv := startServer(t, nil, "--data", data, "--upload-idle-timeout", "1s")
	file := corpus(t, "study/s02_ct/*.dcm")[0]
	dcm, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	part := "--cut\r\nContent-Type: application/dicom\r\n\r\n"
	total := len(part) + len(dcm) + len("\r\n--cut--\r\n")
	c := dial(t, srv)
	if _, err := io.WriteString(c, stowHead(total, "cut")+part); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(dcm[:len(dcm)/2]); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := readUntilClosed(c, time.Now().Add(time.Minute)); err != nil {
		t.Fatalf("the stalled upload's connection was not closed: %v", err)
	}
	t.Logf("closed %v after the last byte", time.Since(start))

	if code, b := srv.get(t, "/dicom-web/instances"); code != 200 || string(b) != "[]" {
		t.Errorf("QIDO after the cut upload: %d %s, want no instance", code, b)
	}
	err = filepath.WalkDir(filepath.Join(data, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("object left by the cut upload: %s", p)
		}
		return err
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	found := false
	for line := range strings.SplitSeq(srv.logText(), "\n") {
		var l struct {
			Msg, Method, Path string
			Status            int
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "request" && l.Method == "POST" && l.Status == http.StatusRequestTimeout {
			found = true
		}
	}
	if !found {
		t.Errorf("no request line with status 408 for the cut upload:\n%s", srv.logText())
	}
	// The server goes on storing.
	if code, _ := srv.stow(t, file); code != 200 {
		t.Errorf("STOW after the cut: %d", code)
	}
}

// Connections beyond --max-conns: requests are answered 503 with
// Retry-After and Connection: close, health checks are answered; once
// connections close, new ones are served again.
func TestServe_maxConns(t *testing.T) {
	srv := startServer(t, nil, "--data", t.TempDir(), "--max-conns", "3")
	// startServer's readiness checks used keep-alive connections of the
	// default client: close them so that they do not count.
	http.DefaultClient.CloseIdleConnections()
	var held []net.Conn
	roundTrip := func(c net.Conn, path string) *http.Response {
		t.Helper()
		if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: pacs\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		res.Body = io.NopCloser(bytes.NewReader(b))
		return res
	}
	// Fill the cap with kept-alive connections. The server may still be
	// closing the readiness checks' connections: wait until a held one
	// is served.
	for len(held) < 3 {
		c := dial(t, srv)
		if res := roundTrip(c, "/dicom-web/studies"); res.StatusCode == 200 {
			held = append(held, c)
			continue
		}
		c.Close()
		time.Sleep(20 * time.Millisecond)
	}
	res := roundTrip(dial(t, srv), "/dicom-web/studies")
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 503 || res.Header.Get("Retry-After") == "" || !res.Close || !strings.Contains(string(b), res.Header.Get("X-Request-ID")) {
		t.Errorf("QIDO over the cap: %d, Retry-After %q, close %v, %s", res.StatusCode, res.Header.Get("Retry-After"), res.Close, b)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if res := roundTrip(dial(t, srv), p); res.StatusCode != 200 || !res.Close {
			t.Errorf("%s over the cap: %d, close %v; want 200 and the connection closed", p, res.StatusCode, res.Close)
		}
	}
	for _, c := range held {
		c.Close()
	}
	for i := 0; ; i++ {
		res := roundTrip(dial(t, srv), "/dicom-web/studies")
		if res.StatusCode == 200 {
			break
		}
		if i > 500 {
			t.Fatalf("QIDO after the held connections closed: still %d", res.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A request refused early, with a body of a few hundred KB that the
// server does not want: a client that sends the whole body before it
// reads (with small socket buffers, so the body does not fit in them)
// gets the 415, not a reset. A body beyond the bound the server discards
// is answered too, with Connection: close.
func TestServe_earlyRefusalReadable(t *testing.T) {
	srv := startServer(t, nil, "--data", t.TempDir())
	for _, tc := range []struct {
		name  string
		size  int
		close bool
	}{{"400KB", 400 << 10, false}, {"3MB", 3 << 20, true}} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialSmall(t, srv, 8192)
			req := "POST /dicom-web/studies HTTP/1.1\r\nHost: pacs\r\nContent-Type: text/plain\r\n" +
				"Content-Length: " + strconv.Itoa(tc.size) + "\r\n\r\n"
			body := bytes.Repeat([]byte("not a DICOM body\n"), tc.size/17+1)[:tc.size]
			var res *http.Response
			var rerr error
			if !tc.close {
				// Send everything, then read.
				if _, err := c.Write(append([]byte(req), body...)); err != nil {
					t.Fatalf("sending the body: %v", err)
				}
				res, rerr = http.ReadResponse(bufio.NewReader(c), nil)
			} else {
				// Beyond the bound: read while sending (the rest is never read).
				go c.Write(append([]byte(req), body...))
				res, rerr = http.ReadResponse(bufio.NewReader(c), nil)
			}
			if rerr != nil {
				t.Fatalf("reading the answer: %v", rerr)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusUnsupportedMediaType || res.Close != tc.close {
				t.Errorf("%d, close %v: %s; want 415, close %v", res.StatusCode, res.Close, b, tc.close)
			}
		})
	}
}
