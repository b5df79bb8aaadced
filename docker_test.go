package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	dockerclient "github.com/moby/moby/client"
	"github.com/rs/zerolog"

	"github.com/reconcile-dev/reconcile/docker"
	"github.com/reconcile-dev/reconcile/docker/dockertest"
	"github.com/reconcile-dev/reconcile/ghpoll/ghpolltest"
	"github.com/reconcile-dev/reconcile/reconcile"
)

// These tests run the command as a process against the fake GitHub and a real Docker
// Engine (dockertest), as the systemd timer runs it on a build host.

type dockerWorld struct {
	gh     *ghpolltest.Server
	cli    *dockerclient.Client
	prefix string
	config string
	env    []string
}

// newDockerWorld writes a configuration whose Docker pool is on host, with its own
// name prefix.
func newDockerWorld(t *testing.T, prefix, host string) *dockerWorld {
	t.Helper()
	w := &dockerWorld{gh: ghpolltest.NewServer(t), cli: dockertest.Client(t), prefix: prefix}
	dockertest.Images(t)
	w.config = filepath.Join(t.TempDir(), "reconcile.yaml")
	conf := `github: {repos: [octo-org/app]}
name_prefix: ` + prefix + `
pools:
  - name: x64
    labels: [self-hosted, linux, x64]
    max_runners: 4
    boot_timeout: 4s
    docker:
      host: ` + host + `
      image: ` + dockertest.RunnerImage + `
      pull: never
      cpus: 1
      memory: 128m
      env: {FAKE_JOB_SECONDS: "3600"}
`
	if err := os.WriteFile(w.config, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	w.env = append(os.Environ(), "GITHUB_TOKEN=ghp_docker", "GITHUB_API_URL="+w.gh.APIURL)
	return w
}

// pass runs one pass as a process and returns its exit code and what it wrote.
func (w *dockerWorld) pass(t *testing.T) (int, string) {
	t.Helper()
	code, stdout, stderr := runBinary(t, w.env, "--once", "--config", w.config, "--log-format", "json")
	return code, stdout + stderr
}

// containers returns every container on the engine by name, with its state.
func (w *dockerWorld) containers(t *testing.T) map[string]container.ContainerState {
	t.Helper()
	res, err := w.cli.ContainerList(context.Background(), dockerclient.ContainerListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]container.ContainerState{}
	for _, c := range res.Items {
		out[strings.TrimPrefix(c.Names[0], "/")] = c.State
	}
	return out
}

// foreign creates a container that is not this installation's: no labels at all, or
// another installation's.
func (w *dockerWorld) foreign(t *testing.T, name string, labels map[string]string) {
	t.Helper()
	_, err := w.cli.ContainerCreate(context.Background(), dockerclient.ContainerCreateOptions{Name: name,
		Config: &container.Config{Image: dockertest.RunnerImage, Labels: labels, Cmd: []string{"/home/runner/run.sh"}}})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDocker_PassCreatesRunnersAndRemovesFinishedOnesLeavingOthersAlone(t *testing.T) {
	w := newDockerWorld(t, "dkpass", dockertest.Host(t))
	ctx := context.Background()
	w.foreign(t, "dkpass-x64-1", nil) // a name like ours, no labels
	w.foreign(t, "dkother-x64-2", map[string]string{docker.LabelOwner: "dkother", docker.LabelRunner: "dkother-x64-2", docker.LabelRole: docker.RoleRunner})
	jobA := w.gh.QueueJob("octo-org/app", "self-hosted", "x64")
	jobB := w.gh.QueueJob("octo-org/app", "self-hosted", "linux")

	code, out := w.pass(t)
	if code != 0 {
		t.Fatalf("pass exited %d:\n%s", code, out)
	}
	regs := w.gh.Runners()
	if len(regs) != 2 {
		t.Fatalf("%d registrations, want 2", len(regs))
	}
	for _, reg := range regs {
		if strings.Contains(out, reg.JITConfig) {
			t.Fatalf("the pass's output shows %s's JIT configuration", reg.Name)
		}
		res, err := w.cli.ContainerInspect(ctx, reg.Name, dockerclient.ContainerInspectOptions{})
		if err != nil {
			t.Fatalf("no container for registration %s: %v", reg.Name, err)
		}
		if strings.Contains(string(res.Raw), reg.JITConfig) {
			t.Fatalf("docker inspect %s shows its JIT configuration", reg.Name)
		}
		c := res.Container
		if c.Config.Labels[docker.LabelOwner] != "dkpass" || c.HostConfig.NanoCPUs != 1e9 || c.HostConfig.Memory != 128<<20 {
			t.Errorf("%s: owner %q, NanoCPUs %d, Memory %d", reg.Name, c.Config.Labels[docker.LabelOwner], c.HostConfig.NanoCPUs, c.HostConfig.Memory)
		}
		// The runner came up with this registration's configuration.
		want := fmt.Sprintf("jitconfig-sha256=%x", sha256.Sum256([]byte(reg.JITConfig)))
		waitFor(t, reg.Name+"'s runner to start", func() bool {
			return strings.Contains(dockertest.ContainerLogs(t, w.cli, reg.Name), want)
		})
	}

	// Job A's runner runs it and exits; GitHub removes the ephemeral registration.
	doneName := fmt.Sprintf("dkpass-x64-%d", jobA)
	if _, err := w.cli.ContainerStop(ctx, doneName, dockerclient.ContainerStopOptions{}); err != nil {
		t.Fatal(err)
	}
	w.gh.SetJobStatus(jobA, "completed", doneName)
	w.gh.RemoveRunner(doneName)
	if code, out := w.pass(t); code != 0 {
		t.Fatalf("second pass exited %d:\n%s", code, out)
	}
	got := w.containers(t)
	if _, ok := got[doneName]; ok {
		t.Errorf("the finished runner %s is still there", doneName)
	}
	if got[fmt.Sprintf("dkpass-x64-%d", jobB)] != container.StateRunning {
		t.Errorf("job B's runner: %q, want running", got[fmt.Sprintf("dkpass-x64-%d", jobB)])
	}
	for _, name := range []string{"dkpass-x64-1", "dkother-x64-2"} {
		if got[name] != container.StateCreated {
			t.Errorf("foreign container %s: %q, want untouched (created)", name, got[name])
		}
	}

	// Job B's runner never comes online (the fake GitHub never sees it): past
	// boot_timeout it is boot-failed, removed with its registration, and replaced.
	nameB := fmt.Sprintf("dkpass-x64-%d", jobB)
	before := w.inspectID(t, nameB)
	regB := w.gh.Runners()[0].ID
	time.Sleep(4 * time.Second)
	code, out = w.pass(t)
	if code != 0 {
		t.Fatalf("third pass exited %d:\n%s", code, out)
	}
	if !strings.Contains(out, `"action":"delete","runner":"`+nameB+`"`) || !strings.Contains(out, `"reason":"boot_timeout"`) {
		t.Errorf("no boot_timeout delete of %s in:\n%s", nameB, out)
	}
	if id := w.inspectID(t, nameB); id == before {
		t.Error("the runner that never came online is still there")
	}
	if regs := w.gh.Runners(); len(regs) != 1 || regs[0].ID == regB {
		t.Errorf("registrations %+v: want only a new one for job B", regs)
	}
}

// inspectID returns a container's id, or "" if there is none of that name.
func (w *dockerWorld) inspectID(t *testing.T, name string) string {
	t.Helper()
	res, err := w.cli.ContainerInspect(context.Background(), name, dockerclient.ContainerInspectOptions{})
	if err != nil {
		return ""
	}
	return res.Container.ID
}

func TestDocker_AnEngineThatIsDownFailsThePassAndNothingIsDeleted(t *testing.T) {
	w := newDockerWorld(t, "dkdown", "unix://"+filepath.Join(t.TempDir(), "docker.sock"))
	w.gh.QueueJob("octo-org/app", "self-hosted", "x64")
	// A registration of ours with no runner that a pass would otherwise remove as a ghost.
	w.gh.AddRunner("octo-org/app", "dkdown-x64-77", false, false, "self-hosted", "linux", "x64")
	before := time.Now()
	code, out := w.pass(t)
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, out)
	}
	if !strings.Contains(out, "listing containers at unix://") || !strings.Contains(out, "docker.sock") {
		t.Errorf("the output does not say the engine could not be reached:\n%s", out)
	}
	if m := w.gh.Mutations(); len(m) != 0 {
		t.Errorf("GitHub was changed: %v", m)
	}
	if len(w.gh.Runners()) != 1 {
		t.Error("the registration was removed")
	}
	if time.Since(before) > 30*time.Second {
		t.Errorf("the pass took %v to give up", time.Since(before))
	}
}

