package trivy

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/aquasecurity/trivy/pkg/cache"
	localart "github.com/aquasecurity/trivy/pkg/fanal/artifact/local"
	"github.com/aquasecurity/trivy/pkg/fanal/walker"

	"github.com/assetscan/assetscan/scanner"
)

// osPackageDBs are the package databases an OS package finding names, in
// the order they are looked for.
var osPackageDBs = []string{
	"var/lib/dpkg/status", "lib/apk/db/installed", "var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite",
	"var/lib/rpm/Packages.db", "var/lib/rpm/Packages", "var/lib/rpmmanifest/container-manifest-2",
}

// ScanRootFS scans the file systems of a VM disk as copied out by
// diskimage (diskimage.OpenWith with an ExportDir): dir holds one
// directory per file system, named after its partition ("p2", "p5", or
// "disk" for a file system on the whole disk), each laid out as that file
// system's root (dir/p2/var/lib/dpkg/status). Each is scanned as a root
// file system: OS packages, language packages and (unless disabled)
// secrets, with the analyzers ScanDir uses.
//
// Paths in findings and components are "<partition>:/<path>"
// ("p2:/var/lib/dpkg/status", "p2:/opt/app/package-lock.json"); OS
// package findings name the file system's package database. No path of
// the worker's temp dir appears. Result.OS is the OS of the first file
// system (in partition order) that has one. Errors: ErrNoDB, a trivy
// failure, ctx ended.
func (e *Engine) ScanRootFS(ctx context.Context, dir string) (scanner.Result, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return scanner.Result{}, fmt.Errorf("trivy rootfs: %w", err)
	}
	var parts []string
	for _, de := range ents {
		if de.IsDir() {
			parts = append(parts, de.Name())
		}
	}
	slices.SortFunc(parts, comparePartitions)

	if err := e.gate.enter(ctx); err != nil {
		return scanner.Result{}, err
	}
	defer e.gate.leave()
	if e.dbRef.UpdatedAt.IsZero() {
		return scanner.Result{}, ErrNoDB
	}
	var out scanner.Result
	for _, part := range parts {
		root := filepath.Join(dir, part)
		c := cache.NewMemoryCache()
		e.buildMu.Lock()
		art, err := localart.NewArtifact(root, c, walker.NewFS(), e.artifactOption())
		e.buildMu.Unlock()
		if err != nil {
			return scanner.Result{}, fmt.Errorf("trivy rootfs %s: %w", part, err)
		}
		rel := rootfsRel(root, part)
		res, err := e.run(ctx, c, art, rel)
		if err != nil {
			return scanner.Result{}, fmt.Errorf("%s: %w", part, err)
		}
		// UTF-16/32 text of the disk, as for packages.
		if res, err = e.addWideTextSecretsUnder(ctx, root, "", rel, res); err != nil {
			return scanner.Result{}, fmt.Errorf("%s: %w", part, err)
		}
		out.Findings = append(out.Findings, res.Findings...)
		out.Components = append(out.Components, res.Components...)
		if out.OS == nil {
			out.OS = res.OS
		}
	}
	sort.SliceStable(out.Findings, func(i, j int) bool { return findingKey(out.Findings[i]) < findingKey(out.Findings[j]) })
	out.Engines = map[string]string{"trivy": Version()}
	ref := e.dbRef
	out.DB = &ref
	out.Detail = fmt.Sprintf("%d file systems, %d components, %d findings", len(parts), len(out.Components), len(out.Findings))
	return out, nil
}

// rootfsRel maps trivy's paths under root (relative, or absolute, or the
// OS result's "<root> (debian 12.5)") to "<part>:/<path>".
func rootfsRel(root, part string) func(string) string {
	slashRoot := filepath.ToSlash(root)
	osDB := ""
	for _, p := range osPackageDBs {
		if fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(p))); err == nil && fi.Mode().IsRegular() {
			osDB = p
			break
		}
	}
	return func(p string) string {
		p = filepath.ToSlash(p)
		if strings.HasPrefix(p, slashRoot+" (") || p == slashRoot {
			return part + ":/" + osDB // the OS packages result
		}
		p = strings.TrimPrefix(p, slashRoot)
		return part + ":/" + strings.TrimPrefix(p, "/")
	}
}

// comparePartitions orders "p2" before "p10", then anything else by name.
func comparePartitions(a, b string) int {
	na, ea := strconv.Atoi(strings.TrimPrefix(a, "p"))
	nb, eb := strconv.Atoi(strings.TrimPrefix(b, "p"))
	if ea == nil && eb == nil && strings.HasPrefix(a, "p") && strings.HasPrefix(b, "p") {
		return cmp.Compare(na, nb)
	}
	return strings.Compare(a, b)
}
