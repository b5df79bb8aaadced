// Package docker runs runners as containers on one Docker Engine, through the Engine
// API's Go client (github.com/moby/moby/client), and implements reconcile.Backend.
// Each runner is a container named after it; with docker_in_docker: sidecar, also a
// privileged daemon container and three volumes of its own. Everything it makes
// carries its labels, and it lists, inspects and removes only what carries them. It
// must not import ghpoll, gce or k8s.
package docker

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"path"
	"regexp"
	"strings"

	units "github.com/docker/go-units"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// Defaults for what a pool's docker section leaves unset.
const (
	DefaultImage     = "ghcr.io/actions/actions-runner:latest"
	DefaultDindImage = "docker:dind"
)

// DefaultCommand is what the actions runner image runs (it has no ENTRYPOINT).
var DefaultCommand = []string{"/home/runner/run.sh"}

// Pull is when the image is pulled before a runner is made of it.
type Pull string

// The pull policies, as docker run's --pull names them.
const (
	PullAlways  Pull = "always"  // before creating runners, at most once a minute per image
	PullMissing Pull = "missing" // only if the engine does not have the image
	PullNever   Pull = "never"   // never: a missing image fails the create
)

// Dind is how a runner gets a Docker daemon of its own for its jobs' containers.
type Dind string

// The docker_in_docker choices.
const (
	DindNone    Dind = "none"    // no daemon: jobs cannot run containers
	DindSidecar Dind = "sidecar" // a privileged docker:dind container per runner
)

// TLS names the files of a client certificate for a tcp:// engine.
type TLS struct {
	CA   string `json:"ca"`
	Cert string `json:"cert"`
	Key  string `json:"key"`
}

// Config is a pool's docker section.
type Config struct {
	// Host is the engine's address (unix:///var/run/docker.sock, tcp://host:2376);
	// empty means DOCKER_HOST, else the local socket.
	Host string `json:"host,omitempty"`
	// TLS is the client certificate for a tcp:// host; required there.
	TLS *TLS `json:"tls,omitempty"`

	Image string `json:"image,omitempty"`
	// Command is what the container runs once the JIT configuration is in its
	// environment; default DefaultCommand.
	Command []string `json:"command,omitempty"`
	Pull    Pull     `json:"pull,omitempty"`
	// CPUs and Memory are limits the engine enforces ("2", "0.5"; "4g", "512m").
	CPUs   float64 `json:"cpus,omitempty"`
	Memory string  `json:"memory,omitempty"`
	// Network is the network the container joins (docker run --network); empty is the
	// engine's default bridge.
	Network string            `json:"network,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	// Volumes are "source:target[:ro|rw]"; a source that starts with / is a path on
	// the host, any other a named volume. Read-only unless ":rw".
	Volumes []string `json:"volumes,omitempty"`

	DockerInDocker Dind   `json:"docker_in_docker,omitempty"`
	DindImage      string `json:"dind_image,omitempty"`
	// HostDockerSocket mounts the engine's own socket into the runner: every job can
	// then do anything root can on the host. See docs/docker.md.
	HostDockerSocket bool `json:"host_docker_socket,omitempty"`

	// LogDriver and LogOptions are the containers' log configuration (docker run
	// --log-driver, --log-opt); empty is the engine's default.
	LogDriver  string            `json:"log_driver,omitempty"`
	LogOptions map[string]string `json:"log_options,omitempty"`

	memoryBytes int64
	mounts      []volume
}

// volume is one parsed entry of Volumes.
type volume struct {
	source, target string
	bind, readOnly bool
}

// HostSocket is where a runner finds a daemon, its sidecar's or the host's
// (DOCKER_HOST), and where an engine reached over TCP listens on its own host.
const HostSocket = "/var/run/docker.sock"

// reserved are the environment variables the backend sets itself.
var reserved = map[string]bool{"ACTIONS_RUNNER_INPUT_JITCONFIG": true, "DOCKER_HOST": true}

var (
	envName    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	volumeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`) // the engine's rule
	networkRef = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
)

// ParseConfig decodes and validates a pool's docker section, filling in defaults.
// path names the section in errors ("pools[1].docker").
func ParseConfig(raw json.RawMessage, path string) (Config, error) {
	var c Config
	if err := reconcile.DecodeStrict(raw, &c, path); err != nil {
		return Config{}, err
	}
	for _, check := range []func(*Config, string) error{checkHost, checkRun, checkLimits, checkEnv, checkVolumes, checkDind} {
		if err := check(&c, path); err != nil {
			return Config{}, err
		}
	}
	return c, nil
}

func checkHost(c *Config, path string) error {
	if c.Host == "" {
		if c.TLS != nil {
			return fmt.Errorf("%s.tls needs a tcp:// host", path)
		}
		return nil
	}
	u, err := url.Parse(c.Host)
	if err != nil {
		return fmt.Errorf("%s.host: %q is not an address: use unix:///path or tcp://host:port", path, c.Host)
	}
	switch u.Scheme {
	case "unix":
		if u.Path == "" || c.TLS != nil {
			return fmt.Errorf("%s.host: %q: a unix socket is unix:///absolute/path, without tls", path, c.Host)
		}
	case "tcp":
		if u.Host == "" {
			return fmt.Errorf("%s.host: %q has no host:port", path, c.Host)
		}
		// An engine on plain TCP is root on its host for anyone who can reach the port.
		if c.TLS == nil || c.TLS.CA == "" || c.TLS.Cert == "" || c.TLS.Key == "" {
			return fmt.Errorf("%s.tls: a tcp:// host needs ca, cert and key (the engine's --tlsverify)", path)
		}
	default:
		return fmt.Errorf("%s.host: %q: only unix:// and tcp:// (with tls) are supported", path, c.Host)
	}
	return nil
}

