package reconcile

import "github.com/reconcile-dev/reconcile/reconcile/plan"

// The domain's names, declared by the pure planner (package plan), under the name the
// adapters and the command import: reconcile, whose ports (GitHub, Backend, Store) they
// implement. One declaration each, in plan; these are names, not copies.

type (
	Blind            = plan.Blind
	Budget           = plan.Budget
	UnknownKey       = plan.UnknownKey
	UnknownKeysError = plan.UnknownKeysError
	Choice           = plan.Choice
	Conclusion       = plan.Conclusion
	Config           = plan.Config
	Create           = plan.Create
	Delete           = plan.Delete
	Deregister       = plan.Deregister
	Duration         = plan.Duration
	FailureClass     = plan.FailureClass
	GitHubConfig     = plan.GitHubConfig
	Hold             = plan.Hold
	Job              = plan.Job
	JobOutcome       = plan.JobOutcome
	JobStatus        = plan.JobStatus
	Judged           = plan.Judged
	Lookup           = plan.Lookup
	Observed         = plan.Observed
	Phase            = plan.Phase
	Plan             = plan.Plan
	PollFacts        = plan.PollFacts
	Pool             = plan.Pool
	PoolStatus       = plan.PoolStatus
	Reason           = plan.Reason
	Refused          = plan.Refused
	Registration     = plan.Registration
	RepoFacts        = plan.RepoFacts
	Runner           = plan.Runner
	RunnerScope      = plan.RunnerScope
	RunnerSpec       = plan.RunnerSpec
	Scope            = plan.Scope
	Secret           = plan.Secret
	State            = plan.State
	Unservable       = plan.Unservable
	Verdict          = plan.Verdict
	Waiting          = plan.Waiting
	WarmSchedule     = plan.WarmSchedule
	WarmWindow       = plan.WarmWindow
)

const (
	ActiveWeight            = plan.ActiveWeight
	ActiveWindow            = plan.ActiveWindow
	ConclusionCancelled     = plan.ConclusionCancelled
	ConclusionFailed        = plan.ConclusionFailed
	ConclusionOther         = plan.ConclusionOther
	DefaultAPIURL           = plan.DefaultAPIURL
	DefaultBootTimeout      = plan.DefaultBootTimeout
	DefaultIdleTimeout      = plan.DefaultIdleTimeout
	DefaultMaxIdleAge       = plan.DefaultMaxIdleAge
	DefaultMaxLifetime      = plan.DefaultMaxLifetime
	DefaultNamePrefix       = plan.DefaultNamePrefix
	DefaultPointsPerMinute  = plan.DefaultPointsPerMinute
	DefaultRerunPreempted   = plan.DefaultRerunPreempted
	DefaultWritesPerHour    = plan.DefaultWritesPerHour
	FailInvalid             = plan.FailInvalid
	FallbackWritesPerMinute = plan.FallbackWritesPerMinute
	FailNoCapacity          = plan.FailNoCapacity
	FailPermission          = plan.FailPermission
	FailQuota               = plan.FailQuota
	GoneGrace               = plan.GoneGrace
	JobCompleted            = plan.JobCompleted
	JobInProgress           = plan.JobInProgress
	JobWaiting              = plan.JobWaiting
	MaxConfigSize           = plan.MaxConfigSize
	PhaseActive             = plan.PhaseActive
	PhaseFinished           = plan.PhaseFinished
	PointsPerWrite          = plan.PointsPerWrite
	PreemptionEvidenceTTL   = plan.PreemptionEvidenceTTL
	QuietSweeps             = plan.QuietSweeps
	ReasonBootTimeout       = plan.ReasonBootTimeout
	ReasonDemand            = plan.ReasonDemand
	ReasonExpired           = plan.ReasonExpired
	ReasonFinished          = plan.ReasonFinished
	ReasonForkPullRequest   = plan.ReasonForkPullRequest
	ReasonGhost             = plan.ReasonGhost
	ReasonGone              = plan.ReasonGone
	ReasonNoPool            = plan.ReasonNoPool
	ReasonPreempted         = plan.ReasonPreempted
	ReasonPublicRepo        = plan.ReasonPublicRepo
	ReasonRecycled          = plan.ReasonRecycled
	ReasonDown              = plan.ReasonDown
	ReasonSurplus           = plan.ReasonSurplus
	ReasonUnservable        = plan.ReasonUnservable
	ReasonWarm              = plan.ReasonWarm
	RegistrationGrace       = plan.RegistrationGrace
	RunnerScopeOrg          = plan.RunnerScopeOrg
	RunnerScopeRepo         = plan.RunnerScopeRepo
	StateBootFailed         = plan.StateBootFailed
	StateBooting            = plan.StateBooting
	StateBusy               = plan.StateBusy
	StateExpired            = plan.StateExpired
	StateFinished           = plan.StateFinished
	StateGhost              = plan.StateGhost
	StateHolding            = plan.StateHolding
	StateIdle               = plan.StateIdle
	StateRecycled           = plan.StateRecycled
	StateUnknown            = plan.StateUnknown
	UnservableRetry         = plan.UnservableRetry
	VerdictRerun            = plan.VerdictRerun
	VerdictSkip             = plan.VerdictSkip
	VerdictWait             = plan.VerdictWait
)

var (
	FailureClasses  = plan.FailureClasses
	States          = plan.States
	ChooseRepos     = plan.ChooseRepos
	Compute         = plan.Compute
	Teardown        = plan.Teardown
	DecodeStrict    = plan.DecodeStrict
	DefaultBudget   = plan.DefaultBudget
	DefaultPool     = plan.DefaultPool
	HTTPURL         = plan.HTTPURL
	IsWarmName      = plan.IsWarmName
	JudgePreempted  = plan.JudgePreempted
	Load            = plan.Load
	MatchPool       = plan.MatchPool
	Nearest         = plan.Nearest
	ParseOrg        = plan.ParseOrg
	ParseRepo       = plan.ParseRepo
	ParseRunnerName = plan.ParseRunnerName
	ParseScope      = plan.ParseScope
	Refusal         = plan.Refusal
	RegisteredLabel = plan.RegisteredLabel
	RunnerName      = plan.RunnerName
	WarmRunnerName  = plan.WarmRunnerName
)
