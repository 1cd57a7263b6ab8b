package pgindex_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cloudpacs/pacs/internal/storage"
	"github.com/cloudpacs/pacs/internal/storage/fsblob"
	"github.com/cloudpacs/pacs/internal/storage/pgindex"
	"github.com/cloudpacs/pacs/internal/testenv"
)

// ackDropper is a TCP proxy in front of a real PostgreSQL that loses the
// answer to COMMIT: when armed, the next transaction that inserted an
// instance row is forwarded to the server and committed there, its
// CommandComplete is swallowed, the backend is terminated with
// pg_terminate_backend, and the client's connection is cut. The client
// sees a connection error although its row is durable: the lost
// acknowledgement of a connection reset during COMMIT.
type ackDropper struct {
	t       *testing.T
	ln      net.Listener
	target  string
	admin   string // DSN of a direct connection, for pg_terminate_backend
	drop    atomic.Int32
	dropped atomic.Int32
	wg      sync.WaitGroup
}

func newAckDropper(t *testing.T, dsn string) (*ackDropper, string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		t.Fatalf("want a postgres:// URL DSN, got %q", dsn)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &ackDropper{t: t, ln: ln, target: u.Host, admin: dsn}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	via := *u
	via.Host = ln.Addr().String()
	return p, via.String()
}

func (p *ackDropper) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.relay(c, s)
		}()
	}
}

// conn is the state of one proxied connection.
type conn struct {
	pid      atomic.Int32
	armed    atomic.Bool // the next COMMIT of this connection loses its answer
	putStmts map[string]bool
	inPut    bool
}

func (p *ackDropper) relay(client, server net.Conn) {
	st := &conn{putStmts: map[string]bool{}}
	var once sync.Once
	closeBoth := func() { once.Do(func() { client.Close(); server.Close() }) }
	defer closeBoth()
	go func() {
		defer closeBoth()
		p.clientToServer(client, server, st)
	}()
	br := bufio.NewReader(server)
	for {
		typ, body, err := readMsg(br)
		if err != nil {
			return
		}
		switch typ {
		case 'K':
			if len(body) >= 4 {
				st.pid.Store(int32(binary.BigEndian.Uint32(body)))
			}
		case 'C':
			if st.armed.Load() && strings.HasPrefix(string(body), "COMMIT") {
				// Committed on the server; the client never hears it.
				p.terminate(st.pid.Load())
				p.dropped.Add(1)
				return
			}
		}
		if err := writeMsg(client, typ, body); err != nil {
			return
		}
	}
}

func (p *ackDropper) clientToServer(client, server net.Conn, st *conn) {
	br := bufio.NewReader(client)
	// The startup message has no type byte.
	var n [4]byte
	if _, err := io.ReadFull(br, n[:]); err != nil {
		return
	}
	startup := make([]byte, binary.BigEndian.Uint32(n[:]))
	copy(startup, n[:])
	if _, err := io.ReadFull(br, startup[4:]); err != nil {
		return
	}
	if _, err := server.Write(startup); err != nil {
		return
	}
	for {
		typ, body, err := readMsg(br)
		if err != nil {
			return
		}
		switch typ {
		case 'Q': // simple query
			q := strings.ToLower(strings.TrimSpace(strings.TrimRight(cstring(body), "; ")))
			switch {
			case strings.Contains(q, "insert into instances"):
				st.inPut = true
			case q == "begin" || strings.HasPrefix(q, "begin ") || q == "rollback":
				st.inPut = false
			case q == "commit":
				if st.inPut && p.drop.Add(-1) >= 0 {
					st.armed.Store(true)
				} else {
					p.drop.Add(1)
				}
				st.inPut = false
			}
		case 'P': // Parse: statement name, query
			name := cstring(body)
			q := strings.ToLower(cstring(body[len(name)+1:]))
			st.putStmts[name] = strings.Contains(q, "insert into instances")
		case 'B': // Bind: portal, statement
			portal := cstring(body)
			if st.putStmts[cstring(body[len(portal)+1:])] {
				st.inPut = true
			}
		}
		if err := writeMsg(server, typ, body); err != nil {
			return
		}
	}
}

func (p *ackDropper) terminate(pid int32) {
	ctx := context.Background()
	c, err := pgx.Connect(ctx, p.admin)
	if err != nil {
		p.t.Errorf("admin connection: %v", err)
		return
	}
	defer c.Close(ctx)
	var ok bool
	if err := c.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, pid).Scan(&ok); err != nil || !ok {
		p.t.Errorf("pg_terminate_backend(%d) = %v, %v", pid, ok, err)
	}
}

func readMsg(br *bufio.Reader) (byte, []byte, error) {
	typ, err := br.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	var n [4]byte
	if _, err := io.ReadFull(br, n[:]); err != nil {
		return 0, nil, err
	}
	l := binary.BigEndian.Uint32(n[:])
	if l < 4 || l > 1<<30 {
		return 0, nil, errors.New("bad message length")
	}
	body := make([]byte, l-4)
	_, err = io.ReadFull(br, body)
	return typ, body, err
}

