#!/bin/sh
# cowsay in POSIX sh + awk (BusyBox): the classic cow saying MESSAGE.
#
#   cowsay [MESSAGE...]
#
# The words of MESSAGE (all arguments, joined by spaces) are re-flowed into
# lines of at most 39 characters, as the original cowsay does (Text::Wrap,
# 40 columns); a word longer than that is split. Widths count UTF-8
# characters, not bytes. Without arguments the cow says "Hello, Lilypad!".
if [ "$#" -eq 0 ]; then
    set -- "Hello, Lilypad!"
fi
COWSAY_MESSAGE="$*" exec awk '
# Characters in a UTF-8 string: bytes minus continuation bytes.
function ulen(s,    t) { t = s; return length(s) - gsub(/[\200-\277]/, "", t) }
# The first n UTF-8 characters of s.
function uhead(s, n,    i, seen) {
    seen = 0
    for (i = 1; i <= length(s); i++)
        if (substr(s, i, 1) !~ /[\200-\277]/ && ++seen > n)
            return substr(s, 1, i - 1)
    return s
}
function push(text) {
    lines[++count] = text
    if (ulen(text) > width) width = ulen(text)
}
function repeat(char, n,    out) { out = ""; while (n-- > 0) out = out char; return out }
function pad(text) { return text repeat(" ", width - ulen(text)) }
BEGIN {
    limit = 39
    count = 0; width = 0; line = ""
    words = split(ENVIRON["COWSAY_MESSAGE"], word, /[ \t\r\n]+/)
    for (w = 1; w <= words; w++) {
        text = word[w]
        while (ulen(text) > limit) {
            if (line != "") { push(line); line = "" }
            head = uhead(text, limit)
            push(head)
            text = substr(text, length(head) + 1)
        }
        if (text == "") continue
        if (line == "") line = text
        else if (ulen(line) + 1 + ulen(text) <= limit) line = line " " text
        else { push(line); line = text }
    }
    if (line != "" || count == 0) push(line)

    print " " repeat("_", width + 2)
    if (count == 1) print "< " pad(lines[1]) " >"
    else for (i = 1; i <= count; i++) {
        if (i == 1) print "/ " pad(lines[i]) " \\"
        else if (i == count) print "\\ " pad(lines[i]) " /"
        else print "| " pad(lines[i]) " |"
    }
    print " " repeat("-", width + 2)
    print "        \\   ^__^"
    print "         \\  (oo)\\_______"
    print "            (__)\\       )\\/\\"
    print "                ||----w |"
    print "                ||     ||"
}'
