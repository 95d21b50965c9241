// Command lilypad-gotemplate renders a Lilypad module template with Go's own
// text/template, as the original Lilypad does, plus its one custom function
// subst. lilypad's Python code runs it once per render (lilypad.modules.template).
//
// Request (stdin, JSON):
//
//	{"protocol": 1, "template": "...", "inputs": {"Key": "raw value"},
//	 "parse_only": false, "max_output_bytes": 4194304, "timeout_ms": 2000}
//
// As in the original, every input value is JSON-encoded (json.Marshal) before
// rendering: {{.Message}} with Message=moo renders "moo", quotes included.
//
// Reply: exit status 0 and the rendered bytes on stdout, exactly; or exit
// status 1 and one JSON object on stdout:
//
//	{"kind": "parse"|"exec"|"limit"|"request", "line": 3, "context": "<.X.Y>",
//	 "message": "can't evaluate field Y in type string"}
//
// Three deliberate differences from the original (docs/modules.md lists them
// with the reasons), each a few lines below:
//
//   - subst JSON-escapes each value it substitutes (no quotes added), so an
//     input can never break or inject JSON; the format is used as written;
//   - a missing input is the empty string (missingkey=zero), not "<no value>";
//   - js writes ' as \u0027 (valid inside a JSON string) instead of \'.
//
// The output is bounded (max_output_bytes) and so is the time Execute may take
// (timeout_ms): a template cannot hang or flood the process that runs it.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// Protocol is the request/reply format version; lilypad sends it with every request.
const Protocol = 1

// TemplateName is the name errors are reported under (the original uses one too).
const TemplateName = "lilypad_module.json.tmpl"

const (
	defaultMaxOutput = 4 << 20
	defaultTimeout   = 2 * time.Second
	maxRequestBytes  = 16 << 20
)

type request struct {
	Protocol       int               `json:"protocol"`
	Template       string            `json:"template"`
	Inputs         map[string]string `json:"inputs"`
	ParseOnly      bool              `json:"parse_only"`
	MaxOutputBytes int               `json:"max_output_bytes"`
	TimeoutMillis  int               `json:"timeout_ms"`
}

type failure struct {
	Kind    string `json:"kind"`
	Line    int    `json:"line"`
	Context string `json:"context,omitempty"`
	Message string `json:"message"`
}

var errOutputLimit = errors.New("output limit reached")

// boundedBuffer refuses to grow past max bytes; text/template stops at the error.
type boundedBuffer struct {
	bytes.Buffer
	max int
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.max {
		return 0, errOutputLimit
	}
	return b.Buffer.Write(p)
}

// jsonStringBody is value escaped to sit inside a JSON string, without quotes.
func jsonStringBody(value string) string {
	var out bytes.Buffer
	encoder := json.NewEncoder(&out)
	encoder.SetEscapeHTML(false)
	_ = encoder.Encode(value) // a string always encodes
	text := strings.TrimSuffix(out.String(), "\n")
	return text[1 : len(text)-1]
}

// subst is the original's function: each argument is a JSON-encoded input,
// decoded and handed to Sprintf. Deliberate difference: each decoded value is
// JSON-escaped first. A value that is not a JSON string is an error, as in the
// original (which panics, and text/template reports the panic as an error).
func subst(format string, args ...string) (string, error) {
	values := make([]any, len(args))
	for i, arg := range args {
		var decoded string
		if err := json.Unmarshal([]byte(arg), &decoded); err != nil {
			shown := arg
			if len(shown) > 40 {
				shown = shown[:40] + "..."
			}
			return "", fmt.Errorf("argument %d is not a set input (a JSON-encoded string), got %q", i+1, shown)
		}
		values[i] = jsonStringBody(decoded)
	}
	return fmt.Sprintf(format, values...), nil
}

// jsJSON is text/template's js with one deliberate difference: ' becomes
// \u0027 rather than \' (not a valid JSON escape). JSEscaper writes every
// escape as a backslash and one character, so rewriting \' token by token is exact.
func jsJSON(args ...any) string {
	escaped := template.JSEscaper(args...)
	if !strings.Contains(escaped, `\'`) {
		return escaped
	}
	var out strings.Builder
	for i := 0; i < len(escaped); i++ {
		if escaped[i] == '\\' && i+1 < len(escaped) {
			if escaped[i+1] == '\'' {
				out.WriteString(`\u0027`)
			} else {
				out.WriteString(escaped[i : i+2])
			}
			i++
			continue
		}
		out.WriteByte(escaped[i])
	}
	return out.String()
}

var location = regexp.MustCompile(`^template: ` + regexp.QuoteMeta(TemplateName) + `:(\d+):(?:\d+:)? ?(?s:(.*))$`)
var executing = regexp.MustCompile(`^executing "(?:[^"\\]|\\.)*" at (<.*?>): (?s:(.*))$`)

// describe splits a text/template error into its line, the action it names and the message.
func describe(kind string, err error) failure {
	text := err.Error()
	found := failure{Kind: kind, Message: text}
	if m := location.FindStringSubmatch(text); m != nil {
		found.Line, _ = strconv.Atoi(m[1])
		found.Message = m[2]
		if e := executing.FindStringSubmatch(found.Message); e != nil {
			found.Context, found.Message = e[1], e[2]
		}
	}
	return found
}

func reply(f failure) {
	encoded, _ := json.Marshal(f)
	os.Stdout.Write(encoded)
	os.Exit(1)
}

func main() {
	raw, err := io.ReadAll(io.LimitReader(os.Stdin, maxRequestBytes+1))
	if err != nil || len(raw) > maxRequestBytes {
		reply(failure{Kind: "request", Message: fmt.Sprintf("cannot read a request of at most %d bytes", maxRequestBytes)})
	}
	var req request
	if err := json.Unmarshal(raw, &req); err != nil {
		reply(failure{Kind: "request", Message: "the request is not JSON: " + err.Error()})
	}
	if req.Protocol != Protocol {
		reply(failure{Kind: "request", Message: fmt.Sprintf("protocol %d requested, this helper speaks %d", req.Protocol, Protocol)})
	}
	tmpl, err := template.New(TemplateName).Option("missingkey=zero").
		Funcs(template.FuncMap{"subst": subst, "js": jsJSON}).Parse(req.Template)
	if err != nil {
		reply(describe("parse", err))
	}
	if req.ParseOnly {
		return
	}
	data := make(map[string]string, len(req.Inputs))
	for key, value := range req.Inputs {
		encoded, _ := json.Marshal(value) // a string always encodes
		data[key] = string(encoded)
	}
	out := &boundedBuffer{max: req.MaxOutputBytes}
	if out.max <= 0 {
		out.max = defaultMaxOutput
	}
	timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	done := make(chan error, 1)
	go func() { done <- tmpl.Execute(out, data) }()
	select {
	case err := <-done:
		if errors.Is(err, errOutputLimit) {
			reply(failure{Kind: "limit", Message: fmt.Sprintf("the rendered template is larger than %d bytes", out.max)})
		}
		if err != nil {
			reply(describe("exec", err))
		}
	case <-time.After(timeout):
		reply(failure{Kind: "limit", Message: fmt.Sprintf("rendering took longer than %v", timeout)})
	}
	os.Stdout.Write(out.Bytes())
}
