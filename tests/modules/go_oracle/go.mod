// The differential test's oracle: plain Go text/template, as the original Lilypad loads a module.
module lilypad.invalid/gooracle

go 1.19
