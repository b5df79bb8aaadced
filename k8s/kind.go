package k8s

import (
	"context"
	"encoding/json"
	"fmt"

	"k8s.io/client-go/kubernetes"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// Kind is Kubernetes as a platform of the command's table: a pool's kubernetes
// section. One client, made by client when a pool needs it, serves every pool.
func Kind(client func() (kubernetes.Interface, error)) reconcile.BackendKind {
	return reconcile.BackendKind{
		Key:   "kubernetes",
		Parse: func(raw json.RawMessage, path string) (any, error) { return ParseConfig(raw, path) },
		Build: func(_ context.Context, env reconcile.BackendEnv, pools []reconcile.PoolSection) (map[string]reconcile.Backend, error) {
			kube, err := client()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", pools[0].Path, err)
			}
			out := map[string]reconcile.Backend{}
			for _, p := range pools {
				out[p.Pool] = New(kube, env.Owner, p.Config.(Config))
			}
			return out, nil
		},
	}
}
