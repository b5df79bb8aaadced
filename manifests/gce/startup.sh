#!/bin/bash
# Startup script for reconcile's runner instance template (metadata key startup-script).
#
# It reads the JIT runner configuration that reconcile put in the instance's metadata,
# runs exactly one job as an unprivileged user, and powers the VM off when the runner
# exits, whatever happened. The next pass then sees the instance TERMINATED and deletes
# it. Bake the runner into the image (RUNNER_DIR) for fast boots; otherwise it is
# downloaded here.
set -euo pipefail

readonly INSTANCE=http://metadata.google.internal/computeMetadata/v1/instance
readonly RUNNER_USER=${RUNNER_USER:-runner}
readonly RUNNER_DIR=${RUNNER_DIR:-/opt/actions-runner}
readonly RUNNER_VERSION=${RUNNER_VERSION:-2.330.0}

log() { echo "reconcile-startup: $*" | systemd-cat -t reconcile-startup 2>/dev/null || echo "reconcile-startup: $*" >&2; }

# Whatever happens from here on, the VM stops: a runner that cannot start must not
# keep a machine (and its bill) alive.
trap 'log "runner exited; powering off"; systemctl poweroff --no-block || shutdown -h now' EXIT

# The metadata server's instance entries (Compute Engine, "About VM metadata":
# computeMetadata/v1/instance/name, instance/attributes/KEY).
instance() {
	curl --silent --show-error --fail --retry 5 --retry-connrefused \
		--header 'Metadata-Flavor: Google' "${INSTANCE}/$1"
}

attribute() { instance "attributes/$1"; }

install_runner() {
	if [[ -x "${RUNNER_DIR}/run.sh" ]]; then
		return
	fi
	local arch
	case "$(uname -m)" in
	x86_64) arch=x64 ;;
	aarch64 | arm64) arch=arm64 ;;
	*)
		log "unsupported architecture $(uname -m)"
		exit 1
		;;
	esac
	log "installing actions-runner ${RUNNER_VERSION} (${arch})"
	mkdir -p "${RUNNER_DIR}"
	curl --silent --show-error --fail --location --retry 5 \
		"https://github.com/actions/runner/releases/download/v${RUNNER_VERSION}/actions-runner-linux-${arch}-${RUNNER_VERSION}.tar.gz" |
		tar -xz -C "${RUNNER_DIR}"
	"${RUNNER_DIR}/bin/installdependencies.sh" >/dev/null
}

main() {
	if ! id "${RUNNER_USER}" >/dev/null 2>&1; then
		useradd --create-home --shell /bin/bash "${RUNNER_USER}"
	fi
	if getent group docker >/dev/null; then
		usermod -aG docker "${RUNNER_USER}"
	fi
	install_runner
	chown -R "${RUNNER_USER}:" "${RUNNER_DIR}"

	local jit
	jit=$(attribute reconcile-jit-config)
	if [[ -z "${jit}" ]]; then
		log "no reconcile-jit-config in the instance metadata"
		exit 1
	fi
	# The runner's name (the instance's) ends in the id of the job it was made for.
	log "starting runner $(instance name || echo '?') for a job of $(attribute reconcile-repo || echo '?')"
	# The configuration goes to the runner alone, through its environment: never on a
	# command line, where any process on the VM could read it, and never exported from
	# this script, whose other children (the logger, the power-off) would inherit it. Once
	# the runner has it, this script keeps no copy. The runner masks it in its own logs.
	cd "${RUNNER_DIR}"
	ACTIONS_RUNNER_INPUT_JITCONFIG="${jit}" runuser -u "${RUNNER_USER}" -- ./run.sh &
	local runner=$!
	unset jit
	local status=0
	wait "${runner}" || status=$?
	log "runner exited with status ${status}"
}

main "$@"
