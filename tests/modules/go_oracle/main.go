// Command gooracle renders a module template exactly as the original Lilypad's
// loader does (pkg/module LoadModule): each input json.Marshal-ed into a
// map[string]string, text/template with default options and the original's
// subst (json.Unmarshal each argument, panic on failure, fmt.Sprintf), no
// other function. tests/modules/test_template_compat.py compares lilypad's
// renderer with it. Written for the test from the original's documented
// behaviour; it shares no code with lilypad/modules/gotemplate.
//
// Stdin: {"template": "...", "inputs": {"K": "V"}}. Exit 0: the rendered bytes
// on stdout. Exit 1: {"line": N, "message": "..."} on stdout.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"text/template"
)

func subst(format string, jsonEncodedInputs ...string) string {
	decoded := make([]any, 0, len(jsonEncodedInputs))
	for _, input := range jsonEncodedInputs {
		var s string
		if err := json.Unmarshal([]byte(input), &s); err != nil {
			panic("subst: invalid input")
		}
		decoded = append(decoded, s)
	}
	return fmt.Sprintf(format, decoded...)
}

var location = regexp.MustCompile(`^template: lilypad_module\.json\.tmpl:(\d+):`)

func fail(err error) {
	line := 0
	if m := location.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
	}
	out, _ := json.Marshal(map[string]any{"line": line, "message": err.Error()})
	os.Stdout.Write(out)
	os.Exit(1)
}

func main() {
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	var req struct {
		Template string            `json:"template"`
		Inputs   map[string]string `json:"inputs"`
	}
	if err := json.Unmarshal(raw, &req); err != nil {
		fail(err)
	}
	tmpl, err := template.New("lilypad_module.json.tmpl").Funcs(template.FuncMap{"subst": subst}).Parse(req.Template)
	if err != nil {
		fail(err)
	}
	inputs := make(map[string]string)
	for k, v := range req.Inputs {
		bs, _ := json.Marshal(v)
		inputs[k] = string(bs)
	}
	var out bytes.Buffer
	if err := tmpl.Execute(&out, inputs); err != nil {
		fail(err)
	}
	os.Stdout.Write(out.Bytes())
}
