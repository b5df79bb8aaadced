package reconcile

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// Status is what `reconcile status` shows: the runners this installation owns, by
// pool, and the queued jobs, with the pool that serves each or why none will.
type Status struct {
	At      time.Time      `json:"at"`
	Runners []RunnerStatus `json:"runners"`
	Queue   []QueuedStatus `json:"queue"`
	// Errors are what the observation could not see (a repository, a backend); the
	// rest of the status stands without it.
	Errors []string `json:"errors,omitempty"`
	// Backoff lists the pools every option of which is in backoff (health.go).
	Backoff []BackoffStatus `json:"backoff,omitempty"`
	// Paused is the pause `reconcile down` set, if the passes are paused (pause.go).
	Paused *Pause `json:"paused,omitempty"`
}

// BackoffStatus is a pool in backoff: its jobs wait for capacity.
type BackoffStatus struct {
	Pool    string       `json:"pool"`
	Reason  FailureClass `json:"reason"`
	Since   time.Time    `json:"since"`
	Message string       `json:"message,omitempty"`
	// NextProbe is when a probe goes next; the zero time when the next pass probes.
	NextProbe time.Time `json:"next_probe,omitzero"`
}

// RunnerStatus is one runner, or one ghost registration.
type RunnerStatus struct {
	Name   string        `json:"name"`
	Pool   string        `json:"pool"`
	Scope  string        `json:"scope"` // where it is registered
	State  State         `json:"state"` // the planner's verdict (Plan.States)
	Age    time.Duration `json:"-"`
	AgeSec int64         `json:"age_seconds"`
	Warm   bool          `json:"warm,omitempty"`
	JobID  int64         `json:"job_id,omitempty"` // the job it was made for
	Repo   string        `json:"repo,omitempty"`   // that job's repository
	// RunsJob is the job it runs now, as GitHub's listing of its repository says (a
	// runner may take any job its labels fit, not only the one it was made for).
	RunsJob  int64  `json:"runs_job_id,omitempty"`
	RunsRepo string `json:"runs_repo,omitempty"`
	Location string `json:"location,omitempty"`
	// Next is what the next pass does with it: "" (keep), or delete and why.
	Next string `json:"next,omitempty"`
}

// QueuedStatus is one queued job that asks for a self-hosted runner.
type QueuedStatus struct {
	JobID  int64         `json:"job_id"`
	Repo   string        `json:"repo"`
	Name   string        `json:"name"`
	Labels []string      `json:"labels"`
	Age    time.Duration `json:"-"`
	AgeSec int64         `json:"age_seconds"`
	Pool   string        `json:"pool,omitempty"`
	// Runner is the runner made or to be made for it; "" when none is (yet).
	Runner string `json:"runner,omitempty"`
	// NotServed says why no runner of ours will serve it ("" if one will).
	NotServed Reason `json:"not_served,omitempty"`
	// Waiting says why its pool makes no runner for it now: "capacity" while the pool
	// is in backoff (Status.Backoff says why and until when), "room" while the pool is
	// full and the fair share has Ahead of its waiting jobs go first.
	Waiting string `json:"waiting,omitempty"`
	Ahead   int    `json:"ahead,omitempty"`
}

// QueuedStatus.Waiting for a job whose pool is in backoff, or full.
const (
	WaitingCapacity = "capacity"
	WaitingRoom     = "room"
)

// NotServedText explains a NotServed reason to a person.
var NotServedText = map[Reason]string{
	ReasonNoPool:          "no pool has all its labels",
	ReasonPublicRepo:      "public repository (github.allow_public_repos is false)",
	ReasonForkPullRequest: "pull request from a fork (github.allow_fork_pull_requests is false)",
	ReasonUnservable:      "GitHub does not give it to our idle runner (a runner group excludes it)",
}

// BuildStatus turns a pass's observation and plan into a status, as of now.
func BuildStatus(cfg Config, obs Observed, plan Plan, now time.Time) Status {
	st := Status{At: now, Queue: []QueuedStatus{}}
	var madeFor map[int64]string
	st.Runners, madeFor = runnerRows(cfg, obs, plan, now)
	// Runners that are up or coming up and not named for a queued job serve the
	// queue's jobs that have none of their own, oldest first, as GitHub assigns them.
	queued := map[int64]bool{}
	for _, j := range obs.Jobs {
		queued[j.ID] = true
	}
	spare := map[poolIn]int{}
	for _, r := range st.Runners {
		if (r.State == StateIdle || r.State == StateBooting) && r.Next == "" && !queued[r.JobID] {
			spare[poolIn{r.Pool, ParseScope(r.Scope)}]++
		}
	}
	st.Queue = queueStatus(cfg, obs, madeFor, spare, now)
	waiting := map[int64]bool{}
	for _, w := range plan.Waiting {
		waiting[w.Create.JobID] = true
	}
	ahead := map[int64]int{}
	for _, w := range plan.WaitingForRoom {
		ahead[w.Create.JobID] = w.Ahead
	}
	for i, q := range st.Queue {
		if q.Runner != "" || q.NotServed != "" {
			continue
		}
		if waiting[q.JobID] {
			st.Queue[i].Waiting = WaitingCapacity
		} else if n, ok := ahead[q.JobID]; ok {
			st.Queue[i].Waiting, st.Queue[i].Ahead = WaitingRoom, n
		}
	}
	for _, p := range cfg.Pools {
		if h, held := obs.Held[p.Name]; held {
			st.Backoff = append(st.Backoff, BackoffStatus{Pool: p.Name, Reason: h.Class, Since: h.Since, Message: h.Message, NextProbe: h.Next})
		}
	}
	return st
}

