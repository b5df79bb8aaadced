package ghpoll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jarcoal/httpmock"

	"github.com/reconcile-dev/reconcile/reconcile"
)

const api = "https://api.github.com/"

var repo = reconcile.Scope{Owner: "octo-org", Repo: "octo-repo"}

// newClient returns a client whose requests go to a mock transport of its own, so
// tests can run in parallel.
func newClient(t *testing.T) (*Client, *httpmock.MockTransport) {
	t.Helper()
	mt := httpmock.NewMockTransport()
	c, err := NewWithOptions(&http.Client{Transport: mt}, api, Options{RetryBase: time.Millisecond})
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	return c, mt
}

// example returns one of GitHub's example objects with fields replaced.
func example(t *testing.T, name string, set map[string]any) map[string]any {
	t.Helper()
	b, err := os.ReadFile("ghpolltest/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range set {
		m[k] = v
	}
	return m
}

func run(t *testing.T, id int64, status string) map[string]any {
	return example(t, "example_workflow_run.json", map[string]any{"id": id, "status": status})
}

func job(t *testing.T, id, runID int64, status string, labels ...string) map[string]any {
	return example(t, "example_job.json", map[string]any{"id": id, "run_id": runID, "status": status, "labels": labels,
		"created_at": time.Date(2026, 11, 23, 12, 0, int(id%60), 0, time.UTC).Format(time.RFC3339)})
}

func runnerObj(t *testing.T, id int64, name, status string, busy bool) map[string]any {
	return example(t, "example_runner.json", map[string]any{"id": id, "name": name, "status": status, "busy": busy})
}

// paged answers GET url with pages[i] for ?page=i+1, wrapped by wrap, with GitHub's
// Link header; a page that is an int is answered with that HTTP status instead.
func paged(mt *httpmock.MockTransport, url string, wrap func([]any) any, pages ...any) *int {
	calls := new(int)
	mt.RegisterResponder(http.MethodGet, url, func(req *http.Request) (*http.Response, error) {
		*calls++
		p, _ := strconv.Atoi(req.URL.Query().Get("page"))
		if p < 1 {
			p = 1
		}
		if p > len(pages) {
			return httpmock.NewStringResponse(http.StatusNotFound, `{"message":"Not Found"}`), nil
		}
		if code, ok := pages[p-1].(int); ok {
			return httpmock.NewStringResponse(code, `{"message":"Server Error"}`), nil
		}
		resp, err := httpmock.NewJsonResponse(http.StatusOK, wrap(pages[p-1].([]any)))
		if err != nil {
			return nil, err
		}
		if p < len(pages) {
			q := req.URL.Query()
			q.Set("page", strconv.Itoa(p+1))
			next := *req.URL
			next.RawQuery = q.Encode()
			resp.Header.Set("Link", fmt.Sprintf("<%s>; rel=\"next\"", next.String()))
		}
		return resp, nil
	})
	return calls
}

func runsPage(items []any) any {
	return map[string]any{"total_count": len(items), "workflow_runs": items}
}
func jobsPage(items []any) any { return map[string]any{"total_count": len(items), "jobs": items} }
func runnersPage(items []any) any {
	return map[string]any{"total_count": len(items), "runners": items}
}
func plain(items []any) any { return items }

// runsByStatus answers the run listing as GitHub does for ?status=: the runs of that
// status (queued, in_progress, waiting, completed), each list apart; without a status,
// every run. Any other status the tool asks for is a mistake.
func runsByStatus(t *testing.T, mt *httpmock.MockTransport, byStatus map[string][]any) {
	t.Helper()
	mt.RegisterResponder(http.MethodGet, api+"repos/octo-org/octo-repo/actions/runs", func(req *http.Request) (*http.Response, error) {
		switch st := req.URL.Query().Get("status"); st {
		case "queued", "in_progress", "waiting", "completed":
			return httpmock.NewJsonResponse(http.StatusOK, runsPage(byStatus[st]))
		case "":
			var all []any
			for _, st := range []string{"queued", "in_progress", "waiting", "completed"} {
				all = append(all, byStatus[st]...)
			}
			return httpmock.NewJsonResponse(http.StatusOK, runsPage(all))
		}
		t.Errorf("run listing of an unexpected status: %s", req.URL)
		return httpmock.NewStringResponse(http.StatusBadRequest, "{}"), nil
	})
}

