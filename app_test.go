package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/ghpoll/ghpolltest"
)

// appKey returns a fresh App private key, PEM-encoded.
func appKey(t *testing.T) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
}

func setAppEnv(t *testing.T, key string) {
	t.Setenv("GITHUB_TOKEN", "")
	t.Setenv("GITHUB_APP_ID", "12345")
	t.Setenv("GITHUB_APP_INSTALLATION_ID", "678")
	t.Setenv("GITHUB_APP_PRIVATE_KEY", key)
	t.Setenv("GITHUB_APP_PRIVATE_KEY_FILE", "")
}

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"reconcile"}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// A GitHub App installation: the JWT is exchanged for an installation token at the
// GitHub the configuration names (GHES-style /api/v3/ here), once while it is valid,
// and again before it expires.
func TestApp_InstallationTokenExchangeAndRefresh(t *testing.T) {
	for _, tt := range []struct {
		name     string
		ttl      time.Duration
		moreThan int // exchanges
	}{{"a valid token is reused", time.Hour, 0}, {"a token about to expire is renewed", 30 * time.Second, 1}} {
		t.Run(tt.name, func(t *testing.T) {
			gh := ghpolltest.NewServer(t)
			gh.SetApp("12345", tt.ttl)
			gh.QueueJob("octo-org/app", "self-hosted", "linux")
			gh.AddRepo("octo-org/app", false, false)
			key := appKey(t)
			setAppEnv(t, key)
			code, stdout, stderr := runCLI(t, "--once", "--dry-run", "--repo", "octo-org/app", "--github-url", gh.APIURL, "--log-level", "debug")
			if code != exitOK {
				t.Fatalf("exit code %d:\n%s", code, stderr)
			}
			ex := gh.TokenExchanges()
			if len(ex) == 0 || slices.ContainsFunc(ex, func(id string) bool { return id != "678" }) {
				t.Fatalf("token exchanges %v, want installation 678", ex)
			}
			if tt.moreThan == 0 && len(ex) != 1 {
				t.Errorf("%d token exchanges in one pass, want 1 (the token is valid for an hour)", len(ex))
			}
			if len(ex) <= tt.moreThan {
				t.Errorf("%d token exchanges, want more than %d", len(ex), tt.moreThan)
			}
			if !strings.Contains(stderr, "would create runner") {
				t.Errorf("the pass did not see the job:\n%s", stderr)
			}
			for _, secret := range []string{"ghs_fake", "PRIVATE KEY", strings.Split(key, "\n")[1]} {
				if strings.Contains(stdout+stderr, secret) {
					t.Errorf("output carries %q", secret)
				}
			}
		})
	}
}

func TestApp_InstallationRepos(t *testing.T) {
	gh := ghpolltest.NewServer(t)
	gh.SetApp("12345", time.Hour)
	gh.AddRepo("octo-org/one", false, false)
	gh.AddRepo("octo-org/old", true, false)
	gh.AddRepo("other-org/two", false, false)
	j1 := gh.QueueJob("octo-org/one", "self-hosted")
	j2 := gh.QueueJob("other-org/two", "self-hosted")
	gh.QueueJob("octo-org/old", "self-hosted")
	setAppEnv(t, appKey(t))
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte("github: {installation_repos: true}\npools:\n  - {name: x, labels: [self-hosted], max_runners: 5}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "--once", "--dry-run", "--config", path, "--github-url", gh.APIURL)
	if code != exitOK {
		t.Fatalf("exit code %d:\n%s", code, stderr)
	}
	for _, j := range []int64{j1, j2} {
		if !strings.Contains(stderr, "job_id="+itoa(j)) && !strings.Contains(stderr, `"job_id":`+itoa(j)) {
			t.Errorf("job %d of an installation repository not planned:\n%s", j, stderr)
		}
	}
	if strings.Contains(stderr, "octo-org/old") {
		t.Errorf("the archived repository was polled:\n%s", stderr)
	}
}

func TestApp_BadCredentialsExitTwo(t *testing.T) {
	gh := ghpolltest.NewServer(t)
	key := appKey(t)
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"token and App both", map[string]string{"GITHUB_TOKEN": "ghp_x", "GITHUB_APP_ID": "1", "GITHUB_APP_INSTALLATION_ID": "2", "GITHUB_APP_PRIVATE_KEY": key}, "set one way"},
		{"App id not a number", map[string]string{"GITHUB_APP_ID": "my-app", "GITHUB_APP_INSTALLATION_ID": "2", "GITHUB_APP_PRIVATE_KEY": key}, "GITHUB_APP_ID"},
		{"no installation id", map[string]string{"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY": key}, "GITHUB_APP_INSTALLATION_ID"},
		{"no key", map[string]string{"GITHUB_APP_ID": "1", "GITHUB_APP_INSTALLATION_ID": "2"}, "GITHUB_APP_PRIVATE_KEY"},
		{"key that is not a key", map[string]string{"GITHUB_APP_ID": "1", "GITHUB_APP_INSTALLATION_ID": "2", "GITHUB_APP_PRIVATE_KEY": "-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END RSA PRIVATE KEY-----\n"}, "not a PEM RSA private key"},
		{"missing key file", map[string]string{"GITHUB_APP_ID": "1", "GITHUB_APP_INSTALLATION_ID": "2", "GITHUB_APP_PRIVATE_KEY_FILE": "/nonexistent/key.pem"}, "GITHUB_APP_PRIVATE_KEY_FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"GITHUB_TOKEN", "GITHUB_APP_ID", "GITHUB_APP_INSTALLATION_ID", "GITHUB_APP_PRIVATE_KEY", "GITHUB_APP_PRIVATE_KEY_FILE"} {
				t.Setenv(k, tt.env[k])
			}
			code, _, stderr := runCLI(t, "--once", "--dry-run", "--repo", "o/r", "--github-url", gh.APIURL)
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if code != exitUsage || len(lines) != 1 || !strings.Contains(lines[0], tt.want) {
				t.Errorf("exit %d, stderr %q; want 2 and one line naming %q", code, stderr, tt.want)
			}
			if strings.Contains(stderr, "c2VjcmV0") || strings.Contains(stderr, "ghp_x") {
				t.Errorf("stderr quotes a credential: %q", stderr)
			}
			if n := len(gh.Requests()); n != 0 {
				t.Errorf("%d requests reached GitHub", n)
			}
		})
	}
}
