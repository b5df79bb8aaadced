package ghpoll

import (
	"slices"
	"strings"
	"time"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// Budget bounds what a pass spends at GitHub.
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

// Select splits the repositories between this pass and later ones. Hot repositories
// (those the pass names, where runners of ours are; those with runs at their last
// poll; and, with a probe, those that had runs within the last hour) are polled every
// pass. Quiet ones are polled in rotation, the longest unpolled
// first, enough of them each pass that every one is looked at within IdleInterval, as
// far as the point budget allows; their registrations are listed at the same time, to
// find ghosts. A hot repository's registrations are listed at least once per
// IdleInterval too: ghosts are left where demand has gone, and a busy repository always
// has demand somewhere else. It returns the repositories to poll, those whose registrations to list,
// and how many were left for later.
func (c *Client) Select(repos []reconcile.Scope, hot map[reconcile.Scope]bool) (poll, sweep []reconcile.Scope, skipped int) {
	b := c.Budget
	now := c.now()
	// GitHub counts points in any one minute: a pass is a burst, so it may spend one
	// minute's points at most, and its share of them when passes come faster.
	budget := float64(b.PointsPerMinute) * min(max(b.Interval.Minutes(), 1.0/60), 1)
	spend := budget * (1 - writeShare)
	var quiet []reconcile.Scope
	for _, r := range repos {
		st := c.cache.repo(r.String())
		// Org runners' registrations are listed for the org: a recent org listing sweeps
		// every repository of it.
		swept := st.Swept
		if org := c.cache.repo(r.Owner).Swept; org.After(swept) {
			swept = org
		}
		if (hot[r] || st.Runs > 0 || now.Before(st.ActiveUntil)) && now.Sub(swept) >= b.IdleInterval-b.Interval {
			// Polled every pass, but its registrations are listed only where the pass has
			// runners or demand: sweep it for ghosts before IdleInterval has passed.
			sweep = append(sweep, r)
			spend--
		}
		switch {
		case hot[r] || st.Runs > 0:
			poll = append(poll, r) // the run lists and each run's jobs, mostly 304s
			spend -= float64(len(runStatuses) + st.Runs)
			continue
		case now.Before(st.ActiveUntil):
			poll = append(poll, r) // had runs lately: a probe every pass
			spend--
			continue
		}
		quiet = append(quiet, r)
	}
	slices.SortStableFunc(quiet, func(a, b reconcile.Scope) int {
		pa, pb := c.cache.repo(a.String()).Polled, c.cache.repo(b.String()).Polled
		if c := pa.Compare(pb); c != 0 {
			return c
		}
		return strings.Compare(a.String(), b.String())
	})
	want := 0
	if len(quiet) > 0 {
		// Each pass takes its share of the rotation, and every repository that would
		// otherwise pass IdleInterval unlooked-at.
		share := float64(len(quiet)) * b.Interval.Seconds() / max(b.IdleInterval.Seconds(), 1)
		want = min(len(quiet), int(share+0.999))
		for _, r := range quiet[want:] {
			if now.Sub(c.cache.repo(r.String()).Polled) < b.IdleInterval-b.Interval {
				break
			}
			want++
		}
	}
	// A quiet repository costs a probe and a registration listing, mostly 304s.
	afford := max(int(spend/2), 0)
	if s := c.tr.statsNow(); s.Remaining > 0 && s.Remaining < b.PrimaryReserve && now.Before(s.Reset) {
		afford = 0
	}
	n := min(want, afford)
	poll = append(poll, quiet[:n]...)
	sweep = append(sweep, quiet[:n]...)
	return poll, sweep, len(quiet) - n
}
