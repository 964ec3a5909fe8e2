package clamav

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel send SIGTERM to clamd if this process
// dies, so a crashed test run leaves no daemon behind.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
