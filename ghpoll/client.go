// Package ghpoll makes every GitHub REST call of the tool, through go-github, and
// implements reconcile.GitHub. No go-github type leaves it; pagination, rate limits
// and error mapping stay inside. It must not import gce or k8s.
package ghpoll

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v66/github"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// maxPages bounds one listing; past it the listing fails rather than loop forever on
// a server that always says there is a next page.
const maxPages = 1000

// Client talks to one GitHub (github.com or a GitHub Enterprise Server).
type Client struct {
	gh  *github.Client
	now func() time.Time
	// RunnerGroupID is the runner group JIT runners join (1 is the default group).
	RunnerGroupID int64

	mu           sync.Mutex
	limitedUntil time.Time
}

var _ reconcile.GitHub = (*Client)(nil)

// New returns a client for the REST API rooted at apiURL ("https://api.github.com/",
// or "https://HOST/api/v3/" for GitHub Enterprise Server). hc carries the
// authentication (an oauth2 transport, a GitHub App transport) and, in tests, a fake.
func New(hc *http.Client, apiURL string) (*Client, error) {
	u, err := url.Parse(apiURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("github api url %q is not an http(s) URL", apiURL)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	gh := github.NewClient(hc)
	gh.BaseURL = u
	gh.UserAgent = "reconcile"
	return &Client{gh: gh, now: time.Now, RunnerGroupID: 1}, nil
}

// RateLimitError is returned for every call made, or refused, while GitHub's primary
// or secondary rate limit is exhausted. errors.Is(err, reconcile.ErrRateLimited) holds.
type RateLimitError struct {
	Until time.Time // when calls may resume
	Msg   string
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("%v until %s: %s", reconcile.ErrRateLimited, e.Until.UTC().Format(time.RFC3339), e.Msg)
}

// Is makes errors.Is(err, reconcile.ErrRateLimited) hold.
func (e *RateLimitError) Is(target error) bool { return target == reconcile.ErrRateLimited }

// preflight refuses a call while a rate limit is known to be exhausted, so that a pass
// does not spend requests that only make GitHub's secondary limits worse.
func (c *Client) preflight() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); now.Before(c.limitedUntil) {
		return &RateLimitError{Until: c.limitedUntil, Msg: "not calling GitHub until then"}
	}
	return nil
}

// check maps go-github's errors to the ones callers branch on, and remembers rate
// limits. go-github returns a 429 as a plain *ErrorResponse: it is a rate limit too.
func (c *Client) check(err error) error {
	if err == nil {
		return nil
	}
	var until time.Time
	var msg string
	var rle *github.RateLimitError
	var abuse *github.AbuseRateLimitError
	var er *github.ErrorResponse
	switch {
	case errors.As(err, &rle):
		until, msg = rle.Rate.Reset.Time, rle.Message
	case errors.As(err, &abuse):
		wait := time.Minute
		if abuse.RetryAfter != nil {
			wait = *abuse.RetryAfter
		}
		until, msg = c.now().Add(wait), abuse.Message
	case errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusTooManyRequests:
		until, msg = c.now().Add(retryAfter(er.Response, c.now())), er.Message
	default:
		return err
	}
	c.mu.Lock()
	if until.After(c.limitedUntil) {
		c.limitedUntil = until
	}
	c.mu.Unlock()
	return &RateLimitError{Until: until, Msg: msg}
}

// retryAfter reads how long GitHub asks to wait: retry-after, else the primary
// reset time when nothing remains, else a minute.
func retryAfter(resp *http.Response, now time.Time) time.Duration {
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if resp.Header.Get("X-RateLimit-Remaining") == "0" {
		if reset, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			if d := time.Unix(reset, 0).Sub(now); d > 0 {
				return d
			}
		}
	}
	return time.Minute
}

// status returns the HTTP status of a go-github error, or 0.
func status(err error) int {
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return er.Response.StatusCode
	}
	return 0
}

// listAll fetches every page of a listing, or fails: never a partial list.
func listAll[T any](ctx context.Context, c *Client, fetch func(github.ListOptions) ([]T, *github.Response, error)) ([]T, error) {
	var out []T
	opt := github.ListOptions{PerPage: 100, Page: 1}
	for range maxPages {
		if err := c.preflight(); err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		items, resp, err := fetch(opt)
		if err != nil {
			return nil, fmt.Errorf("page %d: %w", opt.Page, c.check(err))
		}
		out = append(out, items...)
		if resp.NextPage == 0 {
			return out, nil
		}
		if resp.NextPage <= opt.Page {
			return nil, fmt.Errorf("page %d: next page %d goes backwards", opt.Page, resp.NextPage)
		}
		opt.Page = resp.NextPage
	}
	return nil, fmt.Errorf("more than %d pages", maxPages)
}
