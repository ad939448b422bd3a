// Package browser holds the browser tests: the agency's password procedure
// followed in Debian's headless Chromium, driven through the DevTools protocol
// (chromedp), against the real `idp serve` process (e2e/harness) on SQLite
// and PostgreSQL, with a relying application using standard OIDC client
// libraries and a real SMTP server receiving the mails.
//
// Everything is in the _test.go files; this file only documents the package.
//
//   - The journeys select fields, buttons and links by their accessible names
//     (the label a person reads, the name a screen reader announces), through
//     the browser's accessibility tree, never by CSS classes.
//   - axe-core runs on every page of the provider; a serious or critical
//     violation fails the test. It is installed from the npm registry into
//     the user's cache directory on first use, never into the repository.
//   - Journey 2 saves a PNG of each of its pages at desktop and phone width
//     into a temporary directory, or into docs/screenshots when
//     IDP_UPDATE_SCREENSHOTS=1 (the README shows those).
//   - Without Chromium the tests skip, except under CI=true where they fail.
//     CHROMIUM_PATH overrides the browser (default: chromium on the PATH).
package browser
