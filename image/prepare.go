package image

import (
	"context"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/archive"
	"github.com/assetscan/assetscan/scanner"
)

// Preparer is the scanner.Preparer of container image packages: it opens
// the archive, extracts every layer and sets up the Target — trivy reads
// TrivyInput, the malware check every layer file (whiteout-deleted ones
// included) and the archive's other files, the account check the final
// root file system.
type Preparer struct{}

var _ scanner.Preparer = Preparer{}

// Prepare implements scanner.Preparer.
func (Preparer) Prepare(ctx context.Context, asset string, t *scanner.Target, lim archive.Limits) ([]assetscan.Finding, error) {
	img, findings, err := Open(ctx, asset, t.WorkDir, lim)
	if err != nil || img == nil {
		return findings, err
	}
	files, lf, err := ExtractLayers(ctx, img, t.WorkDir, lim)
	findings = append(findings, lf...)
	if err != nil {
		return findings, err
	}
	t.Files = append(files, img.Other...)
	t.RootFS = RootFS(img, files, t.WorkDir)
	t.Asset = img.TrivyInput
	return findings, nil
}
