package reconciletest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// GitHub is an in-memory reconcile.GitHub for tests of the pass from its own package:
// queued jobs per repository and runner registrations per scope, answering as GitHub's
// REST API does in the ways the pass relies on (a JIT registration is offline until its
// runner starts and keeps its labels as given; a second one of a name is refused; a busy
// registration cannot be removed; a repository GitHub does not know answers
// reconcile.ErrUnreachable). It records every call and can fail the next ones. The
// whole-pass tests against GitHub's HTTP API, with the real client, are ghpoll's.
type GitHub struct {
	mu     sync.Mutex
	nextID int64
	jobs   map[reconcile.Scope][]reconcile.Job
	regs   map[int64]*reconcile.Registration
	gone   map[reconcile.Scope]bool
	fail   map[string]int // call → failures left
	calls  []string
	// writesLeft, when not negative, is how many registrations GitHub takes before it
	// answers with a rate limit; onRegister is called after each registration.
	writesLeft int
	onRegister func(reconcile.Registration)
	// ran holds the jobs runners took, as GitHub reports them once taken.
	ran map[int64]*reconcile.JobOutcome
	// facts is what PollFacts answers.
	facts reconcile.PollFacts
	// injected counts the failures each FailNext call has served.
	injected map[string]int
}

var _ reconcile.GitHub = (*GitHub)(nil)

// NewGitHub returns a GitHub with nothing queued and nothing registered.
func NewGitHub() *GitHub {
	return &GitHub{nextID: 1000, jobs: map[reconcile.Scope][]reconcile.Job{}, regs: map[int64]*reconcile.Registration{},
		gone: map[reconcile.Scope]bool{}, fail: map[string]int{}, writesLeft: -1, ran: map[int64]*reconcile.JobOutcome{}}
}

// Ran records a job a runner took, as GitHub reports it (its status, conclusion,
// runner_name, run attempt); the job leaves the queue. A zero LatestAttempt is taken
// as RunAttempt.
func (g *GitHub) Ran(j reconcile.JobOutcome) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if j.LatestAttempt == 0 {
		j.LatestAttempt = j.RunAttempt
	}
	g.ran[j.ID] = &j
	g.jobs[j.Repo] = slices.DeleteFunc(g.jobs[j.Repo], func(q reconcile.Job) bool { return q.ID == j.ID })
}

// running returns the jobs Ran recorded in progress in repo; the caller holds g.mu.
func (g *GitHub) running(repo reconcile.Scope) []reconcile.Job {
	var out []reconcile.Job
	for _, id := range slices.Sorted(maps.Keys(g.ran)) {
		if j := g.ran[id]; j.Repo == repo && j.Status == reconcile.JobInProgress && j.RunnerName != "" {
			out = append(out, reconcile.Job{ID: j.ID, RunID: j.RunID, Repo: j.Repo, Labels: slices.Clone(j.Labels), RunnerName: j.RunnerName})
		}
	}
	return out
}

// JobRunBy implements reconcile.GitHub.
func (g *GitHub) JobRunBy(_ context.Context, repo reconcile.Scope, runner string, hint int64, since time.Time) (reconcile.JobOutcome, bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.call("JobRunBy", repo, " ", runner); err != nil {
		return reconcile.JobOutcome{}, false, err
	}
	ran := func(j *reconcile.JobOutcome) bool {
		return j.Repo == repo && j.RunnerName == runner && (j.Status != reconcile.JobCompleted || !j.CompletedAt.Before(since))
	}
	if j, ok := g.ran[hint]; ok && ran(j) {
		return *j, true, nil
	}
	ids := slices.Sorted(maps.Keys(g.ran))
	slices.Reverse(ids) // the newest first
	for _, id := range ids {
		if j := g.ran[id]; ran(j) {
			return *j, true, nil
		}
	}
	return reconcile.JobOutcome{}, false, nil
}

