package reconcile

import (
	"strings"
	"testing"
	"time"
)

func warmConfig(t *testing.T, pool string) *Config {
	t.Helper()
	cfg, err := Load([]byte("github: {repos: [octo-org/app]}\npools:\n" + pool))
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		t.Fatalf("Load() = %v", err)
	}
	return cfg
}

// Weekdays 08:00–19:00 Europe/Berlin keep 5 warm, Saturday mornings 2, otherwise the
// pool's 1. Times are the zone's wall clock on both sides of a daylight saving change.
func TestMinIdleAt(t *testing.T) {
	t.Parallel()
	cfg := warmConfig(t, `  - name: arm64
    labels: [self-hosted, ARM64]
    max_runners: 10
    min_idle: 1
    warm_repos: [octo-org/app]
    min_idle_schedule:
      time_zone: Europe/Berlin
      windows:
        - {days: [mon-fri], from: "08:00", to: "19:00", min_idle: 5}
        - {days: [sat], from: "09:00", to: "12:00", min_idle: 2}
`)
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, berlin)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	pool := cfg.Pools[0]
	for _, tt := range []struct {
		when time.Time
		want int
	}{
		{at("2026-11-25 07:59"), 1}, // a Wednesday, before the window
		{at("2026-11-25 08:00"), 5}, // its start is in it
		{at("2026-11-25 18:59"), 5},
		{at("2026-11-25 19:00"), 1}, // its end is not
		{at("2026-11-28 10:00"), 2}, // Saturday's window
		{at("2026-11-29 10:00"), 1}, // Sunday: none
		// Summer time starts Sunday 29 March 2026 (02:00 → 03:00); on Monday 08:00 is
		// 06:00 UTC, a week before it was 07:00 UTC.
		{time.Date(2026, 3, 23, 7, 0, 0, 0, time.UTC), 5},
		{time.Date(2026, 3, 30, 6, 0, 0, 0, time.UTC), 5},
		{time.Date(2026, 3, 30, 5, 59, 0, 0, time.UTC), 1},
		{time.Date(2026, 3, 30, 17, 0, 0, 0, time.UTC), 1}, // 19:00 summer time
		// Winter time is back on Sunday 25 October 2026: Monday 08:00 is 07:00 UTC again.
		{time.Date(2026, 10, 26, 6, 30, 0, 0, time.UTC), 1},
		{time.Date(2026, 10, 26, 7, 0, 0, 0, time.UTC), 5},
	} {
		if got := pool.MinIdleAt(tt.when); got != tt.want {
			t.Errorf("MinIdleAt(%v) = %d, want %d", tt.when.In(berlin), got, tt.want)
		}
	}
}

func TestWarmKeys_Rejected(t *testing.T) {
	t.Parallel()
	const base = "  - name: arm64\n    labels: [self-hosted, ARM64]\n    max_runners: 4\n"
	for _, tt := range []struct{ pool, scope, want string }{
		{base + "    min_idle: 5\n    warm_repos: [octo-org/app]\n", "", "pools[0].min_idle: 5 is not between 0 and max_runners"},
		{base + "    min_idle: 1\n", "", "pools[0].warm_repos"},
		{base + "    min_idle: 1\n    warm_repos: [octo-org]\n", "", "pools[0].warm_repos[0]"},
		{base + "    min_idle: 1\n    warm_repos: [octo-org/app]\n", "org", "pools[0].warm_repos: org-scoped"},
		{base + "    warm_repos: [octo-org/app]\n    min_idle_schedule: {time_zone: Mars/Olympus, windows: [{days: [mon], from: '08:00', to: '09:00', min_idle: 1}]}\n", "", "pools[0].min_idle_schedule.time_zone"},
		{base + "    warm_repos: [octo-org/app]\n    min_idle_schedule: {windows: [{days: [monday], from: '08:00', to: '09:00', min_idle: 1}]}\n", "", "pools[0].min_idle_schedule.windows[0].days[0]"},
		{base + "    warm_repos: [octo-org/app]\n    min_idle_schedule: {windows: [{days: [mon], from: '22:00', to: '02:00', min_idle: 1}]}\n", "", "two windows"},
		{base + "    warm_repos: [octo-org/app]\n    min_idle_schedule: {windows: [{days: [mon], from: '24:00', to: '24:00', min_idle: 1}]}\n", "", "pools[0].min_idle_schedule.windows[0].from"},
		{base + "    warm_repos: [octo-org/app]\n    min_idle_schedule: {windows: [{days: [mon], from: '8:00', to: '09:00', min_idle: 1}]}\n", "", "HH:MM"},
		{base + "    warm_repos: [octo-org/app]\n    min_idle_schedule: {windows: [{days: [mon], from: '08:00', to: '09:00', min_idle: 9}]}\n", "", "windows[0].min_idle"},
		{base + "    warm_repos: [octo-org/app]\n    min_idle_schedule: {windows: []}\n", "", "at least one window"},
	} {
		doc := "github: {repos: [octo-org/app]"
		if tt.scope != "" {
			doc += ", runner_scope: " + tt.scope
		}
		cfg, err := Load([]byte(doc + "}\npools:\n" + tt.pool))
		if err == nil {
			err = cfg.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Load(%q) = %v, want an error naming %q", tt.pool, err, tt.want)
		}
	}
}
