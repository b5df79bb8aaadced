package reconcile

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/reconcile-dev/reconcile/reconcile/internal/seam"
	"github.com/reconcile-dev/reconcile/reconcile/plan"
)

// GitHub is what a pass needs of GitHub's REST API. ghpoll implements it.
type GitHub interface {
	// OrgRepos returns the organisation's repositories that can run workflows (not
	// archived, not disabled). A list that fails part-way is an error, never a partial list.
	OrgRepos(ctx context.Context, org string) ([]Scope, error)
	// QueuedJobs returns every queued job of the repository: those of queued runs and
	// those waiting inside in-progress runs, from every page.
	QueuedJobs(ctx context.Context, repo Scope) ([]Job, error)
	// Registrations returns every self-hosted runner registered in scope.
	Registrations(ctx context.Context, scope Scope) ([]Registration, error)
	// FindRegistration returns the registration of that name in scope, if any.
	FindRegistration(ctx context.Context, scope Scope, name string) (Registration, bool, error)
	// GenerateJITConfig registers an ephemeral runner (offline until it starts) and
	// returns its registration and the configuration it starts with. ErrNameTaken if a
	// runner of that name is registered already.
	GenerateJITConfig(ctx context.Context, scope Scope, name string, labels []string) (Registration, Secret, error)
	// RemoveRegistration removes a registration: nil if it is already gone,
	// ErrRunnerBusy if its runner is running a job.
	RemoveRegistration(ctx context.Context, scope Scope, id int64) error
	// PollFacts returns what the client remembers of the repositories from earlier
	// passes, and the rate limit, for ChooseRepos. Asked only on a Budget.
	PollFacts(repos []Scope) PollFacts
	// JobRunBy returns what GitHub says of the job the named runner ran in repo: the
	// job hint (the one the runner was made for) if it names the runner, else the
	// newest of the repository's latest completed runs' jobs that does. A job that
	// ended before since (the runner's creation) was an earlier runner's of that name.
	// found is false when none does. Asked only when a runner was preempted.
	JobRunBy(ctx context.Context, repo Scope, runner string, hint int64, since time.Time) (job JobOutcome, found bool, err error)
	// RerunJob re-runs a completed job: a new attempt of its run, the job queued again.
	RerunJob(ctx context.Context, repo Scope, jobID int64) error
	// RunningJobs returns the jobs in progress that the repository's last QueuedJobs
	// saw, each with the runner running it (RunnerName). It makes no request.
	RunningJobs(repo Scope) []Job
}

// InstallationLister is implemented by a GitHub client authenticated as an App
// installation, for github.installation_repos.
type InstallationLister interface {
	// InstallationRepos returns the repositories the installation can see that can
	// run workflows, from every page.
	InstallationRepos(ctx context.Context) ([]Scope, error)
}

// Notebook is implemented by a GitHub client whose cache can outlive the process
// (ghpoll with --cache), so that what a pass learned and GitHub does not keep carries
// over to the next --once process. Losing it is harmless: a job is only tested again.
type Notebook interface {
	// Unservable returns the jobs found unservable, with when that was found.
	Unservable() map[int64]time.Time
	// SetUnservable replaces them.
	SetUnservable(map[int64]time.Time)
}

// Memo keeps small facts between processes where a cache is configured (--cache): what
// a backend learned of its platform that saves failed calls, such as the zones that do
// not offer a machine type. ghpoll's client implements it in its cache. Losing it is
// harmless.
type Memo interface {
	// Recall returns the value remembered under key.
	Recall(key string) (string, bool)
	// Remember keeps value under key; an empty value forgets it.
	Remember(key, value string)
}

// MemoUser is implemented by a backend that keeps facts in a Memo.
type MemoUser interface {
	UseMemo(Memo)
}

// Accountant is implemented by a GitHub client that counts what GitHub charges.
type Accountant interface {
	// TakeStats returns the counts since the last call and starts again.
	TakeStats() APIStats
}

// Backend runs ephemeral runners on one platform.
type Backend interface {
	// List returns the runners that carry this tool's owner label, and only those,
	// from every page: a list that fails part-way is an error.
	List(ctx context.Context) ([]Runner, error)
	// Create starts a runner; nil if one of that name already exists.
	Create(ctx context.Context, spec RunnerSpec) error
	// Delete removes a runner; nil if it is already gone.
	Delete(ctx context.Context, r Runner) error
}

