// Package fsblob is a storage.BlobStore on a local folder, the default
// blob store of the embedded deployment.
//
// Keys map to paths under the root ("instances/ab/<hex>.dcm" ->
// root/instances/ab/<hex>.dcm). Writes go to a temporary file in the
// target folder (name ".tmp-*.partial", never listed), which Commit
// syncs, renames over the final name and makes durable by syncing the
// folder. A crash leaves at worst a temporary file; Sweep removes old ones.
package fsblob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cloudpacs/pacs/internal/storage"
)

var _ storage.BlobStore = (*Store)(nil)

const (
	tmpPrefix = ".tmp-"
	tmpSuffix = ".partial"
)

// Store keeps blobs as files under a root folder.
type Store struct {
	root string
}

// New returns a store rooted at dir, creating dir if needed.
func New(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("fsblob: %w", err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("fsblob: %w", err)
	}
	return &Store{root: abs}, nil
}

// Root is the store's folder.
func (s *Store) Root() string { return s.root }

func (s *Store) path(key string) (string, error) {
	if err := storage.CheckKey(key); err != nil {
		return "", err
	}
	if isTemp(path.Base(key)) {
		return "", fmt.Errorf("%w: %q uses the temporary file prefix", storage.ErrInvalidKey, key)
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

func isTemp(name string) bool { return strings.HasPrefix(name, tmpPrefix) }

func notFound(op, key string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("fsblob: %s %q: %w", op, key, storage.ErrNotFound)
	}
	return fmt.Errorf("fsblob: %s %q: %w", op, key, err)
}

// Create starts a write of key into a temporary file next to its final
// place.
func (s *Store) Create(ctx context.Context, key string) (storage.BlobWriter, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, fmt.Errorf("fsblob: create: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("fsblob: create %q: %w", key, err)
	}
	dir := filepath.Dir(p)
	if err := s.mkdirs(dir); err != nil {
		return nil, fmt.Errorf("fsblob: create %q: %w", key, err)
	}
	f, err := os.CreateTemp(dir, tmpPrefix+"*"+tmpSuffix)
	if err != nil {
		return nil, fmt.Errorf("fsblob: create %q: %w", key, err)
	}
	return &writer{ctx: ctx, key: key, final: p, f: f}, nil
}

type writer struct {
	ctx   context.Context
	key   string
	final string
	f     *os.File // nil once committed or aborted
	n     int64
}

func (w *writer) Write(p []byte) (int, error) {
	if w.f == nil {
		return 0, fmt.Errorf("fsblob: write %q: writer closed", w.key)
	}
	n, err := w.f.Write(p)
	w.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("fsblob: write %q: %w", w.key, err)
	}
	return n, nil
}

// Commit syncs the temporary file, renames it to its key and syncs the
// folder, so the object survives a crash once Commit returns.
func (w *writer) Commit() (storage.BlobInfo, error) {
	if w.f == nil {
		return storage.BlobInfo{}, fmt.Errorf("fsblob: commit %q: writer closed", w.key)
	}
	fail := func(err error) (storage.BlobInfo, error) {
		_ = w.Abort()
		return storage.BlobInfo{}, fmt.Errorf("fsblob: commit %q: %w", w.key, err)
	}
	if err := w.ctx.Err(); err != nil {
		return fail(err)
	}
	if err := w.f.Sync(); err != nil {
		return fail(err)
	}
	fi, err := w.f.Stat()
	if err != nil {
		return fail(err)
	}
	tmp := w.f.Name()
	if err := w.f.Close(); err != nil {
		w.f = nil
		_ = os.Remove(tmp)
		return storage.BlobInfo{}, fmt.Errorf("fsblob: commit %q: %w", w.key, err)
	}
	w.f = nil
	if err := w.ctx.Err(); err != nil { // last chance before publishing
		_ = os.Remove(tmp)
		return storage.BlobInfo{}, fmt.Errorf("fsblob: commit %q: %w", w.key, err)
	}
	if err := os.Rename(tmp, w.final); err != nil {
		_ = os.Remove(tmp)
		return storage.BlobInfo{}, fmt.Errorf("fsblob: commit %q: %w", w.key, err)
	}
	if err := syncDir(filepath.Dir(w.final)); err != nil {
		// The object is visible but perhaps not durable; report it so the
		// caller does not commit an index row for it.
		_ = os.Remove(w.final)
		return storage.BlobInfo{}, fmt.Errorf("fsblob: commit %q: sync dir: %w", w.key, err)
	}
	return storage.BlobInfo{Key: w.key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Abort removes the temporary file. Idempotent; a no-op after Commit.
func (w *writer) Abort() error {
	if w.f == nil {
		return nil
	}
	name := w.f.Name()
	_ = w.f.Close()
	w.f = nil
	if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("fsblob: abort %q: %w", w.key, err)
	}
	return nil
}

// mkdirs creates dir and its missing parents under the root, durably:
// the folder of each one created is synced, so that a committed object's
// path survives a crash even in a fan-out folder created for it (Commit
// syncs only the object's own folder). Existing folders cost one stat.
func (s *Store) mkdirs(dir string) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir && len(parent) > len(s.root) {
		if err := s.mkdirs(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o750); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return err
		}
		// A concurrent Create made it and may not have synced parent yet.
	}
	return syncDir(parent)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Open reads [off, off+n) of key straight from the file.
