package archive_test

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/assetscan/assetscan/archive"
	"github.com/assetscan/assetscan/archive/archivetest"
)

// eicar returns the EICAR test string, put together at run time so that
// no source file holds it.
func eicar() []byte {
	return []byte(`X5O!P%@AP[4\PZX54(P^)7CC)7}$` + "EICAR-STANDARD-ANTIVIRUS-" + "TEST-FILE!$H+H*")
}

func zipOf(t testing.TB, files map[string][]byte) []byte {
	t.Helper()
	return mustBytes(t, archive.FormatZip, archivetest.Files(files))
}

func tarOf(t testing.TB, files map[string][]byte) []byte {
	t.Helper()
	return mustBytes(t, archive.FormatTar, archivetest.Files(files))
}

// zipEnd returns the offset of the last end of central directory record.
func zipEnd(b []byte) int { return bytes.LastIndex(b, []byte("PK\x05\x06")) }

// zipShift moves every offset of a (non-ZIP64) zip by d: the local header
// offsets of the central directory and the directory offset of the end
// record, as `zip -A` does after a stub is prepended.
func zipShift(b []byte, d int) []byte {
	b = bytes.Clone(b)
	le := binary.LittleEndian
	for _, o := range cdOffsets(b) {
		le.PutUint32(b[o+42:], le.Uint32(b[o+42:])+uint32(d))
	}
	e := zipEnd(b)
	le.PutUint32(b[e+16:], le.Uint32(b[e+16:])+uint32(d))
	return b
}

// zipInsert inserts data at off (a local header boundary) and fixes the
// offsets that point after it.
func zipInsert(b []byte, off int, data []byte) []byte {
	le := binary.LittleEndian
	out := append(append(append([]byte{}, b[:off]...), data...), b[off:]...)
	for _, o := range cdOffsets(out) {
		if v := le.Uint32(out[o+42:]); int(v) >= off {
			le.PutUint32(out[o+42:], v+uint32(len(data)))
		}
	}
	e := zipEnd(out)
	le.PutUint32(out[e+16:], le.Uint32(out[e+16:])+uint32(len(data)))
	return out
}

// zipDropRecord removes the i-th central directory record: its local
// entry stays, named by nothing.
func zipDropRecord(b []byte, i int) []byte {
	le := binary.LittleEndian
	offs := cdOffsets(b)
	o := offs[i]
	n := 46 + int(le.Uint16(b[o+28:])) + int(le.Uint16(b[o+30:])) + int(le.Uint16(b[o+32:]))
	out := append(append([]byte{}, b[:o]...), b[o+n:]...)
	e := zipEnd(out)
	le.PutUint16(out[e+8:], le.Uint16(out[e+8:])-1)
	le.PutUint16(out[e+10:], le.Uint16(out[e+10:])-1)
	le.PutUint32(out[e+12:], le.Uint32(out[e+12:])-uint32(n))
	return out
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	out, err := archivetest.Gzip(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func xzOf(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := xz.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstdOf(t testing.TB, b []byte) []byte {
	t.Helper()
	w, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	return w.EncodeAll(b, nil)
}

// crx3 wraps a zip in a CRX3 header (magic, version, header length,
// header).
func crx3(z []byte) []byte {
	hdr := bytes.Repeat([]byte{0x0a}, 40)
	var b bytes.Buffer
	b.WriteString("Cr24")
	binary.Write(&b, binary.LittleEndian, uint32(3))
	binary.Write(&b, binary.LittleEndian, uint32(len(hdr)))
	b.Write(hdr)
	b.Write(z)
	return b.Bytes()
}

// springBootScript is the start of a Spring Boot launch script.
const springBootScript = "#!/bin/bash\n#\n#    .   ____          _            __ _ _\n# Spring Boot launch script\nexec java -jar \"$0\" \"$@\"\nexit 0\n"

// region is the path of a region file.
func region(dir string, start, end int) string {
	return dir + archive.RegionName(int64(start), int64(end))
}

// infoRules are the rules the default policy reports without failing.
var infoRules = map[string]bool{archive.RulePrefixScript: true, archive.RuleSFXStub: true}

type issue9Case struct {
	name   string
	format archive.Format
	// build returns the package, the files expected (path → content; a
	// nil content is not compared) and the findings ("rule path").
	build func(t *testing.T) (pkg []byte, files map[string][]byte, findings []string)
	// containers are the files expected with Container set.
	containers []string
}

func runIssue9(t *testing.T, tests []issue9Case) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pkg, want, wantRules := tt.build(t)
			src := writeBytes(t, "pkg", pkg)
			if f, err := archive.Detect(src); err != nil || f != tt.format {
				t.Fatalf("Detect = %q, %v; want %q", f, err, tt.format)
			}
			s := newSandbox(t)
			res := s.extract(t, src, tt.format, archive.DefaultLimits())
			var wantPaths []string
			for p := range want {
				wantPaths = append(wantPaths, p)
			}
			slices.Sort(wantPaths)
			if got := paths(res); !slices.Equal(got, wantPaths) {
				t.Errorf("files:\n got %q\nwant %q", got, wantPaths)
			}
			var containers []string
			for _, f := range res.Files {
				if w, ok := want[f.Path]; ok && w != nil {
					if b, err := os.ReadFile(f.DiskPath); err != nil || !bytes.Equal(b, w) {
						t.Errorf("%s = %q, %v; want %q", f.Path, b, err, w)
					}
				}
				if f.Container {
					containers = append(containers, f.Path)
				}
			}
			slices.Sort(containers)
			if !slices.Equal(containers, tt.containers) {
				t.Errorf("containers %q, want %q", containers, tt.containers)
			}
			slices.Sort(wantRules)
			if got := rules(res); !slices.Equal(got, wantRules) {
				t.Errorf("findings:\n got %q\nwant %q", got, wantRules)
				for _, f := range res.Findings {
					t.Logf("  %s %q: %s", f.Rule, f.Path, f.Message)
				}
			}
			if c := res.Coverage; c.InputBytes != int64(len(pkg)) || c.AccountedBytes != c.InputBytes {
				t.Errorf("coverage %+v, want all of %d bytes accounted", c, len(pkg))
			}
		})
	}
}

