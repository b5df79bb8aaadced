// Command capsruntime is the test engine's OCI runtime where the machine's
// capability bounding set lacks capabilities (some sandboxes drop CAP_SYS_RESOURCE):
// runc refuses to start a privileged container there ("unable to apply caps"),
// because the engine asks for every capability the kernel knows. capsruntime removes
// from the bundle's config.json the capabilities that the bounding set lacks, and
// runs runc with the same arguments. Nothing else changes: the engine still records
// the container as privileged, and runc runs it.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// capNames are Linux's capabilities by number, as OCI specs name them.
var capNames = []string{"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
	"SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
	"SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
	"SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
	"MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE"}

func main() {
	runc := os.Getenv("CAPSRUNTIME_RUNC")
	if runc == "" {
		runc = "/usr/sbin/runc"
	}
	for i, a := range os.Args {
		if (a == "--bundle" || a == "-b") && i+1 < len(os.Args) {
			if err := trim(filepath.Join(os.Args[i+1], "config.json")); err != nil {
				fmt.Fprintln(os.Stderr, "capsruntime:", err)
				os.Exit(1)
			}
		}
	}
	err := syscall.Exec(runc, append([]string{runc}, os.Args[1:]...), os.Environ())
	fmt.Fprintln(os.Stderr, "capsruntime:", err)
	os.Exit(1)
}

// trim removes from the spec's capability sets those the bounding set lacks.
func trim(path string) error {
	missing, err := missingCaps()
	if err != nil || len(missing) == 0 {
		return err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var spec map[string]any
	if err := json.Unmarshal(b, &spec); err != nil {
		return err
	}
	proc, _ := spec["process"].(map[string]any)
	caps, _ := proc["capabilities"].(map[string]any)
	for set, v := range caps {
		list, _ := v.([]any)
		kept := list[:0]
		for _, c := range list {
			if s, _ := c.(string); !missing["CAP_"+strings.TrimPrefix(s, "CAP_")] {
				kept = append(kept, c)
			}
		}
		caps[set] = kept
	}
	out, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o600)
}

func missingCaps() (map[string]bool, error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			bnd, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return nil, err
			}
			missing := map[string]bool{}
			for i, n := range capNames {
				if bnd&(1<<i) == 0 {
					missing["CAP_"+n] = true
				}
			}
			return missing, nil
		}
	}
	return nil, fmt.Errorf("no CapBnd in /proc/self/status")
}
