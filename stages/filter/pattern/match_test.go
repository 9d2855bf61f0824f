package pattern_test

import (
	"fmt"
	"testing"

	"github.com/pipe-run/pipe/pipeline"
	"github.com/pipe-run/pipe/stages/filter/pattern"
)

// ec2Event is the sample event of the aws/event-ruler README.
const ec2Event = `{
  "version": "0",
  "id": "ddddd4-aaaa-7777-4444-345dd43cc333",
  "detail-type": "EC2 Instance State-change Notification",
  "source": "aws.ec2",
  "account": "012345679012",
  "time": "2017-10-02T16:24:49Z",
  "region": "us-east-1",
  "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],
  "detail": {
    "c-count": 5,
    "d-count": 3,
    "x-limit": 301.8,
    "source-ip": "10.0.0.33",
    "instance-id": "i-000000aaaaaa00000",
    "state": "running"
  }
}`

// ec2NestedCount is the README's second exists example: c-count is an
// object, not a leaf.
const ec2NestedCount = `{
  "detail-type": ["EC2 Instance State-change Notification"],
  "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],
  "detail": {"state": ["initializing", "running"], "c-count": {"c1": 100}}
}`

// employees and employeesNested are the README's array-matching events.
const employees = `{"employees":[
  {"firstName":"John","lastName":"Doe"},
  {"firstName":"Anna","lastName":"Smith"},
  {"firstName":"Peter","lastName":"Jones"}]}`

const employeesNested = `{"employees":[
  [{"firstName":"John","lastName":"Doe"},{"firstName":"Anna","lastName":"Smith"}],
  [{"firstName":"Peter","lastName":"Jones"}]]}`

// nullEvent is the EventBridge guide's null-and-empty-string example.
const nullEvent = `{
  "version": "0", "id": "3e3c153a-8339-4e30-8c35-687ebef853fe",
  "detail-type": "EC2 Instance Launch Successful", "source": "aws.autoscaling",
  "account": "123456789012", "time": "2015-11-11T21:31:47Z", "region": "us-east-1",
  "resources": [],
  "detail": {"eventVersion": "", "responseElements": null}
}`

// cloudwatch events for the README's $or examples.
const (
	cwMetric    = `{"source":"aws.cloudwatch","metricName":"ReadLatency"}`
	cwNamespace = `{"source":"aws.cloudwatch","namespace":"AWS/ES"}`
	cwTyped     = `{"source":"aws.cloudwatch","metricType":"MetricType","namespace":"AWS/EC2"}`
)

type matchCase struct {
	pattern, event string
	want           bool
}

