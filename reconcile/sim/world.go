// Package sim is a deterministic, seeded model of the parts of GitHub and of a runner
// platform that the reconciler sees, for driving the real pass (observe → plan →
// apply) through thousands of simulated passes and checking lifecycle invariants after
// every step. It implements reconcile.GitHub and reconcile.Backend in memory.
//
// What it models: jobs arriving across repositories and pools (some inside runs that
// are already in progress, some for GitHub-hosted runners), JIT registrations, runners
// that take a while to boot or never boot, GitHub giving an idle runner ANY queued job
// its labels cover, jobs that run and deregister their ephemeral runner, jobs cancelled
// while queued, Spot-style preemption mid-job (GitHub fails the job a while later; a
// re-run is a new attempt of its run), API and backend calls that fail now and then,
// platforms that refuse creates for a while (a stockout, a quota) as typed errors,
// passes that overlap (one starts while another is between registering a runner
// and creating its machine), passes that die between JIT generation and create, and
// jobs that match a pool by labels but that GitHub never gives to our runners (an org
// runner group that does not allow the repository, runs-on naming a group).
package sim

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/reconcile-dev/reconcile/reconcile"
	"github.com/reconcile-dev/reconcile/reconcile/internal/seam"
)

// Params shape a world.
type Params struct {
	Repos        int
	Step         time.Duration // world time per step
	PassEvery    int           // steps between passes
	ArrivalRate  float64       // mean new runs per step
	HostedShare  float64       // share of jobs that want a GitHub-hosted runner
	StageShare   float64       // share of runs with a second job that queues when the first ends
	CancelRate   float64       // per queued job per step
	NeverBoot    float64       // share of machines that never come online
	Preempt      float64       // per active machine per step
	Faults       float64       // per API or backend call
	Crash        float64       // per pass: dies after a JIT generation, before the create
	Overlap      float64       // per pass: another pass runs inside it, between a registration and its create
	Unassignable float64       // share of self-hosted jobs GitHub never gives to our runners
	// Stockout and Quota: per pass and pool, the chance that the platform starts
	// refusing its creates (no capacity, a quota) for 1 to 20 minutes.
	Stockout, Quota float64
	MaxJobLength    time.Duration // jobs run 30s up to this
	// HideBooting breaks the platform on purpose: its listing leaves out machines that
	// have not come up yet (a peer's bug: listing only RUNNING instances).
	HideBooting bool
}

// DefaultParams is a busy world with every kind of trouble, now and then.
func DefaultParams() Params {
	return Params{
		Repos: 3, Step: 10 * time.Second, PassEvery: 3,
		ArrivalRate: 0.3, HostedShare: 0.15, StageShare: 0.3, CancelRate: 0.004,
		NeverBoot: 0.05, Preempt: 0.002, Faults: 0.02, Crash: 0.03, Overlap: 0.05, Unassignable: 0.04,
		Stockout: 0.01, Quota: 0.005,
		MaxJobLength: 8 * time.Minute,
	}
}

// Config is the reconciler's configuration in the simulation.
func Config() *reconcile.Config {
	d := func(x time.Duration) reconcile.Duration { return reconcile.Duration(x) }
	return &reconcile.Config{
		NamePrefix: "gha",
		Pools: []reconcile.Pool{
			{Name: "arm64", Labels: []string{"self-hosted", "linux", "ARM64"}, MaxRunners: 4,
				BootTimeout: d(4 * time.Minute), IdleTimeout: d(2 * time.Minute), MaxLifetime: d(2 * time.Hour)},
			{Name: "x64", Labels: []string{"self-hosted", "linux", "x64"}, MaxRunners: 6,
				BootTimeout: d(4 * time.Minute), IdleTimeout: d(2 * time.Minute), MaxLifetime: d(2 * time.Hour)},
		},
	}
}

var jobLabels = [][]string{
	{"self-hosted", "ARM64"}, {"self-hosted", "linux", "arm64"}, {"self-hosted", "x64"}, {"linux", "X64"}, {"self-hosted"},
}

type job struct {
	id, runID int64
	repo      reconcile.Scope
	labels    []string
	status    string // queued, in_progress, completed
	created   time.Time
	hosted    bool
	runner    string
	doneAt    time.Time
	next      *job // the dependent stage, queued when this one ends
	cleanRuns int  // fault-free passes that ended while it was queued
	// unassignable: GitHub never gives it to our runners, whatever their labels.
	unassignable bool
	// What GitHub reports once it ends: conclusion, when; the run attempt it belongs
	// to; and its lineage (the first job's id, kept by re-runs). failAt: its runner was
	// preempted, and GitHub fails the job then.
	conclusion  string
	completedAt time.Time
	attempt     int
	lineage     int64
	failAt      time.Time
}

// unassignableFor is how long an unassignable job stays queued before someone cancels
// it (GitHub itself fails a job queued for 24 hours; the simulation is quicker).
const unassignableFor = 20 * time.Minute

type registration struct {
	reconcile.Registration
	jit       string
	offlineAt time.Time // GitHub notices a dead busy runner at this time
	cleanRuns int       // fault-free passes it spent without a runner, removable
	idleSince time.Time // online and not busy since
	made      bool      // a machine was created for it
	heldRuns  int       // fault-free passes it spent idle past invariant 7's bound
}

type machine struct {
	name, pool string
	scope      reconcile.Scope
	repo       reconcile.Scope
	jobID      int64
	created    time.Time
	bootAt     time.Time // zero: never boots
	started    bool
	finished   bool
	offAt      time.Time // powers off at this time (after its job)
	jit        string
	preempted  time.Time // when the platform took it away
}

