//go:build !linux

package pgcluster

import "syscall"

// sysProcAttr runs a child as cred (nil: as this process) in its own process
// group. Only Linux can have a child killed with its parent; elsewhere a
// server outlives a killed parent until the next Start on its directory
// kills it.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Setpgid: true}
}
