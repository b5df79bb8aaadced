package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/gce/gcetest"
	"github.com/reconcile-dev/reconcile/ghpoll/ghpolltest"
	"github.com/reconcile-dev/reconcile/reconcile"
	"github.com/reconcile-dev/reconcile/reconcile/command"
	"github.com/rs/zerolog"
)

const goodPool = `
pools:
  - name: arm64
    labels: [self-hosted, ARM64]
    max_runners: 3
`

// Bad input: exit 2, one line that names what is wrong, and not one call to GitHub.
func TestRun_BadInputExitsTwoNamingTheKey(t *testing.T) {
	gh := ghpolltest.NewServer(t)
	tests := []struct {
		name   string
		config string // "" runs without --config
		args   []string
		token  string
		want   string // the line must contain this
	}{
		{"malformed YAML", "github: [repos\n", nil, "t", "not valid YAML"},
		{"key given twice", "github:\n  repos: [o/r]\npools:\n  - name: a\n    labels: [x]\n    max_runners: 1\n    max_runners: 5\n", nil, "t", `key "max_runners" already set`},
		{"unknown key", "github:\n  repos: [o/r]\n  repoz: [o/r]\n" + goodPool, nil, "t", "github.repoz: unknown key"},
		{"unknown pool key", "github:\n  repos: [o/r]\npools:\n  - name: a\n    labels: [x]\n    max_runners: 1\n    lables: [y]\n", nil, "t", "pools[0].lables: unknown key"},
		{"wrong type", "github:\n  repos: [o/r]\npools:\n  - name: a\n    labels: [x]\n    max_runners: many\n", nil, "t", "pools[0].max_runners: want a whole number"},
		{"bad duration", "github:\n  repos: [o/r]\npools:\n  - name: a\n    labels: [x]\n    max_runners: 1\n    boot_timeout: soon\n", nil, "t", "boot_timeout"},
		{"pool without labels", "github:\n  repos: [o/r]\npools:\n  - name: a\n    max_runners: 1\n", nil, "t", "pools[0].labels"},
		{"two pools with the same name", "github:\n  repos: [o/r]\npools:\n  - name: a\n    labels: [x]\n    max_runners: 1\n  - name: a\n    labels: [gpu]\n    max_runners: 1\n", nil, "t", "pools[1].name"},
		{"pool name that cannot name an instance", "github:\n  repos: [o/r]\npools:\n  - name: ARM_64\n    labels: [x]\n    max_runners: 1\n", nil, "t", "pools[0].name"},
		{"name_prefix that cannot name a Job", "name_prefix: gha.\ngithub:\n  repos: [o/r]\n" + goodPool, nil, "t", "name_prefix"},
		{"names too long together", "name_prefix: " + strings.Repeat("a", 30) + "\ngithub:\n  repos: [o/r]\npools:\n  - name: " + strings.Repeat("b", 10) + "\n    labels: [x]\n    max_runners: 1\n", nil, "t", "pools[0].name"},
		{"max_runners zero", "github:\n  repos: [o/r]\npools:\n  - name: a\n    labels: [x]\n    max_runners: 0\n", nil, "t", "pools[0].max_runners is required and must be positive"},
		{"missing token", "github:\n  repos: [o/r]\n" + goodPool, []string{"--dry-run"}, "", "GITHUB_TOKEN"},
		{"no repositories", goodPool, []string{"--dry-run"}, "t", "github.repos"},
		{"bad --repo", "", []string{"--dry-run", "--repo", "../etc"}, "t", `--repo: "../etc": ".." is not a valid GitHub owner`},
		{"org given to --repo", "", []string{"--dry-run", "--repo", "octo-org"}, "t", `--repo: "octo-org" is not OWNER/NAME`},
		{"bad --org", "", []string{"--dry-run", "--org", "octo/org"}, "t", `--org: "octo/org"`},
		{"an argument", "", []string{"--dry-run", "--repo", "o/r", "o/r2"}, "t", `unexpected argument "o/r2"`},
		{"an argument to status", "", []string{"status", "--repo", "o/r", "extra"}, "t", `unexpected argument "extra"`},
		{"a section no platform has", "github:\n  repos: [o/r]\npools:\n  - name: a\n    labels: [x]\n    max_runners: 1\n    gcee: {project: p}\n", nil, "t", "pools[0].gcee: unknown key"},
		{"two backends in a pool", "github:\n  repos: [o/r]\npools:\n  - name: a\n    labels: [x]\n    max_runners: 1\n    gce: {}\n    docker: {}\n", nil, "t", "pools[0]: docker and gce are exclusive"},
		{"bad --github-url", "", []string{"--dry-run", "--repo", "o/r", "--github-url", "api.example.com"}, "t", `--github-url: "api.example.com" is not an http(s) URL`},
		{"max_runners missing", "github:\n  repos: [o/r]\npools:\n  - name: a\n    labels: [x]\n", nil, "t", "pools[0].max_runners is required"},
		{"real run without config", "", []string{"--repo", "o/r"}, "t", "--config"},
		{"pool without backend in a real run", "github:\n  repos: [o/r]\n" + goodPool, nil, "t", "pools[0]: no backend"},
		{"two backends", "github:\n  repos: [o/r]\n" + goodPool + "    docker: {}\n    kubernetes: {}\n", nil, "t", "pools[0]: docker and kubernetes are exclusive"},
		{"bad docker memory", "github:\n  repos: [o/r]\n" + goodPool + "    docker: {memory: lots}\n", nil, "t", "pools[0].docker.memory"},
		{"plain tcp docker host", "github:\n  repos: [o/r]\n" + goodPool + "    docker: {host: 'tcp://build-1:2375'}\n", nil, "t", "pools[0].docker.tls"},
		{"unknown flag", "", []string{"--dry-run", "--bogus"}, "t", "bogus"},
		{"bad log format", "", []string{"--dry-run", "--repo", "o/r", "--log-format", "xml"}, "t", "--log-format"},
		{"missing config file", "", []string{"--config", "/nonexistent/reconcile.yaml"}, "t", "--config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GITHUB_TOKEN", tt.token)
			args := []string{"reconcile", "--once", "--github-url", gh.APIURL}
			if tt.config != "" {
				path := filepath.Join(t.TempDir(), "reconcile.yaml")
				if err := os.WriteFile(path, []byte(tt.config), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--config", path)
			}
			args = append(args, tt.args...)
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), args, &stdout, &stderr)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitUsage, stderr.String())
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], tt.want) {
				t.Errorf("stderr = %q, want one line containing %q", stderr.String(), tt.want)
			}
			if n := len(gh.Requests()); n != 0 {
				t.Errorf("%d requests reached GitHub, want none", n)
			}
		})
	}
}

