package trivy

import "runtime/debug"

// moduleVersion reads trivy's module version from the build info, so the
// verdict names the trivy that produced it even though trivy's own
// app.Version is only set by its release build.
func moduleVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, m := range bi.Deps {
		if m.Path == "github.com/aquasecurity/trivy" {
			if m.Replace != nil {
				return m.Replace.Version
			}
			return m.Version
		}
	}
	return "unknown"
}