// Reconciler runs passes. It keeps nothing between passes that matters for
// correctness: GitHub and the backends hold all the state.
type Reconciler struct {
	Config *Config
	GitHub GitHub
	// Backends maps a pool name to its backend; pools may share one. A pool with no
	// backend (a dry run without a configuration) owns no runners.
	Backends map[string]Backend
	// DryRun observes and plans, and changes nothing.
	DryRun bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Concurrency bounds the calls a pass makes at once. Zero means 4.
	Concurrency int
	// BackendConcurrency bounds the backend creates under way at once (a GCE insert
	// operation, a Kubernetes Job), apart from the GitHub calls. Zero means 64.
	BackendConcurrency int
	// ConflictWait is how long to wait, when a runner name is already registered,
	// before deciding whether another pass is creating that runner right now.
	ConflictWait time.Duration
	// Budget bounds what a pass spends at GitHub (see ChooseRepos); zero is none.
	Budget Budget
	// InFlight bounds how long an action under way may take to finish, or undo itself,
	// once the pass is told to stop. Zero means 90s.
	InFlight time.Duration
	// BackendTimeout bounds each backend's listing, and each deletion of a runner,
	// within the pass, so that a platform that does not answer blinds only its own pools
	// and holds back no other's actions. Zero means DefaultBackendTimeout.
	BackendTimeout time.Duration
	// Backoff is the schedule of a pool whose creates fail for capacity or quota
	// (see health.go); zero values mean DefaultBackoff.
	Backoff Backoff
	// planner computes the plan; nil means Compute. The lifecycle simulation swaps in
	// broken planners (through seam) to show that its invariants catch them.
	planner func(Observed, Config, time.Time) Plan
	// inOrder starts each batch's runners one by one before the next batch registers
	// (through seam, for the simulation).
	inOrder bool
	// unservable remembers, between the passes of one process, the jobs GitHub would
	// not give to an idle runner of ours, and when that was found.
	unservable map[int64]time.Time
	// health remembers, between the passes of one process, what the pools' creates
	// said of their platforms; a Memo carries it to the next process (health.go).
	health map[string]*poolHealth
}

func init() {
	seam.SetPlanner = func(rc, planner any) {
		rc.(*Reconciler).planner = planner.(func(Observed, Config, time.Time) Plan)
	}
	seam.InOrder = func(rc any) { rc.(*Reconciler).inOrder = true }
}

// APIStats is what a pass cost at GitHub.
type APIStats struct {
	Requests    int           // requests sent
	Points      int           // secondary-limit points: 1 a read, 5 a write
	Primary     int           // requests counted against the primary limit (all but 304s)
	NotModified int           // 304 answers to conditional requests
	Waited      time.Duration // time spent waiting out retry-after
	Remaining   int           // the primary limit's remaining requests, as GitHub last said
	Reset       time.Time     // when it resets
	Polled      int           // repositories whose jobs were polled
	Skipped     int           // repositories left for a later pass by the budget
}

// Summary is what one pass saw and did.
type Summary struct {
	DryRun       bool
	Started      time.Time
	Duration     time.Duration
	Repos        int
	Jobs         int // queued jobs seen, whether a pool serves them or not
	Runners      int
	Plan         Plan
	Created      int
	Deleted      int
	Deregistered int
	Errors       int
	API          APIStats
	// ErrorsByStage counts the errors by the stage that met them.
	ErrorsByStage map[string]int
	// Done counts the actions carried out, by kind, pool and reason.
	Done map[Action]int
	// NotStarted counts the planned actions a stopped pass did not start.
	NotStarted int
	// Deferred counts the creates left, without failing the pass, for the next pass:
	// the pass's deadline came while it registered runners at the write pace, or the
	// hour's registrations were spent.
	Deferred int
	// Observed is what the pass saw of GitHub and the backends, before it acted.
	Observed Observed
	// QueueWaits are, for each runner this pass created for a job, how long that job
	// had waited: from its created_at to the runner's create.
	QueueWaits []QueueWait
	// Unreachable lists the repositories GitHub answered 404 or 403 for: deleted,
	// renamed, or not visible to these credentials. They do not fail the pass unless
	// it polled every repository and none answered.
	Unreachable []string
	// Warnings are the problems that did not fail the pass, one line each: a pool
	// waiting out a stockout or a quota, a read that only refines a decision.
	Warnings []string
	// Health is each pool's standing with its platform after the pass: in backoff or
	// not, and the probes it made (health.go).
	Health []PoolHealth
}

// Stage is the part of a pass that met an error, as Summary.ErrorsByStage and the
// errors metric name it.
type Stage string

// The stages of a pass.
const (
	StageListRepos         Stage = "list_repos"         // an organisation's or installation's repositories
	StageListJobs          Stage = "list_jobs"          // a repository's queued jobs
	StageListRunners       Stage = "list_runners"       // a backend's runners
	StageListRegistrations Stage = "list_registrations" // a scope's runner registrations
	StageObserve           Stage = "observe"            // observing as a whole: its deadline came
	StageRegister          Stage = "register"           // a JIT registration
	StageCreate            Stage = "create"             // a backend's create
	StageDelete            Stage = "delete"             // a runner's delete
	StageDeregister        Stage = "deregister"         // a registration's removal
	StageRerun             Stage = "rerun"              // a preempted job's re-run
	StageInterrupted       Stage = "interrupted"        // a pass stopped or timed out with actions left
)

