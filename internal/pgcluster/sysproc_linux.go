package pgcluster

import "syscall"

// sysProcAttr runs a child as cred (nil: as this process) in its own process
// group, killed when the OS thread that started it exits.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