// TestBytesOutsideTheIndex: kind 1 of issue 9.
func TestBytesOutsideTheIndex(t *testing.T) {
	t.Parallel()
	readme := []byte("# shop\n")
	script := []byte("#!/bin/sh\necho install\n")
	runIssue9(t, []issue9Case{
		{
			name:   "handed: cat a.zip b.zip, EICAR in the first",
			format: archive.FormatZip,
			build: func(t *testing.T) ([]byte, map[string][]byte, []string) {
				a := zipOf(t, map[string][]byte{"setup/install.com": eicar()})
				b := zipOf(t, map[string][]byte{"README.md": readme, "install.sh": script})
				r := region("", 0, len(a))
				return append(a, b...), map[string][]byte{
						r + "!/setup/install.com": eicar(), "README.md": readme, "install.sh": script,
					},
					[]string{"archive.hidden_data "}
			},
		},
		{
			name:   "three concatenated zips",
			format: archive.FormatZip,
			build: func(t *testing.T) ([]byte, map[string][]byte, []string) {
				a := zipOf(t, map[string][]byte{"one/eicar.com": eicar()})
				b := zipOf(t, map[string][]byte{"two.txt": []byte("2")})
				c := zipOf(t, map[string][]byte{"three.txt": []byte("3")})
				r1 := region("", 0, len(a)+len(b))
				r2 := region(r1+"!/", 0, len(a))
				return slices.Concat(a, b, c), map[string][]byte{
						r2 + "!/one/eicar.com": eicar(), r1 + "!/two.txt": []byte("2"), "three.txt": []byte("3"),
					},
					[]string{"archive.hidden_data ", "archive.hidden_data " + r1}
			},
		},
		{
			name:   "a zip hidden in a gap between two entries",
			format: archive.FormatZip,
			build: func(t *testing.T) ([]byte, map[string][]byte, []string) {
				z := zipOf(t, map[string][]byte{"a.txt": []byte("a"), "b.txt": []byte("b")})
				hidden := zipOf(t, map[string][]byte{"payload.com": eicar()})
				off := cdOffsets(z)
				second := int(binary.LittleEndian.Uint32(z[off[1]+42:]))
				r := region("", second, second+len(hidden))
				return zipInsert(z, second, hidden), map[string][]byte{
						"a.txt": []byte("a"), "b.txt": []byte("b"), r + "!/payload.com": eicar(),
					},
					[]string{"archive.hidden_data "}
			},
		},
		{
			name:   "a local entry no central directory record names",
			format: archive.FormatZip,
			build: func(t *testing.T) ([]byte, map[string][]byte, []string) {
				z := zipOf(t, map[string][]byte{"a/eicar.com": eicar(), "b.txt": []byte("b")})
				z = zipDropRecord(z, 0)
				second := int(binary.LittleEndian.Uint32(z[cdOffsets(z)[0]+42:]))
				r := region("", 0, second)
				// The region holds a local entry without a directory: read
				// from its local header.
				// The region, which has no directory, is also kept whole.
				return z, map[string][]byte{"b.txt": []byte("b"), r: nil, r + "!/a/eicar.com": eicar()},
					[]string{"archive.hidden_data ", "archive.corrupt " + r}
			},
		},
		{
			name:   "data after the end record (not the comment)",
			format: archive.FormatZip,
			build: func(t *testing.T) ([]byte, map[string][]byte, []string) {
				z := zipOf(t, map[string][]byte{"a.txt": []byte("a")})
				tail := []byte("AKIA0123456789ABCDEF hidden")
				return append(z, tail...), map[string][]byte{"a.txt": []byte("a"), region("", len(z), len(z)+len(tail)): tail},
					[]string{"archive.hidden_data "}
			},
		},
		{
			name:   "data before the first entry that is no stub",
			format: archive.FormatZip,
			build: func(t *testing.T) ([]byte, map[string][]byte, []string) {
				pre := []byte("-----BEGIN RSA PRIVATE KEY-----\nxx\n")
				z := zipShift(zipOf(t, map[string][]byte{"a.txt": []byte("a")}), len(pre))
				return append(pre, z...), map[string][]byte{"a.txt": []byte("a"), region("", 0, len(pre)): pre},
					[]string{"archive.hidden_data "}
			},
		},
		{
			name:   "gzip members after a tar.gz's tar, and trailing bytes after the last member",
			format: archive.FormatTarGz,
			build: func(t *testing.T) ([]byte, map[string][]byte, []string) {
				tgz := gz(t, tarOf(t, map[string][]byte{"a.txt": []byte("a")}))
				junk := []byte("not gzip: " + string(eicar()))
				return append(tgz, junk...), map[string][]byte{"a.txt": []byte("a"), region("", len(tgz), len(tgz)+len(junk)): junk},
					[]string{"archive.hidden_data "}
			},
		},
		{
			name:   "a zip after the end of a tar",
			format: archive.FormatTar,
			build: func(t *testing.T) ([]byte, map[string][]byte, []string) {
				tr := tarOf(t, map[string][]byte{"a.txt": []byte("a")})
				z := zipOf(t, map[string][]byte{"x.com": eicar()})
				return append(tr, z...), map[string][]byte{"a.txt": []byte("a"), region("", len(tr), len(tr)+len(z)) + "!/x.com": eicar()},
					[]string{"archive.hidden_data "}
			},
		},
	})
}

