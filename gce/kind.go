package gce

import (
	"context"
	"encoding/json"
	"fmt"
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
	out := map[string]reconcile.Backend{}
	projects := map[string]*Backend{} // project and endpoint → its backend
	for _, p := range pools {
		cfg := p.Config.(Config)
		account := cfg.Project + "|" + cfg.Endpoint
		if b, ok := projects[account]; ok {
			if err := b.AddPool(ctx, p.Pool, cfg); err != nil {
				return nil, fmt.Errorf("%s: %w", p.Path, err)
			}
			out[p.Pool] = b
			continue
		}
		b, err := New(ctx, cfg, env.Owner, opts...) // serves this first pool of the project as it is
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.Path, err)
		}
		if env.Memo != nil {
			b.UseMemo(env.Memo)
		}
		projects[account], out[p.Pool] = b, b
	}
	return out, nil
}