// The README's first command, as a newcomer runs it: a built binary, a token, a
// repository, a dry run.
func TestReadmeDryRunCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := binary(t)
	gh := ghpolltest.NewServer(t)
	job := gh.QueueJob("octo-org/app", "self-hosted", "linux")
	gh.QueueJob("octo-org/app", "ubuntu-latest")

	cmd := exec.Command(bin, "--once", "--dry-run", "--repo", "octo-org/app", "--log-format", "console")
	cmd.Env = append(os.Environ(), "GITHUB_TOKEN=ghp_newcomer000000000000000000000000", "GITHUB_API_URL="+gh.APIURL)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("reconcile --once --dry-run: %v\nstderr:\n%s", err, stderr.String())
	}
	for _, want := range []string{"would create runner", "gha-default-", "reason=demand", "dry_run=true"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	if !strings.Contains(stderr.String(), "job_id="+itoa(job)) {
		t.Errorf("stderr does not name job %d:\n%s", job, stderr.String())
	}
	for _, want := range []string{"POOL", "default", "dry run: nothing was changed", "github: ", "requests", "1 repository polled"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
		}
	}
	if m := gh.Mutations(); len(m) != 0 {
		t.Errorf("dry run sent %v to GitHub", m)
	}
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	if strings.Contains(stdout.String()+stderr.String(), "ghp_newcomer") {
		t.Error("the token appears in the output")
	}
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

// binary builds the command once per test run, for tests that run it as a process.
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "reconcile-bin-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "reconcile")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func itoa(n int64) string {
	var b [20]byte
	return string(appendInt(b[:0], n))
}

func appendInt(b []byte, n int64) []byte {
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
}

// Without --once, passes repeat every --interval until the process is told to stop.
func TestRun_LoopRepeatsUntilStopped(t *testing.T) {
	gh := ghpolltest.NewServer(t)
	t.Setenv("GITHUB_TOKEN", "t")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	var stdout, stderr bytes.Buffer
	go func() {
		done <- run(ctx, []string{"reconcile", "--dry-run", "--interval", "300ms", "--idle-poll-interval", "300ms", "--repo", "octo-org/app", "--github-url", gh.APIURL}, &stdout, &stderr)
	}()
	deadline := time.After(10 * time.Second)
	for passes := 0; passes < 3; {
		select {
		case <-deadline:
			cancel()
			t.Fatalf("only %d passes in 10s", passes)
		case <-time.After(10 * time.Millisecond):
		}
		passes = 0
		for _, r := range gh.Requests() {
			if r.Path == "repos/octo-org/app/actions/runs" {
				passes++
			}
		}
	}
	// Stop it between passes (a pass takes a few milliseconds here); a pass that a
	// signal cuts short exits 1, which the process tests cover.
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("exit code %d after stop, want 0; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the loop did not stop")
	}
}

