package k8s

import (
	"errors"
	"fmt"

	"github.com/rs/zerolog"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
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
	cfg.UserAgent = "reconcile"
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
