package ghpoll

import (
	"cmp"
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

// repoLite is what a pass needs of a repository.
type repoLite struct {
	Owner    string    `json:"o"`
	Name     string    `json:"n"`
	Archived bool      `json:"a,omitempty"`
	Disabled bool      `json:"d,omitempty"`
	Pushed   time.Time `json:"p,omitzero"` // pushed_at, in the listing by latest push
}

// runLite is what a pass needs of a workflow run.
type runLite struct {
	ID      int64     `json:"id"`
	Status  string    `json:"s"`
	Created time.Time `json:"c"`
	Public  bool      `json:"p,omitempty"` // its repository is public
	Fork    bool      `json:"f,omitempty"` // a pull request from a fork
}

// jobLite is what a pass needs of a workflow job.
type jobLite struct {
	ID      int64     `json:"id"`
	Status  string    `json:"s"`
	Name    string    `json:"n"`
	Labels  []string  `json:"l"`
	Created time.Time `json:"c"`
	Runner  string    `json:"r,omitempty"` // runner_name, once a runner took it
}

// orgListEvery is how often an organisation's whole repository listing is fetched
// again (one request a hundred repositories, every pass when passes are slower). In
// between, the first page of its listing by latest push, fetched every pass, shows
// the repositories created or pushed to since; one deleted or archived meanwhile is
// polled for at most this long, and answers 404 (reported, not failed) or nothing.
const orgListEvery = time.Minute

// OrgRepos returns the organisation's repositories that can run workflows: every page,
// archived and disabled ones left out.
func (c *Client) OrgRepos(ctx context.Context, org string) ([]reconcile.Scope, error) {
	key := cacheKey(kindOrgRepos, org)
	repos, listed := []repoLite(nil), c.orgListed(org)
	if listed {
		repos, listed = cachedAll[repoLite](c, key)
	}
	if !listed {
		var err error
		repos, err = listAll(ctx, c, key,
			func(ctx context.Context, lo github.ListOptions) ([]*github.Repository, *github.Response, error) {
				return c.gh.Repositories.ListByOrg(ctx, org, &github.RepositoryListByOrgOptions{Type: "all", ListOptions: lo})
			}, reduceRepo)
		if err != nil {
			return nil, err
		}
		st := c.cache.repo(key)
		st.Polled = c.now()
		c.cache.setRepo(key, st)
		c.mu.Lock()
		c.listed += c.cache.pages(key + "#")
		c.mu.Unlock()
	}
	// The pushes hurry quiet repositories along and show new ones; without them the
	// rotation still finds their jobs and the next whole listing the repositories, so
	// a failure here fails nothing.
	pushed, _ := c.notePushes(ctx, org)
	seen := map[reconcile.Scope]bool{}
	out := make([]reconcile.Scope, 0, len(repos))
	for _, r := range append(repos, pushed...) {
		if r.Archived || r.Disabled {
			continue
		}
		owner := r.Owner
		if owner == "" {
			owner = org
		}
		s := reconcile.Scope{Owner: strings.ToLower(owner), Repo: strings.ToLower(r.Name)}
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out, nil
}

// orgListed reports whether the organisation's whole listing was fetched less than
// orgListEvery ago (less a second: passes a minute apart fetch it every pass).
func (c *Client) orgListed(org string) bool {
	at := c.cache.repo(cacheKey(kindOrgRepos, org)).Polled
	return !at.IsZero() && c.now().Sub(at) < orgListEvery-time.Second
}

func reduceRepo(r *github.Repository) repoLite {
	return repoLite{Owner: r.GetOwner().GetLogin(), Name: r.GetName(), Archived: r.GetArchived(), Disabled: r.GetDisabled(),
		Pushed: r.GetPushedAt().Time}
}

func reduceRun(r *github.WorkflowRun) runLite {
	return runLite{ID: r.GetID(), Status: r.GetStatus(), Created: r.GetCreatedAt().Time,
		Public: r.Repository != nil && !r.GetRepository().GetPrivate(),
		Fork:   fromFork(r)}
}

// fromFork reports whether a run is of a pull request from another repository: its
// code is anyone's. The test is whether the head repository is another repository than
// the run's: head_repository.fork is true for every branch of a repository that is
// itself a fork, so it says nothing about where the pull request came from. A pull
// request whose head repository is gone (null) is treated as one from a fork.
func fromFork(r *github.WorkflowRun) bool {
	if !strings.HasPrefix(r.GetEvent(), "pull_request") {
		return false
	}
	head, base := r.GetHeadRepository(), r.GetRepository()
	if head == nil || base == nil {
		return true
	}
	if head.GetID() != 0 && base.GetID() != 0 {
		return head.GetID() != base.GetID()
	}
	return !strings.EqualFold(head.GetFullName(), base.GetFullName())
}

func (c *Client) listRuns(ctx context.Context, repo reconcile.Scope, status string) ([]runLite, error) {
	return listAll(ctx, c, cacheKey(kindRuns, repo, status),
		func(ctx context.Context, lo github.ListOptions) ([]*github.WorkflowRun, *github.Response, error) {
			page, resp, err := c.gh.Actions.ListRepositoryWorkflowRuns(ctx, repo.Owner, repo.Repo,
				&github.ListWorkflowRunsOptions{Status: status, ListOptions: lo})
			if page == nil {
				return nil, resp, err
			}
			return page.WorkflowRuns, resp, err
		}, reduceRun)
}

// runStatuses are the run statuses that can hold a queued job: a queued run; an
// in-progress run whose later jobs (a matrix, a dependent stage) wait; a run that waits
// for an environment's approval while its approved jobs are queued (the gap
// actions-runner-controller issue 2723 reports). A run that is "pending" (held by a
// concurrency group) or "requested" has no queued job yet: it becomes queued first.
var runStatuses = []string{statusQueued, statusInProgress, "waiting"}

// probeSize is how many of the newest runs a look reads: one page, GitHub's largest.
const probeSize = 100

// probeLite is what a look keeps of a page of runs.
type probeLite struct {
	Total int       `json:"t"`
	Runs  []runLite `json:"r,omitempty"`
}

func (c *Client) runsPage(ctx context.Context, repo reconcile.Scope, key, status string, size int) (probeLite, error) {
	pages, _, err := fetchPage(ctx, c, key, github.ListOptions{PerPage: size, Page: 1},
		func(ctx context.Context, lo github.ListOptions) ([]*github.WorkflowRuns, *github.Response, error) {
			page, resp, err := c.gh.Actions.ListRepositoryWorkflowRuns(ctx, repo.Owner, repo.Repo,
				&github.ListWorkflowRunsOptions{Status: status, ListOptions: lo})
			return []*github.WorkflowRuns{page}, resp, err
		},
		func(p *github.WorkflowRuns) probeLite {
			out := probeLite{Total: p.GetTotalCount()}
			for _, r := range p.WorkflowRuns {
				if r != nil {
					out.Runs = append(out.Runs, reduceRun(r))
				}
			}
			return out
		})
	if err != nil || len(pages) == 0 {
		return probeLite{}, err
	}
	return pages[0], nil
}

// runsView returns the runs of the repository that can hold a queued job
// (runStatuses), and the requests it took. One conditional request for the newest page
// of runs, whatever their status, answers it for most repositories; a 304 costs no
// primary rate limit. A re-run keeps its id and its place in the list, so a re-run of
// an older run, or a burst larger than a page, is not on that page: a second request
// counts the completed runs, and every run off the page is completed exactly when the
// counts agree. Only when they do not are the runs listed by status, every page.
//
// Listing by status alone would miss runs: GitHub's status=waiting filter has been
// seen to return nothing while runs wait (cancel-workflows pull request 36 filters on
// the client for that reason); the newest page shows them as they are.
func (c *Client) runsView(ctx context.Context, repo reconcile.Scope) ([]runLite, int, error) {
	newest, err := c.runsPage(ctx, repo, cacheKey(kindProbe, repo), "", probeSize)
	if err != nil {
		return nil, 1, err
	}
	var runs []runLite
	completed := 0
	for _, r := range newest.Runs {
		switch {
		case r.Status == statusCompleted:
			completed++
		case slices.Contains(runStatuses, r.Status):
			runs = append(runs, r)
		}
	}
	if newest.Total <= len(newest.Runs) {
		return runs, 1, nil // every run is on the page
	}
	done, err := c.runsPage(ctx, repo, cacheKey(kindProbeCompleted, repo), statusCompleted, 1)
	if err != nil {
		return nil, 2, err
	}
	if newest.Total-len(newest.Runs) == done.Total-completed {
		return runs, 2, nil // every run off the page is completed
	}
	cost := 2
	seen := map[int64]bool{}
	for _, r := range runs {
		seen[r.ID] = true
	}
	for _, status := range runStatuses {
		rs, err := c.listRuns(ctx, repo, status)
		cost += max(c.cache.pages(cacheKey(kindRuns, repo, status)+"#"), 1)
		if err != nil {
			return nil, cost, fmt.Errorf("listing %s runs: %w", status, err)
		}
		for _, r := range rs {
			// A run that changed status between two lists shows up in both.
			if !seen[r.ID] {
				seen[r.ID] = true
				runs = append(runs, r)
			}
		}
	}
	return runs, cost, nil
}

// Source: GitHub's "List organization repositories" (GET /orgs/{org}/repos) takes
// sort=pushed and direction=desc, and each repository carries pushed_at: the time of
// its latest push to any branch. The first page, asked for conditionally every pass,
// answers 304 (free of the primary limit) until something is pushed.
//
// notePushes remembers, for each repository on the first page of the organisation's
// listing by latest push, when that push was: a push after a repository's last poll
// is the sign that runs came (push and pull_request events from branches of the
// repository). It misses what no push to the repository precedes: schedules,
// workflow_dispatch and repository_dispatch, re-runs, and pull requests from forks
// (the push is to the fork); the rotation finds those. It returns the page: a
// repository created since the organisation's last whole listing is on it.
func (c *Client) notePushes(ctx context.Context, org string) ([]repoLite, error) {
	repos, _, err := fetchPage(ctx, c, cacheKey(kindOrgPushed, org)+"#1", github.ListOptions{PerPage: 100, Page: 1},
		func(ctx context.Context, lo github.ListOptions) ([]*github.Repository, *github.Response, error) {
			return c.gh.Repositories.ListByOrg(ctx, org, &github.RepositoryListByOrgOptions{Type: "all", Sort: "pushed", Direction: "desc", ListOptions: lo})
		}, reduceRepo)
	if err != nil {
		return nil, err
	}
	for _, r := range repos {
		key := reconcile.Scope{Owner: strings.ToLower(cmp.Or(r.Owner, org)), Repo: strings.ToLower(r.Name)}.String()
		if st := c.cache.repo(key); r.Pushed.After(st.Pushed) {
			st.Pushed = r.Pushed
			c.cache.setRepo(key, st)
		}
	}
	return repos, nil
}

// QueuedJobs returns every queued job of the repository, and every job in progress
// with the runner running it, from one listing: the runs that can hold one (runsView),
// and every page of each such run's latest jobs. A repository GitHub
// answers 404 or 403 for (deleted, renamed, or not visible to these credentials) is
// reconcile.ErrUnreachable.
func (c *Client) QueuedJobs(ctx context.Context, repo reconcile.Scope) (queued, running []reconcile.Job, err error) {
	key := repo.String()
	st := c.cache.repo(key)
	now := c.now()
	runs, cost, err := c.runsView(ctx, repo)
	if err != nil {
		return nil, nil, c.unreachable(repo, fmt.Errorf("listing runs: %w", err))
	}
	for _, run := range runs {
		jobs, err := listAll(ctx, c, cacheKey(kindJobs, repo, run.ID),
			func(ctx context.Context, lo github.ListOptions) ([]*github.WorkflowJob, *github.Response, error) {
				page, resp, err := c.gh.Actions.ListWorkflowJobs(ctx, repo.Owner, repo.Repo, run.ID,
					&github.ListWorkflowJobsOptions{Filter: "latest", ListOptions: lo})
				if page == nil {
					return nil, resp, err
				}
				return page.Jobs, resp, err
			},
			func(j *github.WorkflowJob) jobLite {
				return jobLite{ID: j.GetID(), Status: j.GetStatus(), Name: j.GetName(), Labels: j.Labels, Created: j.GetCreatedAt().Time, Runner: j.GetRunnerName()}
			})
		if err != nil {
			return nil, nil, fmt.Errorf("listing jobs of run %d: %w", run.ID, err)
		}
		for _, j := range jobs {
			if j.Status == statusInProgress && j.Runner != "" {
				running = append(running, reconcile.Job{ID: j.ID, RunID: run.ID, Repo: repo, Name: j.Name, Labels: j.Labels,
					CreatedAt: j.Created, RunnerName: j.Runner})
			}
			if j.Status != statusQueued {
				continue
			}
			created := j.Created
			if created.IsZero() {
				created = run.Created
			}
			queued = append(queued, reconcile.Job{ID: j.ID, RunID: run.ID, Repo: repo, Name: j.Name, Labels: j.Labels, CreatedAt: created,
				Public: run.Public, FromFork: run.Fork})
		}
	}
	st.Polled, st.Runs, st.ViewCost = now, len(runs), cost
	st.Busy = nil
	for _, j := range running {
		st.Busy = append(st.Busy, j.RunnerName)
	}
	if len(runs) > 0 {
		st.HadRuns = now // where work came, more comes: reconcile.ChooseRepos
	}
	c.cache.setRepo(key, st)
	return queued, running, nil
}

// unreachable marks err as reconcile.ErrUnreachable when GitHub answered that the
// repository does not exist or is not visible to these credentials: 404, or 403 when
// it is not a rate limit (check has turned those into RateLimitError already). Such a
// repository counts as polled, so that the rotation does not come back to it first.
func (c *Client) unreachable(repo reconcile.Scope, err error) error {
	err = unreachable(repo, err)
	if errors.Is(err, reconcile.ErrUnreachable) {
		st := c.cache.repo(repo.String())
		st.Polled, st.Runs = c.now(), 0
		c.cache.setRepo(repo.String(), st)
	}
	return err
}

func unreachable(repo reconcile.Scope, err error) error {
	switch code := status(err); code {
	case http.StatusNotFound, http.StatusForbidden:
		answer := fmt.Sprintf("GitHub answered %d", code)
		if er := (*github.ErrorResponse)(nil); errors.As(err, &er) && er.Response != nil {
			answer = answered(er)
		}
		return unreachableError{msg: fmt.Sprintf("%v: %s (%s)", reconcile.ErrUnreachable, repo, answer), cause: err}
	}
	return err
}

// unreachableError is reconcile.ErrUnreachable for one repository: its message says
// which and what GitHub answered, without go-github's request line; errors.Is and
// errors.As still find both.
type unreachableError struct {
	msg   string
	cause error
}

func (e unreachableError) Error() string   { return e.msg }
func (e unreachableError) Unwrap() []error { return []error{reconcile.ErrUnreachable, e.cause} }

// InstallationRepos returns the repositories the GitHub App installation can see that
// can run workflows: every page, archived and disabled ones left out.
func (c *Client) InstallationRepos(ctx context.Context) ([]reconcile.Scope, error) {
	repos, err := listAll(ctx, c, "installation-repos",
		func(ctx context.Context, lo github.ListOptions) ([]*github.Repository, *github.Response, error) {
			page, resp, err := c.gh.Apps.ListRepos(ctx, &lo)
			if page == nil {
				return nil, resp, err
			}
			return page.Repositories, resp, err
		},
		func(r *github.Repository) repoLite {
			return repoLite{Owner: r.GetOwner().GetLogin(), Name: r.GetName(), Archived: r.GetArchived(), Disabled: r.GetDisabled()}
		})
	if err != nil {
		return nil, err
	}
	var out []reconcile.Scope
	for _, r := range repos {
		if !r.Archived && !r.Disabled && r.Owner != "" {
			out = append(out, reconcile.Scope{Owner: strings.ToLower(r.Owner), Repo: strings.ToLower(r.Name)})
		}
	}
	return out, nil
}
