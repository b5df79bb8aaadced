package docker

import (
	"context"
	"encoding/json"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// Kind is Docker as a platform of the command's table: a pool's docker section. The
// pools of one engine (address and TLS files) share one backend, so that a pass lists
// the engine's containers once.
func Kind() reconcile.BackendKind {
	return reconcile.BackendKind{
		Key:   "docker",
		Parse: func(raw json.RawMessage, path string) (any, error) { return ParseConfig(raw, path) },
		Build: build,
	}
}

func build(_ context.Context, env reconcile.BackendEnv, pools []reconcile.PoolSection) (map[string]reconcile.Backend, error) {
	return reconcile.PerAccount(pools,
		func(p reconcile.PoolSection) string { return p.Config.(Config).Account() },
		func(p reconcile.PoolSection) (*Backend, error) {
			cli, err := NewClient(p.Config.(Config))
			if err != nil {
				return nil, err
			}
			return New(cli, env.Owner, p.Pool, p.Config.(Config)), nil
		},
		func(b *Backend, p reconcile.PoolSection) error { b.AddPool(p.Pool, p.Config.(Config)); return nil })
}
