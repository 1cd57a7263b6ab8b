// Loader fetches rendered frames as ImageBitmaps with a priority queue, a
// cap on parallel requests and an LRU cache. Queued requests can be
// cancelled by owner (a viewport re-prioritising after a scroll or a
// window change); requests already on the wire always complete into the
// cache.
export class Loader {
  constructor({ maxActive = 6, maxEntries = 1500 } = {}) {
    this.maxActive = maxActive;
    this.maxEntries = maxEntries;
    this.active = 0;
    this.queue = [];
    this.cache = new Map(); // url -> entry, in LRU order
    this.bytes = 0;
  }

  // get returns a promise of the bitmap for url. Lower priority values
  // are fetched first.
  get(url, { priority = 0, owner = null } = {}) {
    let e = this.cache.get(url);
    if (e) {
      this.cache.delete(url);
      this.cache.set(url, e);
      if (e.queued) {
        e.priority = Math.min(e.priority, priority);
        e.owner = owner;
      }
      this.pump();
      return e.promise;
    }
    e = { url, priority, owner, queued: true, bitmap: null };
    e.promise = new Promise((resolve, reject) => { e.resolve = resolve; e.reject = reject; });
    e.promise.catch(() => {}); // a cancelled prefetch is not an error
    this.cache.set(url, e);
    this.queue.push(e);
    this.pump();
    return e.promise;
  }

  // peek returns the bitmap when url is already loaded.
  peek(url) {
    const e = this.cache.get(url);
    return e && e.bitmap;
  }

  // cancel drops the queued (not started) requests of owner.
  cancel(owner) {
    const keep = [];
    for (const e of this.queue) {
      if (e.owner === owner) {
        this.cache.delete(e.url);
        e.reject(new DOMException('cancelled', 'AbortError'));
      } else keep.push(e);
    }
    this.queue = keep;
  }

  pump() {
    while (this.active < this.maxActive && this.queue.length) {
      let best = 0;
      for (let i = 1; i < this.queue.length; i++) {
        if (this.queue[i].priority < this.queue[best].priority) best = i;
      }
      const [e] = this.queue.splice(best, 1);
      this.start(e);
    }
  }

  async start(e) {
    e.queued = false;
    this.active++;
    try {
      const res = await fetch(e.url);
      if (!res.ok) throw new Error(`${res.status} ${res.statusText}: ${e.url}`);
      const blob = await res.blob();
      e.bitmap = await createImageBitmap(blob);
      e.resolve(e.bitmap);
    } catch (err) {
      this.cache.delete(e.url);
      e.reject(err);
    } finally {
      this.active--;
      this.evict();
      this.pump();
    }
  }

  evict() {
    if (this.cache.size <= this.maxEntries) return;
    for (const [url, e] of this.cache) {
      if (this.cache.size <= this.maxEntries) break;
      // Not closed: a viewport may still be showing it; GC frees it.
      if (e.bitmap) this.cache.delete(url);
    }
  }
}
