package plan

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

type regKey struct {
	scope Scope
	name  string
}

type poolScope struct {
	pool  string
	scope Scope
}

// Compute returns the actions that move obs toward the desired state: per pool and
// scope, as many booting or idle runners as queued jobs, within max_runners, and
// nothing left behind. It does no I/O.
func Compute(obs Observed, cfg Config, now time.Time) Plan {
	pl := planner{cfg: cfg, obs: obs, now: now,
		regs:    map[regKey]Registration{},
		doomed:  map[string]bool{},
		taken:   map[string]bool{},
		owned:   map[string]bool{},
		pending: map[Scope]map[int64]bool{},
		supply:  map[poolScope][]Runner{},
		demand:  map[poolScope][]Job{},
		queued:  map[int64]bool{},
		status:  map[string]*PoolStatus{},
		holding: map[string]bool{},
		runners: slices.Clone(obs.Runners),
		plan:    Plan{States: map[string]State{}},
	}
	return pl.compute()
}

type planner struct {
	cfg     Config
	obs     Observed
	now     time.Time
	runners []Runner
	regs    map[regKey]Registration
	doomed  map[string]bool          // runners planned for deletion
	holding map[string]bool          // finished runners kept as a preemption's evidence
	taken   map[string]bool          // names of runners of any state, of registrations, and of planned creates
	owned   map[string]bool          // names of runners, of any state
	pending map[Scope]map[int64]bool // jobs with a fresh registration of ours and no runner yet
	supply  map[poolScope][]Runner
	demand  map[poolScope][]Job
	queued  map[int64]bool
	status  map[string]*PoolStatus
	plan    Plan
}

func (pl *planner) poolStatus(name string) *PoolStatus {
	s, ok := pl.status[name]
	if !ok {
		s = &PoolStatus{Pool: name}
		pl.status[name] = s
	}
	return s
}

// timeouts returns the pool's timeouts; runners of a pool no longer configured get
// the defaults, so they are still cleaned up.
func (pl *planner) timeouts(pool string) (boot, idle, life time.Duration) {
	if p := pl.cfg.Pool(pool); p != nil {
		return time.Duration(p.BootTimeout), time.Duration(p.IdleTimeout), time.Duration(p.MaxLifetime)
	}
	return DefaultBootTimeout, DefaultIdleTimeout, DefaultMaxLifetime
}

func (pl *planner) compute() Plan {
	for _, p := range pl.cfg.Pools {
		pl.poolStatus(p.Name)
	}
	for _, r := range pl.obs.Regs {
		if _, ours := ParseRunnerName(pl.cfg.NamePrefix, r.Name); ours {
			pl.regs[regKey{r.Scope, r.Name}] = r
			// A registration holds its name until it is gone: a new runner of that
			// name could not register (GitHub answers 409).
			pl.taken[r.Name] = true
		}
	}
	slices.SortFunc(pl.runners, func(a, b Runner) int { return strings.Compare(a.Name, b.Name) })
	pl.judgePreempted()
	for _, r := range pl.runners {
		pl.taken[r.Name] = true
		pl.owned[r.Name] = true
		pl.classify(r)
	}
	pl.collectPending()
	pl.collectDemand()
	keys := make([]poolScope, 0, len(pl.demand)+len(pl.supply))
	for k := range pl.demand {
		keys = append(keys, k)
	}
	for k := range pl.supply {
		if _, dup := pl.demand[k]; !dup {
			keys = append(keys, k)
		}
	}
	for _, p := range pl.cfg.Pools {
		if n := p.MinIdleAt(pl.now); n > 0 {
			pl.poolStatus(p.Name).WarmTarget = n
			for _, sc := range pl.cfg.WarmScopes(p) {
				k := poolScope{p.Name, sc}
				_, d := pl.demand[k]
				if _, sp := pl.supply[k]; !d && !sp {
					keys = append(keys, k)
				}
			}
		}
	}
	slices.SortFunc(keys, func(a, b poolScope) int {
		return cmp.Or(strings.Compare(a.pool, b.pool), strings.Compare(a.scope.String(), b.scope.String()))
	})
	wanted := map[string][]Create{}
	for _, k := range keys {
		wanted[k.pool] = append(wanted[k.pool], pl.balance(k)...)
	}
	for _, p := range pl.cfg.Pools {
		pl.capCreates(p, wanted[p.Name])
	}
	pl.sweepGhosts()
	return pl.finish()
}

