package ghpoll

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// pollCache holds what conditional requests need from one pass to the next: each page's
// ETag with the part of its answer that a pass uses (not the whole body), and each
// repository's polling state. Losing it is harmless: it only saves rate limit.
type pollCache struct {
	mu    sync.Mutex
	Pages map[string]*cachedPage `json:"pages"`
	Repos map[string]*repoState  `json:"repos"`
	// Writes are when this client's runner registrations (content-creating requests)
	// of the last hour were sent, for the hourly write budget.
	Writes []time.Time `json:"writes,omitempty"`
	// LimitedUntil is when GitHub said calls may resume after a rate limit: a later
	// --once process waits as well.
	LimitedUntil time.Time `json:"limited_until,omitzero"`
	// SlowWritesUntil is until when registrations keep the fallback pace after
	// GitHub's secondary limit answered one: a later --once process slows down too.
	SlowWritesUntil time.Time `json:"slow_writes_until,omitzero"`
}

// until returns one of the times the cache keeps (LimitedUntil, SlowWritesUntil).
func (c *pollCache) until(field *time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return *field
}

// extend moves one of the times the cache keeps to t, if t is later.
func (c *pollCache) extend(field *time.Time, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(*field) {
		*field = t
	}
}

// limited returns until when GitHub asked for no calls.
func (c *pollCache) limited() time.Time { return c.until(&c.LimitedUntil) }

// limit records that GitHub asked for no calls until then.
func (c *pollCache) limit(t time.Time) { c.extend(&c.LimitedUntil, t) }

// slowUntil returns until when writes keep the fallback pace.
func (c *pollCache) slowUntil() time.Time { return c.until(&c.SlowWritesUntil) }

// slowDown keeps writes at the fallback pace until then.
func (c *pollCache) slowDown(t time.Time) { c.extend(&c.SlowWritesUntil, t) }

// takeWrite counts a content-creating request sent at now against perHour in any hour,
// or returns when the oldest of the last hour's leaves the window.
func (c *pollCache) takeWrite(now time.Time, perHour int) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Writes = slices.DeleteFunc(c.Writes, func(t time.Time) bool { return now.Sub(t) >= time.Hour })
	if len(c.Writes) >= perHour {
		return c.Writes[0].Add(time.Hour), false
	}
	c.Writes = append(c.Writes, now)
	return time.Time{}, true
}

// registered returns when the last hour's runner registrations were sent.
func (c *pollCache) registered() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.Writes)
}

// keyKind is what a cache key names: a kind of page (its ETag and the part of its
// answer a pass uses), or, for org-repos, an organisation's polling state.
type keyKind string

// The kinds of cache key.
const (
	kindRuns           keyKind = "runs"            // a repository's runs of one status
	kindJobs           keyKind = "jobs"            // a run's latest jobs
	kindProbe          keyKind = "probe"           // a repository's newest page of runs
	kindProbeCompleted keyKind = "probe-completed" // how many of its runs are completed
	kindRunners        keyKind = "runners"         // a scope's registrations (or one of them, by name)
	kindOrgRepos       keyKind = "org-repos"       // an organisation's repositories
	kindOrgPushed      keyKind = "org-pushed"      // an organisation's repositories by push
)

// cacheKey is the key of what kind names, of its parts ("runs:octo-org/app:queued").
func cacheKey(kind keyKind, of ...any) string {
	key := string(kind)
	for _, p := range of {
		key += ":" + fmt.Sprint(p)
	}
	return key
}

type cachedPage struct {
	ETag  string          `json:"etag"`
	Next  int             `json:"next,omitempty"`
	Items json.RawMessage `json:"items"`
	Used  time.Time       `json:"used"`
}

// repoState is what the poller remembers of a repository.
type repoState struct {
	Polled   time.Time `json:"polled,omitzero"`     // runs last looked at (runsView)
	HadRuns  time.Time `json:"had_runs,omitzero"`   // when a poll last found runs
	Runs     int       `json:"runs,omitempty"`      // runs that could hold a queued job at the last look
	Swept    time.Time `json:"swept,omitzero"`      // registrations last listed whole
	Pushed   time.Time `json:"pushed,omitzero"`     // pushed_at, as the org's listing by push last showed it
	ViewCost int       `json:"view_cost,omitempty"` // requests its runs view took last time (runsView)
	Busy     []string  `json:"busy,omitempty"`      // the runners its last poll saw running a job
}

// pageTTL: a page unused this long is dropped when the cache is saved.
const pageTTL = 24 * time.Hour

// newPollCache returns an empty cache.
func newPollCache() *pollCache {
	return &pollCache{Pages: map[string]*cachedPage{}, Repos: map[string]*repoState{}}
}

func (c *pollCache) page(key string) (cachedPage, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.Pages[key]
	if !ok {
		return cachedPage{}, false
	}
	return *p, true
}

// pages counts the cached pages whose key starts with prefix.
func (c *pollCache) pages(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k := range c.Pages {
		if strings.HasPrefix(k, prefix) {
			n++
		}
	}
	return n
}

func (c *pollCache) putPage(key string, p cachedPage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Pages[key] = &p
}

func (c *pollCache) touch(key string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.Pages[key]; ok {
		p.Used = now
	}
}

// repo returns a copy of a repository's state.
func (c *pollCache) repo(key string) repoState {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.Repos[key]; ok {
		return *s
	}
	return repoState{}
}

func (c *pollCache) setRepo(key string, s repoState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Repos[key] = &s
}

// The request cache is ghpoll's part of the notes (reconcile.Part): the pages'
// ETags, the repositories' polling state, the hour's registrations and a rate limit
// GitHub stated.

// notesPart is the name of ghpoll's part of the notes.
const notesPart = "github"

// RestoreNotes implements reconcile.Part.
func (c *Client) RestoreNotes(data json.RawMessage) error {
	cache := newPollCache()
	if err := json.Unmarshal(data, cache); err != nil {
		return fmt.Errorf("not a request cache: %w", err)
	}
	if cache.Pages == nil {
		cache.Pages = map[string]*cachedPage{}
	}
	if cache.Repos == nil {
		cache.Repos = map[string]*repoState{}
	}
	c.cache = cache
	return nil
}

// NotesData implements reconcile.Part: the cache less the pages unused for pageTTL.
func (c *Client) NotesData() (json.RawMessage, error) {
	cc := c.cache
	now := c.now()
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for k, p := range cc.Pages {
		if now.Sub(p.Used) > pageTTL {
			delete(cc.Pages, k)
		}
	}
	return json.Marshal(cc)
}

// Shrink implements reconcile.Part: it drops the share of pages used longest ago. A
// page costs one request to fetch again, and the least recently used belong to the
// quiet repositories looked at least often. The repositories' polling state is kept.
func (c *Client) Shrink(share float64) int {
	cc := c.cache
	cc.mu.Lock()
	defer cc.mu.Unlock()
	n := min(len(cc.Pages), int(float64(len(cc.Pages))*share)+1)
	keys := make([]string, 0, len(cc.Pages))
	for k := range cc.Pages {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		return cmp.Or(cc.Pages[a].Used.Compare(cc.Pages[b].Used), strings.Compare(a, b))
	})
	for _, k := range keys[:n] {
		delete(cc.Pages, k)
	}
	return n
}

// KeepIn attaches the client's request cache to the notes: restored from them, and
// saved with them.
func (c *Client) KeepIn(n *reconcile.Notes) error { return n.Attach(notesPart, c) }
