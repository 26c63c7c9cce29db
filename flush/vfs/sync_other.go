//go:build !linux

package vfs

import "golang.org/x/sys/unix"

// fdatasync falls back to fsync where the platform has no fdatasync (macOS, the BSDs).
// ringmq's durability figures are measured on Linux only; this keeps the packages
// building elsewhere for development.
func fdatasync(fd int) error { return unix.Fsync(fd) }
