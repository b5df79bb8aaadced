package plan

import (
	"fmt"
	"hash/fnv"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // time zones without the host's zoneinfo (a scratch image, a bare CI machine)
)

// A pool may keep runners warm: idle, online, ready for a job without the minute a
// runner takes to start. How many (min_idle) may change by weekday and time of day, in
// a named time zone (min_idle_schedule); repository-scoped pools name the repositories
// that get them (warm_repos), since a repository runner serves only its repository.

// WarmSchedule gives min_idle by weekday and time of day, in a time zone.
type WarmSchedule struct {
	// TimeZone is an IANA zone ("Europe/Berlin"); unset means UTC.
	TimeZone string `json:"time_zone,omitempty"`
	// Windows are tried in order; the first that holds gives min_idle. Outside every
	// window, the pool's own min_idle applies.
	Windows []WarmWindow `json:"windows"`

	loc *time.Location
}

// WarmWindow is min_idle on some weekdays, from one time of day to another.
type WarmWindow struct {
	// Days are weekdays (mon … sun) or ranges of them ("mon-fri").
	Days []string `json:"days"`
	// From and To are times of day, "HH:MM", From before To ("24:00" is the end of
	// the day); a window over midnight is two windows.
	From    string `json:"from"`
	To      string `json:"to"`
	MinIdle int    `json:"min_idle"`

	days     [7]bool
	from, to int // minutes since midnight
}

var weekdays = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// MinIdleAt is how many idle runners the pool keeps warm at now: the first schedule
// window that holds at now in the schedule's time zone, else min_idle. Wall-clock
// times in the zone: a window "08:00" starts at 08:00 on both sides of a daylight
// saving change.
func (p Pool) MinIdleAt(now time.Time) int {
	s := p.MinIdleSchedule
	if s == nil || s.loc == nil {
		return p.MinIdle
	}
	local := now.In(s.loc)
	minute := local.Hour()*60 + local.Minute()
	for _, w := range s.Windows {
		if w.days[local.Weekday()] && minute >= w.from && minute < w.to {
			return w.MinIdle
		}
	}
	return p.MinIdle
}

// validateWarm checks a pool's warm keys and prepares its schedule; key names the pool.
func validateWarm(p *Pool, key string, scope RunnerScope) error {
	if p.MinIdle < 0 || p.MinIdle > p.MaxRunners {
		return fmt.Errorf("%s.min_idle: %d is not between 0 and max_runners (%d)", key, p.MinIdle, p.MaxRunners)
	}
	if p.MaxIdleAge < 0 {
		return fmt.Errorf("%s.max_idle_age must not be negative", key)
	}
	for i, r := range p.WarmRepos {
		if s := ParseScope(r); s.IsOrg() || s.String() != r {
			return fmt.Errorf("%s.warm_repos[%d]: %q is not OWNER/NAME", key, i, r)
		}
	}
	if len(p.WarmRepos) > 0 && scope == RunnerScopeOrg {
		return fmt.Errorf("%s.warm_repos: org-scoped runners are kept warm at the organisation; warm_repos is for runner_scope repo", key)
	}
	if s := p.MinIdleSchedule; s != nil {
		if err := s.prepare(key+".min_idle_schedule", p.MaxRunners); err != nil {
			return err
		}
	}
	if scope != RunnerScopeOrg && len(p.WarmRepos) == 0 && p.warms() {
		return fmt.Errorf("%s.warm_repos: a repository-scoped pool keeps runners warm only in the repositories named here", key)
	}
	return nil
}

// PrepareWarm checks every pool's warm keys and prepares their schedules (Validate
// does it too), for a configuration made in code.
func (c *Config) PrepareWarm() error {
	for i := range c.Pools {
		if err := validateWarm(&c.Pools[i], fmt.Sprintf("pools[%d]", i), c.GitHub.RunnerScope); err != nil {
			return err
		}
	}
	return nil
}

// warms reports whether the pool ever keeps a runner warm.
func (p Pool) warms() bool {
	if p.MinIdle > 0 {
		return true
	}
	return p.MinIdleSchedule != nil && slices.ContainsFunc(p.MinIdleSchedule.Windows, func(w WarmWindow) bool { return w.MinIdle > 0 })
}

