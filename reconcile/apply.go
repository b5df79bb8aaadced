package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// apply is the last stage of a pass, and the only one that writes; it alone decides
// a dry run, which says what it would do. Re-runs go first (a runner whose job's
// re-run failed is kept as evidence), then deletions, to free capacity and names, then
// creates; last, what the pass learned is noted for the next ones.
func (p *pass) apply(ctx context.Context, obs Observed, plan Plan) Summary {
	sum := Summary{DryRun: p.rc.DryRun, Started: p.now, Observed: obs, Plan: plan,
		Repos: p.repos, Jobs: len(obs.Jobs), Runners: len(obs.Runners), Unreachable: p.unreachableRepos()}
	p.logDecisions(plan)
	if p.rc.DryRun {
		p.describe(plan)
		if p.rc.CheckCreates {
			p.checkCreates(ctx, plan.Create)
		}
		return sum
	}
	kept := p.rerunAll(ctx, plan.Reruns())
	deletes := slices.DeleteFunc(slices.Clone(plan.Delete), func(d Delete) bool { return kept[d.Runner.Name] })
	left := p.removeAll(ctx, deletes, plan.Deregister, &sum)
	created, begun, total := p.createAll(ctx, plan.Create, plan.Waiting)
	sum.Created = created
	left.creates = total - begun
	p.leftOver(ctx, left, &sum)
	p.rememberUnservable(plan.Unservable)
	sum.Usage = p.account(obs, plan)
	return sum
}

// describe says what a dry run would do.
func (p *pass) describe(plan Plan) {
	for _, j := range plan.Reruns() {
		p.rerunEvent(string(ActionRerun), j).Msg("would re-run job")
	}
	for _, d := range plan.Delete {
		p.deleteEvent(zerolog.InfoLevel, d).Msg("would delete runner")
	}
	for _, d := range plan.Deregister {
		p.deregisterEvent(zerolog.InfoLevel, d).Msg("would remove registration")
	}
	for _, c := range plan.Create {
		p.createEvent(zerolog.InfoLevel, c).Msg("would create runner")
	}
}

// checkCreates asks each pool's backend, once, whether the first create the dry run
// plans there would work; one that would not fails the pass, saying why.
func (p *pass) checkCreates(ctx context.Context, creates []Create) {
	asked := map[string]bool{}
	for _, c := range creates {
		b, ok := p.rc.Backends[c.Pool].(Checker)
		if !ok || asked[c.Pool] {
			continue
		}
		asked[c.Pool] = true
		err := p.rc.within(ctx, p.rc.Backends[c.Pool], func(ctx context.Context) error { return b.CheckCreate(ctx, c.RunnerSpec) })
		if err != nil {
			err = fmt.Errorf("pool %s: a real pass would fail to create its runners: %w", c.Pool, err)
			p.fail(StageCreate, err)
			p.createEvent(zerolog.ErrorLevel, c).Err(err).Msg("a create would fail")
		}
	}
}

// logDecisions logs what the plan decided that is no action: jobs not served, and
// preempted runners' jobs kept waiting or left alone.
func (p *pass) logDecisions(plan Plan) {
	for _, r := range plan.Refused {
		p.log.Info().Str("action", "skip").Str("pool", r.Pool).Str("repo", r.Job.Repo.String()).Int64("job_id", r.Job.ID).
			Str("reason", string(r.Reason)).Msg("job not served")
	}
	for _, u := range plan.Unservable {
		p.log.Warn().Str("action", "skip").Str("reason", string(ReasonUnservable)).Str("pool", u.Pool).
			Str("repo", u.Job.Repo.String()).Int64("job_id", u.Job.ID).Str("job", u.Job.Name).Str("runner", u.Runner).
			Msg("GitHub does not give this job to our idle runner: runs-on names a runner group, or the runner group does not allow this repository (public repositories are excluded by default) or workflow; it no longer holds a runner")
	}
	for _, j := range plan.Preempted {
		switch j.Verdict {
		case VerdictWait:
			p.rerunEvent("keep", j).Str("why", j.Why).Msg("preempted runner kept until GitHub ends its job")
		case VerdictSkip:
			p.rerunEvent("skip", j).Str("why", j.Why).Msg("job of a preempted runner not re-run")
		}
	}
}

// notStarted counts the planned actions a pass did not start.
type notStarted struct{ deletes, deregisters, creates int }

