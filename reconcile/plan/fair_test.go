package plan

import (
	"fmt"
	"testing"
	"time"
)

var (
	repoC = Scope{Owner: "octo-org", Repo: "api"}
	repoD = Scope{Owner: "other-org", Repo: "lib"}
)

// fairWorld is a pool arm64 of max_runners max, holding busy runners made for the
// repositories' jobs (held), and queued jobs; scope "org" registers runners in the
// organisation.
func fairWorld(max int, held map[Scope]int, weights map[string]int, scope RunnerScope, queued ...Job) (Observed, Config) {
	cfg := testConfig()
	cfg.Pools[0].MaxRunners = max
	cfg.Weights = weights
	cfg.GitHub.RunnerScope = scope
	var obs Observed
	id := int64(90000)
	for _, repo := range []Scope{repoA, repoB, repoC, repoD} {
		for range held[repo] {
			id++
			r := runner("arm64", repo, id, time.Hour)
			if scope == RunnerScopeOrg {
				r.Scope = Scope{Owner: repo.Owner}
			}
			obs.Runners = append(obs.Runners, r)
			obs.Regs = append(obs.Regs, reg(id, r, true, true))
		}
	}
	obs.Jobs = queued
	return obs, cfg
}

// jobsOf returns n queued ARM64 jobs of repo, ids from first, the first the oldest:
// queued from age ago, a second apart.
func jobsOf(repo Scope, first int64, n int, age time.Duration) []Job {
	var out []Job
	for i := range n {
		out = append(out, job(first+int64(i), repo, age-time.Duration(i)*time.Second, arm...))
	}
	return out
}

// turns lists the plan's creates, in the order they are made, as repo:job.
func turns(p Plan) []string {
	var out []string
	for _, c := range p.Create {
		out = append(out, fmt.Sprintf("%s:%d", c.Repo.Repo, c.JobID))
	}
	return out
}

func waits(p Plan) []string {
	var out []string
	for _, w := range p.WaitingForRoom {
		out = append(out, fmt.Sprintf("%s:%d+%d", w.Create.Repo.Repo, w.Create.JobID, w.Ahead))
	}
	return out
}

// One rule a row: who gets the room a full pool has, and in what order the creates go.
func TestFairShare(t *testing.T) {
	t.Parallel()
	join := func(a ...[]Job) []Job {
		var out []Job
		for _, x := range a {
			out = append(out, x...)
		}
		return out
	}
	tests := []struct {
		name    string
		max     int
		held    map[Scope]int
		weights map[string]int
		scope   RunnerScope
		jobs    []Job
		create  []string // in the order they are made
		waiting []string // repo:job+ahead
	}{
		{
			name: "equal weights: turn by turn, each repository's oldest first",
			max:  4, jobs: join(jobsOf(repoA, 1, 4, time.Hour), jobsOf(repoB, 11, 3, time.Minute)),
			create:  []string{"app:1", "web:11", "app:2", "web:12"},
			waiting: []string{"app:3+0", "web:13+1", "app:4+2"},
		},
		{
			name: "a repository with one job among one with 200: it gets the next runner the pool frees",
			max:  10, held: map[Scope]int{repoA: 9}, jobs: join(jobsOf(repoA, 1, 200, time.Hour), jobsOf(repoB, 1001, 1, time.Minute)),
			create:  []string{"web:1001"},
			waiting: nil, // the 200 are checked by count below
		},
		{
			name: "weights 3:1 split the room 3:1",
			max:  8, weights: map[string]int{"octo-org/app": 3},
			jobs: join(jobsOf(repoA, 1, 10, time.Hour), jobsOf(repoB, 11, 10, time.Hour-time.Millisecond)),
			// A tie (app holding 2 of weight 3, web 0 of weight 1) goes to the older job.
			create: []string{"app:1", "app:2", "web:11", "app:3", "app:4", "app:5", "web:12", "app:6"},
		},
		{
			name: "an organisation's weight is its repositories' own unless they have one",
			max:  4, held: map[Scope]int{repoA: 1}, weights: map[string]int{"octo-org": 2, "octo-org/app": 1},
			jobs:   join(jobsOf(repoA, 1, 3, time.Hour), jobsOf(repoC, 21, 3, time.Minute), jobsOf(repoD, 31, 3, time.Second*30)),
			create: []string{"api:21", "api:22", "lib:31"}, // api weighs 2 (its organisation's), app 1 and holds one
		},
		{
			name: "with room for all, every job gets its runner, in turns: what a pass defers is the last in the share",
			max:  20, jobs: join(jobsOf(repoA, 1, 4, time.Hour), jobsOf(repoB, 11, 2, time.Minute)),
			create: []string{"app:1", "web:11", "app:2", "web:12", "app:3", "app:4"},
		},
		{
			name: "org scope: the share counts runners by the repository they were made for",
			max:  3, held: map[Scope]int{repoA: 2}, scope: RunnerScopeOrg,
			jobs:    join(jobsOf(repoA, 1, 3, time.Hour), jobsOf(repoB, 11, 1, time.Minute)),
			create:  []string{"web:11"},
			waiting: []string{"app:1+0", "app:2+1", "app:3+2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			obs, cfg := fairWorld(tt.max, tt.held, tt.weights, tt.scope, tt.jobs...)
			p := Compute(obs, cfg, t0)
			if got := turns(p); fmt.Sprint(got) != fmt.Sprint(tt.create) {
				t.Errorf("creates %v, want %v", got, tt.create)
			}
			if tt.waiting != nil {
				if got := waits(p); fmt.Sprint(got) != fmt.Sprint(tt.waiting) {
					t.Errorf("waiting for room %v, want %v", got, tt.waiting)
				}
			}
			if n := len(p.Create) + len(p.WaitingForRoom); n != len(tt.jobs) {
				t.Errorf("%d creates and %d waiting for room, want the %d jobs between them", len(p.Create), len(p.WaitingForRoom), len(tt.jobs))
			}
			if got := p.Pools[0].WaitingForRoom; got != len(p.WaitingForRoom) {
				t.Errorf("pool status counts %d waiting for room, the plan lists %d", got, len(p.WaitingForRoom))
			}
		})
	}
}