// The systemd quick start's configuration works as shipped: with its image on the
// engine (the fake runner, tagged as the image it names), a pass creates a runner for
// a job of its repository, and down removes it.
func TestDocker_QuickStartConfigurationCreatesARunnerAsShipped(t *testing.T) {
	const config = "manifests/systemd/config.docker.yaml"
	data, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := reconcile.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	sections, err := reconcile.ParseSections(conf, platforms(zerolog.Nop()), false)
	if err != nil {
		t.Fatal(err)
	}
	dc := sections["docker"][0].Config.(docker.Config)
	cli := dockertest.Client(t)
	dockertest.Images(t)
	ctx := context.Background()
	if _, err := cli.ImageTag(ctx, dockerclient.ImageTagOptions{Source: dockertest.RunnerImage, Target: dc.Image}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = cli.ImageRemove(ctx, dc.Image, dockerclient.ImageRemoveOptions{}) })

	gh := ghpolltest.NewServer(t)
	job := gh.QueueJob(conf.GitHub.Repos[0], conf.Pools[0].Labels...)
	env := append(os.Environ(), "GITHUB_TOKEN=ghp_docker", "GITHUB_API_URL="+gh.APIURL, "DOCKER_HOST="+dockertest.Host(t))
	code, stdout, stderr := runBinary(t, env, "--once", "--config", config, "--log-format", "json")
	if code != 0 {
		t.Fatalf("a pass with %s as shipped: exit %d\n%s%s", config, code, stdout, stderr)
	}
	name := reconcile.RunnerName(conf.NamePrefix, conf.Pools[0].Name, job, 0)
	regs := gh.Runners()
	if _, err := cli.ContainerInspect(ctx, name, dockerclient.ContainerInspectOptions{}); err != nil || len(regs) != 1 || regs[0].Name != name {
		t.Fatalf("runner %s: %v; registrations %v", name, err, regs)
	}
	// The runner started with its registration's configuration (the stand-in runs its
	// job at once and exits).
	want := fmt.Sprintf("jitconfig-sha256=%x", sha256.Sum256([]byte(regs[0].JITConfig)))
	waitFor(t, name+"'s runner to start", func() bool { return strings.Contains(dockertest.ContainerLogs(t, cli, name), want) })
	gh.SetJobStatus(job, "cancelled", "")
	if code, stdout, stderr := runBinary(t, env, "down", "--config", config, "--interval", "1s", "--log-format", "json"); code != 0 {
		t.Errorf("down: exit %d\n%s%s", code, stdout, stderr)
	}
	if _, err := cli.ContainerInspect(ctx, name, dockerclient.ContainerInspectOptions{}); err == nil || len(gh.Runners()) != 0 {
		t.Errorf("after down: container %s (%v), registrations %v", name, err, gh.Runners())
	}
}