// collectPending finds the registrations of ours that have no runner, offline and idle,
// made less than RegistrationGrace ago: another pass is creating their machines.
func (pl *planner) collectPending() {
	for _, r := range pl.obs.Regs {
		jobID, ours := ParseRunnerName(pl.cfg.NamePrefix, r.Name)
		at, known := r.Registered()
		if !ours || pl.owned[r.Name] || r.Online || r.Busy || !known || pl.now.Sub(at) >= RegistrationGrace {
			continue
		}
		if pl.pending[r.Scope] == nil {
			pl.pending[r.Scope] = map[int64]bool{}
		}
		pl.pending[r.Scope][jobID] = true
	}
}

// collectDemand matches every queued job to its pool, oldest job first.
func (pl *planner) collectDemand() {
	jobs := slices.Clone(pl.obs.Jobs)
	slices.SortFunc(jobs, func(a, b Job) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	for _, j := range jobs {
		if pl.queued[j.ID] {
			continue // listed twice: its run changed status between two lists
		}
		pl.queued[j.ID] = true
		p := MatchPool(pl.cfg.Pools, j.Labels)
		if p == nil {
			if slices.ContainsFunc(j.Labels, func(l string) bool { return strings.EqualFold(l, "self-hosted") }) {
				pl.plan.NoPool = append(pl.plan.NoPool, j)
			}
			continue // not ours to serve: GitHub-hosted, or labels no pool has
		}
		if why := Refusal(pl.cfg.GitHub, j); why != "" {
			pl.plan.Refused = append(pl.plan.Refused, Refused{Job: j, Pool: p.Name, Reason: why})
			continue
		}
		if pl.obs.Unservable[j.ID] {
			pl.poolStatus(p.Name).Unservable++
			continue
		}
		k := poolScope{p.Name, pl.scopeOf(j)}
		pl.demand[k] = append(pl.demand[k], j)
		st := pl.poolStatus(p.Name)
		if st.Queued == 0 { // the jobs come oldest first
			st.OldestQueued = max(pl.now.Sub(j.CreatedAt), 0)
		}
		st.Queued++
	}
}

// scopeOf is where a runner for the job registers.
func (pl *planner) scopeOf(j Job) Scope { return pl.cfg.RunnerScopeOf(j.Repo) }

// sweepGhosts removes registrations of ours that have no runner, are offline and idle,
// and whose job no longer waits: what is left when a pass died between registering a
// runner and creating it, and another runner took the job.
func (pl *planner) sweepGhosts() {
	if len(pl.obs.Blind.Pools) > 0 {
		return // a runner we cannot see may own any of them
	}
	for _, r := range pl.obs.Regs {
		jobID, ours := ParseRunnerName(pl.cfg.NamePrefix, r.Name)
		if !ours || pl.owned[r.Name] || r.Online || r.Busy || pl.queued[jobID] || pl.obs.Blind.Jobs[r.Scope] {
			continue
		}
		if at, known := r.Registered(); IsWarmName(pl.cfg.NamePrefix, r.Name) && known && pl.now.Sub(at) < RegistrationGrace {
			continue // another pass is creating this warm runner's machine
		}
		pl.plan.Deregister = append(pl.plan.Deregister, Deregister{Reg: r, Reason: ReasonGhost})
	}
}

func (pl *planner) finish() Plan {
	p := pl.plan
	slices.SortFunc(p.Create, func(a, b Create) int { return cmp.Or(cmp.Compare(a.Turn, b.Turn), strings.Compare(a.Name, b.Name)) })
	slices.SortFunc(p.Delete, func(a, b Delete) int { return strings.Compare(a.Runner.Name, b.Runner.Name) })
	slices.SortFunc(p.Unservable, func(a, b Unservable) int { return cmp.Compare(a.Job.ID, b.Job.ID) })
	slices.SortFunc(p.Refused, func(a, b Refused) int { return cmp.Compare(a.Job.ID, b.Job.ID) })
	slices.SortFunc(p.Waiting, func(a, b Waiting) int {
		return cmp.Or(cmp.Compare(a.Create.Turn, b.Create.Turn), strings.Compare(a.Create.Name, b.Create.Name))
	})
	slices.SortFunc(p.Deregister, func(a, b Deregister) int {
		return cmp.Or(strings.Compare(a.Reg.Scope.String(), b.Reg.Scope.String()), strings.Compare(a.Reg.Name, b.Reg.Name))
	})
	for _, s := range pl.status {
		p.Pools = append(p.Pools, *s)
	}
	order := map[string]int{}
	for i, cp := range pl.cfg.Pools {
		order[cp.Name] = i
	}
	slices.SortFunc(p.Pools, func(a, b PoolStatus) int {
		ai, aok := order[a.Pool]
		bi, bok := order[b.Pool]
		return cmp.Or(cmp.Compare(b2i(!aok), b2i(!bok)), cmp.Compare(ai, bi), strings.Compare(a.Pool, b.Pool))
	})
	return p
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
