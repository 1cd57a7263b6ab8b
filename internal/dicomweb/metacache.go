package dicomweb

import (
	"container/list"
	"sync"
)

// DefaultMetadataCacheBytes bounds the metadata memory cache when Config
// leaves MetadataCacheBytes at zero: about 250 series documents of 1,000
// instances each.
const DefaultMetadataCacheBytes int64 = 128 << 20

// docEntryOverhead is what an entry costs beyond its key strings and
// document: the list element, the map slot and the entry itself,
// rounded up, so that many tiny documents cannot exceed the bound.
const docEntryOverhead = 256

// docKey names a document as served: one study or series document of one
// study version, with one base URL in.
type docKey struct {
	study, doc, base string
	version          int64
}

type docEntry struct {
	key  docKey
	gz   []byte
	size int64
}

// docCache keeps metadata documents as served (gzip), least recently
// used first out, within a bound on their total size (keys and
// overhead counted). A nil *docCache keeps nothing. Documents of older
// study versions are never asked for again and leave as they age.
type docCache struct {
	max int64

	mu     sync.Mutex
	size   int64
	ll     list.List // of *docEntry, most recently used at the front
	byKey  map[docKey]*list.Element
	hits   int64
	misses int64
}

func newDocCache(max int64) *docCache {
	return &docCache{max: max, byKey: map[docKey]*list.Element{}}
}

func (k docKey) size() int64 {
	return int64(len(k.study)+len(k.doc)+len(k.base)) + docEntryOverhead
}

// get returns the document under k, marking it recently used.
func (c *docCache) get(k docKey) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[k]
	if !ok {
		c.misses++
		return nil, false
	}
	c.hits++
	c.ll.MoveToFront(el)
	return el.Value.(*docEntry).gz, true
}

// peek is get without marking the document used or counting.
func (c *docCache) peek(k docKey) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[k]; ok {
		return el.Value.(*docEntry).gz, true
	}
	return nil, false
}

// put keeps gz under k, evicting the least recently used documents as
// needed. A document larger than half the bound is not kept: one
// document must not flush the whole cache.
func (c *docCache) put(k docKey, gz []byte) {
	if c == nil {
		return
	}
	size := k.size() + int64(cap(gz)) // the whole allocation stays
	if size > c.max/2 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[k]; ok {
		c.remove(el)
	}
	for c.size+size > c.max && c.ll.Len() > 0 {
		c.remove(c.ll.Back())
	}
	c.byKey[k] = c.ll.PushFront(&docEntry{key: k, gz: gz, size: size})
	c.size += size
}

func (c *docCache) remove(el *list.Element) {
	e := c.ll.Remove(el).(*docEntry)
	delete(c.byKey, e.key)
	c.size -= e.size
}

// clear drops every document.
func (c *docCache) clear() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ll.Init()
	clear(c.byKey)
	c.size = 0
}

// docCacheStats is a snapshot of the cache, for tests and metrics.
type docCacheStats struct {
	Entries      int
	Bytes, Max   int64
	Hits, Misses int64
}

func (c *docCache) stats() docCacheStats {
	if c == nil {
		return docCacheStats{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return docCacheStats{Entries: c.ll.Len(), Bytes: c.size, Max: c.max, Hits: c.hits, Misses: c.misses}
}
