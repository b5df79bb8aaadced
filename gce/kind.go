package gce

import (
	"context"
	"encoding/json"
	"os"

	"golang.org/x/oauth2"
	"google.golang.org/api/option"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// Kind is GCE as a platform of the command's table: a pool's gce section. The pools
// of one project (and endpoint) share one backend, so that a pass lists the project's
// instances once. Credentials are Application Default Credentials, or
// GOOGLE_OAUTH_ACCESS_TOKEN when set.
func Kind() reconcile.BackendKind {
	return reconcile.BackendKind{
		Key:   "gce",
		Parse: func(raw json.RawMessage, path string) (any, error) { return ParseConfig(raw, path) },
		Build: build,
	}
}

func build(ctx context.Context, env reconcile.BackendEnv, pools []reconcile.PoolSection) (map[string]reconcile.Backend, error) {
	var opts []option.ClientOption
	if tok := os.Getenv("GOOGLE_OAUTH_ACCESS_TOKEN"); tok != "" {
		opts = append(opts, option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok})))
	}
	return reconcile.PerAccount(pools,
		func(p reconcile.PoolSection) string { c := p.Config.(Config); return c.Project + "|" + c.Endpoint },
		func(p reconcile.PoolSection) (*Backend, error) {
			b, err := New(ctx, p.Config.(Config), env.Owner, opts...) // serves this first pool of the project as it is
			if err == nil && env.Memo != nil {
				b.UseMemo(env.Memo)
			}
			return b, err
		},
		func(b *Backend, p reconcile.PoolSection) error { return b.AddPool(ctx, p.Pool, p.Config.(Config)) })
}
