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
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/reconcile-dev/reconcile/reconcile"
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
	status    reconcile.JobStatus // GitHub's queued (waiting), in_progress, completed
	created   time.Time
	hosted    bool
	runner    string
	doneAt    time.Time
	next      *job // the dependent stage, queued when this one ends
	cleanRuns int  // fault-free passes that ended while it was queued
	// unassignable: GitHub never gives it to our runners, whatever their labels.
	unassignable bool
	length       time.Duration // how long it runs; zero: 30 s to MaxJobLength
	// What GitHub reports once it ends: conclusion, when; the run attempt it belongs
	// to; and its lineage (the first job's id, kept by re-runs). failAt: its runner was
	// preempted, and GitHub fails the job then.
	conclusion  reconcile.Conclusion
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
	// skipped counts, for each repository waiting in a pool with no runner of it, the
	// pool's creates made for others since (invariant 10).
	skipped map[poolRepo]int
	// created lists the runners made, in order (scripted scenarios read it).
	created []Made
	// spent is the world's own record of runner time, by pool and state (booting,
	// idle, busy), a step at a time; accounted is what the passes credited
	// (reconcile.Usage), the same way.
	spent, accounted map[string]map[reconcile.State]time.Duration
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
		killed: map[int64]int{}, served: map[int64]bool{}, outage: map[string]outage{}, backoff: map[string]bool{}, skipped: map[poolRepo]int{}, spent: map[string]map[reconcile.State]time.Duration{}, accounted: map[string]map[reconcile.State]time.Duration{}}
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
	w.checkDrained()
}

// checkDrained judges invariants 4 and 8 once the world has drained. What is left is
// exactly the scheduled min_idle runners of each warm scope, idle (warm ones, or a
// job's runner kept as one of them); nothing else.
func (w *World) checkDrained() {
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
		if j := w.jobs[id]; j.status != reconcile.JobCompleted && !j.hosted {
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
		if !j.hosted && j.status != reconcile.JobCompleted {
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

// whyCancelled starts the reason of a job a person cancelled.
const whyCancelled = "withdrawn by a person"

// concluded is GitHub's word for a conclusion, for the log.
func concluded(c reconcile.Conclusion) string {
	switch c {
	case reconcile.ConclusionFailed:
		return "failed"
	case reconcile.ConclusionCancelled:
		return "interrupted"
	}
	return "success"
}