// World is the simulated GitHub and platform. It is not safe for concurrent use: the
// reconciler runs with Concurrency 1 inside it.
type World struct {
	P       Params
	Cfg     *reconcile.Config
	rng     *rand.Rand
	now     time.Time
	nextID  int64
	repos   []reconcile.Scope
	jobs    map[int64]*job
	regs    map[int64]*registration
	mach    map[string]*machine
	arrive  bool
	trouble bool // faults, crashes, overlaps, preemption and cancellations on

	passes     int
	passFaults int // faults injected in the pass under way
	// killed counts the preemptions that killed each job lineage; served holds the
	// lineages a job of which ran to completion, or was cancelled; reruns counts
	// re-runs (invariant 8).
	killed  map[int64]int
	served  map[int64]bool
	reruns  int
	planner func(reconcile.Observed, reconcile.Config, time.Time) reconcile.Plan
	// outage holds each pool's platform weather: until when, and as what, it refuses
	// creates. backoff holds the pools whose create the platform refused and that have
	// made none since: in backoff, as the reconciler should see it (invariant 9).
	outage  map[string]outage
	backoff map[string]bool
	// notes are the reconciler's --cache between its processes (reconcile.Memo).
	notes *reconcile.Notes

	trace      []string
	Violations []string
	Verbose    func(string) // every trace line, when set
}

// New returns a world seeded with seed.
func New(seed uint64, p Params) *World {
	w := &World{P: p, Cfg: Config(), rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		now: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC), nextID: 1000,
		jobs: map[int64]*job{}, regs: map[int64]*registration{}, mach: map[string]*machine{}, arrive: true, trouble: true,
		killed: map[int64]int{}, served: map[int64]bool{}, outage: map[string]outage{}, backoff: map[string]bool{}}
	w.notes, _ = reconcile.OpenNotes(context.Background(), nil) // no store: cannot fail
	for i := range p.Repos {
		w.repos = append(w.repos, reconcile.Scope{Owner: "octo-org", Repo: fmt.Sprintf("repo%d", i)})
		w.Cfg.GitHub.Repos = append(w.Cfg.GitHub.Repos, w.repos[i].String())
	}
	if seed%3 == 0 {
		// A warm pool: one runner kept idle in repo0, two from 08:30 to 09:10 UTC (the
		// simulation starts at 08:00), recycled after 30 idle minutes.
		arm := &w.Cfg.Pools[0]
		arm.MinIdle, arm.WarmRepos, arm.MaxIdleAge = 1, []string{w.repos[0].String()}, reconcile.Duration(30*time.Minute)
		arm.MinIdleSchedule = &reconcile.WarmSchedule{TimeZone: "UTC", Windows: []reconcile.WarmWindow{{Days: []string{"mon-sun"}, From: "08:30", To: "09:10", MinIdle: 2}}}
		if err := w.Cfg.PrepareWarm(); err != nil {
			panic(err)
		}
	}
	return w
}

// SetPlanner makes passes plan with pl instead of reconcile.Compute.
func (w *World) SetPlanner(pl func(reconcile.Observed, reconcile.Config, time.Time) reconcile.Plan) {
	w.planner = pl
}

// Now is the world's clock.
func (w *World) Now() time.Time { return w.now }

func (w *World) id() int64 {
	w.nextID++
	return w.nextID
}

func (w *World) log(format string, args ...any) {
	line := fmt.Sprintf("%s p%d ", w.now.Format("15:04:05"), w.passes) + fmt.Sprintf(format, args...)
	w.trace = append(w.trace, line)
	if len(w.trace) > 80 {
		w.trace = w.trace[len(w.trace)-80:]
	}
	if w.Verbose != nil {
		w.Verbose(line)
	}
}

func (w *World) violate(format string, args ...any) {
	v := fmt.Sprintf("%s (pass %d): ", w.now.Format("15:04:05"), w.passes) + fmt.Sprintf(format, args...)
	w.log("VIOLATION %s", v)
	if len(w.Violations) < 20 {
		w.Violations = append(w.Violations, v)
	}
}

// Trace returns the last events, oldest first.
func (w *World) Trace() []string { return slices.Clone(w.trace) }

func (w *World) chance(p float64) bool { return p > 0 && w.rng.Float64() < p }

func (w *World) dur(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(w.rng.Int64N(int64(hi-lo)+1))
}

func sortedKeys[K interface{ ~int64 | ~string }, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Step advances the world by one step.
func (w *World) Step() {
	w.now = w.now.Add(w.P.Step)
	if w.arrive {
		for n := w.poisson(w.P.ArrivalRate); n > 0; n-- {
			w.newRun()
		}
	}
	for _, id := range sortedKeys(w.jobs) {
		j := w.jobs[id]
		switch {
		case j.status == "queued" && j.hosted && w.chance(0.2):
			w.finishJob(j, "served by a GitHub-hosted runner")
		case j.status == "queued" && j.unassignable && w.now.Sub(j.created) >= unassignableFor:
			w.finishJob(j, "cancelled: GitHub never gave it to a runner")
		case j.status == "queued" && w.trouble && w.chance(w.P.CancelRate):
			w.finishJob(j, "cancelled while queued")
		case j.status == "in_progress" && !j.failAt.IsZero():
			if !j.failAt.After(w.now) {
				j.status, j.conclusion, j.completedAt = "completed", "failure", w.now
				w.log("job %d failed: its runner %s lost communication with the server", j.id, j.runner)
			}
		case j.status == "in_progress" && !j.doneAt.After(w.now):
			w.finishJob(j, "done")
		}
	}
	for _, name := range sortedKeys(w.mach) {
		m := w.mach[name]
		switch {
		case m.finished:
		case !m.offAt.IsZero() && !m.offAt.After(w.now):
			m.finished = true
			w.log("machine %s powered off", m.name)
		case !m.started && !m.bootAt.IsZero() && !m.bootAt.After(w.now):
			w.boot(m)
		case w.trouble && w.chance(w.P.Preempt):
			w.preempt(m)
		}
	}
	for _, id := range sortedKeys(w.regs) {
		r := w.regs[id]
		if !r.offlineAt.IsZero() && !r.offlineAt.After(w.now) {
			r.Online, r.Busy, r.offlineAt = false, false, time.Time{}
			w.log("registration %s noticed offline", r.Name)
		}
	}
	w.assign()
	for _, id := range sortedKeys(w.regs) {
		r := w.regs[id]
		switch {
		case !r.Online || r.Busy:
			r.idleSince = time.Time{}
		case r.idleSince.IsZero():
			r.idleSince = w.now
		}
	}
}

// poisson draws from a Poisson distribution of that mean (Knuth's method).
func (w *World) poisson(mean float64) int {
	limit, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= w.rng.Float64()
		if p <= limit {
			return k
		}
		k++
	}
}