func writeMsg(w io.Writer, typ byte, body []byte) error {
	b := make([]byte, 5, 5+len(body))
	b[0] = typ
	binary.BigEndian.PutUint32(b[1:], uint32(len(body)+4))
	_, err := w.Write(append(b, body...))
	return err
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return string(b[:i])
	}
	return string(b)
}

const (
	corpusCT = "../../../testdata/dicom/images/ct_small_signed_no_window.dcm"
	ctSOP    = "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"
)

func ctVariant(t *testing.T, data []byte, i int) ([]byte, string) {
	t.Helper()
	suffix := []byte(strings.Repeat("0", 4))
	for k, v := 3, i; k >= 0; k, v = k-1, v/10 {
		suffix[k] = byte('0' + v%10)
	}
	uid := ctSOP[:len(ctSOP)-4] + string(suffix)
	return bytes.ReplaceAll(data, []byte(ctSOP), []byte(uid)), uid
}

// A connection reset during COMMIT (the row is durable, the answer lost)
// never deletes the new blob: every instance the index holds has its
// object, a retry stores nothing twice, and the sweep finds no orphan.
// Against a real PostgreSQL whose backend is terminated at the moment of
// commit, one instance at a time and in a pipelined batch.
func TestLostCommitAnswerKeepsBlob(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	direct, err := pgindex.Open(t.Context(), dsn) // migrations applied here, not through the proxy
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	proxy, via := newAckDropper(t, dsn)
	idx, err := pgindex.Open(t.Context(), via)
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	blobs, err := fsblob.New(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	a := &storage.Archive{Blobs: blobs, Index: idx, MetadataRebuildDelay: -1}
	defer a.Close()
	data, err := os.ReadFile(corpusCT)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(ctSOP)) {
		t.Fatalf("%s does not hold %s", corpusCT, ctSOP)
	}

	// One at a time: each answer is lost, then the sender retries.
	for i := range 10 {
		b, uid := ctVariant(t, data, i)
		proxy.drop.Store(1)
		before := proxy.dropped.Load()
		_, err := a.Store(t.Context(), bytes.NewReader(b), "")
		if proxy.dropped.Load() != before+1 {
			t.Fatalf("round %d: the proxy lost no commit answer (Store error %v)", i, err)
		}
		if err == nil {
			t.Fatalf("round %d: Store succeeded although its commit answer was lost", i)
		}
		in, err := direct.Instance(t.Context(), "", "", uid)
		if err != nil {
			t.Fatalf("round %d: the committed row is not there: %v", i, err)
		}
		if _, err := blobs.Stat(t.Context(), in.BlobKey); err != nil {
			t.Fatalf("round %d: the indexed instance's blob is gone: %v", i, err)
		}
		res, err := a.Store(t.Context(), bytes.NewReader(b), "")
		if err != nil || !res.Duplicate {
			t.Fatalf("round %d: retry = %+v, %v; want a duplicate success", i, res, err)
		}
	}

	// Pipelined: a batch of 40 of which the first 12 commit answers are lost.
	proxy.drop.Store(12)
	var items []storage.Item
	for i := range 40 {
		b, _ := ctVariant(t, data, 100+i)
		items = append(items, storage.Item{Body: bytes.NewReader(b)})
	}
	i := 0
	src := sourceFunc(func() (storage.Item, error) {
		if i == len(items) {
			return storage.Item{}, io.EOF
		}
		i++
		return items[i-1], nil
	})
	failed := 0
	if err := a.StoreAll(t.Context(), src, func(o storage.Outcome) {
		if o.Err != nil {
			failed++
		}
	}); err != nil {
		t.Fatal(err)
	}
	if proxy.dropped.Load() < 10+12 || failed < 12 {
		t.Fatalf("dropped %d answers, %d items failed; want at least 22 and 12", proxy.dropped.Load(), failed)
	}

	// Every row has its object, and no object is without a row.
	res, err := direct.Search(t.Context(), storage.Query{Level: storage.LevelInstance, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 50 {
		t.Errorf("%d instances indexed, want 50", len(res))
	}
	for _, r := range res {
		if _, err := blobs.Stat(t.Context(), r.Instance.BlobKey); err != nil {
			t.Errorf("instance %s: blob %s: %v", r.Instance.SOPInstanceUID, r.Instance.BlobKey, err)
		}
	}
	a.Index = direct
	if n, err := a.Sweep(t.Context(), 0); err != nil || n != 0 {
		t.Errorf("Sweep = %d, %v; want nothing to remove", n, err)
	}
}

type sourceFunc func() (storage.Item, error)

func (f sourceFunc) Next(context.Context) (storage.Item, error) { return f() }
