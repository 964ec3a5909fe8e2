//go:build !linux

package clamav

import "os/exec"

func setDeathSignal(*exec.Cmd) {}