func (s *Store) Open(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, fmt.Errorf("fsblob: open: %w", err)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, notFound("open", key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("fsblob: open %q: %w", key, err)
	}
	size := fi.Size()
	off = min(max(off, 0), size)
	if n < 0 || off+n > size {
		n = size - off
	}
	return &rangeReader{SectionReader: io.NewSectionReader(f, off, n), f: f}, nil
}

type rangeReader struct {
	*io.SectionReader
	f *os.File
}

func (r *rangeReader) Close() error { return r.f.Close() }

// Stat reports size and modification time of key.
func (s *Store) Stat(ctx context.Context, key string) (storage.BlobInfo, error) {
	p, err := s.path(key)
	if err != nil {
		return storage.BlobInfo{}, fmt.Errorf("fsblob: stat: %w", err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		return storage.BlobInfo{}, notFound("stat", key, err)
	}
	if !fi.Mode().IsRegular() {
		return storage.BlobInfo{}, fmt.Errorf("fsblob: stat %q: %w", key, storage.ErrNotFound)
	}
	return storage.BlobInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Delete removes key; a missing key is not an error. Empty fan-out
// folders are left in place (they are reused).
func (s *Store) Delete(ctx context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return fmt.Errorf("fsblob: delete: %w", err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("fsblob: delete %q: %w", key, err)
	}
	return nil
}

// List calls fn for each committed key under prefix, in key order
// (byte order of the slash-separated keys), skipping temporary files.
// Each folder is read whole, then visited; fn may delete keys.
func (s *Store) List(ctx context.Context, prefix string, fn func(storage.BlobInfo) error) error {
	// Start at the deepest folder the prefix names.
	dirKey := ""
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		dirKey = prefix[:i]
	}
	if dirKey != "" {
		if err := storage.CheckKey(dirKey); err != nil {
			return fmt.Errorf("fsblob: list: %w", err)
		}
	}
	err := s.walk(ctx, dirKey, prefix, fn)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (s *Store) walk(ctx context.Context, dirKey, prefix string, fn func(storage.BlobInfo) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	entries, err := os.ReadDir(filepath.Join(s.root, filepath.FromSlash(dirKey)))
	if err != nil {
		if dirKey != "" && errors.Is(err, fs.ErrNotExist) {
			return nil // removed while listing, or never there
		}
		return err
	}
	// Sort as keys sort: a folder "a" comes where "a/..." would, after "a.x".
	sortName := func(e fs.DirEntry) string {
		if e.IsDir() {
			return e.Name() + "/"
		}
		return e.Name()
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(sortName(a), sortName(b)) })
	for _, e := range entries {
		key := e.Name()
		if dirKey != "" {
			key = dirKey + "/" + key
		}
		if e.IsDir() {
			// Descend only if keys under it can match the prefix.
			if strings.HasPrefix(key+"/", prefix) || strings.HasPrefix(prefix, key+"/") {
				if err := s.walk(ctx, key, prefix, fn); err != nil {
					return err
				}
			}
			continue
		}
		if isTemp(e.Name()) || !strings.HasPrefix(key, prefix) || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return fmt.Errorf("fsblob: list %q: %w", key, err)
		}
		if err := fn(storage.BlobInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
			return err
		}
	}
	return nil
}

// Ping checks that the root folder is there.
func (s *Store) Ping(ctx context.Context) error {
	fi, err := os.Stat(s.root)
	if err != nil {
		return fmt.Errorf("fsblob: ping: %w: %w", storage.ErrUnavailable, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("fsblob: ping: %w: %s is not a folder", storage.ErrUnavailable, s.root)
	}
	return nil
}

// Sweep removes temporary files older than olderThan, left by writers
// that crashed or were never committed nor aborted. Run it at startup and
// now and then; olderThan must exceed the longest upload (1 h is safe).
// It returns how many files it removed.
func (s *Store) Sweep(ctx context.Context, olderThan time.Duration) (int, error) {
	cutoff := time.Now().Add(-olderThan)
	removed := 0
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || !isTemp(d.Name()) || !strings.HasSuffix(d.Name(), tmpSuffix) {
			return nil
		}
		fi, err := d.Info()
		if err != nil || fi.ModTime().After(cutoff) {
			return nil
		}
		if err := os.Remove(p); err == nil {
			removed++
		}
		return nil
	})
	if err != nil {
		return removed, fmt.Errorf("fsblob: sweep: %w", err)
	}
	return removed, nil
}
