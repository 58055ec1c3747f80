package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"github.com/switchyard-dev/switchyard/controlplane"
	"github.com/switchyard-dev/switchyard/controlplane/store/pgstore"
	"github.com/switchyard-dev/switchyard/internal/netguard"
	"github.com/switchyard-dev/switchyard/internal/testenv/pgtest"
	"github.com/switchyard-dev/switchyard/sdk/switchyard"
)

// testOperatorToken is the operator token of the test control planes.
const testOperatorToken = "operator-token-for-provider-tests"

// TestMain makes the acceptance tests run under a plain `go test`: it finds
// the terraform binary on PATH and sets TF_ACC, and fails when there is none
// rather than letting every test skip.
func TestMain(m *testing.M) {
	tf, err := exec.LookPath("terraform")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: the acceptance tests need a terraform binary on PATH "+
			"(e.g. `go install github.com/hashicorp/terraform@v1.5.7`): "+err.Error())
		os.Exit(1)
	}
	out, err := exec.Command(tf, "version").Output()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %s version: %v\n", tf, err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "acceptance tests use %s: %s\n", tf, strings.SplitN(string(out), "\n", 2)[0])
	for k, v := range map[string]string{"TF_ACC": "1", "TF_ACC_TERRAFORM_PATH": tf, "CHECKPOINT_DISABLE": "1"} {
		if err := os.Setenv(k, v); err != nil {
			fmt.Fprintln(os.Stderr, "FAIL:", err)
			os.Exit(1)
		}
	}
	// go-plugin copies the stdio of the provider servers the framework starts
	// in goroutines that end shortly after those servers stop.
	pgtest.Main(m, goleak.IgnoreAnyFunction("github.com/hashicorp/go-plugin.copyChan"))
}

// protoV6Factories serves the provider in process to the terraform binary.
var protoV6Factories = map[string]func() (tfprotov6.ProviderServer, error){
	"switchyard": providerserver.NewProtocol6WithError(New("test")()),
}

// controlPlane is a control plane over a fresh database, served over HTTP.
type controlPlane struct {
	url    string
	client *switchyard.Client
}

// startControlPlane starts a control plane for t and returns it with an
// operator client.
func startControlPlane(t *testing.T) *controlPlane {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), pgtest.NewDB(t, pgtest.Template{Name: "controlplane", Setup: pgstore.Migrate}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	srv, err := controlplane.New(controlplane.Config{
		Store:         pgstore.New(pool),
		OperatorToken: testOperatorToken,
		WebhookPolicy: netguard.Policy{AllowLoopback: true},
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv.Handler())
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	hs.Config.Protocols = p
	hs.Start()
	t.Cleanup(hs.Close)
	t.Cleanup(srv.Close)
	c, err := switchyard.NewClient(hs.URL, switchyard.WithToken(testOperatorToken))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &controlPlane{url: hs.URL, client: c}
}

// config prefixes a configuration with the provider block of cp.
func (cp *controlPlane) config(body string) string {
	return fmt.Sprintf("provider \"switchyard\" {\n  endpoint = %q\n  token = %q\n}\n\n%s", cp.url, testOperatorToken, body)
}

// idOfResource returns the id in the state of the resource at addr.
func idOfResource(s *terraform.State, addr string) (string, error) {
	rs, ok := s.RootModule().Resources[addr]
	if !ok {
		return "", fmt.Errorf("%s is not in the state", addr)
	}
	return rs.Primary.ID, nil
}

// checkGone returns a CheckDestroy asserting that get answers NotFound for
// every resource of type typ left in the state.
func checkGone(typ string, get func(ctx context.Context, id string) error) func(*terraform.State) error {
	return func(s *terraform.State) error {
		for _, rs := range s.RootModule().Resources {
			if rs.Type != typ {
				continue
			}
			err := get(context.Background(), rs.Primary.ID)
			if err == nil {
				return fmt.Errorf("%s %s still exists", typ, rs.Primary.ID)
			}
			if !errors.Is(err, switchyard.ErrNotFound) {
				return fmt.Errorf("%s %s: want NotFound, got %w", typ, rs.Primary.ID, err)
			}
		}
		return nil
	}
}
