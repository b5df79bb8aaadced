package ghpoll

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-github/v66/github"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// OrgRepos returns the organisation's repositories that can run workflows: every page,
// archived and disabled ones left out.
func (c *Client) OrgRepos(ctx context.Context, org string) ([]reconcile.Scope, error) {
	repos, err := listAll(ctx, c, func(lo github.ListOptions) ([]*github.Repository, *github.Response, error) {
		return c.gh.Repositories.ListByOrg(ctx, org, &github.RepositoryListByOrgOptions{Type: "all", ListOptions: lo})
	})
	if err != nil {
		return nil, err
	}
	out := make([]reconcile.Scope, 0, len(repos))
	for _, r := range repos {
		if r.GetArchived() || r.GetDisabled() {
			continue
		}
		owner := r.GetOwner().GetLogin()
		if owner == "" {
			owner = org
		}
		out = append(out, reconcile.Scope{Owner: strings.ToLower(owner), Repo: strings.ToLower(r.GetName())})
	}
	return out, nil
}

// QueuedJobs returns every queued job of the repository. Jobs wait both in queued runs
// and inside in-progress runs (the later jobs of a matrix or of a dependent stage), so
// both lists are read, every page, and every page of each run's latest jobs.
func (c *Client) QueuedJobs(ctx context.Context, repo reconcile.Scope) ([]reconcile.Job, error) {
	var runs []*github.WorkflowRun
	seen := map[int64]bool{}
	for _, st := range []string{"queued", "in_progress"} {
		rs, err := listAll(ctx, c, func(lo github.ListOptions) ([]*github.WorkflowRun, *github.Response, error) {
			page, resp, err := c.gh.Actions.ListRepositoryWorkflowRuns(ctx, repo.Owner, repo.Repo,
				&github.ListWorkflowRunsOptions{Status: st, ListOptions: lo})
			if page == nil {
				return nil, resp, err
			}
			return page.WorkflowRuns, resp, err
		})
		if err != nil {
			return nil, fmt.Errorf("listing %s runs: %w", st, err)
		}
		for _, r := range rs {
			// A run that changed status between the two lists shows up in both.
			if !seen[r.GetID()] {
				seen[r.GetID()] = true
				runs = append(runs, r)
			}
		}
	}
	var out []reconcile.Job
	for _, run := range runs {
		jobs, err := listAll(ctx, c, func(lo github.ListOptions) ([]*github.WorkflowJob, *github.Response, error) {
			page, resp, err := c.gh.Actions.ListWorkflowJobs(ctx, repo.Owner, repo.Repo, run.GetID(),
				&github.ListWorkflowJobsOptions{Filter: "latest", ListOptions: lo})
			if page == nil {
				return nil, resp, err
			}
			return page.Jobs, resp, err
		})
		if err != nil {
			return nil, fmt.Errorf("listing jobs of run %d: %w", run.GetID(), err)
		}
		for _, j := range jobs {
			if j.GetStatus() != "queued" {
				continue
			}
			created := j.GetCreatedAt().Time
			if created.IsZero() {
				created = run.GetCreatedAt().Time
			}
			out = append(out, reconcile.Job{
				ID:        j.GetID(),
				RunID:     run.GetID(),
				Repo:      repo,
				Name:      j.GetName(),
				Labels:    j.Labels,
				CreatedAt: created,
			})
		}
	}
	return out, nil
}
