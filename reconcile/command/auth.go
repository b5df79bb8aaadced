package command

import (
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"golang.org/x/oauth2"
)

// githubAuth returns the transport that authenticates to GitHub: a token
// (GITHUB_TOKEN), or a GitHub App installation (GITHUB_APP_ID,
// GITHUB_APP_INSTALLATION_ID, and GITHUB_APP_PRIVATE_KEY or
// GITHUB_APP_PRIVATE_KEY_FILE), whose installation token is fetched and renewed as it
// expires. Exactly one of the two. No error quotes a credential.
func githubAuth(apiURL string) (http.RoundTripper, error) {
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.ResponseHeaderTimeout = 20 * time.Second
	token := strings.TrimSpace(os.Getenv("GITHUB_TOKEN"))
	appID, instID := os.Getenv("GITHUB_APP_ID"), os.Getenv("GITHUB_APP_INSTALLATION_ID")
	key, keyFile := os.Getenv("GITHUB_APP_PRIVATE_KEY"), os.Getenv("GITHUB_APP_PRIVATE_KEY_FILE")
	app := appID != "" || instID != "" || key != "" || keyFile != ""
	switch {
	case token != "" && app:
		return nil, usagef("GITHUB_TOKEN and GITHUB_APP_*: set one way to authenticate, not both")
	case token != "":
		return &oauth2.Transport{Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token}), Base: base}, nil
	case !app:
		return nil, usagef("GITHUB_TOKEN is not set: export a token that may read (and, to re-run preempted jobs, write) Actions and administer runners, or a GitHub App's GITHUB_APP_ID, GITHUB_APP_INSTALLATION_ID and GITHUB_APP_PRIVATE_KEY")
	}
	id, err := strconv.ParseInt(appID, 10, 64)
	if err != nil || id <= 0 {
		return nil, usagef("GITHUB_APP_ID: %q is not an App id", appID)
	}
	inst, err := strconv.ParseInt(instID, 10, 64)
	if err != nil || inst <= 0 {
		return nil, usagef("GITHUB_APP_INSTALLATION_ID: %q is not an installation id", instID)
	}
	switch {
	case key != "" && keyFile != "":
		return nil, usagef("GITHUB_APP_PRIVATE_KEY and GITHUB_APP_PRIVATE_KEY_FILE: set one")
	case keyFile != "":
		b, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, usagef("GITHUB_APP_PRIVATE_KEY_FILE: %v", err)
		}
		key = string(b)
	case key == "":
		return nil, usagef("GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_FILE is not set")
	}
	tr, err := ghinstallation.New(base, id, inst, []byte(key))
	if err != nil {
		// Its message names the parse failure, never the key.
		return nil, usagef("GITHUB_APP_PRIVATE_KEY: not a PEM RSA private key")
	}
	tr.BaseURL = strings.TrimRight(apiURL, "/")
	return tr, nil
}
