package reconcile

import (
	"encoding/json"
	"time"
)

// Runner time. Each pass credits every runner of ours with the time since the last
// pass saw it (since it was made, the first time), in the state the planner gives it
// now: booting, idle (warm runners included) or busy, to the repository whose job it
// runs, or was made for. A pass sees the world at its own moments, so a change of
// state is placed between the two passes that saw either side of it, half to each:
// each figure is off by at most half an interval per change of state. A runner made
// since the last pass looked was booting when it was made. What the last pass saw is
// kept in the notes (MemoUsage), so that --once processes continue the accounts, as
// the counters they feed do.

// UsageKey is an account: a pool's runners for a repository, in a state (empty for
// the jobs served).
type UsageKey struct {
	Pool  string
	Repo  Scope
	State State
}

// Usage is what a pass credits: runner seconds by account, and the jobs its runners
// were first seen running (each job once).
type Usage struct {
	Seconds map[UsageKey]float64
	Served  map[UsageKey]int
}

// usageMark is what the last pass saw of a runner.
type usageMark struct {
	Pool  string `json:"pool"`
	At    int64  `json:"at"`              // Unix seconds: when it was last credited
	State State  `json:"state,omitempty"` // and in which account
	Repo  string `json:"repo,omitempty"`
	Job   int64  `json:"job,omitempty"` // the job it was last seen running
}

// repo is the repository the mark credited, or now's.
func (m usageMark) repo(now Scope) Scope {
	if r := ParseScope(m.Repo); r != (Scope{}) {
		return r
	}
	return now
}

// MemoUsage holds, by runner, what the last pass credited (usage.go).
const MemoUsage MemoKind = "usage"

// creditedAs is the account each lifecycle state's time goes to. A runner that never
// came online was booting all along; one recycled was idle; a finished one (its
// machine stopped, or its job done and its registration gone) costs nothing more
// worth counting, and one whose state is unknown is credited when it is known.
var creditedAs = map[State]State{StateBooting: StateBooting, StateBootFailed: StateBooting, StateIdle: StateIdle,
	StateRecycled: StateIdle, StateBusy: StateBusy, StateExpired: StateBusy}

// account credits the runners observed, and notes what it saw for the next pass.
func (p *pass) account(obs Observed, plan Plan) Usage {
	marks := map[string]usageMark{}
	v, seen := p.rc.memo.Recall(MemoUsage, "")
	if seen && json.Unmarshal([]byte(v), &marks) != nil {
		seen = false // unreadable: the runners are credited from their creation as they are now
	}
	u := Usage{Seconds: map[UsageKey]float64{}, Served: map[UsageKey]int{}}
	next := make(map[string]usageMark, len(obs.Runners))
	for name, m := range marks {
		if obs.Blind.Pools[m.Pool] {
			next[name] = m // unseen this pass: credited when next seen, from its mark
		}
	}
	for _, r := range obs.Runners {
		m, ok := marks[r.Name]
		if !ok && seen {
			m.State = StateBooting // made since the last pass looked: booting from its creation
		}
		repo := r.Repo
		job, busy := obs.Running[r.Name]
		if busy && job.Repo != (Scope{}) {
			repo = job.Repo
		}
		since := r.CreatedAt
		if last := time.Unix(m.At, 0); m.At > 0 && last.After(since) {
			since = last
		}
		st, ok := creditedAs[plan.States[r.Name]]
		if d := p.now.Sub(since).Seconds(); d > 0 {
			if m.State != "" && m.State != st {
				// It changed state between the passes, when is not known: half each
				// (a runner that finished spent the first half as it was).
				u.Seconds[UsageKey{r.Pool, m.repo(repo), m.State}] += d / 2
				d /= 2
			}
			if ok {
				u.Seconds[UsageKey{r.Pool, repo, st}] += d
			}
		}
		mark := usageMark{Pool: r.Pool, At: p.now.Unix(), Job: m.Job, State: st, Repo: repo.String()}
		if busy && job.ID != 0 && job.ID != m.Job {
			u.Served[UsageKey{Pool: r.Pool, Repo: repo}]++
			mark.Job = job.ID
		}
		next[r.Name] = mark
	}
	data, _ := json.Marshal(next) // plain values: cannot fail
	p.rc.memo.Remember(MemoUsage, "", string(data))
	return u
}
