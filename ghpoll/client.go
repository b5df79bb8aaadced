// Package ghpoll makes every GitHub REST call of the tool, through go-github, and
// implements reconcile.GitHub. No go-github type leaves it; pagination, rate limits
// and error mapping stay inside. It must not import gce or k8s.
package ghpoll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v66/github"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// maxPages bounds one listing; past it the listing fails rather than loop forever on
// a server that always says there is a next page.
const maxPages = 1000

// Client talks to one GitHub (github.com or a GitHub Enterprise Server).
type Client struct {
	gh    *github.Client
	now   func() time.Time
	tr    *transport
	cache *pollCache
	// RunnerGroupID is the runner group org JIT runners join (1 is the default group).
	RunnerGroupID int64
	// writesPerHour bounds the runner registrations in any hour.
	writesPerHour int
	// mu guards listed, the pages of organisations' whole listings fetched since
	// PollFacts last counted them (the overhead of the pass under way).
	mu     sync.Mutex
	listed int
}

var _ reconcile.GitHub = (*Client)(nil)

// New returns a client for the REST API rooted at apiURL ("https://api.github.com/",
// or "https://HOST/api/v3/" for GitHub Enterprise Server). hc carries the
// authentication (an oauth2 transport, a GitHub App transport) and, in tests, a fake.
func New(hc *http.Client, apiURL string) (*Client, error) {
	return NewWithOptions(hc, apiURL, Options{})
}

// Options tune a client.
type Options struct {
	// Concurrency bounds the requests under way at once (default 8, at most 99).
	Concurrency int
	// WritesPerMinute, when set, spaces the requests that create or delete evenly,
	// this many a minute at most; unset, they go as fast as PointsPerMinute allows,
	// minWriteGap apart at least (without PointsPerMinute, at
	// reconcile.DefaultPointsPerMinute / 5 a minute). After a secondary limit answered
	// one, they go at most reconcile.FallbackWritesPerMinute a minute for an hour.
	// WritesPerHour bounds the runner registrations in any hour (default
	// reconcile.DefaultWritesPerHour). GitHub documents, "in general", at most 80
	// content-creating requests a minute and 500 an hour, and names no endpoint that is
	// one.
	WritesPerMinute, WritesPerHour int
	// PointsPerMinute, when set, holds every request back until it fits within this
	// many of GitHub's secondary-limit points in the last minute (a read costs 1, a
	// write 5; GitHub allows 900), spent with the processes that share the cache
	// (SharePoints). It counts real time: leave it unset under a simulated clock.
	PointsPerMinute int
	// MaxRetryWait is the longest retry-after waited out before trying once more
	// (default 20s); a longer one ends that scope for the pass.
	MaxRetryWait time.Duration
	// RetryBase is the first backoff of a retried idempotent call (default 500ms).
	RetryBase time.Duration
	// Now is the clock of the cache and the budget (simulations).
	Now func() time.Time
}

// NewWithOptions is New with tuning.
func NewWithOptions(hc *http.Client, apiURL string, o Options) (*Client, error) {
	u, ok := reconcile.HTTPURL(apiURL)
	if !ok {
		return nil, fmt.Errorf("github api url %q is not an http(s) URL", apiURL)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	if o.Concurrency == 0 {
		o.Concurrency = 8
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.WritesPerHour <= 0 {
		o.WritesPerHour = reconcile.DefaultWritesPerHour
	}
	tr := newTransport(hc.Transport, o.Concurrency) // paces in real time, whatever o.Now says
	switch {
	case o.WritesPerMinute > 0:
		tr.pace = time.Minute / time.Duration(o.WritesPerMinute)
	case o.PointsPerMinute > 0:
		tr.pace = minWriteGap // the points bound the writes
	default: // nothing does: as many as the default points would allow
		tr.pace = time.Minute / (reconcile.DefaultPointsPerMinute / pointsWrite)
	}
	if o.PointsPerMinute > 0 {
		tr.points = newLedger(o.PointsPerMinute)
	}
	if o.MaxRetryWait > 0 {
		tr.maxWait = o.MaxRetryWait
	}
	if o.RetryBase > 0 {
		tr.retryBase = o.RetryBase
	}
	wrapped := *hc
	wrapped.Transport = tr
	gh := github.NewClient(&wrapped)
	gh.BaseURL = u
	gh.UserAgent = "reconcile"
	c := &Client{gh: gh, now: o.Now, tr: tr, cache: newPollCache(), RunnerGroupID: 1, writesPerHour: o.WritesPerHour}
	tr.slowUntil = func() time.Time { return c.cache.slowUntil() }
	tr.slowDown = func(until time.Time) { c.cache.slowDown(until) }
	return c, nil
}

// TakeStats returns what GitHub charged since the last call, and starts counting again.
func (c *Client) TakeStats() reconcile.APIStats { return c.tr.take() }

// RateLimitError is returned for every call made, or refused, while GitHub's primary
// or secondary rate limit is exhausted (reconcile.RateLimitError).
type RateLimitError = reconcile.RateLimitError

// preflight refuses a call while a rate limit is known to be exhausted, so that a pass
// does not spend requests that only make GitHub's secondary limits worse. A wait that
// ends within the transport's bound (a --once process that started a moment before
// GitHub's wait is over) is waited out instead: the pass goes on, and no request goes
// before GitHub said.
func (c *Client) preflight(ctx context.Context) error {
	until := c.cache.limited()
	switch d := until.Sub(c.now()); {
	case d <= 0:
		return nil
	case d <= c.tr.maxWait:
		return sleep(ctx, d)
	}
	return &RateLimitError{Until: until, Msg: "not calling GitHub until then"}
}

// check maps go-github's errors to the ones callers branch on, and remembers rate
// limits. go-github returns a 429 as a plain *ErrorResponse: it is a rate limit too.
func (c *Client) check(err error) error {
	if err == nil {
		return nil
	}
	var until time.Time
	var msg string
	secondary := true
	var rle *github.RateLimitError
	var abuse *github.AbuseRateLimitError
	var er *github.ErrorResponse
	var held *heldError
	switch {
	case errors.As(err, &held):
		until, msg, secondary = held.until, "not sent: GitHub's rate limit answered another request", held.secondary
	case errors.As(err, &rle):
		until, msg, secondary = rle.Rate.Reset.Time, rle.Message, false
	case errors.As(err, &abuse):
		wait := time.Minute
		if abuse.RetryAfter != nil {
			wait = *abuse.RetryAfter
		}
		until, msg = c.now().Add(wait), abuse.Message
	case errors.As(err, &er) && er.Response != nil && isLimited(er.Response):
		// A 429, or a secondary limit whose documentation link go-github does not recognise.
		until, msg = c.now().Add(retryAfter(er.Response, c.now())), er.Message
		secondary = er.Response.Header.Get("X-RateLimit-Remaining") != "0"
	default:
		return err
	}
	c.cache.limit(until)
	return &RateLimitError{Until: until, Msg: msg, Secondary: secondary}
}

// retryAfter reads how long GitHub asks to wait: retry-after, else the primary
// reset time when nothing remains, else a minute.
func retryAfter(resp *http.Response, now time.Time) time.Duration {
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if resp.Header.Get("X-RateLimit-Remaining") == "0" {
		if reset, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			if d := time.Unix(reset, 0).Sub(now); d > 0 {
				return d
			}
		}
	}
	return time.Minute
}

// status returns the HTTP status of a go-github error, or 0.
func status(err error) int {
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return er.Response.StatusCode
	}
	return 0
}

