package archive_test

import (
	"bytes"
	"testing"

	"github.com/assetscan/assetscan/archive"
	"github.com/assetscan/assetscan/archive/archivetest"
)

func TestSniff(t *testing.T) {
	t.Parallel()
	z := zipOf(t, map[string][]byte{"a": []byte("a")})
	z64, err := archivetest.Zip64Bytes(archivetest.Files(map[string][]byte{"a": []byte("a")}))
	if err != nil {
		t.Fatal(err)
	}
	big := zipOf(t, map[string][]byte{"big": random(200<<10, 1)}) // directory before the last 65 KiB? no: after the data
	many := map[string][]byte{}
	for i := range 3000 {
		many[string(rune('a'+i%26))+string(rune('a'+i/26%26))+string(rune('a'+i/676))] = nil
	}
	longDir := zipOf(t, many) // a central directory longer than 65 KiB
	tests := []struct {
		name string
		b    []byte
		want archive.Kind
	}{
		{"zip", z, archive.KindZip},
		{"empty zip", []byte("PK\x05\x06" + string(make([]byte, 18))), archive.KindZip},
		{"zip64", z64, archive.KindZip},
		{"zip with a script prefix", append([]byte(springBootScript), z...), archive.KindZip},
		{"zip64 with a stub prefix", append([]byte("MZ\x90\x00"), z64...), archive.KindZip},
		{"zip with a prefix and a directory longer than the tail", append([]byte("#!/bin/sh\n"), longDir...), archive.KindZip},
		{"zip with a prefix and large data", append([]byte("MZ"), big...), archive.KindZip},
		{"crx", crx3(z), archive.KindZip},
		{"tar", tarOf(t, map[string][]byte{"a": []byte("a")}), archive.KindTar},
		{"gzip", gz(t, []byte("x")), archive.KindGzip},
		{"xz", xzOf(t, []byte("x")), archive.KindXz},
		{"zstd", zstdOf(t, []byte("x")), archive.KindZstd},
		{"bzip2", []byte("BZh91AY&SY\x00\x00"), archive.KindBzip2},
		{"7z", []byte{'7', 'z', 0xbc, 0xaf, 0x27, 0x1c, 0, 4}, archive.Kind7z},
		{"zeros are not an empty tar", make([]byte, 4096), archive.KindPlain},
		{"pdf", []byte("%PDF-1.7\n%%EOF\n"), archive.KindPlain},
		{"PE", append([]byte("MZ\x90\x00"), make([]byte, 512)...), archive.KindPlain},
		{"text mentioning PK\\x05\\x06", []byte("see PK\x05\x06 in the spec"), archive.KindPlain},
		{"an end record not at the end", append(z, bytes.Repeat([]byte("x"), 100)...), archive.KindZip},
		{"an end record not at the end, after a prefix", append(append([]byte("#!"), z...), "xxxx"...), archive.KindZip},
		{"a prefix, a zip with a long directory, then bytes", append(append([]byte("#!"), longDir...), "xxxx"...), archive.KindPlain},
		{"BZh without a block", []byte("BZh9 is a name"), archive.KindPlain},
		{"empty", nil, archive.KindPlain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := bytes.NewReader(tt.b)
			got, err := archive.Sniff(r, int64(len(tt.b)))
			if err != nil || got != tt.want {
				t.Errorf("Sniff = %s, %v; want %s", got, err, tt.want)
			}
			// The streaming sniffer agrees, in any chunking.
			for _, c := range [][]int{{1}, {7, 4096}, {256 << 10}} {
				if got := archive.SnifferKind(tt.b, c, r); got != tt.want {
					t.Errorf("sniffer %v = %s, want %s", c, got, tt.want)
				}
			}
		})
	}
}
