package archive_test

import (
	"archive/tar"
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/assetscan/assetscan/archive"
	"github.com/assetscan/assetscan/archive/archivetest"
)

// TestReleaseSource: with ReleaseSource the package's bytes are freed as
// its tar stream is extracted, the disk then holds about the expanded
// size; every byte not written out (a corrupt remainder, a zip) stays
// readable in the package for engines that read it themselves; without
// the option nothing is freed.
func TestReleaseSource(t *testing.T) {
	t.Parallel()
	probePunch(t)
	rng := rand.New(rand.NewPCG(7, 9))
	var entries []archivetest.Entry
	for i := range 40 {
		b := make([]byte, 256<<10)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		entries = append(entries, archivetest.Entry{Name: "d/f" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Body: b})
	}
	tarBytes := mustBytes(t, archive.FormatTar, entries)
	entrySize := 512 + 256<<10 // header + data of each entry
	// Entries 0-20, then a header that is not one, then data nobody reads.
	badHeader := append(append(bytes.Clone(tarBytes[:21*entrySize]), bytes.Repeat([]byte("x"), 512)...), tarBytes[21*entrySize:22*entrySize]...)
	// One 4 MiB entry cut after 3 MiB of its data.
	big := make([]byte, 4<<20)
	for j := range big {
		big[j] = byte(rng.Uint32())
	}
	bigTar := mustBytes(t, archive.FormatTar, []archivetest.Entry{{Name: "big", Body: big}})
	cut := 512 + 3<<20
	tests := []struct {
		name string
		f    archive.Format
		src  []byte
		opts []archive.Option
		body [][]byte // the entries' bodies, in order
		// ReleasedBytes within [minReleased, unread]: unread is where the
		// bytes never written out begin (they must read back unchanged).
		minReleased, unread int64
		files               int
	}{
		{"tar", archive.FormatTar, tarBytes, []archive.Option{archive.ReleaseEvery(64<<10, 0)}, nil, 9 << 20, int64(len(tarBytes)), 40},
		{"tar.gz", archive.FormatTarGz, mustBytes(t, archive.FormatTarGz, entries), []archive.Option{archive.ReleaseEvery(64<<10, 64<<10)}, nil, 9 << 20, 11 << 20, 40},
		{"a bad header keeps what follows", archive.FormatTar, badHeader, []archive.Option{archive.ReleaseEvery(64<<10, 0)}, nil, 4 << 20, int64(21 * entrySize), 21},
		{"a large entry is released while written, its cut end kept in its file", archive.FormatTar, bigTar[:cut], []archive.Option{archive.ReleaseEvery(64<<10, 0)}, [][]byte{big}, 3<<20 - 64<<10, int64(cut), 1},
		{"zip is not released", archive.FormatZip, mustBytes(t, archive.FormatZip, entries), []archive.Option{archive.ReleaseEvery(64<<10, 0)}, nil, 0, 0, 40},
		{"without the option", archive.FormatTar, tarBytes, nil, nil, 0, 0, 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t)
			src := writeBytes(t, "pkg", tt.src)
			res, err := archive.Extract(context.Background(), src, tt.f, s.dest, lim(nil), tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			s.check(t, res)
			if len(res.Files) != tt.files {
				t.Fatalf("%d files extracted, want %d (findings %v)", len(res.Files), tt.files, rules(res))
			}
			bodies := tt.body
			if bodies == nil {
				for _, e := range entries {
					bodies = append(bodies, e.Body)
				}
			}
			for i, f := range res.Files {
				got, err := os.ReadFile(f.DiskPath)
				// A truncated entry is kept as far as it goes.
				if err != nil || !bytes.HasPrefix(bodies[i], got) || (len(got) < len(bodies[i]) && i != len(res.Files)-1) {
					t.Fatalf("file %s differs from entry %d (%v)", f.Path, i, err)
				}
			}
			if res.ReleasedBytes < tt.minReleased || res.ReleasedBytes > tt.unread {
				t.Errorf("ReleasedBytes = %d, want %d..%d", res.ReleasedBytes, tt.minReleased, tt.unread)
			}
			got, err := os.ReadFile(src)
			if err != nil || len(got) != len(tt.src) {
				t.Fatalf("package is %d bytes after extraction, was %d (%v)", len(got), len(tt.src), err)
			}
			if !bytes.Equal(got[res.ReleasedBytes:], tt.src[res.ReleasedBytes:]) {
				t.Errorf("bytes after the released %d changed", res.ReleasedBytes)
			}
			if !bytes.Equal(got[:res.ReleasedBytes], make([]byte, res.ReleasedBytes)) {
				t.Errorf("released bytes do not read as zeros")
			}
			var st syscall.Stat_t
			if err := syscall.Stat(src, &st); err != nil {
				t.Fatal(err)
			}
			if alloc := st.Blocks * 512; alloc > int64(len(tt.src))-res.ReleasedBytes+64<<10 {
				t.Errorf("package still occupies %d bytes of %d after releasing %d", alloc, len(tt.src), res.ReleasedBytes)
			}
		})
	}
}

// TestReleaseSourceNestedTar: only the package's own stream is released,
// never a nested archive's file (it is unpacked after the package).
func TestReleaseSourceNestedTar(t *testing.T) {
	t.Parallel()
	probePunch(t)
	inner := mustBytes(t, archive.FormatTar, []archivetest.Entry{{Name: "x", Body: bytes.Repeat([]byte("x"), 300<<10)}})
	outer := mustBytes(t, archive.FormatTar, []archivetest.Entry{
		{Name: "pad", Body: bytes.Repeat([]byte("p"), 300<<10)},
		{Name: "in.tar", Body: inner, Type: tar.TypeReg},
	})
	s := newSandbox(t)
	res, err := archive.Extract(context.Background(), writeBytes(t, "pkg", outer), archive.FormatTar, s.dest, lim(nil), archive.ReleaseEvery(4096, 0))
	if err != nil {
		t.Fatal(err)
	}
	s.check(t, res)
	if got := paths(res); len(got) != 2 || got[0] != "in.tar!/x" || got[1] != "pad" {
		t.Fatalf("files %v", got)
	}
	b, err := os.ReadFile(filepath.Join(s.dest, "in.tar!", "x"))
	if err != nil || len(b) != 300<<10 || b[0] != 'x' || b[len(b)-1] != 'x' {
		t.Fatalf("nested file damaged (%d bytes, %v)", len(b), err)
	}
	if res.ReleasedBytes == 0 {
		t.Error("nothing released")
	}
}

// probePunch skips when the temp dir's file system cannot punch holes.
func probePunch(t *testing.T) {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "probe"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write(make([]byte, 8192))
	if err := archive.PunchHole(f, 0, 4096); err != nil {
		t.Skipf("the temp dir cannot punch holes: %v", err)
	}
}