var matchCases = []matchCase{
	// The aws/event-ruler README, rules stated to match its sample event.
	{`{"detail-type":["EC2 Instance State-change Notification"],"resources":["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],"detail":{"state":["initializing","running"]}}`, ec2Event, true},
	{`{"time":[{"prefix":"2017-10-02"}]}`, ec2Event, true},
	{`{"source":[{"suffix":"ec2"}]}`, ec2Event, true},
	{`{"source":[{"equals-ignore-case":"AWS.EC2"}]}`, ec2Event, true},
	{`{"source":[{"equals-ignore-case":"EC2"}]}`, ec2Event, false},
	{`{"detail":{"state":[{"anything-but":"initializing"}]}}`, ec2Event, true},
	{`{"detail":{"x-limit":[{"anything-but":123}]}}`, ec2Event, true},
	{`{"detail":{"state":[{"anything-but":["stopped","overloaded"]}]}}`, ec2Event, true},
	{`{"detail":{"x-limit":[{"anything-but":[100,200,300]}]}}`, ec2Event, true},
	{`{"detail":{"state":[{"anything-but":{"prefix":"init"}}]}}`, ec2Event, true},
	{`{"detail":{"c-count":[{"numeric":[">",0,"<=",5]}],"d-count":[{"numeric":["<",10]}],"x-limit":[{"numeric":["=",3.018e2]}]}}`, ec2Event, true},
	{`{"detail":{"source-ip":[{"cidr":"10.0.0.0/24"}]}}`, ec2Event, true},
	{`{"detail":{"c-count":[{"exists":true}]}}`, ec2Event, true},
	{`{"detail":{"c-count":[{"exists":false}]}}`, ec2Event, false},
	{`{"detail":{"c-count":[{"exists":false}]}}`, ec2NestedCount, true},
	{`{"detail":{"c-count":[{"exists":true}]}}`, ec2NestedCount, false},
	{`{"time":[{"prefix":"2017-10-02"}],"detail":{"state":[{"anything-but":"initializing"}],"c-count":[{"numeric":[">",0,"<=",5]}],"d-count":[{"numeric":["<",10]}],"x-limit":[{"anything-but":[100,200,300]}],"source-ip":[{"cidr":"10.0.0.0/8"}]}}`, ec2Event, true},
	{`{"detail":{"state":["initializing"]}}`, ec2Event, false},
	{`{"source":["aws.ec2"],"detail":{"state":["stopped"]}}`, ec2Event, false},
	// README array matching: fields must come from one element.
	{`{"employees":{"firstName":["Anna"]}}`, employees, true},
	{`{"employees":{"firstName":["Anna"],"lastName":["Smith"]}}`, employees, true},
	{`{"employees":{"firstName":["Anna"],"lastName":["Jones"]}}`, employees, false},
	{`{"employees":{"firstName":["Anna"]}}`, employeesNested, true},
	{`{"employees":{"firstName":["Anna"],"lastName":["Jones"]}}`, employeesNested, false},
	{`{"employees":{"firstName":["Peter"],"lastName":["Jones"]}}`, employeesNested, true},
	{`{"employees":{"firstName":["John"],"lastName":["Smith"]}}`, employeesNested, false},
	// README $or examples.
	{`{"source":["aws.cloudwatch"],"$or":[{"metricName":["CPUUtilization","ReadLatency"]},{"namespace":["AWS/EC2","AWS/ES"]}]}`, cwMetric, true},
	{`{"source":["aws.cloudwatch"],"$or":[{"metricName":["CPUUtilization","ReadLatency"]},{"namespace":["AWS/EC2","AWS/ES"]}]}`, cwNamespace, true},
	{`{"source":["aws.cloudwatch"],"$or":[{"metricName":["CPUUtilization","ReadLatency"]},{"namespace":["AWS/EC2","AWS/ES"]}]}`, `{"source":"aws.other","metricName":"ReadLatency"}`, false},
	{`{"source":["aws.cloudwatch"],"$or":[{"metricName":["CPUUtilization","ReadLatency"]},{"namespace":["AWS/EC2","AWS/ES"]}]}`, `{"source":"aws.cloudwatch","namespace":"AWS/S3"}`, false},
	{`{"$or":[{"metricName":["CPUUtilization","ReadLatency"]},{"namespace":["AWS/EC2","AWS/ES"]}],"detail":{"$or":[{"source":["aws.cloudwatch"]},{"detail-type":["CloudWatch Alarm State Change"]}]}}`, `{"namespace":"AWS/EC2","detail":{"detail-type":"CloudWatch Alarm State Change"}}`, true},
	{`{"$or":[{"metricName":["CPUUtilization","ReadLatency"]},{"namespace":["AWS/EC2","AWS/ES"]}],"detail":{"$or":[{"source":["aws.cloudwatch"]},{"detail-type":["CloudWatch Alarm State Change"]}]}}`, `{"namespace":"AWS/EC2","detail":{"source":"aws.s3"}}`, false},
	{`{"source":["aws.cloudwatch"],"$or":[{"metricName":["CPUUtilization","ReadLatency"]},{"metricType":["MetricType"],"namespace":["AWS/EC2","AWS/ES"]},{"scope":["Service"]}]}`, cwTyped, true},
	{`{"source":["aws.cloudwatch"],"$or":[{"metricName":["CPUUtilization","ReadLatency"]},{"metricType":["MetricType"],"namespace":["AWS/EC2","AWS/ES"]},{"scope":["Service"]}]}`, `{"source":"aws.cloudwatch","metricType":"MetricType"}`, false},
	{`{"source":["aws.cloudwatch"],"$or":[{"metricName":["CPUUtilization","ReadLatency"]},{"metricType":["MetricType"],"namespace":["AWS/EC2","AWS/ES"]},{"scope":["Service"]}]}`, `{"source":"aws.cloudwatch","scope":"Service"}`, true},
	{`{"source":["aws.cloudwatch"],"$or":[{"metricName":["CPUUtilization","ReadLatency"]},{"metricType":["MetricType"],"namespace":["AWS/EC2","AWS/ES"],"$or":[{"metricId":[1234]},{"spaceId":[1000]}]},{"scope":["Service"]}]}`, `{"source":"aws.cloudwatch","metricType":"MetricType","namespace":"AWS/ES","spaceId":1000}`, true},
	{`{"source":["aws.cloudwatch"],"$or":[{"metricName":["CPUUtilization","ReadLatency"]},{"metricType":["MetricType"],"namespace":["AWS/EC2","AWS/ES"],"$or":[{"metricId":[1234]},{"spaceId":[1000]}]},{"scope":["Service"]}]}`, cwTyped, false},
	{`{"source":["aws.cloudwatch"],"$or":[{"metricName":["CPUUtilization","ReadLatency"]},{"metricType":["MetricType"],"namespace":["AWS/EC2","AWS/ES"],"$or":[{"metricId":[1234]},{"spaceId":[1000]}]},{"scope":["Service"]}]}`, `{"source":"aws.cloudwatch","metricType":"MetricType","namespace":"AWS/EC2","metricId":1234.0}`, true},
	// EventBridge guide: null values and empty strings are different.
	{`{"detail":{"eventVersion":[""]}}`, nullEvent, true},
	{`{"detail":{"responseElements":[null]}}`, nullEvent, true},
	{`{"detail":{"eventVersion":[null]}}`, nullEvent, false},
	{`{"detail":{"responseElements":[""]}}`, nullEvent, false},
	{`{"detail":{"responseElements":[{"exists":true}]}}`, nullEvent, true},
	{`{"resources":[{"exists":true}]}`, nullEvent, false},
	{`{"resources":[{"exists":false}]}`, nullEvent, true},
	// EventBridge guide: arrays intersect.
	{`{"resources":["arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f","arn:aws:ec2:us-east-1:111122223333:instance/i-b188560f","arn:aws:ec2:us-east-1:444455556666:instance/i-b188560f"]}`,
		`{"resources":["arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:eb56d16b-bbf0-401d-b893-d5978ed4a025:autoScalingGroupName/ASGTerminate","arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f"]}`, true},
	// The Lambda guide's filter rule syntax table and EventBridge's operator table.
	{`{"Location":["New York"],"Day":["Monday"]}`, `{"Location":"New York","Day":"Monday"}`, true},
	{`{"Location":["New York"],"Day":["Monday"]}`, `{"Location":"New York","Day":"Tuesday"}`, false},
	{`{"PaymentType":["Credit","Debit"]}`, `{"PaymentType":"Debit"}`, true},
	{`{"$or":[{"Location":["New York"]},{"Day":["Monday"]}]}`, `{"Location":"Boston","Day":"Monday"}`, true},
	{`{"$or":[{"Location":["New York"]},{"Day":["Monday"]}]}`, `{"Location":"Boston","Day":"Friday"}`, false},
	{`{"Weather":[{"anything-but":["Raining"]}]}`, `{"Weather":"Sunny"}`, true},
	{`{"Weather":[{"anything-but":["Raining"]}]}`, `{"Weather":"Raining"}`, false},
	{`{"Price":[{"numeric":["=",100]}]}`, `{"Price":100}`, true},
	{`{"Price":[{"numeric":[">",10,"<=",20]}]}`, `{"Price":20}`, true},
	{`{"Price":[{"numeric":[">",10,"<=",20]}]}`, `{"Price":10}`, false},
	{`{"ProductName":[{"exists":true}]}`, `{"ProductName":"Lamp"}`, true},
	{`{"ProductName":[{"exists":false}]}`, `{"ProductName":"Lamp"}`, false},
	{`{"UserID":[null]}`, `{"UserID":null}`, true},
	{`{"LastName":[""]}`, `{"LastName":""}`, true},
	{`{"Name":["Alice"]}`, `{"Name":"Alice"}`, true},
	{`{"Name":[{"equals-ignore-case":"alice"}]}`, `{"Name":"Alice"}`, true},
	{`{"Region":[{"prefix":"us-"}]}`, `{"Region":"us-east-1"}`, true},
	{`{"Region":[{"anything-but":{"prefix":"us-"}}]}`, `{"Region":"eu-west-1"}`, true},
	{`{"Region":[{"anything-but":{"prefix":"us-"}}]}`, `{"Region":"us-west-2"}`, false},
	{`{"FileName":[{"suffix":".png"}]}`, `{"FileName":"image.png"}`, true},
	{`{"FileName":[{"anything-but":{"suffix":".png"}}]}`, `{"FileName":"image.png"}`, false},
	{`{"FileName":[{"anything-but":{"suffix":".png"}}]}`, `{"FileName":"image.jpg"}`, true},
	{`{"state":[{"anything-but":{"equals-ignore-case":"initializing"}}]}`, `{"state":"INITIALIZING"}`, false},
	{`{"state":[{"anything-but":{"equals-ignore-case":"initializing"}}]}`, `{"state":"running"}`, true},
	{`{"FilePath":[{"anything-but":{"wildcard":"*/lib/*"}}]}`, `{"FilePath":"/usr/lib/libc.so"}`, false},
	{`{"FilePath":[{"anything-but":{"wildcard":"*/lib/*"}}]}`, `{"FilePath":"/usr/bin/env"}`, true},
	{`{"service":[{"prefix":{"equals-ignore-case":"eventb"}}]}`, `{"service":"EventBridge"}`, true},
	{`{"service":[{"prefix":{"equals-ignore-case":"eventb"}}]}`, `{"service":"Events"}`, false},
	{`{"service":[{"suffix":{"equals-ignore-case":"tbridge"}}]}`, `{"service":"EVENTBRIDGE"}`, true},
	{`{"service":[{"suffix":{"equals-ignore-case":"tbridge"}}]}`, `{"service":"bridge"}`, false},
	{`{"FileName":[{"wildcard":"dir/*.png"}]}`, `{"FileName":"dir/photo.png"}`, true},
	{`{"FileName":[{"wildcard":"dir/*.png"}]}`, `{"FileName":"other/photo.png"}`, false},
	{`{"EventBusArn":[{"wildcard":"arn:aws:events:us-east-1:*:event-bus/*"}]}`, `{"EventBusArn":"arn:aws:events:us-east-1:123456789012:event-bus/orders"}`, true},
	{`{"source":[{"wildcard":"Simple*Service"}]}`, `{"source":"SimpleQueueService"}`, true},

	// Exact strings.
	{`{"a":["x"]}`, `{"a":"x"}`, true},
	{`{"a":["x"]}`, `{"a":"X"}`, false},
	{`{"a":["x"]}`, `{"b":"x"}`, false},
	{`{"a":["x"]}`, `{"a":["y","x"]}`, true},
	{`{"a":["x"]}`, `{"a":["y","z"]}`, false},
	{`{"a":["x"]}`, `{"a":[]}`, false},
	{`{"a":["x"]}`, `{"a":[["y"],["x"]]}`, true},
	{`{"a":["x"]}`, `{"a":{"x":"x"}}`, false},
	{`{"a":["x"]}`, `{"a":[{"y":1},"x"]}`, true},
	{`{"a":["1"]}`, `{"a":1}`, false},
	{`{"a":["true"]}`, `{"a":true}`, false},
	{`{"a":["null"]}`, `{"a":null}`, false},
	{`{"a":["x "]}`, `{"a":"x"}`, false},
	{`{"a":["héllo"]}`, `{"a":"h\u00e9llo"}`, true},
	{`{"a":["\u00e9"]}`, `{"a":"e\u0301"}`, false},
	{`{"a":["😀"]}`, `{"a":"\ud83d\ude00"}`, true},
	{`{"a":["tab\there"]}`, `{"a":"tab\u0009here"}`, true},
	{`{"a":["quote\"d"]}`, `{"a":"quote\"d"}`, true},
	{`{"a":{"b":{"c":["x"]}}}`, `{"a":{"b":{"c":"x"}}}`, true},
	{`{"a":{"b":["x"]}}`, `{"a":{"b":"y","c":"x"}}`, false},
	{`{"a":{"b":["x"]}}`, `{"a":"b"}`, false},
	{`{"a.b":["x"]}`, `{"a":{"b":"x"}}`, false},
	{`{"a.b":["x"]}`, `{"a.b":"x"}`, true},
	{`{"a":["x"],"b":["y"]}`, `{"a":"x","b":"y"}`, true},
	{`{"a":["x"],"b":["y"]}`, `{"a":"x","b":"z"}`, false},
	{`{"a":["x"]}`, `{"a":"y","a":"x"}`, true},
	{`{"a":["k","l","m","n","o","p","q","r","s","x"]}`, `{"a":"x"}`, true},
	{`{"a":["k","l","m","n","o","p","q","r","s","x"]}`, `{"a":"z"}`, false},
	{`{"a":["k","l","m","n","o","p","q","r","s",5]}`, `{"a":5}`, true},

	// Null, empty and booleans.
	{`{"a":[""]}`, `{"a":""}`, true},
	{`{"a":[""]}`, `{"a":null}`, false},
	{`{"a":[""]}`, `{}`, false},
	{`{"a":[null]}`, `{"a":null}`, true},
	{`{"a":[null]}`, `{"a":""}`, false},
	{`{"a":[null]}`, `{}`, false},
	{`{"a":[null]}`, `{"a":[1,null]}`, true},
	{`{"a":[null,""]}`, `{"a":""}`, true},
	{`{"a":[true]}`, `{"a":true}`, true},
	{`{"a":[true]}`, `{"a":"true"}`, false},
	{`{"a":[true]}`, `{"a":false}`, false},
	{`{"a":[false]}`, `{"a":false}`, true},
	{`{"a":[false]}`, `{"a":0}`, false},
	{`{"a":[false]}`, `{"a":null}`, false},

	// Exact numbers compare by value.
	{`{"a":[300]}`, `{"a":300}`, true},
	{`{"a":[300]}`, `{"a":300.0}`, true},
	{`{"a":[300]}`, `{"a":3.0e2}`, true},
	{`{"a":[300]}`, `{"a":3E+2}`, true},
	{`{"a":[3.0e2]}`, `{"a":300}`, true},
	{`{"a":[300]}`, `{"a":300.5}`, false},
	{`{"a":[300]}`, `{"a":"300"}`, false},
	{`{"a":[0]}`, `{"a":-0}`, true},
	{`{"a":[-1.5]}`, `{"a":-1.50}`, true},
	{`{"a":[0.1]}`, `{"a":1e-1}`, true},
	{`{"a":[5]}`, `{"a":[1,5,9]}`, true},
	{`{"a":[1e400]}`, `{"a":1e400}`, true},
	{`{"a":[1e400]}`, `{"a":1E400}`, false},
	{`{"a":[9007199254740993]}`, `{"a":9007199254740992}`, true},
	{`{"a":[123456789012]}`, `{"a":123456789012}`, true},

	// numeric.
	{`{"a":[{"numeric":[">",100]}]}`, `{"a":101}`, true},
	{`{"a":[{"numeric":[">",100]}]}`, `{"a":100}`, false},
	{`{"a":[{"numeric":[">",100]}]}`, `{"a":100.0001}`, true},
	{`{"a":[{"numeric":[">",100]}]}`, `{"a":"101"}`, false},
	{`{"a":[{"numeric":[">",100]}]}`, `{"a":null}`, false},
	{`{"a":[{"numeric":[">",100]}]}`, `{}`, false},
	{`{"a":[{"numeric":[">",100]}]}`, `{"a":[50,150]}`, true},
	{`{"a":[{"numeric":[">",100]}]}`, `{"a":[50,60]}`, false},
	{`{"a":[{"numeric":[">",100]}]}`, `{"a":true}`, false},
	{`{"a":[{"numeric":[">",100]}]}`, `{"a":1e400}`, false},
	{`{"a":[{"numeric":[">=",100]}]}`, `{"a":100}`, true},
	{`{"a":[{"numeric":[">=",100]}]}`, `{"a":99.999}`, false},
	{`{"a":[{"numeric":["<",0]}]}`, `{"a":-1}`, true},
	{`{"a":[{"numeric":["<",0]}]}`, `{"a":-0.0}`, false},
	{`{"a":[{"numeric":["<=",0]}]}`, `{"a":-0}`, true},
	{`{"a":[{"numeric":["=",3.018e2]}]}`, `{"a":301.80}`, true},
	{`{"a":[{"numeric":["=",100]}]}`, `{"a":1e2}`, true},
	{`{"a":[{"numeric":[">",0,"<=",5]}]}`, `{"a":5}`, true},
	{`{"a":[{"numeric":[">",0,"<=",5]}]}`, `{"a":0}`, false},
	{`{"a":[{"numeric":[">",0,"<=",5]}]}`, `{"a":5.000001}`, false},
	{`{"a":[{"numeric":[">=",0,"<",5]}]}`, `{"a":0}`, true},
	{`{"a":[{"numeric":[">=",0,"<",5]}]}`, `{"a":5}`, false},
	{`{"a":[{"numeric":[">",-10,"<",-5]}]}`, `{"a":-7.5}`, true},
	{`{"a":[{"numeric":[">",-10,"<",-5]}]}`, `{"a":-5}`, false},
	{`{"a":[{"numeric":[">",1e10]}]}`, `{"a":2e10}`, true},
	{`{"a":[{"numeric":["<",10]},{"numeric":[">",20]}]}`, `{"a":25}`, true},
	{`{"a":[{"numeric":["<",10]},{"numeric":[">",20]}]}`, `{"a":15}`, false},
	{`{"a":[{"numeric":["<",10]},"x"]}`, `{"a":"x"}`, true},

	// prefix and suffix.
	{`{"a":[{"prefix":"ab"}]}`, `{"a":"abc"}`, true},
	{`{"a":[{"prefix":"ab"}]}`, `{"a":"ab"}`, true},
	{`{"a":[{"prefix":"ab"}]}`, `{"a":"a"}`, false},
	{`{"a":[{"prefix":"ab"}]}`, `{"a":"xab"}`, false},
	{`{"a":[{"prefix":"ab"}]}`, `{"a":"ABc"}`, false},
	{`{"a":[{"prefix":"1"}]}`, `{"a":12}`, false},
	{`{"a":[{"prefix":"ab"}]}`, `{"a":["x","abz"]}`, true},
	{`{"a":[{"prefix":""}]}`, `{"a":""}`, true},
	{`{"a":[{"prefix":""}]}`, `{"a":null}`, false},
	{`{"a":[{"prefix":"hé"}]}`, `{"a":"héllo"}`, true},
	{`{"a":[{"prefix":{"equals-ignore-case":"ÉT"}}]}`, `{"a":"été"}`, true},
	{`{"a":[{"suffix":".png"}]}`, `{"a":".png"}`, true},
	{`{"a":[{"suffix":".png"}]}`, `{"a":"image.PNG"}`, false},
	{`{"a":[{"suffix":".png"}]}`, `{"a":"png"}`, false},
	{`{"a":[{"suffix":"5"}]}`, `{"a":5}`, false},
	{`{"a":[{"suffix":{"equals-ignore-case":".PNG"}}]}`, `{"a":"image.png"}`, true},
	{`{"a":[{"suffix":{"equals-ignore-case":"SS"}}]}`, `{"a":"Straße"}`, false},
	{`{"a":[{"suffix":{"equals-ignore-case":"ße"}}]}`, `{"a":"STRASSE"}`, true},

	// equals-ignore-case folds each character to its two cases, as Java does.
	{`{"a":[{"equals-ignore-case":"alice"}]}`, `{"a":"ALICE"}`, true},
	{`{"a":[{"equals-ignore-case":"alice"}]}`, `{"a":"alicE"}`, true},
	{`{"a":[{"equals-ignore-case":"alice"}]}`, `{"a":"alic"}`, false},
	{`{"a":[{"equals-ignore-case":"alice"}]}`, `{"a":"alice "}`, false},
	{`{"a":[{"equals-ignore-case":"1"}]}`, `{"a":1}`, false},
	{`{"a":[{"equals-ignore-case":""}]}`, `{"a":""}`, true},
	{`{"a":[{"equals-ignore-case":"é"}]}`, `{"a":"É"}`, true},
	{`{"a":[{"equals-ignore-case":"straße"}]}`, `{"a":"STRASSE"}`, true},
	{`{"a":[{"equals-ignore-case":"ß"}]}`, `{"a":"ß"}`, true},
	{`{"a":[{"equals-ignore-case":"ß"}]}`, `{"a":"ss"}`, false},
	{`{"a":[{"equals-ignore-case":"Σ"}]}`, `{"a":"σ"}`, true},
	{`{"a":[{"equals-ignore-case":"Σ"}]}`, `{"a":"ς"}`, false},
	{`{"a":[{"equals-ignore-case":"k"}]}`, `{"a":"\u212a"}`, false},
	{`{"a":[{"equals-ignore-case":"\u212a"}]}`, `{"a":"k"}`, true},
	{`{"a":[{"equals-ignore-case":"İ"}]}`, `{"a":"i\u0307"}`, true},
	{`{"a":[{"equals-ignore-case":"İ"}]}`, `{"a":"i"}`, false},
	{`{"a":[{"equals-ignore-case":"ﬁle"}]}`, `{"a":"FILE"}`, true},
	{`{"a":[{"equals-ignore-case":"Ǆ"}]}`, `{"a":"ǆ"}`, true},
	{`{"a":[{"equals-ignore-case":"ПРИВЕТ"}]}`, `{"a":"привет"}`, true},
	{`{"a":[{"equals-ignore-case":"😀x"}]}`, `{"a":"😀X"}`, true},

	// wildcard.
	{`{"a":[{"wildcard":"*"}]}`, `{"a":""}`, true},
	{`{"a":[{"wildcard":"*"}]}`, `{"a":1}`, false},
	{`{"a":[{"wildcard":"a*b*c"}]}`, `{"a":"abc"}`, true},
	{`{"a":[{"wildcard":"a*b*c"}]}`, `{"a":"aXbYc"}`, true},
	{`{"a":[{"wildcard":"a*b*c"}]}`, `{"a":"acb"}`, false},
	{`{"a":[{"wildcard":"a*b*c"}]}`, `{"a":"abcbc"}`, true},
	{`{"a":[{"wildcard":"ab*ba"}]}`, `{"a":"aba"}`, false},
	{`{"a":[{"wildcard":"ab*ba"}]}`, `{"a":"abba"}`, true},
	{`{"a":[{"wildcard":"*a*a*"}]}`, `{"a":"aa"}`, true},
	{`{"a":[{"wildcard":"*a*a*"}]}`, `{"a":"ba"}`, false},
	{`{"a":[{"wildcard":"Simple*Service"}]}`, `{"a":"simpleQueueService"}`, false},
	{`{"a":[{"wildcard":"a\\*b"}]}`, `{"a":"a*b"}`, true},
	{`{"a":[{"wildcard":"a\\*b"}]}`, `{"a":"axb"}`, false},
	{`{"a":[{"wildcard":"a\\\\*"}]}`, `{"a":"a\\bc"}`, true},
	{`{"a":[{"wildcard":"exact"}]}`, `{"a":"exact"}`, true},
	{`{"a":[{"wildcard":"exact"}]}`, `{"a":"exactly"}`, false},
	{`{"a":[{"wildcard":"*é*"}]}`, `{"a":"café au lait"}`, true},

	// anything-but.
	{`{"a":[{"anything-but":"x"}]}`, `{"a":"y"}`, true},
	{`{"a":[{"anything-but":"x"}]}`, `{"a":"x"}`, false},
	{`{"a":[{"anything-but":"x"}]}`, `{}`, false},
	{`{"a":[{"anything-but":"x"}]}`, `{"a":null}`, true},
	{`{"a":[{"anything-but":"x"}]}`, `{"a":5}`, true},
	{`{"a":[{"anything-but":"x"}]}`, `{"a":["x"]}`, false},
	{`{"a":[{"anything-but":"x"}]}`, `{"a":["x","y"]}`, true},
	{`{"a":[{"anything-but":"x"}]}`, `{"a":{"b":"y"}}`, false},
	{`{"a":[{"anything-but":""}]}`, `{"a":""}`, false},
	{`{"a":[{"anything-but":123}]}`, `{"a":123.0}`, false},
	{`{"a":[{"anything-but":123}]}`, `{"a":124}`, true},
	{`{"a":[{"anything-but":123}]}`, `{"a":"123"}`, true},
	{`{"a":[{"anything-but":[100,200,300]}]}`, `{"a":2e2}`, false},
	{`{"a":[{"anything-but":["stopped","overloaded"]}]}`, `{"a":"stopped"}`, false},
	{`{"a":[{"anything-but":{"prefix":"init"}}]}`, `{"a":5}`, true},
	{`{"a":[{"anything-but":{"prefix":["a","b"]}}]}`, `{"a":"bx"}`, false},
	{`{"a":[{"anything-but":{"prefix":["a","b"]}}]}`, `{"a":"cx"}`, true},
	{`{"a":[{"anything-but":{"equals-ignore-case":["a","b"]}}]}`, `{"a":"B"}`, false},
	{`{"a":[{"anything-but":{"equals-ignore-case":["a","b"]}}]}`, `{"a":"c"}`, true},
	{`{"a":[{"anything-but":{"suffix":["x","y"]}}]}`, `{"a":"ay"}`, false},
	{`{"a":[{"anything-but":{"wildcard":["*.png","*.jpg"]}}]}`, `{"a":"a.jpg"}`, false},
	{`{"a":[{"anything-but":{"wildcard":["*.png","*.jpg"]}}]}`, `{"a":"a.gif"}`, true},
	{`{"a":[{"anything-but":"x"},"x"]}`, `{"a":"x"}`, true},

	// exists looks at leaf values.
	{`{"a":[{"exists":true}]}`, `{"a":""}`, true},
	{`{"a":[{"exists":true}]}`, `{"a":null}`, true},
	{`{"a":[{"exists":true}]}`, `{"a":0}`, true},
	{`{"a":[{"exists":true}]}`, `{"a":false}`, true},
	{`{"a":[{"exists":true}]}`, `{}`, false},
	{`{"a":[{"exists":true}]}`, `{"a":{}}`, false},
	{`{"a":[{"exists":true}]}`, `{"a":{"b":1}}`, false},
	{`{"a":[{"exists":true}]}`, `{"a":[]}`, false},
	{`{"a":[{"exists":true}]}`, `{"a":[null]}`, true},
	{`{"a":[{"exists":true}]}`, `{"a":[{"b":1}]}`, false},
	{`{"a":[{"exists":false}]}`, `{}`, true},
	{`{"a":[{"exists":false}]}`, `{"a":"x"}`, false},
	{`{"a":[{"exists":false}]}`, `{"a":null}`, false},
	{`{"a":[{"exists":false}]}`, `{"a":{}}`, true},
	{`{"a":[{"exists":false}]}`, `{"a":[]}`, true},
	{`{"a":[{"exists":false}]}`, `{"a":[{"b":1}]}`, true},
	{`{"a":[{"exists":false}]}`, `{"a":[{"b":1},2]}`, false},
	{`{"a":{"b":[{"exists":false}]}}`, `{}`, true},
	{`{"a":{"b":[{"exists":false}]}}`, `{"a":"str"}`, true},
	{`{"a":{"b":[{"exists":false}]}}`, `{"a":{"b":1}}`, false},
	{`{"a":{"b":[{"exists":false}]}}`, `{"a":[{"b":1},{"c":2}]}`, false},
	{`{"a":{"b":[{"exists":false}]}}`, `{"a":[{"c":1},{"c":2}]}`, true},
	{`{"a":{"b":[{"exists":false}]}}`, `{"a":[]}`, true},
	{`{"a":{"b":[{"exists":false}],"c":[2]}}`, `{"a":[{"b":1},{"c":2}]}`, true},
	{`{"a":{"b":[{"exists":false}],"c":[2]}}`, `{"a":[{"b":1,"c":2}]}`, false},
	{`{"a":["x",{"exists":false}]}`, `{"a":"x"}`, true},
	{`{"a":["x",{"exists":false}]}`, `{}`, true},
	{`{"a":["x",{"exists":false}]}`, `{"a":"y"}`, false},
	{`{"a":["x",{"exists":false}]}`, `{"a":null}`, false},
	{`{"a":{"b":["x",{"exists":false}]}}`, `{"a":[{"b":"y"},{"c":1}]}`, false},
	{`{"a":{"b":["x",{"exists":false}]}}`, `{"a":[{"b":"y"},{"b":"x"}]}`, true},
	{`{"a":{"b":["x",{"exists":false}]}}`, `{"a":[{"c":1},{"c":2}]}`, true},
	{`{"a":[{"exists":true},{"exists":false}]}`, `{}`, true},
	{`{"a":[{"exists":false}],"b":["y"]}`, `{"b":"y"}`, true},
	{`{"a":[{"exists":false}],"b":["y"]}`, `{"a":1,"b":"y"}`, false},

	// cidr and IP addresses.
	{`{"ip":[{"cidr":"10.0.0.0/24"}]}`, `{"ip":"10.0.0.255"}`, true},
	{`{"ip":[{"cidr":"10.0.0.0/24"}]}`, `{"ip":"10.0.1.1"}`, false},
	{`{"ip":[{"cidr":"10.0.0.0/24"}]}`, `{"ip":"10.0.0"}`, false},
	{`{"ip":[{"cidr":"10.0.0.0/24"}]}`, `{"ip":"010.0.0.1"}`, false},
	{`{"ip":[{"cidr":"10.0.0.0/24"}]}`, `{"ip":10}`, false},
	{`{"ip":[{"cidr":"10.0.0.0/24"}]}`, `{"ip":"::ffff:a00:5"}`, true},
	{`{"ip":[{"cidr":"10.0.0.33/24"}]}`, `{"ip":"10.0.0.1"}`, true},
	{`{"ip":[{"cidr":"0.0.0.0/0"}]}`, `{"ip":"255.255.255.255"}`, true},
	{`{"ip":[{"cidr":"0.0.0.0/0"}]}`, `{"ip":"::1"}`, false},
	{`{"ip":[{"cidr":"2001:db8::/32"}]}`, `{"ip":"2001:DB8:0:0:0:0:0:1"}`, true},
	{`{"ip":[{"cidr":"2001:db8::/32"}]}`, `{"ip":"2001:db9::1"}`, false},
	{`{"ip":[{"cidr":"2001:db8::/32"}]}`, `{"ip":"10.0.0.1"}`, false},
	{`{"ip":[{"cidr":"2001:db8::/32"}]}`, `{"ip":["10.0.0.1","2001:db8:ffff::1"]}`, true},
	{`{"ip":["10.0.0.1"]}`, `{"ip":"10.0.0.1"}`, true},
	{`{"ip":["10.0.0.1"]}`, `{"ip":"10.0.0.2"}`, false},
	{`{"ip":["2001:db8::1"]}`, `{"ip":"2001:0db8:0:0::1"}`, true},

	// $or.
	{`{"$or":[{"a":["x"]},{"b":["y"]}]}`, `{"a":"x"}`, true},
	{`{"$or":[{"a":["x"]},{"b":["y"]}]}`, `{"b":"y"}`, true},
	{`{"$or":[{"a":["x"]},{"b":["y"]}]}`, `{"a":"y","b":"x"}`, false},
	{`{"detail":{"$or":[{"a":[1]},{"b":[2]}]}}`, `{"detail":{"b":2}}`, true},
	{`{"detail":{"$or":[{"a":[1]},{"b":[2]}]}}`, `{"b":2}`, false},
	{`{"a":["x"],"$or":[{"a":["y"]},{"b":["z"]}]}`, `{"a":"y"}`, true},
	{`{"a":["x"],"$or":[{"a":["y"]},{"b":["z"]}]}`, `{"a":"x","b":"z"}`, true},
	{`{"a":["x"],"$or":[{"a":["y"]},{"b":["z"]}]}`, `{"a":"x"}`, false},
	{`{"$or":[{"a":["x"]},{"a":[{"exists":false}]}]}`, `{}`, true},
	{`{"$or":[{"a":["x"]},{"a":[{"exists":false}]}]}`, `{"a":"y"}`, false},
	{`{"a":{"b":["1"]},"$or":[{"a":{"c":["2"]}},{"a":{"d":["3"]}}]}`, `{"a":[{"b":"1"},{"c":"2"}]}`, false},
	{`{"a":{"b":["1"]},"$or":[{"a":{"c":["2"]}},{"a":{"d":["3"]}}]}`, `{"a":[{"b":"1","d":"3"}]}`, true},
	{`{"items":{"$or":[{"b":[{"exists":false}]},{"c":[{"exists":false}]}]}}`, `{"items":[{"b":1},{"c":1}]}`, false},
	{`{"items":{"$or":[{"b":[{"exists":false}]},{"c":[{"exists":false}]}]}}`, `{"items":[{"b":1},{"d":1}]}`, true},
	{`{"$or":[{"a":[1]},{"$or":[{"b":[2]},{"c":[3]}]}]}`, `{"c":3}`, true},

	// Arrays: same element, independence across arrays, nesting.
	{`{"a":{"b":[1],"c":[2]}}`, `{"a":{"b":[0,1],"c":[2,3]}}`, true},
	{`{"a":{"b":["x"]}}`, `{"a":[{"b":"x"},"str"]}`, true},
	{`{"a":{"b":{"c":["1"]},"d":["2"]}}`, `{"a":[{"b":[{"c":"1"}],"d":"2"}]}`, true},
	{`{"a":{"b":{"c":["1"]},"d":["2"]}}`, `{"a":[{"b":[{"c":"1"}]},{"d":"2"}]}`, false},
	{`{"a":[3]}`, `{"a":[[1,2],[3]]}`, true},
	{`{"a":{"b":["x"]},"c":["y"]}`, `{"a":[{"b":"z"},{"b":"x"}],"c":"y"}`, true},
	{`{"o":{"items":{"sku":["A1"],"qty":[{"numeric":[">",1]}]}}}`, `{"o":{"items":[{"sku":"A1","qty":1},{"sku":"B2","qty":5}]}}`, false},
	{`{"o":{"items":{"sku":["A1"],"qty":[{"numeric":[">",1]}]}}}`, `{"o":{"items":[{"sku":"B2","qty":1},{"sku":"A1","qty":5}]}}`, true},
}

