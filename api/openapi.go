package api

import (
	_ "embed"
	"net/http"
)

// openAPI is the API's contract, kept in the repository (api/openapi.json)
// and served at /openapi.json. TestOpenAPIMatchesRoutes keeps it honest.
//
//go:embed openapi.json
var openAPI []byte

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI)
}