func jobIDs(jobs []reconcile.Job) []int64 {
	var ids []int64
	for _, j := range jobs {
		ids = append(ids, j.ID)
	}
	slices.Sort(ids)
	return ids
}

func TestClient_QueuedJobs_FindsJobInsideInProgressRun(t *testing.T) {
	t.Parallel()
	c, mt := newClient(t)
	runsByStatus(t, mt, map[string][]any{"queued": {run(t, 1, "queued")}, "in_progress": {run(t, 2, "in_progress")}})
	paged(mt, api+"repos/octo-org/octo-repo/actions/runs/1/jobs", jobsPage, []any{job(t, 10, 1, "queued", "self-hosted")})
	paged(mt, api+"repos/octo-org/octo-repo/actions/runs/2/jobs", jobsPage, []any{
		job(t, 20, 2, "completed", "self-hosted"),
		job(t, 21, 2, "in_progress", "self-hosted"),
		job(t, 22, 2, "queued", "self-hosted", "ARM64"), // the next stage of a running workflow
	})
	jobs, running, err := c.QueuedJobs(context.Background(), repo)
	if err != nil {
		t.Fatalf("QueuedJobs() = %v, want nil", err)
	}
	if diff := cmp.Diff([]int64{10, 22}, jobIDs(jobs)); diff != "" {
		t.Errorf("QueuedJobs() ids mismatch (-want +got):\n%s", diff)
	}
	// The job in progress comes from the same listing, with its runner: a pass knows
	// its runner busy from it, in the first pass of a process (every --once one).
	if len(running) != 1 || running[0].ID != 21 || running[0].RunnerName != "my runner" {
		t.Errorf("QueuedJobs() running = %+v, want job 21 on GitHub's example runner", running)
	}
	// And the next process knows it before it polls, for the estimate of the
	// registrations it will list (PollFacts.Busy).
	st := &memStore{}
	saveIn(t, c, st)
	next, _ := newClient(t)
	loadFrom(t, next, st)
	if busy := next.PollFacts([]reconcile.Scope{repo}).Busy; !busy["my runner"] || len(busy) != 1 {
		t.Errorf("the next process's PollFacts().Busy = %v, want the runner the last poll saw running", busy)
	}
	for _, j := range jobs {
		if j.ID == 22 {
			want := reconcile.Job{ID: 22, RunID: 2, Repo: repo, Name: "build", Labels: []string{"self-hosted", "ARM64"},
				CreatedAt: time.Date(2026, 11, 23, 12, 0, 22, 0, time.UTC),
				Public:    true} // GitHub's example run is of a public repository
			if diff := cmp.Diff(want, j); diff != "" {
				t.Errorf("job 22 mismatch (-want +got):\n%s", diff)
			}
		}
	}
	info := mt.GetCallCountInfo()
	if n := info["GET "+api+"repos/octo-org/octo-repo/actions/runs/2/jobs"]; n != 1 {
		t.Errorf("jobs of the in_progress run listed %d times, want 1", n)
	}
}

// A run not on the newest page that may not be completed (a re-run of an older run, a
// burst larger than a page) sends the poll to the listings by status; a run that
// started between two of them is in both, and its jobs count once.
func TestClient_QueuedJobs_RunInBothListsCountsOnce(t *testing.T) {
	t.Parallel()
	c, mt := newClient(t)
	offThePage(t, mt, map[string][]any{"queued": {run(t, 1, "queued")}, "in_progress": {run(t, 1, "in_progress")}})
	paged(mt, api+"repos/octo-org/octo-repo/actions/runs/1/jobs", jobsPage, []any{job(t, 10, 1, "queued", "self-hosted")})
	jobs, _, err := c.QueuedJobs(context.Background(), repo)
	if err != nil {
		t.Fatalf("QueuedJobs() = %v, want nil", err)
	}
	if diff := cmp.Diff([]int64{10}, jobIDs(jobs)); diff != "" {
		t.Errorf("QueuedJobs() ids mismatch (-want +got):\n%s", diff)
	}
}

