// Package awscfg is the AWS access that every AWS component shares: the
// `aws:` block of its config (region, profile, role to assume, endpoint) and
// the SDK configuration built from it.
//
// Credentials never sit in pipes.yaml. They come from the SDK's default
// chain: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN),
// the shared config and credentials files with their profiles (including
// role_arn, credential_process and SSO profiles), web identity
// (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, as on EKS), the ECS container
// endpoint and EC2 instance metadata. With roleArn, those credentials are
// used to assume the role with STS AssumeRole.
//
// Endpoints resolve in this order: the component's endpoint setting;
// AWS_ENDPOINT_URL_<SERVICE> (AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL_SNS,
// AWS_ENDPOINT_URL_EVENTBRIDGE, AWS_ENDPOINT_URL_LAMBDA,
// AWS_ENDPOINT_URL_STS); AWS_ENDPOINT_URL; an endpoint_url in the profile;
// the AWS endpoint of the region. AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true
// turns off the environment and profile settings (not the component's).
//
// Nothing here touches the network when a component is built: the SDK
// fetches credentials on the first request, caches them and refreshes them
// before they expire. SDK clients built from Load do not retry; the runner
// does, and Classify tells it whether an error of an AWS call is worth
// retrying. Credentials are never logged or put in errors.
//
// The subpackage batch holds what the targets of AWS batch APIs share.
package awscfg
