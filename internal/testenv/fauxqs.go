package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// FauxqsRegion is the region the fauxqs emulator and the clients of a
// Fauxqs use.
const FauxqsRegion = "us-east-1"

// Fauxqs test credentials: fauxqs checks no signature, but the SDK signs
// every request with them.
const (
	FauxqsAccessKeyID     = "AKIDFAUXQSTEST"
	FauxqsSecretAccessKey = "fauxqs-secret-access-key"
)

// Fauxqs is a running fauxqs process, an SQS and SNS emulator speaking the
// JSON and query protocols of the AWS SDKs, on the loopback interface. It
// is stopped when the test ends.
//
// Quirks: fauxqs builds queue URLs on a sqs.<region>.localhost host that Go
// does not resolve and looks queues up by that exact URL, so the SDK's
// endpoint must be URL and the queue URL passed verbatim. It rejects
// characters above U+FFFF in message bodies, which AWS accepts. It allows
// SQS messages of up to 1 MiB. It takes the entries of an SNS PublishBatch
// call in the order their form keys first appear, and the SDK sorts the
// keys as text: of 10 entries, the tenth (member.10) is published second,
// which matters on FIFO topics.
type Fauxqs struct {
	// URL is the emulator's endpoint, http://127.0.0.1:<port>.
	URL string
	// SQS and SNS are clients on the emulator.
	SQS *sqs.Client
	SNS *sns.Client
}

// fauxqsBin returns the path of the fauxqs launcher installed by
// `npm ci --prefix testbed` at the root of the module.
func fauxqsBin() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			bin := filepath.Join(dir, "testbed", "node_modules", ".bin", "fauxqs")
			if _, err := os.Stat(bin); err != nil {
				return "", fmt.Errorf("%s is missing: run `npm ci --prefix testbed` (test.sh does)", bin)
			}
			if _, err := exec.LookPath("node"); err != nil {
				return "", errors.New("node is not installed (test.sh installs nodejs)")
			}
			return bin, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// StartFauxqs starts fauxqs 1.9.2 on a free loopback port and waits until
// GET /health answers. When fauxqs is not installed the test fails under
// CI=true and is skipped otherwise. It sets no environment variables.
func StartFauxqs(t testing.TB) *Fauxqs {
	t.Helper()
	bin, err := fauxqsBin()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("fauxqs: %v", err)
		}
		t.Skipf("fauxqs: %v", err)
	}
	var lastErr error
	for range 3 { // a port picked free may be taken before fauxqs binds it
		f, err := startFauxqs(t, bin)
		if err == nil {
			return f
		}
		lastErr = err
	}
	t.Fatalf("starting fauxqs: %v", lastErr)
	return nil
}

func startFauxqs(t testing.TB, bin string) (*Fauxqs, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()

	logPath := filepath.Join(t.TempDir(), "fauxqs.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"FAUXQS_PORT="+strconv.Itoa(port),
		"FAUXQS_DEFAULT_REGION="+FauxqsRegion,
		"FAUXQS_LOGGER=false",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := hc.Get(url + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			exited <- err
			out, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("fauxqs exited (%v): %s", err, tail(out, 2000))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			out, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("fauxqs did not answer GET /health within 30s: %s", tail(out, 2000))
		}
	}
	t.Cleanup(stop)
	cfg := FauxqsConfig(url)
	return &Fauxqs{
		URL: url,
		SQS: sqs.NewFromConfig(cfg),
		SNS: sns.NewFromConfig(cfg),
	}, nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// FauxqsConfig is an SDK config for an emulator at url: its region, the test
// credentials and the endpoint.
func FauxqsConfig(url string) aws.Config {
	return aws.Config{
		Region:       FauxqsRegion,
		Credentials:  credentials.NewStaticCredentialsProvider(FauxqsAccessKeyID, FauxqsSecretAccessKey, ""),
		BaseEndpoint: aws.String(url),
	}
}

// SetEnv points the SDK's default chain at the emulator for the rest of
// the test: region, the test credentials, AWS_ENDPOINT_URL, no shared
// config files and no instance metadata.
func (f *Fauxqs) SetEnv(t testing.TB) {
	t.Helper()
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_REGION":                  FauxqsRegion,
		"AWS_ACCESS_KEY_ID":           FauxqsAccessKeyID,
		"AWS_SECRET_ACCESS_KEY":       FauxqsSecretAccessKey,
		"AWS_SESSION_TOKEN":           "",
		"AWS_PROFILE":                 "",
		"AWS_ENDPOINT_URL":            f.URL,
		"AWS_CONFIG_FILE":             filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED":   "true",
	} {
		t.Setenv(k, v)
		if v == "" {
			os.Unsetenv(k)
		}
	}
}

