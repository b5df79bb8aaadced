package ghpoll

import (
	"context"
	"net/http"
	"testing"

	"github.com/jarcoal/httpmock"
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
		_, _ = c.QueuedJobs(context.Background(), repo)
		_, _ = c.Registrations(context.Background(), repo)
	})
}

// FuzzCache: a cache file is input too (a shared ConfigMap); a bad one is an error.
func FuzzCache(f *testing.F) {
	good, err := newPollCache().marshal(fixedNow)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("not a cache"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if c, err := unmarshalCache(data); err == nil {
			if _, err := c.marshal(fixedNow); err != nil {
				t.Fatalf("a cache that loads does not save: %v", err)
			}
		}
	})
}
