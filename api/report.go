package api

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/report"
	"github.com/assetscan/assetscan/storage"
)

// FindingsReader reads the stored findings (the component inventory) of a
// finished scan; storage.ErrScanNotFound when there are none.
// *storage.Store implements it; the report route uses it through
// Server.Scans, so a scan store without it cannot serve SBOMs (501).
type FindingsReader interface {
	Findings(ctx context.Context, id string) (assetscan.Findings, error)
}

// getReport serves GET /v1/scans/{scan_id}/report?format=sarif|cyclonedx|html|json:
// the finished scan's report rendered by package report, under the access
// rules of GET /v1/scans/{scan_id} (a seller reads only their own; another
// seller's scan gets the answer, and costs the work, of a missing one).
// 400 for a missing or unknown format, 404 for no such scan, 409 while the
// scan is not finished, 503 when a store is down. The SBOM is made from
// the stored verdict and inventory on each request, so it follows the
// verdict of record, including re-evaluations and DB re-matches.
func (s *Server) getReport(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	format := r.URL.Query().Get("format")
	ctype, err := report.ContentType(format)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: "invalid format",
			Fields: map[string]string{"format": "required: one of " + strings.Join(report.Formats(), ", ")}})
		return
	}
	const notFound = "scan not found"
	id := r.PathValue("scan_id")
	sc, err := s.readableScan(ctx, id)
	switch {
	case errors.Is(err, storage.ErrScanNotFound):
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: notFound})
		return
	case err != nil:
		s.Log.ErrorContext(ctx, "get scan", "error", err)
		writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Error: "scan store unavailable"})
		return
	case sc.Status != assetscan.StatusDone:
		writeJSON(w, http.StatusConflict, ErrorResponse{Error: "scan not finished (status " + string(sc.Status) + "): no report yet"})
		return
	}
	v, err := s.Scans.Verdict(ctx, id)
	if err != nil {
		s.Log.ErrorContext(ctx, "read verdict", "error", err, "scan_id", id)
		writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Error: "verdict store unavailable"})
		return
	}
	var f assetscan.Findings
	if format == report.FormatCycloneDX {
		fr, ok := s.Scans.(FindingsReader)
		if !ok {
			writeJSON(w, http.StatusNotImplemented, ErrorResponse{Error: "this deployment keeps no inventories"})
			return
		}
		f, err = fr.Findings(ctx, id)
		switch {
		case errors.Is(err, storage.ErrScanNotFound):
			writeJSON(w, http.StatusNotFound, ErrorResponse{Error: "no stored inventory for this scan"})
			return
		case err != nil:
			s.Log.ErrorContext(ctx, "read findings", "error", err, "scan_id", id)
			writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Error: "findings store unavailable"})
			return
		}
	}
	var buf bytes.Buffer
	if err := report.Write(&buf, format, v, f); err != nil {
		s.Log.ErrorContext(ctx, "render report", "error", err, "scan_id", id, "format", format)
		writeJSON(w, http.StatusInternalServerError, ErrorResponse{Error: "could not render the report"})
		return
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "private, no-store")
	h.Set("Referrer-Policy", "no-referrer")
	if format == report.FormatHTML {
		h.Set("Content-Security-Policy", report.CSP)
		h.Set("Content-Disposition", `inline; filename="`+id+report.FileExtension(format)+`"`)
	} else {
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		h.Set("Content-Disposition", `attachment; filename="`+id+report.FileExtension(format)+`"`)
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}
