package ghpoll

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-github/v66/github"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// Explain turns one error of a pass into a line a person can act on: what was being
// done, what GitHub or the network answered (go-github's own text carries the URL and
// the raw error list), and what to check. apiURL is the API root the client uses.
func Explain(err error, apiURL string) string {
	var be *reconcile.BackendError
	if errors.As(err, &be) {
		// A backend's error: where it runs and what to check there, never GitHub's
		// settings (a reset on the Docker socket is not GitHub's).
		return strings.Join(strings.Fields(err.Error()+" ("+be.Hint()+")"), " ")
	}
	cause, hint, inner := explain(err, apiURL)
	line := err.Error()
	if inner != nil && strings.HasSuffix(line, inner.Error()) {
		// What was being done, then the cause in place of go-github's text.
		if what := strings.TrimSuffix(strings.TrimSuffix(line, inner.Error()), ": "); what != "" {
			line = what + ": " + cause
		} else {
			line = cause
		}
	}
	if hint != "" {
		line += " (" + hint + ")"
	}
	return strings.Join(strings.Fields(line), " ") // one line, whatever the messages held
}

// explain finds the error's cause among those it knows: GitHub's answers, and the
// failures to reach GitHub at all. inner is the error whose text the cause replaces;
// nil when it knows none.
func explain(err error, apiURL string) (cause, hint string, inner error) {
	var rl *github.RateLimitError
	var abuse *github.AbuseRateLimitError
	var er *github.ErrorResponse
	var ue *url.Error
	switch {
	case errors.As(err, &rl):
		return fmt.Sprintf("GitHub's rate limit is spent until %s", rl.Rate.Reset.Format("15:04:05")),
			"another user of the same token or installation may spend it", rl
	case errors.As(err, &abuse):
		return "GitHub's secondary rate limit", "the next pass waits as GitHub asked", abuse
	case errors.As(err, &er) && er.Response != nil:
		return answered(er), statusHint(er.Response.StatusCode, apiURL), er
	case errors.As(err, &ue):
		return reach(ue, apiURL)
	}
	return "", "", nil
}

// answered is GitHub's answer: its status and message, without go-github's method,
// URL and error list.
func answered(er *github.ErrorResponse) string {
	s := fmt.Sprintf("GitHub answered %d", er.Response.StatusCode)
	if er.Message != "" {
		s += " " + er.Message
	}
	return s
}

func statusHint(code int, apiURL string) string {
	switch {
	case code == http.StatusUnauthorized:
		return "the credentials are wrong, expired or revoked: check GITHUB_TOKEN, or GITHUB_APP_ID, GITHUB_APP_INSTALLATION_ID and the App's key"
	case code == http.StatusForbidden:
		return "the token may lack a permission: docs/configuration.md lists what it needs"
	case code == http.StatusNotFound:
		return "check the repository or organisation name, and that the token can see it"
	case code >= 500:
		return "GitHub's own trouble: the next pass tries again"
	case code == http.StatusNotAcceptable || code == http.StatusUnsupportedMediaType:
		return "is " + apiURL + " a GitHub API? GitHub Enterprise Server's is https://HOST/api/v3/"
	}
	return ""
}

// reach explains a request that got no answer from GitHub.
func reach(ue *url.Error, apiURL string) (cause, hint string, inner error) {
	check := "check --github-url or GITHUB_API_URL (now " + apiURL + ") and the network"
	var dns *net.DNSError
	var op *net.OpError
	var cert *x509.UnknownAuthorityError
	var host x509.HostnameError
	switch {
	case errors.As(ue, &dns):
		return fmt.Sprintf("cannot find host %s", dns.Name), check, ue
	case errors.As(ue, &cert), errors.As(ue, &host):
		return "cannot verify " + hostOf(ue.URL) + "'s certificate: " + ue.Err.Error(), "a proxy or a private CA? add its certificate to the system's trust store", ue
	case errors.As(ue, &op) && op.Op == "dial":
		return fmt.Sprintf("cannot connect to %s: %v", hostOf(ue.URL), op.Err), check, ue
	case errors.Is(ue, context.DeadlineExceeded) || ue.Timeout():
		return "no answer from " + hostOf(ue.URL) + " in time", check, ue
	}
	return "cannot reach " + hostOf(ue.URL) + ": " + ue.Err.Error(), check, ue
}

func hostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return u.Host
	}
	return raw
}
