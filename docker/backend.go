package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// The labels on everything the backend makes. LabelOwner (the name prefix) is what
// makes a container or volume this installation's: nothing without it is listed,
// inspected or removed.
const (
	LabelOwner  = "reconcile.dev/owner"
	LabelPool   = "reconcile.dev/pool"
	LabelRunner = "reconcile.dev/runner" // the runner a container or volume belongs to
	LabelRole   = "reconcile.dev/role"   // RoleRunner or RoleDind
	LabelJobID  = "reconcile.dev/job-id"
	LabelRunID  = "reconcile.dev/run-id" // the workflow run, for cost tools that split by label
	LabelScope  = "reconcile.dev/scope"  // where the runner is registered: owner/repo or org
	LabelRepo   = "reconcile.dev/repo"   // the repository of the job it was made for
)

// ownership keeps a runner's Ownership in the labels of its containers and volumes:
// Docker's label values take the scope's "/" too.
var ownership = reconcile.OwnershipKeys{Owner: LabelOwner, Pool: LabelPool, Runner: LabelRunner, JobID: LabelJobID, Scope: LabelScope, Repo: LabelRepo,
	RunID: LabelRunID} // Docker's labels take any value: the repository is LabelRepo as it is

// The roles of a runner's containers.
const (
	RoleRunner = "runner"
	RoleDind   = "dind"
)

// StartGrace is how long a container may stay created but not started: a pass that
// creates one starts it within seconds; one older than this was left by a pass that
// died, and is finished.
const StartGrace = 2 * time.Minute

// PullEvery bounds how often pull: always pulls one image.
const PullEvery = time.Minute

// Backend runs the runners of one or more pools on one engine.
type Backend struct {
	cli   *client.Client
	owner string
	pools map[string]Config
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	imageMu sync.Mutex
	pulled  map[string]time.Time // image → last pull, for pull: always
}

var _ reconcile.Backend = (*Backend)(nil)

// Options implements reconcile.Backend: a Docker pool makes its runners one way.
func (b *Backend) Options(string) []string { return nil }

// Describe implements reconcile.Backend.
func (b *Backend) Describe() (where, check string) {
	return "Docker engine at " + b.cli.DaemonHost(), "check that the daemon runs and answers (systemctl status docker; docker info), " +
		"the socket and its permissions, and DOCKER_HOST or the pool's docker.host"
}

// NewClient connects to the engine cfg names (DOCKER_HOST and the DOCKER_TLS_* and
// DOCKER_CERT_PATH variables when it names none), negotiating the API version: the
// client speaks API 1.40 (Docker 19.03) and newer.
func NewClient(cfg Config) (*client.Client, error) {
	opts := []client.Opt{client.FromEnv, client.WithUserAgent("reconcile")}
	if cfg.Host != "" {
		opts = append(opts, client.WithHost(cfg.Host))
	}
	if cfg.TLS != nil {
		opts = append(opts, client.WithTLSClientConfig(cfg.TLS.CA, cfg.TLS.Cert, cfg.TLS.Key))
	}
	return client.New(opts...)
}

// New returns a backend that makes runners on cli for the pool, and manages what
// carries owner (the name prefix) in LabelOwner.
func New(cli *client.Client, owner, pool string, cfg Config) *Backend {
	return &Backend{cli: cli, owner: owner, pools: map[string]Config{pool: cfg}, pulled: map[string]time.Time{}}
}

// AddPool lets the backend serve another pool on the same engine.
func (b *Backend) AddPool(pool string, cfg Config) { b.pools[pool] = cfg }

func (b *Backend) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

// ownedBy returns the filter for what carries this installation's owner label, and
// more labels if given.
func (b *Backend) ownedBy(more ...string) client.Filters {
	return client.Filters{}.Add("label", append([]string{LabelOwner + "=" + b.owner}, more...)...)
}

