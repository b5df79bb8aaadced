package reconcile

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// quietRepos returns n repositories, none looked at yet, named so that they sort in
// order.
func quietRepos(n int) []Scope {
	out := make([]Scope, n)
	for i := range out {
		out[i] = Scope{Owner: "big-org", Repo: fmt.Sprintf("repo%02d", i)}
	}
	return out
}

func TestChooseRepos(t *testing.T) {
	t.Parallel()
	b := DefaultBudget() // 600 points a minute, a pass a minute, every repository within 5 minutes
	repos := quietRepos(10)
	ago := func(d time.Duration) time.Time { return t0.Add(-d) }
	// Facts for repos: repoNN polled and swept (NN+1)*20s ago, so repo09 waited
	// longest, and none is due yet (none would pass 5 minutes unlooked-at by the next).
	rotated := func() map[Scope]RepoFacts {
		f := map[Scope]RepoFacts{}
		for i, r := range repos {
			at := ago(time.Duration(i+1) * 20 * time.Second)
			f[r] = RepoFacts{Polled: at, Swept: at, PollCost: 3}
		}
		return f
	}
	with := func(f map[Scope]RepoFacts, r Scope, set func(*RepoFacts)) map[Scope]RepoFacts {
		st := f[r]
		set(&st)
		f[r] = st
		return f
	}
	tests := []struct {
		name   string
		budget Budget
		hot    map[Scope]bool
		facts  PollFacts
		want   Choice
	}{{
		name:   "without a budget every repository is polled and swept",
		budget: Budget{},
		want:   Choice{Poll: repos, Sweep: repos},
	}, {
		name:   "quiet repositories rotate: a fifth of them each pass, the longest unpolled first",
		budget: b,
		facts:  PollFacts{Repos: rotated()},
		want:   Choice{Poll: []Scope{repos[9], repos[8]}, Sweep: []Scope{repos[9], repos[8]}, Skipped: 8},
	}, {
		name:   "every quiet repository that would pass the idle interval unlooked-at is taken, beyond the share",
		budget: b,
		facts: PollFacts{Repos: with(with(with(rotated(),
			repos[3], func(f *RepoFacts) { f.Polled = ago(6 * time.Minute) }),
			repos[4], func(f *RepoFacts) { f.Polled = ago(5 * time.Minute) }),
			repos[5], func(f *RepoFacts) { f.Polled = ago(4 * time.Minute) })},
		want: Choice{Poll: []Scope{repos[3], repos[4], repos[5]}, Sweep: []Scope{repos[3], repos[4], repos[5]}, Skipped: 7},
	}, {
		name:   "a repository with runners of ours is polled every pass, and swept once per idle interval",
		budget: b,
		hot:    map[Scope]bool{repos[0]: true, repos[6]: true},
		// repo00 swept 20s ago; repo06 4 minutes ago, so 5 by the next pass
		facts: PollFacts{Repos: with(rotated(), repos[6], func(f *RepoFacts) { f.Swept = ago(4 * time.Minute) })},
		want:  Choice{Poll: []Scope{repos[0], repos[6], repos[9], repos[8]}, Sweep: []Scope{repos[6], repos[9], repos[8]}, Skipped: 6},
	}, {
		name:   "a repository with runs is polled every pass; one that had runs lately is probed",
		budget: b,
		facts: PollFacts{Repos: with(with(rotated(), repos[1], func(f *RepoFacts) { f.Runs = 2 }),
			repos[2], func(f *RepoFacts) { f.ActiveUntil = t0.Add(time.Hour) })},
		want: Choice{Poll: []Scope{repos[1], repos[2], repos[9], repos[8]}, Sweep: []Scope{repos[9], repos[8]}, Skipped: 6},
	}, {
		name:   "below the primary reserve, quiet repositories wait for the reset; busy ones do not",
		budget: b,
		hot:    map[Scope]bool{repos[0]: true},
		facts:  PollFacts{Repos: rotated(), Remaining: b.PrimaryReserve - 1, Reset: t0.Add(10 * time.Minute)},
		want:   Choice{Poll: []Scope{repos[0]}, Skipped: 9},
	}, {
		name:   "after the reset time, the stale remaining count no longer holds quiet ones back",
		budget: b,
		facts:  PollFacts{Repos: rotated(), Remaining: 1, Reset: t0.Add(-time.Second)},
		want:   Choice{Poll: []Scope{repos[9], repos[8]}, Sweep: []Scope{repos[9], repos[8]}, Skipped: 8},
	}, {
		// 10 points a minute: 7.5 for reads; a quiet repository costs 2 (a probe and a
		// registration listing); the busy one's full poll costs 3 and its sweep 1.
		name:   "the points budget bounds the quiet repositories polled after the busy ones",
		budget: Budget{PointsPerMinute: 10, Interval: time.Minute, IdleInterval: time.Minute, PrimaryReserve: 500},
		hot:    map[Scope]bool{repos[0]: true},
		facts:  PollFacts{Repos: rotated()},
		want:   Choice{Poll: []Scope{repos[0], repos[9]}, Sweep: []Scope{repos[0], repos[9]}, Skipped: 8},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := ChooseRepos(tt.budget, t0, repos, tt.hot, tt.facts)
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ChooseRepos() (-want +got):\n%s", diff)
			}
		})
	}
}
