package ghpoll

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// Points GitHub's secondary limit charges per request, whatever the answer.
const (
	pointsRead  = 1
	pointsWrite = reconcile.PointsPerWrite
)

type etagKey struct{}

// withETag makes the request conditional: the transport sends If-None-Match.
func withETag(ctx context.Context, etag string) context.Context {
	if etag == "" {
		return ctx
	}
	return context.WithValue(ctx, etagKey{}, etag)
}

// transport sits under go-github: it makes requests conditional, bounds how many run
// at once, spaces out the calls that create or delete, waits out a short retry-after
// once, and counts what GitHub charges.
type transport struct {
	base      http.RoundTripper
	sem       chan struct{}
	pace      time.Duration // between two mutating requests
	maxWait   time.Duration // the longest retry-after worth waiting for
	attempts  int           // tries of an idempotent call that meets a 5xx or a timeout
	retryBase time.Duration
	now       func() time.Time

	// pointsCap, when set, bounds the secondary-limit points sent in any window
	// (pointsWindow, real time); spent holds what the window's requests cost.
	pointsCap int
	window    time.Duration

	mu           sync.Mutex
	stats        reconcile.APIStats
	nextMutation time.Time
	spent        []pointsAt
}

type pointsAt struct {
	at     time.Time
	points int
}

func newTransport(base http.RoundTripper, concurrency int) *transport {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{base: base, sem: make(chan struct{}, clampConcurrency(concurrency)),
		pace: time.Minute / reconcile.DefaultWritesPerMinute, maxWait: 20 * time.Second, attempts: 3, retryBase: 500 * time.Millisecond, now: time.Now,
		window: pointsWindow}
}

// clampConcurrency keeps the number of requests at once under GitHub's 100.
func clampConcurrency(n int) int {
	return min(max(n, 1), 99)
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	select {
	case t.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-t.sem }()
	if etag, ok := ctx.Value(etagKey{}).(string); ok {
		req = req.Clone(ctx)
		req.Header.Set("If-None-Match", etag)
	}
	mutation := req.Method != http.MethodGet && req.Method != http.MethodHead
	cost := pointsRead
	if mutation {
		cost = pointsWrite
		if err := t.waitTurn(ctx); err != nil {
			return nil, err
		}
	}
	if err := t.spend(ctx, cost); err != nil {
		return nil, err
	}
	if mutation {
		// A write may be called off while it waits its turn, not once sent: GitHub may
		// have done it, and the caller must hear the answer (the http.Client's timeout
		// still bounds it).
		ctx = context.WithoutCancel(ctx)
		req = req.WithContext(ctx)
	}
	return t.send(ctx, req)
}

// send sends req, and again after a server error or a broken connection (an
// idempotent request only) and after a rate limit GitHub asks to wait out briefly
// (once).
func (t *transport) send(ctx context.Context, req *http.Request) (*http.Response, error) {
	idempotent := req.Method == http.MethodGet || req.Method == http.MethodHead || req.Method == http.MethodDelete
	rateRetried := false
	for attempt := 1; ; attempt++ {
		resp, err := t.base.RoundTrip(req)
		t.count(req.Method, resp)
		var wait time.Duration
		switch {
		case err != nil:
			// A timeout or a broken connection: again, if the call is idempotent.
			if !idempotent || attempt >= t.attempts || ctx.Err() != nil {
				return nil, err
			}
			wait = t.backoff(attempt)
		case resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented:
			if !idempotent || attempt >= t.attempts {
				return resp, nil
			}
			wait = t.backoff(attempt)
		default:
			w, limited := limitedFor(resp, t.now())
			if !limited || rateRetried || w > t.maxWait {
				return resp, nil
			}
			rateRetried, wait = true, w
			t.mu.Lock()
			t.stats.Waited += w
			t.mu.Unlock()
		}
		retry, ok := rewind(req)
		if !ok {
			return resp, err
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
		req = retry
	}
}

// backoff is the wait before attempt n+1: exponential from the base, with full jitter,
// so that many passes do not retry in step.
func (t *transport) backoff(n int) time.Duration {
	d := t.retryBase << (n - 1)
	return d/2 + rand.N(d/2+1)
}

// waitTurn spaces mutating requests: GitHub's secondary limits punish bursts of
// content-creating calls.
func (t *transport) waitTurn(ctx context.Context) error {
	t.mu.Lock()
	now := t.now()
	at := t.nextMutation
	if at.Before(now) {
		at = now
	}
	t.nextMutation = at.Add(t.pace)
	t.mu.Unlock()
	return sleep(ctx, at.Sub(now))
}

// pointsWindow is GitHub's minute for points, with a second's margin: GitHub counts a
// request when it arrives, later than it was sent.
const pointsWindow = time.Minute + time.Second

// spend waits until the request's points fit within pointsCap for the last minute, and
// charges them. GitHub charges points whatever the answer, retries included; a retry
// is charged as it is sent again (see count), the cap judged at the first send.
func (t *transport) spend(ctx context.Context, cost int) error {
	if t.pointsCap <= 0 {
		return nil
	}
	for {
		t.mu.Lock()
		now := time.Now()
		t.spent = slices.DeleteFunc(t.spent, func(p pointsAt) bool { return now.Sub(p.at) >= t.window })
		total := 0
		for _, p := range t.spent {
			total += p.points
		}
		if total+cost <= t.pointsCap || len(t.spent) == 0 {
			t.spent = append(t.spent, pointsAt{now, cost})
			t.mu.Unlock()
			return nil
		}
		wait := t.spent[0].at.Add(t.window).Sub(now)
		t.stats.Waited += wait
		t.mu.Unlock()
		if err := sleep(ctx, wait); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

// rewind returns a copy of the request that can be sent again.
func rewind(req *http.Request) (*http.Request, bool) {
	r := req.Clone(req.Context())
	if req.Body == nil || req.Body == http.NoBody {
		return r, true
	}
	if req.GetBody == nil {
		return nil, false
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, false
	}
	r.Body = body
	return r, true
}

// isLimited reports whether an answer is a rate limit: a 429, or a 403 with
// retry-after or an exhausted primary limit (a 403 without them is a permission).
func isLimited(resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusTooManyRequests:
		return true
	case http.StatusForbidden:
		return resp.Header.Get("Retry-After") != "" || resp.Header.Get("X-RateLimit-Remaining") == "0"
	}
	return false
}

// limitedFor reports whether the answer is a rate limit, and how long it asks to wait.
func limitedFor(resp *http.Response, now time.Time) (time.Duration, bool) {
	if !isLimited(resp) {
		return 0, false
	}
	return retryAfter(resp, now), true
}

func (t *transport) count(method string, resp *http.Response) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stats.Requests++
	if method == http.MethodGet || method == http.MethodHead {
		t.stats.Points += pointsRead
	} else {
		t.stats.Points += pointsWrite
	}
	if resp == nil {
		return
	}
	if resp.StatusCode == http.StatusNotModified {
		t.stats.NotModified++
	} else {
		t.stats.Primary++
	}
	if n, err := strconv.Atoi(resp.Header.Get("X-RateLimit-Remaining")); err == nil {
		t.stats.Remaining = n
		if r, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			t.stats.Reset = time.Unix(r, 0)
		}
	}
}

// statsNow returns the counts so far.
func (t *transport) statsNow() reconcile.APIStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stats
}

// take returns the counts since the last call and starts again; what GitHub last said
// of the primary limit is kept.
func (t *transport) take() reconcile.APIStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.stats
	t.stats = reconcile.APIStats{Remaining: s.Remaining, Reset: s.Reset}
	return s
}