func (w *World) newRun() {
	repo := w.repos[w.rng.IntN(len(w.repos))]
	runID := w.id()
	first := w.newJob(runID, repo)
	if w.chance(w.P.StageShare) {
		first.next = &job{runID: runID, repo: repo}
		first.next.labels, first.next.hosted = w.pickLabels()
	}
	w.jobs[first.id] = first
	w.log("job %d queued in %s %v (unassignable: %v)", first.id, repo, first.labels, first.unassignable)
}

func (w *World) pickLabels() ([]string, bool) {
	if w.chance(w.P.HostedShare) {
		return []string{"ubuntu-latest"}, true
	}
	return slices.Clone(jobLabels[w.rng.IntN(len(jobLabels))]), false
}

func (w *World) newJob(runID int64, repo reconcile.Scope) *job {
	j := &job{id: w.id(), runID: runID, repo: repo, status: "queued", created: w.now, attempt: 1}
	j.labels, j.hosted = w.pickLabels()
	j.unassignable = !j.hosted && w.chance(w.P.Unassignable)
	return j
}

func (w *World) finishJob(j *job, why string) {
	j.status, j.completedAt = "completed", w.now
	switch {
	case why == "done":
		j.conclusion = "success"
		w.served[w.lineageOf(j)] = true
	case strings.HasPrefix(why, "cancelled"):
		j.conclusion = "cancelled"
		w.served[w.lineageOf(j)] = true // ended by a person: nothing left to serve
	default:
		j.conclusion = "success" // served elsewhere
	}
	w.log("job %d %s", j.id, why)
	if j.runner != "" {
		if r := w.regByName(j.runner); r != nil && r.Busy && r.offlineAt.IsZero() {
			delete(w.regs, r.ID) // an ephemeral runner deregisters after its job
			w.log("registration %s removed by GitHub after job %d", r.Name, j.id)
		}
		if m, ok := w.mach[j.runner]; ok && !m.finished && m.offAt.IsZero() {
			m.offAt = w.now.Add(w.dur(5*time.Second, 30*time.Second))
		}
	}
	if n := j.next; n != nil && why == "done" {
		// The dependent stage queues inside the run that is now in progress.
		n.id, n.status, n.created, n.attempt = w.id(), "queued", w.now, j.attempt
		w.jobs[n.id] = n
		w.log("job %d queued in running run %d of %s %v", n.id, n.runID, n.repo, n.labels)
	}
}

func (w *World) regByName(name string) *registration {
	for _, id := range sortedKeys(w.regs) {
		if w.regs[id].Name == name {
			return w.regs[id]
		}
	}
	return nil
}

func (w *World) boot(m *machine) {
	m.started = true
	r := w.regByName(m.name)
	if r == nil || r.jit != m.jit || r.Scope != m.scope {
		// Its registration is gone or was replaced: the runner cannot start, and the
		// startup script powers the machine off.
		w.log("machine %s cannot register (registration gone); powering off", m.name)
		m.offAt = w.now.Add(10 * time.Second)
		return
	}
	r.Online = true
	w.log("runner %s online", m.name)
}

func (w *World) preempt(m *machine) {
	m.finished, m.preempted = true, w.now
	w.log("machine %s preempted", m.name)
	r := w.regByName(m.name)
	if r == nil {
		return
	}
	for _, id := range sortedKeys(w.jobs) {
		if j := w.jobs[id]; j.runner == m.name && j.status == "in_progress" {
			// GitHub notices the runner gone a while later and fails the job; it never
			// queues it again.
			j.failAt = w.now.Add(w.dur(30*time.Second, 3*time.Minute))
			w.killed[w.lineageOf(j)]++
			w.log("job %d lost its runner %s", j.id, m.name)
		}
	}
	r.offlineAt = w.now.Add(w.dur(30*time.Second, 2*time.Minute))
}

// lineageOf is the id of the job's first attempt.
func (w *World) lineageOf(j *job) int64 {
	if j.lineage == 0 {
		j.lineage = j.id
	}
	return j.lineage
}

// runState is the run's latest attempt and whether any job of it is still queued or
// running.
func (w *World) runState(runID int64) (latest int, active bool) {
	for _, j := range w.jobs {
		if j.runID != runID {
			continue
		}
		latest = max(latest, j.attempt)
		if j.status != "completed" {
			active = true
		}
	}
	return latest, active
}

