package archive_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/assetscan/assetscan/archive"
	"github.com/assetscan/assetscan/archive/archivetest"
)

type entry = archivetest.Entry

func file(name, body string) entry { return entry{Name: name, Body: []byte(body)} }

func random(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 42))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// cdOffsets returns the offsets of the central directory headers of a zip.
func cdOffsets(b []byte) []int {
	var offs []int
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte("PK\x01\x02"))
		if j < 0 {
			return offs
		}
		offs = append(offs, i+j)
		i += j + 4
	}
}

func TestExtractHostile(t *testing.T) {
	t.Parallel()
	long256 := strings.Repeat("x", 256)
	long5000 := strings.Repeat("y/", 2500) + "z"
	innerZip := func(t *testing.T) []byte {
		return mustBytes(t, archive.FormatZip, []entry{file("x.txt", "inner")})
	}
	tests := []struct {
		name    string
		format  archive.Format
		entries []entry
		// raw, when set, builds the archive bytes instead of entries.
		raw       func(t *testing.T) []byte
		limits    func(*archive.Limits)
		wantFiles []string
		wantRules []string // "rule path"
		wantN     int      // Entries, when non-zero
	}{
		{
			name:   "zip slip zip",
			format: archive.FormatZip,
			entries: []entry{
				file("ok.txt", "ok"), file("../../evil.txt", "evil"), file("a/../../../evil2", "evil"), file("a/../b.txt", "b"),
			},
			wantFiles: []string{"b.txt", "ok.txt"},
			wantRules: []string{"archive.traversal ../../evil.txt", "archive.traversal a/../../../evil2"},
		},
		{
			name:      "zip slip tar",
			format:    archive.FormatTar,
			entries:   []entry{file("ok.txt", "ok"), file("../../evil.txt", "evil"), file("./../x", "evil")},
			wantFiles: []string{"ok.txt"},
			wantRules: []string{"archive.traversal ../../evil.txt", "archive.traversal ./../x"},
		},
		{
			name:   "absolute paths zip",
			format: archive.FormatZip,
			entries: []entry{
				file("/etc/evil", "x"), file(`C:\evil`, "x"), file(`\\server\share\evil`, "x"), file("c:evil", "x"), file("ok", "x"),
			},
			wantFiles: []string{"ok"},
			wantRules: []string{
				`archive.traversal /etc/evil`, `archive.traversal C:\evil`, `archive.traversal \\server\share\evil`, "archive.traversal c:evil",
			},
		},
		{
			name:      "absolute path tar.gz",
			format:    archive.FormatTarGz,
			entries:   []entry{file("/etc/cron.d/evil", "x"), file("//x", "x")},
			wantRules: []string{"archive.traversal //x", "archive.traversal /etc/cron.d/evil"},
		},
		{
			name:      "backslash traversal zip",
			format:    archive.FormatZip,
			entries:   []entry{file(`..\..\evil`, "x"), file(`dir\file.txt`, "x"), file(`a\..\..\b`, "x")},
			wantFiles: []string{"dir/file.txt"},
			wantRules: []string{`archive.traversal ..\..\evil`, `archive.traversal a\..\..\b`},
		},
		{
			name:      "NUL in name zip",
			format:    archive.FormatZip,
			entries:   []entry{file("a.txt\x00.jpg", "x")},
			wantRules: []string{`archive.traversal a.txt\x00.jpg`},
		},
		{
			name:   "symlink escape tar",
			format: archive.FormatTar,
			entries: []entry{
				{Name: "link", Type: tar.TypeSymlink, Linkname: "../../etc/passwd"},
				file("link/x", "through the link"),
				{Name: "abs", Type: tar.TypeSymlink, Linkname: "/etc/passwd"},
				{Name: "d/up", Type: tar.TypeSymlink, Linkname: "../.."},
				file("d/up/x", "x"),
				file("ok.txt", "ok"),
			},
			wantFiles: []string{"ok.txt"},
			wantRules: []string{
				"archive.link_escape abs", "archive.link_escape d/up", "archive.link_escape d/up/x",
				"archive.link_escape link", "archive.link_escape link/x",
			},
		},
		{
			name:   "symlink escape zip",
			format: archive.FormatZip,
			entries: []entry{
				{Name: "link", Type: tar.TypeSymlink, Linkname: "../../etc"},
				file("link/passwd", "x"),
				{Name: "win", Type: tar.TypeSymlink, Linkname: `..\..\x`},
			},
			wantRules: []string{"archive.link_escape link", "archive.link_escape link/passwd", "archive.link_escape win"},
		},
		{
			name:   "hardlink escape tar",
			format: archive.FormatTar,
			entries: []entry{
				{Name: "hl", Type: tar.TypeLink, Linkname: "../outside"},
				{Name: "hl2", Type: tar.TypeLink, Linkname: "/etc/shadow"},
				file("hl/x", "x"),
			},
			wantRules: []string{"archive.link_escape hl", "archive.link_escape hl/x", "archive.link_escape hl2"},
		},
		{
			name:   "in-root links tar",
			format: archive.FormatTar,
			entries: []entry{
				file("a.txt", "a"),
				{Name: "l", Type: tar.TypeSymlink, Linkname: "a.txt"},
				{Name: "sub/l2", Type: tar.TypeSymlink, Linkname: "../a.txt"},
				{Name: "h", Type: tar.TypeLink, Linkname: "./a.txt"},
				{Name: "dot", Type: tar.TypeSymlink, Linkname: "."},
			},
			wantFiles: []string{"a.txt"},
			wantN:     5,
		},
		{
			name:      "in-root symlink zip",
			format:    archive.FormatZip,
			entries:   []entry{file("lib/a.so.1", "elf"), {Name: "lib/a.so", Type: tar.TypeSymlink, Linkname: "a.so.1"}},
			wantFiles: []string{"lib/a.so.1"},
			wantN:     2,
		},
		{
			name:   "write through in-root link",
			format: archive.FormatTar,
			entries: []entry{
				{Name: "d/", Type: tar.TypeDir},
				{Name: "l", Type: tar.TypeSymlink, Linkname: "d"},
				file("l/x", "x"),
				{Name: "l", Type: tar.TypeSymlink, Linkname: "d"},
			},
			wantRules: []string{"archive.duplicate l", "archive.duplicate l/x"},
		},
		{
			name:   "special files tar",
			format: archive.FormatTar,
			entries: []entry{
				{Name: "dev/null", Type: tar.TypeChar},
				{Name: "dev/sda", Type: tar.TypeBlock},
				{Name: "pipe", Type: tar.TypeFifo},
				file("ok", "ok"),
			},
			wantFiles: []string{"ok"},
			wantRules: []string{"archive.special_file dev/null", "archive.special_file dev/sda", "archive.special_file pipe"},
		},
		{
			name:      "special files zip",
			format:    archive.FormatZip,
			entries:   []entry{{Name: "pipe", Type: tar.TypeFifo}, {Name: "tty", Type: tar.TypeChar}},
			wantRules: []string{"archive.special_file pipe", "archive.special_file tty"},
		},
		{
			name:   "duplicates tar",
			format: archive.FormatTar,
			entries: []entry{
				file("a.txt", "first"), file("a.txt", "second"), file("./a.txt", "third"),
				file("f", "file"), file("f/x", "below a file"),
				{Name: "d/", Type: tar.TypeDir}, {Name: "d/", Type: tar.TypeDir}, file("d", "file over dir"),
			},
			wantFiles: []string{"a.txt", "f"},
			wantRules: []string{"archive.duplicate ./a.txt", "archive.duplicate a.txt", "archive.duplicate d", "archive.duplicate f/x"},
		},
		{
			name:      "duplicates zip",
			format:    archive.FormatZip,
			entries:   []entry{file("a.txt", "first"), file("a.txt", "second"), file("b", "b"), {Name: "b/", Type: tar.TypeDir}},
			wantFiles: []string{"a.txt", "b"},
			wantRules: []string{"archive.duplicate a.txt", "archive.duplicate b/"},
		},
		{
			name:   "encrypted zip entry",
			format: archive.FormatZip,
			entries: []entry{
				file("plain.txt", "plain"),
				{Name: "secret.bin", Body: random(64, 1), Raw: &archivetest.ZipRaw{Method: zip.Store, Flags: 1, UncompressedSize: 52}},
			},
			wantFiles: []string{"plain.txt"},
			wantRules: []string{"malware.unscannable secret.bin"},
		},
		{
			name:   "unsupported compression method",
			format: archive.FormatZip,
			entries: []entry{
				{Name: "x.bz2data", Body: random(64, 2), Raw: &archivetest.ZipRaw{Method: 12, UncompressedSize: 100}},
				file("ok", "ok"),
			},
			wantFiles: []string{"ok"},
			wantRules: []string{"archive.unsupported x.bz2data"},
		},
		{
			name:   "zip CRC mismatch",
			format: archive.FormatZip,
			entries: []entry{
				file("first.txt", "first"),
				{Name: "bad.txt", Body: []byte("hello"), Raw: &archivetest.ZipRaw{Method: zip.Store, CRC32: 0xdeadbeef, UncompressedSize: 5}},
				file("never.txt", "not reached"),
			},
			wantFiles: []string{"bad.txt", "first.txt"},
			wantRules: []string{"archive.corrupt bad.txt"},
		},
		{
			name:   "zip directory with data",
			format: archive.FormatZip,
			entries: []entry{
				{Name: "d", Type: tar.TypeDir, Body: []byte("hidden"), Raw: &archivetest.ZipRaw{Method: zip.Store, UncompressedSize: 6}},
			},
			wantRules: []string{"archive.corrupt d"},
		},
		{
			name:      "bad names",
			format:    archive.FormatTar,
			entries:   []entry{file("dir/"+long256+"/x", "x"), file(long5000, "x"), file("ok", "ok")},
			wantFiles: []string{"ok"},
			wantRules: []string{
				"archive.bad_name " + archive.DisplayPath("dir/"+long256+"/x"),
				"archive.bad_name " + archive.DisplayPath(long5000),
			},
		},
		{
			name:      "path too long below dest",
			format:    archive.FormatTar,
			entries:   []entry{file(strings.Repeat(strings.Repeat("p", 202)+"/", 20)+"f", "x")},
			wantRules: []string{"archive.bad_name " + archive.DisplayPath(strings.Repeat(strings.Repeat("p", 202)+"/", 20)+"f")},
		},
		{
			name:      "empty and dot names",
			format:    archive.FormatZip,
			entries:   []entry{file("", "x"), {Name: "./", Type: tar.TypeDir}, file("./a/./b//c.txt", "c")},
			wantFiles: []string{"a/b/c.txt"},
			wantRules: []string{"archive.bad_name "},
		},
		{
			name:      "modes are not kept",
			format:    archive.FormatTar,
			entries:   []entry{{Name: "bin/tool", Body: []byte("#!/bin/sh\n"), Mode: 0o6755}, {Name: "bin/", Type: tar.TypeDir, Mode: 0o7777}},
			wantFiles: []string{"bin/tool"},
		},
		{
			name:      "control characters in names",
			format:    archive.FormatTar,
			entries:   []entry{file("evil\x1b[31m\u202e/../../x", "x")},
			wantRules: []string{`archive.traversal evil\x1b[31m\u202e/../../x`},
		},
		{
			name:      "unknown tar type is a file",
			format:    archive.FormatTar,
			entries:   []entry{{Name: "odd", Type: 'Z', Body: []byte("data")}},
			wantFiles: []string{"odd"},
		},
		{
			name:   "data after the end of a tar",
			format: archive.FormatTar,
			raw: func(t *testing.T) []byte {
				return append(mustBytes(t, archive.FormatTar, []entry{file("a.txt", "a")}), "hidden payload"...)
			},
			// Written out as a region, to be scanned.
			wantFiles: []string{`\region-0x800-0x80e`, "a.txt"},
			wantRules: []string{"archive.hidden_data "},
		},
		{
			name:   "concatenated tar.gz",
			format: archive.FormatTarGz,
			raw: func(t *testing.T) []byte {
				a := mustBytes(t, archive.FormatTarGz, []entry{file("a.txt", "a")})
				b := mustBytes(t, archive.FormatTarGz, []entry{file("b.txt", "b")})
				return append(a, b...)
			},
			// The second tar follows the first's end in the one gzip
			// stream: a region, unpacked as the tar it is.
			wantFiles: []string{`\region-0x800-0x1000!/b.txt`, "a.txt"},
			wantRules: []string{"archive.hidden_data "},
		},
		{
			name:   "corrupt tar header checksum",
			format: archive.FormatTar,
			raw: func(t *testing.T) []byte {
				b := mustBytes(t, archive.FormatTar, []entry{file("a.txt", "a"), file("b.txt", "b"), file("c.txt", "c")})
				i := bytes.Index(b, []byte("b.txt"))
				b[i] = 'X'
				return b
			},
			wantFiles: []string{"a.txt"},
			wantRules: []string{"archive.corrupt "},
		},
		{
			name:   "truncated tar.gz",
			format: archive.FormatTarGz,
			raw: func(t *testing.T) []byte {
				b := mustBytes(t, archive.FormatTarGz, []entry{file("a.txt", "a"), {Name: "big.bin", Body: random(256<<10, 3)}})
				return b[:len(b)*3/4]
			},
			wantFiles: []string{"a.txt", "big.bin"}, // big.bin partly
			wantRules: []string{"archive.corrupt big.bin"},
		},
		{
			name:   "truncated zip",
			format: archive.FormatZip,
			raw: func(t *testing.T) []byte {
				b := mustBytes(t, archive.FormatZip, []entry{file("a.txt", "a"), {Name: "big.bin", Body: random(64<<10, 4)}})
				return b[:len(b)/2]
			},
			// Read from the local headers, as streaming readers do; the
			// readable part of the cut entry is kept.
			wantFiles: []string{"a.txt", "big.bin"},
			wantRules: []string{"archive.corrupt ", "archive.corrupt big.bin"},
		},
		{
			name:   "overlapping zip entries",
			format: archive.FormatZip,
			raw: func(t *testing.T) []byte {
				b := mustBytes(t, archive.FormatZip, []entry{file("a", strings.Repeat("a", 1000)), file("b", strings.Repeat("a", 1000))})
				offs := cdOffsets(b)
				// Point b's central directory header at a's local header.
				binary.LittleEndian.PutUint32(b[offs[1]+42:], 0)
				return b
			},
			wantRules: []string{"archive.bomb b"},
		},
		{
			name:   "nested archive collides with a member",
			format: archive.FormatZip,
			raw: func(t *testing.T) []byte {
				return mustBytes(t, archive.FormatZip, []entry{{Name: "a.zip", Body: innerZip(t)}, file("a.zip!/y.txt", "y")})
			},
			wantFiles: []string{"a.zip", "a.zip!/y.txt"},
			wantRules: []string{"archive.duplicate a.zip!"},
		},
		{
			name:   "member below a nested archive name",
			format: archive.FormatTar,
			raw: func(t *testing.T) []byte {
				return mustBytes(t, archive.FormatTar, []entry{{Name: "a.zip", Body: innerZip(t)}, file("a.zip/y.txt", "y")})
			},
			wantFiles: []string{"a.zip!/x.txt"},
			wantRules: []string{"archive.duplicate a.zip/y.txt"},
		},
		{
			name:   "corrupt nested archive",
			format: archive.FormatTar,
			raw: func(t *testing.T) []byte {
				z := innerZip(t)
				return mustBytes(t, archive.FormatTar, []entry{{Name: "lib/b.zip", Body: z[:len(z)-30]}, file("ok.txt", "ok")})
			},
			// Read from its local headers; the rest of the cut directory
			// is a region.
			wantFiles: []string{"lib/b.zip", `lib/b.zip!/\region-0x47-0x7b`, "lib/b.zip!/x.txt", "ok.txt"},
			wantRules: []string{"archive.corrupt lib/b.zip", "archive.hidden_data lib/b.zip"},
		},
		{
			name:   "truncated nested tar.gz",
			format: archive.FormatZip,
			raw: func(t *testing.T) []byte {
				tgz := mustBytes(t, archive.FormatTarGz, []entry{file("first.txt", "1"), {Name: "big.bin", Body: random(256<<10, 5)}})
				return mustBytes(t, archive.FormatZip, []entry{{Name: "n.TGZ", Body: tgz[:len(tgz)*3/4]}})
			},
			wantFiles: []string{"n.TGZ", "n.TGZ!/big.bin", "n.TGZ!/first.txt"},
			wantRules: []string{"archive.corrupt n.TGZ!/big.bin"},
		},
		{
			name:   "archive names without archive content, and other containers",
			format: archive.FormatTar,
			raw: func(t *testing.T) []byte {
				return mustBytes(t, archive.FormatTar, []entry{file("fake.zip", "not a zip"), {Name: "lib/x.jar", Body: innerZip(t)}})
			},
			// A jar is kept whole for the analyzers and unpacked too.
			wantFiles: []string{"fake.zip", "lib/x.jar", "lib/x.jar!/x.txt"},
		},
		{
			name:   "nested content decides the format",
			format: archive.FormatZip,
			raw: func(t *testing.T) []byte {
				tr := mustBytes(t, archive.FormatTar, []entry{file("inner.txt", "in")})
				return mustBytes(t, archive.FormatZip, []entry{{Name: "x.zip", Body: tr}})
			},
			wantFiles: []string{"x.zip!/inner.txt"},
		},
		{
			name:      "too many entries tar",
			format:    archive.FormatTar,
			entries:   archivetest.Files(map[string][]byte{"0": nil, "1": nil, "2": nil, "3": nil, "4": nil}),
			limits:    func(l *archive.Limits) { l.MaxEntries = 3 },
			wantFiles: []string{"0", "1", "2"},
			wantRules: []string{"archive.too_many_entries "},
		},
		{
			name:      "too many entries zip",
			format:    archive.FormatZip,
			entries:   archivetest.Files(map[string][]byte{"0": nil, "1": nil, "2": nil, "3": nil, "4": nil}),
			limits:    func(l *archive.Limits) { l.MaxEntries = 3 },
			wantRules: []string{"archive.too_many_entries "},
		},
		{
			name:   "too many entries across levels",
			format: archive.FormatTar,
			raw: func(t *testing.T) []byte {
				in := mustBytes(t, archive.FormatZip, archivetest.Files(map[string][]byte{"0": nil, "1": nil, "2": nil}))
				return mustBytes(t, archive.FormatTar, []entry{file("a", "a"), file("b", "b"), {Name: "in.zip", Body: in}})
			},
			limits:    func(l *archive.Limits) { l.MaxEntries = 5 },
			wantFiles: []string{"a", "b", "in.zip"},
			wantRules: []string{"archive.too_many_entries in.zip"},
		},
		{
			name:   "total expanded bytes",
			format: archive.FormatTarGz,
			entries: []entry{
				{Name: "f0", Body: random(1<<20, 6)}, {Name: "f1", Body: random(1<<20, 7)},
				{Name: "f2", Body: random(1<<20, 8)}, {Name: "f3", Body: random(1<<20, 9)},
			},
			limits:    func(l *archive.Limits) { l.MaxExpandedBytes = 5 << 19 },
			wantFiles: []string{"f0", "f1"},
			wantRules: []string{"archive.bomb f2"},
		},
		{
			name:   "total expanded bytes across levels",
			format: archive.FormatZip,
			raw: func(t *testing.T) []byte {
				in := mustBytes(t, archive.FormatTar, []entry{{Name: "f0", Body: random(1<<20, 10)}})
				return mustBytes(t, archive.FormatZip, []entry{{Name: "in.tar", Body: in}})
			},
			limits:    func(l *archive.Limits) { l.MaxExpandedBytes = 3 << 19 },
			wantFiles: []string{"in.tar"},
			wantRules: []string{"archive.bomb in.tar!/f0"},
		},
		{
			name:      "entry bytes",
			format:    archive.FormatZip,
			entries:   []entry{file("small", "s"), {Name: "big", Body: random(2<<20, 11)}},
			limits:    func(l *archive.Limits) { l.MaxEntryBytes = 1 << 20 },
			wantFiles: []string{"small"},
			wantRules: []string{"archive.bomb big"},
		},
		{
			name:   "entry bytes, skipped tar entry",
			format: archive.FormatTarGz,
			entries: []entry{
				{Name: "../big", Body: make([]byte, 3<<20)}, file("after", "a"),
			},
			limits:    func(l *archive.Limits) { l.MaxEntryBytes = 1 << 20 },
			wantRules: []string{"archive.bomb ../big", "archive.traversal ../big"},
		},
		{
			name:      "ratio tar.gz",
			format:    archive.FormatTarGz,
			entries:   []entry{{Name: "zeros", Body: make([]byte, 8<<20)}},
			limits:    func(l *archive.Limits) { l.MaxRatio = 50 },
			wantRules: []string{"archive.bomb zeros"},
		},
		{
			name:      "ratio zip",
			format:    archive.FormatZip,
			entries:   []entry{{Name: "zeros", Body: make([]byte, 8<<20)}},
			limits:    func(l *archive.Limits) { l.MaxRatio = 50 },
			wantRules: []string{"archive.bomb zeros"},
		},
		{
			name:      "ratio not applied to small entries",
			format:    archive.FormatTarGz,
			entries:   []entry{{Name: "zeros", Body: make([]byte, 1<<20)}},
			limits:    func(l *archive.Limits) { l.MaxRatio = 2 },
			wantFiles: []string{"zeros"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var b []byte
			if tt.raw != nil {
				b = tt.raw(t)
			} else {
				b = mustBytes(t, tt.format, tt.entries)
			}
			src := writeBytes(t, "pkg."+string(tt.format), b)
			s := newSandbox(t)
			res := s.extract(t, src, tt.format, lim(tt.limits))
			if got := paths(res); !slices.Equal(got, tt.wantFiles) {
				t.Errorf("files:\n got %q\nwant %q", got, tt.wantFiles)
			}
			want := slices.Clone(tt.wantRules)
			slices.Sort(want)
			if got := rules(res); !slices.Equal(got, want) {
				t.Errorf("findings:\n got %q\nwant %q", got, want)
				for _, f := range res.Findings {
					t.Logf("  %s %q: %s", f.Rule, f.Path, f.Message)
				}
			}
			if tt.wantN != 0 && res.Entries != tt.wantN {
				t.Errorf("Entries = %d, want %d", res.Entries, tt.wantN)
			}
		})
	}
}

