package trivy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/aquasecurity/trivy/pkg/fanal/secret"
	ftypes "github.com/aquasecurity/trivy/pkg/fanal/types"
	"github.com/aquasecurity/trivy/pkg/fanal/utils"
	"github.com/aquasecurity/trivy/pkg/types"

	"github.com/assetscan/assetscan/scanner"
	"github.com/assetscan/assetscan/textenc"
)

// trivy's secret analyzer takes a file with a NUL or control byte in its
// first 300 bytes for a binary and skips it whole (only *.pyc binaries get
// their printable runs scanned). UTF-16 and UTF-32 text has a NUL byte in
// every ASCII character, so a key saved by PowerShell's `>` (UTF-16LE with
// a BOM) is never seen; nor is a key in a UTF-8 text that starts with a
// stray control byte. The functions here find such files themselves (the
// first textenc.SniffSize bytes of every regular file; only the files
// recognised as UTF-16/32 text, or as text trivy took for a binary, are
// read further, once, as a stream), run trivy's secret scanner (same
// rules, same generated config as the analyzer) over their UTF-8 view (or
// their bytes as they are), and convert the results with convert, like the
// analyzer's: the findings name the original file and line (the view keeps
// lines).
//
// Why not write UTF-8 copies where trivy walks: a copy doubles the disk
// use of a package made of such files, and its findings would need a path
// map back; scanning the stream directly needs neither.

// minSecretFile is the size below which trivy's secret analyzer does not
// look at a file; the same bound here.
const minSecretFile = 10

// wideText runs the secret scan over UTF-16/32 text files. Use once per
// scan, from one goroutine.
type wideText struct {
	e  *Engine
	sc *secret.Scanner // built on the first UTF-16/32 file
	// results are trivy results as the secret analyzer would give them.
	results []types.Result
	// files counts the files read through a UTF-8 view; asIs the text
	// files trivy skipped as binaries, read as they are.
	files, asIs int
}

// file sniffs r (a file's bytes from its start) and, if it is UTF-16/32
// text, scans its UTF-8 view. name is the path as trivy names it (the
// secret config's path rules apply to it; rel turns it into the reported
// path); layer is the image layer's DiffID or "".
func (w *wideText) file(ctx context.Context, name, layer string, r io.Reader) error {
	r = scanner.ContextReader(ctx, r)
	head := make([]byte, textenc.SniffSize)
	n, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("wide text %s: %w", name, err)
	}
	head = head[:n]
	d := textenc.Detect(head)
	// Text trivy takes for a binary (a control byte in its first 300
	// bytes) and so skips whole: scanned as it is.
	asIs := !d.Wide() && trivyBinary(head) && textenc.MostlyText(head)
	if !d.Wide() && !asIs {
		return nil
	}
	if w.sc == nil {
		c, err := secret.ParseConfig(w.e.secretConfig)
		if err != nil {
			return fmt.Errorf("wide text: secret config: %w", err)
		}
		sc := secret.NewScanner(c)
		w.sc = &sc
	}
	if w.sc.IsSkipped(name) {
		return nil
	}
	var view io.Reader = io.MultiReader(bytes.NewReader(head), r)
	if asIs {
		w.asIs++
	} else {
		if view, err = textenc.NewUTF8Reader(view, d); err != nil {
			return fmt.Errorf("wide text %s: %w", name, err)
		}
		w.files++
	}
	src := &fullReader{r: view}
	sec := w.sc.Scan(secret.ScanArgs{FilePath: name, Content: src})
	// trivy logs a read error and returns what it found so far: fail
	// closed instead.
	if src.err != nil {
		return fmt.Errorf("wide text %s (%s): %w", name, d, src.err)
	}
	if len(sec.Findings) == 0 {
		return nil
	}
	res := types.Result{Target: name, Class: types.ClassSecret}
	for _, f := range sec.Findings {
		f.Layer = ftypes.Layer{DiffID: layer}
		f.Offset = 0 // an offset in the view, not in the file
		res.Secrets = append(res.Secrets, types.DetectedSecret(f))
	}
	w.results = append(w.results, res)
	return nil
}

// trivyBinary applies the test trivy's secret analyzer applies before it
// skips a file as binary (a NUL or control byte in the first 300 bytes).
func trivyBinary(head []byte) bool {
	bin, err := utils.IsBinary(bytes.NewReader(head), int64(len(head)))
	return err == nil && bin
}

// dir runs w.file over every regular file under root, named prefix + its
// slash path under root (as trivy names them when it scans an artifact
// rooted at root, prefix "", or at root's parent, prefix "<base>/").
// Symbolic links are not followed.
func (w *wideText) dir(ctx context.Context, root, prefix string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("wide text: walk: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if fi, err := d.Info(); err != nil || fi.Size() < minSecretFile {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return fmt.Errorf("wide text: %w", err)
		}
		return w.open(ctx, prefix+filepath.ToSlash(rel), "", p)
	})
}

