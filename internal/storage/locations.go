package storage

import (
	"context"
	"sync"
)

// DefaultLocationCache is the number of instance locations a serving
// archive over an index it alone writes keeps in memory
// (Archive.LocationCache).
const DefaultLocationCache = 16384

// locations remembers the rows LocateInstance returned (without Bulk),
// so that the frame and instance retrieves of an instance read the index
// once, not once per request. It is only right when every change of the
// index goes through this archive: Commit and Delete forget everything
// (forgetLocations), and a look-up that overlaps a change is not kept
// (gen). The entries are shared and must not be modified.
type locations struct {
	mu   sync.Mutex
	max  int
	gen  uint64
	rows map[locKey]*Instance
}

type locKey struct{ study, series, sop string }

func (a *Archive) locationCache() *locations {
	a.locOnce.Do(func() {
		if a.LocationCache > 0 {
			a.locs = &locations{max: a.LocationCache, rows: map[locKey]*Instance{}}
		}
	})
	return a.locs
}

// locate is LocateInstance(withBulk = false) through the cache.
func (a *Archive) locate(ctx context.Context, study, series, sop string) (*Instance, error) {
	l := a.locationCache()
	if l == nil || study == "" || series == "" {
		return LocateInstance(ctx, a.Index, study, series, sop, false)
	}
	k := locKey{study, series, sop}
	l.mu.Lock()
	in, gen := l.rows[k], l.gen
	l.mu.Unlock()
	if in != nil {
		return in, nil
	}
	in, err := LocateInstance(ctx, a.Index, study, series, sop, false)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	if l.gen == gen {
		if len(l.rows) >= l.max {
			for old := range l.rows { // any one: the map's order is random
				delete(l.rows, old)
				break
			}
		}
		l.rows[k] = in
	}
	l.mu.Unlock()
	return in, nil
}

// forgetLocations drops every cached location: an instance was stored,
// replaced or deleted.
func (a *Archive) forgetLocations() {
	l := a.locationCache()
	if l == nil {
		return
	}
	l.mu.Lock()
	l.gen++
	clear(l.rows)
	l.mu.Unlock()
}
