package docker_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/reconcile-dev/reconcile/docker"
	"github.com/reconcile-dev/reconcile/docker/dockertest"
	"github.com/reconcile-dev/reconcile/reconcile"
)

// These tests run against a real Docker Engine (dockertest): names, labels, filters,
// limits, mounts, archive copies and container states are the engine's own.

func TestMain(m *testing.M) {
	code := m.Run()
	dockertest.Stop()
	os.Exit(code)
}

var seq atomic.Int64

// world is a backend on the shared engine with an owner label of its own, so that
// tests do not see each other's runners.
type world struct {
	cli   *client.Client
	b     *docker.Backend
	owner string
	cfg   docker.Config
}

func newWorld(t *testing.T, section string) *world {
	t.Helper()
	cli := dockertest.Client(t)
	dockertest.Images(t)
	host := dockertest.Host(t)
	cfg, err := docker.ParseConfig(yamlJSON(t, section), "pools[0].docker")
	if err != nil {
		t.Fatal(err)
	}
	c, err := docker.NewClient(withHost(cfg, host))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	owner := fmt.Sprintf("t%d", seq.Add(1))
	return &world{cli: cli, b: docker.New(c, owner, "x64", cfg), owner: owner, cfg: cfg}
}

// yamlJSON turns a docker section written in YAML, as a configuration file has it,
// into the JSON the backend decodes.
func yamlJSON(t *testing.T, y string) json.RawMessage {
	t.Helper()
	j, err := sigsyaml.YAMLToJSON([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func withHost(cfg docker.Config, host string) docker.Config {
	cfg.Host = host
	return cfg
}

func (w *world) spec(job int64) reconcile.RunnerSpec {
	name := fmt.Sprintf("%s-x64-%d", w.owner, job)
	return reconcile.RunnerSpec{
		Name: name, Pool: "x64", JobID: job,
		Scope: reconcile.Scope{Owner: "octo-org", Repo: "app"}, Repo: reconcile.Scope{Owner: "octo-org", Repo: "app"},
		Labels:    []string{"self-hosted", "linux", "x64"},
		JITConfig: reconcile.Secret("jit-secret-" + name),
	}
}

func (w *world) inspect(t *testing.T, name string) container.InspectResponse {
	t.Helper()
	res, err := w.cli.ContainerInspect(context.Background(), name, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatalf("inspecting %s: %v", name, err)
	}
	return res.Container
}

// waitExited waits for a container to exit and returns its exit code.
func (w *world) waitExited(t *testing.T, name string) int {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c := w.inspect(t, name); c.State.Status == container.StateExited {
			return c.State.ExitCode
		}
	}
	t.Fatalf("%s did not exit; logs:\n%s", name, dockertest.ContainerLogs(t, w.cli, name))
	return 0
}

func (w *world) list(t *testing.T) map[string]reconcile.Runner {
	t.Helper()
	rs, err := w.b.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]reconcile.Runner{}
	for _, r := range rs {
		out[r.Name] = r
	}
	return out
}

// containers returns the names of every container on the engine, ours or not.
func (w *world) containers(t *testing.T) []string {
	t.Helper()
	res, err := w.cli.ContainerList(context.Background(), client.ContainerListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range res.Items {
		names = append(names, strings.TrimPrefix(c.Names[0], "/"))
	}
	return names
}

func TestCreate_TheRunnerGetsItsJITConfigurationWhereInspectDoesNotShowIt(t *testing.T) {
	w := newWorld(t, `{image: "`+dockertest.RunnerImage+`", pull: never, env: {FAKE_JOB_SECONDS: "0", TEAM: platform}}`)
	spec := w.spec(101)
	if err := w.b.Create(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	if code := w.waitExited(t, spec.Name); code != 0 {
		t.Fatalf("runner exited %d:\n%s", code, dockertest.ContainerLogs(t, w.cli, spec.Name))
	}
	logs := dockertest.ContainerLogs(t, w.cli, spec.Name)
	// The runner read the configuration as the image's user, and the file is gone.
	want := fmt.Sprintf("jitconfig-sha256=%x file-left=false uid=1001 gid=123", sha256.Sum256([]byte(spec.JITConfig.Reveal())))
	if !strings.Contains(logs, want) {
		t.Fatalf("runner's output lacks %q:\n%s", want, logs)
	}
	// docker inspect: the secret in no part of the container's description.
	raw, err := w.cli.ContainerInspect(context.Background(), spec.Name, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw.Raw), spec.JITConfig.Reveal()) {
		t.Fatal("docker inspect shows the JIT configuration")
	}
	c := raw.Container
	if !slices.Contains(c.Config.Env, "TEAM=platform") {
		t.Errorf("env %v lacks the pool's TEAM=platform", c.Config.Env)
	}
	wantLabels := map[string]string{
		docker.LabelOwner: w.owner, docker.LabelPool: "x64", docker.LabelRunner: spec.Name, docker.LabelRole: docker.RoleRunner,
		docker.LabelJobID: "101", docker.LabelScope: "octo-org/app", docker.LabelRepo: "octo-org/app",
	}
	for k, v := range wantLabels {
		if c.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, c.Config.Labels[k], v)
		}
	}
	if c.HostConfig.RestartPolicy.Name != container.RestartPolicyDisabled {
		t.Errorf("restart policy %q, want no", c.HostConfig.RestartPolicy.Name)
	}
}

