package reconcile

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// APIStats is what a pass cost at GitHub.
type APIStats struct {
	Requests    int           // requests sent
	Points      int           // secondary-limit points: 1 a read, 5 a write
	Primary     int           // requests counted against the primary limit (all but 304s)
	NotModified int           // 304 answers to conditional requests
	Waited      time.Duration // time spent waiting out retry-after
	Remaining   int           // the primary limit's remaining requests, as GitHub last said
	Reset       time.Time     // when it resets
	Polled      int           // repositories whose jobs were polled
	Skipped     int           // repositories left for a later pass by the budget
	// SecondaryLimited counts GitHub's secondary-limit answers, by endpoint
	// (generate-jitconfig, runs, ...).
	SecondaryLimited map[string]int
	// Resources counts the answers by the primary bucket GitHub charged them to (its
	// x-ratelimit-resource header: core, search, ...).
	Resources map[string]int
	// SlowWritesUntil is until when registrations keep the fallback pace (at most
	// FallbackWritesPerMinute a minute) after a secondary limit answered one; zero if
	// they do not.
	SlowWritesUntil time.Time
}

// Summary is what one pass saw and did.
type Summary struct {
	DryRun       bool
	Started      time.Time
	Duration     time.Duration
	Repos        int
	Jobs         int // queued jobs seen, whether a pool serves them or not
	Runners      int
	Plan         Plan
	Created      int
	Deleted      int
	Deregistered int
	Errors       int
	API          APIStats
	// ErrorsByStage counts the errors by the stage that met them.
	ErrorsByStage map[Stage]int
	// Done counts the actions carried out, by kind, pool and reason.
	Done map[Action]int
	// NotStarted counts the planned actions a stopped pass did not start.
	NotStarted int
	// Deferred counts the creates left, without failing the pass, for the next pass:
	// the pass's deadline came while it registered runners at the write pace, or the
	// hour's registrations were spent.
	Deferred int
	// Observed is what the pass saw of GitHub and the backends, before it acted.
	Observed Observed
	// QueueWaits are, for each runner this pass created for a job, how long that job
	// had waited: from its created_at to the runner's create.
	QueueWaits []QueueWait
	// Usage is the runner time and the jobs served that the pass credits (usage.go);
	// none in a dry run.
	Usage Usage
	// Unreachable lists the repositories GitHub answered 404 or 403 for: deleted,
	// renamed, or not visible to these credentials. They do not fail the pass unless
	// it polled every repository and none answered.
	Unreachable []string
	// Warnings are the problems that did not fail the pass, one line each: a pool
	// waiting out a stockout or a quota, a read that only refines a decision.
	Warnings []string
	// Health is each pool's standing with its platform after the pass: in backoff or
	// not, and the probes it made (health.go).
	Health []PoolHealth
}

// Stage is the part of a pass that met an error, as Summary.ErrorsByStage and the
// errors metric name it.
type Stage string

// The stages of a pass.
const (
	StageListRepos         Stage = "list_repos"         // an organisation's or installation's repositories
	StageListJobs          Stage = "list_jobs"          // a repository's queued jobs
	StageListRunners       Stage = "list_runners"       // a backend's runners
	StageListRegistrations Stage = "list_registrations" // a scope's runner registrations
	StageObserve           Stage = "observe"            // observing as a whole: its deadline came
	StageRegister          Stage = "register"           // a JIT registration
	StageCreate            Stage = "create"             // a backend's create
	StageDelete            Stage = "delete"             // a runner's delete
	StageDeregister        Stage = "deregister"         // a registration's removal
	StageRerun             Stage = "rerun"              // a preempted job's re-run
	StageInterrupted       Stage = "interrupted"        // a pass stopped or timed out with actions left
)

// Stages lists every stage, for metrics that show each from the start.
var Stages = []Stage{StageListRepos, StageListJobs, StageListRunners, StageListRegistrations, StageObserve,
	StageRegister, StageCreate, StageDelete, StageDeregister, StageRerun, StageInterrupted}

// QueueWait is how long a job waited for the runner made for it.
type QueueWait struct {
	Pool string
	Wait time.Duration
}

// ActionKind is a kind of write a pass makes.
type ActionKind string

// The kinds of action a plan holds and a pass applies.
const (
	ActionCreate     ActionKind = "create"     // a runner registered and started
	ActionDelete     ActionKind = "delete"     // a runner (and its registration) removed
	ActionDeregister ActionKind = "deregister" // a registration without a runner removed
	ActionRerun      ActionKind = "rerun"      // a preempted runner's job re-run
)

// Action is a kind of change a pass makes, for counting.
type Action struct {
	Kind   ActionKind
	Pool   string // empty for a deregistration
	Reason Reason
}

