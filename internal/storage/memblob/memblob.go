// Package memblob is a storage.BlobStore in memory, for tests and
// examples. Objects are kept as byte slices; nothing survives the process.
package memblob

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cloudpacs/pacs/internal/storage"
)

var _ storage.BlobStore = (*Store)(nil)

// Store is an in-memory BlobStore. The zero value is not usable; call New.
type Store struct {
	mu    sync.RWMutex
	blobs map[string]blob
	// Now stamps ModTime; time.Now when nil.
	Now func() time.Time
}

type blob struct {
	data []byte
	mod  time.Time
}

// New returns an empty store.
func New() *Store { return &Store{blobs: make(map[string]blob)} }

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Create starts a write of key.
func (s *Store) Create(ctx context.Context, key string) (storage.BlobWriter, error) {
	if err := storage.CheckKey(key); err != nil {
		return nil, fmt.Errorf("memblob: create: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memblob: create %q: %w", key, err)
	}
	return &writer{s: s, ctx: ctx, key: key}, nil
}

type writer struct {
	s    *Store
	ctx  context.Context
	key  string
	buf  bytes.Buffer
	done bool
}

func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("memblob: write %q: writer closed", w.key)
	}
	return w.buf.Write(p)
}

func (w *writer) Commit() (storage.BlobInfo, error) {
	if w.done {
		return storage.BlobInfo{}, fmt.Errorf("memblob: commit %q: writer closed", w.key)
	}
	w.done = true
	if err := w.ctx.Err(); err != nil {
		return storage.BlobInfo{}, fmt.Errorf("memblob: commit %q: %w", w.key, err)
	}
	b := blob{data: slices.Clip(w.buf.Bytes()), mod: w.s.now()}
	w.s.mu.Lock()
	w.s.blobs[w.key] = b
	w.s.mu.Unlock()
	return storage.BlobInfo{Key: w.key, Size: int64(len(b.data)), ModTime: b.mod}, nil
}

func (w *writer) Abort() error {
	w.done = true
	w.buf = bytes.Buffer{}
	return nil
}

func (s *Store) get(key string) (blob, error) {
	if err := storage.CheckKey(key); err != nil {
		return blob{}, err
	}
	s.mu.RLock()
	b, ok := s.blobs[key]
	s.mu.RUnlock()
	if !ok {
		return blob{}, fmt.Errorf("memblob: %q: %w", key, storage.ErrNotFound)
	}
	return b, nil
}

// Open reads [off, off+n) of key.
func (s *Store) Open(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	b, err := s.get(key)
	if err != nil {
		return nil, err
	}
	size := int64(len(b.data))
	off = min(max(off, 0), size)
	end := size
	if n >= 0 && off+n < size {
		end = off + n
	}
	return io.NopCloser(bytes.NewReader(b.data[off:end])), nil
}

// Stat reports size and time of key.
func (s *Store) Stat(ctx context.Context, key string) (storage.BlobInfo, error) {
	b, err := s.get(key)
	if err != nil {
		return storage.BlobInfo{}, err
	}
	return storage.BlobInfo{Key: key, Size: int64(len(b.data)), ModTime: b.mod}, nil
}

// Delete removes key; a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := storage.CheckKey(key); err != nil {
		return fmt.Errorf("memblob: delete: %w", err)
	}
	s.mu.Lock()
	delete(s.blobs, key)
	s.mu.Unlock()
	return nil
}

// List calls fn for each key under prefix in key order. It works on a
// snapshot, so fn may call other methods (Delete) of the store.
func (s *Store) List(ctx context.Context, prefix string, fn func(storage.BlobInfo) error) error {
	s.mu.RLock()
	infos := make([]storage.BlobInfo, 0)
	for k, b := range s.blobs {
		if strings.HasPrefix(k, prefix) {
			infos = append(infos, storage.BlobInfo{Key: k, Size: int64(len(b.data)), ModTime: b.mod})
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(infos, func(a, b storage.BlobInfo) int { return strings.Compare(a.Key, b.Key) })
	for _, info := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

// Ping always succeeds.
func (s *Store) Ping(ctx context.Context) error { return nil }
