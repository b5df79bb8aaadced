package docker

import (
	"context"
	"encoding/json"
	"fmt"

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
	out := map[string]reconcile.Backend{}
	engines := map[string]*Backend{}
	for _, p := range pools {
		cfg := p.Config.(Config)
		if b, ok := engines[cfg.Account()]; ok {
			b.AddPool(p.Pool, cfg)
			out[p.Pool] = b
			continue
		}
		cli, err := NewClient(cfg)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.Path, err)
		}
		b := New(cli, env.Owner, p.Pool, cfg)
		engines[cfg.Account()], out[p.Pool] = b, b
	}
	return out, nil
}
