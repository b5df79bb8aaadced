package ghpoll

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jarcoal/httpmock"

	"github.com/reconcile-dev/reconcile/reconcile"
)

func TestTransport_ShortRetryAfterIsWaitedOutOnce(t *testing.T) {
	t.Parallel()
	c, mt := newClient(t)
	c.tr.maxWait = 2 * time.Second
	calls := 0
	mt.RegisterResponder(http.MethodGet, api+"repos/octo-org/octo-repo/actions/runners", func(*http.Request) (*http.Response, error) {
		calls++
		if calls == 1 {
			resp := httpmock.NewStringResponse(http.StatusTooManyRequests, `{"message":"slow down"}`)
			resp.Header.Set("Retry-After", "1")
			return resp, nil
		}
		return httpmock.NewJsonResponse(http.StatusOK, runnersPage(nil))
	})
	start := time.Now()
	if _, err := c.Registrations(context.Background(), repo); err != nil {
		t.Fatalf("Registrations() = %v, want the retry to succeed", err)
	}
	if calls != 2 || time.Since(start) < time.Second {
		t.Errorf("%d calls in %v, want 2 after waiting the 1s asked", calls, time.Since(start))
	}
	if s := c.TakeStats(); s.Waited != time.Second || s.Requests != 2 {
		t.Errorf("stats %+v, want 2 requests and 1s waited", s)
	}
}

func TestTransport_LongRetryAfterEndsTheScope(t *testing.T) {
	t.Parallel()
	c, mt := newClient(t)
	mt.RegisterResponder(http.MethodGet, api+"repos/octo-org/octo-repo/actions/runners", func(*http.Request) (*http.Response, error) {
		resp := httpmock.NewStringResponse(http.StatusForbidden, `{"message":"You have exceeded a secondary rate limit."}`)
		resp.Header.Set("Retry-After", "600")
		return resp, nil
	})
	start := time.Now()
	_, err := c.Registrations(context.Background(), repo)
	if !errors.Is(err, reconcile.ErrRateLimited) || time.Since(start) > time.Second {
		t.Errorf("Registrations() = %v after %v, want ErrRateLimited at once", err, time.Since(start))
	}
}

func TestTransport_ConcurrencyIsBounded(t *testing.T) {
	t.Parallel()
	mt := httpmock.NewMockTransport()
	c, err := NewWithOptions(&http.Client{Transport: mt}, api, Options{Concurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	var inFlight, peak atomic.Int32
	mt.RegisterNoResponder(func(*http.Request) (*http.Response, error) {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		inFlight.Add(-1)
		return httpmock.NewJsonResponse(http.StatusOK, runnersPage(nil))
	})
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() { _, _ = c.Registrations(context.Background(), repo) })
	}
	wg.Wait()
	if p := peak.Load(); p > 3 {
		t.Errorf("%d requests at once, want at most 3", p)
	}
	if n := clampConcurrency(500); n != 99 {
		t.Errorf("clampConcurrency(500) = %d, want 99", n)
	}
}

func TestTransport_ConditionalRequestsAndAccounting(t *testing.T) {
	t.Parallel()
	c, mt := newClient(t)
	mt.RegisterResponder(http.MethodGet, api+"repos/octo-org/octo-repo/actions/runners", func(req *http.Request) (*http.Response, error) {
		if req.Header.Get("If-None-Match") == `"v1"` {
			return httpmock.NewStringResponse(http.StatusNotModified, ""), nil
		}
		resp, err := httpmock.NewJsonResponse(http.StatusOK, runnersPage([]any{runnerObj(t, 7, "gha-x-7", "online", false)}))
		resp.Header.Set("ETag", `"v1"`)
		resp.Header.Set("X-RateLimit-Remaining", "4321")
		resp.Header.Set("X-RateLimit-Reset", "1900000000")
		resp.Header.Set("X-RateLimit-Resource", "core")
		return resp, err
	})
	for i := range 2 {
		regs, err := c.Registrations(context.Background(), repo)
		if err != nil || len(regs) != 1 || regs[0].ID != 7 {
			t.Fatalf("Registrations() #%d = %+v, %v; want runner 7 (from the cache the second time)", i+1, regs, err)
		}
	}
	s := c.TakeStats()
	want := reconcile.APIStats{Requests: 2, Points: 2, Primary: 1, NotModified: 1, Remaining: 4321, Reset: time.Unix(1900000000, 0),
		Resources: map[string]int{"core": 1}} // the 304 carries no headers here
	if !reflect.DeepEqual(s, want) {
		t.Errorf("stats = %+v, want %+v", s, want)
	}
}

// GitHub charges points for every request, whatever the answer (a read 1, a write 5;
// 900 a minute): with a cap, a request waits until it fits in the window.
func TestTransport_PointsCapHoldsRequestsBack(t *testing.T) {
	t.Parallel()
	c, mt := newClient(t)
	c.tr.points = testLedger(6, 300*time.Millisecond) // a write and a read, a window
	mt.RegisterResponder(http.MethodGet, api+"repos/octo-org/octo-repo/actions/runners", httpmock.NewJsonResponderOrPanic(http.StatusOK, runnersPage(nil)))
	mt.RegisterResponder(http.MethodDelete, api+"repos/octo-org/octo-repo/actions/runners/7", httpmock.NewStringResponder(http.StatusNoContent, ""))
	start := time.Now()
	if err := c.RemoveRegistration(context.Background(), repo, 7); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Registrations(context.Background(), repo); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d >= 300*time.Millisecond {
		t.Fatalf("6 points took %v, want no wait", d)
	}
	if _, err := c.Registrations(context.Background(), repo); err != nil { // the 7th point
		t.Fatal(err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("the 7th point went after %v, want it held until the window let the first 5 go", d)
	}
}

// A write waiting for its turn (writes are spaced) is called off when its context
// ends: it was not sent. One that was sent is seen through: GitHub may have done it,
// and the caller must hear the answer.
func TestTransport_WriteIsCalledOffOnlyBeforeItIsSent(t *testing.T) {
	t.Parallel()
	c, mt := newClient(t)
	c.tr.pace = time.Hour
	c.tr.nextMutation = time.Now().Add(time.Hour) // another write has the turn
	sent := make(chan struct{}, 1)
	mt.RegisterResponder(http.MethodDelete, api+"repos/octo-org/octo-repo/actions/runners/7", func(req *http.Request) (*http.Response, error) {
		sent <- struct{}{}
		time.Sleep(200 * time.Millisecond) // GitHub answers after the caller gave up
		if err := req.Context().Err(); err != nil {
			return nil, err
		}
		return httpmock.NewStringResponse(http.StatusNoContent, ""), nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.RemoveRegistration(ctx, repo, 7); !errors.Is(err, context.DeadlineExceeded) || len(sent) != 0 {
		t.Fatalf("RemoveRegistration(waiting its turn) = %v, sent %d; want DeadlineExceeded and nothing sent", err, len(sent))
	}
	c.tr.pace, c.tr.nextMutation = 0, time.Time{}
	ctx, cancel = context.WithCancel(context.Background())
	go func() { <-sent; cancel() }()
	if err := c.RemoveRegistration(ctx, repo, 7); err != nil {
		t.Errorf("RemoveRegistration(cancelled once sent) = %v, want GitHub's answer", err)
	}
}