// offThePage answers the run listing of a repository whose newest page (no status)
// holds one completed run of three in all, while GitHub counts one completed run: two
// runs off the page are not completed, so the runs must be listed by status. Those
// listings answer byStatus; with queuedPages, the queued runs come in those pages
// (a page that is an int is answered with that HTTP status). Source: GitHub's "List
// workflow runs for a repository": runs newest first, total_count counting every run
// the filter matches (every run without a status), whatever the page.
func offThePage(t *testing.T, mt *httpmock.MockTransport, byStatus map[string][]any, queuedPages ...any) {
	t.Helper()
	newest := map[string]any{"total_count": 3, "workflow_runs": []any{run(t, 9, "completed")}}
	queued := httpmock.NewMockTransport()
	paged(queued, api+"repos/octo-org/octo-repo/actions/runs", runsPage, queuedPages...)
	mt.RegisterResponder(http.MethodGet, api+"repos/octo-org/octo-repo/actions/runs", func(req *http.Request) (*http.Response, error) {
		switch st := req.URL.Query().Get("status"); {
		case st == "":
			return httpmock.NewJsonResponse(http.StatusOK, newest)
		case st == "completed":
			return httpmock.NewJsonResponse(http.StatusOK, map[string]any{"total_count": 1, "workflow_runs": []any{run(t, 9, "completed")}})
		case st == "queued" && len(queuedPages) > 0:
			return queued.RoundTrip(req)
		case slices.Contains([]string{"queued", "in_progress", "waiting"}, st):
			return httpmock.NewJsonResponse(http.StatusOK, runsPage(byStatus[st]))
		}
		t.Errorf("run listing of an unexpected status: %s", req.URL)
		return httpmock.NewStringResponse(http.StatusBadRequest, "{}"), nil
	})
}

// Every listing is followed to its last page; a page that fails fails the whole
// listing, never a partial list that a planner would act on.
func TestClient_ListingsFollowEveryPageAndFailWhole(t *testing.T) {
	t.Parallel()
	type listing struct {
		name string
		// setup registers a three-page listing whose middle page is mid (a []any, or an
		// HTTP status) and returns a call that lists it and the ids it found.
		setup func(t *testing.T, mt *httpmock.MockTransport, mid any) func(c *Client) ([]int64, error)
	}
	queuedJob := func(t *testing.T, id int64) any { return job(t, id, 1, "queued", "self-hosted") }
	listings := []listing{
		{"queued runs", func(t *testing.T, mt *httpmock.MockTransport, mid any) func(*Client) ([]int64, error) {
			offThePage(t, mt, nil, []any{run(t, 1, "queued")}, mid, []any{run(t, 3, "queued")})
			for _, id := range []int64{1, 2, 3} {
				paged(mt, fmt.Sprintf("%srepos/octo-org/octo-repo/actions/runs/%d/jobs", api, id), jobsPage, []any{queuedJob(t, id*10)})
			}
			return func(c *Client) ([]int64, error) {
				jobs, _, err := c.QueuedJobs(context.Background(), repo)
				ids := jobIDs(jobs)
				return slices.Compact(ids), err
			}
		}},
		{"jobs of a run", func(t *testing.T, mt *httpmock.MockTransport, mid any) func(*Client) ([]int64, error) {
			runsByStatus(t, mt, map[string][]any{"queued": {run(t, 1, "queued")}})
			paged(mt, api+"repos/octo-org/octo-repo/actions/runs/1/jobs", jobsPage,
				[]any{queuedJob(t, 10)}, mid, []any{queuedJob(t, 30)})
			return func(c *Client) ([]int64, error) {
				jobs, _, err := c.QueuedJobs(context.Background(), repo)
				return jobIDs(jobs), err
			}
		}},
		{"org repositories", func(t *testing.T, mt *httpmock.MockTransport, mid any) func(*Client) ([]int64, error) {
			repoObj := func(n int) any {
				return example(t, "example_repo.json", map[string]any{"name": fmt.Sprintf("r%d", n)})
			}
			if items, ok := mid.([]any); ok && len(items) == 1 {
				mid = []any{repoObj(2)}
			}
			paged(mt, api+"orgs/octo-org/repos", plain, []any{repoObj(1)}, mid, []any{repoObj(3)})
			return func(c *Client) ([]int64, error) {
				repos, err := c.OrgRepos(context.Background(), "octo-org")
				var ids []int64
				for _, r := range repos {
					n, _ := strconv.Atoi(r.Repo[1:])
					ids = append(ids, int64(n))
				}
				return ids, err
			}
		}},
		{"runner registrations", registrationListing(api+"repos/octo-org/octo-repo/actions/runners", repo)},
		{"org runner registrations", registrationListing(api+"orgs/octo-org/actions/runners", reconcile.Scope{Owner: "octo-org"})},
	}
	for _, l := range listings {
		t.Run(l.name+" follows every page", func(t *testing.T) {
			t.Parallel()
			c, mt := newClient(t)
			var mid any = []any{run(t, 2, "queued")}
			if l.name == "jobs of a run" {
				mid = []any{queuedJob(t, 20)}
			}
			list := l.setup(t, mt, mid)
			ids, err := list(c)
			if err != nil {
				t.Fatalf("listing = %v, want nil", err)
			}
			want := []int64{1, 2, 3}
			if l.name == "queued runs" || l.name == "jobs of a run" {
				want = []int64{10, 20, 30}
			}
			if diff := cmp.Diff(want, ids); diff != "" {
				t.Errorf("listing mismatch (-want +got):\n%s", diff)
			}
		})
		t.Run(l.name+" fails whole when a page fails", func(t *testing.T) {
			t.Parallel()
			c, mt := newClient(t)
			list := l.setup(t, mt, http.StatusBadGateway)
			ids, err := list(c)
			if err == nil {
				t.Fatalf("listing = %v, nil; want an error", ids)
			}
			if len(ids) != 0 {
				t.Errorf("listing returned %v with its error, want nothing", ids)
			}
		})
	}
}