func checkRun(c *Config, path string) error {
	if c.Image == "" {
		c.Image = DefaultImage
	}
	if len(c.Command) == 0 {
		c.Command = DefaultCommand
	}
	switch c.Pull {
	case "":
		c.Pull = PullMissing
	case PullAlways, PullMissing, PullNever:
	default:
		return fmt.Errorf("%s.pull: %q is not one of always, missing, never", path, c.Pull)
	}
	if c.Network == "host" || strings.HasPrefix(c.Network, "container:") {
		return fmt.Errorf("%s.network: %q would share a namespace with the host or another container: give the runners a network of their own", path, c.Network)
	}
	if c.Network != "" && !networkRef.MatchString(c.Network) {
		return fmt.Errorf("%s.network: %q is not a network name", path, c.Network)
	}
	if c.LogDriver == "" && len(c.LogOptions) > 0 {
		return fmt.Errorf("%s.log_options need a log_driver", path)
	}
	return nil
}

func checkLimits(c *Config, path string) error {
	if c.CPUs < 0 || math.IsInf(c.CPUs, 0) || c.CPUs > 1024 {
		return fmt.Errorf("%s.cpus: %v is not a number of CPUs", path, c.CPUs)
	}
	if c.Memory != "" {
		n, err := units.RAMInBytes(c.Memory)
		if err != nil || n < 6*1024*1024 {
			return fmt.Errorf("%s.memory: %q is not a size of at least 6m (the engine's minimum), such as 512m or 4g", path, c.Memory)
		}
		c.memoryBytes = n
	}
	return nil
}

func checkEnv(c *Config, path string) error {
	for k := range c.Env {
		if !envName.MatchString(k) {
			return fmt.Errorf("%s.env: %q is not a variable name", path, k)
		}
		if reserved[k] {
			return fmt.Errorf("%s.env.%s is set by reconcile itself", path, k)
		}
	}
	return nil
}

func checkVolumes(c *Config, p string) error {
	targets := map[string]bool{}
	for i, v := range c.Volumes {
		m, err := parseVolume(v)
		if err != nil {
			return fmt.Errorf("%s.volumes[%d]: %q: %v", p, i, v, err)
		}
		if targets[m.target] {
			return fmt.Errorf("%s.volumes[%d]: %s is mounted twice", p, i, m.target)
		}
		targets[m.target] = true
		c.mounts = append(c.mounts, m)
	}
	return nil
}

// parseVolume parses "source:target[:ro|rw]".
func parseVolume(s string) (volume, error) {
	parts := strings.Split(s, ":")
	v := volume{readOnly: true}
	switch len(parts) {
	case 3:
		switch parts[2] {
		case "ro":
		case "rw":
			v.readOnly = false
		default:
			return volume{}, fmt.Errorf("the mode is ro or rw, not %q", parts[2])
		}
	case 2:
	default:
		return volume{}, fmt.Errorf("not source:target[:ro|rw]")
	}
	v.source, v.target = parts[0], parts[1]
	v.bind = strings.HasPrefix(v.source, "/")
	switch {
	case !v.bind && !volumeName.MatchString(v.source):
		return volume{}, fmt.Errorf("the source is an absolute host path or a volume name")
	case !path.IsAbs(v.target) || path.Clean(v.target) != v.target || v.target == "/":
		return volume{}, fmt.Errorf("the target is an absolute, clean path other than /")
	case v.bind && path.Clean(v.source) != v.source:
		return volume{}, fmt.Errorf("the host path is not clean")
	case v.bind && v.source == HostSocket:
		return volume{}, fmt.Errorf("the engine's socket is host_docker_socket: true, not a volume")
	}
	return v, nil
}

func checkDind(c *Config, path string) error {
	switch c.DockerInDocker {
	case "":
		c.DockerInDocker = DindNone
	case DindNone, DindSidecar:
	default:
		return fmt.Errorf("%s.docker_in_docker: %q is not one of none, sidecar", path, c.DockerInDocker)
	}
	if c.DockerInDocker == DindSidecar && c.HostDockerSocket {
		return fmt.Errorf("%s: docker_in_docker: sidecar and host_docker_socket are exclusive: a runner talks to one daemon", path)
	}
	if c.DindImage != "" && c.DockerInDocker != DindSidecar {
		return fmt.Errorf("%s.dind_image is only for docker_in_docker: sidecar", path)
	}
	if c.DindImage == "" {
		c.DindImage = DefaultDindImage
	}
	for _, m := range c.mounts {
		if c.DockerInDocker == DindSidecar && dindPath(m.target) {
			return fmt.Errorf("%s.volumes: %s is where the sidecar's volumes go", path, m.target)
		}
	}
	return nil
}

// dindPath reports whether target is at or under one of the sidecar's mount points.
func dindPath(target string) bool {
	for _, d := range dindMounts {
		if target == d.target || strings.HasPrefix(target, d.target+"/") || strings.HasPrefix(d.target, target+"/") {
			return true
		}
	}
	return false
}

// Account is what identifies the engine a pool uses: pools with the same account
// share one client and one listing.
func (c Config) Account() string {
	if c.TLS == nil {
		return c.Host
	}
	return c.Host + "|" + c.TLS.CA + "|" + c.TLS.Cert + "|" + c.TLS.Key
}
