package plan

import "time"

// FailureClass is what kind of platform failure a backend met.
type FailureClass string

// The classes of platform failure the pass acts on.
const (
	// FailNoCapacity: the platform has no room now (a stockout in every zone tried).
	// Weather: it passes by itself.
	FailNoCapacity FailureClass = "no_capacity"
	// FailQuota: a quota is reached (Compute's QUOTA_EXCEEDED, a namespace's
	// ResourceQuota). It passes when runners finish, or when someone raises it.
	FailQuota FailureClass = "quota"
	// FailInvalid: what the pool asks for does not exist (a template, an image, a
	// machine type offered in no zone tried). Someone must fix the configuration.
	FailInvalid FailureClass = "invalid"
	// FailPermission: the credentials lack a permission. Someone must grant it.
	FailPermission FailureClass = "permission"
)

// FailureClasses lists every class, for metrics that show each from the start.
var FailureClasses = []FailureClass{FailNoCapacity, FailQuota, FailInvalid, FailPermission}

// Weather reports whether the class passes by itself (no capacity, quota): the pass
// waits it out with a warning rather than failing.
func (c FailureClass) Weather() bool { return c == FailNoCapacity || c == FailQuota }

// Hold is a pool every option of which is in backoff: its jobs wait for capacity.
type Hold struct {
	Class   FailureClass
	Since   time.Time
	Message string
	// Probe: a probe is due this pass; the planner keeps the oldest create for it.
	Probe bool
	// Next is when the next probe is due (zero when Probe).
	Next time.Time
}
