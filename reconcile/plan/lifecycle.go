package plan

import (
	"time"
)

// State is what a runner is, by what GitHub and its backend say: the planner decides it
// once for each runner (Plan.States), and status, metrics and logs show that verdict.
type State string

// The states of a runner, and of a registration without one (ghost).
const (
	StateBooting    State = "booting"     // made, not online yet: registering, or starting
	StateIdle       State = "idle"        // online, waiting for a job
	StateBusy       State = "busy"        // running a job
	StateUnknown    State = "unknown"     // its registrations could not be listed: kept, counted as booting
	StateHolding    State = "holding"     // preempted and finished, kept as evidence until GitHub ends its job
	StateFinished   State = "finished"    // its machine stopped, or GitHub removed its registration after its job
	StateExpired    State = "expired"     // older than max_lifetime, deleted even if busy
	StateRecycled   State = "recycled"    // idle past max_idle_age, replaced by a fresh one
	StateBootFailed State = "boot-failed" // offline past boot_timeout
	StateGhost      State = "ghost"       // a registration of ours with no runner and no job waiting for it
)

// States lists every state the planner gives, for status and metrics.
var States = []State{StateBooting, StateIdle, StateBusy, StateUnknown, StateHolding, StateFinished, StateExpired,
	StateRecycled, StateBootFailed, StateGhost}

// classify decides what one runner is, once, and plans its deletion when a lifecycle
// rule says so.
func (pl *planner) classify(r Runner) {
	boot, _, life := pl.timeouts(r.Pool)
	age := pl.now.Sub(r.CreatedAt)
	reg, hasReg := pl.regs[regKey{r.Scope, r.Name}]
	var regp *Registration
	if hasReg && !reg.Busy {
		regp = &reg
	}
	st := pl.poolStatus(r.Pool)
	switch {
	case r.Phase == PhaseFinished && pl.holding[r.Name]:
		pl.plan.States[r.Name] = StateHolding // kept until GitHub ends its job: the preemption's evidence
	case r.Phase == PhaseFinished:
		pl.doom(r, regp, StateFinished, ReasonFinished)
	case age >= life:
		pl.doom(r, regp, StateExpired, ReasonExpired)
	case pl.obs.Blind.Regs[r.Scope]:
		// Without its registration we cannot tell booting from busy: keep it, and
		// count it as supply so that no duplicate is made meanwhile.
		pl.plan.States[r.Name] = StateUnknown
		pl.addSupply(r)
		pl.tally(st, r, &st.Booting, 1)
	case !hasReg && age < GoneGrace:
		pl.plan.States[r.Name] = StateBooting // made, not registered yet
		pl.tally(st, r, &st.Booting, 1)
	case !hasReg:
		pl.doom(r, nil, StateFinished, ReasonGone) // GitHub removed the registration: it ran its job
	case reg.Busy:
		pl.plan.States[r.Name] = StateBusy
		pl.tally(st, r, &st.Busy, 1)
	case reg.Online && pl.recycles(r, age):
		pl.doom(r, regp, StateRecycled, ReasonRecycled)
	case reg.Online:
		pl.plan.States[r.Name] = StateIdle
		pl.addSupply(r)
		pl.tally(st, r, pl.count(st, r, &st.Idle), 1)
	case age < boot:
		pl.plan.States[r.Name] = StateBooting
		pl.addSupply(r)
		pl.tally(st, r, pl.count(st, r, &st.Booting), 1)
	default:
		pl.doom(r, regp, StateBootFailed, ReasonBootTimeout)
	}
}

// recycles reports whether an idle runner of a warm pool has been up past its
// max_idle_age: a long-idle machine carries stale images and tokens.
func (pl *planner) recycles(r Runner, age time.Duration) bool {
	p := pl.cfg.Pool(r.Pool)
	return p != nil && p.maxIdleAge() > 0 && age >= p.maxIdleAge()
}

// count is where a booting or idle runner is counted: Warm for a warm runner, else
// the given counter.
func (pl *planner) count(st *PoolStatus, r Runner, other *int) *int {
	if IsWarmName(pl.cfg.NamePrefix, r.Name) {
		return &st.Warm
	}
	return other
}

// tally adds d to the pool's count n of a state (one of its Booting, Idle, Busy and
// Warm) and to the same count of the runner's option.
func (pl *planner) tally(st *PoolStatus, r Runner, n *int, d int) {
	*n += d
	var state string
	switch n {
	case &st.Booting:
		state = string(StateBooting)
	case &st.Idle:
		state = string(StateIdle)
	case &st.Busy:
		state = string(StateBusy)
	case &st.Warm:
		state = "warm"
	}
	if st.ByOption == nil {
		st.ByOption = map[string]map[string]int{}
	}
	if st.ByOption[r.Option] == nil {
		st.ByOption[r.Option] = map[string]int{}
	}
	st.ByOption[r.Option][state] += d
}

func (pl *planner) addSupply(r Runner) {
	k := poolScope{r.Pool, r.Scope}
	pl.supply[k] = append(pl.supply[k], r)
}

// doom plans the runner's deletion, in the state that dooms it.
func (pl *planner) doom(r Runner, reg *Registration, state State, why Reason) {
	pl.plan.States[r.Name] = state
	pl.doomed[r.Name] = true
	pl.plan.Delete = append(pl.plan.Delete, Delete{Runner: r, Reg: reg, Reason: why})
	pl.poolStatus(r.Pool).Delete++
}