// Stages lists every stage, for metrics that show each from the start.
var Stages = []Stage{StageListRepos, StageListJobs, StageListRunners, StageListRegistrations, StageObserve,
	StageRegister, StageCreate, StageDelete, StageDeregister, StageRerun, StageInterrupted}

// QueueWait is how long a job waited for the runner made for it.
type QueueWait struct {
	Pool string
	Wait time.Duration
}

// Action is a kind of change a pass makes, for counting.
type Action struct {
	Kind   string // create, delete, deregister
	Pool   string // empty for a deregistration
	Reason Reason
}

// RunOnce runs one pass: observe, plan, apply. It keeps going past errors and returns
// them joined; the summary says what was done regardless.
func (rc *Reconciler) RunOnce(ctx context.Context) (Summary, error) {
	now := rc.now()
	sum := Summary{DryRun: rc.DryRun, Started: now}
	p := &pass{rc: rc, log: zerolog.Ctx(ctx), now: now, owner: map[string]Backend{}, deleted: map[string]time.Time{}, creating: map[string]string{},
		stageErrs: map[string]int{}, done: map[Action]int{}, gone: map[Scope]error{},
		warned: map[string]bool{}, probing: map[poolOption]bool{}, probes: map[poolOption]probeResult{}, waiting: map[string]int{}, released: map[string]bool{}, made: map[poolOption]time.Time{}}
	rc.loadHealth()
	obs := p.observe(ctx)
	sum.Repos, sum.Jobs, sum.Runners = p.repos, len(obs.Jobs), len(obs.Runners)
	sum.Unreachable = p.unreachableRepos()
	if nb, ok := rc.GitHub.(Notebook); ok && rc.unservable == nil {
		rc.unservable = nb.Unservable()
	}
	obs.Unservable = rc.rememberedUnservable(now)
	obs.Holding = p.rerunPreempted(ctx, obs)
	obs.Held = p.holds()
	p.noteMade(obs.Runners)
	sum.Observed = obs
	planner := rc.planner
	if planner == nil {
		planner = Compute
	}
	sum.Plan = planner(obs, *rc.Config, now)
	for _, r := range sum.Plan.Refused {
		p.log.Info().Str("action", "skip").Str("pool", r.Pool).Str("repo", r.Job.Repo.String()).Int64("job_id", r.Job.ID).
			Str("reason", string(r.Reason)).Msg("job not served")
	}
	p.noteUnservable(sum.Plan)
	p.apply(ctx, sum.Plan, &sum)
	for _, w := range sum.Plan.Waiting {
		if !p.released[w.Create.Name] {
			p.waiting[w.Create.Pool]++
		}
	}
	sum.Health = p.healthReport()
	p.warnHeld(sum.Health, p.waiting)
	sum.Warnings = p.warnings
	sum.Duration = rc.now().Sub(now)
	sum.Errors = len(p.errs)
	sum.ErrorsByStage, sum.Done, sum.QueueWaits = p.stageErrs, p.done, p.waits
	if a, ok := p.rc.GitHub.(Accountant); ok {
		sum.API = a.TakeStats()
	}
	sum.API.Polled, sum.API.Skipped = p.api.Polled, p.api.Skipped
	err := errors.Join(p.errs...)
	// One line for the pass: "pass done", or "pass failed" at error level with the
	// count (the caller says what each failure was). A rate limit GitHub never stated
	// (nothing answered) is unknown, not 0.
	ev, msg := p.log.Info(), "pass done"
	if err != nil {
		ev, msg = p.log.Error(), "pass failed"
	}
	ev = ev.Bool("dry_run", rc.DryRun).
		Int("repos", sum.Repos).
		Int("jobs_queued", sum.Jobs).
		Int("runners", sum.Runners).
		Int("to_create", len(sum.Plan.Create)).
		Int("to_delete", len(sum.Plan.Delete)).
		Int("to_deregister", len(sum.Plan.Deregister)).
		Int("created", sum.Created).
		Int("deleted", sum.Deleted).
		Int("deregistered", sum.Deregistered).
		Int("deferred", sum.Deferred).
		Int("errors", sum.Errors).
		Int("repos_polled", sum.API.Polled).
		Int("repos_skipped", sum.API.Skipped).
		Int("gh_requests", sum.API.Requests).
		Int("gh_points", sum.API.Points).
		Int("gh_primary", sum.API.Primary).
		Int("gh_not_modified", sum.API.NotModified)
	if sum.API.Reset.IsZero() {
		ev = ev.Str("gh_remaining", "unknown")
	} else {
		ev = ev.Int("gh_remaining", sum.API.Remaining).Time("gh_reset", sum.API.Reset)
	}
	ev.Int64("duration_ms", sum.Duration.Milliseconds()).Msg(msg)
	return sum, err
}

func (rc *Reconciler) now() time.Time {
	if rc.Now != nil {
		return rc.Now()
	}
	return time.Now()
}

func (rc *Reconciler) inFlight() time.Duration {
	if rc.InFlight > 0 {
		return rc.InFlight
	}
	return 90 * time.Second
}

