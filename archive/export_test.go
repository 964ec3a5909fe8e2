package archive

import "io"

// ZipLayout exposes indexZip to the external tests: the spans and gaps as
// [start, end) pairs, the overlap count and the accounted bytes.
func ZipLayout(r io.ReaderAt, size int64, maxEntries int) (spans, gaps [][2]int64, overlaps int, accounted int64, err error) {
	zi, err := indexZip(r, size, maxEntries)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	for _, s := range zi.spans {
		spans = append(spans, [2]int64{s.start, s.end})
	}
	for _, g := range zi.gaps {
		gaps = append(gaps, [2]int64{g.start, g.end})
	}
	return spans, gaps, zi.overlaps, zi.accounted(), nil
}

// SnifferKind runs the streaming sniffer over b written in chunks of the
// given sizes (cycled), with r to check directories before the tail.
func SnifferKind(b []byte, chunks []int, r io.ReaderAt) Kind {
	var s sniffer
	for i := 0; len(b) > 0; i++ {
		n := len(b)
		if len(chunks) > 0 {
			n = min(max(chunks[i%len(chunks)], 1), len(b))
		}
		_, _ = s.Write(b[:n])
		b = b[n:]
	}
	return s.kind(r)
}

// SniffStream runs the streaming sniffer over everything r yields, in
// chunks of len(buf), as Extract's copy loop does.
func SniffStream(r io.Reader, buf []byte) (Kind, error) {
	var s sniffer
	for {
		n, err := r.Read(buf)
		_, _ = s.Write(buf[:n])
		if err == io.EOF {
			return s.kind(nil), nil
		}
		if err != nil {
			return KindPlain, err
		}
	}
}

// ReleaseEvery is ReleaseSource releasing every step bytes, lag behind
// the read position (the defaults, 64 MiB and 1 MiB, need large fixtures).
func ReleaseEvery(step, lag int64) Option {
	return func(o *options) { o.releaseSource, o.step, o.lag = true, step, lag }
}

// PunchHole exposes punchHole, to probe the temp dir's file system.
var PunchHole = punchHole