// assign gives each idle online runner the oldest queued job its labels cover in its
// repository, as GitHub does, whatever job the runner was made for.
func (w *World) assign() {
	for _, id := range sortedKeys(w.regs) {
		r := w.regs[id]
		m, ok := w.mach[r.Name]
		if !r.Online || r.Busy || !r.offlineAt.IsZero() || !ok || m.finished {
			continue
		}
		var best *job
		for _, jid := range sortedKeys(w.jobs) {
			j := w.jobs[jid]
			if j.status != "queued" || j.hosted || j.unassignable || j.repo != r.Scope || !covers(r.Labels, j.labels) {
				continue
			}
			if best == nil || j.created.Before(best.created) {
				best = j
			}
		}
		if best == nil {
			continue
		}
		best.status, best.runner = "in_progress", r.Name
		best.doneAt = w.now.Add(w.dur(30*time.Second, w.P.MaxJobLength))
		r.Busy = true
		w.log("runner %s (made for job %d) takes job %d", r.Name, m.jobID, best.id)
	}
}

func covers(have, want []string) bool {
	for _, x := range want {
		if !slices.ContainsFunc(have, func(h string) bool { return strings.EqualFold(h, x) }) {
			return false
		}
	}
	return true
}

// errFault is an injected API or backend failure.
var errFault = errors.New("injected fault")

// errDead is what every call of a pass that died returns.
var errDead = errors.New("the pass's process is dead")

// outage is a pool's platform refusing creates until then, as class.
type outage struct {
	class reconcile.FailureClass
	until time.Time
}

// pass is one pass's view of the world: its calls can fail, and it can die.
type pass struct {
	w     *World
	seen  int64 // the world's last id when the pass began: what it could observe
	id    int
	dead  bool
	jits  int
	depth int
	// held holds the pools this pass knows to be in backoff: they were when it began
	// (the cache it read), or it met a refusal itself, and it has made none since.
	// heldRegs counts the registrations it made in them (invariant 9). A pass that
	// overlaps another cannot know what the other met meanwhile.
	held     map[string]bool
	heldRegs map[string]int
}

func (p *pass) call(what string) error {
	if p.dead {
		return errDead
	}
	if p.w.trouble && p.w.chance(p.w.P.Faults) {
		p.w.passFaults++
		p.w.log("pass %d: %s fails (injected)", p.id, what)
		return errFault
	}
	return nil
}

// RunPass runs one reconcile pass (a fresh process, as from cron) against the world,
// then checks the invariants that are judged per pass.
func (w *World) RunPass(ctx context.Context) {
	w.passes++
	w.passFaults = 0
	for _, pool := range w.Cfg.Pools {
		switch {
		case !w.trouble || w.now.Before(w.outage[pool.Name].until):
		case w.chance(w.P.Stockout):
			w.outage[pool.Name] = outage{reconcile.FailNoCapacity, w.now.Add(w.dur(time.Minute, 20*time.Minute))}
			w.log("pool %s: stockout until %s", pool.Name, w.outage[pool.Name].until.Format("15:04:05"))
		case w.chance(w.P.Quota):
			w.outage[pool.Name] = outage{reconcile.FailQuota, w.now.Add(w.dur(time.Minute, 20*time.Minute))}
			w.log("pool %s: quota reached until %s", pool.Name, w.outage[pool.Name].until.Format("15:04:05"))
		}
	}
	w.runPass(ctx, 0)
	w.checkAfterPass()
}

func (w *World) runPass(ctx context.Context, depth int) {
	p := &pass{w: w, id: w.passes*10 + depth, depth: depth, seen: w.nextID, heldRegs: map[string]int{}, held: maps.Clone(w.backoff)}
	rc := &reconcile.Reconciler{
		Config:             w.Cfg,
		GitHub:             ghView{p},
		Memo:               w.notes,
		Backends:           map[string]reconcile.Backend{},
		Now:                w.Now,
		Concurrency:        1, // deterministic order of calls
		BackendConcurrency: 4, // batches of four creates, started in order
	}
	seam.InOrder(rc)
	if w.planner != nil {
		seam.SetPlanner(rc, w.planner)
	}
	for _, pool := range w.Cfg.Pools {
		rc.Backends[pool.Name] = backendView{p}
	}
	sum, err := rc.RunOnce(ctx)
	w.log("pass %d done: %d created, %d deleted, %d deregistered, err=%v", p.id, sum.Created, sum.Deleted, sum.Deregistered, err != nil)
}

// ghView is the world as GitHub, for one pass.
type ghView struct{ p *pass }

func (g ghView) OrgRepos(context.Context, string) ([]reconcile.Scope, error) {
	return nil, errors.New("no orgs in the simulation")
}

func (g ghView) InstallationRepos(context.Context) ([]reconcile.Scope, error) {
	return nil, errors.New("no App installation in the simulation")
}

func (g ghView) TakeStats() reconcile.APIStats { return reconcile.APIStats{} }

// QueuedJobs lists the repository's queued jobs, and those in progress with their
// runners, at one moment.
func (g ghView) QueuedJobs(_ context.Context, repo reconcile.Scope) (queued, running []reconcile.Job, err error) {
	w := g.p.w
	if err := g.p.call("listing jobs of " + repo.String()); err != nil {
		return nil, nil, err
	}
	for _, id := range sortedKeys(w.jobs) {
		j := w.jobs[id]
		switch {
		case j.repo != repo:
		case j.status == "queued":
			queued = append(queued, reconcile.Job{ID: j.id, RunID: j.runID, Repo: j.repo, Name: "build", Labels: slices.Clone(j.labels), CreatedAt: j.created})
		case j.status == "in_progress" && j.runner != "":
			running = append(running, reconcile.Job{ID: j.id, RunID: j.runID, Repo: j.repo, Name: "build", Labels: slices.Clone(j.labels),
				CreatedAt: j.created, RunnerName: j.runner})
		}
	}
	return queued, running, nil
}

