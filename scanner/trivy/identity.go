package trivy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"time"

	"github.com/assetscan/assetscan"
)

// CheckVersion is the version of this adapter's code (analyzers enabled,
// secret configuration, conversion of trivy's report). Bump it whenever a
// change can make the same input give other findings: findings made under
// another version are then never reused.
const CheckVersion = "2"

// Identity implements scanner.Identifier: the adapter's version, trivy's
// module version, and the vulnerability DB in use (the digest of trivy.db
// and its build time: fixture DBs built at different times can share a
// digest).
func (c *check) Identity(context.Context) (assetscan.Identity, error) {
	ref := c.e.DB()
	id := assetscan.Identity{Check: c.Name(), Version: CheckVersion, Engine: "trivy " + Version()}
	if ref.Digest == "" {
		id.Unknown = true
		id.Data = "db unknown"
		return id, nil
	}
	id.Data = "db " + ref.Digest + " built " + ref.UpdatedAt.UTC().Format(time.RFC3339) + "; " + c.e.javaDBIdentity()
	return id, nil
}

// javaDBIdentity names the Java DB in use (it identifies jars without
// pom.properties): the digest of its metadata.json, which changes with
// every build of it; an empty placeholder DB has its own. The Java DB is
// the one Open initialised (SwapDB swaps the vulnerability DB only).
func (e *Engine) javaDBIdentity() string {
	b, err := os.ReadFile(filepath.Join(e.javaDBDir, "java-db", "metadata.json"))
	if err != nil {
		return "java-db none"
	}
	sum := sha256.Sum256(b)
	return "java-db sha256:" + hex.EncodeToString(sum[:8])
}