func (rc *Reconciler) backendConcurrency() int {
	if rc.BackendConcurrency > 0 {
		return rc.BackendConcurrency
	}
	return 64
}

func (rc *Reconciler) concurrency() int {
	if rc.Concurrency > 0 {
		return rc.Concurrency
	}
	return 4
}

// pass is the state of one pass.
type pass struct {
	rc    *Reconciler
	log   *zerolog.Logger
	now   time.Time
	repos int
	api   APIStats
	owner map[string]Backend // runner name → the backend that listed it

	mu        sync.Mutex
	errs      []error
	deleted   map[string]time.Time // runners this pass deleted: name → creation time, as names come back
	stageErrs map[string]int
	done      map[Action]int
	waits     []QueueWait
	creating  map[string]string // runner name → pool, for this pass's creates under way or done
	// writesStopped: why registrations stopped (GitHub rate-limited one, or the hour's
	// budget is spent); the creates left are the next pass's.
	writesStopped error
	gone          map[Scope]error // repositories GitHub answered 404 or 403 for
	warnings      []string
	warned        map[string]bool            // what a warning was given for already this pass
	probing       map[poolOption]bool        // options in backoff a create of this pass probes
	probes        map[poolOption]probeResult // what the probes said
	waiting       map[string]int             // pool → creates left waiting for capacity
	released      map[string]bool            // waiting creates made after their pool's probe worked
	made          map[poolOption]time.Time   // the newest runner listed of each pool's option
}

// warn logs a warning once a pass for each key, and keeps its line for the summary.
func (p *pass) warn(key, line string, ev *zerolog.Event) {
	p.mu.Lock()
	if p.warned[key] {
		p.mu.Unlock()
		return
	}
	p.warned[key] = true
	p.warnings = append(p.warnings, line)
	p.mu.Unlock()
	ev.Msg(line)
}

// rememberedUnservable returns the jobs found unservable less than UnservableRetry ago,
// and forgets the others: they are tried again.
func (rc *Reconciler) rememberedUnservable(now time.Time) map[int64]bool {
	out := map[int64]bool{}
	for id, at := range rc.unservable {
		if now.Sub(at) >= UnservableRetry {
			delete(rc.unservable, id)
			continue
		}
		out[id] = true
	}
	return out
}

// noteUnservable logs each job found unservable and remembers it, so that the next
// passes (of this process, or of the next ones through a Notebook) make no runner for
// it until UnservableRetry has passed. A dry run only logs.
func (p *pass) noteUnservable(plan Plan) {
	for _, u := range plan.Unservable {
		p.log.Warn().Str("action", "skip").Str("reason", string(ReasonUnservable)).Str("pool", u.Pool).
			Str("repo", u.Job.Repo.String()).Int64("job_id", u.Job.ID).Str("job", u.Job.Name).Str("runner", u.Runner).
			Msg("GitHub does not give this job to our idle runner: runs-on names a runner group, or the runner group does not allow this repository (public repositories are excluded by default) or workflow; it no longer holds a runner")
		if p.rc.DryRun {
			continue
		}
		if p.rc.unservable == nil {
			p.rc.unservable = map[int64]time.Time{}
		}
		p.rc.unservable[u.Job.ID] = p.now
	}
	if nb, ok := p.rc.GitHub.(Notebook); ok && !p.rc.DryRun {
		nb.SetUnservable(maps.Clone(p.rc.unservable))
	}
}

// unreachable records a repository GitHub answered 404 or 403 for, with one warning.
func (p *pass) unreachable(repo Scope, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, dup := p.gone[repo]; dup {
		return
	}
	p.gone[repo] = err
	p.log.Warn().Str("repo", repo.String()).Err(err).
		Msg("repository unreachable: deleted, renamed, or not visible to these credentials; its jobs are not served (check github.repos, the token's or App installation's repository access)")
}

func (p *pass) unreachableRepos() []string {
	var out []string
	for r := range p.gone {
		out = append(out, r.String())
	}
	slices.Sort(out)
	return out
}

// fail records an error of a stage of the pass (list_repos, list_jobs, list_runners,
// list_registrations, observe, register, create, delete, deregister).
func (p *pass) fail(stage Stage, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.errs = append(p.errs, err)
	p.stageErrs[string(stage)]++
}

// each runs fn for every item, at most n at once, and starts none once ctx is done.
func each[T any](ctx context.Context, n int, items []T, fn func(T)) {
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for _, it := range items {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		if ctx.Err() != nil { // stopped while waiting for a turn
			<-sem
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			fn(it)
		})
	}
	wg.Wait()
}

