package ghpoll

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
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

	// points, when set, bounds the secondary-limit points sent in any minute (real
	// time), with the processes that share the cache.
	points *ledger

	// slowUntil reads, and slowDown sets, until when writes keep the fallback pace
	// (slowPace) after GitHub's secondary limit answered one: kept in the cache, for
	// the next processes. Nil: never slowed.
	slowUntil func() time.Time
	slowDown  func(until time.Time)

	mu           sync.Mutex
	stats        reconcile.APIStats
	nextMutation time.Time
	// held is until when GitHub asked for no request (wall time): from the moment a
	// limited answer arrives, no request leaves before it, from any goroutine; holds
	// counts the limited answers, so that a write queued before one is not sent.
	held          time.Time
	holds         int
	heldSecondary bool // the last limited answer was a secondary limit's
}

// slowPace is the fallback pace of writes for the hour after GitHub's secondary limit
// answered one: at most FallbackWritesPerMinute a minute (GitHub documents 80
// content-creating requests a minute).
const slowPace = time.Minute / reconcile.FallbackWritesPerMinute

// minWriteGap spaces writes when the points alone pace them: at most ten a second, so
// that a burst of registrations is spread over seconds, not sent at once (GitHub
// documents points a minute and requests at once, not a pace; its best practices ask
// for a second between writes, which would make a 200-job matrix wait 200 s).
const minWriteGap = 100 * time.Millisecond

// slowFor is how long writes keep the fallback pace after a secondary limit: until a
// clean hour has passed.
const slowFor = time.Hour

// heldError is a request the transport did not send: GitHub asked for no request
// until then, longer than the transport waits.
type heldError struct {
	until     time.Time
	secondary bool // the limit that answered was a secondary one
}

func (e *heldError) Error() string {
	return "not sent: GitHub asked for no request until " + e.until.UTC().Format(time.RFC3339)
}