// RerunJob implements reconcile.GitHub: the run gets a new attempt, in which the job
// is queued again under a new id, with the same labels.
func (g *GitHub) RerunJob(_ context.Context, repo reconcile.Scope, id int64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.call("RerunJob", repo, " ", id); err != nil {
		return err
	}
	j, ok := g.ran[id]
	if !ok || j.Repo != repo || j.Status != reconcile.JobCompleted {
		return fmt.Errorf("re-running job %d of %s: GitHub answered 403 (not a completed job)", id, repo)
	}
	for _, o := range g.ran {
		if o.RunID == j.RunID {
			o.LatestAttempt = j.RunAttempt + 1
		}
	}
	g.nextID++
	g.jobs[repo] = append(g.jobs[repo], reconcile.Job{ID: g.nextID, RunID: j.RunID, Repo: repo, Name: "build", Labels: slices.Clone(j.Labels), CreatedAt: j.CompletedAt})
	return nil
}

// LimitWrites makes GitHub take n more registrations and then answer each with a
// secondary rate limit (an error for which errors.Is(err, reconcile.ErrRateLimited)
// holds); a negative n lifts the limit.
func (g *GitHub) LimitWrites(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.writesLeft = n
}

// OnRegister calls fn after each registration, outside the fake's lock: what another
// pass does meanwhile.
func (g *GitHub) OnRegister(fn func(reconcile.Registration)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.onRegister = fn
}

// Queue adds a queued job to its repository.
func (g *GitHub) Queue(j reconcile.Job) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.jobs[j.Repo] = append(g.jobs[j.Repo], j)
}

// Dequeue takes a job out of the queue (it started, or was cancelled).
func (g *GitHub) Dequeue(id int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for repo, js := range g.jobs {
		g.jobs[repo] = slices.DeleteFunc(js, func(j reconcile.Job) bool { return j.ID == id })
	}
}

// Register adds a registration as if a runner had registered, and returns its id.
func (g *GitHub) Register(r reconcile.Registration) int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.nextID++
	r.ID = g.nextID
	g.regs[r.ID] = &r
	return r.ID
}

// SetRunner changes a registration's status, by name, as its runner does.
func (g *GitHub) SetRunner(name string, online, busy bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, r := range g.regs {
		if r.Name == name {
			r.Online, r.Busy = online, busy
		}
	}
}

// Gone makes a repository answer as one deleted, renamed or hidden from the token.
func (g *GitHub) Gone(repo reconcile.Scope) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gone[repo] = true
}

// FailNext makes the next n calls of call ("QueuedJobs", "Registrations",
// "GenerateJITConfig", "RemoveRegistration", ...) fail.
func (g *GitHub) FailNext(call string, n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.fail[call] += n
	if g.injected == nil {
		g.injected = map[string]int{}
	}
	if _, ok := g.injected[call]; !ok {
		g.injected[call] = 0
	}
}

// Unserved returns the calls FailNext was given that never failed: a fault injected
// and never served, which leaves its test testing nothing.
func (g *GitHub) Unserved() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return never(g.injected)
}

// never returns, sorted, the faults of a count of answers served that served none.
func never(served map[string]int) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(served)) {
		if served[k] == 0 {
			out = append(out, k)
		}
	}
	return out
}

// Regs returns the registrations, sorted by name.
func (g *GitHub) Regs() []reconcile.Registration {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []reconcile.Registration
	for _, r := range g.regs {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b reconcile.Registration) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Calls returns the calls made, in order ("GenerateJITConfig octo-org/app gha-x-1").
func (g *GitHub) Calls() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.calls)
}

// call records a call and says whether it fails; the caller holds g.mu.
func (g *GitHub) call(name string, args ...any) error {
	g.calls = append(g.calls, strings.TrimSpace(name+" "+fmt.Sprint(args...)))
	if g.fail[name] > 0 {
		g.fail[name]--
		g.injected[name]++
		return fmt.Errorf("%s: injected failure", name)
	}
	return nil
}

// OrgRepos implements reconcile.GitHub: no organisation is known.
func (g *GitHub) OrgRepos(_ context.Context, org string) ([]reconcile.Scope, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.call("OrgRepos", org); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("org %s: %w", org, reconcile.ErrUnreachable)
}

// QueuedJobs implements reconcile.GitHub: the queued jobs, and those in progress that
// Ran recorded, as one listing sees them.
func (g *GitHub) QueuedJobs(_ context.Context, repo reconcile.Scope) (queued, running []reconcile.Job, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.call("QueuedJobs", repo); err != nil {
		return nil, nil, err
	}
	if g.gone[repo] {
		return nil, nil, fmt.Errorf("%w: %s (GitHub answered 404)", reconcile.ErrUnreachable, repo)
	}
	return slices.Clone(g.jobs[repo]), g.running(repo), nil
}

