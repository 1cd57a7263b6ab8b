package main

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// A handler that panics answers 500 with the panic logged, and the
// server goes on answering.
func TestPanicRecovered(t *testing.T) {
	var logs bytes.Buffer
	e := newEcho(slog.New(slog.NewTextHandler(&logs, nil)), nil)
	e.GET("/boom", func(echo.Context) error { panic("decoder met something new") })
	e.GET("/ok", func(c echo.Context) error { return c.String(http.StatusOK, "fine") })
	srv := httptest.NewServer(e)
	defer srv.Close()
	for _, c := range []struct {
		path string
		want int
	}{{"/boom", 500}, {"/ok", 200}, {"/boom", 500}, {"/ok", 200}} {
		res, err := http.Get(srv.URL + c.path)
		if err != nil {
			t.Fatalf("GET %s: %v", c.path, err)
		}
		res.Body.Close()
		if res.StatusCode != c.want {
			t.Errorf("GET %s: %d, want %d", c.path, res.StatusCode, c.want)
		}
	}
	out := logs.String()
	if !strings.Contains(out, "request panicked") || !strings.Contains(out, "decoder met something new") || !strings.Contains(out, "status=500") {
		t.Errorf("log lacks the panic or its 500:\n%s", out)
	}
}