// JobRunBy finds the job the runner took, as GitHub shows it.
func (g ghView) JobRunBy(_ context.Context, repo reconcile.Scope, runner string, _ int64, since time.Time) (reconcile.JobOutcome, bool, error) {
	w := g.p.w
	if err := g.p.call("looking up the job runner " + runner + " ran"); err != nil {
		return reconcile.JobOutcome{}, false, err
	}
	ids := sortedKeys(w.jobs)
	slices.Reverse(ids) // the newest first: names come back, and an older job may name an earlier runner
	for _, id := range ids {
		j := w.jobs[id]
		if j.repo != repo || j.runner != runner || (j.status == "completed" && j.completedAt.Before(since)) {
			continue
		}
		latest, active := w.runState(j.runID)
		o := reconcile.JobOutcome{ID: j.id, RunID: j.runID, Repo: j.repo, Labels: slices.Clone(j.labels), Status: statusOf(j.status),
			RunnerName: j.runner, RunAttempt: j.attempt, LatestAttempt: latest, RunStatus: reconcile.JobCompleted}
		for _, e := range w.jobs { // the same job in earlier attempts
			if e.lineage == w.lineageOf(j) && e.attempt < j.attempt && (e.conclusion == "failure" || e.conclusion == "cancelled") {
				o.PriorFailures++
			}
		}
		if j.status == "completed" {
			o.Conclusion, o.Concluded, o.CompletedAt = conclusionOf(j.conclusion), j.conclusion, j.completedAt
		}
		if active {
			o.RunStatus = reconcile.JobInProgress
		}
		return o, true, nil
	}
	return reconcile.JobOutcome{}, false, nil
}

// RerunJob queues the job again in a new attempt of its run, as GitHub does, under a
// new id; its dependent stage follows it.
func (g ghView) RerunJob(_ context.Context, repo reconcile.Scope, id int64) error {
	w := g.p.w
	if err := g.p.call(fmt.Sprintf("re-running job %d", id)); err != nil {
		return err
	}
	j, ok := w.jobs[id]
	if !ok || j.repo != repo || j.status != "completed" {
		return fmt.Errorf("re-running job %d: GitHub answered 403 (not a completed job)", id)
	}
	latest, active := w.runState(j.runID)
	if active {
		return fmt.Errorf("re-running job %d: GitHub answered 403 (its run is not completed)", id)
	}
	n := &job{id: w.id(), runID: j.runID, repo: j.repo, labels: slices.Clone(j.labels), status: "queued", created: w.now,
		attempt: latest + 1, lineage: w.lineageOf(j), next: j.next}
	j.next = nil
	w.jobs[n.id] = n
	w.reruns++
	w.log("pass %d: job %d re-run as job %d (attempt %d)", g.p.id, j.id, n.id, n.attempt)
	return nil
}

// PollFacts is never asked: the simulation runs without a Budget.
func (g ghView) PollFacts([]reconcile.Scope) reconcile.PollFacts { return reconcile.PollFacts{} }

func (g ghView) Registrations(_ context.Context, scope reconcile.Scope) ([]reconcile.Registration, error) {
	w := g.p.w
	if err := g.p.call("listing registrations of " + scope.String()); err != nil {
		return nil, err
	}
	var out []reconcile.Registration
	for _, id := range sortedKeys(w.regs) {
		if r := w.regs[id]; r.Scope == scope {
			out = append(out, r.Registration)
		}
	}
	return out, nil
}

func (g ghView) FindRegistration(ctx context.Context, scope reconcile.Scope, name string) (reconcile.Registration, bool, error) {
	regs, err := g.Registrations(ctx, scope)
	if err != nil {
		return reconcile.Registration{}, false, err
	}
	i := slices.IndexFunc(regs, func(r reconcile.Registration) bool { return r.Name == name })
	if i < 0 {
		return reconcile.Registration{}, false, nil
	}
	return regs[i], true, nil
}

func (g ghView) GenerateJITConfig(ctx context.Context, scope reconcile.Scope, name string, labels []string) (reconcile.Registration, reconcile.Secret, error) {
	w, p := g.p.w, g.p
	p.jits++
	if err := p.call("generate-jitconfig " + name); err != nil {
		return reconcile.Registration{}, "", err
	}
	if r := w.regByName(name); r != nil && r.Scope == scope {
		w.log("pass %d: jit %s: 409, name taken", p.id, name)
		return reconcile.Registration{}, "", reconcile.ErrNameTaken
	}
	id := w.id()
	r := &registration{Registration: reconcile.Registration{ID: id, Name: name, Scope: scope, Labels: slices.Clone(labels)},
		jit: fmt.Sprintf("jit-%d", id)}
	w.regs[id] = r
	w.log("pass %d: registered %s", p.id, name)
	// Invariant 9: while a pool is in backoff (its platform refused a create and none
	// was made since), a pass registers at most one of its runners: the probe.
	if pool := poolOf(w.Cfg, name); p.held[pool] {
		if p.heldRegs[pool]++; p.heldRegs[pool] > 1 {
			w.violate("invariant 9: pass %d registered %d runners of pool %s while it is in backoff", p.id, p.heldRegs[pool], pool)
		}
	}
	if w.trouble && w.chance(w.P.Crash) {
		p.dead = true
		w.passFaults++
		w.log("pass %d: dies after registering %s, before creating it", p.id, name)
	}
	if !p.dead && p.jits == 1 && p.depth == 0 && w.trouble && w.chance(w.P.Overlap) {
		// The other pass sees this registration with no machine yet.
		w.passFaults++ // an overlap makes this pass's view stale: not a clean pass
		w.log("pass %d: another pass starts between registering %s and creating it", p.id, name)
		w.runPass(ctx, p.depth+1)
	}
	return r.Registration, reconcile.Secret(r.jit), nil
}