// removeAll carries out the deletions and the registrations' removals. Once the pass
// is told to stop (a signal, --timeout), it starts no new one; one under way finishes,
// or undoes itself, within InFlight. It returns how many it did not start.
func (p *pass) removeAll(ctx context.Context, deletes []Delete, deregs []Deregister, sum *Summary) notStarted {
	var mu sync.Mutex
	var started notStarted
	count := func(n *int) {
		mu.Lock()
		*n++
		mu.Unlock()
	}
	work := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), p.rc.inFlight())
	}
	each(ctx, p.rc.concurrency(), deletes, func(d Delete) {
		wctx, cancel := work()
		defer cancel()
		count(&started.deletes)
		if p.delete(wctx, d) {
			p.mu.Lock()
			p.deleted[d.Runner.Name] = d.Runner.CreatedAt
			p.mu.Unlock()
			count(&sum.Deleted)
		}
	})
	each(ctx, p.rc.concurrency(), deregs, func(d Deregister) {
		wctx, cancel := work()
		defer cancel()
		count(&started.deregisters)
		if p.deregister(wctx, d) {
			count(&sum.Deregistered)
		}
	})
	return notStarted{deletes: len(deletes) - started.deletes, deregisters: len(deregs) - started.deregisters}
}

// rerunAll re-runs the jobs preemptions killed, and returns the runners to keep as
// evidence: those whose re-run failed, within PreemptionEvidenceTTL (the next pass
// looks again).
func (p *pass) rerunAll(ctx context.Context, reruns []Judged) map[string]bool {
	kept := map[string]bool{}
	for _, j := range reruns {
		if ctx.Err() != nil {
			break
		}
		if err := p.rc.GitHub.RerunJob(ctx, j.Job.Repo, j.Job.ID); err != nil {
			kept[j.Runner.Name] = p.now.Sub(j.Runner.PreemptedAt) < PreemptionEvidenceTTL
			p.fail(StageRerun, fmt.Errorf("re-running job %d of %s, which preempted runner %s ran: %w", j.Job.ID, j.Job.Repo, j.Runner.Name, err))
			continue
		}
		p.rerunEvent(string(ActionRerun), j).Msg("re-ran job")
		p.count(Action{ActionRerun, j.Runner.Pool, ReasonPreempted})
	}
	return kept
}

// unservable returns the jobs found unservable, and when, as the Memo keeps them.
func (rc *Reconciler) unservable() map[int64]time.Time {
	out := map[int64]time.Time{}
	if v, ok := rc.memo.Recall(MemoUnservable, ""); ok {
		if json.Unmarshal([]byte(v), &out) != nil {
			return map[int64]time.Time{} // unreadable: those jobs are only tested again
		}
	}
	return out
}

// rememberUnservable notes the jobs found unservable this pass, so that the next passes
// (of this process, or of the next ones through the Memo) make no runner for them until
// UnservableRetry has passed, and forgets those found longer ago.
func (p *pass) rememberUnservable(found []Unservable) {
	jobs := p.rc.unservable()
	for id, at := range jobs {
		if p.now.Sub(at) >= UnservableRetry {
			delete(jobs, id)
		}
	}
	for _, u := range found {
		jobs[u.Job.ID] = p.now
	}
	data := ""
	if len(jobs) > 0 {
		b, _ := json.Marshal(jobs)
		data = string(b)
	}
	p.rc.memo.Remember(MemoUnservable, "", data)
}

// deferrable reports whether registrations stopped for a reason that defers the creates
// left to the next pass without failing this one: the hour's budget is spent, or
// GitHub's secondary limit answered one (the next pass goes at the fallback pace).
func deferrable(stopped error) bool {
	return errors.Is(stopped, ErrWriteBudget) || errors.Is(stopped, ErrSecondaryLimited)
}

// leftOver says what the pass did not start, and why. Creates left at the pass's
// deadline, or once the hour's registrations are spent, are deferred: the pass went as
// fast as GitHub allows, and the next one goes on. A signal, or GitHub's own rate
// limit, fails the pass.
func (p *pass) leftOver(ctx context.Context, left notStarted, sum *Summary) {
	if left == (notStarted{}) {
		return
	}
	sum.NotStarted = left.deletes + left.deregisters + left.creates
	stopped := p.writesStopped // apply is done: no other goroutine
	switch {
	case ctx.Err() == nil && deferrable(stopped),
		errors.Is(ctx.Err(), context.DeadlineExceeded) && left.deletes+left.deregisters == 0 && (stopped == nil || deferrable(stopped)):
		sum.Deferred = left.creates
		why := fmt.Sprintf("its deadline (%v) came while registering runners at the write pace", context.Cause(ctx))
		if stopped != nil {
			why = stopped.Error()
		}
		ev := p.log.Warn()
		if errors.Is(stopped, ErrSecondaryLimited) {
			ev = p.log.Info() // the pass's one warning about GitHub's limit says it (warnLimited)
		}
		ev.Int("creates_left", left.creates).Str("why", why).Msg("creates deferred to the next pass")
	case ctx.Err() == nil && stopped != nil:
		p.fail(StageRegister, fmt.Errorf("%w: %d creates left for the next pass, which waits as GitHub asked", stopped, left.creates))
	case ctx.Err() == nil:
		p.fail(StageCreate, fmt.Errorf("%d deletions, %d registration removals and %d creates not started", left.deletes, left.deregisters, left.creates))
	default:
		p.fail(StageInterrupted, fmt.Errorf("pass stopped (%v): %d deletions, %d registration removals and %d creates not started; the next pass plans them again",
			context.Cause(ctx), left.deletes, left.deregisters, left.creates))
	}
}

