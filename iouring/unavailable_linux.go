//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le)

package iouring

import (
	"fmt"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ioUringDisabledPath is the sysctl kernel.io_uring_disabled (Linux 6.6+):
// 0 enabled, 1 only for members of kernel.io_uring_group or CAP_SYS_ADMIN, 2 off.
const ioUringDisabledPath = "/proc/sys/kernel/io_uring_disabled"

// setupError turns an io_uring_setup errno into an error that names the cause and
// what to do. Errors meaning "io_uring is unavailable here" wrap ErrNotSupported.
func setupError(errno syscall.Errno) error {
	sysctl, _ := os.ReadFile(ioUringDisabledPath)
	reason, unavailable := explainSetup(errno, strings.TrimSpace(string(sysctl)))
	if !unavailable {
		return fmt.Errorf("iouring: io_uring_setup: %w: %s", errno, reason)
	}
	return &UnavailableError{Errno: errno, Reason: reason}
}

// explainSetup maps an errno and the content of io_uring_disabled ("" if unreadable)
// to a reason, and says whether io_uring is unavailable (as opposed to a bad request).
func explainSetup(errno syscall.Errno, disabled string) (reason string, unavailable bool) {
	const fallback = "; use the pwrite I/O backend (--io-backend=pwrite)"
	switch errno {
	case unix.ENOSYS:
		return "the kernel has no io_uring (needs Linux 5.6 or later, built with CONFIG_IO_URING)" + fallback, true
	case unix.EPERM, unix.EACCES:
		switch disabled {
		case "2":
			return "io_uring is disabled by sysctl kernel.io_uring_disabled=2; set it to 0" + fallback, true
		case "1":
			return "sysctl kernel.io_uring_disabled=1 allows io_uring only to CAP_SYS_ADMIN and to members of " +
				"the group in kernel.io_uring_group; add this user to that group or set the sysctl to 0" + fallback, true
		}
		return "io_uring is enabled (" + ioUringDisabledPath + "=" + orUnknown(disabled) + ") but the call was refused, " +
			"most likely by a seccomp filter (container runtimes block io_uring by default); allow io_uring_setup, " +
			"io_uring_enter and io_uring_register in the seccomp profile" + fallback, true
	case unix.ENOMEM:
		return "the kernel could not allocate the rings; before Linux 5.12 they count against RLIMIT_MEMLOCK " +
			"(ulimit -l): raise it or use fewer entries", false
	case unix.EINVAL:
		return "the kernel rejected the ring parameters (entries or flags)", false
	case unix.EMFILE, unix.ENFILE:
		return "out of file descriptors (ulimit -n)", false
	}
	return "unexpected error", false
}

func orUnknown(s string) string {
	if s == "" {
		return "unreadable"
	}
	return s
}
