package reconcile

import (
	"slices"
	"strings"
	"time"
)

// Budget bounds what a pass spends at GitHub. The zero Budget is none: every
// repository is polled, and its registrations listed, every pass.
type Budget struct {
	// PointsPerMinute is the share of GitHub's 900 secondary-limit points a minute this
	// tool allows itself.
	PointsPerMinute int
	// Interval is the time between passes (the CronJob's schedule, the timer's, or
	// --interval).
	Interval time.Duration
	// IdleInterval is how often, at least, a quiet repository is looked at.
	IdleInterval time.Duration
	// PrimaryReserve: below this many remaining primary requests, quiet repositories
	// wait for the reset.
	PrimaryReserve int
}

// DefaultBudget leaves a third of the secondary limit to everything else on the token.
func DefaultBudget() Budget {
	return Budget{PointsPerMinute: 600, Interval: time.Minute, IdleInterval: 5 * time.Minute, PrimaryReserve: 500}
}

// writeShare of a pass's points is kept for registering and removing runners.
const writeShare = 0.25

// PollFacts is what the GitHub client knows that decides which repositories a pass
// polls: what it remembers of each from earlier passes, and the primary rate limit as
// GitHub last stated it (Remaining 0: not known).
type PollFacts struct {
	Repos     map[Scope]RepoFacts
	Remaining int
	Reset     time.Time
}

// RepoFacts is what the GitHub client remembers of a repository. The zero value is a
// repository never looked at.
type RepoFacts struct {
	// Runs is how many runs that could hold a queued job it had at its last full poll.
	Runs int
	// ActiveUntil: it had runs lately, and is probed every pass until then.
	ActiveUntil time.Time
	// Polled is when its jobs were last looked at (a probe or a full poll).
	Polled time.Time
	// Swept is when the registrations it could hold (its own, or its organisation's
	// for org runners) were last listed whole.
	Swept time.Time
	// PollCost is how many requests a full poll of it takes: the run lists and each
	// run's jobs, mostly answered 304. A probe, and a listing of registrations, take one.
	PollCost int
}

// Choice is which repositories a pass polls, whose registrations it lists to find
// ghosts, and how many it leaves for a later pass.
type Choice struct {
	Poll, Sweep []Scope
	Skipped     int
}

// ChooseRepos splits the repositories between this pass and later ones. Hot
// repositories (runners of ours there; runs at their last poll) are polled every pass,
// and those that had runs lately are probed every pass. Quiet ones are polled in
// rotation, the longest unpolled first, enough of them each pass that every one is
// looked at within the budget's IdleInterval, as far as its points allow; their
// registrations are listed at the same time, to find ghosts. A hot repository's
// registrations are listed at least once per IdleInterval too: ghosts are left where
// demand has gone, and a busy repository always has demand somewhere else.
func ChooseRepos(b Budget, now time.Time, repos []Scope, hot map[Scope]bool, f PollFacts) Choice {
	if b.PointsPerMinute <= 0 {
		return Choice{Poll: repos, Sweep: repos}
	}
	var ch Choice
	// GitHub counts points in any one minute: a pass is a burst, so it may spend one
	// minute's points at most, and its share of them when passes come faster.
	spend := float64(b.PointsPerMinute) * min(max(b.Interval.Minutes(), 1.0/60), 1) * (1 - writeShare)
	due := now.Add(-(b.IdleInterval - b.Interval)) // looked at before this: due again
	var quiet []Scope
	for _, r := range repos {
		st := f.Repos[r]
		busy := hot[r] || st.Runs > 0
		active := now.Before(st.ActiveUntil)
		if (busy || active) && !st.Swept.After(due) {
			ch.Sweep = append(ch.Sweep, r)
			spend--
		}
		switch {
		case busy:
			ch.Poll = append(ch.Poll, r)
			spend -= float64(st.PollCost)
		case active:
			ch.Poll = append(ch.Poll, r)
			spend--
		default:
			quiet = append(quiet, r)
		}
	}
	slices.SortStableFunc(quiet, func(a, b Scope) int {
		if c := f.Repos[a].Polled.Compare(f.Repos[b].Polled); c != 0 {
			return c
		}
		return strings.Compare(a.String(), b.String())
	})
	// Each pass takes its share of the rotation, and every repository that would
	// otherwise pass IdleInterval unlooked-at.
	share := float64(len(quiet)) * b.Interval.Seconds() / max(b.IdleInterval.Seconds(), 1)
	want := min(len(quiet), int(share+0.999))
	for want < len(quiet) && !f.Repos[quiet[want]].Polled.After(due) {
		want++
	}
	// A quiet repository costs a probe and a registration listing.
	afford := max(int(spend/2), 0)
	if f.Remaining > 0 && f.Remaining < b.PrimaryReserve && now.Before(f.Reset) {
		afford = 0
	}
	n := min(want, afford)
	ch.Poll = append(ch.Poll, quiet[:n]...)
	ch.Sweep = append(ch.Sweep, quiet[:n]...)
	ch.Skipped = len(quiet) - n
	return ch
}
