package main

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/reconcile-dev/reconcile/ghpoll/ghpolltest"
)

// A failed pass must not look like a quiet one: the process's output says first and
// plainly what failed, with the cause GitHub (or the network) gave and what to check,
// and nothing says the pass went well. Run as a newcomer runs the README's first
// command: a dry run, no configuration file.

// dryRun runs a --once --dry-run pass as a process and returns its exit code, stdout
// and stderr.
func dryRun(t *testing.T, apiURL, token, format string, repo string) (int, string, string) {
	t.Helper()
	return runBinary(t, append(os.Environ(), "GITHUB_TOKEN="+token),
		"--once", "--dry-run", "--repo", repo, "--github-url", apiURL, "--log-format", format)
}

// A repository GitHub does not know is only a warning beside others; alone, as here,
// the pass failed.
func TestFailureOutput_SaysWhatFailedFirst(t *testing.T) {
	gh := ghpolltest.NewServer(t)
	gh.RequireToken("ghp_right")
	gh.SetRepoGone("octo-org/gone")
	refused := "http://" + freeAddr(t) + "/" // nothing listens there
	tests := []struct {
		name, apiURL, token, repo string
		want                      []string // in the problem line
	}{
		{"wrong token", gh.APIURL, "ghp_wrong", "octo-org/app",
			[]string{"listing queued jobs of octo-org/app", "GitHub answered 401 Bad credentials", "check GITHUB_TOKEN"}},
		{"repository not found", gh.APIURL, "ghp_right", "octo-org/gone",
			[]string{"every polled repository is unreachable (GitHub answered 404 or 403 for octo-org/gone)", "check the names"}},
		{"refused connection", refused, "ghp_right", "octo-org/app",
			[]string{"cannot connect to " + strings.TrimSuffix(strings.TrimPrefix(refused, "http://"), "/"), "connection refused", "check --github-url or GITHUB_API_URL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name+" console", func(t *testing.T) {
			code, stdout, stderr := dryRun(t, tt.apiURL, tt.token, "console", tt.repo)
			if code != exitFailed {
				t.Fatalf("exit %d, want %d", code, exitFailed)
			}
			lines := strings.Split(stdout, "\n")
			if !strings.HasPrefix(lines[0], "PASS FAILED: ") {
				t.Fatalf("stdout does not start with the failure:\n%s", stdout)
			}
			problem := lines[1]
			for _, w := range tt.want {
				if !strings.Contains(problem, w) {
					t.Errorf("problem line %q lacks %q", problem, w)
				}
			}
			for _, bad := range []string{`\n`, "[]", "pass done", "gh_remaining=0", "0001-01-01"} {
				if strings.Contains(stdout+stderr, bad) {
					t.Errorf("output holds %q:\n%s\n%s", bad, stdout, stderr)
				}
			}
			if !strings.Contains(stderr, "pass failed") {
				t.Errorf("the log does not say the pass failed:\n%s", stderr)
			}
		})
		t.Run(tt.name+" json", func(t *testing.T) {
			code, _, stderr := dryRun(t, tt.apiURL, tt.token, "json", tt.repo)
			if code != exitFailed {
				t.Fatalf("exit %d, want %d", code, exitFailed)
			}
			var problems []string
			var summary map[string]any
			sc := bufio.NewScanner(strings.NewReader(stderr))
			for sc.Scan() {
				var line map[string]any
				if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
					t.Fatalf("not JSON: %q", sc.Text())
				}
				if line["message"] == "pass done" {
					t.Errorf("a failed pass says %q", "pass done")
				}
				if line["message"] == "pass failed" {
					if p, ok := line["problem"].(string); ok {
						problems = append(problems, p)
					} else {
						summary = line
					}
				}
			}
			if summary == nil || summary["level"] != "error" || summary["gh_remaining"] != "unknown" && tt.name == "refused connection" {
				t.Errorf("summary line %v: want level error (and gh_remaining unknown when nothing answered)", summary)
			}
			if len(problems) == 0 {
				t.Fatalf("no problem lines:\n%s", stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(problems[0], w) {
					t.Errorf("problem %q lacks %q", problems[0], w)
				}
			}
		})
	}
}