func TestFindingsAreCapped(t *testing.T) {
	t.Parallel()
	var es []entry
	for i := range 250 {
		es = append(es, file(fmt.Sprintf("../evil%d", i), "x"))
	}
	es = append(es, file("ok", "ok"))
	src := write(t, "p.tar", archive.FormatTar, es)
	s := newSandbox(t)
	res := s.extract(t, src, archive.FormatTar, archive.DefaultLimits())
	if len(res.Findings) != 101 {
		t.Fatalf("%d findings, want 101", len(res.Findings))
	}
	last := res.Findings[100]
	if last.Rule != archive.RuleTraversal || last.Path != "" || !strings.HasPrefix(last.Message, "150 more entries") {
		t.Errorf("summary finding %+v", last)
	}
	if got := paths(res); !slices.Equal(got, []string{"ok"}) {
		t.Errorf("files %q", got)
	}
}

func TestDuplicateKeepsFirst(t *testing.T) {
	t.Parallel()
	src := write(t, "p.tar", archive.FormatTar, []entry{file("a.txt", "first"), file("a.txt", "second")})
	s := newSandbox(t)
	s.extract(t, src, archive.FormatTar, archive.DefaultLimits())
	if b, err := os.ReadFile(filepath.Join(s.dest, "a.txt")); err != nil || string(b) != "first" {
		t.Errorf("a.txt = %q, %v; want the first entry", b, err)
	}
}

