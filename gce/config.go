// Package gce runs runners as Compute Engine instances created from an instance
// template (cloud.google.com/go/compute), and implements reconcile.Backend. It must not
// import ghpoll or k8s.
package gce

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// Config is a pool's gce section.
type Config struct {
	// Project defaults to the metadata server's.
	Project string `json:"project,omitempty"`
	// Region defaults to the region of the metadata server's zone.
	Region string `json:"region,omitempty"`
	// Zones are tried in turn, starting from one chosen by the runner's name. Default:
	// every zone of the region.
	Zones []string `json:"zones,omitempty"`
	// InstanceTemplate is a region template's name, or a full
	// projects/…/instanceTemplates/… path.
	InstanceTemplate string `json:"instance_template"`
	// Endpoint overrides the Compute API endpoint (Private Service Connect, tests).
	Endpoint string `json:"endpoint,omitempty"`
}

var (
	projectPattern  = regexp.MustCompile(`^(?:[a-z][-a-z0-9.:]{4,61}[a-z0-9])$`)
	regionPattern   = regexp.MustCompile(`^[a-z]+-[a-z]+[0-9]+$`)
	zonePattern     = regexp.MustCompile(`^[a-z]+-[a-z]+[0-9]+-[a-z]$`)
	templatePattern = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)
)

// ParseConfig decodes and checks a pool's gce section; what is unset and comes from
// the metadata server is filled in by New. path names the section in errors.
func ParseConfig(raw json.RawMessage, path string) (Config, error) {
	var c Config
	if err := reconcile.DecodeStrict(raw, &c, path); err != nil {
		return Config{}, err
	}
	if c.Project != "" && !projectPattern.MatchString(c.Project) {
		return Config{}, fmt.Errorf("%s.project: %q is not a project id", path, c.Project)
	}
	if c.Region != "" && !regionPattern.MatchString(c.Region) {
		return Config{}, fmt.Errorf("%s.region: %q is not a region such as us-central1", path, c.Region)
	}
	for i, z := range c.Zones {
		if !zonePattern.MatchString(z) {
			return Config{}, fmt.Errorf("%s.zones[%d]: %q is not a zone such as us-central1-a", path, i, z)
		}
		if c.Region != "" && regionOf(z) != c.Region {
			return Config{}, fmt.Errorf("%s.zones[%d]: %q is not in region %s", path, i, z, c.Region)
		}
	}
	switch t := c.InstanceTemplate; {
	case t == "":
		return Config{}, fmt.Errorf("%s.instance_template is missing", path)
	case strings.Contains(t, "/"):
		if !strings.HasPrefix(t, "projects/") || !strings.Contains(t, "/instanceTemplates/") {
			return Config{}, fmt.Errorf("%s.instance_template: %q is neither a template name nor a projects/…/instanceTemplates/… path", path, t)
		}
	case !templatePattern.MatchString(t):
		return Config{}, fmt.Errorf("%s.instance_template: %q is not a template name", path, t)
	}
	if c.Endpoint != "" {
		if _, ok := reconcile.HTTPURL(c.Endpoint); !ok {
			return Config{}, fmt.Errorf("%s.endpoint: %q is not an http(s) URL", path, c.Endpoint)
		}
	}
	return c, nil
}

// regionOf returns the region of a zone: us-central1-a → us-central1.
func regionOf(zone string) string {
	if i := strings.LastIndex(zone, "-"); i > 0 {
		return zone[:i]
	}
	return zone
}

// templatePath returns the sourceInstanceTemplate for a create.
func (c Config) templatePath() string {
	if strings.Contains(c.InstanceTemplate, "/") {
		return c.InstanceTemplate
	}
	return fmt.Sprintf("projects/%s/regions/%s/instanceTemplates/%s", c.Project, c.Region, c.InstanceTemplate)
}
