package trivy

import (
	"context"
	"log/slog"
	"slices"
)

// LogHandler wraps h, the handler trivy's log lines go to (slog's default
// logger), so that attributes and groups added with Logger.With and
// WithGroup are applied only when a record is handled. trivy's secret
// scanner calls Logger.With for every chunk of every file it reads, and
// slog's JSON and text handlers format those attributes at once: on a
// package of small files that was a sixth of the worker's CPU, for log
// lines that are almost never written (assetscan passes trivy warnings
// and errors only). Records are handled exactly as h would handle them.
func LogHandler(h slog.Handler) slog.Handler { return &lazyHandler{h: h} }

// lazyHandler is one link of a chain: the handler trivy's logger started
// with (parent nil), or one WithAttrs (attrs) or WithGroup (group) on top
// of parent. A link is one small allocation; nothing is formatted.
type lazyHandler struct {
	h      slog.Handler
	parent *lazyHandler
	group  string
	attrs  []slog.Attr
}

func (l *lazyHandler) Enabled(ctx context.Context, lv slog.Level) bool { return l.h.Enabled(ctx, lv) }

func (l *lazyHandler) Handle(ctx context.Context, r slog.Record) error {
	var chain []*lazyHandler
	for c := l; c.parent != nil; c = c.parent {
		chain = append(chain, c)
	}
	h := l.h
	for _, c := range slices.Backward(chain) {
		if c.attrs != nil {
			h = h.WithAttrs(c.attrs)
		} else {
			h = h.WithGroup(c.group)
		}
	}
	return h.Handle(ctx, r)
}

// WithAttrs keeps as: a Handler owns the slice it is given (slog.Handler).
func (l *lazyHandler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return l
	}
	return &lazyHandler{h: l.h, parent: l, attrs: as}
}

func (l *lazyHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return l
	}
	return &lazyHandler{h: l.h, parent: l, group: name}
}
