package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// A pool runs on one platform, named by its configuration section (gce, kubernetes,
// docker). Each platform's package describes itself as a BackendKind, and the command
// lists them in one table: adding a platform is one line there and its package.

// BackendKind is a platform pools may run on.
type BackendKind struct {
	// Key is the pool's configuration section that selects it ("gce").
	Key string
	// Parse decodes and checks a pool's section, and calls nothing; path names the
	// section in errors ("pools[0].gce").
	Parse func(section json.RawMessage, path string) (any, error)
	// Build makes the backends of the pools that run on it (each with what Parse
	// returned), sharing one among the pools of one platform account where it can, so
	// that a pass lists each account once. It is called only when a pool runs on it.
	Build func(ctx context.Context, env BackendEnv, pools []PoolSection) (map[string]Backend, error)
}

// PoolSection is one pool's parsed section.
type PoolSection struct {
	Pool   string
	Path   string // "pools[0].gce", for errors
	Config any    // what the kind's Parse returned
}

// BackendEnv is what every backend is built with.
type BackendEnv struct {
	// Owner is the name prefix: the value of the owner label on what this tool makes.
	Owner string
	// Memo keeps what a backend learns of its platform between passes and processes.
	Memo Memo
}

// ParseSections parses each pool's backend section with its kind, by kind; it calls
// nothing. A pool without a section is an error unless allowEmpty (a dry run shows
// what would be created with no platform at all).
func ParseSections(cfg *Config, kinds []BackendKind, allowEmpty bool) (map[string][]PoolSection, error) {
	out := map[string][]PoolSection{}
	unknown := &UnknownKeysError{}
	for i, p := range cfg.Pools {
		path := fmt.Sprintf("pools[%d]", i)
		key, section := p.Backend()
		k := slices.IndexFunc(kinds, func(k BackendKind) bool { return k.Key == key })
		switch {
		case key == "" && allowEmpty:
			continue
		case key == "":
			return nil, fmt.Errorf("%s: no backend: add a %s section", path, kindList(kinds))
		case k < 0:
			keys := make([]string, len(kinds))
			for i, k := range kinds {
				keys[i] = k.Key
			}
			unknown.Keys = append(unknown.Keys, UnknownKey{Path: path + "." + key, Suggest: Nearest(key, keys)})
			continue
		}
		parsed, err := kinds[k].Parse(section, path+"."+key)
		var uk *UnknownKeysError
		switch {
		case errors.As(err, &uk):
			unknown.Keys = append(unknown.Keys, uk.Keys...) // and look for more in the other pools
		case err != nil:
			return nil, err
		}
		out[key] = append(out[key], PoolSection{Pool: p.Name, Path: path + "." + key, Config: parsed})
	}
	if len(unknown.Keys) > 0 {
		return nil, unknown
	}
	return out, nil
}

// BuildBackends makes every pool's backend from the parsed sections: a platform's
// clients are made only when a pool runs on it.
func BuildBackends(ctx context.Context, kinds []BackendKind, sections map[string][]PoolSection, env BackendEnv) (map[string]Backend, error) {
	out := map[string]Backend{}
	for _, k := range kinds {
		if len(sections[k.Key]) == 0 {
			continue
		}
		bs, err := k.Build(ctx, env, sections[k.Key])
		if err != nil {
			return nil, err
		}
		for pool, b := range bs {
			out[pool] = b
		}
	}
	return out, nil
}

// kindList names the kinds for a person: "gce, kubernetes or docker".
func kindList(kinds []BackendKind) string {
	keys := make([]string, 0, len(kinds))
	for _, k := range kinds {
		keys = append(keys, k.Key)
	}
	if len(keys) < 2 {
		return strings.Join(keys, "")
	}
	return strings.Join(keys[:len(keys)-1], ", ") + " or " + keys[len(keys)-1]
}

// PerAccount builds a platform's backends one per account (a GCE project, a Docker
// engine): the first pool of an account makes its backend (first), and the account's
// other pools join it (join). account names the account of a pool's section.
func PerAccount[B Backend](pools []PoolSection, account func(PoolSection) string,
	first func(PoolSection) (B, error), join func(B, PoolSection) error) (map[string]Backend, error) {
	out := map[string]Backend{}
	made := map[string]B{}
	for _, p := range pools {
		b, ok := made[account(p)]
		var err error
		if ok {
			err = join(b, p)
		} else if b, err = first(p); err == nil {
			made[account(p)] = b
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.Path, err)
		}
		out[p.Pool] = b
	}
	return out, nil
}
