package reconcile

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"unicode"
)

// Ownership is what marks a runner as this installation's, and what it was made for:
// the owner (the name prefix), its pool, its name, the job it was made for, where it
// registers and that job's repository. Every backend stores it on what it makes, in
// its platform's syntax (OwnershipKeys), each field once, and reads it back.
type Ownership struct {
	Owner, Pool, Runner string
	JobID, RunID        int64
	Scope, Repo         Scope
}

// OwnershipOf is the ownership of the runner spec describes, for owner.
func OwnershipOf(owner string, spec RunnerSpec) Ownership {
	return Ownership{Owner: owner, Pool: spec.Pool, Runner: spec.Name, JobID: spec.JobID, RunID: spec.RunID, Scope: spec.Scope, Repo: spec.Repo}
}

// OwnershipKeys are a platform's keys for an Ownership's fields. The owner, pool,
// runner and job id go in labels, which a listing can select on and whose values they
// fit on every platform; the scope and the repository, whose "/" no GCE or Kubernetes
// label value allows, go in notes (GCE metadata, Kubernetes annotations; Docker's
// labels take any value, and it keeps both in its labels). An empty key is a field the
// platform keeps otherwise (the object's own name is the runner's).
type OwnershipKeys struct {
	Owner, Pool, Runner, JobID string // label keys
	Scope, Repo                string // note keys
	// For billing (Cloud Billing's export carries GCE labels; cost tools read
	// Kubernetes and Docker labels): the workflow run's id, and the repository as a
	// label value the platform accepts (RepoLabel makes it, with the platform's rule).
	RunID, BillingRepo string // label keys
	LabelValue         func(r rune) bool
}

// Encode returns the labels and the notes that carry o.
func (k OwnershipKeys) Encode(o Ownership) (labels, notes map[string]string) {
	labels = map[string]string{k.Owner: o.Owner, k.Pool: o.Pool, k.JobID: strconv.FormatInt(o.JobID, 10)}
	if k.Runner != "" {
		labels[k.Runner] = o.Runner
	}
	if k.RunID != "" && o.RunID != 0 {
		labels[k.RunID] = strconv.FormatInt(o.RunID, 10)
	}
	if k.BillingRepo != "" && o.Repo != (Scope{}) {
		labels[k.BillingRepo] = RepoLabel(o.Repo, k.LabelValue)
	}
	return labels, map[string]string{k.Scope: o.Scope.String(), k.Repo: o.Repo.String()}
}

// Decode reads an ownership back from the labels and notes Encode made; a field
// missing (made by hand, or by an older version) reads as its zero value.
func (k OwnershipKeys) Decode(labels, notes map[string]string) Ownership {
	o := Ownership{Owner: labels[k.Owner], Pool: labels[k.Pool], Scope: ParseScope(notes[k.Scope]), Repo: ParseScope(notes[k.Repo])}
	if k.Runner != "" {
		o.Runner = labels[k.Runner]
	}
	o.JobID, _ = strconv.ParseInt(labels[k.JobID], 10, 64)
	if k.RunID != "" {
		o.RunID, _ = strconv.ParseInt(labels[k.RunID], 10, 64)
	}
	return o
}

// maxLabelValue is the longest label value GCE and Kubernetes accept.
const maxLabelValue = 63

// RepoLabel is a repository as a label value: "owner_name", lowercase, each character
// allowed refuses replaced by '-', and the ends alphanumeric (Kubernetes' rule; GCE's
// allows them). One longer than 63 characters keeps its first 54 and 8 hex digits of
// a hash of the whole name, so that two repositories never share a value.
func RepoLabel(repo Scope, allowed func(r rune) bool) string {
	name := strings.ToLower(repo.Owner + "_" + repo.Repo)
	b := []rune(name)
	for i, r := range b {
		if allowed != nil && !allowed(r) {
			b[i] = '-'
		}
	}
	v := strings.TrimFunc(string(b), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	if len(v) > maxLabelValue {
		sum := sha256.Sum256([]byte(name))
		v = strings.TrimRightFunc(v[:54], func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) + "-" + hex.EncodeToString(sum[:4])
	}
	return v
}
