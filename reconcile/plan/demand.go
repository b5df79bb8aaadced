package plan

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// balance compares demand with supply for one pool in one scope. It returns the creates
// the demand wants (capped later, per pool) and plans the surplus deletions.
func (pl *planner) balance(k poolScope) []Create {
	if pl.obs.Blind.Pools[k.pool] {
		return nil // its runners are unknown: creating could duplicate, deleting could kill
	}
	jobs, supply := pl.servable(k), pl.supply[k]
	if pl.obs.Blind.Regs[k.scope] {
		// Its registrations are unknown: one may be another pass's create under way.
		return nil
	}
	pending := 0
	for _, j := range jobs {
		if pl.pending[k.scope][j.ID] {
			pending++
		}
	}
	pl.poolStatus(k.pool).Booting += pending
	warm := pl.warmTarget(k)
	var warming map[string]bool
	if warm > 0 {
		warming = pl.pendingWarm(k)
		pl.poolStatus(k.pool).Warm += len(warming)
		pending += len(warming)
	}
	have := len(supply) + pending
	switch {
	case len(jobs)+warm > have:
		// Jobs first: runners named after the jobs no runner was made for; the rest
		// of the shortfall is warm runners.
		short := len(jobs) + warm - have
		out := pl.want(k, jobs, supply, short)
		return append(out, pl.wantWarm(k, short-len(out), warming)...)
	case have > len(jobs)+warm && !pl.obs.Blind.Jobs[k.scope]:
		pl.trim(k, supply, min(have-len(jobs)-warm, len(supply)))
	}
	return nil
}

// pendingWarm returns the fresh warm registrations of the pool in the scope that have
// no runner: another pass is creating them.
func (pl *planner) pendingWarm(k poolScope) map[string]bool {
	out := map[string]bool{}
	for _, r := range pl.obs.Regs {
		at, known := r.Registered()
		if r.Scope == k.scope && !pl.owned[r.Name] && !r.Online && !r.Busy && known && pl.now.Sub(at) < RegistrationGrace &&
			IsWarmName(pl.cfg.NamePrefix, r.Name) && strings.HasPrefix(r.Name, pl.cfg.NamePrefix+"-"+k.pool+"-w") {
			out[r.Name] = true
		}
	}
	return out
}

// warmTarget is how many runners the pool keeps warm in the scope now.
func (pl *planner) warmTarget(k poolScope) int {
	p := pl.cfg.Pool(k.pool)
	if p == nil || !slices.Contains(pl.cfg.WarmScopes(*p), k.scope) {
		return 0
	}
	return p.MinIdleAt(pl.now)
}

// wantWarm names n warm runners for the scope, in the lowest slots that no live
// runner, and no create under way (pending: pendingWarm), holds (a slot whose runner is being deleted gets a
// retry name).
func (pl *planner) wantWarm(k poolScope, n int, pending map[string]bool) []Create {
	p := pl.cfg.Pool(k.pool)
	var out []Create
	for slot := 1; len(out) < n && slot <= p.MaxRunners; slot++ {
		held := false
		name := ""
		for retry := 0; retry <= maxNameRetries; retry++ {
			nm := WarmRunnerName(pl.cfg.NamePrefix, k.pool, k.scope, slot, retry)
			if pl.owned[nm] && !pl.doomed[nm] || pending[nm] {
				held = true
				break
			}
			if name == "" && !pl.taken[nm] {
				name = nm
			}
		}
		if held || name == "" {
			continue
		}
		pl.taken[name] = true
		out = append(out, Create{RunnerSpec: RunnerSpec{Name: name, Pool: k.pool, Scope: k.scope, Repo: k.scope,
			Labels: slices.Clone(p.Labels), MaxLifetime: time.Duration(p.MaxLifetime)}, Reason: ReasonWarm})
	}
	return out
}

// servable returns the pool's queued jobs in a scope, less those GitHub will not give
// to our runners. The evidence is an idle runner of the pool and scope, older than
// idle_timeout, beside a job that has been queued for idle_timeout while that runner
// existed: GitHub gives a queued job to an idle runner whose labels cover it in
// seconds, so it is not giving that job to us (runs-on names a runner group, or an org
// runner group does not allow the repository or the workflow). Such a job no longer
// holds the runner; any runner of the pool can still take it if GitHub allows.
func (pl *planner) servable(k poolScope) []Job {
	jobs := pl.demand[k]
	_, idle, _ := pl.timeouts(k.pool)
	var witness *Runner
	for i, r := range pl.supply[k] {
		if pl.plan.States[r.Name] == StateIdle && pl.now.Sub(r.CreatedAt) >= idle &&
			(witness == nil || r.CreatedAt.Before(witness.CreatedAt)) {
			witness = &pl.supply[k][i]
		}
	}
	if witness == nil {
		return jobs
	}
	var out []Job
	st := pl.poolStatus(k.pool)
	for _, j := range jobs {
		since := j.CreatedAt
		if witness.CreatedAt.After(since) {
			since = witness.CreatedAt
		}
		if pl.now.Sub(since) < idle {
			out = append(out, j)
			continue
		}
		pl.plan.Unservable = append(pl.plan.Unservable, Unservable{Job: j, Pool: k.pool, Runner: witness.Name})
		st.Queued--
		st.Unservable++
	}
	return out
}

