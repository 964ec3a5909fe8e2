package trivy

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/aquasecurity/trivy/pkg/db"
	ftypes "github.com/aquasecurity/trivy/pkg/fanal/types"
)

// DownloadDB fetches the vulnerability DB from OCI repositories (the
// official ghcr.io/aquasecurity/trivy-db:2 or a private mirror of it) into
// cacheDir/db, the layout Open and `assetscan db publish` read. It is the
// production alternative to a directory kept by `trivy --download-db-only`
// and needs network access to the registry; repositories are tried in
// order. It does not touch the DB an Engine has open.
func DownloadDB(ctx context.Context, cacheDir string, repositories []string, insecure bool) error {
	if len(repositories) == 0 {
		return fmt.Errorf("download db: no repository given")
	}
	refs := make([]name.Reference, 0, len(repositories))
	for _, r := range repositories {
		ref, err := name.ParseReference(r)
		if err != nil {
			return fmt.Errorf("download db: repository %q: %w", r, err)
		}
		refs = append(refs, ref)
	}
	dir := db.Dir(cacheDir)
	c := db.NewClient(dir, true, db.WithDBRepository(refs))
	if err := c.Download(ctx, dir, ftypes.RegistryOptions{Insecure: insecure}); err != nil {
		return fmt.Errorf("download db: %w", err)
	}
	return nil
}
