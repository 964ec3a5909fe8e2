package api

import (
	"errors"
	"net/http"

	"github.com/assetscan/assetscan/callbacks"
)

// CallbackRequest registers a callback URL.
type CallbackRequest struct {
	URL string `json:"url"`
}

// addCallback registers a subscriber; the answer carries its signing
// secret, the only time it is shown.
func (s *Server) addCallback(w http.ResponseWriter, r *http.Request) {
	var req CallbackRequest
	if !decodeJSON(w, r, 16<<10, &req) {
		return
	}
	sub, err := s.Callbacks.Add(r.Context(), req.URL, principalName(r.Context()))
	if errors.Is(err, callbacks.ErrInvalidURL) {
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: "invalid callback URL", Fields: map[string]string{"url": err.Error()}})
		return
	}
	if err != nil {
		s.unavailable(w, r, "callback store", err)
		return
	}
	writeJSON(w, http.StatusCreated, sub)
}

func (s *Server) listCallbacks(w http.ResponseWriter, r *http.Request) {
	subs, err := s.Callbacks.List(r.Context())
	if err != nil {
		s.unavailable(w, r, "callback store", err)
		return
	}
	if subs == nil {
		subs = []callbacks.Subscriber{}
	}
	writeJSON(w, http.StatusOK, subs)
}

func (s *Server) removeCallback(w http.ResponseWriter, r *http.Request) {
	err := s.Callbacks.Remove(r.Context(), r.PathValue("id"))
	if errors.Is(err, callbacks.ErrNotFound) {
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: "callback not found"})
		return
	}
	if err != nil {
		s.unavailable(w, r, "callback store", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