func TestNestedChain(t *testing.T) {
	t.Parallel()
	eicar := []byte(`X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*`)
	formats := []archive.Format{
		archive.FormatZip, archive.FormatTarGz, archive.FormatTar, archive.FormatZip, archive.FormatTarGz,
		archive.FormatZip, archive.FormatTar, archive.FormatTarGz, archive.FormatZip, archive.FormatZip,
	}
	src := filepath.Join(t.TempDir(), "pkg.zip")
	want, err := archivetest.Nest(src, formats, map[string][]byte{"eicar.txt": eicar, "docs/readme.md": []byte("hi")})
	if err != nil {
		t.Fatal(err)
	}
	s := newSandbox(t)
	res := s.extract(t, src, archive.FormatZip, archive.DefaultLimits())
	slices.Sort(want)
	if got := paths(res); !slices.Equal(got, want) {
		t.Fatalf("files:\n got %q\nwant %q", got, want)
	}
	if len(res.Findings) != 0 {
		t.Errorf("findings: %v", rules(res))
	}
	for _, f := range res.Files {
		if strings.HasSuffix(f.Path, "eicar.txt") {
			if !strings.HasPrefix(f.Path, "a.tar.gz!/b.tar!/c.zip!/") || strings.Count(f.Path, "!/") != 9 {
				t.Errorf("eicar path %q", f.Path)
			}
			if b, err := os.ReadFile(f.DiskPath); err != nil || !bytes.Equal(b, eicar) {
				t.Errorf("eicar content %q, %v", b, err)
			}
		}
	}
	if res.Entries != 9+2 {
		t.Errorf("Entries = %d, want 11", res.Entries)
	}
}