// List returns a runner for each runner name among the containers (and, with a
// sidecar pool, the volumes) that carry this installation's owner label.
func (b *Backend) List(ctx context.Context) ([]reconcile.Runner, error) {
	res, err := b.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: b.ownedBy()})
	if err != nil {
		return nil, fmt.Errorf("listing containers at %s: %w", b.cli.DaemonHost(), err)
	}
	byName := map[string]*reconcile.Runner{}
	var names []string
	add := func(name string, labels map[string]string, created time.Time) *reconcile.Runner {
		if r := byName[name]; r != nil {
			return r
		}
		r := runnerOf(name, labels, created)
		byName[name] = &r
		names = append(names, name)
		return &r
	}
	for _, c := range res.Items {
		name := c.Labels[LabelRunner]
		if name == "" {
			continue
		}
		r := add(name, c.Labels, time.Unix(c.Created, 0))
		switch {
		case c.Labels[LabelRole] == RoleRunner:
			r.Location = shortID(c.ID)
			r.CreatedAt = time.Unix(c.Created, 0)
			r.Phase = b.phase(c.State, r.CreatedAt)
		case r.Phase == reconcile.PhaseActive && b.phase(c.State, time.Unix(c.Created, 0)) == reconcile.PhaseFinished:
			// A runner whose daemon stopped can no longer run its jobs' containers.
			r.Phase = reconcile.PhaseFinished
		}
	}
	if err := b.listVolumes(ctx, add); err != nil {
		return nil, err
	}
	out := make([]reconcile.Runner, 0, len(names))
	for _, n := range names {
		out = append(out, *byName[n])
	}
	return out, nil
}

// listVolumes adds the runners whose volumes are left when their containers are
// gone (a delete that failed half-way), so that they are deleted again. Only pools
// with a sidecar make volumes.
func (b *Backend) listVolumes(ctx context.Context, add func(string, map[string]string, time.Time) *reconcile.Runner) error {
	if !slices.ContainsFunc(slices.Collect(maps.Values(b.pools)), func(c Config) bool { return c.DockerInDocker == DindSidecar }) {
		return nil
	}
	res, err := b.cli.VolumeList(ctx, client.VolumeListOptions{Filters: b.ownedBy()})
	if err != nil {
		return fmt.Errorf("listing volumes at %s: %w", b.cli.DaemonHost(), err)
	}
	for _, v := range res.Items {
		if name := v.Labels[LabelRunner]; name != "" {
			created, _ := time.Parse(time.RFC3339, v.CreatedAt)
			add(name, v.Labels, created)
		}
	}
	return nil
}

// runnerOf reads a runner back from the labels of one of its containers or volumes.
// Until its runner container is seen, it is finished: what is left of a runner
// without one is removed.
func runnerOf(name string, labels map[string]string, created time.Time) reconcile.Runner {
	o := ownership.Decode(labels, labels)
	return reconcile.Runner{Name: name, Pool: o.Pool, Scope: o.Scope, Repo: o.Repo, JobID: o.JobID, CreatedAt: created, Phase: reconcile.PhaseFinished}
}

// phase says whether a container in state s, created at created, may still run a job.
func (b *Backend) phase(s container.ContainerState, created time.Time) reconcile.Phase {
	switch s {
	case container.StateExited, container.StateDead, container.StateRemoving:
		return reconcile.PhaseFinished
	case container.StateCreated:
		if b.now().Sub(created) >= StartGrace {
			return reconcile.PhaseFinished
		}
	}
	return reconcile.PhaseActive
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Create starts a runner: its image made sure of, its container created with the
// JIT configuration copied in as a file only the runner's user can read (never in
// the container's environment or command line, which docker inspect shows), its
// sidecar if the pool has one, and then started. Nil if this installation already
// has a runner of that name. A create that fails part-way removes what it made.
func (b *Backend) Create(ctx context.Context, spec reconcile.RunnerSpec) error {
	cfg, ok := b.pools[spec.Pool]
	if !ok {
		return fmt.Errorf("pool %q has no docker section", spec.Pool)
	}
	if err := b.ensureImages(ctx, cfg); err != nil {
		return err
	}
	labels := b.labels(spec)
	if cfg.DockerInDocker == DindSidecar {
		if err := b.createVolumes(ctx, spec.Name, labels); err != nil {
			return b.undo(ctx, spec.Name, err)
		}
	}
	id, err := b.createRunner(ctx, cfg, spec, labels)
	if errors.Is(err, errExists) {
		return nil
	}
	if err != nil {
		return b.undo(ctx, spec.Name, err)
	}
	if err := b.copyJIT(ctx, id, spec.JITConfig); err != nil {
		return b.undo(ctx, spec.Name, fmt.Errorf("copying the JIT configuration into container %s: %w", spec.Name, err))
	}
	if cfg.DockerInDocker == DindSidecar {
		if err := b.startSidecar(ctx, cfg, spec.Name, labels); err != nil {
			return b.undo(ctx, spec.Name, err)
		}
	}
	if _, err := b.cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return b.undo(ctx, spec.Name, fmt.Errorf("starting container %s: %w", spec.Name, err))
	}
	return nil
}