// A bad flag is found before any client is built: a GCE pool's backend would ask the
// metadata server and the Compute API for its project's zones, and must not have.
func TestRun_BadFlagsCallNoPlatform(t *testing.T) {
	compute := gcetest.NewServer(t, "ci-project", "us-central1", "us-central1-a")
	meta := gcetest.NewMetadata(t, "ci-project", "1234", "us-central1-a")
	t.Setenv("GCE_METADATA_HOST", meta.Host)
	t.Setenv("GITHUB_TOKEN", "ghp_test")
	config := filepath.Join(t.TempDir(), "reconcile.yaml")
	conf := "github: {repos: [o/r]}\npools:\n  - name: arm64\n    labels: [self-hosted, ARM64]\n    max_runners: 3\n" +
		"    gce: {instance_template: t, endpoint: " + compute.Endpoint + "}\n" // project and zones: asked of the platform
	if err := os.WriteFile(config, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--interval", "0s"}, "--interval"},
		{[]string{"--once", "--timeout", "0s"}, "--timeout"},
		{[]string{"--once", "--points-per-minute", "5"}, "--points-per-minute"},
		{[]string{"--once", "--writes-per-minute", "0"}, "--writes-per-minute"},
		{[]string{"--once", "--writes-per-minute", "181"}, "--writes-per-minute"},
		{[]string{"--once", "--writes-per-minute", "170"}, "--points-per-minute 800"}, // 850 points a minute
		{[]string{"--once", "--writes-per-hour", "0"}, "--writes-per-hour"},
		{[]string{"--once", "--backend-concurrency", "0"}, "--backend-concurrency"},
		{[]string{"--once", "--backend-timeout", "0s"}, "--backend-timeout"},
		{[]string{"--once", "--backend-timeout", "60s"}, "--backend-timeout 1m0s must be shorter than --timeout 50s"},
		{[]string{"--once", "--capacity-backoff", "0s"}, "--capacity-backoff"},
		{[]string{"--once", "--capacity-backoff", "5m", "--capacity-backoff-max", "1m"}, "--capacity-backoff-max"},
		{[]string{"--once", "--cache", "configmap:Bad_NS/x"}, "--cache"},
		{[]string{"--once", "--metrics-addr", "127.0.0.1:0"}, "--metrics-addr"},
		{[]string{"--pushgateway-url", "http://p:9091"}, "--pushgateway-url"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append([]string{"reconcile", "--config", config}, tt.args...), &stdout, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 naming %s", tt.args, code, stderr.String(), tt.want)
		}
	}
	if r := compute.Requests(); len(r) != 0 {
		t.Errorf("the Compute API received %v before the flags were checked", r)
	}
}

// Help and the version, the ways a newcomer asks for them.
func TestRun_HelpAndVersion(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"help", "status"}, {"status", "--help"}} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), append([]string{"reconcile"}, args...), &stdout, &stderr); code != exitOK {
			t.Errorf("%v: exit %d: %s", args, code, stderr.String())
		}
		if args[len(args)-1] != "status" && args[0] != "status" && !strings.Contains(stdout.String(), "GITHUB_APP_PRIVATE_KEY_FILE") {
			t.Errorf("%v does not name the App's variables:\n%s", args, stdout.String())
		}
	}
	for _, args := range [][]string{{"--version"}, {"version"}} {
		var stdout bytes.Buffer
		if code := run(context.Background(), append([]string{"reconcile"}, args...), &stdout, io.Discard); code != exitOK ||
			!strings.HasPrefix(stdout.String(), "reconcile "+version+" (commit ") {
			t.Errorf("%v: exit %d, %q", args, code, stdout.String())
		}
	}
}

// readmeBlock returns the first fenced block of the README after the line that
// starts with after.
func readmeBlock(t *testing.T, file, after string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n"+after)
	if !ok {
		t.Fatalf("%s has no line starting %q", file, after)
	}
	_, rest, _ = strings.Cut(rest, "```")
	_, rest, _ = strings.Cut(rest, "\n") // the fence's language
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatalf("no fenced block after %q", after)
	}
	return block
}