func TestNestedDepthLimit(t *testing.T) {
	t.Parallel()
	formats := []archive.Format{archive.FormatTar, archive.FormatZip, archive.FormatTarGz, archive.FormatZip, archive.FormatTar}
	src := filepath.Join(t.TempDir(), "pkg.tar")
	if _, err := archivetest.Nest(src, formats, map[string][]byte{"x.txt": []byte("x")}); err != nil {
		t.Fatal(err)
	}
	s := newSandbox(t)
	res := s.extract(t, src, archive.FormatTar, lim(func(l *archive.Limits) { l.MaxDepth = 3 }))
	if got, want := paths(res), []string{"a.zip!/b.tar.gz!/c.zip"}; !slices.Equal(got, want) {
		t.Errorf("files %q, want %q", got, want)
	}
	if got, want := rules(res), []string{"archive.too_deep a.zip!/b.tar.gz!/c.zip"}; !slices.Equal(got, want) {
		t.Errorf("findings %q, want %q", got, want)
	}
}

func TestZip64(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join(dir, "pkg.zip")
	files := map[string][]byte{"a/b.txt": []byte("hello"), "c.js": []byte("console.log(1)"), "empty": nil}
	if err := archivetest.WriteZip64(src, files); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	// ZIP64 end of central directory record and locator.
	if !bytes.Contains(b, []byte("PK\x06\x06")) || !bytes.Contains(b, []byte("PK\x06\x07")) {
		t.Fatal("no ZIP64 end records")
	}
	if f, err := archive.Detect(src); err != nil || f != archive.FormatZip {
		t.Fatalf("Detect = %q, %v", f, err)
	}
	// Also nested in a tar.gz, as a member to unpack.
	nested := filepath.Join(dir, "outer.tgz")
	if err := archivetest.WriteTarGz(nested, map[string][]byte{"lib/z64.zip": b}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		src    string
		f      archive.Format
		prefix string
	}{{src, archive.FormatZip, ""}, {nested, archive.FormatTarGz, "lib/z64.zip!/"}} {
		s := newSandbox(t)
		res := s.extract(t, c.src, c.f, archive.DefaultLimits())
		want := []string{c.prefix + "a/b.txt", c.prefix + "c.js", c.prefix + "empty"}
		if got := paths(res); !slices.Equal(got, want) || len(res.Findings) != 0 {
			t.Errorf("%s: files %q findings %q", c.f, got, rules(res))
		}
		for _, f := range res.Files {
			if got, _ := os.ReadFile(f.DiskPath); !bytes.Equal(got, files[strings.TrimPrefix(f.Path, c.prefix)]) {
				t.Errorf("%s: %s = %q", c.f, f.Path, got)
			}
		}
	}
}