// listAll fetches every page of a listing, or fails: never a partial list. Each page
// is asked for conditionally: a 304 costs no primary rate limit, and the page's items
// come from the cache. key names the listing in the cache; reduce keeps of each item
// only what the pass needs.
func listAll[T, R any](ctx context.Context, c *Client, key string, fetch func(context.Context, github.ListOptions) ([]T, *github.Response, error), reduce func(T) R) ([]R, error) {
	var out []R
	opt := github.ListOptions{PerPage: 100, Page: 1}
	for range maxPages {
		items, next, err := fetchPage(ctx, c, fmt.Sprintf("%s#%d", key, opt.Page), opt, fetch, reduce)
		if err != nil {
			return nil, fmt.Errorf("page %d: %w", opt.Page, err)
		}
		out = append(out, items...)
		if next == 0 {
			return out, nil
		}
		if next <= opt.Page {
			return nil, fmt.Errorf("page %d: next page %d goes backwards", opt.Page, next)
		}
		opt.Page = next
	}
	return nil, fmt.Errorf("more than %d pages", maxPages)
}

// cachedAll returns a listing as its pages were last fetched (listAll's keys), without
// a request; false when any page is not in the cache.
func cachedAll[R any](c *Client, key string) ([]R, bool) {
	var out []R
	for page := 1; page <= maxPages; {
		p, ok := c.cache.page(fmt.Sprintf("%s#%d", key, page))
		var items []R
		if !ok || json.Unmarshal(p.Items, &items) != nil {
			return nil, false
		}
		c.cache.touch(fmt.Sprintf("%s#%d", key, page), c.now())
		out = append(out, items...)
		if p.Next <= page {
			return out, true
		}
		page = p.Next
	}
	return nil, false
}

// fetchPage fetches one page conditionally, and reports whether it changed.
func fetchPage[T, R any](ctx context.Context, c *Client, key string, opt github.ListOptions, fetch func(context.Context, github.ListOptions) ([]T, *github.Response, error), reduce func(T) R) ([]R, int, error) {
	if err := c.preflight(ctx); err != nil {
		return nil, 0, err
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	cached, ok := c.cache.page(key)
	cctx := ctx
	if ok {
		cctx = withETag(ctx, cached.ETag)
	}
	items, resp, err := fetch(cctx, opt)
	if ok && resp != nil && resp.StatusCode == http.StatusNotModified {
		var out []R
		if uerr := json.Unmarshal(cached.Items, &out); uerr == nil {
			c.cache.touch(key, c.now())
			return out, cached.Next, nil
		}
		// An unreadable entry: ask again, unconditionally.
		items, resp, err = fetch(ctx, opt)
	}
	if err != nil {
		return nil, 0, c.check(err)
	}
	out := make([]R, 0, len(items))
	for _, it := range items {
		if v := reflect.ValueOf(it); v.Kind() == reflect.Pointer && v.IsNil() {
			continue // a null in the list: nothing to read
		}
		out = append(out, reduce(it))
	}
	if etag := resp.Header.Get("ETag"); etag != "" {
		if raw, merr := json.Marshal(out); merr == nil {
			c.cache.putPage(key, cachedPage{ETag: etag, Next: resp.NextPage, Items: raw, Used: c.now()})
		}
	}
	return out, resp.NextPage, nil
}
