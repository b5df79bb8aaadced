package reconcile

import (
	"context"
	"time"
)

// The ports: what a pass needs of GitHub and of a platform. ghpoll implements GitHub;
// gce, k8s and docker implement Backend. No go-github, compute, client-go or Docker
// type crosses into this package.

// GitHub is what a pass needs of GitHub's REST API. ghpoll implements it.
type GitHub interface {
	// OrgRepos returns the organisation's repositories that can run workflows (not
	// archived, not disabled). A list that fails part-way is an error, never a partial list.
	OrgRepos(ctx context.Context, org string) ([]Scope, error)
	// InstallationRepos returns the repositories the App installation can see that
	// can run workflows, from every page (github.installation_repos).
	InstallationRepos(ctx context.Context) ([]Scope, error)
	// QueuedJobs returns, from one listing, every queued job of the repository (those
	// of queued runs and those waiting inside in-progress runs, from every page) and
	// every job in progress, with the runner running it (Job.RunnerName).
	QueuedJobs(ctx context.Context, repo Scope) (queued, running []Job, err error)
	// Registrations returns every self-hosted runner registered in scope.
	Registrations(ctx context.Context, scope Scope) ([]Registration, error)
	// FindRegistration returns the registration of that name in scope, if any.
	FindRegistration(ctx context.Context, scope Scope, name string) (Registration, bool, error)
	// GenerateJITConfig registers an ephemeral runner (offline until it starts) and
	// returns its registration and the configuration it starts with. ErrNameTaken if a
	// runner of that name is registered already.
	GenerateJITConfig(ctx context.Context, scope Scope, name string, labels []string) (Registration, Secret, error)
	// RemoveRegistration removes a registration: nil if it is already gone,
	// ErrRunnerBusy if its runner is running a job.
	RemoveRegistration(ctx context.Context, scope Scope, id int64) error
	// PollFacts returns what the client remembers of the repositories from earlier
	// passes, and the rate limit, for ChooseRepos. Asked only on a Budget.
	PollFacts(repos []Scope) PollFacts
	// JobRunBy returns what GitHub says of the job the named runner ran in repo: the
	// job hint (the one the runner was made for) if it names the runner, else the
	// newest of the repository's latest completed runs' jobs that does. A job that
	// ended before since (the runner's creation) was an earlier runner's of that name.
	// found is false when none does. Asked only when a runner was preempted.
	JobRunBy(ctx context.Context, repo Scope, runner string, hint int64, since time.Time) (job JobOutcome, found bool, err error)
	// RerunJob re-runs a completed job: a new attempt of its run, the job queued again.
	RerunJob(ctx context.Context, repo Scope, jobID int64) error
	// TakeStats returns what GitHub charged since the last call, and starts again.
	TakeStats() APIStats
}

// Backend runs ephemeral runners on one platform.
type Backend interface {
	// List returns the runners that carry this tool's owner label, and only those,
	// from every page: a list that fails part-way is an error.
	List(ctx context.Context) ([]Runner, error)
	// Create starts a runner; nil if one of that name already exists.
	Create(ctx context.Context, spec RunnerSpec) error
	// Delete removes a runner; nil if it is already gone.
	Delete(ctx context.Context, r Runner) error
	// Options returns the pool's ways of making a runner, the preferred first (GCE's
	// instance_templates: a Spot template, then a standard one); nil for a backend
	// with one way. RunnerSpec.Option names the way a create takes; Runner.Option the
	// way a runner was made.
	Options(pool string) []string
	// Describe returns where the backend runs ("docker engine at
	// unix:///var/run/docker.sock") and what to check when it fails or does not
	// answer ("the daemon, the socket's permissions, DOCKER_HOST"), so that its errors
	// name them rather than GitHub's settings; an empty where leaves its errors as
	// they are.
	Describe() (where, check string)
}

// Checker is a Backend that can tell, changing nothing, whether a create would fail
// for a reason of the pool's own: an image the engine lacks and may not pull, a log
// driver it does not have, a namespace, a quota or a permission the Job lacks. A dry
// run asks it once for each pool it would create runners in (Reconciler.CheckCreates),
// so that looking first finds what the real pass would meet.
type Checker interface {
	CheckCreate(ctx context.Context, spec RunnerSpec) error
}
