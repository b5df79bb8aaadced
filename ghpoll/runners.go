package ghpoll

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/go-github/v66/github"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// Registrations returns every self-hosted runner registered in the repository or
// organisation, from every page, and remembers when the scope was last listed whole
// (reconcile.ChooseRepos sweeps every repository within the idle interval). A repository GitHub
// answers 404 or 403 for is reconcile.ErrUnreachable.
func (c *Client) Registrations(ctx context.Context, scope reconcile.Scope) ([]reconcile.Registration, error) {
	regs, err := c.listRunners(ctx, scope, nil)
	if err != nil {
		if !scope.IsOrg() {
			err = unreachable(scope, err)
		}
		return nil, err
	}
	st := c.cache.repo(scope.String())
	st.Swept = c.now()
	c.cache.setRepo(scope.String(), st)
	return regs, nil
}

// FindRegistration returns the registration of that name in scope, if there is one.
func (c *Client) FindRegistration(ctx context.Context, scope reconcile.Scope, name string) (reconcile.Registration, bool, error) {
	regs, err := c.listRunners(ctx, scope, &name)
	if err != nil {
		return reconcile.Registration{}, false, err
	}
	for _, r := range regs {
		if r.Name == name {
			return r, true, nil
		}
	}
	return reconcile.Registration{}, false, nil
}

func (c *Client) listRunners(ctx context.Context, scope reconcile.Scope, name *string) ([]reconcile.Registration, error) {
	key := cacheKey(kindRunners, scope)
	if name != nil {
		key += ":" + *name
	}
	return listAll(ctx, c, key,
		func(ctx context.Context, lo github.ListOptions) ([]*github.Runner, *github.Response, error) {
			opts := &github.ListRunnersOptions{Name: name, ListOptions: lo}
			var page *github.Runners
			var resp *github.Response
			var err error
			if scope.IsOrg() {
				page, resp, err = c.gh.Actions.ListOrganizationRunners(ctx, scope.Owner, opts)
			} else {
				page, resp, err = c.gh.Actions.ListRunners(ctx, scope.Owner, scope.Repo, opts)
			}
			if page == nil {
				return nil, resp, err
			}
			return page.Runners, resp, err
		},
		func(r *github.Runner) reconcile.Registration { return registration(scope, r) })
}

func registration(scope reconcile.Scope, r *github.Runner) reconcile.Registration {
	reg := reconcile.Registration{
		ID:     r.GetID(),
		Name:   r.GetName(),
		Scope:  scope,
		Online: r.GetStatus() == "online",
		Busy:   r.GetBusy(),
	}
	for _, l := range r.Labels {
		reg.Labels = append(reg.Labels, l.GetName())
	}
	return reg
}

// GenerateJITConfig registers an ephemeral just-in-time runner in scope (in the default
// runner group for a repository, in RunnerGroupID for an organisation) and returns its
// registration and its encoded configuration. reconcile.ErrNameTaken if the name is
// registered already (GitHub answers 409). Once the hour's registrations are spent
// (WritesPerHour), reconcile.ErrWriteBudget, and GitHub is not called.
func (c *Client) GenerateJITConfig(ctx context.Context, scope reconcile.Scope, name string, labels []string) (reconcile.Registration, reconcile.Secret, error) {
	if err := c.preflight(ctx); err != nil {
		return reconcile.Registration{}, "", err
	}
	if until, ok := c.cache.takeWrite(c.now(), c.writesPerHour); !ok {
		return reconcile.Registration{}, "", fmt.Errorf("%w until %s: %d registrations in the last hour (--writes-per-hour)",
			reconcile.ErrWriteBudget, until.UTC().Format(time.RFC3339), c.writesPerHour)
	}
	// Repository runners have one group, the default; org runners join the configured one.
	group := int64(1)
	if scope.IsOrg() {
		group = c.RunnerGroupID
	}
	req := &github.GenerateJITConfigRequest{Name: name, RunnerGroupID: group, Labels: labels}
	var jit *github.JITRunnerConfig
	var err error
	if scope.IsOrg() {
		jit, _, err = c.gh.Actions.GenerateOrgJITConfig(ctx, scope.Owner, req)
	} else {
		jit, _, err = c.gh.Actions.GenerateRepoJITConfig(ctx, scope.Owner, scope.Repo, req)
	}
	if status(err) == http.StatusConflict {
		return reconcile.Registration{}, "", fmt.Errorf("%w: %s in %s", reconcile.ErrNameTaken, name, scope)
	}
	if err != nil {
		return reconcile.Registration{}, "", c.check(err)
	}
	if jit.GetEncodedJITConfig() == "" || jit.Runner == nil {
		return reconcile.Registration{}, "", errors.New("generate-jitconfig answered without a runner or a configuration")
	}
	return registration(scope, jit.Runner), reconcile.Secret(jit.GetEncodedJITConfig()), nil
}