// TestArchivesByContent: kind 2 of issue 9, nested archives recognised
// whatever their name.
func TestArchivesByContent(t *testing.T) {
	t.Parallel()
	runIssue9(t, []issue9Case{
		{
			name:   "handed: sample.zip64, a ZIP64 archive inside a package",
			format: archive.FormatZip,
			build: func(t *testing.T) ([]byte, map[string][]byte, []string) {
				z64, err := archivetest.Zip64Bytes(archivetest.Files(map[string][]byte{"eicar.com": eicar()}))
				if err != nil {
					t.Fatal(err)
				}
				return zipOf(t, map[string][]byte{"sample.zip64": z64, "readme.txt": []byte("r")}),
					map[string][]byte{"sample.zip64!/eicar.com": eicar(), "readme.txt": []byte("r")}, nil
			},
		},
		{
			name:   "an xz-compressed tar named .dat",
			format: archive.FormatZip,
			build: func(t *testing.T) ([]byte, map[string][]byte, []string) {
				x := xzOf(t, tarOf(t, map[string][]byte{"in/eicar.com": eicar()}))
				return zipOf(t, map[string][]byte{"data/blob.dat": x}),
					map[string][]byte{"data/blob.dat!/in/eicar.com": eicar()}, nil
			},
		},
		{
			name:   "a gzip inside a zip named .png",
			format: archive.FormatTar,
			build: func(t *testing.T) ([]byte, map[string][]byte, []string) {
				inner := zipOf(t, map[string][]byte{"logo.png": gz(t, eicar())})
				return tarOf(t, map[string][]byte{"assets/x.bin": inner}),
					map[string][]byte{"assets/x.bin!/logo.png!/logo.png": eicar()}, nil
			},
		},
		{
			name:   "a zstd stream",
			format: archive.FormatTarGz,
			build: func(t *testing.T) ([]byte, map[string][]byte, []string) {
				return gz(t, tarOf(t, map[string][]byte{"cfg/creds.zst": zstdOf(t, []byte("aws_secret_access_key=x"))})),
					map[string][]byte{"cfg/creds.zst!/creds": []byte("aws_secret_access_key=x")}, nil
			},
		},
		{
			name:   "a bzip2 stream holding a zip, named .txt",
			format: archive.FormatZip,
			build: func(t *testing.T) ([]byte, map[string][]byte, []string) {
				bz := bzip2Of(t, zipOf(t, map[string][]byte{"e.com": eicar()}))
				return zipOf(t, map[string][]byte{"notes.txt": bz}),
					map[string][]byte{"notes.txt!/notes.txt!/e.com": eicar()}, nil
			},
		},
		{
			name:   "a 7z archive is reported, not passed",
			format: archive.FormatZip,
			build: func(t *testing.T) ([]byte, map[string][]byte, []string) {
				sz := append([]byte{'7', 'z', 0xbc, 0xaf, 0x27, 0x1c, 0, 4}, bytes.Repeat([]byte{1}, 40)...)
				return zipOf(t, map[string][]byte{"x.bin": sz}), map[string][]byte{"x.bin": sz},
					[]string{"archive.unsupported x.bin"}
			},
		},
		{
			name:   "a crx (header before the zip)",
			format: archive.FormatZip,
			build: func(t *testing.T) ([]byte, map[string][]byte, []string) {
				c := crx3(zipOf(t, map[string][]byte{"manifest.json": []byte("{}"), "bg.js": eicar()}))
				return zipOf(t, map[string][]byte{"ext/app.crx": c}), map[string][]byte{
					"ext/app.crx": c, "ext/app.crx!/manifest.json": []byte("{}"), "ext/app.crx!/bg.js": eicar(),
					region("ext/app.crx!/", 0, 52): c[:52],
				}, nil
			},
			containers: []string{"ext/app.crx"},
		},
		{
			name:   "documents and executables stay plain files",
			format: archive.FormatZip,
			build: func(t *testing.T) ([]byte, map[string][]byte, []string) {
				pdf := []byte("%PDF-1.7\n1 0 obj\n<<>>\nendobj\n%%EOF\n")
				pe := append([]byte("MZ\x90\x00"), bytes.Repeat([]byte{0}, 200)...)
				zeros := make([]byte, 4096)
				return zipOf(t, map[string][]byte{"doc.pdf": pdf, "tool.exe": pe, "zeros.bin": zeros}),
					map[string][]byte{"doc.pdf": pdf, "tool.exe": pe, "zeros.bin": zeros}, nil
			},
		},
	})
}

