// Package viewer is the web viewer of the PACS: plain HTML, CSS and ES
// modules (no build step), embedded in the binary and served at / (study
// list) and /viewer (study view, /viewer?StudyInstanceUIDs=<uid>, the URL
// form OHIF uses). It talks to the server only through DICOMweb at
// /dicom-web: QIDO for lists, metadata for the stacks, /rendered frames
// for the images (server-side windowing), /thumbnail for the series strip
// and bulk data for encapsulated PDF reports.
package viewer

import (
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/labstack/echo/v4"
)

//go:embed static
var files embed.FS

// Static is the viewer's file tree (index.html at its root).
var Static = func() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err)
	}
	return sub
}()

func init() {
	// Some systems map .js to text/plain; module scripts need a JavaScript
	// type or the browser refuses them.
	_ = mime.AddExtensionType(".js", "text/javascript; charset=utf-8")
	_ = mime.AddExtensionType(".mjs", "text/javascript; charset=utf-8")
}

// Register serves the viewer on e: GET / and /viewer answer index.html
// (the app routes on the path), /viewer/<file> the embedded assets, and
// any other /viewer/… path falls back to index.html so that deep links of
// the single-page app work.
func Register(e *echo.Echo) {
	get := []string{http.MethodGet, http.MethodHead}
	fileServer := http.FileServerFS(Static)
	indexHTML, err := fs.ReadFile(Static, "index.html")
	if err != nil {
		panic(err)
	}
	index := func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "no-cache")
		return c.HTMLBlob(http.StatusOK, indexHTML)
	}
	e.Match(get, "/", index)
	e.Match(get, "/viewer", index)
	e.Match(get, "/viewer/*", func(c echo.Context) error {
		name := path.Clean(strings.TrimPrefix(c.Param("*"), "/"))
		if name == "." || name == "index.html" {
			return index(c)
		}
		if st, err := fs.Stat(Static, name); err != nil || st.IsDir() {
			return index(c) // SPA fallback
		}
		// Assets are small and change with the binary: revalidate.
		c.Response().Header().Set("Cache-Control", "no-cache")
		r := c.Request().Clone(c.Request().Context())
		r.URL.Path = "/" + name
		fileServer.ServeHTTP(c.Response(), r)
		return nil
	})
}
