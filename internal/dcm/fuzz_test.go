package dcm

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
)

func addSeeds(f *testing.F) {
	for _, p := range corpusFiles(f, true) {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if len(data) > 70<<10 {
			continue // keep the fuzzer fast; the small files cover every syntax
		}
		f.Add(data)
	}
}

// limitedWriter fails once too much was written: conversion output must
// stay proportional to the input.
type limitedWriter struct{ n int }

func (w *limitedWriter) Write(p []byte) (int, error) {
	w.n -= len(p)
	if w.n < 0 {
		return 0, errors.New("too much output")
	}
	return len(p), nil
}

func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		h, err := Parse(r)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if r.Len() != 0 {
			t.Fatalf("%d bytes unread", r.Len())
		}
		_ = AppendJSON(nil, h)
		_ = h.Bulk()
		for _, fr := range h.Frames {
			for _, s := range fr {
				if s.Offset < 0 || s.Length < 0 || !h.Deflated && s.Offset+s.Length > int64(len(data)) {
					t.Fatalf("span %+v outside %d bytes", s, len(data))
				}
			}
		}
	})
}

func FuzzToExplicitLE(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		w := &limitedWriter{n: 1<<20 + 64*len(data)}
		err := ToExplicitLE(w, bytes.NewReader(data))
		if err != nil && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, io.ErrShortWrite) {
			if err.Error() == "too much output" {
				t.Fatal(err)
			}
			t.Fatalf("error %v wraps neither ErrInvalid nor ErrUnsupported", err)
		}
	})
}