func TestCreate_LimitsNetworkAndVolumesAreTheEnginesToEnforce(t *testing.T) {
	hostDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(hostDir, "token"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, `{image: "`+dockertest.RunnerImage+`", pull: never, cpus: 1.5, memory: 96m, network: none,
		volumes: ["`+hostDir+`:/cache", "`+hostDir+`:/scratch:rw", "reconcile-test-tools:/opt/tools"],
		log_driver: json-file, log_options: {max-size: 1m}, env: {FAKE_JOB_SECONDS: "30"}}`)
	spec := w.spec(102)
	if err := w.b.Create(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	c := w.inspect(t, spec.Name)
	hc := c.HostConfig
	if hc.NanoCPUs != 1_500_000_000 || hc.Memory != 96<<20 || hc.MemorySwap != 96<<20 {
		t.Errorf("limits: NanoCPUs %d Memory %d MemorySwap %d, want 1.5e9, 96 MiB, 96 MiB", hc.NanoCPUs, hc.Memory, hc.MemorySwap)
	}
	if hc.NetworkMode != "none" {
		t.Errorf("network %q, want none", hc.NetworkMode)
	}
	if hc.Init == nil || !*hc.Init {
		t.Error("no init process to reap what jobs leave")
	}
	if hc.LogConfig.Type != "json-file" || hc.LogConfig.Config["max-size"] != "1m" {
		t.Errorf("log config %+v", hc.LogConfig)
	}
	rw := map[string]bool{}
	for _, m := range c.Mounts {
		rw[m.Destination] = m.RW
	}
	if want := map[string]bool{"/cache": false, "/scratch": true, "/opt/tools": false}; !mapsEqual(rw, want) {
		t.Errorf("mounts (destination: writable) %v, want %v", rw, want)
	}
	// The kernel holds the running container to the limits (its cgroup, v1 or v2).
	if c.State.Status != container.StateRunning {
		t.Fatalf("runner is %s, want running:\n%s", c.State.Status, dockertest.ContainerLogs(t, w.cli, spec.Name))
	}
	want := fmt.Sprintf("cgroup memory=%d cpu=150000/100000", 96<<20)
	waitFor(t, func() bool { return strings.Contains(dockertest.ContainerLogs(t, w.cli, spec.Name), want) },
		func() string {
			return "the runner's cgroup lacks " + want + ":\n" + dockertest.ContainerLogs(t, w.cli, spec.Name)
		})
	if err := w.b.Delete(context.Background(), reconcile.Runner{Name: spec.Name}); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(w.containers(t), spec.Name) {
		t.Fatal("the deleted runner's container is still there")
	}
}

// waitFor polls cond for up to 10 s, then fails with what says.
func waitFor(t *testing.T, cond func() bool, what func() string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal(what())
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

func TestList_AnExitedContainerIsFinishedAndDeleteRemovesIt(t *testing.T) {
	w := newWorld(t, `{image: "`+dockertest.RunnerImage+`", pull: never, env: {FAKE_JOB_SECONDS: "0.2", FAKE_EXIT_CODE: "1"}}`)
	spec := w.spec(103)
	if err := w.b.Create(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	if r := w.list(t)[spec.Name]; r.Phase != reconcile.PhaseActive || r.JobID != 103 || r.Pool != "x64" || r.Repo.String() != "octo-org/app" {
		t.Fatalf("listed %+v, want an active runner of job 103, pool x64, octo-org/app", r)
	}
	w.waitExited(t, spec.Name)
	r := w.list(t)[spec.Name]
	if r.Phase != reconcile.PhaseFinished {
		t.Fatalf("an exited runner is %v, want finished", r.Phase)
	}
	if err := w.b.Delete(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if err := w.b.Delete(context.Background(), r); err != nil {
		t.Fatalf("deleting it again: %v, want nil", err)
	}
	if len(w.list(t)) != 0 || slices.Contains(w.containers(t), spec.Name) {
		t.Fatalf("the runner is still there: %v", w.containers(t))
	}
}

func TestCreate_TwiceIsOneRunner(t *testing.T) {
	w := newWorld(t, `{image: "`+dockertest.RunnerImage+`", pull: never, env: {FAKE_JOB_SECONDS: "30"}}`)
	spec := w.spec(104)
	for i := 0; i < 2; i++ {
		if err := w.b.Create(context.Background(), spec); err != nil {
			t.Fatalf("create %d: %v", i+1, err)
		}
	}
	if n := len(w.list(t)); n != 1 {
		t.Fatalf("%d runners, want 1", n)
	}
}

func TestForeignContainersAreNeverTouched(t *testing.T) {
	w := newWorld(t, `{image: "`+dockertest.RunnerImage+`", pull: never, env: {FAKE_JOB_SECONDS: "30"}}`)
	ctx := context.Background()
	spec := w.spec(105)
	// One with no labels, named as our runner would be; one of another installation.
	other := w.spec(106)
	for _, c := range []struct {
		name   string
		labels map[string]string
	}{
		{spec.Name, nil},
		{other.Name, map[string]string{docker.LabelOwner: w.owner + "-other", docker.LabelRunner: other.Name, docker.LabelRole: docker.RoleRunner}},
	} {
		_, err := w.cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: c.name, Config: &container.Config{Image: dockertest.RunnerImage, Labels: c.labels, Cmd: []string{"/home/runner/run.sh"}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	if rs := w.list(t); len(rs) != 0 {
		t.Fatalf("listed %v, want nothing: neither is ours", rs)
	}
	err := w.b.Create(ctx, spec)
	if err == nil || !strings.Contains(err.Error(), "a container of that name exists that reconcile did not make") {
		t.Fatalf("create over a foreign container: %v", err)
	}
	for _, name := range []string{spec.Name, other.Name} {
		if err := w.b.Delete(ctx, reconcile.Runner{Name: name}); err != nil {
			t.Fatal(err)
		}
		c := w.inspect(t, name) // still there, untouched
		if c.State.Status != container.StateCreated {
			t.Errorf("%s is %s, want created as it was", name, c.State.Status)
		}
	}
}

func TestList_ACreatedContainerNeverStartedIsFinishedAfterTheGrace(t *testing.T) {
	w := newWorld(t, `{image: "`+dockertest.RunnerImage+`", pull: never}`)
	ctx := context.Background()
	spec := w.spec(107)
	labels := map[string]string{docker.LabelOwner: w.owner, docker.LabelRunner: spec.Name, docker.LabelRole: docker.RoleRunner, docker.LabelPool: "x64"}
	if _, err := w.cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: spec.Name, Config: &container.Config{Image: dockertest.RunnerImage, Labels: labels, Cmd: []string{"/home/runner/run.sh"}}}); err != nil {
		t.Fatal(err)
	}
	if r := w.list(t)[spec.Name]; r.Phase != reconcile.PhaseActive {
		t.Fatalf("a container a pass is starting is %v, want active", r.Phase)
	}
	w.b.Now = func() time.Time { return time.Now().Add(docker.StartGrace) }
	if r := w.list(t)[spec.Name]; r.Phase != reconcile.PhaseFinished {
		t.Fatalf("a container left created for %v is %v, want finished", docker.StartGrace, r.Phase)
	}
}

func TestCreate_PullNeverWithoutTheImageSaysSoAndMakesNothing(t *testing.T) {
	w := newWorld(t, `{image: "reconcile-test/absent:1", pull: never}`)
	err := w.b.Create(context.Background(), w.spec(108))
	if err == nil || !strings.Contains(err.Error(), "image reconcile-test/absent:1 is not on the engine") || !strings.Contains(err.Error(), "pull: never") {
		t.Fatalf("create: %v", err)
	}
	if c := reconcile.ClassOf(err); c != reconcile.FailInvalid {
		t.Errorf("create: class %q, want invalid: the pool is probed once a pass, not once a job", c)
	}
	if len(w.list(t)) != 0 {
		t.Fatal("a runner was made")
	}
}

func TestCreate_AFailedStartLeavesNothing(t *testing.T) {
	// A host path that does not exist: the engine refuses the bind mount.
	w := newWorld(t, `{image: "`+dockertest.RunnerImage+`", pull: never, volumes: ["/nonexistent/reconcile-test:/cache"]}`)
	err := w.b.Create(context.Background(), w.spec(109))
	if err == nil {
		t.Fatal("create with a missing bind source succeeded")
	}
	if strings.Contains(err.Error(), "jit-secret") {
		t.Fatalf("the error shows the JIT configuration: %v", err)
	}
	if len(w.list(t)) != 0 {
		t.Fatalf("left %v", w.list(t))
	}
}

func TestSidecar_TheRunnerTalksToItsOwnDaemonAndDeleteRemovesEverything(t *testing.T) {
	w := newWorld(t, `{image: "`+dockertest.RunnerImage+`", dind_image: "`+dockertest.DindImage+`", pull: never,
		docker_in_docker: sidecar, memory: 128m, env: {FAKE_JOB_SECONDS: "0"}}`)
	ctx := context.Background()
	spec := w.spec(110)
	if err := w.b.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if code := w.waitExited(t, spec.Name); code != 0 {
		t.Fatalf("runner exited %d:\n%s", code, dockertest.ContainerLogs(t, w.cli, spec.Name))
	}
	if logs := dockertest.ContainerLogs(t, w.cli, spec.Name); !strings.Contains(logs, "fake-runner: docker: ping HTTP/1.1 200 OK") {
		t.Fatalf("the runner did not reach its daemon through DOCKER_HOST:\n%s", logs)
	}
	side := spec.Name + "-dind"
	sc := w.inspect(t, side)
	if !sc.HostConfig.Privileged || sc.HostConfig.Memory != 128<<20 || sc.Config.Labels[docker.LabelRole] != docker.RoleDind {
		t.Errorf("sidecar: privileged %v, memory %d, role %q", sc.HostConfig.Privileged, sc.HostConfig.Memory, sc.Config.Labels[docker.LabelRole])
	}
	if rc := w.inspect(t, spec.Name); rc.HostConfig.Privileged {
		t.Error("the runner itself is privileged")
	}
	// The daemon sees the runner image's externals and a work directory any uid can use.
	logs := dockertest.ContainerLogs(t, w.cli, side)
	if !strings.Contains(logs, `externals="`+dockertest.ExternalsMarker+`"`) || !strings.Contains(logs, "work-mode=-rwxrwxrwx") {
		t.Fatalf("the sidecar does not share the runner's volumes:\n%s", logs)
	}
	if r := w.list(t)[spec.Name]; r.Phase != reconcile.PhaseFinished {
		t.Fatalf("runner exited, sidecar running: %v, want finished", r.Phase)
	}
	if err := w.b.Delete(ctx, reconcile.Runner{Name: spec.Name}); err != nil {
		t.Fatal(err)
	}
	if names := w.containers(t); slices.Contains(names, spec.Name) || slices.Contains(names, side) {
		t.Fatalf("containers left: %v", names)
	}
	vols, err := w.cli.VolumeList(ctx, client.VolumeListOptions{Filters: client.Filters{}.Add("label", docker.LabelOwner+"="+w.owner)})
	if err != nil || len(vols.Items) != 0 {
		t.Fatalf("volumes left: %v %v", vols.Items, err)
	}
}

func TestSidecar_VolumesLeftByAHalfDoneDeleteAreAFinishedRunner(t *testing.T) {
	w := newWorld(t, `{image: "`+dockertest.RunnerImage+`", dind_image: "`+dockertest.DindImage+`", pull: never, docker_in_docker: sidecar}`)
	ctx := context.Background()
	name := w.owner + "-x64-111"
	labels := map[string]string{docker.LabelOwner: w.owner, docker.LabelRunner: name, docker.LabelPool: "x64"}
	if _, err := w.cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name + "-work", Labels: labels}); err != nil {
		t.Fatal(err)
	}
	r, ok := w.list(t)[name]
	if !ok || r.Phase != reconcile.PhaseFinished {
		t.Fatalf("listed %+v, want a finished runner %s", w.list(t), name)
	}
	if err := w.b.Delete(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := w.cli.VolumeInspect(ctx, name+"-work", client.VolumeInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Fatalf("volume still there: %v", err)
	}
}

func TestList_AnEngineThatIsDownIsAnError(t *testing.T) {
	cfg, err := docker.ParseConfig(yamlJSON(t, `{host: "unix://`+filepath.Join(t.TempDir(), "no.sock")+`"}`), "pools[0].docker")
	if err != nil {
		t.Fatal(err)
	}
	c, err := docker.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = docker.New(c, "t", "x64", cfg).List(context.Background())
	if err == nil || !strings.Contains(err.Error(), "listing containers at unix://") {
		t.Fatalf("List: %v", err)
	}
}

func TestHostDockerSocket_TheRunnerReachesTheEnginesOwnSocket(t *testing.T) {
	w := newWorld(t, `{image: "`+dockertest.RunnerImage+`", pull: never, host_docker_socket: true, env: {FAKE_JOB_SECONDS: "0"}}`)
	spec := w.spec(112)
	if err := w.b.Create(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	w.waitExited(t, spec.Name)
	// The runner's user (uid 1001, not in the host's docker group) reached the engine.
	if logs := dockertest.ContainerLogs(t, w.cli, spec.Name); !strings.Contains(logs, "fake-runner: docker: ping HTTP/1.1 200 OK") {
		t.Fatalf("the runner could not use the engine's socket:\n%s", logs)
	}
	c := w.inspect(t, spec.Name)
	sock := strings.TrimPrefix(dockertest.Host(t), "unix://")
	if len(c.Mounts) != 1 || c.Mounts[0].Source != sock || c.Mounts[0].Destination != docker.HostSocket {
		t.Fatalf("mounts %+v, want %s at %s", c.Mounts, sock, docker.HostSocket)
	}
}

func TestCreate_AnImageThatCannotBePulledSaysSoAndMakesNothing(t *testing.T) {
	// A registry on a closed port of this machine: the pull fails at once.
	w := newWorld(t, `{image: "127.0.0.1:1/reconcile-test/absent:1", pull: missing}`)
	err := w.b.Create(context.Background(), w.spec(113))
	if err == nil || !strings.Contains(err.Error(), "pulling image 127.0.0.1:1/reconcile-test/absent:1") {
		t.Fatalf("create: %v", err)
	}
	if len(w.list(t)) != 0 {
		t.Fatal("a runner was made")
	}
}

// countingRegistry puts a proxy in front of the test registry that counts the
// manifest requests (one per pull), and returns its address.
func countingRegistry(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	target, err := url.Parse("http://" + dockertest.Registry(t))
	if err != nil {
		t.Fatal(err)
	}
	var pulls atomic.Int64
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/manifests/") {
			pulls.Add(1)
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), &pulls
}

func TestPull_MissingPullsAnImageTheEngineLacksOnce(t *testing.T) {
	cli := dockertest.Client(t)
	dockertest.Push(t, cli, dockertest.Registry(t), "reconcile-test/pull-missing:1")
	proxy, pulls := countingRegistry(t)
	ref := proxy + "/reconcile-test/pull-missing:1"
	t.Cleanup(func() { dockertest.Forget(t, cli, ref) })
	w := newWorld(t, `{image: "`+ref+`", pull: missing, env: {FAKE_JOB_SECONDS: "0"}}`)
	for job := int64(120); job < 122; job++ {
		spec := w.spec(job)
		if err := w.b.Create(context.Background(), spec); err != nil {
			t.Fatal(err)
		}
		if code := w.waitExited(t, spec.Name); code != 0 {
			t.Fatalf("runner of the pulled image exited %d:\n%s", code, dockertest.ContainerLogs(t, w.cli, spec.Name))
		}
	}
	if n := pulls.Load(); n == 0 || n > 2 {
		t.Fatalf("%d manifest requests, want the one pull's (at most a HEAD and a GET)", n)
	}
}

func TestPull_AlwaysPullsAtMostOnceAMinute(t *testing.T) {
	cli := dockertest.Client(t)
	dockertest.Push(t, cli, dockertest.Registry(t), "reconcile-test/pull-always:1")
	proxy, pulls := countingRegistry(t)
	ref := proxy + "/reconcile-test/pull-always:1"
	t.Cleanup(func() { dockertest.Forget(t, cli, ref) })
	w := newWorld(t, `{image: "`+ref+`", pull: always, env: {FAKE_JOB_SECONDS: "0"}}`)
	now := time.Now()
	w.b.Now = func() time.Time { return now }
	create := func(job int64) int64 {
		t.Helper()
		if err := w.b.Create(context.Background(), w.spec(job)); err != nil {
			t.Fatal(err)
		}
		return pulls.Load()
	}
	first := create(130)
	if first == 0 {
		t.Fatal("pull: always did not pull")
	}
	if n := create(131); n != first {
		t.Fatalf("a second create within the minute pulled again (%d manifest requests, then %d)", first, n)
	}
	now = now.Add(docker.PullEvery)
	if n := create(132); n <= first {
		t.Fatalf("a create a minute later did not pull (%d manifest requests)", n)
	}
}