// observe lists what the planner needs, recording what it could not see in Blind:
// the repositories, our runners, the queued jobs of the repositories this pass polls,
// and the registrations where the planner needs them.
func (p *pass) observe(ctx context.Context) Observed {
	cfg := p.rc.Config
	obs := Observed{Blind: Blind{Jobs: map[Scope]bool{}, Regs: map[Scope]bool{}, Pools: map[string]bool{}}}
	repos, unlisted := p.listRepos(ctx)
	p.repos = len(repos)
	obs.Runners, obs.Blind.Pools = p.listRunners(ctx)
	poll, swept := p.choose(repos, obs.Runners)
	obs.Jobs, obs.Blind.Jobs = p.listJobs(ctx, poll)
	obs.Running = p.running(poll)
	if ctx.Err() != nil {
		// A cancelled pass saw only part of the world; plan nothing from it.
		for _, pool := range cfg.Pools {
			obs.Blind.Pools[pool.Name] = true
		}
		p.fail(StageObserve, fmt.Errorf("observing: %w", ctx.Err()))
	}
	scopes := p.registrationScopes(obs, swept)
	for _, s := range scopes {
		if unlisted(s) && (s.IsOrg() || !slices.Contains(repos, s)) {
			obs.Blind.Jobs[s] = true // its org could not be listed, so neither could its jobs
		}
	}
	obs.Regs, obs.Blind.Regs = p.listRegistrations(ctx, scopes)
	obs.Regs = append(obs.Regs, busyRegistrations(obs.Runners, obs.Running, scopes)...)
	if len(poll) > 0 && len(poll) == len(repos) && !slices.ContainsFunc(poll, func(r Scope) bool { return p.gone[r] == nil }) {
		// One repository gone is a configuration to fix; all of them is a token that
		// sees nothing, or the wrong GitHub. (A pass that polled only some, on a
		// budget, cannot tell.)
		names := make([]string, 0, 3)
		for _, r := range poll[:min(len(poll), 3)] {
			names = append(names, r.String())
		}
		if len(poll) > 3 {
			names = append(names, fmt.Sprintf("and %d more", len(poll)-3))
		}
		p.fail(StageListJobs, fmt.Errorf("every polled repository is unreachable (GitHub answered 404 or 403 for %s): check the names, "+
			"that the token or App installation can see them, and github.api_url", strings.Join(names, ", ")))
	}
	return obs
}

// listRepos returns the repositories to poll: the configured ones and those of the
// configured orgs and App installation, sorted; and which scopes' owners could not be
// listed whole.
func (p *pass) listRepos(ctx context.Context) ([]Scope, func(Scope) bool) {
	cfg := p.rc.Config
	var mu sync.Mutex
	repos := cfg.Repos()
	failedOrgs := map[string]bool{}
	installFailed := false
	var orgs []string
	for _, o := range cfg.GitHub.Orgs {
		orgs = append(orgs, strings.ToLower(o))
	}
	each(ctx, p.rc.concurrency(), orgs, func(org string) {
		rs, err := p.rc.GitHub.OrgRepos(ctx, org)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			failedOrgs[org] = true
			p.fail(StageListRepos, fmt.Errorf("listing repositories of org %s: %w", org, err))
			return
		}
		repos = append(repos, rs...)
	})
	if cfg.GitHub.InstallationRepos {
		il, ok := p.rc.GitHub.(InstallationLister)
		var rs []Scope
		err := errors.New("this GitHub client cannot list an installation's repositories")
		if ok {
			rs, err = il.InstallationRepos(ctx)
		}
		if err != nil {
			installFailed = true // which repositories are missing is unknown
			p.fail(StageListRepos, fmt.Errorf("listing the installation's repositories: %w", err))
		}
		repos = append(repos, rs...)
	}
	slices.SortFunc(repos, func(a, b Scope) int { return strings.Compare(a.String(), b.String()) })
	return slices.Compact(repos), func(s Scope) bool { return installFailed || failedOrgs[s.Owner] }
}

// listRunners returns our runners, from each distinct backend once, and the pools
// whose backend could not list them.
func (p *pass) listRunners(ctx context.Context) ([]Runner, map[string]bool) {
	var mu sync.Mutex
	var runners []Runner
	blind := map[string]bool{}
	var backends []Backend
	pools := map[Backend][]string{}
	for _, pool := range p.rc.Config.Pools {
		if b, ok := p.rc.Backends[pool.Name]; ok {
			if _, seen := pools[b]; !seen {
				backends = append(backends, b)
			}
			pools[b] = append(pools[b], pool.Name)
		}
	}
	each(ctx, p.rc.concurrency(), backends, func(b Backend) {
		rs, err := p.list(ctx, b)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			for _, name := range pools[b] {
				blind[name] = true
			}
			p.fail(StageListRunners, fmt.Errorf("listing runners of pools %s: %w", strings.Join(pools[b], ", "), err))
			return
		}
		for _, r := range rs {
			if _, dup := p.owner[r.Name]; dup {
				continue // two pools' backends that see the same runners
			}
			p.owner[r.Name] = b
			runners = append(runners, r)
		}
	})
	return runners, blind
}

// list returns b's runners within the pass's bound for a backend. A listing that is
// complete but lacks a refinement (Degraded) is taken, with one warning a pass that
// names the permission the platform named.
func (p *pass) list(ctx context.Context, b Backend) ([]Runner, error) {
	rs, err := p.rc.listWithin(ctx, b)
	var dg *Degraded
	if err != nil && errors.As(err, &dg) {
		p.softFail(err)
		return rs, nil
	}
	return rs, err
}

