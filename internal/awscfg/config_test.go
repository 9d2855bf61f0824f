package awscfg

import (
	"strings"
	"testing"

	"github.com/pipe-run/pipe/pipeline"
)

// testTarget is a target kind with an aws: block, to decode the block from
// YAML as components do.
type testTarget struct {
	AWS Config `yaml:"aws" doc:"AWS access."`
}

func (*testTarget) NewTarget(pipeline.Env) (pipeline.Target, error) { return nil, nil }

// testSource is a source kind that takes no settings.
type testSource struct{}

func (*testSource) NewSource(pipeline.Env) (pipeline.Source, error) { return nil, nil }

func init() {
	pipeline.RegisterTarget("awscfgtest", "test", func() *testTarget { return &testTarget{} })
	pipeline.RegisterSource("awscfgtest", "test", func() *testSource { return &testSource{} })
}

func parseAWS(block string) (*Config, error) {
	y := "pipes:\n  - name: p\n    source: {awscfgtest: {}}\n    target:\n      awscfgtest:\n        aws:\n" + block
	cfg, err := pipeline.Parse("pipes.yaml", []byte(y))
	if err != nil {
		return nil, err
	}
	return &cfg.Pipes[0].Target.(*testTarget).AWS, nil
}

func TestDecode(t *testing.T) {
	c, err := parseAWS("          region: eu-west-1\n          profile: prod\n          roleArn: arn:aws:iam::123456789012:role/pipe-writer\n" +
		"          externalId: ext-1\n          sessionName: orders\n          endpoint: http://127.0.0.1:4566\n")
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Region: "eu-west-1", Profile: "prod", RoleARN: "arn:aws:iam::123456789012:role/pipe-writer",
		ExternalID: "ext-1", SessionName: "orders", Endpoint: "http://127.0.0.1:4566"}
	if *c != want {
		t.Fatalf("got %+v", *c)
	}
	if ep := c.BaseEndpoint(); ep == nil || *ep != want.Endpoint {
		t.Fatalf("BaseEndpoint %v", ep)
	}
	if (&Config{}).BaseEndpoint() != nil {
		t.Fatal("BaseEndpoint of no endpoint is not nil")
	}

	for _, c := range []struct{ block, want string }{
		{"          region: EU West\n", "target.awscfgtest.aws.region: must be an AWS region name"},
		{"          roleArn: pipe-writer\n", "target.awscfgtest.aws.roleArn: must be an IAM role ARN"},
		{"          roleArn: arn:aws:iam::123456789012:role/r\n          externalId: x\n", "aws.externalId: is 1 characters long"},
		{"          roleArn: arn:aws:iam::123456789012:role/r\n          externalId: a b\n", "aws.externalId: must be 2 to 1224 characters"},
		{"          roleArn: arn:aws:iam::123456789012:role/r\n          externalId: " + strings.Repeat("e", 1225) + "\n", "aws.externalId: is 1225 characters long"},
		{"          sessionName: a\n          roleArn: arn:aws:iam::123456789012:role/r\n", "aws.sessionName: must be 2 to 64 characters"},
		{"          sessionName: abc\n", "aws.sessionName: needs roleArn"},
		{"          endpoint: 127.0.0.1:4566\n", "aws.endpoint: must be an absolute http:// or https:// URL"},
		{"          accessKeyId: AKID\n", `aws.accessKeyId: unknown key "accessKeyId"`},
	} {
		_, err := parseAWS(c.block)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.block, err, c.want)
		}
	}
}