// errExists is a runner container of that name that this installation made.
var errExists = errors.New("exists")

func (b *Backend) labels(spec reconcile.RunnerSpec) map[string]string {
	labels, notes := ownership.Encode(reconcile.OwnershipOf(b.owner, spec))
	maps.Copy(labels, notes)
	return labels
}

// with returns labels with role set.
func with(labels map[string]string, role string) map[string]string {
	out := maps.Clone(labels)
	out[LabelRole] = role
	return out
}

// createRunner creates the runner's container and returns its id; errExists if this
// installation already has one of that name.
func (b *Backend) createRunner(ctx context.Context, cfg Config, spec reconcile.RunnerSpec, labels map[string]string) (string, error) {
	res, err := b.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:       spec.Name,
		Config:     runnerConfig(cfg, spec, with(labels, RoleRunner)),
		HostConfig: b.runnerHostConfig(cfg, spec.Name),
	})
	if cerrdefs.IsConflict(err) {
		return "", b.existing(ctx, spec.Name)
	}
	if err != nil {
		return "", fmt.Errorf("creating container %s: %w", spec.Name, err)
	}
	return res.ID, nil
}

// existing tells, for a name the engine says is taken, whether it is ours.
func (b *Backend) existing(ctx context.Context, name string) error {
	res, err := b.cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		return fmt.Errorf("creating container %s: the name is taken, and inspecting it failed: %w", name, err)
	}
	if l := res.Container.Config; l != nil && l.Labels[LabelOwner] == b.owner && l.Labels[LabelRunner] == name {
		return errExists
	}
	return fmt.Errorf("creating container %s: a container of that name exists that reconcile did not make: rename or remove it", name)
}

// jitDir and jitFile are where the JIT configuration is copied in the container.
const (
	jitDir  = ".reconcile"
	jitFile = "/" + jitDir + "/jitconfig"
)

// copyJIT copies the JIT configuration into the created container: a directory and
// file owned by the container's user (mode 0700 and 0400), which the start script
// reads into the runner's environment and removes.
func (b *Backend) copyJIT(ctx context.Context, id string, jit reconcile.Secret) error {
	o, err := b.runAs(ctx, id)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := b.now()
	hdrs := []*tar.Header{
		{Name: jitDir + "/", Typeflag: tar.TypeDir, Mode: 0o700, Uid: o.uid, Gid: o.gid, ModTime: now},
		{Name: jitDir + "/jitconfig", Typeflag: tar.TypeReg, Mode: 0o400, Uid: o.uid, Gid: o.gid, Size: int64(len(jit.Reveal())), ModTime: now},
	}
	for _, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
	}
	if _, err := tw.Write([]byte(jit.Reveal())); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	_, err = b.cli.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: "/", Content: &buf})
	return err
}

// startScript puts the JIT configuration into the runner's environment (where the
// runner reads it as --jitconfig, and masks it), removes the file, waits for the
// sidecar's daemon if there is one, and runs the command.
func startScript(dind bool) string {
	s := `set -e
ACTIONS_RUNNER_INPUT_JITCONFIG=$(cat ` + jitFile + `)
rm -f ` + jitFile + `
export ACTIONS_RUNNER_INPUT_JITCONFIG
`
	if dind {
		s += `i=0
while [ ! -S ` + HostSocket + ` ]; do
	i=$((i + 1))
	if [ "$i" -gt 60 ]; then echo "reconcile: the docker sidecar did not start within 60 s" >&2; exit 1; fi
	sleep 1
done
`
	}
	return s + `exec "$@"`
}

