package trivy

import (
	"bytes"
	"io"
	"log/slog"
	"testing"
)

// TestLogHandler: a record goes out exactly as the wrapped handler writes
// it, with every With and WithGroup applied in order; nothing is written
// below the handler's level.
func TestLogHandler(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		log  func(l *slog.Logger)
	}{
		{"plain", func(l *slog.Logger) { l.Warn("m", "k", 1) }},
		{"with", func(l *slog.Logger) { l.With("a", 1).With("b", "x").Warn("m", "k", 2) }},
		{"groups", func(l *slog.Logger) { l.With("a", 1).WithGroup("g").With("b", 2).WithGroup("h").Error("m", "k", 3) }},
		{"empty group and attrs", func(l *slog.Logger) { l.WithGroup("").With().Warn("m") }},
		{"below the level", func(l *slog.Logger) { l.With("a", 1).Info("not written") }},
		{"siblings do not share", func(l *slog.Logger) {
			base := l.With("a", 1)
			x, y := base.With("x", 1), base.With("y", 2)
			x.Warn("x")
			y.Warn("y")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := &slog.HandlerOptions{Level: slog.LevelWarn,
				ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
					if a.Key == slog.TimeKey {
						return slog.Attr{}
					}
					return a
				}}
			var want, got bytes.Buffer
			tt.log(slog.New(slog.NewJSONHandler(&want, opts)))
			tt.log(slog.New(LogHandler(slog.NewJSONHandler(&got, opts))))
			if got.String() != want.String() {
				t.Errorf("got  %s\nwant %s", got.String(), want.String())
			}
		})
	}
}

// BenchmarkLoggerWith: what trivy's secret scanner does for every rule on
// every chunk of every file, through slog's JSON handler and through
// LogHandler around it (the records themselves are below the level).
//
//	go test -run '^$' -bench LoggerWith ./scanner/trivy/
func BenchmarkLoggerWith(b *testing.B) {
	for _, tc := range []struct {
		name string
		h    func(slog.Handler) slog.Handler
	}{
		{"json", func(h slog.Handler) slog.Handler { return h }},
		{"LogHandler(json)", LogHandler},
	} {
		b.Run(tc.name, func(b *testing.B) {
			l := slog.New(tc.h(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))).With("component", "trivy")
			b.ReportAllocs()
			for b.Loop() {
				fl := l.With("file_path", "usr/share/app/config/settings.yaml")
				for _, id := range []string{"aws-access-key-id", "github-pat", "slack-web-hook"} {
					fl.With("rule_id", id).Debug("checking rule")
				}
			}
		})
	}
}