// Looking first finds what the real pass would meet on the engine: a dry run asks it,
// changing nothing, whether the pool's image is there when it may not be pulled and
// whether it has the pool's log driver; each problem fails the dry run, named.
func TestDocker_ADryRunFindsWhatTheCreateWouldMeet(t *testing.T) {
	w := newDockerWorld(t, "dkcheck", dockertest.Host(t))
	w.gh.QueueJob("octo-org/app", "self-hosted", "x64")
	write := func(docker string) {
		t.Helper()
		conf := "github: {repos: [octo-org/app]}\nname_prefix: dkcheck\npools:\n  - name: x64\n    labels: [self-hosted, linux, x64]\n    max_runners: 4\n" +
			"    docker: {host: '" + dockertest.Host(t) + "', " + docker + "}\n"
		if err := os.WriteFile(w.config, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		docker string
		code   int
		want   string
	}{
		{"image: " + dockertest.RunnerImage + ", pull: never", 0, "would create runner"},
		{"image: reconcile-test/absent:1, pull: never", 1, "image reconcile-test/absent:1 is not on the engine"},
		{"image: " + dockertest.RunnerImage + ", pull: never, log_driver: nosuchdriver", 1, `has no log driver \"nosuchdriver\"`},
	} {
		write(tt.docker)
		code, stdout, stderr := runBinary(t, w.env, "--once", "--dry-run", "--config", w.config, "--log-format", "json")
		if code != tt.code || !strings.Contains(stdout+stderr, tt.want) {
			t.Errorf("%s: exit %d, want %d and %q:\n%s%s", tt.docker, code, tt.code, tt.want, stdout, stderr)
		}
		if tt.code != 0 && !strings.Contains(stdout+stderr, "a real pass would fail to create its runners") {
			t.Errorf("%s: the failure does not say a real pass would meet it:\n%s", tt.docker, stderr)
		}
	}
	for name := range w.containers(t) {
		if strings.HasPrefix(name, "dkcheck-") {
			t.Errorf("the dry runs created %s", name)
		}
	}
	if len(w.gh.Runners()) != 0 || w.gh.JITCount() != 0 {
		t.Errorf("the dry runs registered runners: %v", w.gh.Runners())
	}
}
