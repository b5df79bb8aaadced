package ghpoll

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"
	"testing"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// Only the GitHub client's errors get GitHub's hints: a backend's failure to reach its
// own endpoint (a reset or a timeout on the Docker socket, which the Go HTTP client
// reports as a *url.Error just as it does GitHub's) names that endpoint and what to
// check there.
func TestExplain_BackendErrorsGetTheBackendsHint(t *testing.T) {
	t.Parallel()
	const api = "https://api.github.com/"
	reset := &url.Error{Op: "Get", URL: "http://%2Fvar%2Frun%2Fdocker.sock/v1.47/containers/json",
		Err: &net.OpError{Op: "read", Net: "unix", Err: syscall.ECONNRESET}}
	timeout := &url.Error{Op: "Get", URL: "http://%2Fvar%2Frun%2Fdocker.sock/v1.47/containers/json", Err: context.DeadlineExceeded}
	for name, cause := range map[string]error{"reset": reset, "timeout": timeout} {
		err := fmt.Errorf("listing runners of pools docker: %w", &reconcile.BackendError{Where: "Docker engine at unix:///var/run/docker.sock",
			Check: "check that the daemon runs and answers", Err: fmt.Errorf("listing containers: %w", cause)})
		line := Explain(err, api)
		if strings.Contains(line, "github-url") || strings.Contains(line, "GITHUB_API_URL") {
			t.Errorf("%s: %q gives a GitHub hint", name, line)
		}
		if !strings.Contains(line, "Docker engine at unix:///var/run/docker.sock") || !strings.Contains(line, "check that the daemon runs") {
			t.Errorf("%s: %q does not name the engine and what to check", name, line)
		}
	}
	// The same network failure from the GitHub client keeps GitHub's hint.
	if line := Explain(fmt.Errorf("listing queued jobs: %w", timeout), api); !strings.Contains(line, "--github-url") {
		t.Errorf("a GitHub timeout: %q, want GitHub's hint", line)
	}
	// A permission the platform named is the one to grant.
	denied := &reconcile.BackendError{Where: "Compute Engine project p", Check: "check the role",
		Err: reconcile.DeniedPermission("compute.instances.create", errors.New("googleapi: Error 403: Required 'compute.instances.create' permission"))}
	if line := Explain(denied, api); !strings.Contains(line, "grant compute.instances.create") {
		t.Errorf("a missing permission: %q, want it named as the one to grant", line)
	}
}
