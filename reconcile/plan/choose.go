package plan

import (
	"cmp"
	"math"
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

// DefaultBudget leaves a ninth of the secondary limit to everything else on the token.
func DefaultBudget() Budget {
	return Budget{PointsPerMinute: DefaultPointsPerMinute, Interval: time.Minute, IdleInterval: 5 * time.Minute, PrimaryReserve: 500}
}

// The points a minute kept for runners. A runner costs its registration (a write) and
// reads no choice of repositories foresees: its scope's registrations listed when it
// is created and when it has finished, and its run's jobs when first found. A pass
// polls before it registers, so what it keeps is for the runners that come before a
// later pass can make room: a pass a minute keeps a quarter of the points; passes
// 5 s apart keep 8 %, or one and a half times what the runners of the last
// minute took, up to a quarter, so that reads take what runners do not need. Writes
// are paced by the points (the GitHub client's ledger holds reads and writes together
// within the budget), so a burst of them spreads over passes that adapt.
const (
	writeShare   = 0.25
	writeFloor   = 0.08
	runnerPoints = PointsPerWrite + 3
)

// PointsPerWrite is what GitHub's secondary rate limit charges a POST, PATCH, PUT or
// DELETE (a read costs 1), whatever the answer: GitHub's REST documentation, "Rate
// limits for the REST API", secondary limits. Defined here once, for the budget, the
// GitHub client's accounting and the flags' check.
const PointsPerWrite = 5

// DefaultPointsPerMinute is the share of GitHub's 900 secondary-limit points a minute
// the tool takes by default: the 100 left are a person's script or another tool on the
// same credentials (100 reads, or 20 writes, a minute). Writes go as fast as the
// points the reads leave allow: 800 / 5 = 160 a minute at most.
const DefaultPointsPerMinute = 800

// GitHub documents, "in general", no more than 80 content-creating requests a minute
// and 500 an hour, and names no endpoint that is one. After a secondary limit
// answered a registration, registrations go at most FallbackWritesPerMinute a minute
// for an hour; DefaultWritesPerHour bounds them in any hour. Each is GitHub's figure
// less a margin for whatever else writes with the credentials.
const (
	FallbackWritesPerMinute = 75
	DefaultWritesPerHour    = 475
)

// ReadPointsPerMinute is the points a minute the budget leaves for reads when writes
// take their whole share: the least that polling may spend.
func (b Budget) ReadPointsPerMinute() float64 {
	return float64(b.PointsPerMinute) * (1 - writeShare)
}

// readPoints is the points a minute polling may take, after the runners registered at
// the given pace.
func (b Budget) readPoints(registeredPerMinute float64) float64 {
	ppm := float64(b.PointsPerMinute)
	floor := max(writeFloor, writeShare*min(b.Interval.Minutes(), 1))
	reserve := min(max(1.5*runnerPoints*registeredPerMinute, floor*ppm), writeShare*ppm)
	return ppm - reserve
}

// registeredPerMinute is the pace of the latest registrations: over the last minute
// and an interval, so that passes a minute apart see the previous pass's.
func registeredPerMinute(b Budget, now time.Time, at []time.Time) float64 {
	window := time.Minute + b.Interval
	n := 0
	for _, t := range at {
		if now.Sub(t) < window {
			n++
		}
	}
	return float64(n) * time.Minute.Seconds() / window.Seconds()
}

// PollFacts is what the GitHub client knows that decides which repositories a pass
// polls: what it remembers of each from earlier passes, and the primary rate limit as
// GitHub last stated it (Remaining 0: not known).
type PollFacts struct {
	Repos     map[Scope]RepoFacts
	Remaining int
	Reset     time.Time
	// Overhead is the requests a pass makes besides polls and sweeps: the listings of
	// the organisations' latest pushes, and of their repositories when fetched; and
	// the registrations of the scopes where runners of ours are (the pass adds those).
	Overhead int
	// Registered is when the runner registrations of the last hour were sent.
	Registered []time.Time
	// Busy names the runners the last polls of their repositories saw running a job
	// (in this process): their scopes' registrations need no listing, for the
	// estimate of Overhead.
	Busy map[string]bool
}

// RepoFacts is what the GitHub client remembers of a repository. The zero value is a
// repository never looked at.
type RepoFacts struct {
	// Runs is how many runs that could hold a queued job it had at its last look.
	Runs int
	// HadRuns is when a poll last found runs that could hold a queued job (zero:
	// never seen).
	HadRuns time.Time
	// Polled is when its runs were last looked at.
	Polled time.Time
	// Swept is when the registrations it could hold (its own, or its organisation's
	// for org runners) were last listed whole.
	Swept time.Time
	// PollCost is how many requests a look at it takes, mostly answered 304: its
	// newest page of runs (and the count of its completed runs, for a long history),
	// and each run's jobs. A listing of registrations takes one.
	PollCost int
	// Pushed is when its organisation's repository listing last showed a push to it
	// (zero: never seen). A push after Polled is the cheapest sign that runs came.
	Pushed time.Time
}

// QuietSweeps is how many idle intervals a quiet repository's registrations may go
// unlisted. Ghosts are left where this tool registered runners, which is where jobs
// were, and such repositories are active, and swept every idle interval, for a while
// after; a quiet repository is swept only for what that misses, so that the points go
// to finding new jobs.
const QuietSweeps = 6

// Choice is which repositories a pass polls, whose registrations it lists to find
// ghosts, and how many it leaves for a later pass.
type Choice struct {
	Poll, Sweep []Scope
	Skipped     int
}

// ActiveWindow is how long after its last runs a repository counts as active, and
// ActiveWeight how many times over an active repository counts the time since its
// last look, in the rotation: it is looked at about that many times as often as a
// quiet one. Jobs come where runs came (a pull request, then its merge); most of
// those follow a push, which puts a repository first anyway.
const (
	ActiveWindow = time.Hour
	ActiveWeight = 2
)

// ChooseRepos splits the repositories between this pass and later ones. Busy
// repositories (runners of ours there; runs at their last poll) are polled every
// pass, and their registrations listed at least once per IdleInterval, since ghosts
// are left where demand has gone. Those whose runs ended less than an IdleInterval ago
// are looked at every pass too, as far as half the points.
//
// The rest of the pass's read points go to the other repositories, a look each (one
// conditional request, free of the primary limit when answered 304; two for a long
// history): first those with a push since their last look, then in rotation, the
// longest unlooked-at first, as many as the points allow, so that a job in a quiet
// repository waits about len(quiet) ÷ the read points a minute, and IdleInterval only
// when the points cannot do better. A repository active within ActiveWindow counts
// its wait ActiveWeight times over. Registrations are listed in a rotation of their
// own, every QuietSweeps idle intervals, and every idle interval for active ones.
func ChooseRepos(b Budget, now time.Time, repos []Scope, hot map[Scope]bool, f PollFacts) Choice {
	if b.PointsPerMinute <= 0 {
		return Choice{Poll: repos, Sweep: repos}
	}
	var ch Choice
	// GitHub counts points in any one minute: a pass is a burst, so it may spend one
	// minute's points at most, and its share of them when passes come faster; less
	// what it spends anyway (the organisations' repository listings).
	spend := b.readPoints(registeredPerMinute(b, now, f.Registered))*min(max(b.Interval.Minutes(), 1.0/60), 1) - float64(f.Overhead)
	due := now.Add(-(b.IdleInterval - b.Interval)) // looked at before this: due again
	var busy, recent, quiet []Scope
	for _, r := range repos {
		switch st := f.Repos[r]; {
		case hot[r] || st.Runs > 0:
			busy = append(busy, r)
		case now.Sub(st.HadRuns) < b.IdleInterval:
			recent = append(recent, r)
		default:
			quiet = append(quiet, r)
		}
	}
	// The quiet ones are owed their turn first: those just pushed to, and enough of
	// the rotation that each is looked at within the idle interval, with their share
	// of sweeps; whatever else the points allow goes to them after the busy ones.
	low := f.Remaining > 0 && f.Remaining < b.PrimaryReserve && now.Before(f.Reset)
	owed := 0.0
	if !low { // at most half the points: the busy ones are where most jobs are
		owed = min(float64(quietOwed(b, now, quiet, f)), max(spend/2, 0))
	}
	spend -= owed
	// Busy repositories first, each the longest unpolled first: every pass while the
	// points allow, which at a pass a minute is always; when passes come fast, in turn.
	// Then those whose runs just ended, as far as half of what is left; the others
	// join the rotation.
	for _, r := range byPolled(busy, f) {
		spend -= ch.take(r, float64(f.Repos[r].PollCost), spend, due, f)
	}
	half := spend / 2
	for _, r := range byPolled(recent, f) {
		if cost := float64(max(f.Repos[r].PollCost, 1)); cost <= half || !f.Repos[r].Polled.After(due) {
			spend, half = spend-ch.take(r, cost, half, due, f), half-cost
		} else {
			quiet = append(quiet, r)
		}
	}
	if low {
		ch.Skipped += len(quiet) // the rest wait for the reset
		return ch
	}
	ch.spendOnQuiet(b, now, quiet, f, spend+owed, due)
	return ch
}

// spendOnQuiet gives what is left of the points to the quiet repositories. Active ones
// are swept every idle interval: ghosts are left where jobs were. The others' sweeps
// take half the points at most (a cold start finds every one overdue): finding jobs
// comes first. Then looks, in quietOrder, as far as the points go.
func (ch *Choice) spendOnQuiet(b Budget, now time.Time, quiet []Scope, f PollFacts, spend float64, due time.Time) {
	for _, r := range quiet {
		if st := f.Repos[r]; active(st, now) && !st.Swept.After(due) && spend >= 1 {
			ch.Sweep = append(ch.Sweep, r)
			spend--
		}
	}
	sweeps := quietSweeps(b, now, quiet, f, max(int(spend/2), 0))
	ch.Sweep = append(ch.Sweep, sweeps...)
	spend -= float64(len(sweeps))
	for _, r := range quietOrder(quiet, now, f) {
		cost := float64(max(f.Repos[r].PollCost, 1))
		if cost > spend {
			ch.Skipped++
			spend = 0 // the rest wait their turn: none jumps the queue for being cheap
			continue
		}
		ch.Poll = append(ch.Poll, r)
		spend -= cost
	}
}

func active(st RepoFacts, now time.Time) bool {
	return !st.HadRuns.IsZero() && now.Sub(st.HadRuns) < ActiveWindow
}

// quietOrder sorts the quiet repositories for a look: those pushed to since their
// last look first, the latest push first; then the rotation, the longest unlooked-at
// first (never looked at first of all), an active one counting its wait ActiveWeight
// times over.
func quietOrder(quiet []Scope, now time.Time, f PollFacts) []Scope {
	pushed := func(r Scope) bool { return f.Repos[r].Pushed.After(f.Repos[r].Polled) }
	wait := func(r Scope) time.Duration {
		st := f.Repos[r]
		if st.Polled.IsZero() {
			return math.MaxInt64
		}
		if active(st, now) {
			return ActiveWeight * now.Sub(st.Polled)
		}
		return now.Sub(st.Polled)
	}
	out := slices.Clone(quiet)
	slices.SortStableFunc(out, func(a, c Scope) int {
		fa, fc := f.Repos[a], f.Repos[c]
		switch pa, pc := pushed(a), pushed(c); {
		case pa && pc:
			return cmp.Or(fc.Pushed.Compare(fa.Pushed), strings.Compare(a.String(), c.String()))
		case pa != pc:
			return cmp.Compare(b2n(pc), b2n(pa))
		}
		return cmp.Or(cmp.Compare(wait(c), wait(a)), strings.Compare(a.String(), c.String()))
	})
	return out
}

// quietOwed is what the quiet repositories are owed this pass whatever the busy ones
// want: a look at each pushed to since its last look, a look at each the idle
// interval's rotation needs (the pass's share, and any that would pass it unlooked-at),
// and the sweep rotation's share.
func quietOwed(b Budget, now time.Time, quiet []Scope, f PollFacts) int {
	due := now.Add(-(b.IdleInterval - b.Interval))
	share := float64(len(quiet)) * b.Interval.Seconds() / max(b.IdleInterval.Seconds(), 1)
	n := int(share + 0.999)
	overdue := 0
	for _, r := range quiet {
		st := f.Repos[r]
		if st.Pushed.After(st.Polled) {
			n++
		} else if !st.Polled.After(due) {
			overdue++
		}
	}
	sweeps := float64(len(quiet)) * b.Interval.Seconds() / max(float64(QuietSweeps)*b.IdleInterval.Seconds(), 1)
	return min(max(n, overdue), len(quiet)) + int(sweeps+0.999)
}

// take polls r this pass if its cost (and its sweep, when one is due) fits spend, or
// it would otherwise pass the idle interval unlooked-at; it returns what it spent.
func (ch *Choice) take(r Scope, cost, spend float64, due time.Time, f PollFacts) float64 {
	st := f.Repos[r]
	sweep := !st.Swept.After(due)
	if sweep {
		cost++
	}
	if cost > spend && st.Polled.After(due) {
		ch.Skipped++
		return 0 // looked at within the idle interval: it can wait for the next pass
	}
	ch.Poll = append(ch.Poll, r)
	if sweep {
		ch.Sweep = append(ch.Sweep, r)
	}
	return cost
}

// byPolled returns the repositories, the longest unpolled first (in the given order
// among equals).
func byPolled(repos []Scope, f PollFacts) []Scope {
	out := slices.Clone(repos)
	slices.SortStableFunc(out, func(a, c Scope) int { return f.Repos[a].Polled.Compare(f.Repos[c].Polled) })
	return out
}

// quietSweeps returns the quiet repositories whose registrations this pass lists: its
// share of a rotation over QuietSweeps idle intervals, and as many again of those that
// would pass that unlisted, as far as afford allows.
func quietSweeps(b Budget, now time.Time, quiet []Scope, f PollFacts, afford int) []Scope {
	period := time.Duration(QuietSweeps) * b.IdleInterval
	due := now.Add(-(period - b.Interval))
	order := slices.Clone(quiet)
	slices.SortStableFunc(order, func(a, c Scope) int {
		return cmp.Or(f.Repos[a].Swept.Compare(f.Repos[c].Swept), strings.Compare(a.String(), c.String()))
	})
	share := int(float64(len(order))*b.Interval.Seconds()/max(period.Seconds(), 1) + 0.999)
	want := min(len(order), share)
	// Those overdue catch up at twice the pace at most, so that a cold start's sweeps,
	// all due again together, spread out instead of taking the points in a burst.
	for want < min(len(order), 2*share) && !f.Repos[order[want]].Swept.After(due) {
		want++
	}
	return order[:min(want, afford)]
}

func b2n(v bool) int {
	if v {
		return 1
	}
	return 0
}
