package httpserver

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serve runs h behind a Listener with a cap of maxConns on loopback.
func serve(t *testing.T, maxConns int, h http.Handler) (*Listener, string) {
	t.Helper()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := NewListener(tcp, maxConns, 0)
	srv := &http.Server{Handler: Wrap(h, 0), ConnContext: ln.ConnContext, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln, tcp.Addr().String()
}

// get sends one GET on c (kept alive), with the header lines hdr, and
// returns the response and its body.
func get(t *testing.T, c net.Conn, br *bufio.Reader, hdr string) (*http.Response, string) {
	t.Helper()
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n%s\r\n", hdr)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res, string(b)
}

// The first maxConns connections are served as usual; the next is
// accepted and marked; once one closes, a new one is served again.
func TestListener_capMarksConnections(t *testing.T) {
	ln, addr := serve(t, 2, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, OverCap(r.Context()))
	}))
	var conns []net.Conn
	for i, want := range []string{"false", "false", "true"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
		if _, over := get(t, c, bufio.NewReader(c), ""); over != want {
			t.Errorf("connection %d: OverCap %s, want %s", i+1, over, want)
		}
	}
	if n := ln.Open(); n != 3 {
		t.Errorf("Open() = %d, want 3", n)
	}
	conns[0].Close()
	conns[2].Close()
	for i := 0; ln.Open() != 1; i++ { // the server notices the closes when its reads fail
		if i > 500 {
			t.Fatalf("Open() = %d after two closes, want 1", ln.Open())
		}
		time.Sleep(10 * time.Millisecond)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, over := get(t, c, bufio.NewReader(c), ""); over != "false" {
		t.Errorf("a new connection under the cap again: OverCap %s", over)
	}
}

func TestWrap_requestID(t *testing.T) {
	_, addr := serve(t, 0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	seen := map[string]bool{}
	for _, tc := range []struct{ sent, want string }{
		{"", ""},
		{"", ""},
		{"client-trace-42", "client-trace-42"},
		{"0b7c9e2a-7f3d-4bde-9a51-3c2f1e8d4a60", "0b7c9e2a-7f3d-4bde-9a51-3c2f1e8d4a60"},
		{"has space", ""},
		{"quote\"in", ""},
		{strings.Repeat("a", 129), ""},
	} {
		hdr := ""
		if tc.sent != "" {
			hdr = "X-Request-ID: " + tc.sent + "\r\n"
		}
		res, _ := get(t, c, br, hdr)
		id := res.Header.Get(HeaderRequestID)
		switch {
		case tc.want != "" && id != tc.want:
			t.Errorf("sent %q: X-Request-ID %q, want it kept", tc.sent, id)
		case tc.want == "" && (len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" || seen[id]):
			t.Errorf("sent %q: X-Request-ID %q, want a new 32-digit hex ID", tc.sent, id)
		}
		seen[id] = true
	}
}
