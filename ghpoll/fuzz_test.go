package ghpoll

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/jarcoal/httpmock"
	"github.com/reconcile-dev/reconcile/reconcile"
)

// FuzzResponses: whatever GitHub answers to the listings a pass depends on (runs, jobs,
// runners), the client returns a value or an error, and never panics.
func FuzzResponses(f *testing.F) {
	f.Add([]byte(`{"total_count":1,"workflow_runs":[{"id":1,"status":"queued"}]}`), []byte(`{"total_count":1,"jobs":[{"id":2,"status":"queued","labels":["self-hosted"]}]}`), []byte(`{"total_count":1,"runners":[{"id":3,"name":"gha-x-1","status":"online","busy":false,"labels":[{"name":"x"}]}]}`), 200)
	f.Add([]byte(`{"workflow_runs":null}`), []byte(`[]`), []byte(`{"runners":[{"labels":[null]}]}`), 200)
	f.Add([]byte(`{"message":"x"}`), []byte(``), []byte(`{`), 500)
	f.Fuzz(func(t *testing.T, runs, jobs, runners []byte, status int) {
		if status < 200 || status > 599 {
			status = 200
		}
		mt := httpmock.NewMockTransport()
		answer := func(body []byte) httpmock.Responder {
			return func(*http.Request) (*http.Response, error) {
				return httpmock.NewBytesResponse(status, body), nil
			}
		}
		mt.RegisterRegexpResponder(http.MethodGet, mustRegexp(`/actions/runs$`), answer(runs))
		mt.RegisterRegexpResponder(http.MethodGet, mustRegexp(`/actions/runs/\d+/jobs$`), answer(jobs))
		mt.RegisterRegexpResponder(http.MethodGet, mustRegexp(`/actions/runners$`), answer(runners))
		c, err := NewWithOptions(&http.Client{Transport: mt}, api, Options{RetryBase: 1, MaxRetryWait: 1})
		if err != nil {
			t.Fatal(err)
		}
		_, _, _ = c.QueuedJobs(context.Background(), repo)
		_, _ = c.Registrations(context.Background(), repo)
	})
}

// FuzzCache: a cache file is input too (a shared ConfigMap); a bad one is an error.
func FuzzCache(f *testing.F) {
	fresh := func(t testing.TB) *Client {
		c, err := NewWithOptions(http.DefaultClient, api, Options{Now: func() time.Time { return fixedNow }})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	good := &memStore{}
	saveIn(f, fresh(f), good)
	f.Add(good.data)
	f.Add([]byte("not a cache"))
	f.Fuzz(func(t *testing.T, data []byte) {
		notes, err := reconcile.OpenNotes(context.Background(), &memStore{data: data})
		if err != nil {
			return
		}
		if err := fresh(t).KeepIn(notes); err != nil {
			return
		}
		if _, err := notes.Save(context.Background()); err != nil {
			t.Fatalf("a cache that loads does not save: %v", err)
		}
	})
}
