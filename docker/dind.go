package docker

import (
	"context"
	"fmt"
	"maps"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
)

// The sidecar mode follows actions-runner-controller's dind runner (its
// gha-runner-scale-set chart): the daemon and the runner share the socket's
// directory, the work directory, and the runner's externals, because the daemon
// resolves a job container's bind mounts (the workspace, /__e) on its own
// filesystem.
var dindMounts = []struct{ suffix, target string }{
	{"-run", "/var/run"},                     // the daemon's socket
	{"-work", "/home/runner/_work"},          // workspaces, which job containers mount
	{"-externals", "/home/runner/externals"}, // the runner's node etc., mounted at /__e
}

// DindGroup is the gid that owns the sidecar's socket: the actions runner image's
// docker group, which its runner user is in.
const DindGroup = "123"

// sidecarScript opens the work volume to the runner's user, whatever its uid (as a
// Kubernetes emptyDir is), then runs the dind image's own entrypoint.
const sidecarScript = `chmod 0777 /home/runner/_work && exec dockerd-entrypoint.sh "$@"`

// sidecarName is the name of a runner's sidecar container.
func sidecarName(runner string) string { return runner + "-dind" }

// sidecarMounts are the runner's volumes where both containers mount them. The
// externals volume is empty when the runner's container is created, so the engine
// fills it from the runner image's directory; the daemon then sees the same files.
func sidecarMounts(runner string) []mount.Mount {
	out := make([]mount.Mount, 0, len(dindMounts))
	for _, m := range dindMounts {
		out = append(out, mount.Mount{Type: mount.TypeVolume, Source: runner + m.suffix, Target: m.target})
	}
	return out
}

// createVolumes creates the runner's volumes (creating one that exists is a no-op).
func (b *Backend) createVolumes(ctx context.Context, runner string, labels map[string]string) error {
	for _, m := range dindMounts {
		_, err := b.cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: runner + m.suffix, Labels: maps.Clone(labels)})
		if err != nil {
			return fmt.Errorf("creating volume %s%s: %w", runner, m.suffix, err)
		}
	}
	return nil
}

// startSidecar creates and starts the runner's privileged daemon, with the pool's
// limits and network. The runner's start script waits for its socket.
func (b *Backend) startSidecar(ctx context.Context, cfg Config, runner string, labels map[string]string) error {
	hc := hostConfig(cfg)
	hc.Privileged = true // dockerd needs it; the runner itself is not privileged
	hc.Mounts = sidecarMounts(runner)
	res, err := b.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: sidecarName(runner),
		Config: &container.Config{
			Image:      cfg.DindImage,
			Labels:     with(labels, RoleDind),
			Env:        []string{"DOCKER_TLS_CERTDIR="}, // the socket only: no TCP listener, no certificates
			Entrypoint: []string{"/bin/sh", "-c", sidecarScript, "reconcile-dind"},
			Cmd:        []string{"dockerd", "--host=unix://" + HostSocket, "--group=" + DindGroup},
		},
		HostConfig: hc,
	})
	if err != nil {
		return fmt.Errorf("creating container %s: %w", sidecarName(runner), err)
	}
	if _, err := b.cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("starting container %s: %w", sidecarName(runner), err)
	}
	return nil
}
