// Package k8s runs runners as Kubernetes Jobs through client-go, and implements
// reconcile.Backend. Each runner is a Job and a Secret of the same name: the Secret
// holds the JIT configuration and is owned by the Job. It must not import ghpoll or gce.
package k8s

import (
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// Mode is how a runner gets a container engine, if any.
type Mode string

// The modes a pool can run in.
const (
	// ModeStandard runs the runner alone: no container engine.
	ModeStandard Mode = "standard"
	// ModeDind adds a privileged docker:dind sidecar; the runner reaches it over a
	// shared socket (DOCKER_HOST).
	ModeDind Mode = "dind"
	// ModeDindRootless adds a rootless docker:dind-rootless sidecar, which runs as a
	// non-root user inside its own user namespace.
	ModeDindRootless Mode = "dind-rootless"
	// ModeUserns runs the pod in its own user namespace (hostUsers: false): uid 0 in
	// the pod, if anything gets it, is not uid 0 on the node.
	ModeUserns Mode = "userns"
)

// Defaults for what a pool's kubernetes section leaves unset.
const (
	DefaultNamespace        = "github-runners"
	DefaultImage            = "ghcr.io/actions/actions-runner:latest"
	DefaultTTLAfterFinished = 5 * time.Minute
	DefaultDindImage        = "docker:dind"
	DefaultRootlessImage    = "docker:dind-rootless"
)

// Config is a pool's kubernetes section.
type Config struct {
	Namespace        string             `json:"namespace,omitempty"`
	Image            string             `json:"image,omitempty"`
	Mode             Mode               `json:"mode,omitempty"`
	TTLAfterFinished reconcile.Duration `json:"ttl_after_finished,omitempty"`
	// DindImage is the sidecar's image in the dind modes.
	DindImage string `json:"dind_image,omitempty"`
	// PodTemplate is merged under what the tool controls; see docs/kubernetes.md.
	PodTemplate *corev1.PodTemplateSpec `json:"pod_template,omitempty"`
}

// ParseConfig decodes and validates a pool's kubernetes section, filling in defaults.
// path names the section in errors ("pools[1].kubernetes").
func ParseConfig(raw json.RawMessage, path string) (Config, error) {
	var c Config
	if err := reconcile.DecodeStrict(raw, &c, path); err != nil {
		return Config{}, err
	}
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	if errs := validation.IsDNS1123Label(c.Namespace); len(errs) > 0 {
		return Config{}, fmt.Errorf("%s.namespace: %q: %s", path, c.Namespace, errs[0])
	}
	if c.Image == "" {
		c.Image = DefaultImage
	}
	switch c.Mode {
	case "":
		c.Mode = ModeStandard
	case ModeStandard, ModeDind, ModeDindRootless, ModeUserns:
	default:
		return Config{}, fmt.Errorf("%s.mode: %q is not one of standard, dind, dind-rootless, userns", path, c.Mode)
	}
	if c.TTLAfterFinished < 0 {
		return Config{}, fmt.Errorf("%s.ttl_after_finished must not be negative", path)
	}
	if c.TTLAfterFinished == 0 {
		c.TTLAfterFinished = reconcile.Duration(DefaultTTLAfterFinished)
	}
	if c.DindImage == "" {
		c.DindImage = DefaultDindImage
		if c.Mode == ModeDindRootless {
			c.DindImage = DefaultRootlessImage
		}
	}
	if pt := c.PodTemplate; pt != nil {
		if pt.Spec.RestartPolicy != "" && pt.Spec.RestartPolicy != corev1.RestartPolicyNever {
			return Config{}, fmt.Errorf("%s.pod_template.spec.restartPolicy: a runner runs once: leave it out or set Never", path)
		}
		for i, ct := range pt.Spec.Containers {
			if ct.Name == "" {
				return Config{}, fmt.Errorf("%s.pod_template.spec.containers[%d].name is missing", path, i)
			}
			if ct.Name != RunnerContainer && ct.Image == "" {
				return Config{}, fmt.Errorf("%s.pod_template.spec.containers[%d].image is missing", path, i)
			}
		}
	}
	return c, nil
}
