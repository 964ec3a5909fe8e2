// Package report renders a finished scan for people and for tools: a
// self-contained HTML page, SARIF 2.1.0 for CI systems, a CycloneDX 1.6
// SBOM, and the JSON verdict document. Every renderer is a pure function of
// the verdict (judged findings, checks, policy, DB, engines) and the stored
// findings (for the component inventory); the same input gives the same
// bytes.
//
// Remediation texts, one per rule id, live in this package too
// (Remediation, RuleTitle, RuleHelp) so every format, and the CLI table,
// say the same thing.
package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/assetscan/assetscan"
)

// Report formats, as accepted by Write and the API's ?format= and the
// CLI's --format.
const (
	FormatJSON      = "json"
	FormatSARIF     = "sarif"
	FormatCycloneDX = "cyclonedx"
	FormatHTML      = "html"
)

// ErrUnknownFormat is returned by Write and ContentType for a format not
// in Formats.
var ErrUnknownFormat = errors.New("unknown report format")

// Formats lists the formats Write renders, in a stable order.
func Formats() []string {
	return []string{FormatJSON, FormatSARIF, FormatCycloneDX, FormatHTML}
}

// ContentType is the media type of a format: application/json,
// application/sarif+json, application/vnd.cyclonedx+json; version=1.6,
// text/html; charset=utf-8. ErrUnknownFormat for others.
func ContentType(format string) (string, error) {
	switch format {
	case FormatJSON:
		return "application/json", nil
	case FormatSARIF:
		return "application/sarif+json", nil
	case FormatCycloneDX:
		return "application/vnd.cyclonedx+json; version=1.6", nil
	case FormatHTML:
		return "text/html; charset=utf-8", nil
	}
	return "", fmt.Errorf("report: %w %q (want one of %v)", ErrUnknownFormat, format, Formats())
}

// FileExtension is the usual file name extension of a format, with its
// dot (".sarif", ".cdx.json", ".html", ".json"); "" for unknown formats.
func FileExtension(format string) string {
	switch format {
	case FormatJSON:
		return ".json"
	case FormatSARIF:
		return ".sarif"
	case FormatCycloneDX:
		return ".cdx.json"
	case FormatHTML:
		return ".html"
	}
	return ""
}

// Write renders the report of a finished scan in format to w. v is the
// verdict document; f the stored findings of the same scan, of which only
// the inventory (Components, OS) is used: the judged findings, checks,
// engines and DB come from v. A zero f gives an SBOM without components.
// Errors: ErrUnknownFormat, or w's write error.
func Write(w io.Writer, format string, v assetscan.Verdict, f assetscan.Findings) error {
	if !slices.Contains(Formats(), format) {
		_, err := ContentType(format)
		return err
	}
	var err error
	switch format {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		err = enc.Encode(v)
	case FormatSARIF:
		err = SARIF(w, v)
	case FormatCycloneDX:
		err = CycloneDX(w, v, f)
	case FormatHTML:
		err = HTML(w, v)
	}
	if err != nil {
		return fmt.Errorf("report %s: %w", format, err)
	}
	return nil
}
