package docker

import (
	"archive/tar"
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// owner is a numeric user and group.
type owner struct{ uid, gid int }

// runAs resolves the user a created container runs as (its image's USER, such as
// "runner" in the actions runner image, "1001" or "1001:123") to numbers, reading
// the container's own /etc/passwd and /etc/group for names. The engine's
// copyUIDGID option would do this itself, but the engine looks a name up in the
// host's user database, not the container's (moby's
// daemon/archive_tarcopyoptions_unix.go: idtools.LookupUser in 20.10), so the backend
// writes the numbers into the archive it copies.
func (b *Backend) runAs(ctx context.Context, id string) (owner, error) {
	res, err := b.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return owner{}, err
	}
	spec := ""
	if res.Container.Config != nil {
		spec = res.Container.Config.User
	}
	user, group, _ := strings.Cut(spec, ":")
	var o owner
	if user != "" {
		// A name is the first field of passwd; a number the third (a uid passwd lacks is
		// fine, with group 0, as the engine runs it).
		field := 0
		if o.uid, err = strconv.Atoi(user); err == nil {
			field = 2
		}
		f, lerr := b.lookup(ctx, id, "/etc/passwd", field, user)
		switch {
		case lerr == nil:
			o.uid, _ = strconv.Atoi(f[2])
			o.gid, _ = strconv.Atoi(f[3])
		case field == 0:
			return owner{}, fmt.Errorf("user %q of the image: %w", user, lerr)
		}
	}
	if group != "" {
		if o.gid, err = strconv.Atoi(group); err != nil {
			f, err := b.lookup(ctx, id, "/etc/group", 0, group)
			if err != nil {
				return owner{}, fmt.Errorf("group %q of the image: %w", group, err)
			}
			o.gid, _ = strconv.Atoi(f[2])
		}
	}
	return o, nil
}

// lookup returns the fields of the first line of file (passwd or group format, at
// least four fields with numbers in the third and fourth, or three for a group)
// whose field at index field is key.
func (b *Backend) lookup(ctx context.Context, id, file string, field int, key string) ([]string, error) {
	res, err := b.cli.CopyFromContainer(ctx, id, client.CopyFromContainerOptions{SourcePath: file})
	if cerrdefs.IsNotFound(err) {
		return nil, fmt.Errorf("the image has no %s", file)
	}
	if err != nil {
		return nil, err
	}
	defer res.Content.Close()
	tr := tar.NewReader(res.Content)
	if _, err := tr.Next(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", file, err)
	}
	sc := bufio.NewScanner(io.LimitReader(tr, 4<<20))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 3 || f[field] != key {
			continue
		}
		if _, err := strconv.Atoi(f[2]); err != nil {
			continue
		}
		if file == "/etc/passwd" {
			if len(f) < 4 {
				continue
			}
			if _, err := strconv.Atoi(f[3]); err != nil {
				continue
			}
		}
		return f, nil
	}
	return nil, fmt.Errorf("not in %s", file)
}
