package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/gce/gcetest"
	"github.com/reconcile-dev/reconcile/ghpoll/ghpolltest"
)

// Whole passes, real and dry-run, succeeding and along every error path, at debug
// level, in JSON and on a console, with a recognizable token, App key and JIT configs:
// none of them may appear in what the command prints.
func TestSecrets_NeverPrinted(t *testing.T) {
	const token = "ghp_RECOGNIZABLEtoken0123456789abcdef"
	key := appKey(t)
	keyLine := strings.Split(key, "\n")[2]
	// Each scenario names what its output must say: the path it is about ran, and was
	// printed, so that an empty output cannot pass.
	scenarios := []struct {
		name  string
		setup func(gh *ghpolltest.Server, compute *gcetest.Server)
		args  []string
		says  string
	}{
		{"success", func(*ghpolltest.Server, *gcetest.Server) {}, nil, "created runner"},
		{"dry run", func(*ghpolltest.Server, *gcetest.Server) {}, []string{"--dry-run"}, "would create runner"},
		{"no capacity anywhere", func(_ *ghpolltest.Server, c *gcetest.Server) {
			c.FailZone("us-central1-a", gcetest.FailHTTP)
			c.FailZone("us-central1-b", gcetest.FailOperation)
		}, nil, "not created: no capacity or quota"},
		{"GitHub errors", func(gh *ghpolltest.Server, _ *gcetest.Server) {
			gh.Fail(http.MethodGet, "actions/runners", http.StatusInternalServerError, 100)
		}, nil, "runner registrations of octo-org/app"},
		{"registration refused", func(gh *ghpolltest.Server, _ *gcetest.Server) {
			gh.Fail(http.MethodPost, "generate-jitconfig", http.StatusUnprocessableEntity, 100)
		}, nil, "registering runner failed"},
		{"rate limited", func(gh *ghpolltest.Server, _ *gcetest.Server) {
			gh.FailWith(http.MethodGet, "actions/runs", http.StatusForbidden, 100, http.Header{"Retry-After": {"600"}})
		}, nil, "rate limit"},
		{"bad flag", func(*ghpolltest.Server, *gcetest.Server) {}, []string{"--points-per-minute", "5000"}, "--points-per-minute: 5000 is not between 10"},
	}
	for _, auth := range []string{"token", "app"} {
		for _, format := range []string{"json", "console"} {
			for _, sc := range scenarios {
				t.Run(auth+"/"+format+"/"+sc.name, func(t *testing.T) {
					gh := ghpolltest.NewServer(t)
					compute := gcetest.NewServer(t, "ci-project", "us-central1", "us-central1-a", "us-central1-b")
					gh.QueueJob("octo-org/app", "self-hosted", "ARM64")
					gh.QueueJob("octo-org/app", "self-hosted", "ARM64")
					gh.AddRunner("octo-org/app", "gha-arm64-1", false, false)
					sc.setup(gh, compute)
					for _, k := range []string{"GITHUB_TOKEN", "GITHUB_APP_ID", "GITHUB_APP_INSTALLATION_ID", "GITHUB_APP_PRIVATE_KEY", "GITHUB_APP_PRIVATE_KEY_FILE"} {
						t.Setenv(k, "")
					}
					if auth == "token" {
						t.Setenv("GITHUB_TOKEN", token)
					} else {
						gh.SetApp("12345", time.Hour)
						setAppEnv(t, key)
					}
					t.Setenv("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.RECOGNIZABLEgoogle")
					cfg := filepath.Join(t.TempDir(), "c.yaml")
					conf := "github: {repos: [octo-org/app]}\npools:\n  - name: arm64\n    labels: [self-hosted, ARM64]\n    max_runners: 5\n" +
						"    gce: {project: ci-project, region: us-central1, instance_template: t, endpoint: " + compute.Endpoint + "}\n"
					if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
						t.Fatal(err)
					}
					args := append([]string{"reconcile", "--once", "--config", cfg, "--github-url", gh.APIURL,
						"--log-level", "debug", "--log-format", format}, sc.args...)
					var stdout, stderr bytes.Buffer
					run(context.Background(), args, &stdout, &stderr)
					out := stdout.String() + stderr.String()
					secrets := []string{token, keyLine, "ya29.RECOGNIZABLEgoogle", "ghs_fake"}
					for _, r := range gh.Runners() {
						if r.JITConfig != "" {
							secrets = append(secrets, r.JITConfig)
						}
					}
					secrets = append(secrets, "jit-secret-")
					for _, s := range secrets {
						if strings.Contains(out, s) {
							t.Errorf("output carries %q:\n%s", s, out)
						}
					}
					if !strings.Contains(out, sc.says) {
						t.Errorf("the output does not say %q: the scenario's path did not run, or was not printed:\n%s", sc.says, out)
					}
				})
			}
		}
	}
}