func (g ghView) RemoveRegistration(_ context.Context, scope reconcile.Scope, id int64) error {
	w := g.p.w
	if err := g.p.call(fmt.Sprintf("removing registration %d", id)); err != nil {
		return err
	}
	r, ok := w.regs[id]
	if !ok || r.Scope != scope {
		return nil
	}
	if r.Busy {
		return reconcile.ErrRunnerBusy
	}
	delete(w.regs, id)
	w.log("pass %d: removed registration %s", g.p.id, r.Name)
	return nil
}

// backendView is the world as a runner platform, for one pass.
type backendView struct{ p *pass }

func (b backendView) List(context.Context) ([]reconcile.Runner, error) {
	w := b.p.w
	if err := b.p.call("listing runners"); err != nil {
		return nil, err
	}
	var out []reconcile.Runner
	for _, name := range sortedKeys(w.mach) {
		m := w.mach[name]
		if w.P.HideBooting && !m.started && !m.finished {
			continue
		}
		ph := reconcile.PhaseActive
		if m.finished {
			ph = reconcile.PhaseFinished
		}
		out = append(out, reconcile.Runner{Name: m.name, Pool: m.pool, Scope: m.scope, Repo: m.repo, JobID: m.jobID, CreatedAt: m.created, Phase: ph,
			PreemptedAt: m.preempted})
	}
	return out, nil
}

func (b backendView) Create(_ context.Context, spec reconcile.RunnerSpec) error {
	w := b.p.w
	if err := b.p.call("creating " + spec.Name); err != nil {
		return err
	}
	if _, ok := w.mach[spec.Name]; ok {
		return nil
	}
	if o := w.outage[spec.Pool]; w.trouble && w.now.Before(o.until) {
		w.passFaults++ // the platform's weather rightly delays the pool's jobs
		w.backoff[spec.Pool], b.p.held[spec.Pool] = true, true
		w.log("pass %d: create %s refused: %s", b.p.id, spec.Name, o.class)
		return reconcile.Classify(o.class, fmt.Errorf("creating %s: %s until %s", spec.Name, o.class, o.until.Format("15:04:05")))
	}
	w.backoff[spec.Pool], b.p.held[spec.Pool] = false, false
	// Invariant 6: no second runner for a job beside a create under way that the pass
	// could see: a fresh registration of ours for the same job, made before this pass
	// began, whose machine does not exist yet. (One made after the pass looked is a
	// race no listing can close; the surplus rule removes the spare runner.)
	for _, id := range sortedKeys(w.regs) {
		r := w.regs[id]
		if id > b.p.seen {
			continue
		}
		jobID, ours := reconcile.ParseRunnerName(w.Cfg.NamePrefix, r.Name)
		at, known := r.Registered()
		// The same job, or, for a warm runner (which has none), the same slot.
		same := jobID == spec.JobID && !reconcile.IsWarmName(w.Cfg.NamePrefix, spec.Name) && !reconcile.IsWarmName(w.Cfg.NamePrefix, r.Name) ||
			reconcile.IsWarmName(w.Cfg.NamePrefix, spec.Name) && warmSlot(r.Name) == warmSlot(spec.Name)
		if ours && !r.made && r.Name != spec.Name && same && known && w.now.Sub(at) < reconcile.RegistrationGrace {
			w.violate("invariant 6: created %s beside %s, registered %v ago and still being created", spec.Name, r.Name, w.now.Sub(at))
		}
	}
	m := &machine{name: spec.Name, pool: spec.Pool, scope: spec.Scope, repo: spec.Repo, jobID: spec.JobID, created: w.now, jit: spec.JITConfig.Reveal()}
	if !w.chance(w.P.NeverBoot) {
		m.bootAt = w.now.Add(w.dur(20*time.Second, 3*time.Minute))
	}
	w.mach[spec.Name] = m
	if r := w.regByName(spec.Name); r != nil && r.jit == m.jit {
		r.made = true
	}
	w.log("pass %d: created machine %s (boots: %v)", b.p.id, spec.Name, !m.bootAt.IsZero())
	active := 0
	for _, o := range w.mach {
		if o.pool == m.pool && !o.finished {
			active++
		}
	}
	if p := w.Cfg.Pool(m.pool); p != nil && active > p.MaxRunners {
		w.violate("invariant 2: pool %s has %d active runners, max_runners is %d", m.pool, active, p.MaxRunners)
	}
	return nil
}

func (b backendView) Delete(_ context.Context, r reconcile.Runner) error {
	w := b.p.w
	if err := b.p.call("deleting " + r.Name); err != nil {
		return err
	}
	m, ok := w.mach[r.Name]
	if !ok {
		return nil
	}
	if reg := w.regByName(m.name); reg != nil && reg.Busy && reg.offlineAt.IsZero() && !m.finished {
		if p := w.Cfg.Pool(m.pool); p == nil || w.now.Sub(m.created) < time.Duration(p.MaxLifetime) {
			w.violate("invariant 1: deleted runner %s while it runs a job", m.name)
		}
		for _, id := range sortedKeys(w.jobs) {
			if j := w.jobs[id]; j.runner == m.name && j.status == "in_progress" {
				j.status = "completed"
				w.log("job %d killed with its runner", j.id)
			}
		}
		reg.offlineAt = w.now.Add(time.Minute)
	}
	delete(w.mach, r.Name)
	w.log("pass %d: deleted machine %s", b.p.id, r.Name)
	return nil
}

