package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/scanner/clamav"
)

// layer is one image layer: file name → content ("" + whiteout names as
// ".wh.<name>").
type layer map[string]string

func tarOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg,
			ModTime: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[n])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// dockerSave writes a `docker save` (legacy manifest.json) tarball.
func dockerSave(t *testing.T, layers ...layer) []byte {
	t.Helper()
	files := map[string]string{}
	var diffIDs, paths []string
	for i, l := range layers {
		b := tarOf(t, l)
		sum := sha256.Sum256(b)
		p := fmt.Sprintf("l%d/layer.tar", i)
		files[p] = string(b)
		paths = append(paths, p)
		diffIDs = append(diffIDs, "sha256:"+hex.EncodeToString(sum[:]))
	}
	cfg, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux", "config": map[string]any{},
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs}})
	cs := sha256.Sum256(cfg)
	cfgName := hex.EncodeToString(cs[:]) + ".json"
	files[cfgName] = string(cfg)
	man, _ := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{"seller/app:1"}, "Layers": paths}})
	files["manifest.json"] = string(man)
	return tarOf(t, files)
}

const (
	alpineRelease  = "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.18.4\nPRETTY_NAME=\"Alpine Linux v3.18\"\n"
	busyboxVuln    = "C:Q1abcdefghijklmnopqrstuvwxyz0123=\nP:busybox\nV:1.36.1-r0\nA:x86_64\nS:500000\nI:900000\nT:Size optimized toolbox\nL:GPL-2.0-only\no:busybox\n\n"
	busyboxFixed   = "C:Q1abcdefghijklmnopqrstuvwxyz0123=\nP:busybox\nV:1.36.1-r2\nA:x86_64\nS:500000\nI:900000\nT:Size optimized toolbox\nL:GPL-2.0-only\no:busybox\n\n"
	rootPresetHash = "$6$saltsaltsalt$B0bCGEymqx6CThUBZbLz6DTZzynXTGBDg08kLMMUyKYonqX17jA05N0tU3/Qyffi8A3W0HjXno9kByaMBhdNY/" // "root"
)

func alpineBase(installed, shadow string) layer {
	return layer{
		"etc/os-release":       alpineRelease,
		"etc/alpine-release":   "3.18.4\n",
		"lib/apk/db/installed": installed,
		"etc/passwd":           "root:x:0:0:root:/root:/bin/ash\napp:x:1000:1000::/home/app:/bin/ash\n",
		"etc/shadow":           shadow,
		"usr/bin/placeholder":  "x",
		"home/app/.profile":    "export PATH\n",
		"usr/share/doc/README": "base layer\n",
	}
}

// TestContainerImages: container image packages through the API — OS
// packages matched against the DB, preset passwords, malware hidden by a
// whiteout in a later layer, declared passwords.
func TestContainerImages(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	locked := "root:!:19000:0:99999:7:::\napp:!:19000:0:99999:7:::\n"
	bad := dockerSave(t,
		func() layer {
			l := alpineBase(busyboxVuln, "root:"+rootPresetHash+":19000:0:99999:7:::\napp:!:19000:0:99999:7:::\n")
			l["usr/bin/evil"] = string(clamav.EICAR())
			return l
		}(),
		layer{"usr/bin/.wh.evil": "", "root/.ssh/authorized_keys": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMx seller@laptop\n"},
	)
	clean := dockerSave(t, alpineBase(busyboxFixed, locked), layer{"app/run.sh": "#!/bin/sh\necho hi\n"})
	s.upload("img/bad.tar", bad)
	s.upload("img/clean.tar", clean)
	req := func(asset, key string, pw ...string) string {
		body := map[string]any{"asset_id": asset, "seller_id": "seller-1", "kind": "container-image", "bucket": s.uploads, "key": key}
		if len(pw) == 2 {
			body["declared_passwords"] = []map[string]string{{"account": pw[0], "password": pw[1]}}
		}
		code, r := s.submitRaw(body)
		if code != 202 {
			t.Fatalf("submit %s: %d %+v", key, code, r)
		}
		return r.ScanID
	}
	badID := req("img-bad", "img/bad.tar")
	cleanID := req("img-clean", "img/clean.tar", "app", "Blue-Kettle-42")
	weakID := req("img-weak", "img/clean.tar", "app", "password")

	v := s.wait(badID, 3*time.Minute)
	if v.Verdict != assetscan.Fail {
		t.Fatalf("bad image: %s (%s)", v.Verdict, v.Reason)
	}
	for _, rule := range []string{"vulnerability.cvss", "account.preset_password", "account.weak_password", "account.preset_key", "malware.detected"} {
		if !hasRule(v, rule) {
			t.Errorf("bad image: rule %s missing; got %s", rule, ruleList(v))
		}
	}
	if f := findVuln(v, "CVE-2022-48174"); f == nil || f.Vulnerability.Package != "busybox" {
		t.Errorf("busybox host vulnerability not reported: %+v", f)
	}
	for _, f := range v.Findings {
		if f.Malware != nil && (f.Path != "usr/bin/evil" || f.Layer == "") {
			t.Errorf("whiteout-hidden malware reported at %q layer %q", f.Path, f.Layer)
		}
	}
	raw, _ := json.Marshal(v)
	if strings.Contains(string(raw), "B0bCGEymqx6CThUBZbLz6DTZzynXTGBDg08k") {
		t.Error("verdict contains the password hash")
	}

	// Locked accounts and a strong declared password pass.
	if v := s.wait(cleanID, 3*time.Minute); v.Verdict != assetscan.Pass {
		t.Errorf("clean image: %s (%s) %s", v.Verdict, v.Reason, ruleList(v))
	}
	w := s.wait(weakID, 3*time.Minute)
	if w.Verdict != assetscan.Fail || !hasRule(w, "account.declared_password_weak") {
		t.Errorf("weak declared password: %s %s", w.Verdict, ruleList(w))
	}
	if raw, _ := json.Marshal(w); strings.Contains(string(raw), `"password"`) && strings.Contains(string(raw), `: "password"`) {
		t.Error("declared password stored in the verdict")
	}
}