func bzip2Of(t testing.TB, b []byte) []byte {
	t.Helper()
	bz, err := exec.LookPath("bzip2")
	if err != nil {
		t.Skip("bzip2 not installed")
	}
	cmd := exec.Command(bz, "-c")
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestZipContainers: kind 4 of issue 9, zip-based containers are opened
// and kept.
func TestZipContainers(t *testing.T) {
	t.Parallel()
	props := []byte("aws.accessKeyId=AKIAIOSFODNN7EXAMPLE\n")
	pem := []byte("-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n")
	runIssue9(t, []issue9Case{
		{
			name:   "handed: lib/shop-core.jar with application.properties and keys/signing.pem",
			format: archive.FormatZip,
			build: func(t *testing.T) ([]byte, map[string][]byte, []string) {
				jar := zipOf(t, map[string][]byte{"META-INF/MANIFEST.MF": []byte("Manifest-Version: 1.0\n"),
					"application.properties": props, "keys/signing.pem": pem})
				return zipOf(t, map[string][]byte{"lib/shop-core.jar": jar}), map[string][]byte{
					"lib/shop-core.jar": jar, "lib/shop-core.jar!/META-INF/MANIFEST.MF": nil,
					"lib/shop-core.jar!/application.properties": props, "lib/shop-core.jar!/keys/signing.pem": pem,
				}, nil
			},
			containers: []string{"lib/shop-core.jar"},
		},
		{
			name:   "a Spring Boot jar with BOOT-INF/lib jars, in a tar.gz",
			format: archive.FormatTarGz,
			build: func(t *testing.T) ([]byte, map[string][]byte, []string) {
				dep := zipOf(t, map[string][]byte{"META-INF/maven/x/pom.properties": []byte("version=1"), "app.yml": props})
				app := zipOf(t, map[string][]byte{"BOOT-INF/lib/dep.jar": dep})
				return gz(t, tarOf(t, map[string][]byte{"shop-app.jar": app})), map[string][]byte{
					"shop-app.jar": app, "shop-app.jar!/BOOT-INF/lib/dep.jar": dep,
					"shop-app.jar!/BOOT-INF/lib/dep.jar!/META-INF/maven/x/pom.properties": nil,
					"shop-app.jar!/BOOT-INF/lib/dep.jar!/app.yml":                         props,
				}, nil
			},
			containers: []string{"shop-app.jar", "shop-app.jar!/BOOT-INF/lib/dep.jar"},
		},
		{
			name:   "wheel, nupkg and vsix named in upper case",
			format: archive.FormatZip,
			build: func(t *testing.T) ([]byte, map[string][]byte, []string) {
				whl := zipOf(t, map[string][]byte{"pkg/__init__.py": nil, "pkg-1.0.dist-info/METADATA": []byte("Name: pkg\n"), "pkg/k.pem": pem})
				nup := zipOf(t, map[string][]byte{"x.nuspec": []byte("<package/>")})
				vsix := zipOf(t, map[string][]byte{"extension.js": eicar()})
				return zipOf(t, map[string][]byte{"pkg-1.0-py3-none-any.WHL": whl, "x.1.0.nupkg": nup, "ext.VSIX": vsix}), map[string][]byte{
					"pkg-1.0-py3-none-any.WHL": whl, "pkg-1.0-py3-none-any.WHL!/pkg/__init__.py": nil,
					"pkg-1.0-py3-none-any.WHL!/pkg-1.0.dist-info/METADATA": nil, "pkg-1.0-py3-none-any.WHL!/pkg/k.pem": pem,
					"x.1.0.nupkg": nup, "x.1.0.nupkg!/x.nuspec": nil, "ext.VSIX": vsix, "ext.VSIX!/extension.js": eicar(),
				}, nil
			},
			containers: []string{"ext.VSIX", "pkg-1.0-py3-none-any.WHL", "x.1.0.nupkg"},
		},
	})
}

// TestCleanShapes: real shapes that must give no failing finding.
func TestCleanShapes(t *testing.T) {
	t.Parallel()
	tests := []issue9Case{
		{
			name:   "a zip with an archive comment",
			format: archive.FormatZip,
			build: func(t *testing.T) ([]byte, map[string][]byte, []string) {
				var buf bytes.Buffer
				zw := zip.NewWriter(&buf)
				w, _ := zw.Create("a.txt")
				w.Write([]byte("a"))
				zw.SetComment("built by CI #1234")
				if err := zw.Close(); err != nil {
					t.Fatal(err)
				}
				return buf.Bytes(), map[string][]byte{"a.txt": []byte("a")}, nil
			},
		},
		{
			name:   "data descriptors (streamed), as Go and jar write them",
			format: archive.FormatZip,
			build: func(t *testing.T) ([]byte, map[string][]byte, []string) {
				// archive/zip writes a data descriptor after every entry
				// created with Create/CreateHeader.
				z := zipOf(t, map[string][]byte{"a.txt": bytes.Repeat([]byte("a"), 5000), "b/c.txt": []byte("c"), "d/": nil})
				if !bytes.Contains(z, []byte("PK\x07\x08")) {
					t.Fatal("no data descriptor")
				}
				return z, map[string][]byte{"a.txt": nil, "b/c.txt": []byte("c"), "d/": nil}, nil
			},
		},
		{
			name:   "zero padding between entries (alignment)",
			format: archive.FormatZip,
			build: func(t *testing.T) ([]byte, map[string][]byte, []string) {
				z := zipOf(t, map[string][]byte{"a.txt": []byte("a"), "b.txt": []byte("b")})
				second := int(binary.LittleEndian.Uint32(z[cdOffsets(z)[1]+42:]))
				return zipInsert(z, second, make([]byte, 4096)), map[string][]byte{"a.txt": []byte("a"), "b.txt": []byte("b")}, nil
			},
		},
		{
			name:   "a Spring Boot fully executable jar, offsets not adjusted",
			format: archive.FormatZip,
			build: func(t *testing.T) ([]byte, map[string][]byte, []string) {
				jar := zipOf(t, map[string][]byte{"BOOT-INF/classes/app.properties": []byte("x=1")})
				return append([]byte(springBootScript), jar...), map[string][]byte{
						"BOOT-INF/classes/app.properties":    []byte("x=1"),
						region("", 0, len(springBootScript)): []byte(springBootScript),
					},
					[]string{"archive.prefix_script "}
			},
		},
		{
			name:   "a self-extracting stub, offsets adjusted (zip -A)",
			format: archive.FormatZip,
			build: func(t *testing.T) ([]byte, map[string][]byte, []string) {
				stub := append([]byte("MZ\x90\x00This program cannot be run in DOS mode."), make([]byte, 100)...)
				z := zipShift(zipOf(t, map[string][]byte{"setup.ini": []byte("[s]")}), len(stub))
				return append(stub, z...), map[string][]byte{"setup.ini": []byte("[s]"), region("", 0, len(stub)): stub},
					[]string{"archive.sfx_stub "}
			},
		},
		{
			name:   "an ELF stub in a nested member named .bin",
			format: archive.FormatTar,
			build: func(t *testing.T) ([]byte, map[string][]byte, []string) {
				stub := append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 64)...)
				sfx := append(stub, zipOf(t, map[string][]byte{"i.txt": []byte("i")})...)
				return tarOf(t, map[string][]byte{"inst.bin": sfx}), map[string][]byte{
						"inst.bin!/i.txt": []byte("i"), region("inst.bin!/", 0, len(stub)): stub,
					},
					[]string{"archive.sfx_stub inst.bin"}
			},
		},
		{
			name:   "an ordinary jar, wheel and tar.gz",
			format: archive.FormatTarGz,
			build: func(t *testing.T) ([]byte, map[string][]byte, []string) {
				jar := zipOf(t, map[string][]byte{"META-INF/MANIFEST.MF": []byte("Manifest-Version: 1.0\n"), "a/B.class": []byte("\xca\xfe\xba\xbe")})
				whl := zipOf(t, map[string][]byte{"p/__init__.py": []byte("")})
				inner := gz(t, tarOf(t, map[string][]byte{"src/main.go": []byte("package main")}))
				return gz(t, tarOf(t, map[string][]byte{"lib/a.jar": jar, "dist/p-1-py3-none-any.whl": whl, "vendor/src.tar.gz": inner})),
					map[string][]byte{
						"lib/a.jar": jar, "lib/a.jar!/META-INF/MANIFEST.MF": nil, "lib/a.jar!/a/B.class": nil,
						"dist/p-1-py3-none-any.whl": whl, "dist/p-1-py3-none-any.whl!/p/__init__.py": nil,
						"vendor/src.tar.gz!/src/main.go": []byte("package main"),
					}, nil
			},
			containers: []string{"dist/p-1-py3-none-any.whl", "lib/a.jar"},
		},
	}
	// Directories are not files.
	for i := range tests {
		b := tests[i].build
		tests[i].build = func(t *testing.T) ([]byte, map[string][]byte, []string) {
			pkg, files, rs := b(t)
			for p := range files {
				if strings.HasSuffix(p, "/") {
					delete(files, p)
				}
			}
			for _, r := range rs {
				if !infoRules[strings.Fields(r)[0]] {
					t.Fatalf("a clean shape expects failing finding %q", r)
				}
			}
			return pkg, files, rs
		}
	}
	runIssue9(t, tests)
}

