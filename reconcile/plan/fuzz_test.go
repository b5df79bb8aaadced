package plan

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// Hostile configuration files get one clear error line, never a panic.
func TestLoad_HostileInput(t *testing.T) {
	t.Parallel()
	lol := "a: &a [x,x,x,x,x,x,x,x,x]\n"
	for i, c := range "bcdefghi" {
		prev := string("abcdefgh"[i])
		lol += string(c) + ": &" + string(c) + " [*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + "]\n"
	}
	tests := []struct{ name, yaml, want string }{
		{"deep nesting", "pools: " + strings.Repeat("[", 100000), "max depth"},
		{"alias bomb", lol, "not valid YAML"},
		{"invalid UTF-8", "name_prefix: \xff\xfe\n", "UTF-8"},
		{"self-referencing anchor", "a: &a [*a]\n", "not valid YAML"},
		{"huge", "name_prefix: " + strings.Repeat("x", 2<<20), "more than"},
		{"deep lists where a pool belongs", "pools:\n" + strings.Repeat("- ", 5000) + "x", "pools[0]"},
		{"NUL bytes", "name_prefix: \"a\\0b\"\npools: []\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := Load([]byte(tt.yaml))
			if err == nil {
				err = cfg.Validate()
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") || len(err.Error()) > 1000 {
				t.Errorf("error %q, want one short line containing %q", err, tt.want)
			}
		})
	}
}

// FuzzLoad: whatever the file, Load and Validate return a value or one line of error,
// and never panic. Seeds: testdata/fuzz/FuzzLoad.
func FuzzLoad(f *testing.F) {
	f.Add([]byte("github: {repos: [o/r]}\npools:\n  - {name: a, labels: [x], max_runners: 1, boot_timeout: 1m}\n"))
	f.Add([]byte("pools: [{name: a, labels: [x], max_runners: 1, gce: {project: p}}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Load(data)
		if err == nil {
			err = cfg.Validate()
		}
		if err == nil {
			if len(cfg.Pools) == 0 {
				t.Fatal("a valid configuration without pools")
			}
			_ = cfg.String()
			return
		}
		if strings.Contains(err.Error(), "\n") {
			t.Fatalf("a multi-line error: %q", err)
		}
	})
}

// FuzzRunnerName: names this tool gives parse back to their job; nothing panics.
func FuzzRunnerName(f *testing.F) {
	f.Add("gha", "arm64", int64(123), 0, "gha-arm64-123-r1")
	f.Fuzz(func(t *testing.T, prefix, pool string, job int64, retry int, other string) {
		_, _ = ParseRunnerName(prefix, other)
		if job < 0 || retry < 0 || retry > maxNameRetries || !dnsLabel.MatchString(prefix) || !dnsLabel.MatchString(pool) || !utf8.ValidString(pool) {
			return
		}
		name := RunnerName(prefix, pool, job, retry)
		got, ok := ParseRunnerName(prefix, name)
		if !ok || got != job {
			t.Fatalf("ParseRunnerName(%q, %q) = %d, %v; want %d", prefix, name, got, ok, job)
		}
	})
}
