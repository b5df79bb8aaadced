package plan

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// RunnerName returns the name of the runner made for a job: "<prefix>-<pool>-<job id>",
// or with "-r<n>" appended for the n-th retry when that name is still in use.
func RunnerName(prefix, pool string, jobID int64, retry int) string {
	name := prefix + "-" + pool + "-" + strconv.FormatInt(jobID, 10)
	if retry > 0 {
		name += "-r" + strconv.Itoa(retry)
	}
	return name
}

var nameTail = regexp.MustCompile(`^[a-z0-9-]*[a-z0-9]-([0-9]{1,19})(?:-r[1-9])?$`)

// retryName matches the name of a retry (RunnerName with retry > 0).
var retryName = regexp.MustCompile(`-[0-9]{1,19}-r[1-9]$`)

// ParseRunnerName reports whether name is one this tool gives under prefix, and the
// job id in it (0 for a warm runner, which has none).
func ParseRunnerName(prefix, name string) (jobID int64, ok bool) {
	if IsWarmName(prefix, name) {
		return 0, true
	}
	rest, ok := strings.CutPrefix(name, prefix+"-")
	if !ok {
		return 0, false
	}
	m := nameTail.FindStringSubmatch(rest)
	if m == nil {
		return 0, false
	}
	id, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, false
	}
	return id, true
}

// MatchPool returns the first pool, in configuration order, whose labels include
// every label of the job, compared case-insensitively; nil if none can serve it.
func MatchPool(pools []Pool, jobLabels []string) *Pool {
	if len(jobLabels) == 0 {
		return nil
	}
	for i := range pools {
		if pools[i].CatchAll && coversLabels(jobLabels, pools[i].Labels) || coversLabels(pools[i].Labels, jobLabels) {
			return &pools[i]
		}
	}
	return nil
}

func coversLabels(have, want []string) bool {
	for _, w := range want {
		if !slices.ContainsFunc(have, func(h string) bool { return strings.EqualFold(h, w) }) {
			return false
		}
	}
	return true
}

// IsRetryName reports whether name is a retry's (RunnerName with retry > 0).
func IsRetryName(name string) bool { return retryName.MatchString(name) }
