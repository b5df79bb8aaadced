package ghpoll_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/reconcile-dev/reconcile/ghpoll"
	"github.com/reconcile-dev/reconcile/ghpoll/ghpolltest"
	"github.com/reconcile-dev/reconcile/reconcile"
	"github.com/reconcile-dev/reconcile/reconcile/reconciletest"
)

// These tests run whole passes: the real ghpoll client against a fake GitHub that
// speaks the REST API, and the in-memory backend.

var arm64Labels = []string{"self-hosted", "linux", "ARM64"}

type world struct {
	*reconciletest.Clock
	gh      *ghpolltest.Server
	backend *reconciletest.Backend
	rc      *reconcile.Reconciler
}

func newWorld(t *testing.T, repos ...string) *world {
	t.Helper()
	w := &world{gh: ghpolltest.NewServer(t), Clock: reconciletest.NewClock(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))}
	w.gh.SetClock(w.Now)
	w.backend = reconciletest.NewBackend(w.Now)
	client, err := ghpoll.NewWithOptions(&http.Client{Transport: authTransport{}}, w.gh.APIURL, ghpoll.Options{Now: w.Now})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := reconcile.Load([]byte(`
github:
  repos: [` + strings.Join(repos, ", ") + `]
pools:
  - name: arm64
    labels: [self-hosted, linux, ARM64]
    max_runners: 10
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg.GitHub.APIURL = w.gh.APIURL
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if u := w.backend.Unserved(); len(u) > 0 { // the fake GitHub checks its own
			t.Errorf("faults injected and never served: %v", u)
		}
	})
	notes, _ := reconcile.OpenNotes(context.Background(), nil) // the --cache, in memory: no store, no error
	if err := client.KeepIn(notes); err != nil {
		t.Fatal(err)
	}
	w.rc = &reconcile.Reconciler{Config: cfg, GitHub: client, Budget: reconcile.DefaultBudget(), Backends: map[string]reconcile.Backend{"arm64": w.backend},
		Memo: notes, Now: w.Now}
	return w
}

// idleRunner puts in an hour-old runner of octo-org/app, made for jobID, online and
// idle at GitHub.
func (w *world) idleRunner(jobID int64) reconcile.Runner {
	r := reconcile.Runner{Name: reconcile.RunnerName("gha", "arm64", jobID, 0), Pool: "arm64",
		Scope: reconcile.Scope{Owner: "octo-org", Repo: "app"}, JobID: jobID, CreatedAt: w.Now().Add(-time.Hour)}
	w.backend.Put(r)
	w.gh.AddRunner("octo-org/app", r.Name, true, false)
	return r
}

// queueArm64 queues an arm64 job in octo-org/app and returns it with the name of the
// first runner made for it.
func (w *world) queueArm64() (job int64, name string) {
	job = w.gh.QueueJob("octo-org/app", arm64Labels...)
	return job, reconcile.RunnerName("gha", "arm64", job, 0)
}

func (w *world) pass(t *testing.T) (reconcile.Summary, error) {
	t.Helper()
	return w.rc.RunOnce(zerolog.New(zerolog.NewTestWriter(t)).WithContext(context.Background()))
}

func (w *world) mustPass(t *testing.T) reconcile.Summary {
	t.Helper()
	sum, err := w.pass(t)
	if err != nil {
		t.Fatalf("RunOnce() = %v, want nil", err)
	}
	return sum
}

// authTransport adds a token, as the oauth2 transport does in production.
type authTransport struct{}

func (authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer test-token")
	return http.DefaultTransport.RoundTrip(r)
}

func regNames(rs []ghpolltest.Runner) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return out
}

func TestPass_QueuedJobsGetRunners(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "octo-org/app")
	j1 := w.gh.QueueJob("octo-org/app", arm64Labels...)
	run := w.gh.AddRun("octo-org/app", "in_progress")
	w.gh.AddJob(run, "completed", arm64Labels...)
	j2 := w.gh.AddJob(run, "queued", "self-hosted", "ARM64") // waits inside a running workflow
	w.gh.QueueJob("octo-org/app", "ubuntu-latest")           // wants a GitHub-hosted runner

	sum := w.mustPass(t)
	want := []string{reconcile.RunnerName("gha", "arm64", j1, 0), reconcile.RunnerName("gha", "arm64", j2, 0)}
	if diff := cmp.Diff(want, reconciletest.Names(w.backend.Runners())); diff != "" {
		t.Fatalf("runners after a pass mismatch (-want +got):\n%s", diff)
	}
	if sum.Created != 2 || w.gh.JITCount() != 2 {
		t.Errorf("created %d runners with %d JIT configs, want 2 and 2", sum.Created, w.gh.JITCount())
	}
	regs := w.gh.Runners()
	if diff := cmp.Diff(want, regNames(regs)); diff != "" {
		t.Errorf("registrations mismatch (-want +got):\n%s", diff)
	}
	for _, reg := range regs {
		spec, _ := w.backend.Spec(reg.Name)
		if spec.JITConfig.Reveal() != reg.JITConfig {
			t.Errorf("runner %s started with another JIT config than GitHub issued for it", reg.Name)
		}
		// The pool's labels, and when it was registered: GitHub's runner object has no
		// creation time, and another pass must tell this create under way from a leftover.
		wantLabels := append(slices.Clone(arm64Labels), reconcile.RegisteredLabel(w.Now()))
		if diff := cmp.Diff(wantLabels, reg.Labels); diff != "" {
			t.Errorf("registration %s labels mismatch (-want +got):\n%s", reg.Name, diff)
		}
	}

	// The next pass sees them booting: nothing more to do.
	w.Advance(30 * time.Second)
	if sum := w.mustPass(t); !sum.Plan.Empty() {
		t.Errorf("second pass planned %+v, want nothing", sum.Plan)
	}
}

func TestPass_FinishedRunnersAreDeleted(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "octo-org/app")
	j, name := w.queueArm64()
	w.mustPass(t)

	// The runner takes its job, runs it and stops; GitHub drops the ephemeral registration.
	w.gh.SetRunner(name, true, true)
	w.gh.SetJobStatus(j, "in_progress", name)
	w.Advance(time.Minute)
	if sum := w.mustPass(t); !sum.Plan.Empty() {
		t.Fatalf("pass with a busy runner planned %+v, want nothing", sum.Plan)
	}
	w.gh.SetJobStatus(j, "completed", name)
	w.gh.RemoveRunner(name)
	w.backend.SetPhase(name, reconcile.PhaseFinished)
	w.Advance(time.Minute)
	sum := w.mustPass(t)
	if sum.Deleted != 1 || len(w.backend.Runners()) != 0 {
		t.Errorf("deleted %d, runners left %v; want 1 deleted and none left", sum.Deleted, reconciletest.Names(w.backend.Runners()))
	}
}

func TestPass_FinishedRunnerRegistrationIsRemoved(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "octo-org/app")
	j, name := w.queueArm64()
	w.mustPass(t)
	// Preempted before it came online: the machine stopped, the registration stays offline.
	w.backend.SetPhase(name, reconcile.PhaseFinished)
	w.gh.SetJobStatus(j, "completed", "other") // another runner took the job meanwhile
	w.Advance(time.Minute)
	w.mustPass(t)
	if rs := w.backend.Runners(); len(rs) != 0 {
		t.Errorf("runners left %v, want none", reconciletest.Names(rs))
	}
	if regs := w.gh.Runners(); len(regs) != 0 {
		t.Errorf("registrations left %v, want none", regNames(regs))
	}
}

func TestPass_DryRunChangesNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "octo-org/app")
	w.gh.QueueJob("octo-org/app", arm64Labels...)
	w.backend.Put(reconcile.Runner{Name: "gha-arm64-1", Pool: "arm64", Scope: reconcile.Scope{Owner: "octo-org", Repo: "app"},
		JobID: 1, CreatedAt: w.Now().Add(-time.Hour), Phase: reconcile.PhaseFinished})
	w.gh.AddRunner("octo-org/app", "gha-arm64-1", false, false)
	w.gh.AddRunner("octo-org/app", "gha-arm64-2", false, false) // a ghost
	w.rc.DryRun = true

	sum := w.mustPass(t)
	if len(sum.Plan.Create) != 1 || len(sum.Plan.Delete) != 1 || len(sum.Plan.Deregister) != 1 {
		t.Fatalf("dry run planned %d creates, %d deletes, %d deregisters; want 1 of each", len(sum.Plan.Create), len(sum.Plan.Delete), len(sum.Plan.Deregister))
	}
	if m := w.gh.Mutations(); len(m) != 0 {
		t.Errorf("dry run sent %v to GitHub, want only reads", m)
	}
	if n := w.gh.JITCount(); n != 0 {
		t.Errorf("dry run generated %d JIT configs, want 0", n)
	}
	if m := w.backend.Mutations(); len(m) != 0 {
		t.Errorf("dry run called the backend: %v", m)
	}
	if sum.Created+sum.Deleted+sum.Deregistered != 0 {
		t.Errorf("dry run summary counts changes: %+v", sum)
	}
}

func TestPass_FailedCreateRemovesItsRegistration(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "octo-org/app")
	w.gh.QueueJob("octo-org/app", arm64Labels...)
	w.backend.FailNext("create", errors.New("ZONE_RESOURCE_POOL_EXHAUSTED"))
	if _, err := w.pass(t); err == nil || !strings.Contains(err.Error(), "ZONE_RESOURCE_POOL_EXHAUSTED") {
		t.Fatalf("RunOnce() = %v, want the create error", err)
	}
	if regs := w.gh.Runners(); len(regs) != 0 {
		t.Errorf("registrations left after a failed create: %v", regNames(regs))
	}
	// The next pass tries again, under the same name.
	w.Advance(30 * time.Second)
	w.mustPass(t)
	if rs := w.backend.Runners(); len(rs) != 1 {
		t.Errorf("runners after the retry: %v, want one", reconciletest.Names(rs))
	}
}

// lateGitHub hides one registration from the listings, as when a registration appears
// between a pass's observation and its create.
type lateGitHub struct {
	reconcile.GitHub
	hide string
}

func (g lateGitHub) Registrations(ctx context.Context, s reconcile.Scope) ([]reconcile.Registration, error) {
	regs, err := g.GitHub.Registrations(ctx, s)
	return slices.DeleteFunc(regs, func(r reconcile.Registration) bool { return r.Name == g.hide }), err
}

func TestPass_StaleRegistrationOfTheSameNameIsReplaced(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "octo-org/app")
	_, name := w.queueArm64()
	// A pass died between registering this runner and creating it; this pass's
	// listing did not show the registration yet, so it plans the plain name.
	stale := w.gh.AddRunner("octo-org/app", name, false, false)
	w.rc.GitHub = lateGitHub{GitHub: w.rc.GitHub, hide: name}
	w.mustPass(t)
	regs := w.gh.Runners()
	if len(regs) != 1 || regs[0].ID == stale {
		t.Fatalf("registrations %+v, want one new registration for %s", regs, name)
	}
	if diff := cmp.Diff([]string{name}, reconciletest.Names(w.backend.Runners())); diff != "" {
		t.Errorf("runners mismatch (-want +got):\n%s", diff)
	}
}

func TestPass_FreshRegistrationOfTheSameNameIsLeftToItsPass(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "octo-org/app")
	_, name := w.queueArm64()
	// Another pass registered it after this pass had looked, and is creating its
	// machine: the 409 is that pass's create under way, not a leftover to replace.
	id := w.gh.AddRunner("octo-org/app", name, false, false, append(slices.Clone(arm64Labels), reconcile.RegisteredLabel(w.Now()))...)
	w.rc.GitHub = lateGitHub{GitHub: w.rc.GitHub, hide: name}
	w.mustPass(t)
	if regs := w.gh.Runners(); len(regs) != 1 || regs[0].ID != id {
		t.Errorf("registrations %+v, want the other pass's registration %d untouched", regs, id)
	}
	if m := w.backend.Mutations(); len(m) != 0 {
		t.Errorf("backend calls %v, want none", m)
	}
}

func TestPass_VisibleStaleRegistrationKeepsItsNameWhileItsJobWaits(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "octo-org/app")
	j, name := w.queueArm64()
	w.gh.AddRunner("octo-org/app", name, false, false)
	w.mustPass(t)
	if diff := cmp.Diff([]string{name + "-r1"}, reconciletest.Names(w.backend.Runners())); diff != "" {
		t.Errorf("runners mismatch (-want +got):\n%s", diff)
	}
	// Once another runner has taken the job, the stale registration is a ghost.
	w.gh.SetJobStatus(j, "in_progress", name+"-r1")
	w.gh.SetRunner(name+"-r1", true, true)
	w.Advance(30 * time.Second)
	w.mustPass(t)
	if diff := cmp.Diff([]string{name + "-r1"}, regNames(w.gh.Runners())); diff != "" {
		t.Errorf("registrations mismatch (-want +got):\n%s", diff)
	}
}

// lateBackend hides its runners from the first List, as a backend does when another
// pass creates a runner between this pass's observation and its create.
type lateBackend struct {
	*reconciletest.Backend
	lists int
}

func (b *lateBackend) List(ctx context.Context) ([]reconcile.Runner, error) {
	b.lists++
	if b.lists == 1 {
		return nil, nil
	}
	return b.Backend.List(ctx)
}

func TestPass_ConcurrentPassCreatingTheSameRunnerIsLeftAlone(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "octo-org/app")
	j, name := w.queueArm64()
	// The other pass registered and created it after this pass had looked.
	id := w.gh.AddRunner("octo-org/app", name, false, false)
	w.backend.Put(reconcile.Runner{Name: name, Pool: "arm64", Scope: reconcile.Scope{Owner: "octo-org", Repo: "app"}, JobID: j, CreatedAt: w.Now()})
	w.rc.Backends["arm64"] = &lateBackend{Backend: w.backend}
	w.rc.GitHub = lateGitHub{GitHub: w.rc.GitHub, hide: name}
	w.mustPass(t)
	regs := w.gh.Runners()
	if len(regs) != 1 || regs[0].ID != id {
		t.Errorf("registrations %+v, want the other pass's registration %d untouched", regs, id)
	}
	if m := w.backend.Mutations(); len(m) != 0 {
		t.Errorf("backend calls %v, want none", m)
	}
}

func TestPass_GhostRegistrationsAreRemoved(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "octo-org/app", "octo-org/quiet")
	w.gh.AddRunner("octo-org/quiet", "gha-arm64-77", false, false) // its job ran elsewhere
	w.gh.AddRunner("octo-org/quiet", "someone-elses-runner", false, false)
	w.mustPass(t)
	if diff := cmp.Diff([]string{"someone-elses-runner"}, regNames(w.gh.Runners())); diff != "" {
		t.Errorf("registrations mismatch (-want +got):\n%s", diff)
	}
}

func TestPass_FailedRepositoryIsLeftAloneAndOthersServed(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "octo-org/app", "octo-org/web")
	w.gh.QueueJob("octo-org/web", arm64Labels...)
	idle := w.idleRunner(5)
	w.gh.Fail(http.MethodGet, "repos/octo-org/app/actions/runs?", http.StatusBadGateway, 10)

	_, err := w.pass(t)
	if err == nil || !strings.Contains(err.Error(), "octo-org/app") {
		t.Fatalf("RunOnce() = %v, want an error naming octo-org/app", err)
	}
	names := reconciletest.Names(w.backend.Runners())
	if !slices.Contains(names, idle.Name) {
		t.Errorf("idle runner of the repository whose jobs could not be listed was deleted")
	}
	if len(names) != 2 {
		t.Errorf("runners %v, want the idle one and one for octo-org/web", names)
	}
}

// The JIT configuration is a credential: no log line or error of a pass may carry it,
// at debug level, in JSON or on a console, on success and when the create fails.
func TestPass_JITConfigNeverLogged(t *testing.T) {
	t.Parallel()
	for _, console := range []bool{false, true} {
		w := newWorld(t, "octo-org/app")
		w.gh.QueueJob("octo-org/app", arm64Labels...)
		w.gh.QueueJob("octo-org/app", arm64Labels...)
		w.backend.FailNext("create", errors.New("quota exceeded"))
		var buf syncBuffer
		var out io.Writer = &buf
		if console {
			out = zerolog.ConsoleWriter{Out: &buf, NoColor: true}
		}
		ctx := zerolog.New(out).Level(zerolog.DebugLevel).WithContext(context.Background())
		_, err := w.rc.RunOnce(ctx)
		if err == nil {
			t.Fatal("RunOnce() = nil, want the injected create error")
		}
		issued := w.gh.Runners()
		if len(issued) == 0 {
			t.Fatal("no JIT config was issued; the test checks nothing")
		}
		text := buf.String() + err.Error()
		if !strings.Contains(text, "created runner") {
			t.Fatalf("log lacks the successful create:\n%s", text)
		}
		for _, r := range issued {
			if strings.Contains(text, r.JITConfig) {
				t.Errorf("JIT config of %s appears in the log or error:\n%s", r.Name, text)
			}
		}
		if strings.Contains(text, "jit-secret-") {
			t.Errorf("a JIT config (of a removed registration) appears in the log or error:\n%s", text)
		}
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Self-hosted runners on a public repository, or for a pull request from a fork, run
// code that anyone can propose: such jobs get no runner unless the configuration says
// so, and each skip is logged with its reason, from data the pass fetched anyway.
func TestPass_PublicRepositoriesAndForksAreNotServed(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name                   string
		allowPublic, allowFork bool
		want                   []string // reasons of the jobs served: "private", "public", "fork"
	}{
		{"by default", false, false, []string{"private"}},
		{"public repositories allowed", true, false, []string{"private", "public"}},
		{"forks allowed too", true, true, []string{"private", "public", "fork"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, "octo-org/app")
			w.rc.Config.GitHub.AllowPublicRepos, w.rc.Config.GitHub.AllowForkPullRequests = tt.allowPublic, tt.allowFork
			kinds := map[string]int64{}
			for _, kind := range []string{"private", "public", "fork"} {
				run := w.gh.AddRun("octo-org/app", "queued")
				kinds[kind] = w.gh.AddJob(run, "queued", arm64Labels...)
				w.gh.SetRunOrigin(run, kind == "public", kind == "fork")
			}
			var buf syncBuffer
			ctx := zerolog.New(&buf).WithContext(context.Background())
			before := len(w.gh.Requests())
			if _, err := w.rc.RunOnce(ctx); err != nil {
				t.Fatal(err)
			}
			var served []string
			for _, kind := range []string{"private", "public", "fork"} {
				if _, ok := w.backend.Spec(reconcile.RunnerName("gha", "arm64", kinds[kind], 0)); ok {
					served = append(served, kind)
				}
			}
			if diff := cmp.Diff(tt.want, served); diff != "" {
				t.Errorf("served jobs mismatch (-want +got):\n%s", diff)
			}
			logs := buf.String()
			if !tt.allowPublic && !strings.Contains(logs, `"reason":"public_repo"`) {
				t.Errorf("no skip logged for the public repository's job:\n%s", logs)
			}
			if !tt.allowFork && !strings.Contains(logs, `"reason":"fork_pull_request"`) {
				t.Errorf("no skip logged for the fork's job:\n%s", logs)
			}
			// The same requests as without the rule: runs, each run's jobs, runners, JITs.
			var extra []string
			for _, r := range w.gh.Requests()[before:] {
				if strings.Contains(r.Path, "/pulls") || strings.HasSuffix(r.Path, "octo-org/app") {
					extra = append(extra, r.Path)
				}
			}
			if len(extra) > 0 {
				t.Errorf("extra calls to decide: %v", extra)
			}
		})
	}
}

// Org runners register with the organisation, in the configured runner group, and
// their registrations come from the org's runner list.
func TestOrgRunners_JITAndRegistrations(t *testing.T) {
	w := newWorld(t, "octo-org/app", "octo-org/web")
	w.rc.Config.GitHub.RunnerScope = "org"
	w.rc.Config.GitHub.RunnerGroupID = 7
	w.rc.GitHub.(*ghpoll.Client).RunnerGroupID = 7
	j := w.gh.QueueJob("octo-org/web", arm64Labels...)
	w.gh.AddRunner("octo-org", "gha-arm64-99", false, false) // an org ghost
	w.mustPass(t)
	regs := w.gh.Runners()
	if len(regs) != 1 || regs[0].Scope != "octo-org" || regs[0].Group != 7 || !strings.HasSuffix(regs[0].Name, itoa(j)) {
		t.Fatalf("registrations %+v, want one org runner for job %d in group 7 (and the ghost gone)", regs, j)
	}
	var orgList bool
	for _, r := range w.gh.Requests() {
		if r.Path == "orgs/octo-org/actions/runners" {
			orgList = true
		}
		if strings.HasPrefix(r.Path, "repos/") && strings.Contains(r.Path, "/actions/runners") {
			t.Errorf("repository runner call %s in org mode", r.Path)
		}
	}
	if !orgList {
		t.Error("the org's runner list was never read")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// A runner whose job is in progress is known busy from the job listing (GitHub sets
// the job's runner_name when a registered runner takes it): its repository's
// registrations are not listed every pass for it, and it still counts as busy. When
// it has finished they are listed again, and it is removed.
func TestPass_KnownBusyRunnerCostsNoRegistrationListing(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "octo-org/app")
	job, name := w.queueArm64()
	w.mustPass(t) // creates its runner
	w.gh.SetJobStatus(job, "in_progress", name)
	w.gh.SetRunner(name, true, true)
	listings := func(pass func()) (n int) {
		before := len(w.gh.Requests())
		pass()
		for _, r := range w.gh.Requests()[before:] {
			if strings.HasSuffix(r.Path, "/actions/runners") {
				n++
			}
		}
		return n
	}
	for range 3 {
		w.Advance(5 * time.Second)
		var sum reconcile.Summary
		if n := listings(func() { sum = w.mustPass(t) }); n != 0 {
			t.Errorf("registrations listed %d times in a pass where the runner's job named it, want 0", n)
		}
		st := reconcile.BuildStatus(*w.rc.Config, sum.Observed, sum.Plan, w.Now())
		if len(st.Runners) != 1 || st.Runners[0].State != reconcile.StateBusy {
			t.Fatalf("status runners %+v, want %s busy", st.Runners, name)
		}
	}
	w.gh.SetJobStatus(job, "completed", name)
	w.gh.RemoveRunner(name)
	w.backend.SetPhase(name, reconcile.PhaseFinished)
	w.Advance(5 * time.Second)
	if n := listings(func() { w.mustPass(t) }); n != 1 {
		t.Errorf("registrations listed %d times once the runner finished, want 1", n)
	}
	if got := reconciletest.Names(w.backend.Runners()); len(got) != 0 {
		t.Errorf("runners %v after it finished, want none", got)
	}
}