func TestExtractUnsupported(t *testing.T) {
	t.Parallel()
	src := writeBytes(t, "pkg.rar", []byte("Rar!\x1a\x07\x00 not supported"))
	s := newSandbox(t)
	res := s.extract(t, src, archive.FormatUnknown, archive.DefaultLimits())
	if got := rules(res); !slices.Equal(got, []string{"archive.unsupported "}) {
		t.Errorf("findings %q", got)
	}
}

func TestExtractErrors(t *testing.T) {
	t.Parallel()
	src := write(t, "p.zip", archive.FormatZip, []entry{file("a", "a")})
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	notEmpty := t.TempDir()
	if err := os.WriteFile(filepath.Join(notEmpty, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(t.TempDir(), link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		ctx  context.Context
		src  string
		f    archive.Format
		dest string
		lim  archive.Limits
	}{
		{"cancelled", cancelled, src, archive.FormatZip, t.TempDir(), archive.DefaultLimits()},
		{"dest not empty", context.Background(), src, archive.FormatZip, notEmpty, archive.DefaultLimits()},
		{"dest missing", context.Background(), src, archive.FormatZip, filepath.Join(t.TempDir(), "nope"), archive.DefaultLimits()},
		{"dest is a file", context.Background(), src, archive.FormatZip, src, archive.DefaultLimits()},
		{"dest is a symlink", context.Background(), src, archive.FormatZip, link, archive.DefaultLimits()},
		{"src missing", context.Background(), src + ".nope", archive.FormatZip, t.TempDir(), archive.DefaultLimits()},
		{"bad format", context.Background(), src, archive.Format("rar"), t.TempDir(), archive.DefaultLimits()},
		{"zero limits", context.Background(), src, archive.FormatZip, t.TempDir(), archive.Limits{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := archive.Extract(tt.ctx, tt.src, tt.f, tt.dest, tt.lim)
			if err == nil || res != nil {
				t.Errorf("Extract = %v, %v; want an error", res, err)
			}
		})
	}
}

func TestDetect(t *testing.T) {
	t.Parallel()
	emptyZip := mustBytes(t, archive.FormatZip, nil)
	tarB := mustBytes(t, archive.FormatTar, []entry{file("a", "a")})
	gz, err := archivetest.Gzip([]byte(strings.Repeat("not a tar ", 200)))
	if err != nil {
		t.Fatal(err)
	}
	v7 := slices.Clone(tarB[:1024])
	copy(v7[257:265], make([]byte, 8)) // drop the ustar magic, fix the checksum
	var sum int
	for i, c := range v7[:512] {
		if i >= 148 && i < 156 {
			c = ' '
		}
		sum += int(c)
	}
	copy(v7[148:156], []byte(strings.Repeat("0", 6-len(octal(sum)))+octal(sum)+"\x00 "))
	badSum := slices.Clone(tarB)
	badSum[0] ^= 1
	tests := []struct {
		name string
		b    []byte
		want archive.Format
	}{
		{"zip", mustBytes(t, archive.FormatZip, []entry{file("a", "a")}), archive.FormatZip},
		{"empty zip", emptyZip, archive.FormatZip},
		{"tar", tarB, archive.FormatTar},
		{"v7 tar", v7, archive.FormatTar},
		{"empty tar", make([]byte, 10240), archive.FormatTar},
		{"tar.gz", mustBytes(t, archive.FormatTarGz, []entry{file("a", "a")}), archive.FormatTarGz},
		{"empty tar.gz", mustBytes(t, archive.FormatTarGz, nil), archive.FormatTarGz},
		{"gzip, not tar", gz, archive.FormatUnknown},
		{"bad tar checksum", badSum, archive.FormatUnknown},
		{"garbage", random(4096, 12), archive.FormatUnknown},
		{"empty file", nil, archive.FormatUnknown},
		{"short", []byte("PK"), archive.FormatUnknown},
		{"truncated gzip", []byte{0x1f, 0x8b, 8, 0}, archive.FormatUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := archive.Detect(writeBytes(t, "x.bin", tt.b))
			if err != nil || got != tt.want {
				t.Errorf("Detect = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if _, err := archive.Detect(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("Detect of a missing file: no error")
	}
}

func octal(n int) string {
	var s []byte
	for ; n > 0; n /= 8 {
		s = append([]byte{byte('0' + n%8)}, s...)
	}
	return string(s)
}

func TestFormatFromName(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]archive.Format{
		"a.zip": archive.FormatZip, "A.ZIP": archive.FormatZip, "a.tar": archive.FormatTar,
		"a.tar.gz": archive.FormatTarGz, "a.TGZ": archive.FormatTarGz, "a.Tar.Gz": archive.FormatTarGz,
		"a.gz": archive.FormatUnknown, "a.jar": archive.FormatUnknown, "a.zip.txt": archive.FormatUnknown,
		"zip": archive.FormatUnknown, "": archive.FormatUnknown,
	} {
		if got := archive.FormatFromName(name); got != want {
			t.Errorf("FormatFromName(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestLimitsValidate(t *testing.T) {
	t.Parallel()
	if err := archive.DefaultLimits().Validate(); err != nil {
		t.Errorf("DefaultLimits: %v", err)
	}
	for _, mod := range []func(*archive.Limits){
		func(l *archive.Limits) { l.MaxExpandedBytes = 0 },
		func(l *archive.Limits) { l.MaxEntries = -1 },
		func(l *archive.Limits) { l.MaxDepth = 0 },
		func(l *archive.Limits) { l.MaxRatio = 0.5 },
		func(l *archive.Limits) { l.MaxRatio = math.NaN() },
		func(l *archive.Limits) { l.MaxRatio = math.Inf(1) },
		func(l *archive.Limits) { l.MaxEntryBytes = 0 },
	} {
		if err := lim(mod).Validate(); err == nil {
			t.Errorf("Validate(%+v): no error", lim(mod))
		}
	}
}

func TestDisplayPath(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"lib/a.js":        "lib/a.js",
		"a\nb":            `a\x0ab`,
		"\x1b[31mred":     `\x1b[31mred`,
		"txt.\u202eexe":   `txt.\u202eexe`,
		"bad\xffutf8":     `bad\xffutf8`,
		"日本/ファイル":         "日本/ファイル",
		"\u0085next-line": `\u0085next-line`,
	} {
		if got := archive.DisplayPath(in); got != want {
			t.Errorf("DisplayPath(%q) = %q, want %q", in, got, want)
		}
	}
	if got := archive.DisplayPath(strings.Repeat("x", 5000)); len(got) > 1100 || !strings.HasSuffix(got, "…") {
		t.Errorf("long path not cut: %d bytes", len(got))
	}
}