// TestCLIShapes runs the zip and 7z command-line tools when they are
// installed: `zip -fz` (ZIP64), `zip -` (streamed, data descriptors) and
// `zip -A` (self-extractor offsets), nested in a package by name that is
// not an archive name.
func TestCLIShapes(t *testing.T) {
	t.Parallel()
	zipCmd, err := exec.LookPath("zip")
	if err != nil {
		t.Skip("zip not installed")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "eicar.com"), eicar(), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(stdin []byte, args ...string) []byte {
		t.Helper()
		cmd := exec.Command(zipCmd, args...)
		cmd.Dir = dir
		if stdin != nil {
			cmd.Stdin = bytes.NewReader(stdin)
		}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("zip %v: %v", args, err)
		}
		return out
	}
	run(nil, "-q", "-fz", "z64.zip", "eicar.com")
	z64, _ := os.ReadFile(filepath.Join(dir, "z64.zip"))
	// To a pipe: data descriptors after every entry.
	streamed := run(nil, "-q", "-", "eicar.com")
	if !bytes.Contains(streamed, []byte("PK\x07\x08")) {
		t.Fatal("zip - wrote no data descriptor")
	}
	run(nil, "-q", "plain.zip", "eicar.com")
	plain, _ := os.ReadFile(filepath.Join(dir, "plain.zip"))
	stub := append([]byte("MZ"), make([]byte, 500)...)
	if err := os.WriteFile(filepath.Join(dir, "sfx.exe"), append(stub, plain...), 0o644); err != nil {
		t.Fatal(err)
	}
	run(nil, "-q", "-A", "sfx.exe")
	sfx, _ := os.ReadFile(filepath.Join(dir, "sfx.exe"))
	pkg := zipOf(t, map[string][]byte{"sample.zip64": z64, "stream.bin": streamed, "setup.exe": sfx})
	src := writeBytes(t, "pkg.zip", pkg)
	s := newSandbox(t)
	res := s.extract(t, src, archive.FormatZip, archive.DefaultLimits())
	want := []string{"sample.zip64!/eicar.com", region("setup.exe!/", 0, len(stub)), "setup.exe!/eicar.com", "stream.bin!/eicar.com"}
	if got := paths(res); !slices.Equal(got, want) {
		t.Errorf("files:\n got %q\nwant %q", got, want)
	}
	if got, want := rules(res), []string{"archive.sfx_stub setup.exe"}; !slices.Equal(got, want) {
		t.Errorf("findings %q, want %q", got, want)
		for _, f := range res.Findings {
			t.Logf("  %s %q: %s", f.Rule, f.Path, f.Message)
		}
	}
	for _, f := range res.Files {
		if strings.HasSuffix(f.Path, "eicar.com") {
			if b, _ := os.ReadFile(f.DiskPath); !bytes.Equal(b, eicar()) {
				t.Errorf("%s = %q", f.Path, b)
			}
		}
	}
}

// TestCoverageUnexamined: what was not examined is listed, bounded.
func TestCoverageUnexamined(t *testing.T) {
	t.Parallel()
	var es []entry
	for i := range 150 {
		es = append(es, entry{Name: fmt.Sprintf("enc%03d", i), Body: []byte("xxxxxxxxxxxx"),
			Raw: &archivetest.ZipRaw{Method: zip.Store, Flags: 1, UncompressedSize: 12}})
	}
	src := write(t, "pkg.zip", archive.FormatZip, es)
	s := newSandbox(t)
	res := s.extract(t, src, archive.FormatZip, archive.DefaultLimits())
	c := res.Coverage
	if c.UnexaminedCount != 150 || len(c.Unexamined) != archive.MaxUnexamined {
		t.Fatalf("unexamined %d listed of %d", len(c.Unexamined), c.UnexaminedCount)
	}
	if u := c.Unexamined[0]; u.Path != "enc000" || u.Rule != archive.RuleUnscannable || u.Reason == "" {
		t.Errorf("first unexamined %+v", u)
	}
	if c.AccountedBytes != c.InputBytes {
		t.Errorf("coverage %d of %d bytes", c.AccountedBytes, c.InputBytes)
	}
}

var _ = gzip.BestSpeed
