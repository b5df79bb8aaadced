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
	InstanceTemplate string `json:"instance_template,omitempty"`
	// InstanceTemplates, instead of InstanceTemplate, ranks templates: a create goes to
	// the first that is not in backoff for capacity or quota (a Spot template, then a
	// standard one of the same machine), and moves on to the next with the same
	// registration when one has no capacity.
	InstanceTemplates []string `json:"instance_templates,omitempty"`
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
	switch {
	case c.InstanceTemplate != "" && len(c.InstanceTemplates) > 0:
		return Config{}, fmt.Errorf("%s: instance_template and instance_templates are exclusive: give one", path)
	case c.InstanceTemplate == "" && len(c.InstanceTemplates) == 0:
		return Config{}, fmt.Errorf("%s.instance_template is missing", path)
	case c.InstanceTemplate != "":
		if err := checkTemplate(c.InstanceTemplate, path+".instance_template"); err != nil {
			return Config{}, err
		}
	}
	seen := map[string]bool{}
	for i, t := range c.InstanceTemplates {
		key := fmt.Sprintf("%s.instance_templates[%d]", path, i)
		if err := checkTemplate(t, key); err != nil {
			return Config{}, err
		}
		if seen[templateName(t)] {
			return Config{}, fmt.Errorf("%s: template %s is listed twice", key, templateName(t))
		}
		seen[templateName(t)] = true
	}
	if c.Endpoint != "" {
		if _, ok := reconcile.HTTPURL(c.Endpoint); !ok {
			return Config{}, fmt.Errorf("%s.endpoint: %q is not an http(s) URL", path, c.Endpoint)
		}
	}
	return c, nil
}

// checkTemplate checks a template's name or path.
func checkTemplate(t, key string) error {
	switch {
	case t == "":
		return fmt.Errorf("%s is empty", key)
	case strings.Contains(t, "/"):
		if !strings.HasPrefix(t, "projects/") || !strings.Contains(t, "/instanceTemplates/") || !templatePattern.MatchString(templateName(t)) {
			return fmt.Errorf("%s: %q is neither a template name nor a projects/…/instanceTemplates/… path", key, t)
		}
	case !templatePattern.MatchString(t):
		return fmt.Errorf("%s: %q is not a template name", key, t)
	}
	return nil
}

// templateName returns a template's name: the last part of a path.
func templateName(t string) string { return t[strings.LastIndex(t, "/")+1:] }

// Templates returns the pool's templates, the preferred first.
func (c Config) Templates() []string {
	if len(c.InstanceTemplates) > 0 {
		return c.InstanceTemplates
	}
	return []string{c.InstanceTemplate}
}

// withTemplate returns the configuration with the template a create takes: the one
// named (by its name, as Backend.Options gives it), else the first.
func (c Config) withTemplate(name string) Config {
	ts := c.Templates()
	c.InstanceTemplate = ts[0]
	for _, t := range ts {
		if templateName(t) == name {
			c.InstanceTemplate = t
		}
	}
	c.InstanceTemplates = nil
	return c
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