// runnerRows returns a row for each runner, in the planner's verdict, and for each
// ghost registration, by pool, the oldest first; and, by job, the runner made or to be
// made for it.
func runnerRows(cfg Config, obs Observed, plan Plan, now time.Time) ([]RunnerStatus, map[int64]string) {
	rows := []RunnerStatus{}
	next := map[string]string{}
	for _, d := range plan.Delete {
		next[d.Runner.Name] = "delete: " + string(d.Reason)
	}
	madeFor := map[int64]string{}
	for _, r := range obs.Runners {
		runs := obs.Running[r.Name]
		rows = append(rows, RunnerStatus{
			RunsJob: runs.ID, RunsRepo: scopeText(runs.Repo),
			Name: r.Name, Pool: r.Pool, Scope: r.Scope.String(), State: plan.States[r.Name],
			Age: now.Sub(r.CreatedAt), Warm: IsWarmName(cfg.NamePrefix, r.Name), JobID: r.JobID, Repo: scopeText(r.Repo),
			Location: r.Location, Next: next[r.Name], AgeSec: int64(now.Sub(r.CreatedAt).Seconds()),
		})
		if r.JobID != 0 {
			madeFor[r.JobID] = r.Name
		}
	}
	for _, d := range plan.Deregister {
		if d.Reason != ReasonGhost {
			continue
		}
		jobID, _ := ParseRunnerName(cfg.NamePrefix, d.Reg.Name)
		rows = append(rows, RunnerStatus{Name: d.Reg.Name, Scope: d.Reg.Scope.String(), State: StateGhost,
			JobID: jobID, Next: "deregister: ghost"})
	}
	for _, c := range plan.Create {
		if c.JobID != 0 && madeFor[c.JobID] == "" {
			madeFor[c.JobID] = c.Name + " (to create)"
		}
	}
	slices.SortStableFunc(rows, func(a, b RunnerStatus) int {
		return cmp.Or(cmp.Compare(poolIndex(cfg, a.Pool), poolIndex(cfg, b.Pool)), cmp.Compare(b.Age, a.Age), strings.Compare(a.Name, b.Name))
	})
	return rows, madeFor
}

// queueStatus lists the queued jobs that ask for a self-hosted runner, oldest first.
func queueStatus(cfg Config, obs Observed, madeFor map[int64]string, spare map[poolIn]int, now time.Time) []QueuedStatus {
	out := []QueuedStatus{}
	seen := map[int64]bool{}
	jobs := slices.Clone(obs.Jobs)
	slices.SortStableFunc(jobs, func(a, b Job) int { return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID)) })
	for _, j := range jobs {
		if seen[j.ID] {
			continue
		}
		seen[j.ID] = true
		q := QueuedStatus{JobID: j.ID, Repo: j.Repo.String(), Name: j.Name, Labels: j.Labels, Age: now.Sub(j.CreatedAt),
			AgeSec: int64(now.Sub(j.CreatedAt).Seconds())}
		p := MatchPool(cfg.Pools, j.Labels)
		switch {
		case p == nil && !slices.ContainsFunc(j.Labels, func(l string) bool { return strings.EqualFold(l, "self-hosted") }):
			continue // GitHub's hosted runners serve it
		case p == nil:
			q.NotServed = ReasonNoPool
		default:
			q.Pool = p.Name
			if why := Refusal(cfg.GitHub, j); why != "" {
				q.NotServed = why
			} else if obs.Unservable[j.ID] {
				q.NotServed = ReasonUnservable
			} else if q.Runner = madeFor[j.ID]; q.Runner == "" && spare[poolIn{p.Name, cfg.RunnerScopeOf(j.Repo)}] > 0 {
				spare[poolIn{p.Name, cfg.RunnerScopeOf(j.Repo)}]--
				q.Runner = "an idle or booting runner of the pool"
			}
		}
		out = append(out, q)
	}
	slices.SortStableFunc(out, func(a, b QueuedStatus) int { return cmp.Or(cmp.Compare(b.Age, a.Age), cmp.Compare(a.JobID, b.JobID)) })
	return out
}

// poolIn is a pool in one runner scope.
type poolIn struct {
	pool  string
	scope Scope
}

func poolIndex(cfg Config, name string) int {
	for i, p := range cfg.Pools {
		if p.Name == name {
			return i
		}
	}
	return len(cfg.Pools) // runners of a pool no longer configured, and ghosts, last
}

func scopeText(s Scope) string {
	if s == (Scope{}) {
		return ""
	}
	return s.String()
}
