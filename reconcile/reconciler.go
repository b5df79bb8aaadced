// Package reconcile runs passes: it observes GitHub and the backends (observe.go), has
// the pure planner of package plan decide (plan.Compute), and applies the plan
// (apply.go, create.go). It declares the ports it consumes (ports.go): the adapters in
// ghpoll, gce, k8s and docker implement them, and it imports none of them.
package reconcile

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/reconcile-dev/reconcile/reconcile/internal/seam"
)

// Reconciler runs passes. It keeps nothing between passes that matters for
// correctness: GitHub and the backends hold all the state.
type Reconciler struct {
	Config *Config
	GitHub GitHub
	// Backends maps a pool name to its backend; pools may share one. A pool with no
	// backend (a dry run without a configuration) owns no runners.
	Backends map[string]Backend
	// Memo keeps what passes learn for later passes and processes (the Notes of
	// --cache): the jobs GitHub would not give to our runners, the pools' backoff.
	// Nil keeps them in this process only.
	Memo Memo
	// DryRun observes and plans, and changes nothing.
	DryRun bool
	// Pause is the record `reconcile down` pauses the installation in (pause.go):
	// while paused, passes create nothing. Nil: no record is shared.
	Pause Shared
	// CheckCreates: a dry run asks each pool's backend that can (Checker) whether the
	// first create it plans there would work; a create that would fail fails the pass.
	CheckCreates bool
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
	// memo is Memo, or this process's own when Memo is nil.
	memo Memo
	// health remembers, between the passes of one process, what the pools' creates
	// said of their platforms; the Memo carries it to the next process (health.go).
	health map[string]*poolHealth
}

func init() {
	seam.SetPlanner = func(rc, planner any) {
		rc.(*Reconciler).planner = planner.(func(Observed, Config, time.Time) Plan)
	}
	seam.InOrder = func(rc any) { rc.(*Reconciler).inOrder = true }
}

// RunOnce runs one pass: observe, plan, apply. It keeps going past errors and returns
// them joined; the summary says what was seen and done regardless.
func (rc *Reconciler) RunOnce(ctx context.Context) (Summary, error) {
	p := rc.newPass(ctx)
	obs := p.observe(ctx)
	planner := rc.planner
	if planner == nil {
		planner = Compute
	}
	plan := p.paused(ctx, planner(obs, *rc.Config, p.now))
	sum := p.apply(ctx, obs, plan)
	return sum, p.report(&sum)
}

// Observe is the first stage of a pass alone: what GitHub and the backends say, with
// what earlier passes noted. It only reads.
func (rc *Reconciler) Observe(ctx context.Context) Observed {
	return rc.newPass(ctx).observe(ctx)
}

func (rc *Reconciler) newPass(ctx context.Context) *pass {
	if rc.memo == nil {
		rc.memo = rc.Memo
		if rc.memo == nil {
			rc.memo, _ = OpenNotes(ctx, nil) // no store: cannot fail
		}
	}
	return &pass{rc: rc, log: zerolog.Ctx(ctx), now: rc.now(), owner: map[string]Backend{}, deleted: map[string]time.Time{},
		creating: map[string]string{}, stageErrs: map[Stage]int{}, done: map[Action]int{}, gone: map[Scope]error{},
		warned: map[string]bool{}, probing: map[poolOption]bool{}, probes: map[poolOption]probeResult{},
		waiting: map[string]int{}, released: map[string]bool{}, made: map[poolOption]time.Time{}}
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
