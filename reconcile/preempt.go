package reconcile

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"
)

// rerunPreempted re-runs the jobs that preemptions of our runners killed, and returns
// the preempted runners to keep until GitHub has ended their jobs. It asks GitHub
// nothing in a pass without a preempted runner.
func (p *pass) rerunPreempted(ctx context.Context, obs Observed) map[string]bool {
	hold := map[string]bool{}
	for _, r := range obs.Runners {
		if r.PreemptedAt.IsZero() || r.Phase != PhaseFinished || ctx.Err() != nil {
			continue
		}
		if pool := p.rc.Config.Pool(r.Pool); pool == nil || pool.Reruns() == 0 {
			continue
		}
		job, found, err := p.rc.GitHub.JobRunBy(ctx, r.Repo, r.Name, r.JobID, r.CreatedAt.Truncate(time.Second)) // GitHub's times are whole seconds
		if err != nil {
			// The lookup only refines what happens to a finished runner: it is kept as
			// evidence (within PreemptionEvidenceTTL) and looked up again next pass; the
			// pass goes on and does not fail for it.
			hold[r.Name] = p.now.Sub(r.PreemptedAt) < PreemptionEvidenceTTL
			p.softFail(fmt.Errorf("looking up the job preempted runner %s ran (the runner is kept, and looked up again next pass): %w", r.Name, err))
			continue
		}
		verdict, why := JudgePreempted(*p.rc.Config, r, job, found, p.now)
		switch {
		case verdict == VerdictWait:
			hold[r.Name] = true
			p.rerunEvent("keep", r, job).Str("why", why).Msg("preempted runner kept until GitHub ends its job")
		case verdict == VerdictSkip:
			p.rerunEvent("skip", r, job).Str("why", why).Msg("job of a preempted runner not re-run")
		case p.rc.DryRun:
			p.rerunEvent("rerun", r, job).Msg("would re-run job")
		default:
			if err := p.rc.GitHub.RerunJob(ctx, job.Repo, job.ID); err != nil {
				hold[r.Name] = p.now.Sub(r.PreemptedAt) < PreemptionEvidenceTTL
				p.fail(StageRerun, fmt.Errorf("re-running job %d of %s, which preempted runner %s ran: %w", job.ID, job.Repo, r.Name, err))
				continue
			}
			p.rerunEvent("rerun", r, job).Msg("re-ran job")
			p.count(Action{"rerun", r.Pool, ReasonPreempted})
		}
	}
	return hold
}

func (p *pass) rerunEvent(action string, r Runner, j JobOutcome) *zerolog.Event {
	repo := j.Repo
	if repo == (Scope{}) {
		repo = r.Repo
	}
	return p.log.Info().
		Str("action", action).
		Str("runner", r.Name).
		Str("pool", r.Pool).
		Str("repo", repo.String()).
		Int64("job_id", j.ID).
		Str("reason", string(ReasonPreempted)).
		Bool("dry_run", p.rc.DryRun)
}