func newTransport(base http.RoundTripper, concurrency int) *transport {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{base: base, sem: make(chan struct{}, clampConcurrency(concurrency)),
		pace: time.Minute / reconcile.FallbackWritesPerMinute, maxWait: 20 * time.Second, attempts: 3, retryBase: 500 * time.Millisecond, now: time.Now}
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
	t.mu.Lock()
	holds := t.holds // a write queued before a limited answer is not sent
	t.mu.Unlock()
	cost := pointsRead
	if mutation {
		cost = pointsWrite
		if err := t.waitTurn(ctx); err != nil {
			return nil, err
		}
	}
	// GitHub's wait first, then the points: a request is sent as soon as it has them.
	if err := t.gate(ctx, !mutation, holds); err != nil {
		return nil, err
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
	return t.send(ctx, req, holds)
}

// send sends req, and again after a server error or a broken connection (an
// idempotent request only) and after a rate limit GitHub asks a read to wait out
// briefly (once). A write is never sent again while limited: its caller defers it.
func (t *transport) send(ctx context.Context, req *http.Request, holds int) (*http.Response, error) {
	idempotent := req.Method == http.MethodGet || req.Method == http.MethodHead || req.Method == http.MethodDelete
	read := req.Method == http.MethodGet || req.Method == http.MethodHead
	rateRetried := false
	for attempt := 1; ; attempt++ {
		if err := t.gate(ctx, read, holds); err != nil {
			return nil, err
		}
		resp, err := t.base.RoundTrip(req)
		t.count(req, resp)
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
			if limited {
				t.hold(req, resp, w)
			}
			if !limited || !read || rateRetried || w > t.maxWait {
				return resp, nil
			}
			rateRetried = true // the gate waits w out
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

// gate lets a request leave once GitHub's wait is over. A write that was queued before
// a limited answer (holds is the count it saw) is refused unsent: the pass defers it.
// A read waits a short wait (within maxWait) out; a longer one refuses it unsent.
func (t *transport) gate(ctx context.Context, read bool, holds int) error {
	for {
		t.mu.Lock()
		until, since, secondary := t.held, t.holds != holds, t.heldSecondary
		t.mu.Unlock()
		d := until.Sub(t.now())
		switch {
		case !read && since:
			return &heldError{until: until, secondary: secondary}
		case d <= 0:
			return nil
		case d > t.maxWait:
			return &heldError{until: until, secondary: secondary}
		}
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
}

// hold records a limited answer: no request leaves for w, and a secondary limit on a
// write slows the writes down for the next hour.
func (t *transport) hold(req *http.Request, resp *http.Response, w time.Duration) {
	now := t.now()
	secondary := resp.Header.Get("X-RateLimit-Remaining") != "0"
	t.mu.Lock()
	t.holds++
	t.heldSecondary = secondary
	if until := now.Add(w); until.After(t.held) {
		t.held = until
	}
	if secondary {
		if t.stats.SecondaryLimited == nil {
			t.stats.SecondaryLimited = map[string]int{}
		}
		t.stats.SecondaryLimited[endpoint(req)]++
	}
	held := t.held
	t.mu.Unlock()
	var slow time.Time
	if secondary && req.Method != http.MethodGet && req.Method != http.MethodHead && t.slowDown != nil {
		slow = now.Add(slowFor)
		t.slowDown(slow)
	}
	if t.points != nil && secondary { // the processes that share the points hear of it at once
		ctx, cancel := context.WithTimeout(context.WithoutCancel(req.Context()), 5*time.Second)
		defer cancel()
		t.points.learn(ctx, held, slow)
	}
}

// endpoint names a request's endpoint by the last part of its path that is no id
// (generate-jitconfig, rerun, runners, runs, jobs): a label of few values.
func endpoint(req *http.Request) string {
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	for i := len(parts) - 1; i >= 0; i-- {
		if _, err := strconv.ParseInt(parts[i], 10, 64); err != nil {
			return parts[i]
		}
	}
	return ""
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
	pace := t.pace
	if t.slowUntil != nil && t.now().Before(t.slowUntil()) {
		pace = max(pace, slowPace)
	}
	t.mu.Lock()
	now := t.now()
	at := t.nextMutation
	if at.Before(now) {
		at = now
	}
	t.nextMutation = at.Add(pace)
	t.mu.Unlock()
	return sleep(ctx, at.Sub(now))
}

// spend waits until the request's points fit within the minute's budget, and charges
// them. GitHub charges points whatever the answer, retries included; a retry is
// charged as it is sent again (see count), the budget judged at the first send. What
// other processes learnt from GitHub's limits, the record tells this one at once.
func (t *transport) spend(ctx context.Context, cost int) error {
	if t.points == nil {
		return nil
	}
	var slow time.Time
	if t.slowUntil != nil {
		slow = t.slowUntil()
	}
	waited, news, err := t.points.take(ctx, cost, slow)
	t.mu.Lock()
	t.stats.Waited += waited
	if news.held.After(t.held) {
		t.held, t.heldSecondary = news.held, true
		t.holds++
	}
	t.mu.Unlock()
	if t.slowUntil != nil && news.slow.After(t.slowUntil()) {
		t.slowDown(news.slow)
	}
	return err
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

// limitedFor reports whether the answer is a rate limit, and how long it asks to wait:
// retry-after, the primary limit's reset, or a minute. A 403 with neither header is a
// secondary limit when its message says so ("You have exceeded a secondary rate
// limit", GitHub's REST documentation; go-github matches the same words): the body is
// read for it, and put back for the caller.
func limitedFor(resp *http.Response, now time.Time) (time.Duration, bool) {
	if !isLimited(resp) && !(resp.StatusCode == http.StatusForbidden && namesSecondaryLimit(resp)) {
		return 0, false
	}
	return retryAfter(resp, now), true
}

// namesSecondaryLimit reads the answer's message (up to 64 KiB; the body is restored).
func namesSecondaryLimit(resp *http.Response) bool {
	if resp.Body == nil {
		return false
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(body), resp.Body), resp.Body}
	return err == nil && strings.Contains(strings.ToLower(string(body)), "secondary rate limit")
}

func (t *transport) count(req *http.Request, resp *http.Response) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stats.Requests++
	if req.Method == http.MethodGet || req.Method == http.MethodHead {
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
	if r := resp.Header.Get("X-RateLimit-Resource"); r != "" { // the primary bucket GitHub charged
		if t.stats.Resources == nil {
			t.stats.Resources = map[string]int{}
		}
		t.stats.Resources[r]++
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
	if t.slowUntil != nil {
		s.SlowWritesUntil = t.slowUntil()
	}
	return s
}
