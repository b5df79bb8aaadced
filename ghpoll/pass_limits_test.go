package ghpoll_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/reconcile-dev/reconcile/ghpoll"
	"github.com/reconcile-dev/reconcile/ghpoll/ghpolltest"
	"github.com/reconcile-dev/reconcile/reconcile"
	"github.com/reconcile-dev/reconcile/reconcile/reconciletest"
)

// limitedWorld is a burst of 12 registrations forced far past what an enforcing fake
// GitHub takes: the JIT call counted as content-creating, 5 in a 3-second "minute".
func limitedWorld(t *testing.T) (*ghpolltest.Server, *reconcile.Reconciler, *reconciletest.Backend) {
	t.Helper()
	gh := ghpolltest.NewServer(t)
	gh.SetLimits(ghpolltest.Limits{PointsPerMinute: 900, Concurrent: 100, CreatesPerMinute: 5, Minute: 3 * time.Second,
		ContentCreating: ghpolltest.JITOnly})
	gh.AddRepo("octo-org/app", false, false)
	for range 12 {
		gh.QueueJob("octo-org/app", arm64Labels...)
	}
	client, err := ghpoll.NewWithOptions(&http.Client{Transport: authTransport{}}, gh.APIURL,
		ghpoll.Options{Concurrency: 8, WritesPerMinute: 6000}) // forced far past GitHub's pace
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := reconcile.Load([]byte("github: {repos: [octo-org/app]}\npools:\n  - name: arm64\n    labels: [self-hosted, linux, ARM64]\n    max_runners: 20\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.GitHub.APIURL = gh.APIURL
	backend := reconciletest.NewBackend(time.Now)
	notes, _ := reconcile.OpenNotes(context.Background(), nil)
	if err := client.KeepIn(notes); err != nil {
		t.Fatal(err)
	}
	rc := &reconcile.Reconciler{Config: cfg, GitHub: client, Backends: map[string]reconcile.Backend{"arm64": backend}, Memo: notes}
	return gh, rc, backend
}

// A burst of registrations forced faster than GitHub takes them: GitHub's first
// limited answer stops every request, from every goroutine, until its retry-after is
// over; in a pass too short to wait it out, the writes queued behind it are deferred
// unsent; the runners registered are started, nothing is left half-made; and the next
// pass registers at the fallback pace, with no second limited answer.
func TestLimits_NoRequestLeavesWhileGitHubSaysWait(t *testing.T) {
	t.Parallel()
	gh, rc, backend := limitedWorld(t)
	var logs syncBuffer
	ctx := zerolog.New(&logs).WithContext(context.Background())

	sum, err := rc.RunWithin(ctx, 8*time.Second) // too short to wait GitHub's wait out and go on
	if err != nil {
		t.Fatalf("the pass failed: %v; a secondary limit defers the creates left, it does not fail the pass", err)
	}
	if n := strings.Count(logs.String(), `"level":"warn"`); n != 1 || !strings.Contains(logs.String(), "secondary rate limit answered 1 request (generate-jitconfig)") {
		t.Errorf("%d warnings, want one naming the limit and the endpoint:\n%s", n, logs.String())
	}
	var limited []ghpolltest.Received
	for _, r := range gh.Received() {
		if r.Limited {
			limited = append(limited, r)
		}
	}
	if len(limited) != 1 || !strings.HasSuffix(limited[0].Path, "/generate-jitconfig") {
		t.Fatalf("limited answers %+v, want one, to a registration", limited)
	}
	if n := sum.API.SecondaryLimited["generate-jitconfig"]; n != 1 || sum.API.SlowWritesUntil.IsZero() {
		t.Errorf("secondary-limited %v, slow until %v: want the registration counted and the writes slowed", sum.API.SecondaryLimited, sum.API.SlowWritesUntil)
	}
	// Requests already on the wire when the answer came arrive within milliseconds;
	// none leaves after it until GitHub's wait is over.
	wait := 3 * time.Second
	for _, r := range gh.Received() {
		if d := r.At.Sub(limited[0].At); d > 200*time.Millisecond && d < wait-200*time.Millisecond {
			t.Errorf("%s %s reached GitHub %v after the limited answer, within its wait", r.Method, r.Path, d.Round(time.Millisecond))
		}
	}
	// What was registered was started; nothing is left registered without a runner.
	if regs, runners := len(gh.Runners()), len(backend.Runners()); regs != runners || runners < 5 || sum.Deferred+sum.Created < 12 {
		t.Fatalf("%d registrations, %d runners, %d deferred: want every registration started and the rest deferred", regs, runners, sum.Deferred)
	}
	// The next pass, past the wait, registers the rest at the fallback pace: no
	// second limited answer.
	time.Sleep(wait)
	if _, err := rc.RunWithin(ctx, 30*time.Second); err != nil {
		t.Fatalf("next pass: %v", err)
	}
	if n := gh.Stats().Limited; n != 1 || len(backend.Runners()) != 12 {
		t.Errorf("%d limited answers in all, %d runners; want 1 and all 12", n, len(backend.Runners()))
	}
}

// The same burst in a pass whose deadline leaves time after GitHub's wait: the pass
// waits it out and registers the rest at the fallback pace, all in one pass, with one
// limited answer.
func TestLimits_APassWithTimeWaitsGitHubsWaitOut(t *testing.T) {
	t.Parallel()
	gh, rc, backend := limitedWorld(t)
	sum, err := rc.RunWithin(zerolog.Nop().WithContext(context.Background()), 40*time.Second)
	if err != nil || sum.Created != 12 || sum.Deferred != 0 {
		t.Fatalf("pass = %v, %d created, %d deferred; want all 12 in this pass", err, sum.Created, sum.Deferred)
	}
	if n := gh.Stats().Limited; n != 1 || len(backend.Runners()) != 12 {
		t.Errorf("%d limited answers, %d runners; want 1 and 12", n, len(backend.Runners()))
	}
}