// checkSupply judges invariant 3: per pool and repository, at least as many booting or
// idle runners as queued jobs that have waited two clean passes, while the pool has room.
func (w *World) checkSupply(clean bool) {
	// Invariant 3: per pool and repository, at least as many booting or idle runners
	// as queued jobs that have waited two clean passes, while the pool has room.
	type key struct {
		pool string
		repo reconcile.Scope
	}
	waiting := map[key][]int64{}
	for _, id := range sortedKeys(w.jobs) {
		j := w.jobs[id]
		if j.status != "queued" || j.hosted {
			continue
		}
		if clean {
			j.cleanRuns++
		}
		pool := reconcile.MatchPool(w.Cfg.Pools, j.labels)
		if pool == nil || j.cleanRuns < 2 || j.unassignable || w.backoff[pool.Name] {
			continue // a pool in backoff serves its jobs once its probe works (invariant 9)
		}
		k := key{pool.Name, j.repo}
		waiting[k] = append(waiting[k], j.id)
	}
	keys := make([]key, 0, len(waiting))
	for k := range waiting {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int { return strings.Compare(a.pool+a.repo.String(), b.pool+b.repo.String()) })
	if clean {
		for _, k := range keys {
			ids := waiting[k]
			supply, active := 0, 0
			for _, m := range w.mach {
				if m.pool != k.pool || m.finished {
					continue
				}
				active++
				if m.repo != k.repo && m.scope != k.repo {
					continue
				}
				r := w.regByName(m.name)
				booting := r != nil && !r.Online && w.now.Sub(m.created) < time.Duration(w.Cfg.Pool(k.pool).BootTimeout)
				idle := r != nil && r.Online && !r.Busy
				if booting || idle {
					supply++
				}
			}
			// A registration with no machine yet, younger than the grace, is a create
			// under way (or, for that long, a dead pass's leftover): it counts.
			for _, id := range sortedKeys(w.regs) {
				r := w.regs[id]
				jobID, _ := reconcile.ParseRunnerName(w.Cfg.NamePrefix, r.Name)
				at, known := r.Registered()
				if _, hasMachine := w.mach[r.Name]; !hasMachine && known && w.now.Sub(at) < reconcile.RegistrationGrace &&
					r.Scope == k.repo && slices.Contains(ids, jobID) {
					supply++
				}
			}
			if active < w.Cfg.Pool(k.pool).MaxRunners && supply < len(ids) {
				w.violate("invariant 3: jobs %v of %s in pool %s waited two passes; %d runners booting or idle for them, pool has room (%d active)", ids, k.repo, k.pool, supply, active)
			}
		}
	}
}

// checkAfterPass judges invariants 3 and 5, counting only passes in which nothing was
// injected: a fault may rightly delay what a pass does.
func (w *World) checkAfterPass() {
	clean := w.passFaults == 0
	w.checkSupply(clean)
	w.checkHeldIdle(clean)
	// Invariant 5: a registration of ours without a runner, offline and idle, whose job
	// no longer waits (a warm runner's: past RegistrationGrace), lasts at most one clean
	// pass.
	for _, id := range sortedKeys(w.regs) {
		r := w.regs[id]
		jobID, ours := reconcile.ParseRunnerName(w.Cfg.NamePrefix, r.Name)
		_, hasMachine := w.mach[r.Name]
		j, known := w.jobs[jobID]
		queued := known && j.status == "queued"
		// A warm runner has no job: its registration is a create under way (another
		// pass's, or a dead pass's) until RegistrationGrace has passed.
		at, stamped := r.Registered()
		fresh := reconcile.IsWarmName(w.Cfg.NamePrefix, r.Name) && stamped && w.now.Sub(at) < reconcile.RegistrationGrace
		if !ours || hasMachine || r.Online || r.Busy || queued || fresh {
			r.cleanRuns = 0
			continue
		}
		if clean {
			r.cleanRuns++
		}
		if r.cleanRuns >= 2 {
			w.violate("invariant 5: registration %s has had no runner for %d clean passes", r.Name, r.cleanRuns)
			r.cleanRuns = 0
		}
	}
}

// warmSlot is a warm runner's name without its retry suffix.
func warmSlot(name string) string {
	if i := strings.LastIndex(name, "-r"); i > 0 && i > strings.LastIndex(name, "-w") {
		return name[:i]
	}
	return name
}

// warmScope reports whether the pool keeps runners warm in the scope.
func (w *World) warmScope(p *reconcile.Pool, scope reconcile.Scope) bool {
	return slices.Contains(w.Cfg.WarmScopes(*p), scope)
}

// idleIn counts the idle runners of a pool in a scope.
func (w *World) idleIn(pool string, scope reconcile.Scope) int {
	n := 0
	for _, m := range w.mach {
		if r := w.regByName(m.name); m.pool == pool && m.scope == scope && !m.finished && r != nil && r.Online && !r.Busy {
			n++
		}
	}
	return n
}

// checkHeldIdle judges invariant 7: a runner is never held idle past idle_timeout and
// one pass for a job GitHub will not give it. A runner is held from when it is idle
// and, if unassignable jobs of its pool and repository wait, from when the newest of
// them queued: that job's wait is the only evidence there is.
func (w *World) checkHeldIdle(clean bool) {
	bound := w.P.Step*time.Duration(w.P.PassEvery) + w.P.Step
	for _, id := range sortedKeys(w.regs) {
		r := w.regs[id]
		m, ok := w.mach[r.Name]
		if !ok || m.finished || r.idleSince.IsZero() || w.Cfg.Pool(m.pool) == nil {
			r.heldRuns = 0
			continue
		}
		pool := w.Cfg.Pool(m.pool)
		if w.warmScope(pool, m.scope) && w.idleIn(m.pool, m.scope) <= pool.MinIdleAt(w.now) {
			r.heldRuns = 0 // kept idle on purpose: one of min_idle (a job's runner counts too)
			continue
		}
		since := r.idleSince
		for _, jid := range sortedKeys(w.jobs) {
			j := w.jobs[jid]
			if jp := reconcile.MatchPool(w.Cfg.Pools, j.labels); j.status == "queued" && j.unassignable && jp != nil &&
				jp.Name == m.pool && j.repo == m.scope && j.created.After(since) {
				since = j.created
			}
		}
		if w.now.Sub(since) <= time.Duration(pool.IdleTimeout)+bound {
			r.heldRuns = 0
			continue
		}
		if clean {
			r.heldRuns++
		}
		if r.heldRuns >= 2 {
			w.violate("invariant 7: runner %s held idle %v (idle_timeout %v)", r.Name, w.now.Sub(since), time.Duration(pool.IdleTimeout))
			r.heldRuns = 0
		}
	}
}

