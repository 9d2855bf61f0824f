package awscfg

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/pipe-run/pipe/pipeline"
)

// Config is the `aws:` block of an AWS component's config. Every field is
// optional; the zero Config uses the SDK's defaults for everything.
type Config struct {
	Region      string `yaml:"region" pattern:"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$" patternDesc:"an AWS region name like eu-west-1" doc:"AWS region. Default: the region the component's resource names (a queue URL, an ARN), else AWS_REGION, else the profile's region in the shared config file."`
	Profile     string `yaml:"profile" doc:"Profile of the shared config and credentials files (~/.aws/config, ~/.aws/credentials) to read the region and credentials from. Default: AWS_PROFILE, else default. A profile named here is used even when AWS_ACCESS_KEY_ID is set. Credentials never sit in pipes.yaml: they come from the SDK's default chain (environment, shared files and profile, web identity, ECS, EC2 instance metadata)."`
	RoleARN     string `yaml:"roleArn" pattern:"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\\w+=,.@/-]{1,512}$" patternDesc:"an IAM role ARN like arn:aws:iam::123456789012:role/name" doc:"A role to assume with STS AssumeRole, using the default-chain credentials. The temporary credentials are refreshed before they expire. STS is reached at its usual endpoint or AWS_ENDPOINT_URL_STS / AWS_ENDPOINT_URL, not at endpoint."`
	ExternalID  string `yaml:"externalId" pattern:"^[\\w+=,.@:/-]*$" patternDesc:"2 to 1224 characters of A-Z a-z 0-9 _ + = , . @ : / -" doc:"External ID passed to AssumeRole; needs roleArn."`
	SessionName string `yaml:"sessionName" pattern:"^[\\w+=,.@-]{2,64}$" patternDesc:"2 to 64 characters of A-Z a-z 0-9 _ + = , . @ -" doc:"Session name of the assumed role, seen in CloudTrail. Default: pipe. Needs roleArn."`
	Endpoint    string `yaml:"endpoint" doc:"Endpoint URL of the component's service, for LocalStack-style emulators or VPC endpoints (http:// or https://). Default: AWS_ENDPOINT_URL_<SERVICE> (AWS_ENDPOINT_URL_SQS ...), else AWS_ENDPOINT_URL, else an endpoint_url in the profile, else the AWS endpoint of the region."`
}

// DefaultSessionName is the session name of an assumed role when
// sessionName is not set.
const DefaultSessionName = "pipe"

// Validate checks the rules that span fields. It runs at load time.
func (c *Config) Validate() []pipeline.FieldProblem {
	var ps []pipeline.FieldProblem
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			ps = append(ps, pipeline.FieldProblem{Field: "endpoint", Msg: "must be an absolute http:// or https:// URL"})
		} else if u.User != nil {
			ps = append(ps, pipeline.FieldProblem{Field: "endpoint", Msg: "must not hold credentials"})
		}
	}
	if n := len(c.ExternalID); n == 1 || n > 1224 {
		ps = append(ps, pipeline.FieldProblem{Field: "externalId", Msg: fmt.Sprintf("is %d characters long; it must have 2 to 1224", n)})
	}
	if c.RoleARN == "" {
		if c.ExternalID != "" {
			ps = append(ps, pipeline.FieldProblem{Field: "externalId", Msg: "needs roleArn"})
		}
		if c.SessionName != "" {
			ps = append(ps, pipeline.FieldProblem{Field: "sessionName", Msg: "needs roleArn"})
		}
	}
	return ps
}

// ErrNoRegion is returned by Load when no region is configured anywhere.
var ErrNoRegion = errors.New("no AWS region: set aws.region, AWS_REGION, or a region in the shared config profile")

var regionRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)

// Load resolves the SDK configuration of one component: region, credentials
// (the default chain, then the assumed role when roleArn is set) and the
// environment's endpoint settings. It reads environment variables and the
// shared config files but touches no network: credentials are fetched,
// cached and refreshed by the SDK on the first request that needs them.
//
// The clients built from it do not retry on their own (the runner owns
// retries): Retryer is aws.NopRetryer. The component's endpoint override is
// not part of the returned config; pass BaseEndpoint to the service client's
// options, so that it wins over AWS_ENDPOINT_URL_<SERVICE> and does not
// redirect STS.
//
// A component that can tell the region from its resource (a queue URL, an
// ARN) sets Region on a copy of the Config before calling Load when it is
// empty. Load returns ErrNoRegion when no region is found.
func (c *Config) Load(ctx context.Context) (aws.Config, error) {
	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }),
	}
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	if c.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(c.Profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading AWS config: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, ErrNoRegion
	}
	if !regionRE.MatchString(cfg.Region) {
		return aws.Config{}, fmt.Errorf("AWS region %q is not a valid region name", cfg.Region)
	}
	if c.RoleARN != "" {
		session := c.SessionName
		if session == "" {
			session = DefaultSessionName
		}
		prov := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), c.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = session
			if c.ExternalID != "" {
				o.ExternalID = aws.String(c.ExternalID)
			}
		})
		cfg.Credentials = aws.NewCredentialsCache(prov)
	}
	return cfg, nil
}

// BaseEndpoint returns the endpoint override for the component's service
// client, or nil when there is none. Use it in the client's options:
//
//	sqs.NewFromConfig(cfg, func(o *sqs.Options) {
//		if ep := c.AWS.BaseEndpoint(); ep != nil {
//			o.BaseEndpoint = ep
//		}
//	})
func (c *Config) BaseEndpoint() *string {
	if c.Endpoint == "" {
		return nil
	}
	return aws.String(c.Endpoint)
}
