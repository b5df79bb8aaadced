package plan

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// Teardown is the plan of `reconcile down`: create nothing, re-run nothing, and
// remove every runner and registration of ours, with the lifecycle's own verdicts
// first (a finished runner is deleted as finished). A busy runner is removed only
// when removeBusy (the wait for its job is over: the job fails with it); until then
// it is left to finish its job, after which its machine stops and it goes as
// finished. Nothing is removed on evidence the pass does not have: a runner whose
// registrations could not be listed, or a registration in a scope whose jobs or a
// pool whose runners could not be seen. A busy registration is left: GitHub refuses
// to remove it until its job ends.
func Teardown(obs Observed, cfg Config, now time.Time, removeBusy bool) Plan {
	p := Compute(obs, cfg, now)
	p.Create, p.Waiting, p.WaitingForRoom, p.Preempted = nil, nil, nil, nil
	doomed, owned := map[string]bool{}, map[string]bool{}
	for _, d := range p.Delete {
		doomed[d.Runner.Name] = true
	}
	regs := map[regKey]Registration{}
	for _, r := range obs.Regs {
		if _, ours := ParseRunnerName(cfg.NamePrefix, r.Name); ours {
			regs[regKey{r.Scope, r.Name}] = r
		}
	}
	status := map[string]*PoolStatus{}
	for i := range p.Pools {
		p.Pools[i].Create = 0
		status[p.Pools[i].Pool] = &p.Pools[i]
	}
	for _, r := range obs.Runners {
		owned[r.Name] = true
		switch st := p.States[r.Name]; {
		case doomed[r.Name], st == StateUnknown, st == StateBusy && !removeBusy:
			continue
		}
		var regp *Registration
		if reg, ok := regs[regKey{r.Scope, r.Name}]; ok && !reg.Busy {
			regp = &reg // removed first: an idle runner cannot take a job while it goes
		}
		p.Delete = append(p.Delete, Delete{Runner: r, Reg: regp, Reason: ReasonDown})
		if st := status[r.Pool]; st != nil {
			st.Delete++
		}
	}
	p.Deregister = teardownRegs(obs, cfg, owned, p.Deregister)
	slices.SortFunc(p.Delete, func(a, b Delete) int { return strings.Compare(a.Runner.Name, b.Runner.Name) })
	return p
}

// teardownRegs adds to the ghosts every other registration of ours that has no runner
// and no job under way, where the pass saw all it needs to.
func teardownRegs(obs Observed, cfg Config, owned map[string]bool, ghosts []Deregister) []Deregister {
	if len(obs.Blind.Pools) > 0 {
		return ghosts // a runner not seen may own any of them
	}
	planned := map[regKey]bool{}
	for _, d := range ghosts {
		planned[regKey{d.Reg.Scope, d.Reg.Name}] = true
	}
	out := slices.Clone(ghosts)
	for _, r := range obs.Regs {
		_, ours := ParseRunnerName(cfg.NamePrefix, r.Name)
		if !ours || owned[r.Name] || r.Busy || planned[regKey{r.Scope, r.Name}] || obs.Blind.Regs[r.Scope] {
			continue
		}
		out = append(out, Deregister{Reg: r, Reason: ReasonDown})
	}
	slices.SortFunc(out, func(a, b Deregister) int {
		return cmp.Or(strings.Compare(a.Reg.Scope.String(), b.Reg.Scope.String()), strings.Compare(a.Reg.Name, b.Reg.Name))
	})
	return out
}
