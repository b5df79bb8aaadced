package ghpoll_test

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/ghpoll"
	"github.com/reconcile-dev/reconcile/reconcile"
	"github.com/reconcile-dev/reconcile/reconcile/reconciletest"
)

// faultWorld is a world whose GitHub client retries fast and gives up on a hung answer
// after 200 ms, as the real one does after 20 s.
func faultWorld(t *testing.T, repos ...string) *world {
	t.Helper()
	w := newWorld(t, repos...)
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.ResponseHeaderTimeout = 200 * time.Millisecond
	client, err := ghpoll.NewWithOptions(&http.Client{Transport: authOn{base}}, w.gh.APIURL,
		ghpoll.Options{RetryBase: 5 * time.Millisecond, MaxRetryWait: 2 * time.Second, Now: w.Now})
	if err != nil {
		t.Fatal(err)
	}
	w.rc.GitHub = client
	return w
}

type authOn struct{ base http.RoundTripper }

func (a authOn) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer test-token")
	return a.base.RoundTrip(r)
}

func count(w *world, method, substr string) int {
	n := 0
	for _, r := range w.gh.Requests() {
		full := r.Path + "?" + r.Query.Encode()
		if r.Method == method && strings.Contains(full, substr) {
			n++
		}
	}
	return n
}

func TestFaults_ServerErrorsOnReadsAreRetried(t *testing.T) {
	for _, status := range []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			w := faultWorld(t, "octo-org/app")
			j := w.gh.QueueJob("octo-org/app", arm64Labels...)
			w.gh.Fail(http.MethodGet, "actions/runs", status, 2)
			w.mustPass(t)
			if _, ok := w.backend.Spec(reconcile.RunnerName("gha", "arm64", j, 0)); !ok {
				t.Error("the job got no runner after two failed reads")
			}
			if n := count(w, http.MethodGet, "repos/octo-org/app/actions/runs"); n < 3 {
				t.Errorf("%d reads of the runs, want at least 3: both injected failures, then the answer", n)
			}
		})
	}
}

func TestFaults_PersistentServerErrorEndsThatRepositoryOnly(t *testing.T) {
	w := faultWorld(t, "octo-org/app", "octo-org/web")
	w.gh.QueueJob("octo-org/web", arm64Labels...)
	w.gh.Fail(http.MethodGet, "repos/octo-org/app/actions/runs", http.StatusBadGateway, 100)
	_, err := w.pass(t)
	if err == nil || !strings.Contains(err.Error(), "octo-org/app") {
		t.Fatalf("RunOnce() = %v, want an error naming octo-org/app", err)
	}
	if n := count(w, http.MethodGet, "repos/octo-org/app/actions/runs"); n != 3 {
		t.Errorf("%d tries of the failing read, want 3 (bounded)", n)
	}
	if len(w.backend.Runners()) != 1 {
		t.Errorf("runners %v, want octo-org/web's", reconciletest.Names(w.backend.Runners()))
	}
}

func TestFaults_HungAnswerIsRetried(t *testing.T) {
	w := faultWorld(t, "octo-org/app")
	j := w.gh.QueueJob("octo-org/app", arm64Labels...)
	w.gh.Delay(http.MethodGet, "actions/runs", time.Second, 1)
	start := time.Now()
	w.mustPass(t)
	if _, ok := w.backend.Spec(reconcile.RunnerName("gha", "arm64", j, 0)); !ok {
		t.Error("the job got no runner after a hung read")
	}
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("the pass took %v: the hung read was waited out instead of retried", d)
	}
}

