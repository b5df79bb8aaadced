package plan

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
			f[r] = RepoFacts{Polled: at, Swept: at, PollCost: 1} // a look: the newest page of runs
		}
		return f
	}
	with := func(f map[Scope]RepoFacts, r Scope, set func(*RepoFacts)) map[Scope]RepoFacts {
		st := f[r]
		set(&st)
		f[r] = st
		return f
	}
	twoRuns := func(f *RepoFacts) { f.PollCost = 3 } // the newest page and two runs' jobs
	// small: 8 points a minute, 6 of them for reads; a pass a minute, an idle interval
	// of a minute, so quiet repositories are swept every 6 minutes.
	small := Budget{PointsPerMinute: 8, Interval: time.Minute, IdleInterval: time.Minute, PrimaryReserve: 500}
	// fast: 120 points a minute, a pass every 5 s, every repository within 5 minutes.
	fast := Budget{PointsPerMinute: 120, Interval: 5 * time.Second, IdleInterval: 5 * time.Minute, PrimaryReserve: 500}
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
		name:   "points enough: every quiet repository is probed each pass; their registrations rotate over six idle intervals",
		budget: b,
		facts:  PollFacts{Repos: rotated()},
		want: Choice{Poll: []Scope{repos[9], repos[8], repos[7], repos[6], repos[5], repos[4], repos[3], repos[2], repos[1], repos[0]},
			Sweep: []Scope{repos[9]}},
	}, {
		// 6 points: a sixth of the sweep rotation (2) and 4 probes, longest unlooked-at first.
		name:   "the points bound the probes: the longest unlooked-at first",
		budget: small,
		facts:  PollFacts{Repos: rotated()},
		want:   Choice{Poll: []Scope{repos[9], repos[8], repos[7], repos[6]}, Sweep: []Scope{repos[9], repos[8]}, Skipped: 6},
	}, {
		name:   "a push since the last look goes first, the latest first; a push before it does not count",
		budget: small,
		facts: PollFacts{Repos: with(with(with(rotated(),
			repos[2], func(f *RepoFacts) { f.Pushed = ago(5 * time.Second) }),
			repos[5], func(f *RepoFacts) { f.Pushed = ago(10 * time.Second) }),
			repos[7], func(f *RepoFacts) { f.Pushed = f.Polled.Add(-time.Minute) })},
		want: Choice{Poll: []Scope{repos[2], repos[5], repos[9], repos[8]}, Sweep: []Scope{repos[9], repos[8]}, Skipped: 6},
	}, {
		name:   "a quiet repository that would pass six idle intervals unswept is swept, beyond the share",
		budget: small,
		facts: PollFacts{Repos: with(with(with(rotated(),
			repos[3], func(f *RepoFacts) { f.Swept = ago(7 * time.Minute) }),
			repos[4], func(f *RepoFacts) { f.Swept = ago(6 * time.Minute) }),
			repos[5], func(f *RepoFacts) { f.Swept = ago(330 * time.Second) })},
		want: Choice{Poll: []Scope{repos[9], repos[8], repos[7]}, Sweep: []Scope{repos[3], repos[4], repos[5]}, Skipped: 7},
	}, {
		name:   "a repository with runners of ours is polled every pass, and swept once per idle interval",
		budget: b,
		hot:    map[Scope]bool{repos[0]: true, repos[6]: true},
		// repo00 swept 20s ago; repo06 4 minutes ago, so 5 by the next pass
		facts: PollFacts{Repos: with(rotated(), repos[6], func(f *RepoFacts) { f.Swept = ago(4 * time.Minute) })},
		want: Choice{Poll: []Scope{repos[6], repos[0], repos[9], repos[8], repos[7], repos[5], repos[4], repos[3], repos[2], repos[1]},
			Sweep: []Scope{repos[6], repos[9]}},
	}, {
		// 120 points a minute, a pass every 5 s, no runner registered lately: 110.4
		// points a minute for reads (8 % kept for runners), 9.2 a pass. The quiet
		// ones are owed 2 (a look of the idle interval's rotation, a sweep); the busy
		// ones cost 3 a poll: the two longest unpolled go now, the third (polled within
		// the idle interval) waits for a later pass; the 2 owed and what is left go to
		// the quiet ones.
		name:   "when passes come fast, busy repositories take turns within the points, and the quiet ones keep theirs",
		budget: fast,
		hot:    map[Scope]bool{repos[0]: true, repos[1]: true, repos[2]: true},
		facts:  PollFacts{Repos: with(with(with(rotated(), repos[0], twoRuns), repos[1], twoRuns), repos[2], twoRuns)},
		want:   Choice{Poll: []Scope{repos[2], repos[1], repos[9], repos[8]}, Sweep: []Scope{repos[9]}, Skipped: 6},
	}, {
		// 9.2 points a pass: a sweep and eight looks.
		name:   "when passes come fast, reads take the points runners do not need",
		budget: fast,
		facts:  PollFacts{Repos: rotated()},
		want: Choice{Poll: []Scope{repos[9], repos[8], repos[7], repos[6], repos[5], repos[4], repos[3], repos[2]},
			Sweep: []Scope{repos[9]}, Skipped: 2},
	}, {
		// Six registrations in the last minute and an interval: 5.5 a minute, 66
		// points with their reads, more than the quarter kept at most: 90 points a
		// minute for reads, 7.5 a pass: a sweep and six looks.
		name:   "runners registered lately take their points back from the reads",
		budget: fast,
		facts: PollFacts{Repos: rotated(), Registered: []time.Time{ago(5 * time.Second), ago(15 * time.Second), ago(25 * time.Second),
			ago(35 * time.Second), ago(45 * time.Second), ago(55 * time.Second), ago(2 * time.Minute)}},
		want: Choice{Poll: []Scope{repos[9], repos[8], repos[7], repos[6], repos[5], repos[4]},
			Sweep: []Scope{repos[9]}, Skipped: 4},
	}, {
		// 4 points after the sweeps: repo09 and repo08 cost 1 each, repo07 (a long
		// history and runs) 3, more than the 2 left: repo06 waits behind it.
		name:   "a look that does not fit ends the rotation for the pass: none jumps the queue for being cheaper",
		budget: small,
		facts:  PollFacts{Repos: with(rotated(), repos[7], twoRuns)},
		want:   Choice{Poll: []Scope{repos[9], repos[8]}, Sweep: []Scope{repos[9], repos[8]}, Skipped: 8},
	}, {
		// repo05, active 20 minutes ago, was looked at 120 s ago: it counts 240 s, more
		// than repo09's 200, and goes first; its registrations are due every idle
		// interval (a minute here).
		name:   "a repository active within the hour counts its wait twice over, and is swept every idle interval",
		budget: small,
		facts:  PollFacts{Repos: with(rotated(), repos[5], func(f *RepoFacts) { f.HadRuns = ago(20 * time.Minute) })},
		want: Choice{Poll: []Scope{repos[5], repos[9], repos[8]}, Sweep: []Scope{repos[5], repos[9], repos[8]},
			Skipped: 7},
	}, {
		name:   "the organisations' listings are paid for first",
		budget: small,
		facts:  PollFacts{Repos: rotated(), Overhead: 3},
		want:   Choice{Poll: []Scope{repos[9], repos[8]}, Sweep: []Scope{repos[9]}, Skipped: 8},
	}, {
		name:   "a repository with runs is polled every pass; one whose runs ended within the idle interval is looked at",
		budget: small,
		facts: PollFacts{Repos: with(with(rotated(), repos[1], func(f *RepoFacts) { f.Runs, f.PollCost = 2, 3 }),
			repos[2], func(f *RepoFacts) { f.HadRuns = ago(30 * time.Second) })},
		// Swept every pass (the idle interval is one pass), repo01's full poll costs 3 and
		// repo02's look 1, with their sweeps: the 6 points are spent.
		want: Choice{Poll: []Scope{repos[1], repos[2]}, Sweep: []Scope{repos[1], repos[2]}, Skipped: 8},
	}, {
		name:   "below the primary reserve, quiet repositories wait for the reset; busy ones do not",
		budget: b,
		hot:    map[Scope]bool{repos[0]: true},
		facts:  PollFacts{Repos: rotated(), Remaining: b.PrimaryReserve - 1, Reset: t0.Add(10 * time.Minute)},
		want:   Choice{Poll: []Scope{repos[0]}, Skipped: 9},
	}, {
		name:   "after the reset time, the stale remaining count no longer holds quiet ones back",
		budget: small,
		facts:  PollFacts{Repos: rotated(), Remaining: 1, Reset: t0.Add(-time.Second)},
		want:   Choice{Poll: []Scope{repos[9], repos[8], repos[7], repos[6]}, Sweep: []Scope{repos[9], repos[8]}, Skipped: 6},
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
