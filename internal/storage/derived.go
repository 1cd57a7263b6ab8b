package storage

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// DerivedPrefix is the key prefix of everything derived from the stored
// bytes with SHA-256 sha and cached in the blob store (thumbnails):
// "thumbs/ab/cd/<sha>-". A replace or delete of those bytes removes every
// key under it.
func DerivedPrefix(sha string) string {
	if len(sha) < 4 {
		sha = "0000" + sha
	}
	return "thumbs/" + sha[:2] + "/" + sha[2:4] + "/" + sha + "-"
}

// purgeDerived removes the cached renderings of the bytes with the given
// SHA-256s, a few at a time, before the change is answered (a deleted
// patient's images should not linger). Best effort: failures are logged;
// the caller's cancellation does not stop it.
func (a *Archive) purgeDerived(ctx context.Context, shas ...string) {
	ctx = context.WithoutCancel(ctx)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, sha := range shas {
		if len(sha) < 4 {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			var keys []string
			err := a.Blobs.List(ctx, DerivedPrefix(sha), func(bi BlobInfo) error {
				keys = append(keys, bi.Key)
				return nil
			})
			for _, k := range keys {
				err = errors.Join(err, a.Blobs.Delete(ctx, k))
			}
			if err != nil {
				a.logger().Warn("storage: cached renderings not removed", "sha256", sha, "err", err)
			}
		})
	}
	wg.Wait()
}

// Delete removes a study, series (series != "") or instance (sop != "")
// from the index, then its blobs and the renderings cached from them, and
// has the study's metadata documents rebuilt. Blob delete failures are
// logged, not returned: the rows are gone, and Sweep removes the orphans
// later. Unknown: ErrNotFound.
func (a *Archive) Delete(ctx context.Context, study, series, sop string) error {
	// Looked up before the delete, which makes the index forget them; a
	// failed look-up only costs orphan renderings (logged).
	shas, err := a.renderedSHAs(ctx, study, series, sop)
	if err != nil && !errors.Is(err, ErrNotFound) {
		a.logger().Warn("storage: delete: cannot list the instances whose cached renderings to remove", "err", err)
	}
	keys, err := a.Index.Delete(ctx, study, series, sop)
	a.forgetLocations()
	if err != nil {
		return fmt.Errorf("storage: delete: %w", err)
	}
	for _, k := range keys {
		a.deleteBlob(ctx, k)
	}
	a.purgeDerived(ctx, shas...)
	if series != "" { // a deleted study has no documents left to rebuild
		a.noteChanged(study)
	}
	return nil
}

// renderedSHAs lists the SHA-256 of the instances under study/series/sop
// that have frames (the only ones with cached renderings).
func (a *Archive) renderedSHAs(ctx context.Context, study, series, sop string) ([]string, error) {
	var insts []*Instance
	if sop != "" {
		in, err := LocateInstance(ctx, a.Index, study, series, sop, false)
		if err != nil {
			return nil, err
		}
		insts = []*Instance{in}
	} else {
		var err error
		if insts, err = LocateInstances(ctx, a.Index, study, series); err != nil {
			return nil, err
		}
	}
	shas := make([]string, 0, len(insts))
	for _, in := range insts {
		if in.SHA256 != "" && len(in.Frames) > 0 {
			shas = append(shas, in.SHA256)
		}
	}
	return shas, nil
}