func runnerConfig(cfg Config, spec reconcile.RunnerSpec, labels map[string]string) *container.Config {
	env := make([]string, 0, len(cfg.Env)+1)
	for _, k := range slices.Sorted(maps.Keys(cfg.Env)) {
		env = append(env, k+"="+cfg.Env[k])
	}
	dind := cfg.DockerInDocker == DindSidecar
	if dind || cfg.HostDockerSocket {
		env = append(env, "DOCKER_HOST=unix://"+HostSocket)
	}
	return &container.Config{
		Image:      cfg.Image,
		Hostname:   hostname(spec.Name),
		Labels:     labels,
		Env:        env,
		Entrypoint: []string{"/bin/sh", "-c", startScript(dind), "reconcile-start"},
		Cmd:        slices.Clone(cfg.Command),
	}
}

// hostname is the runner's name cut to a host name's 63 characters.
func hostname(name string) string {
	if len(name) > 63 {
		return strings.TrimRight(name[:63], "-.")
	}
	return name
}

// hostConfig is what a runner's containers share: no restart, the engine's limits,
// the network, the logs, an init process that reaps what jobs leave behind.
func hostConfig(cfg Config) *container.HostConfig {
	hc := &container.HostConfig{
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
		Init:          ptr(true),
		NetworkMode:   container.NetworkMode(cfg.Network),
		LogConfig:     container.LogConfig{Type: cfg.LogDriver, Config: cfg.LogOptions},
	}
	hc.NanoCPUs = int64(cfg.CPUs * 1e9)
	if cfg.memoryBytes > 0 {
		hc.Memory, hc.MemorySwap = cfg.memoryBytes, cfg.memoryBytes // no swap beyond the limit
	}
	return hc
}

func (b *Backend) runnerHostConfig(cfg Config, name string) *container.HostConfig {
	hc := hostConfig(cfg)
	for _, v := range cfg.mounts {
		m := mount.Mount{Type: mount.TypeVolume, Source: v.source, Target: v.target, ReadOnly: v.readOnly}
		if v.bind {
			m.Type = mount.TypeBind
		}
		hc.Mounts = append(hc.Mounts, m)
	}
	if cfg.HostDockerSocket {
		src, group := b.engineSocket()
		hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeBind, Source: src, Target: HostSocket})
		if group != "" {
			hc.GroupAdd = []string{group}
		}
	}
	if cfg.DockerInDocker == DindSidecar {
		hc.Mounts = append(hc.Mounts, sidecarMounts(name)...)
	}
	return hc
}

// engineSocket is the engine's socket on its host, for host_docker_socket: the path
// the client dials, or HostSocket for an engine reached over TCP; and, when the
// socket is on this machine, the group that owns it, which the runner's user is
// given so that it may connect (the engine's --group; its number differs from host
// to host).
func (b *Backend) engineSocket() (path, group string) {
	path, ok := strings.CutPrefix(b.cli.DaemonHost(), "unix://")
	if !ok {
		return HostSocket, ""
	}
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return path, ""
	}
	return path, strconv.FormatUint(uint64(st.Gid), 10)
}

// ensureImages makes sure the engine has the pool's images, as its pull policy says.
// One check at a time: a burst of creates pulls an image once.
func (b *Backend) ensureImages(ctx context.Context, cfg Config) error {
	b.imageMu.Lock()
	defer b.imageMu.Unlock()
	images := []string{cfg.Image}
	if cfg.DockerInDocker == DindSidecar {
		images = append(images, cfg.DindImage)
	}
	for _, img := range images {
		if err := b.ensureImage(ctx, img, cfg.Pull); err != nil {
			return err
		}
	}
	return nil
}

func (b *Backend) ensureImage(ctx context.Context, image string, pull Pull) error {
	if pull == PullAlways && b.now().Sub(b.pulled[image]) < PullEvery {
		return nil
	}
	if pull != PullAlways {
		_, err := b.cli.ImageInspect(ctx, image)
		switch {
		case err == nil:
			return nil
		case !cerrdefs.IsNotFound(err):
			return fmt.Errorf("inspecting image %s: %w", image, err)
		case pull == PullNever:
			return reconcile.Classify(reconcile.FailInvalid, fmt.Errorf("image %s is not on the engine at %s, and the pool says pull: never", image, b.cli.DaemonHost()))
		}
	}
	res, err := b.cli.ImagePull(ctx, image, client.ImagePullOptions{})
	if err == nil {
		err = res.Wait(ctx)
	}
	if err != nil {
		err = fmt.Errorf("pulling image %s: %w", image, err)
		switch {
		case cerrdefs.IsNotFound(err), cerrdefs.IsInvalidArgument(err):
			return reconcile.Classify(reconcile.FailInvalid, err) // no such image or tag: the pool's to fix
		case cerrdefs.IsUnauthorized(err), cerrdefs.IsPermissionDenied(err):
			return reconcile.DeniedPermission("", err) // the registry wants credentials the engine lacks
		}
		return err
	}
	b.pulled[image] = b.now()
	return nil
}

