package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/assetscan/assetscan/scanner/clamav"
)

func TestTally(t *testing.T) {
	t.Parallel()
	done := func(verdict string) apiScan { return apiScan{Status: "done", Verdict: verdict, Revision: 1} }
	ok := func(id string, eicar bool, verdict string) scanResult {
		return scanResult{ScanID: id, EICAR: eicar, API: done(verdict), APICode: http.StatusOK,
			Stored: done(verdict), StoredOK: true, Writes: 1, Revisions: []int{1}}
	}
	tests := []struct {
		name   string
		mutate func(*scanResult)
		eicar  bool
		want   string // the one violation expected, "" for none
	}{
		{name: "clean pass"},
		{name: "eicar fail", eicar: true},
		{name: "eicar pass", eicar: true, mutate: func(r *scanResult) { r.API.Verdict, r.Stored.Verdict = "pass", "pass" },
			want: "EICAR packages passed"},
		{name: "still queued", mutate: func(r *scanResult) {
			r.API, r.Stored, r.StoredOK, r.Writes, r.Revisions = apiScan{Status: "queued"}, apiScan{}, false, 0, nil
		}, want: "without a recorded verdict"},
		{name: "running with a stored verdict", mutate: func(r *scanResult) { r.API = apiScan{Status: "running"} },
			want: "stored but the API does not answer done"},
		{name: "not found with a stored verdict", mutate: func(r *scanResult) { r.API, r.APICode = apiScan{}, http.StatusNotFound },
			want: "stored but the API does not answer done"},
		{name: "no verdict object", mutate: func(r *scanResult) { r.Stored, r.StoredOK, r.Writes, r.Revisions = apiScan{}, false, 0, nil },
			want: "without a recorded verdict"},
		{name: "written twice", mutate: func(r *scanResult) { r.Writes = 2 }, want: "written more than once"},
		{name: "revision object written twice", mutate: func(r *scanResult) { r.Revisions = []int{1, 1} }, want: "written more than once"},
		{name: "api revision 2", mutate: func(r *scanResult) { r.API.Revision = 2 }, want: "not revision 1"},
		{name: "api and bucket differ", mutate: func(r *scanResult) { r.Stored.Verdict = "error" }, want: "differs from the reports bucket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			verdict := "pass"
			if tt.eicar {
				verdict = "fail"
			}
			r := ok("scn_1", tt.eicar, verdict)
			if tt.mutate != nil {
				tt.mutate(&r)
			}
			got := tally([]scanResult{ok("scn_0", false, "pass"), r}, 0).violations()
			switch {
			case tt.want == "" && len(got) != 0:
				t.Errorf("violations %q, want none", got)
			case tt.want != "" && (len(got) != 1 || !strings.Contains(got[0], tt.want)):
				t.Errorf("violations %q, want one containing %q", got, tt.want)
			}
		})
	}
}

func TestTallyCounts(t *testing.T) {
	t.Parallel()
	rs := []scanResult{
		{ScanID: "a", API: apiScan{Status: "done", Verdict: "pass", Revision: 1}, APICode: 200, Stored: apiScan{Verdict: "pass", Revision: 1}, StoredOK: true, Writes: 1},
		{ScanID: "b", EICAR: true, API: apiScan{Status: "done", Verdict: "fail", Revision: 1}, APICode: 200, Stored: apiScan{Verdict: "fail", Revision: 1}, StoredOK: true, Writes: 1},
		{ScanID: "c", API: apiScan{Status: "done", Verdict: "error", Reason: "x", Revision: 1}, APICode: 200, Stored: apiScan{Verdict: "error", Revision: 1}, StoredOK: true, Writes: 1},
	}
	s := tally(rs, 2)
	if s.Submitted != 3 || s.Pass != 1 || s.Fail != 1 || s.Error != 1 || s.EICAR != 1 || s.Lost != 0 || s.ErrorReasons["x"] != 1 {
		t.Errorf("tally = %+v", s)
	}
	if v := s.violations(); len(v) != 1 || !strings.Contains(v[0], "2 packages never accepted") {
		t.Errorf("violations %q", v)
	}
	s.WorkDirsLeft = 1
	if v := s.violations(); len(v) != 2 {
		t.Errorf("violations with a work dir left %q", v)
	}
}

// TestBuildPackage: every package is distinct (no verdict reuse between
// them), readable in its format, and holds EICAR exactly when asked.
func TestBuildPackage(t *testing.T) {
	t.Parallel()
	seen := map[string]int{}
	for i := range 20 {
		eicar := isEICAR(i, 10)
		data, err := buildPackage(i, eicar)
		if err != nil {
			t.Fatal(err)
		}
		if j, dup := seen[string(data)]; dup {
			t.Errorf("packages %d and %d are identical", j, i)
		}
		seen[string(data)] = i
		contents := readAll(t, i, data)
		if got := slices.ContainsFunc(contents, func(b []byte) bool { return bytes.Equal(b, clamav.EICAR()) }); got != eicar {
			t.Errorf("package %d holds EICAR: %v, want %v", i, got, eicar)
		}
		if !strings.HasSuffix(packageKey("s", i), map[bool]string{true: ".zip", false: ".tar.gz"}[i%2 == 0]) {
			t.Errorf("package %d key %s", i, packageKey("s", i))
		}
	}
	if n := 0; true {
		for i := range 500 {
			if isEICAR(i, 10) {
				n++
			}
		}
		if n != 50 {
			t.Errorf("%d of 500 packages hold EICAR, want 50", n)
		}
	}
}

func readAll(t *testing.T, i int, data []byte) [][]byte {
	t.Helper()
	var out [][]byte
	if i%2 == 0 {
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range zr.File {
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			out = append(out, b)
		}
		return out
	}
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		if _, err := tr.Next(); err == io.EOF {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out = append(out, b)
	}
}