func TestMatchTable(t *testing.T) {
	if len(matchCases) < 150 {
		t.Fatalf("the table holds %d cases; keep at least 150", len(matchCases))
	}
	for i, c := range matchCases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			p, err := pattern.Compile([]byte(c.pattern))
			if err != nil {
				t.Fatalf("Compile(%s): %v", c.pattern, err)
			}
			ev, err := pipeline.ParseJSON([]byte(c.event))
			if err != nil {
				t.Fatalf("ParseJSON(%s): %v", c.event, err)
			}
			if got := p.Match(&ev); got != c.want {
				t.Fatalf("pattern %s\nevent   %s\nmatch = %v, want %v", c.pattern, c.event, got, c.want)
			}
			ok, why := p.Explain(&ev)
			if ok != c.want {
				t.Fatalf("Explain says %v, Match says %v", ok, c.want)
			}
			if !ok && why == "" {
				t.Fatalf("Explain gives no reason for a miss")
			}
			if ok && why != "" {
				t.Fatalf("Explain gives a reason %q for a match", why)
			}
		})
	}
}

func mustJSON(t testing.TB, s string) *pipeline.Value {
	t.Helper()
	v, err := pipeline.ParseJSON([]byte(s))
	if err != nil {
		t.Fatalf("ParseJSON(%s): %v", s, err)
	}
	return &v
}
