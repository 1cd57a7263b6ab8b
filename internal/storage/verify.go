package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
)

// VerifyStats counts what a Verify walk did so far.
type VerifyStats struct {
	Instances  int   // instances checked
	Bytes      int64 // bytes read and hashed
	Damaged    int   // blobs whose size or SHA-256 differs from the index (ErrChecksum)
	Missing    int   // blobs not found (ErrNotFound)
	Unreadable int   // blobs whose read failed otherwise (e.g. the store went away)
}

// Problems is the number of instances that did not verify.
func (s VerifyStats) Problems() int { return s.Damaged + s.Missing + s.Unreadable }

// VerifyOptions are the callbacks of VerifyWith; both may be nil.
type VerifyOptions struct {
	// Problem is called for each instance whose blob is missing (err
	// wraps ErrNotFound), damaged (ErrChecksum) or cannot be read. An
	// error from it stops the walk and is returned.
	Problem func(inst *Instance, err error) error
	// Progress is called after each instance with the totals so far.
	Progress func(VerifyStats)
}

// verifyPage is the number of instances Verify asks the index for at a
// time.
const verifyPage = 1000

// Verify re-hashes the blob of every indexed instance and calls fn for
// each one that is missing (err wraps ErrNotFound), whose size or
// SHA-256 differs (ErrChecksum), or that cannot be read. An error from
// fn stops the walk. See VerifyWith.
func (a *Archive) Verify(ctx context.Context, fn func(inst *Instance, err error) error) error {
	_, err := a.VerifyWith(ctx, VerifyOptions{Problem: fn})
	return err
}

// VerifyWith is Verify with progress reporting, and returns the totals.
//
// The walk is linear in the size of the archive: it pages through the
// index in SOP Instance UID order with Index.ListInstances (each page
// starts after the last UID of the one before, an index range, never an
// OFFSET that re-reads and re-sorts what came before), and reads each
// blob once. An instance deleted during the walk never makes it skip
// another; one stored during the walk is checked if its UID sorts after
// the walk's position. An instance deleted between its listing and its
// read is reported missing unless the index no longer holds it.
func (a *Archive) VerifyWith(ctx context.Context, opts VerifyOptions) (VerifyStats, error) {
	var st VerifyStats
	after := ""
	for {
		page, err := a.Index.ListInstances(ctx, after, verifyPage)
		if err != nil {
			return st, fmt.Errorf("storage: verify: %w", err)
		}
		if len(page) == 0 {
			return st, nil
		}
		for _, inst := range page {
			n, err := a.verifyOne(ctx, inst)
			if ctx.Err() != nil {
				return st, ctx.Err()
			}
			if err != nil && errors.Is(err, ErrNotFound) && a.deletedMeanwhile(ctx, inst) {
				err = nil // deleted after its page was listed: nothing to check
			} else {
				st.Instances++
				st.Bytes += n
			}
			switch {
			case err == nil:
			case errors.Is(err, ErrChecksum):
				st.Damaged++
			case errors.Is(err, ErrNotFound):
				st.Missing++
			default:
				st.Unreadable++
			}
			if err != nil && opts.Problem != nil {
				if err := opts.Problem(inst, err); err != nil {
					return st, err
				}
			}
			if opts.Progress != nil {
				opts.Progress(st)
			}
		}
		after = page[len(page)-1].SOPInstanceUID
	}
}

// deletedMeanwhile reports whether the index no longer holds inst with
// the same blob (deleted or replaced since it was listed).
func (a *Archive) deletedMeanwhile(ctx context.Context, inst *Instance) bool {
	now, err := a.Index.Instance(ctx, "", "", inst.SOPInstanceUID)
	if errors.Is(err, ErrNotFound) {
		return true
	}
	return err == nil && now.BlobKey != inst.BlobKey
}

// hashBufs are the read buffers of verifyOne.
var hashBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// verifyOne hashes inst's blob and returns the bytes read and an error
// when the blob is missing, unreadable, or differs from the index.
func (a *Archive) verifyOne(ctx context.Context, inst *Instance) (int64, error) {
	rc, err := a.Blobs.Open(ctx, inst.BlobKey, 0, -1)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	h := sha256.New()
	bp := hashBufs.Get().(*[]byte)
	defer hashBufs.Put(bp)
	n, err := io.CopyBuffer(h, rc, *bp)
	if err != nil {
		return n, err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != inst.SHA256 || n != inst.Size {
		return n, fmt.Errorf("%w: %s: %d bytes, sha256 %s; indexed %d bytes, %s", ErrChecksum, inst.BlobKey, n, got, inst.Size, inst.SHA256)
	}
	return n, nil
}