// want names n new runners after the oldest queued jobs that no booting or idle
// runner was made for.
func (pl *planner) want(k poolScope, jobs []Job, supply []Runner, n int) []Create {
	served := map[int64]bool{}
	for _, r := range supply {
		served[r.JobID] = true
	}
	for id := range pl.pending[k.scope] {
		served[id] = true // its runner is being created by another pass
	}
	p := pl.cfg.Pool(k.pool)
	var out []Create
	for _, j := range jobs {
		if len(out) == n {
			break
		}
		if served[j.ID] {
			continue
		}
		name, ok := pl.freeName(k.pool, j.ID)
		if !ok {
			continue
		}
		pl.taken[name] = true
		out = append(out, Create{RunnerSpec: RunnerSpec{Name: name, Pool: k.pool, Scope: k.scope, Repo: j.Repo, JobID: j.ID, RunID: j.RunID,
			Labels: slices.Clone(p.Labels), MaxLifetime: time.Duration(p.MaxLifetime)}, Reason: ReasonDemand, QueuedAt: j.CreatedAt})
	}
	return out
}

// freeName returns the first name for the job that no runner or registration holds:
// the plain one, or a retry when a runner made for the job took another one, is being
// deleted, or left a registration that GitHub has not let go of yet.
func (pl *planner) freeName(pool string, jobID int64) (string, bool) {
	for retry := 0; retry <= maxNameRetries; retry++ {
		if name := RunnerName(pl.cfg.NamePrefix, pool, jobID, retry); !pl.taken[name] {
			return name, true
		}
	}
	return "", false
}

// trim deletes n surplus runners older than idle_timeout: idle ones before booting
// ones, oldest first.
func (pl *planner) trim(k poolScope, supply []Runner, n int) {
	_, idle, _ := pl.timeouts(k.pool)
	cands := slices.Clone(supply)
	slices.SortFunc(cands, func(a, b Runner) int {
		return cmp.Or(
			cmp.Compare(b2i(pl.plan.States[b.Name] == StateIdle), b2i(pl.plan.States[a.Name] == StateIdle)),
			a.CreatedAt.Compare(b.CreatedAt),
			strings.Compare(a.Name, b.Name))
	})
	for _, r := range cands {
		if n == 0 {
			return
		}
		if pl.plan.States[r.Name] == StateUnknown || pl.now.Sub(r.CreatedAt) < idle {
			continue
		}
		var regp *Registration
		if reg, ok := pl.regs[regKey{r.Scope, r.Name}]; ok {
			regp = &reg
		}
		st := pl.poolStatus(r.Pool)
		if pl.plan.States[r.Name] == StateIdle {
			pl.tally(st, r, pl.count(st, r, &st.Idle), -1)
		} else {
			pl.tally(st, r, pl.count(st, r, &st.Booting), -1)
		}
		pl.doom(r, regp, pl.plan.States[r.Name], ReasonSurplus)
		n--
	}
}

// share orders a pool's creates: jobs first, in fair-share turns (fair.go); then warm
// runners. Each create's Turn is its place.
func (pl *planner) share(p Pool, wanted []Create) []Create {
	created := map[int64]time.Time{}
	for _, js := range pl.demand {
		for _, j := range js {
			created[j.ID] = j.CreatedAt
		}
	}
	held := map[Scope]int{}
	for _, r := range pl.runners {
		if r.Pool != p.Name || r.Phase == PhaseFinished || pl.doomed[r.Name] { // as Room counts
			continue
		}
		// A busy runner is held by the repository whose job it runs: an org runner
		// may run another repository's job than the one it was made for.
		if j, busy := pl.obs.Running[r.Name]; busy && j.Repo != (Scope{}) {
			held[j.Repo]++
		} else if r.JobID != 0 {
			held[r.Repo]++
		}
	}
	var jobs, warm []Create
	for _, c := range wanted {
		if c.Reason == ReasonWarm {
			warm = append(warm, c)
		} else {
			jobs = append(jobs, c)
		}
	}
	out := append(fairOrder(jobs, held, pl.cfg.WeightOf, created), warm...)
	for i := range out {
		out[i].Turn = i
	}
	return out
}

// capCreates keeps, across the pool's scopes, the creates the fair share gives the
// room under max_runners to (runners planned for deletion free their slots); the jobs
// left wait for room, each knowing how many go before it.
func (pl *planner) capCreates(p Pool, wanted []Create) {
	if len(wanted) == 0 {
		return
	}
	room := NewRoom(pl.cfg, pl.runners, func(r Runner) bool { return pl.doomed[r.Name] }).Free(p.Name)
	wanted = pl.share(p, wanted)
	if len(wanted) > room {
		for i, c := range wanted[room:] {
			pl.plan.WaitingForRoom = append(pl.plan.WaitingForRoom, RoomWait{Create: c, Ahead: i})
		}
		pl.poolStatus(p.Name).WaitingForRoom += len(wanted) - room
		wanted = wanted[:room]
	}
	if len(wanted) == 0 {
		return
	}
	if h, held := pl.obs.Held[p.Name]; held {
		// In backoff: the oldest job's create probes when a probe is due; the others
		// wait for capacity, and cost no registration.
		keep := 0
		if h.Probe {
			keep = 1
		}
		for _, c := range wanted[keep:] {
			pl.plan.Waiting = append(pl.plan.Waiting, Waiting{Create: c, Class: h.Class})
		}
		pl.poolStatus(p.Name).Waiting += len(wanted) - keep
		wanted = wanted[:keep]
		for i := range wanted {
			wanted[i].Probe = true
		}
	}
	pl.plan.Create = append(pl.plan.Create, wanted...)
	pl.poolStatus(p.Name).Create += len(wanted)
}