// registrationListing sets up a three-page runner listing of a repository or an org.
func registrationListing(url string, scope reconcile.Scope) func(*testing.T, *httpmock.MockTransport, any) func(*Client) ([]int64, error) {
	return func(t *testing.T, mt *httpmock.MockTransport, mid any) func(*Client) ([]int64, error) {
		if items, ok := mid.([]any); ok && len(items) == 1 {
			mid = []any{runnerObj(t, 2, "gha-x-2", "online", false)}
		}
		paged(mt, url, runnersPage,
			[]any{runnerObj(t, 1, "gha-x-1", "online", false)}, mid, []any{runnerObj(t, 3, "gha-x-3", "offline", false)})
		return func(c *Client) ([]int64, error) {
			regs, err := c.Registrations(context.Background(), scope)
			var ids []int64
			for _, r := range regs {
				ids = append(ids, r.ID)
			}
			return ids, err
		}
	}
}

func TestClient_OrgRepos_SkipsArchivedAndDisabled(t *testing.T) {
	t.Parallel()
	c, mt := newClient(t)
	paged(mt, api+"orgs/octo-org/repos", plain, []any{
		example(t, "example_repo.json", map[string]any{"name": "App"}),
		example(t, "example_repo.json", map[string]any{"name": "old", "archived": true}),
		example(t, "example_repo.json", map[string]any{"name": "off", "disabled": true}),
	})
	repos, err := c.OrgRepos(context.Background(), "octo-org")
	if err != nil {
		t.Fatalf("OrgRepos() = %v, want nil", err)
	}
	// The example repository's owner is "octocat"; names are kept lowercase.
	want := []reconcile.Scope{{Owner: "octocat", Repo: "app"}}
	if diff := cmp.Diff(want, repos); diff != "" {
		t.Errorf("OrgRepos() mismatch (-want +got):\n%s", diff)
	}
}

