package ghpoll

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jarcoal/httpmock"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// testLedger is a ledger of cap points in a window shrunk for a test: claims are
// spent within a tenth of it, and kept for the window after that.
func testLedger(cap int, window time.Duration) *ledger {
	l := newLedger(cap)
	l.life = window / 10
	l.kept = window + l.life
	return l
}

// spentAt is a request's points, and when they were sent.
type spentAt struct {
	at     time.Time
	points int
}

// mostInAWindow returns the most points sent within any window.
func mostInAWindow(spent []spentAt, window time.Duration) int {
	most := 0
	for i, s := range spent {
		sum := 0
		for _, o := range spent[i:] {
			if o.at.Sub(s.at) < window {
				sum += o.points
			}
		}
		most = max(most, sum)
	}
	return most
}

// spendFor has two processes' requests (reads and writes, four goroutines each) take
// points from their ledgers for d, and returns what each sent, in order.
func spendFor(t *testing.T, ledgers [2]*ledger, d time.Duration) (all []spentAt, per [2]int) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for p, l := range ledgers {
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cost := pointsRead
				if g%2 == 0 {
					cost = pointsWrite
				}
				for {
					if _, _, err := l.take(ctx, cost, time.Time{}); err != nil {
						return
					}
					mu.Lock()
					all = append(all, spentAt{time.Now(), cost})
					per[p] += cost
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	for i := 1; i < len(all); i++ { // in order of sending, for mostInAWindow
		for j := i; j > 0 && all[j].at.Before(all[j-1].at); j-- {
			all[j], all[j-1] = all[j-1], all[j]
		}
	}
	return all, per
}

// Two processes that share a cache file (a timer's --once pass and one from a
// terminal) spend GitHub's points together: in no window do they send more than the
// budget between them, and both get to send. Each pacing itself alone, as before,
// sends up to twice the budget: the control that shows the check bites.
func TestPoints_ProcessesSharingACacheStayWithinTheBudgetTogether(t *testing.T) {
	t.Parallel()
	const budget, window = 60, 400 * time.Millisecond
	cache := reconcile.FileStore(filepath.Join(t.TempDir(), "cache"))
	var shared [2]*ledger
	for i := range shared {
		shared[i] = testLedger(budget, window)
		if err := shared[i].share(context.Background(), cache.Shared("points")); err != nil {
			t.Fatal(err)
		}
	}
	all, per := spendFor(t, shared, 3*window)
	// GitHub counts a window from each request; the record keeps a claim for the window
	// after the last moment its points may be spent.
	if most := mostInAWindow(all, window); most > budget {
		t.Errorf("the two processes sent %d points within %v, over the budget of %d between them", most, window, budget)
	}
	if per[0] == 0 || per[1] == 0 {
		t.Errorf("points sent by each process: %v; want both to send", per)
	}
	if total := per[0] + per[1]; total < 2*budget {
		t.Errorf("%d points sent over three windows, want at least two windows' budget (%d): the ledger starves them", total, 2*budget)
	}

	alone := [2]*ledger{testLedger(budget, window), testLedger(budget, window)}
	all, _ = spendFor(t, alone, 2*window)
	if most := mostInAWindow(all, window); most <= budget {
		t.Errorf("two processes pacing themselves alone sent at most %d points within %v; the control should exceed %d", most, window, budget)
	}
}

// A process whose registration GitHub answers with a secondary limit tells the
// processes that share its cache at once: their next write is not sent, and they
// keep the fallback pace for the hour.
func TestPoints_ALimitOneProcessMeetsHoldsTheOthersWrites(t *testing.T) {
	t.Parallel()
	cache := reconcile.FileStore(filepath.Join(t.TempDir(), "cache"))
	var clients [2]*Client
	var sent [2]atomic.Int32
	for i := range clients {
		mt := httpmock.NewMockTransport()
		c, err := NewWithOptions(&http.Client{Transport: mt}, api, Options{PointsPerMinute: 800})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.SharePoints(context.Background(), cache.Shared("points")); err != nil {
			t.Fatal(err)
		}
		mt.RegisterResponder(http.MethodDelete, api+"repos/octo-org/octo-repo/actions/runners/7", func(*http.Request) (*http.Response, error) {
			sent[i].Add(1)
			resp := httpmock.NewStringResponse(http.StatusForbidden, `{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}`)
			resp.Header.Set("Retry-After", "60")
			return resp, nil
		})
		clients[i] = c
	}
	if err := clients[0].RemoveRegistration(context.Background(), repo, 7); !errors.Is(err, reconcile.ErrRateLimited) {
		t.Fatalf("the first process's write: %v, want a rate limit", err)
	}
	err := clients[1].RemoveRegistration(context.Background(), repo, 7)
	if !errors.Is(err, reconcile.ErrRateLimited) || sent[1].Load() != 0 {
		t.Errorf("the other process's write: %v, %d sent; want refused unsent while GitHub's wait lasts", err, sent[1].Load())
	}
	if until := clients[1].cache.slowUntil(); time.Until(until) < 59*time.Minute {
		t.Errorf("the other process keeps the fallback pace until %v, want for the hour", until)
	}
}

// A record that cannot be updated (the cache's directory is gone) leaves the process
// spending alone, within its budget, rather than failing its calls.
func TestPoints_ARecordThatCannotBeUpdatedLeavesTheProcessAlone(t *testing.T) {
	t.Parallel()
	l := testLedger(20, 200*time.Millisecond)
	if err := l.share(context.Background(), reconcile.FileStore(filepath.Join(t.TempDir(), "gone", "cache")).Shared("points")); err == nil {
		t.Fatal("share() of a record in a missing directory: no error")
	}
	dir := t.TempDir()
	if err := l.share(context.Background(), reconcile.FileStore(filepath.Join(dir, "cache")).Shared("points")); err != nil {
		t.Fatal(err)
	}
	l.shared = reconcile.FileStore(filepath.Join(dir, "gone", "cache")).Shared("points") // lost mid-pass
	start := time.Now()
	for range 6 { // 30 points: the budget, then a wait for the window
		if _, _, err := l.take(context.Background(), pointsWrite, time.Time{}); err != nil {
			t.Fatalf("take() = %v, want the ledger to go on alone", err)
		}
	}
	if l.failed == nil || time.Since(start) < 150*time.Millisecond {
		t.Errorf("failed = %v after %v; want the failure kept and the budget still held", l.failed, time.Since(start))
	}
}

// A secondary limit's 403 may come without retry-after (GitHub: then wait at least a
// minute). Its message names it; the transport holds for a minute: a write already
// queued behind the limited one is not sent.
func TestTransport_ASecondaryLimitWithoutRetryAfterHoldsAMinute(t *testing.T) {
	t.Parallel()
	c, mt := newClient(t)
	c.tr.pace = 300 * time.Millisecond // the second write waits its turn
	mt.RegisterResponder(http.MethodDelete, api+"repos/octo-org/octo-repo/actions/runners/7", func(*http.Request) (*http.Response, error) {
		time.Sleep(100 * time.Millisecond) // the second write is queued by now
		return httpmock.NewStringResponse(http.StatusForbidden, `{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`), nil
	})
	var sent atomic.Int32
	mt.RegisterResponder(http.MethodDelete, api+"repos/octo-org/octo-repo/actions/runners/8", func(*http.Request) (*http.Response, error) {
		sent.Add(1)
		return httpmock.NewStringResponse(http.StatusNoContent, ""), nil
	})
	first := make(chan error, 1)
	go func() { first <- c.RemoveRegistration(context.Background(), repo, 7) }()
	time.Sleep(50 * time.Millisecond) // the first is sent
	err := c.RemoveRegistration(context.Background(), repo, 8)
	if err := <-first; !errors.Is(err, reconcile.ErrRateLimited) {
		t.Fatalf("the first write: %v, want a rate limit", err)
	}
	var rle *reconcile.RateLimitError
	if !errors.As(err, &rle) || sent.Load() != 0 || time.Until(rle.Until) < 55*time.Second {
		t.Errorf("the queued write: %v (sent %d); want it refused unsent for about a minute", err, sent.Load())
	}
}

// After GitHub refused a registration, writes keep the fallback pace; the burst before
// the refusal is still in GitHub's rolling minute when its wait ends, so a write also
// waits until fewer than 75 writes of the last minute remain in the record.
func TestPoints_TheFallbackPaceCountsTheMinuteBeforeTheRefusal(t *testing.T) {
	t.Parallel()
	const window = 500 * time.Millisecond
	l := testLedger(100000, window)
	for range 80 {
		if _, _, err := l.take(context.Background(), pointsWrite, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	if _, _, err := l.take(context.Background(), pointsWrite, time.Time{}); err != nil || time.Since(start) > window/5 {
		t.Fatalf("a write at the points pace waited %v (%v); want none", time.Since(start), err)
	}
	start = time.Now()
	if _, _, err := l.take(context.Background(), pointsWrite, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < window/2 {
		t.Errorf("a write at the fallback pace, 81 writes in the window, went after %v; want it held until fewer than %d remain", d, reconcile.FallbackWritesPerMinute)
	}
}