// The configuration reference's example is a real one: it loads, and each backend
// section in it is accepted, as it is.
func TestReadme_ConfigurationExampleLoads(t *testing.T) {
	cfg, err := reconcile.Load([]byte(readmeBlock(t, "docs/configuration.md", "The file (YAML;")))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	sections, err := reconcile.ParseSections(cfg, platforms(zerolog.Nop()), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(sections["gce"]) != 1 || len(sections["kubernetes"]) != 1 || len(sections["docker"]) != 1 {
		t.Errorf("backends %+v, want gce, kubernetes and docker", sections)
	}
}

// The Go version the README asks for is go.mod's.
func TestReadme_GoVersionIsGoMods(t *testing.T) {
	mod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	var want string
	for _, line := range strings.Split(string(mod), "\n") {
		if v, ok := strings.CutPrefix(line, "go "); ok {
			want = v
		}
	}
	readme, _ := os.ReadFile("README.md")
	if !strings.Contains(string(readme), "with Go "+want+" or later") || !strings.Contains(string(readme), "| Go ("+want+" or later) |") {
		t.Errorf("README does not ask for Go %s, as go.mod does", want)
	}
}

// Every flag a pass takes is in the configuration reference's flags table, with its
// variable.
func TestReadme_FlagsTableHasEveryFlag(t *testing.T) {
	readme, err := os.ReadFile("docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range command.Flags() {
		name := f.Names()[0]
		var env []string
		switch f := f.(type) {
		case interface{ GetEnvVars() []string }:
			env = f.GetEnvVars()
		}
		row := "| `--" + name
		i := strings.Index(string(readme), row)
		if i < 0 {
			t.Errorf("the flags table has no row for --%s", name)
			continue
		}
		line, _, _ := strings.Cut(string(readme)[i:], "\n")
		for _, e := range env {
			if !strings.Contains(line, "`"+e+"`") {
				t.Errorf("the flags table's row for --%s does not name %s: %s", name, e, line)
			}
		}
	}
}

// The command line without traps: a flag's error names it with two dashes and says
// what it takes; a typo'd flag or configuration key gets the nearest valid one; every
// unknown key of a file is reported at once, each with the file's name; a flag that
// does nothing for status is refused by name; help status lists only what applies.
func TestRun_ACommandLineWithoutTraps(t *testing.T) {
	gh := ghpolltest.NewServer(t)
	t.Setenv("GITHUB_TOKEN", "t")
	config := filepath.Join(t.TempDir(), "reconcile.yaml")
	conf := "github: {repos: [o/r]}\npools:\n  - name: a\n    labels: [x]\n    max_runner: 1\n    docker: {imgae: x}\n" +
		"  - name: b\n    labels: [gpu]\n    max_runners: 1\n    dokcer: {}\n"
	if err := os.WriteFile(config, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"--once", "--dry-run", "--repo", "o/r", "--interval", "30"}, []string{`--interval: "30" is not a duration such as 30s, 5m or 1h30m`}},
		{[]string{"status", "--timeout", "5"}, []string{`--timeout: "5" is not a duration such as 30s`}},
		{[]string{"--once", "--dry-run", "--cnofig", config}, []string{"unknown flag --cnofig: did you mean --config?"}},
		{[]string{"status", "--reop", "o/r"}, []string{"unknown flag --reop: did you mean --repo?"}},
		{[]string{"--once", "--config", config}, []string{
			config + ": pools[0].max_runner: unknown key (did you mean max_runners?)",
			config + ": pools[0].docker.imgae: unknown key (did you mean image?)",
			config + ": pools[1].dokcer: unknown key (did you mean docker?)"}},
		{[]string{"--once", "status", "--repo", "o/r"}, []string{"--once does not apply to status"}},
		{[]string{"status", "--repo", "o/r", "--interval", "1m"}, []string{"--interval does not apply to status"}},
		{[]string{"--output", "json"}, []string{"--output is a flag of status"}},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append([]string{"reconcile", "--github-url", gh.APIURL}, tt.args...), &stdout, &stderr)
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		if code != exitUsage || len(lines) != 1 {
			t.Errorf("%v: exit %d, stderr %q: want 2 and one line", tt.args, code, stderr.String())
		}
		for _, w := range tt.want {
			if !strings.Contains(stderr.String(), w) {
				t.Errorf("%v: stderr %q lacks %q", tt.args, stderr.String(), w)
			}
		}
	}
	if n := len(gh.Requests()); n != 0 {
		t.Errorf("%d requests reached GitHub, want none", n)
	}

	var help bytes.Buffer
	if code := run(context.Background(), []string{"reconcile", "help", "status"}, &help, io.Discard); code != exitOK {
		t.Fatalf("help status: exit %d", code)
	}
	for _, f := range []string{"--config", "--repo", "--cache", "--output", "--usage"} {
		if !strings.Contains(help.String(), f+" ") {
			t.Errorf("help status lacks %s:\n%s", f, help.String())
		}
	}
	for _, f := range []string{"--once", "--dry-run", "--interval", "--metrics-addr", "--metrics-file", "--pushgateway-url", "--writes-per-minute"} {
		if strings.Contains(help.String(), f+" ") {
			t.Errorf("help status lists %s, which does nothing for status:\n%s", f, help.String())
		}
	}
}