// open runs w.file over the file at diskPath.
func (w *wideText) open(ctx context.Context, name, layer, diskPath string) error {
	f, err := os.Open(diskPath)
	if err != nil {
		return fmt.Errorf("wide text: %w", err)
	}
	defer f.Close()
	return w.file(ctx, name, layer, f)
}

// targetFiles runs w.file over an image target's files: the extracted
// layer files (t.Files) and the streamed ones (t.Sources), named as trivy
// names image files ("/<path>").
func (w *wideText) targetFiles(ctx context.Context, t *scanner.Target) error {
	for _, f := range t.Files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if f.Size < minSecretFile {
			continue
		}
		if err := w.open(ctx, "/"+f.Path, f.Layer, f.DiskPath); err != nil {
			return err
		}
	}
	for _, s := range t.Sources {
		err := s.Walk(ctx, func(f scanner.File, r io.Reader) error {
			if f.Size < minSecretFile {
				return nil
			}
			return w.file(ctx, "/"+f.Path, f.Layer, r)
		})
		if err != nil {
			return fmt.Errorf("wide text: %w", err)
		}
	}
	return nil
}

// merge adds the findings of w to res (converted by convert, as trivy's
// own secret results), dropping any finding res already has.
func (w *wideText) merge(res scanner.Result, rel func(string) string) scanner.Result {
	if len(w.results) == 0 {
		return res
	}
	add := convert(types.Report{Results: w.results}, rel)
	seen := map[string]bool{}
	for _, f := range res.Findings {
		seen[findingKey(f)] = true
	}
	for _, f := range add.Findings {
		if k := findingKey(f); !seen[k] {
			seen[k] = true
			res.Findings = append(res.Findings, f)
		}
	}
	sort.SliceStable(res.Findings, func(i, j int) bool { return findingKey(res.Findings[i]) < findingKey(res.Findings[j]) })
	res.Detail = fmt.Sprintf("%d components, %d findings", len(res.Components), len(res.Findings))
	return res
}

// detail notes in res.Detail how many files were read through a UTF-8
// view.
func (w *wideText) detail(res scanner.Result) scanner.Result {
	if w.files > 0 {
		res.Detail += fmt.Sprintf(", %d UTF-16/32 text files read as UTF-8", w.files)
	}
	if w.asIs > 0 {
		res.Detail += fmt.Sprintf(", %d text files with control bytes read as text", w.asIs)
	}
	return res
}

// addWideTextSecrets adds to res the secrets in the UTF-16/32 text files
// (and text files trivy took for binaries) of the package extracted at root
// (see ScanDir).
func (e *Engine) addWideTextSecrets(ctx context.Context, root string, res scanner.Result) (scanner.Result, error) {
	prefix := filepath.Base(root) + "/"
	return e.addWideTextSecretsUnder(ctx, root, prefix, func(p string) string { return strings.TrimPrefix(filepath.ToSlash(p), prefix) }, res)
}

// addWideTextSecretsUnder adds to res (the result of trivy's scan of an
// artifact over dir) the secrets in the UTF-16/32 text files under dir,
// and in the text files trivy took for binaries. Files are named prefix +
// their slash path under dir, as trivy named them in that scan, and rel
// turns a name into the reported path (the rel that scan's convert used).
func (e *Engine) addWideTextSecretsUnder(ctx context.Context, dir, prefix string, rel func(string) string, res scanner.Result) (scanner.Result, error) {
	if e.cfg.NoSecrets {
		return res, nil
	}
	w := &wideText{e: e}
	if err := w.dir(ctx, dir, prefix); err != nil {
		return scanner.Result{}, fmt.Errorf("trivy secrets: %w", err)
	}
	return w.detail(w.merge(res, rel)), nil
}

// addWideTextSecretsOfFiles adds to res (an image scan's result) the
// secrets in the UTF-16/32 text files among t.Files and t.Sources. A
// scan error passes through.
func (e *Engine) addWideTextSecretsOfFiles(ctx context.Context, t *scanner.Target, res scanner.Result, err error) (scanner.Result, error) {
	if err != nil || e.cfg.NoSecrets {
		return res, err
	}
	w := &wideText{e: e}
	if err := w.targetFiles(ctx, t); err != nil {
		return scanner.Result{}, fmt.Errorf("trivy secrets: %w", err)
	}
	return w.detail(w.merge(res, func(p string) string { return strings.TrimPrefix(filepath.ToSlash(p), "/") })), nil
}

// fullReader fills each Read's buffer (trivy's streaming scanner reads one
// chunk per Read call; the transcoder returns short reads) and records the
// first error other than EOF, which trivy would only log.
type fullReader struct {
	r   io.Reader
	err error
}

func (r *fullReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := io.ReadFull(r.r, p)
	switch {
	case err == nil:
		return n, nil
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		if n > 0 {
			return n, nil
		}
		return 0, io.EOF
	default:
		r.err = err
		return n, err
	}
}