// CheckCreate implements reconcile.Checker, changing nothing: the pool's images are
// on the engine or may be pulled, and the engine has the pool's log driver.
func (b *Backend) CheckCreate(ctx context.Context, spec reconcile.RunnerSpec) error {
	cfg := b.pools[spec.Pool]
	images := []string{cfg.Image}
	if cfg.DockerInDocker == DindSidecar {
		images = append(images, cfg.DindImage)
	}
	for _, img := range images {
		_, err := b.cli.ImageInspect(ctx, img)
		switch {
		case cerrdefs.IsNotFound(err) && cfg.Pull == PullNever:
			return reconcile.Classify(reconcile.FailInvalid, fmt.Errorf("image %s is not on the engine at %s, and the pool says pull: never", img, b.cli.DaemonHost()))
		case err != nil && !cerrdefs.IsNotFound(err):
			return fmt.Errorf("inspecting image %s: %w", img, err)
		}
	}
	if cfg.LogDriver == "" {
		return nil
	}
	info, err := b.cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		return fmt.Errorf("asking the engine for its log drivers: %w", err)
	}
	if have := info.Info.Plugins.Log; !slices.Contains(have, cfg.LogDriver) {
		return reconcile.Classify(reconcile.FailInvalid, fmt.Errorf("the engine at %s has no log driver %q (it has %s)", b.cli.DaemonHost(), cfg.LogDriver, strings.Join(have, ", ")))
	}
	return nil
}

// undo removes a half-made runner (reconcile.UndoCreate).
func (b *Backend) undo(ctx context.Context, name string, cause error) error {
	return reconcile.UndoCreate(ctx, cause, func(ctx context.Context) error { return b.delete(ctx, name) })
}

// Delete removes a runner's containers (stopping them first) and volumes: what
// carries this installation's owner label and the runner's name. Nil if they are
// already gone.
func (b *Backend) Delete(ctx context.Context, r reconcile.Runner) error {
	return b.delete(ctx, r.Name)
}

func (b *Backend) delete(ctx context.Context, name string) error {
	of := b.ownedBy(LabelRunner + "=" + name)
	res, err := b.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: of})
	if err != nil {
		return fmt.Errorf("listing the containers of runner %s: %w", name, err)
	}
	// The runner first: a sidecar removed under a live runner fails its job's steps.
	slices.SortFunc(res.Items, func(x, y container.Summary) int {
		return strings.Compare(y.Labels[LabelRole], x.Labels[LabelRole]) // runner before dind
	})
	for _, c := range res.Items {
		_, err := b.cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil && !cerrdefs.IsNotFound(err) && !removing(err) {
			return fmt.Errorf("removing container %s: %w", strings.TrimPrefix(firstName(c.Names), "/"), err)
		}
	}
	if !slices.ContainsFunc(slices.Collect(maps.Values(b.pools)), func(c Config) bool { return c.DockerInDocker == DindSidecar }) {
		return nil
	}
	vols, err := b.cli.VolumeList(ctx, client.VolumeListOptions{Filters: of})
	if err != nil {
		return fmt.Errorf("listing the volumes of runner %s: %w", name, err)
	}
	for _, v := range vols.Items {
		if _, err := b.cli.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("removing volume %s: %w", v.Name, err)
		}
	}
	return nil
}

// removing reports the engine's answer to a remove of a container already being
// removed (409, "removal of container … is already in progress").
func removing(err error) bool {
	return cerrdefs.IsConflict(err) && strings.Contains(err.Error(), "already in progress")
}

func firstName(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

func ptr[T any](v T) *T { return &v }
