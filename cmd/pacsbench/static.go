package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The static-file yardstick of the frame phase (--static-frames): the
// frames the server under test sent are saved as files, response bodies
// byte for byte (multipart/related, the boundary of that response), and
// Go's http.FileServer serves them from another process on another
// loopback port. The same client then runs the same frame phase against
// it, so that the two CPU figures per request compare what serving
// stored bytes costs with what it costs the server.

const staticPhase = "static frame /frames/1 (http.FileServer)"

// phaseStaticFrames saves frame 1 of every stored instance outside the
// large series, starts `pacsbench static` over them and runs the frame
// phase against it at each concurrency level.
func (b *bench) phaseStaticFrames(ctx context.Context) ([]result, error) {
	stored := b.stored(false)
	if len(stored) == 0 {
		return nil, errors.New("nothing stored")
	}
	dir, err := os.MkdirTemp("", "pacsbench-static-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	files := filepath.Join(dir, "files")
	types := map[string]string{}
	for _, i := range stored {
		path := instancePath(b.ds.insts[i]) + "/frames/1"
		ct, err := b.saveBody(ctx, path, filepath.Join(files, filepath.FromSlash(path)))
		if err != nil {
			return nil, err
		}
		types[path] = ct
	}
	typesFile := filepath.Join(dir, "types.json")
	if err := writeJSON(typesFile, types); err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "static", "--dir", files, "--types", typesFile)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("pacsbench static: %w", err)
	}
	root, err := checkURL(strings.TrimSpace(line))
	if err != nil {
		return nil, fmt.Errorf("pacsbench static: %w", err)
	}
	sb := *b // the same client
	sb.root = root
	sb.cfg.PID = cmd.Process.Pid
	var rs []result
	for _, n := range b.cfg.Concurrency {
		if ctx.Err() != nil {
			break
		}
		r := sb.retrieve(ctx, n, staticPhase, "/frames/1", acceptFrame, b.ds.tpl.frameBytes)
		r.Note = fmt.Sprintf("%d frames as files, the bodies %s sent", len(stored), b.cfg.Label)
		rs = append(rs, r)
	}
	return rs, nil
}

// saveBody GETs path as the frame phase does and writes the body to
// file; it returns the response's Content-Type.
func (b *bench) saveBody(ctx context.Context, path, file string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.root+path, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", acceptFrame)
	resp, err := b.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", statusErr(path, resp.StatusCode, body)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return "", err
	}
	return resp.Header.Get("Content-Type"), os.WriteFile(file, body, 0o644)
}

// cmdStatic is `pacsbench static`: http.FileServer over --dir under
// /dicom-web on a loopback port, each file answered with the
// Content-Type --types names for its path. It prints its root URL on
// the first line of stdout and serves until killed.
func cmdStatic(args []string, stdout io.Writer) error {
	fset := flag.NewFlagSet("static", flag.ContinueOnError)
	dir := fset.String("dir", "", "folder of files to serve (required)")
	typesFile := fset.String("types", "", "JSON object: URL path under /dicom-web → Content-Type")
	listen := fset.String("listen", "127.0.0.1:0", "loopback address to listen on")
	if err := fset.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("--dir is required")
	}
	types := map[string]string{}
	if *typesFile != "" {
		b, err := os.ReadFile(*typesFile)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &types); err != nil {
			return fmt.Errorf("--types: %w", err)
		}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	if a, ok := ln.Addr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
		ln.Close()
		return fmt.Errorf("--listen %q: %w", *listen, errNotLoopback)
	}
	files := http.FileServer(http.Dir(*dir))
	h := http.StripPrefix("/dicom-web", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ct, ok := types[r.URL.Path]; ok {
			w.Header().Set("Content-Type", ct) // http.ServeContent keeps a type already set
		}
		files.ServeHTTP(w, r)
	}))
	fmt.Fprintf(stdout, "http://%s/dicom-web\n", ln.Addr())
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	return srv.Serve(ln)
}
