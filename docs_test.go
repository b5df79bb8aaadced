package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/rs/zerolog"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// The front page and docs/: every relative link and #anchor resolves, and every YAML
// example loads as it is (a configuration, or a pool's backend section, through the
// tool's own parsers; anything else as YAML). The front page stays a five-minute read.

// docFiles are README.md and every page of docs/.
func docFiles(t *testing.T) []string {
	t.Helper()
	pages, err := filepath.Glob("docs/*.md")
	if err != nil || len(pages) < 10 {
		t.Fatalf("docs/: %v, %v", pages, err)
	}
	return append([]string{"README.md"}, pages...)
}

func TestDocs_FrontPageIsShort(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n > 250 {
		t.Errorf("README.md has %d lines, more than 250: move the detail to docs/", n)
	}
}

func TestDocs_EveryLinkAndAnchorResolves(t *testing.T) {
	for _, f := range docFiles(t) {
		for _, bad := range brokenLinks(t, f) {
			t.Errorf("%s: %s", f, bad)
		}
	}
}

// A broken link is found: the check can fail.
func TestDocs_ABrokenLinkIsFound(t *testing.T) {
	dir := t.TempDir()
	page := filepath.Join(dir, "page.md")
	text := "# Page\n\n## A section\n\n[ok](#a-section) [ok](other.md#its-heading) [gone](missing.md) [no anchor](#nowhere) [no heading](other.md#nope)\n"
	if err := os.WriteFile(page, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "other.md"), []byte("# Other\n\n### Its heading\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got := brokenLinks(t, page)
	if len(got) != 3 || !strings.Contains(got[0], "missing.md") || !strings.Contains(got[1], "#nowhere") || !strings.Contains(got[2], "other.md#nope") {
		t.Errorf("broken links %q, want missing.md, #nowhere and other.md#nope", got)
	}
}

var (
	mdLink  = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	heading = regexp.MustCompile(`(?m)^#{1,6} (.+)$`)
	fence   = regexp.MustCompile("(?ms)^```.*?^```")
)

// brokenLinks returns the relative links of a Markdown file whose file or anchor does
// not exist. Anchors are GitHub's: a heading lowercased, its punctuation dropped, its
// spaces as hyphens, a repeated one suffixed -1, -2.
func brokenLinks(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var bad []string
	for _, m := range mdLink.FindAllStringSubmatch(fence.ReplaceAllString(string(b), ""), -1) {
		target := m[1]
		if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
			continue
		}
		path, anchor, _ := strings.Cut(target, "#")
		dest := file
		if path != "" {
			dest = filepath.Join(filepath.Dir(file), path)
			if _, err := os.Stat(dest); err != nil {
				bad = append(bad, target+": no such file")
				continue
			}
		}
		if anchor != "" && !anchors(t, dest)[anchor] {
			bad = append(bad, target+": no such heading")
		}
	}
	return bad
}

func anchors(t *testing.T, file string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	out := map[string]bool{}
	for _, m := range heading.FindAllStringSubmatch(fence.ReplaceAllString(string(b), ""), -1) {
		slug := strings.Map(func(r rune) rune {
			switch {
			case r == ' ':
				return '-'
			case unicode.IsLetter(r), unicode.IsDigit(r), r == '-', r == '_':
				return unicode.ToLower(r)
			}
			return -1
		}, strings.TrimSpace(m[1]))
		a := slug
		for i := 1; out[a]; i++ {
			a = slug + "-" + itoa(int64(i))
		}
		out[a] = true
	}
	return out
}

var yamlBlock = regexp.MustCompile("(?ms)^```yaml\n(.*?)^```")

func TestDocs_EveryYAMLExampleLoads(t *testing.T) {
	kinds := platforms(zerolog.Nop())
	n := 0
	for _, f := range docFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range yamlBlock.FindAllStringSubmatch(string(b), -1) {
			n++
			if err := loadExample([]byte(m[1]), kinds); err != nil {
				t.Errorf("%s, YAML example %d: %v\n%s", f, i+1, err, m[1])
			}
		}
	}
	if n < 5 {
		t.Errorf("only %d YAML examples found", n)
	}
}

// loadExample loads a configuration (it has pools or github) as a pass would, a pool's
// backend section (its one key is a platform's) with that platform's parser, and
// anything else as YAML.
func loadExample(data []byte, kinds []reconcile.BackendKind) error {
	var doc map[string]any
	if err := sigsyaml.UnmarshalStrict(data, &doc); err != nil {
		var other any
		return sigsyaml.UnmarshalStrict(data, &other)
	}
	if _, ok := doc["pools"]; ok || doc["github"] != nil {
		cfg, err := reconcile.Load(data)
		if err != nil {
			return err
		}
		if err := cfg.Validate(); err != nil {
			return err
		}
		_, err = reconcile.ParseSections(cfg, kinds, true)
		return err
	}
	if len(doc) == 1 {
		for _, k := range kinds {
			if section, ok := doc[k.Key]; ok {
				raw, err := sigsyaml.Marshal(section)
				if err != nil {
					return err
				}
				j, err := sigsyaml.YAMLToJSON(raw)
				if err != nil {
					return err
				}
				_, err = k.Parse(j, k.Key)
				return err
			}
		}
	}
	return nil
}

// The front page's Docker pool is the shipped configuration that make test runs a pass
// with (TestDocker_QuickStartConfigurationCreatesARunnerAsShipped), comments aside.
func TestDocs_FrontPagesDockerPoolIsTheShippedOne(t *testing.T) {
	shown, err := reconcile.Load([]byte(readmeBlock(t, "README.md", "**Real runners, on one host with Docker**")))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("manifests/systemd/config.docker.yaml")
	if err != nil {
		t.Fatal(err)
	}
	shipped, err := reconcile.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	if shown.String() != shipped.String() {
		t.Errorf("the front page shows\n%s\nbut manifests/systemd/config.docker.yaml is\n%s", shown, shipped)
	}
}