// WriteTable writes the pass's per-pool table for a person at a terminal: what it
// saw, and what it did (a dry run: what it would do). An action planned but not done
// (failed, or deferred to the next pass) shows as "done of planned".
func WriteTable(w io.Writer, s Summary) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	acts := "\tCREATED\tDELETED"
	if s.DryRun {
		acts = "\tTO CREATE\tTO DELETE"
	}
	fmt.Fprintln(tw, "POOL\tQUEUED\tUNSERVABLE\tBOOTING\tIDLE\tWARM\tBUSY"+acts)
	for _, p := range s.Plan.Pools {
		warm := strconv.Itoa(p.Warm) // warm runners booting or idle, of the min_idle now
		if p.WarmTarget > 0 {
			warm += "/" + strconv.Itoa(p.WarmTarget)
		}
		create, del := strconv.Itoa(p.Create), strconv.Itoa(p.Delete)
		if !s.DryRun {
			create, del = doneOf(s, ActionCreate, p.Pool, p.Create), doneOf(s, ActionDelete, p.Pool, p.Delete)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%d\t%s\t%s\n", p.Pool, p.Queued, p.Unservable, p.Booting, p.Idle, warm, p.Busy, create, del)
	}
	tw.Flush()
	if n, pools := len(s.Observed.Blind.Jobs), len(s.Observed.Blind.Pools); n+pools > 0 {
		fmt.Fprintf(w, "incomplete: the queued jobs of %d %s and the runners of %d %s could not be seen: the counts above leave them out\n",
			n, plural(n, "scope", "scopes"), pools, plural(pools, "pool", "pools"))
	}
	for _, r := range s.Unreachable {
		fmt.Fprintf(w, "unreachable: %s (GitHub answered 404 or 403: deleted, renamed, or not visible to these credentials)\n", r)
	}
	for _, line := range s.Warnings {
		fmt.Fprintf(w, "warning: %s\n", line)
	}
	a := s.API
	fmt.Fprintf(w, "github: %d requests, %d points, %d counted against the primary limit, %d not modified; %d %s polled, %d left for later",
		a.Requests, a.Points, a.Primary, a.NotModified, a.Polled, plural(a.Polled, "repository", "repositories"), a.Skipped)
	if !a.Reset.IsZero() {
		fmt.Fprintf(w, "; %d remaining until %s", a.Remaining, a.Reset.Local().Format("15:04"))
	}
	fmt.Fprintln(w)
	if s.DryRun {
		fmt.Fprintln(w, "dry run: nothing was changed")
	}
}

// doneOf says how many actions of a kind the pass did for a pool, of those planned.
func doneOf(s Summary, kind ActionKind, pool string, planned int) string {
	done := 0
	for a, n := range s.Done {
		if a.Kind == kind && a.Pool == pool {
			done += n
		}
	}
	if done == planned {
		return strconv.Itoa(done)
	}
	return fmt.Sprintf("%d of %d", done, planned)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// report completes the summary once the pass has applied its plan, and logs one line
// for the pass: "pass done", or "pass failed" at error level with the count (the
// caller says what each failure was). It returns the pass's errors, joined.
func (p *pass) report(sum *Summary) error {
	for _, w := range sum.Plan.Waiting {
		if !p.released[w.Create.Name] {
			p.waiting[w.Create.Pool]++
		}
	}
	sum.Health = p.healthReport()
	p.warnHeld(sum.Health, p.waiting)
	sum.Warnings = p.warnings
	sum.Duration = p.rc.now().Sub(p.now)
	sum.Errors = len(p.errs)
	sum.ErrorsByStage, sum.Done, sum.QueueWaits = p.stageErrs, p.done, p.waits
	sum.API = p.rc.GitHub.TakeStats()
	sum.API.Polled, sum.API.Skipped = p.api.Polled, p.api.Skipped
	p.warnLimited(sum.API)
	err := errors.Join(p.errs...)
	ev, msg := p.log.Info(), "pass done"
	if err != nil {
		ev, msg = p.log.Error(), "pass failed"
	}
	ev = ev.Bool("dry_run", p.rc.DryRun).
		Int("repos", sum.Repos).
		Int("jobs_queued", sum.Jobs).
		Int("runners", sum.Runners).
		Int("to_create", len(sum.Plan.Create)).
		Int("to_delete", len(sum.Plan.Delete)).
		Int("to_deregister", len(sum.Plan.Deregister)).
		Int("created", sum.Created).
		Int("deleted", sum.Deleted).
		Int("deregistered", sum.Deregistered).
		Int("deferred", sum.Deferred).
		Int("errors", sum.Errors).
		Int("repos_polled", sum.API.Polled).
		Int("repos_skipped", sum.API.Skipped).
		Int("gh_requests", sum.API.Requests).
		Int("gh_points", sum.API.Points).
		Int("gh_primary", sum.API.Primary).
		Int("gh_not_modified", sum.API.NotModified)
	if sum.API.Reset.IsZero() { // a rate limit GitHub never stated (nothing answered) is unknown, not 0
		ev = ev.Str("gh_remaining", "unknown")
	} else {
		ev = ev.Int("gh_remaining", sum.API.Remaining).Time("gh_reset", sum.API.Reset)
	}
	ev.Int64("duration_ms", sum.Duration.Milliseconds()).Msg(msg)
	return err
}

// warnLimited gives the pass's one warning when GitHub's secondary limit answered any
// of its requests: which endpoints, and the fallback pace of registrations.
func (p *pass) warnLimited(a APIStats) {
	n := 0
	var endpoints []string
	for e, c := range a.SecondaryLimited {
		n += c
		endpoints = append(endpoints, e)
	}
	if n == 0 {
		return
	}
	slices.Sort(endpoints)
	line := fmt.Sprintf("GitHub's secondary rate limit answered %d %s (%s): no request went until the wait it asked for was over, and the creates left wait for the next pass",
		n, plural(n, "request", "requests"), strings.Join(endpoints, ", "))
	if a.SlowWritesUntil.After(p.now) {
		line += fmt.Sprintf("; registrations go at most %d a minute until %s", FallbackWritesPerMinute, a.SlowWritesUntil.UTC().Format(time.TimeOnly))
	}
	p.warn("secondary-limit", line, p.log.Warn().Int("limited", n))
}
