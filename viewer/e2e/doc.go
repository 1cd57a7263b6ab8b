// Package e2e holds the browser tests of the web viewers: our viewer
// (package viewer) and OHIF v3 against the DICOMweb API, in headless
// Chromium driven by chromedp. The tests skip without Chromium (see
// scripts/browser.sh) unless PACS_TEST_REQUIRE_TOOLS=1; the OHIF test also
// needs the OHIF dist (scripts/ohif.sh fetch). OHIF is observed through a
// probe script that hooks its window.cornerstone (ohif_probe_test.go).
//
// Screenshots land in a temporary folder that the tests log (set
// PACS_E2E_ARTIFACTS to keep them in a folder of your choice).
package e2e