// Drain stops arrivals and trouble, runs passes until every job has ended and then
// every timeout has passed, and checks invariant 4: nothing of ours is left.
func (w *World) Drain(ctx context.Context) {
	w.arrive, w.trouble = false, false
	longest := 0 * time.Second
	for _, p := range w.Cfg.Pools {
		longest = max(longest, time.Duration(p.BootTimeout)+time.Duration(p.IdleTimeout))
	}
	settle := longest + reconcile.GoneGrace + 2*time.Minute
	giveUp := w.now.Add(12 * time.Hour)
	var quietSince time.Time
	for step := 0; w.now.Before(giveUp); step++ {
		w.Step()
		if step%w.P.PassEvery == 0 {
			w.RunPass(ctx)
		}
		if w.busy() {
			quietSince = time.Time{}
			continue
		}
		if quietSince.IsZero() {
			quietSince = w.now
		}
		if w.now.Sub(quietSince) >= settle {
			break
		}
	}
	// What is left is exactly the scheduled min_idle runners of each warm scope, idle
	// (warm ones, or a job's runner kept as one of them); nothing else.
	// min_idle may have just changed (a window ended): the pass that applies it may
	// not have come, or its surplus not yet be idle_timeout old. Either figure is right.
	warm, least := map[string]int{}, map[string]int{} // pool/scope → at most, at least
	for _, p := range w.Cfg.Pools {
		recent := time.Duration(p.IdleTimeout) + 2*w.P.Step*time.Duration(w.P.PassEvery)
		for _, sc := range w.Cfg.WarmScopes(p) {
			a, b := p.MinIdleAt(w.now), p.MinIdleAt(w.now.Add(-recent))
			warm[p.Name+"/"+sc.String()], least[p.Name+"/"+sc.String()] = max(a, b), min(a, b)
		}
	}
	kept := map[string]bool{}
	for _, name := range sortedKeys(w.mach) {
		m := w.mach[name]
		k := m.pool + "/" + m.scope.String()
		r := w.regByName(name)
		if warm[k] > 0 && !m.finished && r != nil && r.Online && !r.Busy { // any idle runner counts: min_idle is a number
			warm[k]--
			least[k]--
			kept[name] = true
			continue
		}
		w.violate("invariant 4: runner %s left after the drain", name)
	}
	for _, k := range sortedKeys(least) {
		if least[k] > 0 {
			w.violate("invariant 4: %d warm runner(s) of %s missing after the drain", least[k], k)
		}
	}
	for _, id := range sortedKeys(w.regs) {
		if _, ours := reconcile.ParseRunnerName(w.Cfg.NamePrefix, w.regs[id].Name); ours && !kept[w.regs[id].Name] {
			w.violate("invariant 4: registration %s left after the drain", w.regs[id].Name)
		}
	}
	for _, id := range sortedKeys(w.jobs) {
		if j := w.jobs[id]; j.status != "completed" && !j.hosted {
			w.violate("invariant 4: job %d still %s after the drain", j.id, j.status)
		}
	}
	// Invariant 8: a job killed by preemptions no more often than its pool re-runs
	// them ran to completion in the end (unless someone cancelled it).
	for _, lineage := range sortedKeys(w.killed) {
		j := w.jobs[lineage]
		pool := reconcile.MatchPool(w.Cfg.Pools, j.labels)
		if pool != nil && w.killed[lineage] <= pool.Reruns() && !w.served[lineage] {
			w.violate("invariant 8: job %d, killed by %d preemption(s), never ran to completion (rerun_preempted %d)", lineage, w.killed[lineage], pool.Reruns())
		}
	}
}

// busy reports whether a job for a self-hosted runner is queued or running.
func (w *World) busy() bool {
	for _, j := range w.jobs {
		if !j.hosted && j.status != "completed" {
			return true
		}
	}
	for _, m := range w.mach { // a warm runner being made (or replaced) is not settled yet
		if reconcile.IsWarmName(w.Cfg.NamePrefix, m.name) && !m.started && !m.finished {
			return true
		}
	}
	return false
}

// Run simulates passes passes (stepping the world between them), then drains.
func (w *World) Run(ctx context.Context, passes int) {
	for w.passes < passes {
		for range w.P.PassEvery {
			w.Step()
		}
		w.RunPass(ctx)
	}
	w.Drain(ctx)
}

// poolOf returns the pool a runner's name says it belongs to ("<prefix>-<pool>-…").
func poolOf(cfg *reconcile.Config, name string) string {
	for _, p := range cfg.Pools {
		if strings.HasPrefix(name, cfg.NamePrefix+"-"+p.Name+"-") {
			return p.Name
		}
	}
	return ""
}

// statusOf is what ghpoll makes of the world's (GitHub's) word for a job's status.
func statusOf(s string) reconcile.JobStatus {
	switch s {
	case "in_progress":
		return reconcile.JobInProgress
	case "completed":
		return reconcile.JobCompleted
	}
	return reconcile.JobWaiting
}

// conclusionOf is what ghpoll makes of the world's word for a job's conclusion.
func conclusionOf(s string) reconcile.Conclusion {
	switch s {
	case "failure":
		return reconcile.ConclusionFailed
	case "cancelled":
		return reconcile.ConclusionCancelled
	}
	return reconcile.ConclusionOther
}