// InstallationRepos implements reconcile.GitHub: the fake is no App installation.
func (g *GitHub) InstallationRepos(context.Context) ([]reconcile.Scope, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.call("InstallationRepos"); err != nil {
		return nil, err
	}
	return nil, errors.New("not authenticated as a GitHub App installation")
}

// TakeStats implements reconcile.GitHub: the fake charges nothing.
func (g *GitHub) TakeStats() reconcile.APIStats { return reconcile.APIStats{} }

// PollFacts implements reconcile.GitHub: what SetPollFacts gave; by default nothing of
// earlier passes, so that under a Budget every repository is one never looked at.
func (g *GitHub) PollFacts([]reconcile.Scope) reconcile.PollFacts {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.facts
}

// SetPollFacts sets what PollFacts answers.
func (g *GitHub) SetPollFacts(f reconcile.PollFacts) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.facts = f
}

// Registrations implements reconcile.GitHub.
func (g *GitHub) Registrations(_ context.Context, scope reconcile.Scope) ([]reconcile.Registration, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.call("Registrations", scope); err != nil {
		return nil, err
	}
	if g.gone[scope] {
		return nil, fmt.Errorf("%w: %s (GitHub answered 404)", reconcile.ErrUnreachable, scope)
	}
	var out []reconcile.Registration
	for _, r := range g.regs {
		if r.Scope == scope {
			out = append(out, *r)
		}
	}
	slices.SortFunc(out, func(a, b reconcile.Registration) int { return int(a.ID - b.ID) })
	return out, nil
}

// FindRegistration implements reconcile.GitHub.
func (g *GitHub) FindRegistration(ctx context.Context, scope reconcile.Scope, name string) (reconcile.Registration, bool, error) {
	regs, err := g.Registrations(ctx, scope)
	if err != nil {
		return reconcile.Registration{}, false, err
	}
	for _, r := range regs {
		if r.Name == name {
			return r, true, nil
		}
	}
	return reconcile.Registration{}, false, nil
}

// GenerateJITConfig implements reconcile.GitHub: an offline registration with the
// labels as given; reconcile.ErrNameTaken if the scope has one of that name (GitHub
// answers 409).
func (g *GitHub) GenerateJITConfig(_ context.Context, scope reconcile.Scope, name string, labels []string) (reconcile.Registration, reconcile.Secret, error) {
	r, err := g.register(scope, name, labels)
	if err != nil {
		return r, "", err
	}
	g.mu.Lock()
	fn := g.onRegister
	g.mu.Unlock()
	if fn != nil {
		fn(r)
	}
	return r, reconcile.Secret(fmt.Sprintf("jit-secret-%d", r.ID)), nil
}

func (g *GitHub) register(scope reconcile.Scope, name string, labels []string) (reconcile.Registration, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.call("GenerateJITConfig", scope, " ", name); err != nil {
		return reconcile.Registration{}, err
	}
	if g.writesLeft == 0 {
		return reconcile.Registration{}, fmt.Errorf("%w: you have exceeded a secondary rate limit (GitHub answered 403, retry-after 60)", reconcile.ErrRateLimited)
	}
	for _, r := range g.regs {
		if r.Scope == scope && r.Name == name {
			return reconcile.Registration{}, fmt.Errorf("%w: %s in %s", reconcile.ErrNameTaken, name, scope)
		}
	}
	if g.writesLeft > 0 {
		g.writesLeft--
	}
	g.nextID++
	r := reconcile.Registration{ID: g.nextID, Name: name, Scope: scope, Labels: slices.Clone(labels)}
	g.regs[r.ID] = &r
	return r, nil
}

// RemoveRegistration implements reconcile.GitHub: nil if it is gone already,
// reconcile.ErrRunnerBusy if its runner runs a job (GitHub answers 422).
func (g *GitHub) RemoveRegistration(_ context.Context, scope reconcile.Scope, id int64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.call("RemoveRegistration", scope, " ", id); err != nil {
		return err
	}
	r, ok := g.regs[id]
	switch {
	case !ok || r.Scope != scope:
		return nil
	case r.Busy:
		return fmt.Errorf("%w: %s", reconcile.ErrRunnerBusy, r.Name)
	}
	delete(g.regs, id)
	return nil
}