// RemoveRegistration removes a runner registration: nil if it is already gone,
// reconcile.ErrRunnerBusy if GitHub refuses because the runner is running a job
// (GitHub answers 422).
func (c *Client) RemoveRegistration(ctx context.Context, scope reconcile.Scope, id int64) error {
	if err := c.preflight(ctx); err != nil {
		return err
	}
	var err error
	if scope.IsOrg() {
		_, err = c.gh.Actions.RemoveOrganizationRunner(ctx, scope.Owner, id)
	} else {
		_, err = c.gh.Actions.RemoveRunner(ctx, scope.Owner, scope.Repo, id)
	}
	switch status(err) {
	case http.StatusNotFound:
		return nil
	case http.StatusUnprocessableEntity:
		return fmt.Errorf("%w: runner %d in %s: %v", reconcile.ErrRunnerBusy, id, scope, err)
	}
	return c.check(err)
}

// recentRuns is how many of a repository's latest completed runs JobRunBy looks
// through when the job a runner was made for is not the one it ran.
const recentRuns = 10

// JobRunBy returns what GitHub says of the job the named runner ran in repo: hint (the
// job it was made for) if that job names the runner, else the newest job of the
// repository's latest completed runs that does (every attempt's). A job that ended
// before since ran on an earlier runner of that name. Two requests in the usual case,
// at most 2 + recentRuns.
func (c *Client) JobRunBy(ctx context.Context, repo reconcile.Scope, runner string, hint int64, since time.Time) (reconcile.JobOutcome, bool, error) {
	ran := func(j *github.WorkflowJob) bool {
		return strings.EqualFold(j.GetRunnerName(), runner) && (j.GetStatus() != statusCompleted || !j.GetCompletedAt().Before(since))
	}
	if err := c.preflight(ctx); err != nil {
		return reconcile.JobOutcome{}, false, err
	}
	if repo.IsOrg() {
		return reconcile.JobOutcome{}, false, nil // a warm org runner: no repository to look in
	}
	if hint > 0 {
		j, _, err := c.gh.Actions.GetWorkflowJobByID(ctx, repo.Owner, repo.Repo, hint)
		if err != nil && status(err) != http.StatusNotFound {
			return reconcile.JobOutcome{}, false, c.check(err)
		}
		if err == nil && ran(j) {
			return c.outcome(ctx, repo, j, nil)
		}
	}
	runs, _, err := c.gh.Actions.ListRepositoryWorkflowRuns(ctx, repo.Owner, repo.Repo,
		&github.ListWorkflowRunsOptions{Status: statusCompleted, ListOptions: github.ListOptions{PerPage: recentRuns}})
	if err != nil {
		return reconcile.JobOutcome{}, false, c.check(err)
	}
	for _, run := range runs.WorkflowRuns {
		jobs, _, err := c.gh.Actions.ListWorkflowJobs(ctx, repo.Owner, repo.Repo, run.GetID(),
			&github.ListWorkflowJobsOptions{Filter: "all", ListOptions: github.ListOptions{PerPage: 100}})
		if err != nil {
			return reconcile.JobOutcome{}, false, c.check(err)
		}
		for _, j := range slices.Backward(jobs.Jobs) { // the newest first
			if ran(j) {
				return c.outcome(ctx, repo, j, run)
			}
		}
	}
	return reconcile.JobOutcome{}, false, nil
}

// outcome is a job as reconcile.JudgePreempted needs it, with its run (fetched when
// run is nil).
func (c *Client) outcome(ctx context.Context, repo reconcile.Scope, j *github.WorkflowJob, run *github.WorkflowRun) (reconcile.JobOutcome, bool, error) {
	if run == nil {
		var err error
		if run, _, err = c.gh.Actions.GetWorkflowRunByID(ctx, repo.Owner, repo.Repo, j.GetRunID()); err != nil {
			return reconcile.JobOutcome{}, false, c.check(err)
		}
	}
	o := reconcile.JobOutcome{ID: j.GetID(), RunID: j.GetRunID(), Repo: repo, Labels: j.Labels, Status: jobStatus(j.GetStatus()),
		Conclusion: conclusion(j.GetConclusion()), Concluded: j.GetConclusion(), RunnerName: j.GetRunnerName(), CompletedAt: j.GetCompletedAt().Time,
		RunAttempt: int(j.GetRunAttempt()), LatestAttempt: run.GetRunAttempt(), RunStatus: jobStatus(run.GetStatus())}
	if o.RunAttempt > 1 { // its earlier attempts: every attempt's jobs of the run
		all, _, err := c.gh.Actions.ListWorkflowJobs(ctx, repo.Owner, repo.Repo, j.GetRunID(),
			&github.ListWorkflowJobsOptions{Filter: "all", ListOptions: github.ListOptions{PerPage: 100}})
		if err != nil {
			return reconcile.JobOutcome{}, false, c.check(err)
		}
		for _, e := range all.Jobs {
			if e.GetName() == j.GetName() && e.GetRunAttempt() < j.GetRunAttempt() &&
				died(e.GetConclusion()) {
				o.PriorFailures++
			}
		}
	}
	for _, st := range j.Steps {
		if st.GetConclusion() == conclusionFailure {
			o.StepFailedAt = st.GetCompletedAt().Time
			break
		}
	}
	return o, true, nil
}

// RerunJob re-runs a completed job of a completed run (Actions: write).
func (c *Client) RerunJob(ctx context.Context, repo reconcile.Scope, jobID int64) error {
	if err := c.preflight(ctx); err != nil {
		return err
	}
	_, err := c.gh.Actions.RerunJobByID(ctx, repo.Owner, repo.Repo, jobID)
	return c.check(err)
}