// softFail gives one warning a pass for a read that only refines a decision, which
// takes its safe default instead; the permission the platform named, if any, is named.
func (p *pass) softFail(err error) {
	ev := p.log.Warn().Err(err)
	line := oneLine(err.Error())
	if perm := PermissionOf(err); perm != "" {
		ev = ev.Str("permission", perm)
		line += " (missing permission " + perm + ")"
	}
	p.warn("soft:"+line, line, ev)
}

// choose returns the repositories whose jobs this pass polls and those whose
// registrations it lists for ghosts (ChooseRepos). Repositories with runners of ours
// are hot.
func (p *pass) choose(repos []Scope, runners []Runner) (poll, sweep []Scope) {
	hot := map[Scope]bool{}
	for _, r := range runners {
		hot[r.Repo], hot[r.Scope] = true, true
	}
	var facts PollFacts
	if p.rc.Budget.PointsPerMinute > 0 {
		facts = p.rc.GitHub.PollFacts(repos)
		facts.Overhead += p.runnerScopes(runners)
	}
	ch := ChooseRepos(p.rc.Budget, p.now, repos, hot, facts)
	p.api.Polled, p.api.Skipped = len(ch.Poll), ch.Skipped
	return ch.Poll, ch.Sweep
}

// runnerScopes counts the scopes whose registrations the pass will list for its
// runners: every scope with one of ours, but those whose runners the last poll of
// their repositories saw busy (registrationScopes leaves those out when this pass sees
// them busy again).
func (p *pass) runnerScopes(runners []Runner) int {
	var repos []Scope
	for _, r := range runners {
		repos = append(repos, r.Repo)
	}
	slices.SortFunc(repos, func(a, b Scope) int { return strings.Compare(a.String(), b.String()) })
	running := p.running(slices.Compact(repos))
	scopes := map[Scope]bool{}
	for _, r := range runners {
		if !knownBusy(r, running) {
			scopes[r.Scope] = true
		}
	}
	return len(scopes)
}

// running maps each runner's name to the job in progress it runs, as the last
// QueuedJobs of each repository saw it.
func (p *pass) running(repos []Scope) map[string]Job {
	out := map[string]Job{}
	for _, repo := range repos {
		for _, j := range p.rc.GitHub.RunningJobs(repo) {
			out[j.RunnerName] = j
		}
	}
	return out
}

// listJobs returns the queued jobs of the repositories, and the scopes whose jobs are
// not all known. A repository GitHub does not know (any more) is reported, not failed.
func (p *pass) listJobs(ctx context.Context, repos []Scope) ([]Job, map[Scope]bool) {
	jobs, unlisted := listEach(ctx, p, repos, StageListJobs, "queued jobs", p.rc.GitHub.QueuedJobs)
	blind := maps.Clone(unlisted)
	for r := range unlisted {
		blind[p.rc.Config.RunnerScopeOf(r)] = true
	}
	return jobs, blind
}

// registrationScopes returns where registrations are listed: where we have runners or
// servable demand, where runners are kept warm, and where the repositories chosen for
// a sweep register runners, since ghosts are left exactly where demand has gone.
func (p *pass) registrationScopes(obs Observed, swept []Scope) []Scope {
	cfg := p.rc.Config
	want := map[Scope]bool{}
	for _, r := range obs.Runners {
		if !knownBusy(r, obs.Running) {
			want[r.Scope] = true
		}
	}
	for _, j := range obs.Jobs {
		if MatchPool(cfg.Pools, j.Labels) != nil && Refusal(cfg.GitHub, j) == "" {
			want[cfg.RunnerScopeOf(j.Repo)] = true
		}
	}
	for _, r := range swept {
		want[cfg.RunnerScopeOf(r)] = true
	}
	for _, pool := range cfg.Pools { // where runners are kept warm: their creates under way, their names
		if pool.MinIdleAt(p.now) > 0 {
			for _, s := range cfg.WarmScopes(pool) {
				want[s] = true
			}
		}
	}
	scopes := make([]Scope, 0, len(want))
	for s := range want {
		scopes = append(scopes, s)
	}
	slices.SortFunc(scopes, func(a, b Scope) int { return strings.Compare(a.String(), b.String()) })
	return scopes
}

// knownBusy reports whether the pass's job listings show the runner running a job: a
// job in progress names it as its runner_name, which GitHub sets when the runner takes
// the job and which only a registered runner can. Its registration needs no listing:
// the job listing is as fresh as a registration listing would be. A retry's runner
// is not: a registration of the name it could not take (a leftover) may still be
// there, and is a ghost once the job is taken.
func knownBusy(r Runner, running map[string]Job) bool {
	_, ok := running[r.Name]
	return ok && r.Phase != PhaseFinished && !plan.IsRetryName(r.Name)
}

