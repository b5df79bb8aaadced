package reconcile

import (
	"context"
	"slices"
	"time"
)

// Taking an installation down (`reconcile down`): passes with the Teardown planner,
// an interval apart, until a pass sees nothing of ours on GitHub or the platforms.
// They create nothing and re-run nothing; they remove idle and booting runners with
// their registrations at once, give busy ones Wait to finish their jobs and then
// remove them, and remove every registration of ours left without a runner. Each pass
// polls every repository (no budget): a registration in a quiet repository counts.

// DownOptions say how the installation is taken down.
type DownOptions struct {
	Wait     time.Duration // how long busy runners get to finish their jobs
	Grace    time.Duration // after Wait, how long to go on while something is left
	Interval time.Duration // between passes
	Timeout  time.Duration // each pass's deadline
	// After is called with each pass's summary and error (logs, the table).
	After func(Summary, error)
}

// DownReport is what the passes removed, and what the last one still saw.
type DownReport struct {
	Passes        int
	Removed       map[string]int // runners removed, by pool
	Deregistered  int            // registrations removed without a runner
	ForcedBusy    []string       // busy runners removed when the wait ran out
	Left          []string       // runners and registrations of ours the last pass saw
	Unseen        bool           // the last pass could not see everything
	MadeMeanwhile []string       // runners made after down began: another process still creates
	Would         Plan           // a dry run's plan
}

// Done reports whether nothing of the installation is left.
func (r DownReport) Done() bool { return len(r.Left) == 0 && !r.Unseen }

// Down takes the installation down; see DownOptions. It returns when nothing is left,
// when the wait and the grace after it are over (the report says what is left), or
// when ctx ends. A dry run makes one pass and reports what it would remove.
func (rc *Reconciler) Down(ctx context.Context, o DownOptions) (DownReport, error) {
	rep := DownReport{Removed: map[string]int{}}
	start := rc.now()
	rc.Budget = Budget{}
	made := map[string]bool{}
	for {
		removeBusy := !rc.now().Before(start.Add(o.Wait))
		rc.planner = func(obs Observed, cfg Config, now time.Time) Plan { return Teardown(obs, cfg, now, removeBusy) }
		sum, err := rc.RunWithin(ctx, o.Timeout)
		if o.After != nil {
			o.After(sum, err)
		}
		rep.Passes++
		rep.count(sum, start, made, rc.Config.NamePrefix)
		switch {
		case rc.DryRun:
			rep.Would = sum.Plan
			return rep, err
		case err == nil && rep.Done():
			return rep, nil
		case !rc.now().Before(start.Add(o.Wait + o.Grace)):
			return rep, err
		}
		select {
		case <-ctx.Done():
			return rep, context.Cause(ctx)
		case <-time.After(o.Interval):
		}
	}
}

// count adds what a pass removed to the report, and notes what it still saw.
func (rep *DownReport) count(sum Summary, start time.Time, made map[string]bool, prefix string) {
	for a, n := range sum.Done {
		switch a.Kind {
		case ActionDelete:
			rep.Removed[a.Pool] += n
		case ActionDeregister:
			rep.Deregistered += n
		}
	}
	for _, d := range sum.Plan.Delete {
		if d.Reason == ReasonDown && sum.Plan.States[d.Runner.Name] == StateBusy && !sum.DryRun {
			rep.ForcedBusy = append(rep.ForcedBusy, d.Runner.Name)
		}
	}
	rep.Left = rep.Left[:0]
	for _, r := range sum.Observed.Runners {
		rep.Left = append(rep.Left, r.Name+" ("+string(sum.Plan.States[r.Name])+")")
		if r.CreatedAt.After(start) && !made[r.Name] {
			made[r.Name] = true
			rep.MadeMeanwhile = append(rep.MadeMeanwhile, r.Name)
		}
	}
	for _, g := range sum.Observed.Regs {
		if _, ours := ParseRunnerName(prefix, g.Name); ours && !slices.ContainsFunc(sum.Observed.Runners, func(r Runner) bool { return r.Name == g.Name }) {
			rep.Left = append(rep.Left, "registration "+g.Name+" in "+g.Scope.String())
		}
	}
	b := sum.Observed.Blind
	rep.Unseen = len(b.Jobs)+len(b.Regs)+len(b.Pools) > 0
}
