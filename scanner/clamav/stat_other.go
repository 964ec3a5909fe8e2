//go:build !linux

package clamav

import (
	"os"
	"time"
)

func statExtra(os.FileInfo) string { return "" }

func changeTime(st os.FileInfo) time.Time { return st.ModTime() }