// busyRegistrations stands for the registrations of the runners known busy in scopes
// the pass did not list (registrationScopes leaves out a scope whose runners are all
// known busy): online and busy, as a listing would show them.
func busyRegistrations(runners []Runner, running map[string]Job, listed []Scope) []Registration {
	var out []Registration
	for _, r := range runners {
		if knownBusy(r, running) && !slices.Contains(listed, r.Scope) {
			out = append(out, Registration{Name: r.Name, Scope: r.Scope, Online: true, Busy: true})
		}
	}
	return out
}

// listRegistrations returns our registrations in the scopes, and the scopes that could
// not be listed.
func (p *pass) listRegistrations(ctx context.Context, scopes []Scope) ([]Registration, map[Scope]bool) {
	all, blind := listEach(ctx, p, scopes, StageListRegistrations, "runner registrations", p.rc.GitHub.Registrations)
	regs := slices.DeleteFunc(all, func(r Registration) bool {
		_, ours := ParseRunnerName(p.rc.Config.NamePrefix, r.Name)
		return !ours
	})
	return regs, blind
}

// listEach lists every scope at once (within the pass's concurrency) and returns what
// was listed and the scopes that could not be. A scope GitHub does not know (any more)
// is reported as unreachable; any other error fails the stage.
func listEach[T any](ctx context.Context, p *pass, scopes []Scope, stage Stage, what string, list func(context.Context, Scope) ([]T, error)) ([]T, map[Scope]bool) {
	var mu sync.Mutex
	var out []T
	blind := map[Scope]bool{}
	each(ctx, p.rc.concurrency(), scopes, func(s Scope) {
		got, err := list(ctx, s)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			out = append(out, got...)
		case errors.Is(err, ErrUnreachable):
			blind[s] = true
			p.unreachable(s, err)
		default:
			blind[s] = true
			p.fail(stage, fmt.Errorf("listing %s of %s: %w", what, s, err))
		}
	})
	return out, blind
}

// apply carries out a plan: deletions first, to free capacity and names, then creates.
func (p *pass) apply(ctx context.Context, plan Plan, sum *Summary) {
	if p.rc.DryRun {
		for _, d := range plan.Delete {
			p.deleteEvent(zerolog.InfoLevel, d).Msg("would delete runner")
		}
		for _, d := range plan.Deregister {
			p.deregisterEvent(zerolog.InfoLevel, d).Msg("would remove registration")
		}
		for _, c := range plan.Create {
			p.createEvent(zerolog.InfoLevel, c).Msg("would create runner")
		}
		return
	}
	var mu sync.Mutex
	count := func(n *int) {
		mu.Lock()
		*n++
		mu.Unlock()
	}
	n := p.rc.concurrency()
	// Once the pass is told to stop (a signal, --timeout), it starts no new action; an
	// action under way finishes, or undoes itself, within InFlight.
	started := [2]int{}
	work := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), p.rc.inFlight())
	}
	each(ctx, n, plan.Delete, func(d Delete) {
		wctx, cancel := work()
		defer cancel()
		count(&started[0])
		if p.delete(wctx, d) {
			p.mu.Lock()
			p.deleted[d.Runner.Name] = d.Runner.CreatedAt
			p.mu.Unlock()
			count(&sum.Deleted)
		}
	})
	each(ctx, n, plan.Deregister, func(d Deregister) {
		wctx, cancel := work()
		defer cancel()
		count(&started[1])
		if p.deregister(wctx, d) {
			count(&sum.Deregistered)
		}
	})
	created, begun, total := p.createAll(ctx, plan.Create, plan.Waiting)
	sum.Created += created
	p.leftOver(ctx, [3]int{len(plan.Delete) - started[0], len(plan.Deregister) - started[1], total - begun}, sum)
}

// leftOver says what the pass did not start, and why. Creates left at the pass's
// deadline, or once the hour's registrations are spent, are deferred: the pass went as
// fast as GitHub allows, and the next one goes on. A signal, or GitHub's own rate
// limit, fails the pass.
func (p *pass) leftOver(ctx context.Context, left [3]int, sum *Summary) {
	if left == [3]int{} {
		return
	}
	sum.NotStarted = left[0] + left[1] + left[2]
	stopped := p.writesStopped // apply is done: no other goroutine
	switch {
	case ctx.Err() == nil && errors.Is(stopped, ErrWriteBudget),
		errors.Is(ctx.Err(), context.DeadlineExceeded) && left[0]+left[1] == 0 && !errors.Is(stopped, ErrRateLimited):
		sum.Deferred = left[2]
		why := fmt.Sprintf("its deadline (%v) came while registering runners at the write pace", context.Cause(ctx))
		if stopped != nil {
			why = stopped.Error()
		}
		p.log.Warn().Int("creates_left", left[2]).Str("why", why).Msg("creates deferred to the next pass")
	case ctx.Err() == nil && stopped != nil:
		p.fail(StageRegister, fmt.Errorf("%w: %d creates left for the next pass, which waits as GitHub asked", stopped, left[2]))
	case ctx.Err() == nil:
		p.fail(StageCreate, fmt.Errorf("%d deletions, %d registration removals and %d creates not started", left[0], left[1], left[2]))
	default:
		p.fail(StageInterrupted, fmt.Errorf("pass stopped (%v): %d deletions, %d registration removals and %d creates not started; the next pass plans them again",
			context.Cause(ctx), left[0], left[1], left[2]))
	}
}

