package httpserver

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Listener wraps a net.Listener: it counts the connections open at once
// and bounds every write to them.
//
// A connection accepted while maxConns are already open is still
// accepted, not refused or left in the backlog: a health check must be
// answered however many clients hold connections. It is marked instead;
// use ConnContext as the http.Server's ConnContext and OverCap finds the
// mark in each of its requests' contexts. The handler decides what a
// marked connection gets (cmd/pacs: 503 and Connection: close, except
// /healthz and /readyz).
//
// Every Write to a connection gets a deadline of writeTimeout from the
// moment it starts; the deadline moves forward before each write, so a
// long response whose reader keeps reading is never cut, and one whose
// reader stopped fails WriteTimeout after its last write began (the
// handler's write returns an error and the server closes the
// connection). Done here rather than per response, every byte the
// server writes is covered: a "100 Continue", the last buffered bytes
// flushed after the handler returned, an error answer between requests.
type Listener struct {
	net.Listener
	maxConns     int64
	writeTimeout time.Duration
	open         atomic.Int64
}

// NewListener wraps ln. maxConns <= 0: no cap; writeTimeout <= 0: writes
// have no deadline.
func NewListener(ln net.Listener, maxConns int, writeTimeout time.Duration) *Listener {
	return &Listener{Listener: ln, maxConns: int64(maxConns), writeTimeout: writeTimeout}
}

// Accept waits for the next connection, counts it and marks it when it
// is over the cap.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	n := l.open.Add(1)
	return &conn{Conn: c, l: l, over: l.maxConns > 0 && n > l.maxConns}, nil
}

// Open is the number of connections accepted and not yet closed.
func (l *Listener) Open() int { return int(l.open.Load()) }

type overCapKey struct{}

// ConnContext is for http.Server.ConnContext: the context of a
// connection accepted over the cap carries the mark OverCap reports.
func (l *Listener) ConnContext(ctx context.Context, c net.Conn) context.Context {
	if cc, ok := c.(*conn); ok && cc.over {
		return context.WithValue(ctx, overCapKey{}, true)
	}
	return ctx
}

// OverCap reports whether ctx (a request's) belongs to a connection
// accepted while the Listener's cap was reached.
func OverCap(ctx context.Context) bool {
	over, _ := ctx.Value(overCapKey{}).(bool)
	return over
}

type conn struct {
	net.Conn
	l      *Listener
	over   bool
	closed sync.Once
}

func (c *conn) Write(p []byte) (int, error) {
	if d := c.l.writeTimeout; d > 0 {
		if err := c.Conn.SetWriteDeadline(time.Now().Add(d)); err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(p)
}

// CloseWrite half-closes a TCP connection. net/http calls it (found by
// an interface check) before closing a connection whose request body
// was not read to the end, so that the client reads the answer rather
// than a reset; the wrapper must not hide it.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.closed.Do(func() { c.l.open.Add(-1) })
	return err
}
