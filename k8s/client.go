package k8s

import (
	"errors"
	"fmt"

	"github.com/rs/zerolog"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// The client's own request rate. client-go's default, 5 a second with bursts of 10,
// would make a burst of 200 runners (a Secret and a Job each) take 80 s on the client
// alone; 50 and 100 are what actions-runner-controller's listener settled on for the
// same reason (its PR 4558), well within an apiserver's default of 200 mutating
// requests in flight, and API Priority and Fairness still queues us fairly.
const (
	ClientQPS   = 50
	ClientBurst = 100
)

// NewClientset connects to the cluster the tool runs in, else to the one that
// KUBECONFIG (or ~/.kube/config) names, with its current context. The apiserver's
// warnings go to log, not to stderr in klog's format.
func NewClientset(log zerolog.Logger) (kubernetes.Interface, error) {
	cfg, err := rest.InClusterConfig()
	if errors.Is(err, rest.ErrNotInCluster) {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("not in a cluster, and no usable kubeconfig (KUBECONFIG or ~/.kube/config): %w", err)
		}
	}
	if err != nil {
		return nil, err
	}
	return NewClientsetFor(cfg, log)
}

// NewClientsetFor connects as cfg, at ClientQPS and ClientBurst.
func NewClientsetFor(cfg *rest.Config, log zerolog.Logger) (kubernetes.Interface, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "reconcile"
	cfg.QPS, cfg.Burst = ClientQPS, ClientBurst
	cfg.WarningHandler = warnings{log}
	return kubernetes.NewForConfig(cfg)
}

// warnings logs the apiserver's Warning headers (deprecations, policy notices).
type warnings struct{ log zerolog.Logger }

func (w warnings) HandleWarningHeader(code int, agent, text string) {
	if code == 299 && text != "" {
		w.log.Warn().Str("source", "kubernetes").Msg(text)
	}
}
