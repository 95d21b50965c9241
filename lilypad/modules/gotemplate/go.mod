// lilypad-gotemplate: renders lilypad_module.json.tmpl with Go's own text/template.
// Standard library only; built by `make setup` (lilypad.modules.template.build_helper).
module lilypad.invalid/gotemplate

go 1.19