// CreateQueue creates a queue (a FIFO queue when name ends in .fifo) with
// the given attributes and returns its URL.
func (f *Fauxqs) CreateQueue(t testing.TB, name string, attrs map[string]string) string {
	t.Helper()
	if strings.HasSuffix(name, ".fifo") {
		if attrs == nil {
			attrs = map[string]string{}
		}
		attrs["FifoQueue"] = "true"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := f.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		t.Fatalf("creating queue %s: %v", name, err)
	}
	return aws.ToString(out.QueueUrl)
}

// CreateTopic creates an SNS topic (a FIFO topic when name ends in .fifo)
// with the given attributes and returns its ARN.
func (f *Fauxqs) CreateTopic(t testing.TB, name string, attrs map[string]string) string {
	t.Helper()
	if strings.HasSuffix(name, ".fifo") {
		if attrs == nil {
			attrs = map[string]string{}
		}
		attrs["FifoTopic"] = "true"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := f.SNS.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(name), Attributes: attrs})
	if err != nil {
		t.Fatalf("creating topic %s: %v", name, err)
	}
	return aws.ToString(out.TopicArn)
}

// Subscribe subscribes a queue to a topic. With raw, a message reaches the
// queue as it was published; without, wrapped in SNS's notification JSON.
func (f *Fauxqs) Subscribe(t testing.TB, topicARN, queueURL string, raw bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	attrs, err := f.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(queueURL), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatalf("queue ARN of %s: %v", queueURL, err)
	}
	_, err = f.SNS.Subscribe(ctx, &sns.SubscribeInput{
		TopicArn:   aws.String(topicARN),
		Protocol:   aws.String("sqs"),
		Endpoint:   aws.String(attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]),
		Attributes: map[string]string{"RawMessageDelivery": strconv.FormatBool(raw)},
	})
	if err != nil {
		t.Fatalf("subscribing %s to %s: %v", queueURL, topicARN, err)
	}
}

// Receive reads messages from a queue until it has n or, after that,
// until the queue stays empty for a moment; it fails the test when fewer
// than n arrive within the deadline. Messages are deleted as they are read,
// with their attributes and system attributes.
func (f *Fauxqs) Receive(t testing.TB, queueURL string, n int, within time.Duration) []sqstypes.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within+10*time.Second)
	defer cancel()
	deadline := time.Now().Add(within)
	var got []sqstypes.Message
	for {
		wait := int32(1)
		if len(got) >= n {
			wait = 0 // just look for extra messages
		}
		out, err := f.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(queueURL),
			MaxNumberOfMessages:         10,
			WaitTimeSeconds:             wait,
			MessageAttributeNames:       []string{"All"},
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
		})
		if err != nil {
			t.Fatalf("receiving from %s: %v", queueURL, err)
		}
		for _, m := range out.Messages {
			if _, err := f.SQS.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(queueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatalf("deleting a message: %v", err)
			}
		}
		got = append(got, out.Messages...)
		if len(got) >= n && len(out.Messages) == 0 {
			return got
		}
		if len(got) < n && time.Now().After(deadline) {
			t.Fatalf("received %d messages from %s within %v, want %d", len(got), queueURL, within, n)
		}
	}
}