func TestFaults_RegistrationIsNeverRetriedBlindly(t *testing.T) {
	w := faultWorld(t, "octo-org/app")
	w.gh.QueueJob("octo-org/app", arm64Labels...)
	w.gh.Fail(http.MethodPost, "generate-jitconfig", http.StatusBadGateway, 1)
	if _, err := w.pass(t); err == nil {
		t.Fatal("RunOnce() = nil, want the registration error")
	}
	if n := count(w, http.MethodPost, "generate-jitconfig"); n != 1 {
		t.Errorf("%d registration attempts, want 1: a POST is not idempotent", n)
	}
	if len(w.backend.Runners()) != 0 || len(w.gh.Runners()) != 0 {
		t.Errorf("left behind: runners %v, registrations %v", reconciletest.Names(w.backend.Runners()), regNames(w.gh.Runners()))
	}
	w.Advance(time.Minute)
	w.mustPass(t) // the next pass creates it
	if len(w.backend.Runners()) != 1 {
		t.Errorf("runners after the next pass: %v", reconciletest.Names(w.backend.Runners()))
	}
}

func TestFaults_SecondaryRateLimits(t *testing.T) {
	t.Run("a short retry-after is waited out", func(t *testing.T) {
		w := faultWorld(t, "octo-org/app")
		j := w.gh.QueueJob("octo-org/app", arm64Labels...)
		w.gh.FailWith(http.MethodGet, "actions/runs", http.StatusTooManyRequests, 1, http.Header{"Retry-After": {"1"}})
		w.mustPass(t)
		if _, ok := w.backend.Spec(reconcile.RunnerName("gha", "arm64", j, 0)); !ok {
			t.Error("no runner after a 429 with retry-after 1")
		}
	})
	t.Run("a long one ends the scope and stops calling", func(t *testing.T) {
		w := faultWorld(t, "octo-org/app")
		idle := w.idleRunner(5)
		w.gh.FailWith(http.MethodGet, "actions/runs", http.StatusForbidden, 1,
			http.Header{"Retry-After": {"120"}, "X-Ratelimit-Remaining": {"4000"}})
		_, err := w.pass(t)
		if !errors.Is(err, reconcile.ErrRateLimited) {
			t.Fatalf("RunOnce() = %v, want ErrRateLimited", err)
		}
		if !slices.Contains(reconciletest.Names(w.backend.Runners()), idle.Name) {
			t.Error("the idle runner was deleted on a pass that could not list jobs")
		}
		after := len(w.gh.Requests())
		w.pass(t)
		if n := len(w.gh.Requests()) - after; n != 0 {
			t.Errorf("%d requests while GitHub asked to wait", n)
		}
	})
}

func TestFaults_PageFailingMidListing(t *testing.T) {
	w := faultWorld(t, "octo-org/app")
	run := w.gh.AddRun("octo-org/app", "in_progress")
	for range 150 { // two pages of jobs
		w.gh.AddJob(run, "completed", arm64Labels...)
	}
	w.gh.AddJob(run, "queued", arm64Labels...)
	idle := w.idleRunner(5)
	w.gh.Fail(http.MethodGet, "jobs?filter=latest&page=2", http.StatusBadGateway, 100)
	if _, err := w.pass(t); err == nil {
		t.Fatal("RunOnce() = nil, want the page's error")
	}
	if names := reconciletest.Names(w.backend.Runners()); len(names) != 1 || names[0] != idle.Name {
		t.Errorf("runners %v: a partial list must change nothing", names)
	}
}

func TestFaults_BackendDeleteFailureIsRetriedNextPass(t *testing.T) {
	w := newWorld(t, "octo-org/app")
	done := reconcile.Runner{Name: "gha-arm64-5", Pool: "arm64", Scope: reconcile.Scope{Owner: "octo-org", Repo: "app"}, JobID: 5,
		CreatedAt: w.Now().Add(-time.Hour), Phase: reconcile.PhaseFinished}
	w.backend.Put(done)
	w.backend.FailNext("delete", errors.New("backend unavailable"))
	if _, err := w.pass(t); err == nil {
		t.Fatal("RunOnce() = nil, want the delete error")
	}
	w.Advance(time.Minute)
	w.mustPass(t)
	if len(w.backend.Runners()) != 0 {
		t.Errorf("runners left: %v", reconciletest.Names(w.backend.Runners()))
	}
}