func (s *WarmSchedule) prepare(key string, maxRunners int) error {
	loc, err := time.LoadLocation(s.TimeZone)
	if err != nil || s.TimeZone == "Local" {
		return fmt.Errorf("%s.time_zone: %q is not an IANA time zone (Europe/Berlin, America/New_York, UTC)", key, s.TimeZone)
	}
	s.loc = loc
	if len(s.Windows) == 0 {
		return fmt.Errorf("%s.windows: at least one window", key)
	}
	for i := range s.Windows {
		w := &s.Windows[i]
		wk := fmt.Sprintf("%s.windows[%d]", key, i)
		if len(w.Days) == 0 {
			return fmt.Errorf("%s.days: at least one weekday (mon … sun, or a range like mon-fri)", wk)
		}
		for j, d := range w.Days {
			if err := w.addDays(d); err != nil {
				return fmt.Errorf("%s.days[%d]: %v", wk, j, err)
			}
		}
		if w.from, err = clockMinutes(w.From, false); err != nil {
			return fmt.Errorf("%s.from: %v", wk, err)
		}
		if w.to, err = clockMinutes(w.To, true); err != nil {
			return fmt.Errorf("%s.to: %v", wk, err)
		}
		if w.from >= w.to {
			return fmt.Errorf("%s: from %s is not before to %s (a window over midnight is two windows)", wk, w.From, w.To)
		}
		if w.MinIdle < 0 || w.MinIdle > maxRunners {
			return fmt.Errorf("%s.min_idle: %d is not between 0 and max_runners (%d)", wk, w.MinIdle, maxRunners)
		}
	}
	return nil
}

// addDays marks a weekday ("mon") or a range ("mon-fri", "fri-mon" wraps).
func (w *WarmWindow) addDays(d string) error {
	first, last, isRange := strings.Cut(strings.ToLower(strings.TrimSpace(d)), "-")
	a, b := slices.Index(weekdays, first), slices.Index(weekdays, last)
	if !isRange {
		b = a
	}
	if a < 0 || b < 0 {
		return fmt.Errorf("%q is not a weekday (mon … sun) or a range of them", d)
	}
	for i := a; ; i = (i + 1) % 7 {
		w.days[i] = true
		if i == b {
			return nil
		}
	}
}

// clockMinutes reads "HH:MM" as minutes since midnight; "24:00" only as an end.
func clockMinutes(s string, end bool) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	switch {
	case !ok || len(h) != 2 || len(m) != 2 || err1 != nil || err2 != nil || mm < 0 || mm > 59 || hh < 0:
		return 0, fmt.Errorf("%q is not a time of day, HH:MM", s)
	case hh == 24 && mm == 0 && end:
		return 24 * 60, nil
	case hh > 23:
		return 0, fmt.Errorf("%q is not a time of day, HH:MM (24:00 only as an end)", s)
	}
	return hh*60 + mm, nil
}

// DefaultMaxIdleAge: a warm pool's runner idle this long is replaced.
const DefaultMaxIdleAge = 4 * time.Hour

// maxIdleAge is the pool's max_idle_age, for a pool that keeps runners warm; zero
// otherwise (its idle runners are trimmed as surplus anyway).
func (p Pool) maxIdleAge() time.Duration {
	switch {
	case !p.warms():
		return 0
	case p.MaxIdleAge > 0:
		return time.Duration(p.MaxIdleAge)
	}
	return DefaultMaxIdleAge
}

// WarmScopes are where the pool keeps runners warm: its warm_repos, or, for org
// runners, the organisations the configuration names (github.orgs, and the owners of
// github.repos).
func (c *Config) WarmScopes(p Pool) []Scope {
	var out []Scope
	if c.GitHub.RunnerScope == RunnerScopeOrg {
		seen := map[string]bool{}
		for _, o := range c.GitHub.Orgs {
			seen[o] = true
		}
		for _, r := range c.GitHub.Repos {
			seen[ParseScope(r).Owner] = true
		}
		for _, o := range slices.Sorted(maps.Keys(seen)) {
			out = append(out, Scope{Owner: o})
		}
		return out
	}
	for _, r := range p.WarmRepos {
		out = append(out, ParseScope(r))
	}
	return out
}

// WarmRunnerName names the slot-th warm runner of a pool in a scope:
// <prefix>-<pool>-w<scope hash>s<slot>, with -rN when that name is still held. A warm
// runner has no job: the name says so, and tells a reader it from a job's runner.
func WarmRunnerName(prefix, pool string, scope Scope, slot, retry int) string {
	h := fnv.New32a()
	h.Write([]byte(scope.String()))
	name := fmt.Sprintf("%s-%s-w%06xs%d", prefix, pool, h.Sum32()&0xffffff, slot)
	if retry > 0 {
		name += "-r" + strconv.Itoa(retry)
	}
	return name
}

var warmTail = regexp.MustCompile(`^[a-z0-9-]*[a-z0-9]-w[0-9a-f]{6}s[0-9]{1,3}(?:-r[1-9])?$`)

// IsWarmName reports whether name is a warm runner's under prefix.
func IsWarmName(prefix, name string) bool {
	rest, ok := strings.CutPrefix(name, prefix+"-")
	return ok && warmTail.MatchString(rest)
}