func (p *pass) deleteEvent(level zerolog.Level, d Delete) *zerolog.Event {
	return p.log.WithLevel(level).
		Str("action", string(ActionDelete)).
		Str("runner", d.Runner.Name).
		Str("pool", d.Runner.Pool).
		Str("repo", d.Runner.Repo.String()).
		Int64("job_id", d.Runner.JobID).
		Str("reason", string(d.Reason)).
		Bool("dry_run", p.rc.DryRun)
}

func (p *pass) deregisterEvent(level zerolog.Level, d Deregister) *zerolog.Event {
	jobID, _ := ParseRunnerName(p.rc.Config.NamePrefix, d.Reg.Name)
	return p.log.WithLevel(level).
		Str("action", string(ActionDeregister)).
		Str("runner", d.Reg.Name).
		Str("repo", d.Reg.Scope.String()).
		Int64("job_id", jobID).
		Str("reason", string(d.Reason)).
		Bool("dry_run", p.rc.DryRun)
}

func (p *pass) createEvent(level zerolog.Level, c Create) *zerolog.Event {
	return p.log.WithLevel(level).
		Str("action", string(ActionCreate)).
		Str("runner", c.Name).
		Str("pool", c.Pool).
		Str("repo", c.Repo.String()).
		Int64("job_id", c.JobID).
		Str("reason", string(c.Reason)).
		Bool("dry_run", p.rc.DryRun)
}

// mustGo reports whether a runner is deleted even when its registration cannot be
// removed first: it is dead, or past its lifetime.
func mustGo(r Reason) bool { return r == ReasonFinished || r == ReasonExpired || r == ReasonGone }

// delete removes a runner, and first its registration, so that a runner thought idle
// cannot take a job while its machine goes away.
func (p *pass) delete(ctx context.Context, d Delete) bool {
	if d.Reg != nil {
		err := p.rc.GitHub.RemoveRegistration(ctx, d.Reg.Scope, d.Reg.ID)
		switch {
		case errors.Is(err, ErrRunnerBusy) && !mustGo(d.Reason):
			p.deleteEvent(zerolog.InfoLevel, d).Msg("runner took a job meanwhile; kept")
			return false
		case err != nil && !mustGo(d.Reason):
			p.deleteEvent(zerolog.WarnLevel, d).Err(err).Msg("could not remove registration; runner kept")
			p.fail(StageDeregister, fmt.Errorf("removing registration of %s: %w", d.Runner.Name, err))
			return false
		case err != nil:
			p.fail(StageDeregister, fmt.Errorf("removing registration of %s: %w", d.Runner.Name, err))
		}
	}
	b, ok := p.owner[d.Runner.Name]
	if !ok {
		p.fail(StageDelete, fmt.Errorf("deleting runner %s: no backend listed it", d.Runner.Name))
		return false
	}
	if err := p.rc.within(ctx, b, func(ctx context.Context) error { return b.Delete(ctx, d.Runner) }); err != nil {
		p.deleteEvent(zerolog.ErrorLevel, d).Err(err).Msg("delete failed")
		p.fail(StageDelete, fmt.Errorf("deleting runner %s: %w", d.Runner.Name, err))
		return false
	}
	p.deleteEvent(zerolog.InfoLevel, d).Msg("deleted runner")
	p.count(Action{ActionDelete, d.Runner.Pool, d.Reason})
	return true
}

func (p *pass) deregister(ctx context.Context, d Deregister) bool {
	err := p.rc.GitHub.RemoveRegistration(ctx, d.Reg.Scope, d.Reg.ID)
	switch {
	case errors.Is(err, ErrRunnerBusy):
		p.deregisterEvent(zerolog.InfoLevel, d).Msg("registration took a job meanwhile; kept")
		return false
	case err != nil:
		p.deregisterEvent(zerolog.ErrorLevel, d).Err(err).Msg("removing registration failed")
		p.fail(StageDeregister, fmt.Errorf("removing registration %s in %s: %w", d.Reg.Name, d.Reg.Scope, err))
		return false
	}
	p.deregisterEvent(zerolog.InfoLevel, d).Msg("removed registration")
	p.count(Action{Kind: ActionDeregister, Reason: d.Reason})
	return true
}

func (p *pass) rerunEvent(action string, j Judged) *zerolog.Event {
	repo := j.Job.Repo
	if repo == (Scope{}) {
		repo = j.Runner.Repo
	}
	return p.log.Info().
		Str("action", action).
		Str("runner", j.Runner.Name).
		Str("pool", j.Runner.Pool).
		Str("repo", repo.String()).
		Int64("job_id", j.Job.ID).
		Str("reason", string(ReasonPreempted)).
		Bool("dry_run", p.rc.DryRun)
}
