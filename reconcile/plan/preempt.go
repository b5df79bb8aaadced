package plan

import (
	"strings"
	"time"
)

// A Spot VM or a node taken away mid-job fails the job ("The self-hosted runner lost
// communication with the server"), or, when the runner had time to hear the shutdown,
// cancels it; GitHub never queues it again. The backends report a runner's preemption
// (GCE's compute.instances.preempted operation; a pod's DisruptionTarget condition),
// and the pass, with what GitHub says of the job the runner ran, re-runs it
// (POST /repos/{o}/{r}/actions/jobs/{id}/rerun) up to the pool's rerun_preempted times.

// JobStatus is where a job, or a run, is in its life. ghpoll maps GitHub's words to it.
type JobStatus int

// The statuses the pass tells apart.
const (
	JobWaiting    JobStatus = iota // queued, or waiting, pending or requested: not taken yet
	JobInProgress                  // a runner runs it
	JobCompleted                   // ended, whatever its conclusion
)

func (s JobStatus) String() string {
	switch s {
	case JobInProgress:
		return "running"
	case JobCompleted:
		return "ended"
	}
	return "waiting"
}

// Conclusion is how a completed job ended, as far as a re-run cares.
type Conclusion int

// The conclusions the pass tells apart.
const (
	ConclusionOther     Conclusion = iota // succeeded, skipped, neutral, timed out, …
	ConclusionFailed                      // failed
	ConclusionCancelled                   // cancelled
)

// JobOutcome is what GitHub says of a job a runner ran, and of its run.
type JobOutcome struct {
	ID, RunID  int64
	Repo       Scope
	Labels     []string
	Status     JobStatus
	Conclusion Conclusion
	// Concluded is GitHub's own word for the conclusion, for the log.
	Concluded  string
	RunnerName string
	// CompletedAt is when the job ended; StepFailedAt when its first step that
	// concluded failure ended (zero: none did).
	CompletedAt, StepFailedAt time.Time
	// RunAttempt is the run's attempt the job belongs to (1 for the first);
	// LatestAttempt the run's latest. RunStatus is the run's: GitHub re-runs a job
	// only once its whole run has completed.
	RunAttempt, LatestAttempt int
	RunStatus                 JobStatus
	// PriorFailures counts the run's earlier attempts in which this job (by name)
	// ended failed or cancelled: how often it has died, and been re-run, already.
	PriorFailures int
}

// PreemptionEvidenceTTL bounds how long a preempted runner is kept, as evidence, while
// GitHub has not yet ended its job (it notices a runner that vanished within minutes)
// or the job's run (GitHub re-runs a job only once its run has completed: the other
// jobs of a matrix run on). Past it, the runner is deleted and its job left as it is.
const PreemptionEvidenceTTL = 6 * time.Hour

// preemptionSlack: a job, or a step, that ended more than this before the preemption
// ended on its own.
const preemptionSlack = 2 * time.Minute

// Verdict is what to do with the job a preempted runner ran.
type Verdict int

const (
	// VerdictSkip: leave the job as it is (see the reason).
	VerdictSkip Verdict = iota
	// VerdictWait: GitHub has not ended the job yet; keep the runner, as evidence.
	VerdictWait
	// VerdictRerun: re-run the job.
	VerdictRerun
)

// JudgePreempted decides, from the pool, the preempted runner and what GitHub says of
// the job it ran (found false: no job names the runner), whether to re-run that job.
// A job is re-run only when it ran on this runner, ended failed or cancelled at the
// preemption (not before it: a job whose own step failed earlier failed on its own),
// a pool of ours serves its labels, its run has not been re-run since and has
// completed, and it has not died in as many earlier attempts as the runner's pool's
// rerun_preempted (a job first run in a re-run attempt, because a job it needs was
// re-run, has died in none).
func JudgePreempted(cfg Config, r Runner, j JobOutcome, found bool, now time.Time) (Verdict, string) {
	pool := cfg.Pool(r.Pool)
	switch {
	case pool == nil || pool.Reruns() == 0:
		return VerdictSkip, "rerun_preempted is 0"
	case !found:
		// Taken before it ran a job (the job it was made for, still queued, gets
		// another runner), or its job is not among those GitHub shows.
		return VerdictSkip, "no job names the runner"
	case !strings.EqualFold(j.RunnerName, r.Name):
		return VerdictSkip, "the job ran on another runner"
	case j.Status != JobCompleted:
		if now.Sub(r.PreemptedAt) < PreemptionEvidenceTTL {
			return VerdictWait, "GitHub has not ended the job yet"
		}
		return VerdictSkip, "GitHub did not end the job within " + PreemptionEvidenceTTL.String()
	case j.Conclusion != ConclusionFailed && j.Conclusion != ConclusionCancelled:
		return VerdictSkip, "the job concluded " + j.Concluded
	case j.CompletedAt.Before(r.PreemptedAt.Add(-preemptionSlack)):
		return VerdictSkip, "the job ended before the preemption"
	case !j.StepFailedAt.IsZero() && j.StepFailedAt.Before(r.PreemptedAt.Add(-preemptionSlack)):
		return VerdictSkip, "a step of the job failed before the preemption"
	case j.LatestAttempt > j.RunAttempt:
		return VerdictSkip, "its run was re-run already"
	case j.RunStatus != JobCompleted:
		if now.Sub(r.PreemptedAt) < PreemptionEvidenceTTL {
			return VerdictWait, "its run's other jobs are still running"
		}
		return VerdictSkip, "its run did not complete within " + PreemptionEvidenceTTL.String()
	case j.PriorFailures >= pool.Reruns():
		return VerdictSkip, "re-run as often as rerun_preempted allows"
	case MatchPool(cfg.Pools, j.Labels) == nil:
		// GitHub gives a runner any job its labels cover, so the job may belong to
		// another of our pools (the one the re-run job will get a runner from); one
		// that no pool serves is not ours to re-run.
		return VerdictSkip, "no pool serves the job's labels"
	}
	return VerdictRerun, ""
}

// Lookup is what GitHub said of the job a preempted runner ran (GitHub.JobRunBy), as
// observed for the planner.
type Lookup struct {
	Job   JobOutcome
	Found bool // a job names the runner
	// Failed: the lookup failed. The runner is kept as evidence, within
	// PreemptionEvidenceTTL, and looked up again next pass.
	Failed bool
}

// Judged is the planner's verdict on the job a preempted runner ran: a re-run to make
// (VerdictRerun, a write the pass applies), the runner kept as evidence (VerdictWait),
// or the job left as it is (VerdictSkip, and why).
type Judged struct {
	Runner  Runner
	Job     JobOutcome
	Verdict Verdict
	Why     string
}

// judgePreempted judges the jobs of the preempted runners that were looked up, and holds
// the runners kept as evidence.
func (pl *planner) judgePreempted() {
	for _, r := range pl.runners {
		l, ok := pl.obs.Preempted[r.Name]
		switch {
		case !ok:
			continue
		case l.Failed:
			pl.holding[r.Name] = pl.now.Sub(r.PreemptedAt) < PreemptionEvidenceTTL
			continue
		}
		verdict, why := JudgePreempted(pl.cfg, r, l.Job, l.Found, pl.now)
		if verdict == VerdictWait {
			pl.holding[r.Name] = true
		}
		pl.plan.Preempted = append(pl.plan.Preempted, Judged{Runner: r, Job: l.Job, Verdict: verdict, Why: why})
	}
}
