package ghpoll

import "github.com/reconcile-dev/reconcile/reconcile"

// GitHub's words for a job's and a run's status and conclusion, and what the core
// makes of them: here, and only here. Source: GitHub's REST API, "Workflow jobs"
// (status: queued, in_progress, completed, waiting, requested, pending; conclusion:
// success, failure, neutral, cancelled, skipped, timed_out, action_required).
const (
	statusQueued     = "queued"
	statusInProgress = "in_progress"
	statusCompleted  = "completed"

	conclusionFailure   = "failure"
	conclusionCancelled = "cancelled"
)

// jobStatus maps a job's or a run's status.
func jobStatus(s string) reconcile.JobStatus {
	switch s {
	case statusInProgress:
		return reconcile.JobInProgress
	case statusCompleted:
		return reconcile.JobCompleted
	}
	return reconcile.JobWaiting
}

// conclusion maps a completed job's conclusion.
func conclusion(s string) reconcile.Conclusion {
	switch s {
	case conclusionFailure:
		return reconcile.ConclusionFailed
	case conclusionCancelled:
		return reconcile.ConclusionCancelled
	}
	return reconcile.ConclusionOther
}

// died reports whether a job ended failed or cancelled.
func died(s string) bool { return conclusion(s) != reconcile.ConclusionOther }
