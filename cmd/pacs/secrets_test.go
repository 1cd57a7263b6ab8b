package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestRedactURL(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"file:///srv/pacs/blobs", "file:///srv/pacs/blobs"},
		{"sqlite:///srv/pacs/index.db", "sqlite:///srv/pacs/index.db"},
		{"postgres://pacs:hunter2@db:5432/pacs?sslmode=verify-full", "postgres://pacs:REDACTED@db:5432/pacs?sslmode=verify-full"},
		{"postgres://pacs@db/pacs?password=hunter2&sslmode=disable", "postgres://pacs@db/pacs?password=REDACTED&sslmode=disable"},
		{"postgres://db/pacs?sslpassword=x&sslkey=/k.pem&application_name=pacs", "postgres://db/pacs?sslpassword=REDACTED&sslkey=REDACTED&application_name=pacs"},
		{"s3://bucket/prefix?region=eu-west-1&sse=aws:kms&sse_kms_key_id=arn:aws:kms:k&sse_c_key=AAAA%2BBBB", "s3://bucket/prefix?region=eu-west-1&sse=aws:kms&sse_kms_key_id=REDACTED&sse_c_key=REDACTED"},
		{"s3://bucket/p?X-Amz-Credential=AKIA&X-Amz-Signature=abc&X-Amz-Security-Token=t", "s3://bucket/p?X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&X-Amz-Security-Token=REDACTED"},
		{"s3://bucket/p#secret", "s3://bucket/p#REDACTED"},
		// When unsure what is secret, nothing but the scheme.
		{"postgres://pacs:p@ss@db/pacs", "postgres://REDACTED"},
		{"postgres://pacs:pa ss%zz@db/pacs", "postgres://REDACTED"},
		{"host=db user=pacs password=hunter2", "REDACTED"},
	} {
		if got := redactURL(c.in); got != c.want {
			t.Errorf("redactURL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	err := scrubSecrets(errString(`connect "postgres://u:hunter%212@h/db": hunter!2 refused`), "postgres://u:hunter%212@h/db")
	if strings.Contains(err.Error(), "hunter") {
		t.Errorf("scrubSecrets left the password: %v", err)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// secretRun is one run of the binary whose whole output (stdout and
// stderr) is kept.
type secretRun struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	addr chan string
	done chan struct{}
}

func (r *secretRun) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.Write(p)
}

func (r *secretRun) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.String()
}

func startSecretRun(t *testing.T, env []string, args ...string) *secretRun {
	t.Helper()
	r := &secretRun{cmd: exec.Command(pacsBinary(t), args...), addr: make(chan string, 1), done: make(chan struct{})}
	r.cmd.Env = append(os.Environ(), env...)
	r.cmd.Stdout = r
	pipe, err := r.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(r.done)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			r.Write(append(sc.Bytes(), '\n'))
			var l struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "listening" {
				r.addr <- l.Addr
			}
		}
	}()
	return r
}

// wait waits for the process to exit (after SIGTERM when it still runs
// at the deadline).
func (r *secretRun) wait(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(d):
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		<-r.done
	}
	_ = r.cmd.Wait()
}

// Start-up with a PostgreSQL password and an SSE-C key in the store URLs
// (the stores are unreachable: what matters is what gets printed): no
// secret in the output of the binary, whether it starts, fails to
// connect, or prints its usage.
func TestServe_secretsNotPrinted(t *testing.T) {
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")) // 32 bytes, has no '+' or '/'
	const pgPassword, pgSSLPassword = "Pw-hunter2-S3cr3t", "SSLpw-S3cr3t"
	s3URL := "s3://st-mary-archive/pacs?endpoint=http://127.0.0.1:1&region=us-east-1&max_attempts=1&sse_c_key=" + url.QueryEscape(key)
	pgDSN := "postgres://pacs:" + pgPassword + "@127.0.0.1:1/pacs?sslmode=disable&sslpassword=" + pgSSLPassword
	secrets := []string{key, url.QueryEscape(key), pgPassword, pgSSLPassword}
	check := func(t *testing.T, out string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("secret %q in the output:\n%s", s, out)
			}
		}
		if !strings.Contains(out, redacted) {
			t.Errorf("no redacted URL in the output: the test printed nothing it could check:\n%s", out)
		}
	}

	t.Run("starts with an SSE-C key", func(t *testing.T) {
		r := startSecretRun(t, nil, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--blob", s3URL)
		var addr string
		select {
		case addr = <-r.addr:
		case <-time.After(time.Minute):
			t.Fatalf("did not start:\n%s", r.text())
		}
		res, err := http.Get("http://" + addr + "/readyz") // the store is down: logs why
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("/readyz with the store unreachable: %d", res.StatusCode)
		}
		r.wait(t, 0)
		check(t, r.text())
	})
	t.Run("fails to connect to PostgreSQL", func(t *testing.T) {
		r := startSecretRun(t, nil, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--blob", s3URL, "--index", pgDSN)
		r.wait(t, time.Minute)
		out := r.text()
		if r.cmd.ProcessState.ExitCode() != 1 || !strings.Contains(out, "pacs:") {
			t.Errorf("exit %d; want 1 with the error printed:\n%s", r.cmd.ProcessState.ExitCode(), out)
		}
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("secret %q in the output:\n%s", s, out)
			}
		}
	})
	t.Run("usage with secrets in the environment", func(t *testing.T) {
		r := startSecretRun(t, []string{"PACS_BLOB=" + s3URL, "PACS_INDEX=" + pgDSN}, "serve", "--no-such-flag")
		r.wait(t, time.Minute)
		check(t, r.text())
	})
	t.Run("verify with a bad index URL", func(t *testing.T) {
		r := startSecretRun(t, nil, "verify", "--data", t.TempDir(), "--index", "mysql://pacs:"+pgPassword+"@db/pacs")
		r.wait(t, time.Minute)
		check(t, r.text())
	})
}