func TestClient_GenerateJITConfig(t *testing.T) {
	t.Parallel()
	c, mt := newClient(t)
	var body map[string]any
	mt.RegisterResponder(http.MethodPost, api+"repos/octo-org/octo-repo/actions/runners/generate-jitconfig",
		func(req *http.Request) (*http.Response, error) {
			if err := json.NewDecoder(req.Body).Decode(&body); err != nil {
				return nil, err
			}
			return httpmock.NewJsonResponse(http.StatusCreated, example(t, "example_jitconfig_response.json", nil))
		})
	reg, jit, err := c.GenerateJITConfig(context.Background(), repo, "gha-x64-7", []string{"self-hosted", "x64"})
	if err != nil {
		t.Fatalf("GenerateJITConfig() = %v, want nil", err)
	}
	wantBody := map[string]any{"name": "gha-x64-7", "runner_group_id": float64(1), "labels": []any{"self-hosted", "x64"}}
	if diff := cmp.Diff(wantBody, body); diff != "" {
		t.Errorf("request body mismatch (-want +got):\n%s", diff)
	}
	if reg.ID != 23 || jit.Reveal() != "abc123" {
		t.Errorf("GenerateJITConfig() = %+v, %q; want id 23, abc123", reg, jit.Reveal())
	}
	if s := fmt.Sprint(jit); s != "[redacted]" {
		t.Errorf("fmt.Sprint(jit) = %q, want [redacted]", s)
	}
}

func TestClient_ErrorsCallersBranchOn(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		header http.Header
		call   func(*Client) error
		want   error // nil: want no error
	}{
		{"jit name conflict", http.StatusConflict, nil, func(c *Client) error {
			_, _, err := c.GenerateJITConfig(context.Background(), repo, "gha-x64-7", []string{"x64"})
			return err
		}, reconcile.ErrNameTaken},
		{"remove busy runner", http.StatusUnprocessableEntity, nil, func(c *Client) error {
			return c.RemoveRegistration(context.Background(), repo, 5)
		}, reconcile.ErrRunnerBusy},
		{"remove runner already gone", http.StatusNotFound, nil, func(c *Client) error {
			return c.RemoveRegistration(context.Background(), repo, 5)
		}, nil},
		{"429 is a rate limit", http.StatusTooManyRequests, http.Header{"Retry-After": {"30"}}, func(c *Client) error {
			_, err := c.Registrations(context.Background(), repo)
			return err
		}, reconcile.ErrRateLimited},
		{"secondary limit 403 is a rate limit", http.StatusForbidden, http.Header{"Retry-After": {"60"}}, func(c *Client) error {
			_, err := c.Registrations(context.Background(), repo)
			return err
		}, reconcile.ErrRateLimited},
		{"primary limit 403 is a rate limit", http.StatusForbidden, http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Limit": {"5000"},
			"X-Ratelimit-Reset": {strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)}}, func(c *Client) error {
			_, err := c.Registrations(context.Background(), repo)
			return err
		}, reconcile.ErrRateLimited},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, mt := newClient(t)
			msg := `{"message":"boom"}`
			if tt.status == http.StatusForbidden && tt.header.Get("Retry-After") != "" {
				msg = `{"message":"You have exceeded a secondary rate limit.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`
			}
			mt.RegisterNoResponder(func(*http.Request) (*http.Response, error) {
				resp := httpmock.NewStringResponse(tt.status, msg)
				for k, v := range tt.header {
					resp.Header[k] = v
				}
				return resp, nil
			})
			err := tt.call(c)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("call = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("call = %v, want errors.Is %v", err, tt.want)
			}
			if tt.want == reconcile.ErrRateLimited {
				before := mt.GetTotalCallCount()
				if err := tt.call(c); !errors.Is(err, reconcile.ErrRateLimited) {
					t.Errorf("call while limited = %v, want %v", err, reconcile.ErrRateLimited)
				}
				if after := mt.GetTotalCallCount(); after != before {
					t.Errorf("a call while rate limited reached GitHub (%d requests, want %d)", after, before)
				}
			}
		})
	}
}

var fixedNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func mustRegexp(s string) *regexp.Regexp { return regexp.MustCompile(s) }