func (p *pass) deleteEvent(level zerolog.Level, d Delete) *zerolog.Event {
	return p.log.WithLevel(level).
		Str("action", "delete").
		Str("runner", d.Runner.Name).
		Str("pool", d.Runner.Pool).
		Str("repo", d.Runner.Repo.String()).
		Int64("job_id", d.Runner.JobID).
		Str("reason", string(d.Reason)).
		Bool("dry_run", p.rc.DryRun)
}

func (p *pass) deregisterEvent(level zerolog.Level, d Deregister) *zerolog.Event {
	jobID, _ := ParseRunnerName(p.rc.Config.NamePrefix, d.Reg.Name)
	return p.log.WithLevel(level).
		Str("action", "deregister").
		Str("runner", d.Reg.Name).
		Str("repo", d.Reg.Scope.String()).
		Int64("job_id", jobID).
		Str("reason", string(d.Reason)).
		Bool("dry_run", p.rc.DryRun)
}

func (p *pass) createEvent(level zerolog.Level, c Create) *zerolog.Event {
	return p.log.WithLevel(level).
		Str("action", "create").
		Str("runner", c.Name).
		Str("pool", c.Pool).
		Str("repo", c.Repo.String()).
		Int64("job_id", c.JobID).
		Str("reason", string(c.Reason)).
		Bool("dry_run", p.rc.DryRun)
}

// mustGo reports whether a runner is deleted even when its registration cannot be
// removed first: it is dead, or past its lifetime.
func mustGo(r Reason) bool { return r == ReasonFinished || r == ReasonExpired || r == ReasonGone }

// delete removes a runner, and first its registration, so that a runner thought idle
// cannot take a job while its machine goes away.
func (p *pass) delete(ctx context.Context, d Delete) bool {
	if d.Reg != nil {
		err := p.rc.GitHub.RemoveRegistration(ctx, d.Reg.Scope, d.Reg.ID)
		switch {
		case errors.Is(err, ErrRunnerBusy) && !mustGo(d.Reason):
			p.deleteEvent(zerolog.InfoLevel, d).Msg("runner took a job meanwhile; kept")
			return false
		case err != nil && !mustGo(d.Reason):
			p.deleteEvent(zerolog.WarnLevel, d).Err(err).Msg("could not remove registration; runner kept")
			p.fail(StageDeregister, fmt.Errorf("removing registration of %s: %w", d.Runner.Name, err))
			return false
		case err != nil:
			p.fail(StageDeregister, fmt.Errorf("removing registration of %s: %w", d.Runner.Name, err))
		}
	}
	b, ok := p.owner[d.Runner.Name]
	if !ok {
		p.fail(StageDelete, fmt.Errorf("deleting runner %s: no backend listed it", d.Runner.Name))
		return false
	}
	if err := p.rc.within(ctx, b, func(ctx context.Context) error { return b.Delete(ctx, d.Runner) }); err != nil {
		p.deleteEvent(zerolog.ErrorLevel, d).Err(err).Msg("delete failed")
		p.fail(StageDelete, fmt.Errorf("deleting runner %s: %w", d.Runner.Name, err))
		return false
	}
	p.deleteEvent(zerolog.InfoLevel, d).Msg("deleted runner")
	p.count(Action{"delete", d.Runner.Pool, d.Reason})
	return true
}

func (p *pass) deregister(ctx context.Context, d Deregister) bool {
	err := p.rc.GitHub.RemoveRegistration(ctx, d.Reg.Scope, d.Reg.ID)
	switch {
	case errors.Is(err, ErrRunnerBusy):
		p.deregisterEvent(zerolog.InfoLevel, d).Msg("registration took a job meanwhile; kept")
		return false
	case err != nil:
		p.deregisterEvent(zerolog.ErrorLevel, d).Err(err).Msg("removing registration failed")
		p.fail(StageDeregister, fmt.Errorf("removing registration %s in %s: %w", d.Reg.Name, d.Reg.Scope, err))
		return false
	}
	p.deregisterEvent(zerolog.InfoLevel, d).Msg("removed registration")
	p.count(Action{Kind: "deregister", Reason: d.Reason})
	return true
}

func (p *pass) count(a Action) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done[a]++
}

// wasDeleted reports whether this pass deleted that very runner (not a newer one of
// the same name that another pass has made since). Callers hold p.mu or run alone.
func (p *pass) wasDeleted(r Runner) bool {
	t, ok := p.deleted[r.Name]
	return ok && t.Equal(r.CreatedAt)
}