// GitHub documents at most 500 content-creating requests an hour: past the client's
// hourly budget, a registration is a rate limit and GitHub is not called. The budget
// is kept in the cache, so that the next --once process honours it too, and so is a
// rate limit GitHub announced.
func TestClient_HourlyWriteBudgetOutlivesTheProcess(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	newPaced := func() (*Client, *httpmock.MockTransport) {
		mt := httpmock.NewMockTransport()
		c, err := NewWithOptions(&http.Client{Transport: mt}, api, Options{Now: clock, WritesPerMinute: 60000, WritesPerHour: 2})
		if err != nil {
			t.Fatal(err)
		}
		mt.RegisterResponder(http.MethodPost, api+"repos/octo-org/octo-repo/actions/runners/generate-jitconfig",
			httpmock.NewJsonResponderOrPanic(http.StatusCreated, example(t, "example_jitconfig_response.json", nil)))
		return c, mt
	}
	c, mt := newPaced()
	for i := range 3 {
		_, _, err := c.GenerateJITConfig(context.Background(), repo, fmt.Sprintf("gha-x64-%d", i), []string{"x64"})
		if i < 2 && err != nil {
			t.Fatalf("registration %d: %v", i, err)
		}
		if i == 2 && !errors.Is(err, reconcile.ErrWriteBudget) {
			t.Fatalf("third registration in the hour = %v, want ErrWriteBudget", err)
		}
	}
	if n := mt.GetTotalCallCount(); n != 2 {
		t.Errorf("%d calls to GitHub, want 2: none past the budget", n)
	}
	st := &memStore{}
	saveIn(t, c, st)
	next, mt := newPaced()
	loadFrom(t, next, st)
	if _, _, err := next.GenerateJITConfig(context.Background(), repo, "gha-x64-9", []string{"x64"}); !errors.Is(err, reconcile.ErrWriteBudget) || mt.GetTotalCallCount() != 0 {
		t.Errorf("next process: GenerateJITConfig() = %v after %d calls, want ErrWriteBudget without calling", err, mt.GetTotalCallCount())
	}
	now = now.Add(time.Hour)
	if _, _, err := next.GenerateJITConfig(context.Background(), repo, "gha-x64-9", []string{"x64"}); err != nil {
		t.Errorf("an hour later: GenerateJITConfig() = %v, want it registered", err)
	}
	// GitHub's own answer: a secondary limit with retry-after holds the next process too.
	mt.RegisterResponder(http.MethodPost, api+"repos/octo-org/octo-repo/actions/runners/generate-jitconfig", func(*http.Request) (*http.Response, error) {
		resp := httpmock.NewStringResponse(http.StatusForbidden, `{"message":"You have exceeded a secondary rate limit."}`)
		resp.Header.Set("Retry-After", "600")
		return resp, nil
	})
	if _, _, err := next.GenerateJITConfig(context.Background(), repo, "gha-x64-10", []string{"x64"}); !errors.Is(err, reconcile.ErrRateLimited) {
		t.Fatalf("GenerateJITConfig() = %v, want GitHub's rate limit", err)
	}
	saveIn(t, next, st)
	third, mt := newPaced()
	loadFrom(t, third, st)
	if _, err := third.Registrations(context.Background(), repo); !errors.Is(err, reconcile.ErrRateLimited) || mt.GetTotalCallCount() != 0 {
		t.Errorf("the process after a rate limit: Registrations() = %v after %d calls, want ErrRateLimited without calling", err, mt.GetTotalCallCount())
	}
}

// A process that starts a moment before GitHub's wait (kept in the cache by the last
// one) is over waits for it, then calls: no request goes before GitHub said, and the
// pass is not failed for a wait of seconds. A long wait is still refused at once.
func TestClient_AShortWaitLeftIsWaitedOut(t *testing.T) {
	t.Parallel()
	c, mt := newClient(t)
	mt.RegisterResponder(http.MethodGet, api+"repos/octo-org/octo-repo/actions/runners",
		httpmock.NewJsonResponderOrPanic(http.StatusOK, runnersPage([]any{runnerObj(t, 7, "gha-x-7", "online", false)})))
	until := time.Now().Add(time.Second)
	c.cache.limit(until)
	regs, err := c.Registrations(context.Background(), repo)
	if err != nil || len(regs) != 1 || time.Now().Before(until) {
		t.Fatalf("Registrations() = %v, %v at %v; want runner 7, asked no sooner than %v", regs, err, time.Now(), until)
	}
	c.cache.limit(time.Now().Add(10 * time.Minute))
	calls := mt.GetTotalCallCount()
	if _, err := c.Registrations(context.Background(), repo); !errors.Is(err, reconcile.ErrRateLimited) || mt.GetTotalCallCount() != calls {
		t.Errorf("Registrations() under a 10-minute wait = %v after %d calls, want ErrRateLimited at once", err, mt.GetTotalCallCount()-calls)
	}
}
